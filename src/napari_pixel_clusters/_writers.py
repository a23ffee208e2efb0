"""npe2 writers: a clusters layer's table as CSV, and a whole result as a folder.

The folder has the same files as :func:`napari_pixel_clusters.write_result`, so
:func:`napari_pixel_clusters.read_result` reads it back, and napari opens its TIFF and
CSV files (File > Open).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .core.export import FILES, ZARR_FILES, shapes_table, staged_folder, write_tiff, write_zarr
from .core.lazy import as_dask, is_lazy, is_multiscale
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
    with staged_folder(folder, replace=True) as staging:
        write_array(staging, "labels", labels, info)
        if "image" in by_type:
            write_array(staging, "quantized", by_type["image"][0], info)
        features = pd.DataFrame(attributes.get("features", {}))
        features.rename(columns={"index": "label"}).to_csv(staging / FILES["table"],
                                                          index=False)
        if "shapes" in by_type:
            polygons, shapes_attributes = by_type["shapes"]
            ndim = len(polygons[0][0]) if len(polygons) else np.ndim(labels)
            polygon_labels = pd.DataFrame(shapes_attributes.get("features", {})).get("label")
            shapes_table(polygons, ndim, polygon_labels).to_csv(staging / FILES["outlines"],
                                                                index=False)
        (staging / FILES["params"]).write_text(json.dumps(info, indent=1, default=str))
        if tag.get("model"):
            (staging / FILES["model"]).write_text(json.dumps(tag["model"], indent=1))
    return [str(folder)]


def write_array(folder: Path, key: str, data, info: dict) -> None:
    """A layer's data as TIFF, or, for a large (lazy or multiscale) layer, its full-size
    level as a zarr store written chunk by chunk."""
    full_size = data[0] if is_multiscale(data) else data
    if is_lazy(full_size):
        write_zarr(folder / ZARR_FILES[key], as_dask(full_size), info)
    else:
        write_tiff(folder / FILES[key], full_size, info)
