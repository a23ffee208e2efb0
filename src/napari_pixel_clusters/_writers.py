"""npe2 writers: a clusters or objects layer's table as CSV, and a whole result as a folder.

The folder has the same files as :func:`napari_pixel_clusters.write_result`, so
:func:`napari_pixel_clusters.read_result` reads it back, and napari opens its TIFF and
CSV files (File > Open).

Neither writer removes or overwrites anything it did not create: the folder writer
refuses an existing non-empty path (napari's save dialog asks nothing for folders), and
the table writer, whose CSV napari's own dialog confirms before overwriting, refuses to
replace a ``.json`` sidecar that is not one it wrote.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .core.export import (
    FILES,
    RESULT_FORMAT,
    ZARR_FILES,
    is_empty_folder,
    is_our_json,
    shapes_table,
    staged_folder,
    write_tiff,
    write_zarr,
)
from .core.files import read_json
from .core.lazy import as_dask, is_lazy, is_multiscale
from .core.model import Model, save_model
from .gui.layers import METADATA_KEY, table_names_and_colors


def _tag(attributes: dict[str, Any]) -> dict[str, Any]:
    return attributes.get("metadata", {}).get(METADATA_KEY, {})


#: ``format`` of the table's JSON sidecar: marks it as one we wrote (and may replace).
TABLE_FORMAT = "napari-pixel-clusters table"
#: Sidecars larger than this are not ours (ours are a few kB).
MAX_SIDECAR_BYTES = 16 * 2**20


def _provenance(attributes: dict[str, Any], format_name: str) -> dict[str, Any]:
    tag = _tag(attributes)
    info = {
        "format": format_name,
        "source": tag.get("source", attributes.get("name")),
        "layer": attributes.get("name"),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": tag.get("params", {}),
        "score": tag.get("score", {}),
    }
    if tag.get("output") == "objects":  # how the objects were made (Cluster table)
        info["objects"] = {
            key: tag.get(key)
            for key in ("clusters_layer", "clusters", "connectivity", "objects", "count")
        }
    return info


def write_table(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """The table (``layer.features``) of a clusters layer (one row per cluster) or of an
    objects layer (one row per object, as ``seg.objects(...).table``), as CSV with its
    provenance in a ``.json`` sidecar of the same name (``label`` is the column napari
    calls ``index``).

    The CSV replaces an existing file (napari's save dialog asks first); the sidecar
    replaces only a sidecar we wrote: any other existing file of that name is a
    ``ValueError`` and nothing is written. Both files are written under temporary names
    and renamed."""
    features = pd.DataFrame(attributes.get("features", {}))
    if features.empty:
        raise ValueError(f"'{attributes.get('name')}' has no table (features) to save.")
    table_path = Path(path)
    sidecar = table_path.with_suffix(".json")
    if sidecar == table_path:
        raise ValueError(f"path: {table_path} is a .json name; save the table as .csv.")
    if os.path.lexists(sidecar) and not _is_our_sidecar(sidecar):
        raise ValueError(
            f"path: {sidecar} exists already and was not written by "
            "napari-pixel-clusters, so the table's provenance cannot be saved "
            "beside it; choose another name."
        )
    csv_text = features.rename(columns={"index": "label"}).to_csv(index=False)
    sidecar_text = json.dumps(_provenance(attributes, TABLE_FORMAT), indent=1, default=str)
    for target, text in ((table_path, csv_text), (sidecar, sidecar_text)):
        _replace_file(target, text)
    return [path, str(sidecar)]


def _is_our_sidecar(sidecar: Path) -> bool:
    if sidecar.is_symlink():
        return False
    try:
        content = read_json(sidecar, "path", MAX_SIDECAR_BYTES)
    except ValueError:
        return False
    return is_our_json(content, TABLE_FORMAT, ("layer", "written", "params"))


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a new temporary file beside ``path`` and rename it to ``path``."""
    temporary = path.with_name(f".{path.name}-{secrets.token_hex(6)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise ValueError(f"path: cannot write {path}: {error.strerror or error}.") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise ValueError(f"path: cannot write {path}: {error.strerror or error}.") from None
        raise


def write_result_folder(path: str, layer_data: list[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """Clusters (Labels), and optionally quantized (Image) and outlines (Shapes), as a
    result folder: labels.tif, quantized.tif, table.csv, outlines.csv, params.json,
    model.json.

    The folder is ``path`` exactly as given (``mydata.v2`` is a folder of that name). It
    must not exist yet or be empty: an existing non-empty path is a ``ValueError`` and is
    left untouched (napari's dialog does not ask before saving to a folder)."""
    folder = Path(path)
    if os.path.lexists(folder) and not is_empty_folder(folder):
        raise ValueError(
            f"path: {folder} exists already; choose a new folder name (napari "
            "never replaces an existing file or folder with a result folder)."
        )
    by_type = {layer_type: (data, attributes) for data, attributes, layer_type in layer_data}
    if "labels" not in by_type:
        raise ValueError("Select a clusters (Labels) layer to save a result folder.")
    labels, attributes = by_type["labels"]
    tag = _tag(attributes)
    info = _provenance(attributes, RESULT_FORMAT)
    with staged_folder(folder) as staging:
        write_array(staging, "labels", written_labels(labels, tag), info)
        if "image" in by_type:
            write_array(staging, "quantized", by_type["image"][0], info)
        features = pd.DataFrame(attributes.get("features", {}))
        features.rename(columns={"index": "label"}).to_csv(staging / FILES["table"], index=False)
        if "shapes" in by_type:
            polygons, shapes_attributes = by_type["shapes"]
            ndim = len(polygons[0][0]) if len(polygons) else np.ndim(labels)
            polygon_labels = pd.DataFrame(shapes_attributes.get("features", {})).get("label")
            shapes_table(polygons, ndim, polygon_labels).to_csv(
                staging / FILES["outlines"], index=False
            )
        (staging / FILES["params"]).write_text(json.dumps(info, indent=1, default=str))
        if tag.get("model"):
            model = Model.from_dict(tag["model"], what="model").with_cluster_names(
                table_names_and_colors(attributes.get("features", {}))
            )
            save_model(model, staging / FILES["model"])
    return [str(folder)]


#: The dtype result folders hold their labels in (that of ``seg.labels`` and of
#: :func:`napari_pixel_clusters.write_result`).
LABELS_DTYPE = np.int32


def written_labels(labels: Any, tag: dict[str, Any]) -> Any:
    """The labels of one of our results as a folder holds them: in ``LABELS_DTYPE``,
    like those ``write_result`` writes, though the layer keeps them in uint8 or uint16
    (see ``gui.layers.narrowed_labels``). Other layers' and lazy labels as they are."""
    if (
        tag
        and isinstance(labels, np.ndarray)
        and labels.dtype.kind == "u"
        and labels.dtype.itemsize < np.dtype(LABELS_DTYPE).itemsize
    ):
        return labels.astype(LABELS_DTYPE)
    return labels


def write_array(folder: Path, key: str, data: Any, info: dict[str, Any]) -> None:
    """A layer's data as TIFF, or, for a large (lazy or multiscale) layer, its full-size
    level as a zarr store written chunk by chunk."""
    full_size = data[0] if is_multiscale(data) else data
    if is_lazy(full_size):
        write_zarr(folder / ZARR_FILES[key], as_dask(full_size), info)
    else:
        write_tiff(folder / FILES[key], full_size, info)
