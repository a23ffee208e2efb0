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
from contextlib import contextmanager
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


def shapes_table(polygons, ndim: int) -> pd.DataFrame:
    """Polygons in napari's Shapes CSV columns (index, shape-type, vertex-index, axis-n)."""
    rows = [[index, "polygon", vertex, *point]
            for index, polygon in enumerate(polygons) for vertex, point in enumerate(polygon)]
    return pd.DataFrame(rows, columns=["index", "shape-type", "vertex-index",
                                       *[f"axis-{n}" for n in range(ndim)]])


def write_tiff(path: Path, array, info: dict) -> None:
    """A TIFF whose description carries the provenance ``info``.

    The text prefix keeps tifffile from reading the JSON as its own shape metadata."""
    tifffile.imwrite(path, np.asarray(array), metadata=None,
                     description="napari-pixel-clusters " + json.dumps(info, default=str))


@contextmanager
def staged_folder(folder: Path, replace: bool = False):
    """Yield a temporary folder beside ``folder``; it becomes ``folder`` only if the block
    finishes, so a result folder appears whole or not at all."""
    if folder.exists() and not replace:
        raise ValueError(f"out: {folder} exists already; choose a new folder.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        yield staging
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_result(seg: Segmentation, folder, source: str = "", min_area: int = 20) -> Path:
    """Write ``seg`` into ``folder`` (which must not exist yet); return its path."""
    folder = Path(folder)
    with staged_folder(folder) as staging:
        info = provenance(seg, source)
        write_tiff(staging / FILES["labels"], seg.labels, info)
        write_tiff(staging / FILES["quantized"], seg.quantized(), info)
        seg.table.to_csv(staging / FILES["table"], index=False)
        contours = [c.vertices for c in seg.contours(min_area=min_area)]
        shapes_table(contours, seg.labels.ndim).to_csv(staging / FILES["outlines"],
                                                       index=False)
        (staging / FILES["params"]).write_text(json.dumps(info, indent=1, default=str))
        if seg.model is not None:
            save_model(seg.model, staging / FILES["model"])
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
