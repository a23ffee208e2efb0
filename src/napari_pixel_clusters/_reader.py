"""npe2 reader: a result folder back into napari, as the layers that were saved.

Open the folder's ``params.json`` (File > Open): the clusters come back as a Labels layer
with their table (names, counts, mean colors), colors, parameters and model (so "Apply
model" and the Cluster table work on it), with the quantized image and the outlines, and
the objects (if saved) as a Labels layer in bright colors with their
measurements as features, and the posterior probabilities (if saved: ``probabilities.tif``,
one Image layer with the cluster axis first, and ``uncertainty.tif``) as Pixel clusters
shows them: hidden, 0..1, in magma and inferno.
Zarr results (of large images) open lazily, as a pyramid.

The folder is untrusted input: :func:`~.core.export.read_result` checks every file and
field first, so a bad folder is one ``ValueError`` starting with ``folder:`` (naming the
file and the field), which napari shows as one notification.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from .core.export import read_result
from .core.image import guess_rgb
from .core.lazy import is_lazy
from .gui.layers import (
    CLUSTERS_OPACITY,
    DEFAULT_OUTLINE_MODE,
    METADATA_KEY,
    OUTLINE_WIDTH,
    POSTERIOR_COLORMAPS,
    cluster_axis_labels,
    narrowed_labels,
    outline_colors,
    output_kind,
    table_colormap,
)
from .gui.objects import objects_colormap

if TYPE_CHECKING:
    import dask.array as da

#: A layer as npe2 readers give it: (data, layer keyword arguments, layer type).
LayerData: TypeAlias = tuple[Any, dict[str, Any], str]
#: What napari hands a reader: one path, or a list of them.
PathOrPaths: TypeAlias = "str | Path | list[str | Path] | tuple[str | Path, ...]"

#: Lazy results get pyramid levels (every 2nd pixel) until the smallest is at most this.
SMALLEST_LEVEL = 1024


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """The reader for a result folder's ``params.json``; None for anything else."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(path)
    folder = path.parent
    is_result = (
        path.name == "params.json"
        and (folder / "table.csv").exists()
        and ((folder / "labels.tif").exists() or (folder / "labels.zarr").exists())
    )
    return read_result_folder if is_result else None


def read_result_folder(path: PathOrPaths) -> list[LayerData]:
    """Layer data of a result folder, arranged as Pixel clusters adds them: quantized
    image, probabilities and uncertainty (hidden), clusters, outlines (on top)."""
    folder = Path(path[0] if isinstance(path, (list, tuple)) else path).parent
    saved = read_result(folder)
    info = saved.params
    params = info.get("params", {})
    output = output_kind(params.get("method"))  # "clusters" for a method we do not know
    tag = {
        "source": info.get("source") or folder.name,
        "source_layer": "",
        "plane": [],
        "method": params.get("method"),
        "output": output,
        "run": f"opened {folder}",
        "params": params,
        "score": info.get("score", {}),
        "model": saved.model.to_dict() if saved.model is not None else None,
    }
    features = _cluster_features(saved.table)
    name = folder.name
    layers: list[LayerData] = []
    if saved.quantized is not None:
        rgb = _is_rgb(saved.quantized, saved.labels.shape, params)
        layers.append(
            (
                _pyramid(saved.quantized, rgb=rgb),
                {
                    "name": f"{name} quantized",
                    "rgb": rgb,
                    "visible": False,
                    "metadata": {METADATA_KEY: {**tag, "output": "quantized"}},
                },
                "image",
            )
        )
    layers += _posterior_layers(saved.probabilities, saved.uncertainty, info, name, tag)
    layers.append(
        (
            _pyramid(narrowed_labels(saved.labels), rgb=False),
            {
                "name": f"{name} {output}",
                "features": features,
                "colormap": table_colormap(features),
                "opacity": CLUSTERS_OPACITY,
                "metadata": {METADATA_KEY: tag},
            },
            "labels",
        )
    )
    if not saved.outlines.empty:
        layers.append(_outlines(saved.outlines, features, name, tag))
    if saved.objects is not None:
        objects_tag = {**tag, "output": "objects", "objects": saved.objects.params}
        layers.append(
            (
                narrowed_labels(saved.objects.labels),
                {
                    "name": f"{name} objects",
                    "features": saved.objects.table.rename(columns={"label": "index"}),
                    "colormap": objects_colormap(),
                    "metadata": {METADATA_KEY: objects_tag},
                },
                "labels",
            )
        )
    return layers


def _posterior_layers(
    probabilities: np.ndarray | da.Array | None,
    uncertainty: np.ndarray | da.Array | None,
    info: dict[str, Any],
    name: str,
    tag: dict[str, Any],
) -> list[LayerData]:
    """The saved probabilities (``(k, *spatial)``: napari's slider goes over the
    clusters) and uncertainty, each an Image layer 0..1, hidden (under the clusters)."""
    record = info.get("probabilities")
    record = record if isinstance(record, dict) else {}
    layers: list[LayerData] = []
    for output, array in (("probabilities", probabilities), ("uncertainty", uncertainty)):
        if array is None:
            continue
        output_tag = {**tag, "output": output}
        axes: dict[str, Any] = {}
        if output == "probabilities":
            output_tag["labels"] = list(range(1, int(array.shape[0]) + 1))
            axes = cluster_axis_labels(None, array.ndim - 1)
        elif isinstance(record.get("uncertainty"), str):
            output_tag["uncertainty"] = record["uncertainty"]
        layers.append(
            (
                _pyramid(array, rgb=False),
                {
                    "name": f"{name} {output}",
                    "colormap": POSTERIOR_COLORMAPS[output],
                    "contrast_limits": (0.0, 1.0),
                    "visible": False,
                    "metadata": {METADATA_KEY: output_tag},
                    **axes,
                },
                "image",
            )
        )
    return layers


def _cluster_features(table: pd.DataFrame) -> pd.DataFrame:
    features = table.rename(columns={"label": "index"})
    if "name" not in features:
        features.insert(1, "name", [f"cluster {i}" for i in features["index"]])
    return features


def _is_rgb(
    quantized: np.ndarray | da.Array, labels_shape: tuple[int, ...], params: dict[str, Any]
) -> bool:
    """RGB(A) when the saved parameters say so (else as napari guesses), and only if the
    quantized image has the labels' shape plus a last axis of 3 or 4."""
    fits = quantized.shape[:-1] == tuple(labels_shape) and quantized.shape[-1] in (3, 4)
    kind = (params.get("image") or {}).get("kind")
    return fits and (kind in ("rgb", "rgba") if kind else guess_rgb(quantized.shape))


def _pyramid(
    array: np.ndarray | da.Array, rgb: bool
) -> np.ndarray | da.Array | list[np.ndarray | da.Array]:
    """Lazy arrays as every-2nd-pixel levels (napari then computes only what is shown)."""
    if not is_lazy(array):
        return array
    spatial = array.shape[:-1] if rgb else array.shape
    levels = [array]
    while max(spatial[-2:]) / 2 ** (len(levels) - 1) > SMALLEST_LEVEL:
        step = 2 ** len(levels)
        index = (Ellipsis, slice(None, None, step), slice(None, None, step))
        levels.append(array[index + ((slice(None),) if rgb else ())])
    return levels if len(levels) > 1 else array


def _outlines(
    table: pd.DataFrame, features: pd.DataFrame, name: str, tag: dict[str, Any]
) -> LayerData:
    axes = [column for column in table.columns if column.startswith("axis-")]
    polygons = [
        group[axes].to_numpy(dtype=float)
        for _, group in table.sort_values(["index", "vertex-index"]).groupby("index")
    ]
    first = table.groupby("index").first()
    labels = (
        first["label"].to_numpy(dtype=int)
        if "label" in first
        else np.zeros(len(polygons), dtype=int)
    )
    names = dict(zip(features["index"], features["name"]))
    return (
        polygons,
        {
            "name": f"{name} outlines",
            "shape_type": "polygon",
            "face_color": "transparent",
            "edge_color": outline_colors(labels, features, DEFAULT_OUTLINE_MODE)
            if len(labels)
            else "white",
            "edge_width": OUTLINE_WIDTH,
            "features": pd.DataFrame(
                {"label": labels, "name": [names.get(label, "") for label in labels]}
            ),
            "metadata": {METADATA_KEY: {**tag, "output": "outlines"}},
        },
        "shapes",
    )
