"""A result as a folder of ordinary files, and back.

``write_result`` writes labels and quantized image (TIFF), the cluster table and outlines
(CSV; the outlines in napari's Shapes CSV format, so File > Open reads them), the
parameters (JSON) and, for k-means and mixtures, the model (JSON). Each file carries the
provenance: the TIFFs in their description, the rest in ``params.json``. Folders appear
whole or not at all: they are written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from .model import Model, load_model, save_model
from .result import Segmentation

FILES = {"labels": "labels.tif", "quantized": "quantized.tif", "table": "table.csv",
         "outlines": "outlines.csv", "params": "params.json", "model": "model.json"}


def provenance(seg: Segmentation, source: str) -> dict:
    return {"source": source, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "params": seg.params, "score": seg.score}


def outlines_table(seg: Segmentation, min_area: int) -> pd.DataFrame:
    """Outline polygons in napari's Shapes CSV columns (index, shape-type, vertex-index)."""
    rows = []
    for index, contour in enumerate(seg.contours(min_area=min_area)):
        for vertex, point in enumerate(contour.vertices):
            rows.append([index, "polygon", vertex, *point])
    ndim = seg.labels.ndim
    return pd.DataFrame(rows, columns=["index", "shape-type", "vertex-index",
                                       *[f"axis-{n}" for n in range(ndim)]])


def write_result(seg: Segmentation, folder, source: str = "", min_area: int = 20) -> Path:
    """Write ``seg`` into ``folder`` (which must not exist yet); return its path."""
    folder = Path(folder)
    if folder.exists():
        raise ValueError(f"out: {folder} exists already; choose a new folder.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        info = provenance(seg, source)
        # a text prefix, so that tifffile does not read the JSON as its own shape metadata
        description = "napari-pixel-clusters " + json.dumps(info, default=str)
        for key, array in (("labels", seg.labels), ("quantized", seg.quantized())):
            tifffile.imwrite(staging / FILES[key], array, description=description,
                             metadata=None)
        seg.table.to_csv(staging / FILES["table"], index=False)
        outlines_table(seg, min_area).to_csv(staging / FILES["outlines"], index=False)
        (staging / FILES["params"]).write_text(json.dumps(info, indent=1, default=str))
        if seg.model is not None:
            save_model(seg.model, staging / FILES["model"])
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


@dataclass
class SavedResult:
    """A result folder read back: the arrays, tables and the model."""

    labels: np.ndarray
    quantized: np.ndarray
    table: pd.DataFrame
    outlines: pd.DataFrame
    params: dict
    model: Model | None


def read_result(folder) -> SavedResult:
    """Read a folder written by :func:`write_result` (or the command line)."""
    folder = Path(folder)
    missing = [name for key, name in FILES.items()
               if key != "model" and not (folder / name).exists()]
    if missing:
        raise ValueError(f"folder: {folder} is not a result folder (missing "
                         f"{', '.join(missing)}).")
    model_path = folder / FILES["model"]
    return SavedResult(
        labels=tifffile.imread(folder / FILES["labels"]),
        quantized=tifffile.imread(folder / FILES["quantized"]),
        table=pd.read_csv(folder / FILES["table"]),
        outlines=pd.read_csv(folder / FILES["outlines"]),
        params=json.loads((folder / FILES["params"]).read_text()),
        model=load_model(model_path) if model_path.exists() else None,
    )
