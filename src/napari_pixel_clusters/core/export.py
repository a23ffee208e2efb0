"""A result as a folder of ordinary files, and back.

``write_result`` writes labels and quantized image (TIFF), the cluster table and outlines
(CSV; the outlines in napari's Shapes CSV format, so File > Open reads them), the
parameters (JSON), for k-means and mixtures the model (JSON) and, when asked for, the
objects (``seg.objects(...)``: instance labels as ``objects.tif``, their measurements as
``objects.csv``; how they were made in ``params.json`` under ``objects``) and the
posterior probabilities of the clusters (``probabilities.tif``, one float32 plane per
cluster in label order, and ``uncertainty.tif``; under ``probabilities`` in
``params.json``). Each file carries the
provenance: the TIFFs in their description, the rest in ``params.json``. Folders appear
whole or not at all: they are written under a temporary name and renamed at the end.
Writers never remove or overwrite what they did not create (see :func:`staged_folder`).

A result folder read back is untrusted input: :func:`read_result` checks every file and
field before use, and answers bad content with a ``ValueError`` starting with
``folder:`` that names the file and the field. Only regular files inside the folder are
read (symbolic links leading out of it are refused), ``params.json`` and ``table.csv``
up to :data:`MAX_TABLE_BYTES` (128 MB; sizes are checked before anything is read),
``table.csv`` of up to :data:`MAX_TABLE_ROWS` clusters (a million: superpixels may be
many more than the clusters a method is asked for), ``outlines.csv`` and ``objects.csv``
up to :data:`MAX_OUTLINES_BYTES` (256 MB) and ``model.json`` up to the model limit (64 MB).

Lazy results (of images larger than memory) write labels and quantized image as zarr
stores instead, chunk by chunk (provenance in their attributes), and no outlines: tracing
them would need every pixel at once.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import numpy.typing as npt
import pandas as pd
import tifffile

from .files import StrPath, check_inside, check_tree_inside, open_regular, read_json, read_text
from .model import Model, read_model_file, save_model
from .objects import Objects
from .probabilities import check_uncertainty_kind
from .result import Segmentation

if TYPE_CHECKING:
    import dask.array as da

FILES = {
    "labels": "labels.tif",
    "quantized": "quantized.tif",
    "table": "table.csv",
    "outlines": "outlines.csv",
    "params": "params.json",
    "model": "model.json",
    "objects": "objects.tif",
    "objects_table": "objects.csv",
    "probabilities": "probabilities.tif",
    "uncertainty": "uncertainty.tif",
}
#: What lazy results write instead of the TIFFs (and no outlines).
ZARR_FILES = {
    "labels": "labels.zarr",
    "quantized": "quantized.zarr",
    "probabilities": "probabilities.zarr",
    "uncertainty": "uncertainty.zarr",
}
ATTRIBUTE = "napari_pixel_clusters"
#: ``format`` of the ``params.json`` we write: it marks a folder as a result we wrote.
RESULT_FORMAT = "napari-pixel-clusters result"
#: The most clusters (rows) a result's ``table.csv`` may hold: a result can have many more
#: than a model (superpixels, e.g. SLIC's up to a million ``n_segments``).
MAX_TABLE_ROWS = 1_000_000
#: ``params.json`` and ``table.csv`` larger than this are refused unread: room for
#: :data:`MAX_TABLE_ROWS` rows of an RGB table (about 100 bytes each), and for the
#: component of each cluster in ``params.json``.
MAX_TABLE_BYTES = 128 * 2**20
#: ``outlines.csv`` larger than this is refused unread.
MAX_OUTLINES_BYTES = 256 * 2**20
OUR_NAMES = frozenset(FILES.values()) | frozenset(ZARR_FILES.values())
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?")


def provenance(seg: Segmentation[Any], source: str) -> dict[str, Any]:
    return {
        "format": RESULT_FORMAT,
        "source": source,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": seg.params,
        "score": seg.score,
    }


def shapes_table(
    polygons: Sequence[Sequence[Sequence[float]] | np.ndarray],
    ndim: int,
    labels: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Polygons in napari's Shapes CSV columns (index, shape-type, vertex-index, axis-n),
    and the cluster ``label`` of each polygon last (napari's reader ignores it)."""
    rows = [
        [index, "polygon", vertex, *point]
        for index, polygon in enumerate(polygons)
        for vertex, point in enumerate(polygon)
    ]
    table = pd.DataFrame(
        rows, columns=["index", "shape-type", "vertex-index", *[f"axis-{n}" for n in range(ndim)]]
    )
    if labels is not None:
        known = np.nan_to_num(np.asarray(labels, dtype=float)).astype(int)  # drawn: 0
        table["label"] = np.repeat(known, [len(polygon) for polygon in polygons])
    return table


def write_tiff(
    path: Path, array: npt.ArrayLike, info: dict[str, Any], photometric: str | None = None
) -> None:
    """A TIFF whose description carries the provenance ``info``.

    The text prefix keeps tifffile from reading the JSON as its own shape metadata.
    ``photometric="minisblack"`` stores planes of 3 or 4 as planes, not as RGB."""
    tifffile.imwrite(
        path,
        np.asarray(array),
        metadata=None,
        description="napari-pixel-clusters " + json.dumps(info, default=str),
        photometric=photometric,
    )


@contextmanager
def staged_folder(folder: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``; it becomes ``folder`` only if the block
    finishes, so a result folder appears whole or not at all.

    ``folder`` is used as named. It may be absent or an empty folder. Anything else is a
    ``ValueError`` starting with ``out:``, unless ``overwrite`` is true and ``folder`` is a
    result folder we wrote (:func:`foreign_content` finds nothing in it): that folder is
    replaced as a whole once the new one is complete. A file, a link, or a folder holding
    anything else is never replaced or removed, not even with ``overwrite``. Failures to
    create or write the folder (an unwritable place, a path that is a file) are
    ``ValueError`` too."""
    _check_target(folder, overwrite)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as error:
        raise _cannot_write(folder, error) from None
    try:
        yield staging
        _check_target(folder, overwrite)  # again: it may have changed in the meantime
        _move_into_place(staging, folder)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise _cannot_write(folder, error) from None
        raise


def _cannot_write(folder: Path, error: OSError) -> ValueError:
    return ValueError(f"out: cannot write {folder}: {error.strerror or error}.")


def _exists_error(folder: Path) -> ValueError:
    return ValueError(
        f"out: {folder} exists already; choose another folder or pass "
        "overwrite=True (--overwrite on the command line)."
    )


def is_empty_folder(path: Path) -> bool:
    """``path`` is a folder (not a link to one) with nothing in it."""
    try:
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    except OSError:
        return False


def _check_target(folder: Path, overwrite: bool) -> None:
    if not os.path.lexists(folder):
        return
    if folder.is_symlink() or not folder.is_dir():
        raise ValueError(
            f"out: {folder} exists already and is not a folder; choose another folder."
        )
    if is_empty_folder(folder):
        return
    if not overwrite:
        raise _exists_error(folder)
    foreign = foreign_content(folder)
    if foreign:
        raise ValueError(
            f"out: {folder} is not a result folder written by "
            f"napari-pixel-clusters ({foreign}); it is not replaced, not even "
            "with overwrite=True. Choose another folder."
        )


def foreign_content(folder: Path) -> str:
    """What in ``folder`` we did not write (empty text if nothing): a result folder of
    ours holds our ``params.json`` and only our files (no links)."""
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        return f"it cannot be listed: {error.strerror or error}"
    for entry in entries:
        if entry.name not in OUR_NAMES:
            return f"it holds {entry.name}"
        if entry.is_symlink():
            return f"{entry.name} is a link"
    try:
        info = read_json(folder / FILES["params"], "out", MAX_TABLE_BYTES)
    except ValueError:
        info = None
    if not is_our_json(info, RESULT_FORMAT, ("source", "written", "params")):
        return f"it has no {FILES['params']} written by napari-pixel-clusters"
    return ""


def is_our_json(content: object, format_name: str, legacy_keys: tuple[str, ...]) -> bool:
    """A JSON object we wrote: its ``format`` is ``format_name``, or (files written before
    the marker) it has no ``format`` and every one of ``legacy_keys``."""
    if not isinstance(content, dict):
        return False
    if "format" in content:
        return content["format"] == format_name
    return all(key in content for key in legacy_keys)


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an existing (checked) result folder is set aside
    first and removed once the new one is in place (put back if that fails)."""
    if os.path.lexists(folder) and not is_empty_folder(folder):
        trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}-replaced-", dir=folder.parent))
        old = trash / folder.name
        try:
            os.rename(folder, old)
        except BaseException:
            trash.rmdir()
            raise
        try:
            os.rename(staging, folder)
        except BaseException:
            os.rename(old, folder)
            raise
        shutil.rmtree(trash, ignore_errors=True)
        return
    try:
        os.rename(staging, folder)  # POSIX replaces an empty folder, never a full one
    except OSError:
        if not is_empty_folder(folder):
            raise _exists_error(folder) from None
        folder.rmdir()  # empty (Windows does not rename onto it)
        os.rename(staging, folder)


def write_result(
    seg: Segmentation[Any],
    folder: StrPath,
    source: str = "",
    min_area: int = 20,
    overwrite: bool = False,
    objects: Objects | None = None,
    probabilities: bool = False,
    uncertainty: str = "margin",
) -> Path:
    """Write ``seg`` into ``folder``; return its path.

    With ``objects`` (``seg.objects(...)``), also their instance labels (``objects.tif``)
    and measurements (``objects.csv``); ``params.json`` records how they were made.
    With ``probabilities`` (methods that give them, see ``seg.probabilities()``; others
    are a ``ValueError`` starting ``method:`` before anything is written), also
    ``probabilities.tif``: float32 ``(k, *spatial)``, plane ``i`` the posterior of label
    ``i + 1``, and ``uncertainty.tif``: ``seg.uncertainty(uncertainty)`` ("margin" or
    "entropy"); zarr stores for lazy results. ``params.json`` records them under
    ``probabilities``.

    ``folder`` is used as named and must not exist yet or be empty. An existing
    non-empty folder is a ``ValueError`` (``out: ... exists already``) unless
    ``overwrite=True``, and even then only a result folder written by this package
    (our ``params.json`` and nothing but our files) is replaced; see
    :func:`staged_folder`."""
    folder = Path(folder)
    posteriors = _posteriors(seg, uncertainty) if probabilities else None
    if objects is not None and objects.labels.shape != tuple(seg.labels.shape):
        raise ValueError(
            f"objects: their labels' shape {objects.labels.shape} differs from the "
            f"result's {tuple(seg.labels.shape)}."
        )
    with staged_folder(folder, overwrite=overwrite) as staging:
        info = provenance(seg, source)
        if objects is not None:
            info["objects"] = {**objects.params, "count": len(objects.table)}
            write_tiff(staging / FILES["objects"], objects.labels, info)
            objects.table.to_csv(staging / FILES["objects_table"], index=False)
        if posteriors is not None:
            info["probabilities"] = {
                "files": [FILES["probabilities"], FILES["uncertainty"]],
                "planes": "cluster first: plane i is the posterior of label i + 1",
                "labels": list(range(1, posteriors[0].shape[-1] + 1)),
                "uncertainty": uncertainty,
            }
            _write_posteriors(staging, seg.is_lazy, *posteriors, info)
        if seg.is_lazy:  # lazy: chunk by chunk into zarr stores, no outlines
            write_zarr(staging / ZARR_FILES["labels"], seg.labels, info)
            write_zarr(staging / ZARR_FILES["quantized"], seg.quantized(), info)
        else:
            write_tiff(staging / FILES["labels"], seg.labels, info)
            write_tiff(staging / FILES["quantized"], seg.quantized(), info)
            contours = seg.contours(min_area=min_area)
            outlines = shapes_table(
                [c.vertices for c in contours], seg.labels.ndim, [c.label for c in contours]
            )
            outlines.to_csv(staging / FILES["outlines"], index=False)
        seg.table.to_csv(staging / FILES["table"], index=False)
        (staging / FILES["params"]).write_text(json.dumps(info, indent=1, default=str))
        if seg.model is not None:
            save_model(seg.model, staging / FILES["model"])
    return folder


def _posteriors(seg: Segmentation[Any], kind: str) -> tuple[Any, Any]:
    """``seg``'s probabilities (cluster axis first) and uncertainty, checked before
    anything is written (lazy results: dask arrays, computed as they are written)."""
    kind = check_uncertainty_kind(kind)
    posteriors = seg.probabilities()
    return posteriors, seg.uncertainty(kind)


def _write_posteriors(
    staging: Path, lazy: bool, posteriors: Any, uncertain: Any, info: dict[str, Any]
) -> None:
    if lazy:
        import dask.array as da

        write_zarr(staging / ZARR_FILES["probabilities"], da.moveaxis(posteriors, -1, 0), info)
        write_zarr(staging / ZARR_FILES["uncertainty"], uncertain, info)
        return
    planes = np.moveaxis(posteriors, -1, 0)
    write_tiff(staging / FILES["probabilities"], planes, info, photometric="minisblack")
    write_tiff(staging / FILES["uncertainty"], uncertain, info, photometric="minisblack")


def write_zarr(path: Path, array: da.Array, info: dict[str, Any]) -> None:
    """A dask array into a zarr store, chunk by chunk, with the provenance as attribute."""
    import zarr

    array.to_zarr(str(path))
    zarr.open_array(str(path), mode="r+").attrs[ATTRIBUTE] = json.loads(
        json.dumps(info, default=str)
    )


@dataclass
class SavedResult:
    """A result folder read back: the arrays (dask arrays when saved as zarr; quantized
    None when not saved), tables and the model."""

    labels: np.ndarray | da.Array
    quantized: np.ndarray | da.Array | None
    table: pd.DataFrame
    outlines: pd.DataFrame
    params: dict[str, Any]
    model: Model | None
    #: the objects saved with the result (``objects.tif`` and ``objects.csv``), or None
    objects: Objects | None = None
    #: the posteriors saved with the result (``probabilities.tif``: ``(k, *spatial)``,
    #: plane i label i + 1) and their uncertainty (``uncertainty.tif``), or None
    probabilities: np.ndarray | da.Array | None = None
    uncertainty: np.ndarray | da.Array | None = None


def read_result(folder: StrPath) -> SavedResult:
    """Read a folder written by :func:`write_result` (or the command line).

    Every file is checked before use (see the module's notes); bad content is a
    ``ValueError`` starting with ``folder:`` that names the file and the field."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder: {folder}: not a folder.")
    root = Path(os.path.realpath(folder))
    lazy = os.path.lexists(folder / ZARR_FILES["labels"])
    names = {**FILES, **ZARR_FILES} if lazy else FILES
    missing = [
        names[key]
        for key in ("labels", "table", "params")
        if not os.path.lexists(folder / names[key])
    ]
    if missing:
        raise ValueError(f"folder: {folder}: not a result folder (missing {', '.join(missing)}).")

    def inside(key: str) -> Path:
        return check_inside(folder / names[key], root, "folder")

    def present(key: str) -> Path | None:
        return inside(key) if os.path.lexists(folder / names[key]) else None

    params = _read_params(inside("params"))
    table = _read_table(inside("table"))
    labels = _read_array(inside("labels"), root, lazy, "labels")
    quantized_path = present("quantized")
    quantized = (
        None if quantized_path is None else _read_array(quantized_path, root, lazy, "quantized")
    )
    _check_arrays(labels, quantized, folder / names["quantized"])
    outlines = present("outlines")
    model = present("model")
    objects = _read_objects(present("objects"), present("objects_table"), labels.shape, params)
    posteriors = _read_posteriors(present("probabilities"), present("uncertainty"), root, lazy)
    _check_posteriors(labels.shape, *posteriors, folder, names)
    return SavedResult(
        labels=labels,
        quantized=quantized,
        table=table,
        outlines=_read_outlines(outlines) if outlines else shapes_table([], 2),
        params=params,
        model=read_model_file(model, "folder") if model else None,
        objects=objects,
        probabilities=posteriors[0],
        uncertainty=posteriors[1],
    )


def _read_posteriors(
    probabilities: Path | None, uncertainty: Path | None, root: Path, lazy: bool
) -> tuple[Any, Any]:
    """The saved probabilities and uncertainty (each None when absent)."""
    return tuple(  # type: ignore[return-value]
        None if path is None else _read_array(path, root, lazy, "posteriors")
        for path in (probabilities, uncertainty)
    )


def _check_posteriors(
    shape: tuple[int, ...],
    probabilities: Any,
    uncertainty: Any,
    folder: Path,
    names: dict[str, str],
) -> None:
    """Probabilities ``(k, *shape)`` and uncertainty ``shape``, floats, if saved."""
    if probabilities is not None and tuple(probabilities.shape[1:]) != tuple(shape):
        _fail(
            folder / names["probabilities"],
            f"probabilities: expected one plane of the labels' shape {tuple(shape)} per "
            f"cluster, got shape {tuple(probabilities.shape)}.",
        )
    if uncertainty is not None and tuple(uncertainty.shape) != tuple(shape):
        _fail(
            folder / names["uncertainty"],
            f"uncertainty: expected the labels' shape {tuple(shape)}, got "
            f"{tuple(uncertainty.shape)}.",
        )


def _read_objects(
    labels_path: Path | None,
    table_path: Path | None,
    shape: tuple[int, ...],
    info: dict[str, Any],
) -> Objects | None:
    """The saved objects: both files or neither; instance labels of the result's shape,
    a table with a row per object."""
    if labels_path is None and table_path is None:
        return None
    if labels_path is None:
        assert table_path is not None  # one of them is there
        _fail(table_path, f"objects: {FILES['objects']} is missing beside it.")
    if table_path is None:
        _fail(labels_path, f"objects: {FILES['objects_table']} is missing beside it.")
    labels = _read_tiff(labels_path)
    if tuple(labels.shape) != tuple(shape) or labels.dtype.kind not in "iu":
        _fail(
            labels_path,
            f"objects: expected whole numbers of the labels' shape {tuple(shape)}, got a "
            f"{labels.shape} array of {labels.dtype}.",
        )
    table = _read_csv(table_path, MAX_OUTLINES_BYTES, ("cluster_name",))
    if "label" not in table.columns:
        _fail(table_path, "missing column label.")
    if not table.empty:
        numbers = table["label"]
        if (
            not pd.api.types.is_integer_dtype(numbers)
            or numbers.min() < 1
            or not numbers.is_unique
        ):
            _fail(table_path, "label: expected different whole numbers of 1 or more.")
    made = info.get("objects")
    return Objects(labels, table, dict(made) if isinstance(made, dict) else {})


def _fail(path: Path, problem: str) -> NoReturn:
    raise ValueError(f"folder: {path}: {problem}")


def _read_params(path: Path) -> dict[str, Any]:
    info = read_json(path, "folder", MAX_TABLE_BYTES)
    if not isinstance(info, dict):
        _fail(path, f"expected a JSON object, got {type(info).__name__}.")
    for key, kind in (("source", str), ("params", dict), ("score", dict)):
        if key in info and not isinstance(info[key], kind):
            _fail(path, f"{key}: expected {_KIND_NAMES[kind]}, got {type(info[key]).__name__}.")
    params = info.get("params", {})
    for key, kind in (("method", str), ("image", dict)):
        if params.get(key) is not None and not isinstance(params[key], kind):
            _fail(
                path,
                f"params.{key}: expected {_KIND_NAMES[kind]}, got {type(params[key]).__name__}.",
            )
    image_kind = (params.get("image") or {}).get("kind")
    if image_kind is not None and not isinstance(image_kind, str):
        _fail(path, f"params.image.kind: expected a text, got {type(image_kind).__name__}.")
    return info


_KIND_NAMES = {str: "a text", dict: "a JSON object"}


def _read_csv(path: Path, max_bytes: int, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    text = read_text(path, "folder", max_bytes)
    try:
        return pd.read_csv(io.StringIO(text), dtype=dict.fromkeys(text_columns, str))
    except (ValueError, pd.errors.ParserError) as error:
        problem = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        _fail(path, f"not a readable CSV table ({problem}).")


def _read_table(path: Path) -> pd.DataFrame:
    table = _read_csv(path, MAX_TABLE_BYTES, ("name", "color"))
    missing = [column for column in ("label", "color") if column not in table.columns]
    if missing:
        _fail(path, f"missing column(s) {', '.join(missing)}.")
    if len(table) > MAX_TABLE_ROWS:
        _fail(path, f"{len(table)} clusters; at most {MAX_TABLE_ROWS} are read.")
    if table.empty:
        return table
    labels = table["label"]
    if not pd.api.types.is_integer_dtype(labels) or labels.min() < 1 or not labels.is_unique:
        _fail(path, "label: expected different whole numbers of 1 or more.")
    colors = table["color"]
    if not all(isinstance(c, str) and _HEX_COLOR.fullmatch(c) for c in colors):
        _fail(path, "color: expected hex colors like '#1f77b4'.")
    return table


def _read_outlines(path: Path) -> pd.DataFrame:
    table = _read_csv(path, MAX_OUTLINES_BYTES, ("shape-type",))
    axes = [column for column in table.columns if str(column).startswith("axis-")]
    missing = [c for c in ("index", "vertex-index") if c not in table.columns]
    if missing or len(axes) < 2:
        _fail(
            path,
            "expected napari's Shapes columns index, shape-type, vertex-index, "
            "axis-0, axis-1, ...",
        )
    if table.empty:
        return table
    integers = ["index", "vertex-index", *(["label"] if "label" in table.columns else [])]
    for column in integers:
        if not pd.api.types.is_integer_dtype(table[column]):
            _fail(path, f"{column}: expected whole numbers.")
    for column in axes:
        values = table[column]
        if (
            not pd.api.types.is_numeric_dtype(values)
            or not np.isfinite(values.to_numpy(dtype=float)).all()
        ):
            _fail(path, f"{column}: expected finite numbers.")
    return table


def _read_array(path: Path, root: Path, lazy: bool, key: str) -> np.ndarray | da.Array:
    """The saved array (lazily from zarr). (A folder may lack the quantized image: the
    napari writer saves it only when its layer was selected.)"""
    array: np.ndarray | da.Array = _read_zarr(path, root) if lazy else _read_tiff(path)
    if key == "labels" and (array.ndim < 2 or array.dtype.kind not in "iu"):
        _fail(
            path,
            f"labels: expected whole numbers in 2 or more dimensions, got a "
            f"{array.ndim}-D array of {array.dtype}.",
        )
    if key == "quantized" and array.dtype.kind not in "biuf":
        _fail(path, f"quantized: expected numbers, got {array.dtype}.")
    if key == "posteriors" and array.dtype.kind != "f":
        _fail(path, f"expected floats (posterior probabilities), got {array.dtype}.")
    if key == "labels" and not lazy and array.size and array.min() < 0:
        _fail(path, "labels: expected 0 or more, found negative labels.")
    return array


def _read_tiff(path: Path) -> np.ndarray:
    with open_regular(path, "folder") as handle:
        try:
            return tifffile.imread(handle, name=path.name)
        except MemoryError:
            raise
        except Exception as error:  # any parser failure is a bad file for the user
            _fail(
                path, f"not a readable TIFF ({type(error).__name__}: {str(error).strip()[:200]})."
            )


def _read_zarr(path: Path, root: Path) -> da.Array:
    import dask.array as da

    if not path.is_dir():
        _fail(path, "expected a zarr store (a folder).")
    check_tree_inside(path, root, "folder")
    try:
        return da.from_zarr(str(path))
    except MemoryError:
        raise
    except Exception as error:  # any reader failure is a bad store for the user
        _fail(
            path,
            f"not a readable zarr array ({type(error).__name__}: {str(error).strip()[:200]}).",
        )


def _check_arrays(
    labels: np.ndarray | da.Array,
    quantized: np.ndarray | da.Array | None,
    quantized_path: Path,
) -> None:
    """The quantized image has the labels' shape, with at most one channel axis more."""
    if quantized is None or quantized.shape == labels.shape:
        return
    shape = quantized.shape
    if not (
        len(shape) == len(labels.shape) + 1
        and any(shape[:i] + shape[i + 1 :] == labels.shape for i in range(len(shape)))
    ):
        _fail(quantized_path, f"shape {shape} does not match the labels' {labels.shape}.")
