"""npe2 writers: a clusters layer's table as CSV, and a whole result as a folder.

The folder has the same files as :func:`napari_pixel_clusters.write_result`, so
:func:`napari_pixel_clusters.read_result` reads it back, and napari opens its TIFF and
CSV files (File > Open).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from .core.export import FILES
from .gui.layers import METADATA_KEY


def _tag(attributes: dict) -> dict:
    return attributes.get("metadata", {}).get(METADATA_KEY, {})


def _provenance(attributes: dict) -> dict:
    tag = _tag(attributes)
    return {"source": tag.get("source", attributes.get("name")),
            "layer": attributes.get("name"),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "params": tag.get("params", {}), "score": tag.get("score", {})}


def write_table(path: str, data, attributes: dict) -> list[str]:
    """The cluster table (``layer.features``) of a clusters layer, as CSV, with its
    provenance in a ``.json`` sidecar of the same name."""
    features = pd.DataFrame(attributes.get("features", {}))
    if features.empty:
        raise ValueError(f"'{attributes.get('name')}' has no cluster table to save.")
    features.rename(columns={"index": "label"}).to_csv(path, index=False)
    sidecar = Path(path).with_suffix(".json")
    sidecar.write_text(json.dumps(_provenance(attributes), indent=1, default=str))
    return [path, str(sidecar)]


def write_result_folder(path: str, layer_data: list) -> list[str]:
    """Clusters (Labels), and optionally quantized (Image) and outlines (Shapes), as a
    result folder: labels.tif, quantized.tif, table.csv, outlines.csv, params.json,
    model.json."""
    folder = Path(path)
    if folder.suffix:
        folder = folder.with_suffix("")
    by_type = {layer_type: (data, attributes) for data, attributes, layer_type in layer_data}
    if "labels" not in by_type:
        raise ValueError("Select a clusters (Labels) layer to save a result folder.")
    labels, attributes = by_type["labels"]
    tag = _tag(attributes)
    info = _provenance(attributes)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        description = "napari-pixel-clusters " + json.dumps(info, default=str)
        tifffile.imwrite(staging / FILES["labels"], np.asarray(labels), description=description,
                         metadata=None)
        if "image" in by_type:
            tifffile.imwrite(staging / FILES["quantized"], np.asarray(by_type["image"][0]),
                             description=description, metadata=None)
        features = pd.DataFrame(attributes.get("features", {}))
        features.rename(columns={"index": "label"}).to_csv(staging / FILES["table"],
                                                          index=False)
        if "shapes" in by_type:
            _shapes_csv(by_type["shapes"][0], staging / FILES["outlines"])
        (staging / FILES["params"]).write_text(json.dumps(info, indent=1, default=str))
        if tag.get("model"):
            (staging / FILES["model"]).write_text(json.dumps(tag["model"], indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [str(folder)]


def _shapes_csv(polygons, path: Path) -> None:
    rows = [[index, "polygon", vertex, *point]
            for index, polygon in enumerate(polygons) for vertex, point in enumerate(polygon)]
    ndim = len(polygons[0][0]) if len(polygons) else 2
    pd.DataFrame(rows, columns=["index", "shape-type", "vertex-index",
                                *[f"axis-{n}" for n in range(ndim)]]).to_csv(path, index=False)
