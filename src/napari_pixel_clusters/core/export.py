"""A result as a folder of ordinary files, and back.

``write_result`` writes labels and quantized image (TIFF), the cluster table and outlines
(CSV; the outlines in napari's Shapes CSV format, so File > Open reads them), the
parameters (JSON) and, for k-means and mixtures, the model (JSON). Each file carries the
provenance: the TIFFs in their description, the rest in ``params.json``. Folders appear
whole or not at all: they are written under a temporary name and renamed at the end.

Lazy results (of images larger than memory) write labels and quantized image as zarr
stores instead, chunk by chunk (provenance in their attributes), and no outlines: tracing
them would need every pixel at once.
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
#: What lazy results write instead of the TIFFs (and no outlines).
ZARR_FILES = {"labels": "labels.zarr", "quantized": "quantized.zarr"}
ATTRIBUTE = "napari_pixel_clusters"


def provenance(seg: Segmentation, source: str) -> dict:
    return {"source": source, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "params": seg.params, "score": seg.score}


def shapes_table(polygons, ndim: int, labels=None) -> pd.DataFrame:
    """Polygons in napari's Shapes CSV columns (index, shape-type, vertex-index, axis-n),
    and the cluster ``label`` of each polygon last (napari's reader ignores it)."""
    rows = [[index, "polygon", vertex, *point]
            for index, polygon in enumerate(polygons) for vertex, point in enumerate(polygon)]
    table = pd.DataFrame(rows, columns=["index", "shape-type", "vertex-index",
                                        *[f"axis-{n}" for n in range(ndim)]])
    if labels is not None:
        known = np.nan_to_num(np.asarray(labels, dtype=float)).astype(int)  # drawn: 0
        table["label"] = np.repeat(known,
                                   [len(polygon) for polygon in polygons])
    return table


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
        if hasattr(seg, "labels_of"):  # lazy: chunk by chunk into zarr stores, no outlines
            write_zarr(staging / ZARR_FILES["labels"], seg.labels, info)
            write_zarr(staging / ZARR_FILES["quantized"], seg.quantized(), info)
        else:
            write_tiff(staging / FILES["labels"], seg.labels, info)
            write_tiff(staging / FILES["quantized"], seg.quantized(), info)
            contours = seg.contours(min_area=min_area)
            outlines = shapes_table([c.vertices for c in contours], seg.labels.ndim,
                                    [c.label for c in contours])
            outlines.to_csv(staging / FILES["outlines"], index=False)
        seg.table.to_csv(staging / FILES["table"], index=False)
        (staging / FILES["params"]).write_text(json.dumps(info, indent=1, default=str))
        if seg.model is not None:
            save_model(seg.model, staging / FILES["model"])
    return folder


def write_zarr(path: Path, array, info: dict) -> None:
    """A dask array into a zarr store, chunk by chunk, with the provenance as attribute."""
    import zarr

    array.to_zarr(str(path))
    zarr.open_array(str(path), mode="r+").attrs[ATTRIBUTE] = json.loads(
        json.dumps(info, default=str))


@dataclass
class SavedResult:
    """A result folder read back: the arrays (dask arrays when saved as zarr; quantized
    None when not saved), tables and the model."""

    labels: np.ndarray
    quantized: np.ndarray | None
    table: pd.DataFrame
    outlines: pd.DataFrame
    params: dict
    model: Model | None


def read_result(folder) -> SavedResult:
    """Read a folder written by :func:`write_result` (or the command line)."""
    folder = Path(folder)
    lazy = (folder / ZARR_FILES["labels"]).exists()
    expected = ({**FILES, **ZARR_FILES} if lazy else FILES).items()
    missing = [name for key, name in expected if key in ("labels", "table", "params")
               and not (folder / name).exists()]
    if missing:
        raise ValueError(f"folder: {folder} is not a result folder (missing "
                         f"{', '.join(missing)}).")
    model_path = folder / FILES["model"]
    outlines = folder / FILES["outlines"]
    return SavedResult(
        labels=_read_array(folder, "labels", lazy),
        quantized=_read_array(folder, "quantized", lazy),
        table=pd.read_csv(folder / FILES["table"]),
        outlines=pd.read_csv(outlines) if outlines.exists() else shapes_table([], 2),
        params=json.loads((folder / FILES["params"]).read_text()),
        model=load_model(model_path) if model_path.exists() else None,
    )


def _read_array(folder: Path, key: str, lazy: bool):
    """The saved array (lazily from zarr); None when the folder does not hold it (the
    napari writer saves the quantized image only when its layer was selected)."""
    path = folder / (ZARR_FILES if lazy else FILES)[key]
    if not path.exists():
        return None
    if lazy:
        import dask.array as da

        return da.from_zarr(str(path))
    return tifffile.imread(path)
