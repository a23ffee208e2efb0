"""Objects from a clusters layer: what the Cluster table's "Make objects" does.

The connected regions of chosen clusters in the layer's CURRENT labels (after merges and
painting), named by its current table, become an instance Labels layer
``<clusters layer> objects`` placed exactly over it (same scale, translate, rotation,
shear and affine), in bright label colors cycled over the objects (:data:`OBJECT_COLORS`:
napari's random colors start with a dark brown, the color of DAB), whose ``features`` are the
measurements of :func:`~napari_pixel_clusters.core.objects.label_objects` (area or volume
and centroid in the layer's physical units, perimeter in 2-D, the mean of each channel of
the source image when that image is open and fits, bounding box), with ``index`` as the
label column (napari shows an object's row on hover; the CSV writer names it ``label``).

:func:`objects_job` reads the layers on the GUI thread (cheap: a copy of the labels and
the table); :func:`build_objects_layer` measures and builds the layer in a worker;
nothing of the input layers is changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from napari.layers import Image, Labels, Layer
from napari.utils.colormaps import CyclicLabelColormap
from napari.utils.colormaps.standardize_color import transform_color

from ..core.image import read_image
from ..core.lazy import is_lazy
from ..core.objects import Objects, label_objects, object_counts
from .layers import METADATA_KEY, narrowed_labels, with_color_texture

OUTPUT = "objects"
#: Connectivity choices: (shown as, value for ``label_objects``; None = every axis).
CONNECTIVITIES = (("full (corners join)", "full"), ("face (edges only)", "face"))
DEFAULT_CONNECTIVITY = "full"  # what seg.objects does by default
#: Colors of objects 1, 2, ... (then again): bright hues, apart from stained tissue and
#: from each other (matplotlib's tab10 without brown and grey, then their light tints).
OBJECT_COLORS = (
    *("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#e377c2", "#bcbd22", "#17becf"),
    *("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#f7b6d2", "#dbdb8d", "#9edae5"),
)


def objects_colormap() -> CyclicLabelColormap:
    """:data:`OBJECT_COLORS` cycled over the labels; 0 transparent."""
    colors = np.vstack([np.zeros(4), transform_color(list(OBJECT_COLORS))])
    return CyclicLabelColormap(colors=colors, background_value=0)


def connectivity_value(choice: str) -> int | None:
    """``"face"`` -> 1 (pixels sharing an edge), ``"full"`` -> None (every axis)."""
    return 1 if choice == "face" else None


@dataclass
class ObjectsJob:
    """What making objects needs, read from the layers on the GUI thread."""

    labels: np.ndarray  # the clusters as they are now (a plane's axes of length 1 dropped)
    table: pd.DataFrame  # the clusters layer's features (names, which clusters exist)
    clusters: list[int]
    connectivity: int | None
    scale: tuple[float, ...]  # pixel size along the axes of ``labels``
    leading: int  # axes of length 1 in front of ``labels`` in the layer (a plane)
    layer_kwargs: dict[str, Any]  # name, placement, metadata of the new layer
    image: Any = None  # the source image's pixels over ``labels`` (None: no means)
    rgb: bool = False
    notes: list[str] = field(default_factory=list)  # why there are no means, if so


def plane_axes(layer: Labels) -> int:
    """How many leading axes of length 1 the layer has for a one-plane run."""
    plane = layer.metadata.get(METADATA_KEY, {}).get("plane") or []
    shape = np.shape(layer.data)
    leading = len(plane)
    return leading if leading < len(shape) - 1 and all(n == 1 for n in shape[:leading]) else 0


def editable_labels(layer: Labels) -> np.ndarray | None:
    """The layer's labels in memory, or None (a lazy or multiscale result)."""
    if layer.multiscale or not isinstance(layer.data, np.ndarray):
        return None
    return layer.data


def objects_job(viewer, layer: Labels, clusters: list[int], choice: str) -> ObjectsJob:
    """Everything :func:`build_objects_layer` needs, or ValueError saying what is wrong."""
    data = editable_labels(layer)
    if data is None:
        raise ValueError(
            f"'{layer.name}' is a lazy result of a large image: objects need its labels in "
            "memory. Segment the image in memory (or a smaller level) to make objects."
        )
    leading = plane_axes(layer)
    labels = np.array(data[(0,) * leading])  # a copy: the result of this moment
    tag = dict(layer.metadata.get(METADATA_KEY, {}))
    job = ObjectsJob(
        labels=labels,
        table=layer.features.copy(),
        clusters=list(clusters),
        connectivity=connectivity_value(choice),
        scale=tuple(float(s) for s in layer.scale[leading:]),
        leading=leading,
        layer_kwargs=_layer_kwargs(layer, tag, clusters, choice),
    )
    _add_source_image(job, viewer, tag)
    return job


def _layer_kwargs(layer: Labels, tag: dict, clusters: list[int], choice: str) -> dict:
    made = {
        "output": OUTPUT,
        "source": tag.get("source", layer.name),
        "source_layer": tag.get("source_layer", ""),
        "plane": list(tag.get("plane") or []),
        "run": tag.get("run", ""),
        "params": tag.get("params", {}),
        "clusters_layer": layer.name,
        "clusters": [int(c) for c in clusters],
        "connectivity": choice,
    }
    return {
        "name": f"{layer.name} {OUTPUT}",
        "scale": tuple(layer.scale),
        "translate": tuple(layer.translate),
        "rotate": np.array(layer.rotate),
        "shear": np.array(layer.shear),
        "affine": np.array(layer.affine.affine_matrix),
        "metadata": {METADATA_KEY: made},
        "colormap": objects_colormap(),
    }


def _add_source_image(job: ObjectsJob, viewer, tag: dict) -> None:
    """The source image's pixels over the labels (for the means), or a note why not."""
    name = tag.get("source_layer") or ""
    source = next((layer for layer in viewer.layers if layer.name == name), None)
    if not isinstance(source, Image):
        job.notes.append(f"no mean colors: the image '{name}' it was made from is not open")
        return
    if source.multiscale or is_lazy(source.data):
        job.notes.append(f"no mean colors: '{name}' is a large (lazy) image")
        return
    pixels = source.data
    plane = tag.get("plane") or []
    if plane:
        pixels = pixels[tuple(plane)]
    spatial = pixels.shape[:-1] if source.rgb else pixels.shape
    if tuple(spatial) != job.labels.shape:
        job.notes.append(f"no mean colors: '{name}' no longer has the labels' shape")
        return
    job.image, job.rgb = pixels, bool(source.rgb)


def measure_objects(job: ObjectsJob) -> Objects:
    """The objects of ``job`` (in the worker); the means when the image is usable."""
    image = None
    if job.image is not None:
        try:
            image = read_image(np.asarray(job.image), rgb=job.rgb)
        except ValueError as error:
            job.notes.append(f"no mean colors: {error}")
    return label_objects(
        job.labels, job.clusters, job.table, job.connectivity, job.scale, image=image
    )


def build_objects_layer(job: ObjectsJob) -> tuple[Objects, Layer]:
    """In the worker: measure the objects and make their Labels layer."""
    objects = measure_objects(job)
    kwargs = dict(job.layer_kwargs)
    tag = kwargs["metadata"][METADATA_KEY]
    tag["objects"] = objects.params
    tag["count"] = len(objects.table)
    kwargs["features"] = objects.table.rename(columns={"label": "index"})
    data = narrowed_labels(objects.labels)[(np.newaxis,) * job.leading]  # uint8/16 if they fit
    kwargs["colormap"] = with_color_texture(kwargs["colormap"], data.dtype)
    return objects, Layer.create(data, kwargs, "labels")


def count_objects(labels: np.ndarray, leading: int, choice: str) -> np.ndarray:
    """Objects of every cluster (``counts[c]``) in a clusters layer's labels."""
    return object_counts(labels[(0,) * leading], connectivity_value(choice))


def summary(objects: Objects, names: list[str]) -> str:
    """``12 objects from cluster DAB``, ``40 objects from clusters 1, 3`` (default names
    "cluster <n>" shown as their number)."""
    count = len(objects.table)
    shown = [re.sub(r"^cluster (\d+)$", r"\1", name) for name in names]
    clusters = "cluster" if len(names) == 1 else "clusters"
    return f"{count} object{'' if count == 1 else 's'} from {clusters} {', '.join(shown)}"
