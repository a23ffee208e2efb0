"""Segmentation -> napari layers: clusters (Labels), quantized (Image), outlines (Shapes),
and for methods whose model gives posteriors, probabilities and uncertainty (Image).

Plain functions that build the layers (data, keyword arguments and, off the GUI thread,
the napari layer objects themselves: tracing and triangulating outlines is the slow part);
the widget only adds them to the viewer (:func:`add_result_layers`). Every layer carries
the cluster table in ``features`` and the run's provenance in
``metadata["napari_pixel_clusters"]``.

Arrangement, bottom to top: the quantized image (hidden when the clusters layer is added:
it would show the same colors as the clusters and hide every selection), the clusters
(70 % opaque over the source image, so a cluster that is hidden or not selected shows the
image), the outlines (one bright color that contrasts with the clusters' colors). The
probabilities (one layer, the cluster axis first: napari shows a slider over the clusters,
one cluster's posterior at a time, 0..1) and the uncertainty (0..1) sit above the quantized
image, hidden like it when the clusters come with them.
Layer names say the image, the method and the run: ``astronaut k-means#2 clusters``.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from napari.layers import Layer
from napari.utils.colormaps import DirectLabelColormap, label_colormap
from napari.utils.colormaps.standardize_color import transform_color

from ..core import METHODS
from ..core.result import Segmentation

METADATA_KEY = "napari_pixel_clusters"
TRANSPARENT = np.zeros(4)
#: Regions smaller than this share of a plane get no outline polygon by default.
DEFAULT_MIN_AREA_SHARE = 0.0005
#: Outline polygons are drawn this wide, in image pixels.
OUTLINE_WIDTH = 2.0
#: Opacity of a clusters layer: the source image shows a little through it, and fully
#: where a cluster is hidden or not selected.
CLUSTERS_OPACITY = 0.7
#: How outlines can be colored: one color that contrasts with every cluster's color,
#: each region in its cluster's color, or napari's random label colors.
OUTLINE_MODES = ("contrast", "cluster", "random")
DEFAULT_OUTLINE_MODE = "contrast"
#: Bright colors an outline may take in "contrast" mode, the first best one wins.
CONTRAST_CANDIDATES = {
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0),
    "black": (0.0, 0.0, 0.0),
}
#: The candidates that stand out on both dark and bright pixels (for edges).
BRIGHT_HUES = ("yellow", "cyan", "magenta")
#: RGB distance over which a cluster color stops hiding a candidate outline color.
CONTRAST_FALLOFF = 0.25
#: The outputs made from the model's posterior probabilities (methods whose predictor has
#: ``probabilities_rows``), and their colormaps (values 0..1).
POSTERIOR_OUTPUTS = ("probabilities", "uncertainty")
POSTERIOR_COLORMAPS = {"probabilities": "magma", "uncertainty": "inferno"}


@dataclass
class Placement:
    """Where the result sits in the world: the source layer's scale and translate."""

    scale: tuple = ()
    translate: tuple = ()
    leading: int = 0  # axes of length 1 put in front (a plane of a 4-D image stays at its t)

    def kwargs(self, cluster_axis: bool = False) -> dict:
        """``scale`` and ``translate``; with ``cluster_axis`` for data with one more axis in
        front (the clusters of a probabilities layer: scale 1, no shift)."""
        if not self.scale:
            return {}
        if not cluster_axis:
            return {"scale": self.scale, "translate": self.translate}
        return {"scale": (1.0, *self.scale), "translate": (0.0, *self.translate)}

    def cluster_first(self, posteriors):
        """``(*spatial, k)`` posteriors as a probabilities layer's data: the leading axes
        of length 1 the placement needs, then the cluster axis moved in front of all."""
        posteriors = posteriors[(np.newaxis,) * self.leading] if self.leading else posteriors
        return _moveaxis(posteriors, -1, 0)

    def place(self, spec: LayerSpec) -> LayerSpec:
        """Give the layer's data the leading axes of length 1 its placement needs."""
        if self.leading == 0:
            return spec
        if spec.kind == "shapes":
            spec.data = [np.hstack([np.zeros((len(v), self.leading)), v]) for v in spec.data]
        else:
            spec.data = spec.data[(np.newaxis,) * self.leading]
        return spec


@dataclass
class LayerRequest:
    """What the user asked for: which layers, named after what, placed where."""

    source: str
    placement: Placement
    run: int
    outputs: set
    source_layer: str = ""  # the image layer's name
    plane: tuple = ()  # index of the plane segmented, for "current plane" runs
    random_colors: bool = False
    source_kwargs: dict = field(default_factory=dict)  # rgb, contrast limits, colormap, axes
    min_area: int | None = None  # outline regions; None = 0.05 % of the plane
    levels: list = field(default_factory=list)  # pyramid levels of a multiscale source
    uncertainty: str = "margin"  # how the uncertainty layer measures it (seg.uncertainty)
    pooled: dict | None = None  # a pooled fit: images, this one's index, the pooled table


@dataclass
class LayerSpec:
    """One layer to add: its type, data and keyword arguments for ``viewer.add_*``, and
    the napari layer itself once :meth:`build` made it (in the worker)."""

    kind: str  # "labels", "image" or "shapes"
    data: object
    kwargs: dict = field(default_factory=dict)
    layer: Layer | None = field(default=None, repr=False)

    def build(self) -> LayerSpec:
        """Make the napari layer now (Shapes triangulate every polygon here)."""
        self.layer = Layer.create(self.data, dict(self.kwargs), self.kind)
        return self


class RunNumbers:
    """Run numbers per image and method: 1, 2, ... shared by the layers of one run, never
    given twice by one widget, and above the number of any result of that image and
    method already in the viewer."""

    def __init__(self):
        self._last: dict[tuple[str, str], int] = {}

    def next(self, layers, image: str, method: str) -> int:
        key = (image, method)
        numbers = [
            tag.get("run_number")
            for tag in map(_tag, layers)
            if tag.get("source_layer") == image and tag.get("method") == method
        ]
        number = max([self._last.get(key, 0), *(n for n in numbers if isinstance(n, int))]) + 1
        self._last[key] = number
        return number


def _tag(layer) -> dict:
    tag = layer.metadata.get(METADATA_KEY, {})
    return tag if isinstance(tag, dict) else {}


def output_kind(method: object) -> str:
    """What the labels of the method named ``method`` are: its declared ``output``
    ("clusters" or "edges"); "clusters" for a name no registered method has (a result
    folder saved by a method since removed, or by a newer version of the plugin)."""
    known = METHODS.get(method) if isinstance(method, str) else None
    return known.output if known is not None else "clusters"


def makes_edges(seg: Segmentation) -> bool:
    """True for results of methods that find edges rather than clusters."""
    return output_kind(seg.method) == "edges"


def method_label(method: str, output: str = "") -> str:
    """The method's title as declared, shortened for layer names: without its remark in
    parentheses, and without a last word that repeats ``output`` ("Canny edges" ->
    "Canny" in "coins Canny#1 edges")."""
    title = METHODS[method].title if method in METHODS else method
    title = re.sub(r"\s*\(.*?\)", "", title).strip() or method
    words = title.split()
    if len(words) > 1 and output and words[-1].lower() == output.lower():
        words = words[:-1]
    return " ".join(words)


def run_tag(seg: Segmentation, request: LayerRequest) -> str:
    """What names the run in layer names and tags: ``k-means#2``."""
    return f"{method_label(seg.method, output_of(seg))}#{request.run}"


def output_of(seg: Segmentation) -> str:
    """The output name of ``seg``'s labels: "clusters" or "edges"."""
    return output_kind(seg.method)


def layer_name(seg: Segmentation, request: LayerRequest, output: str) -> str:
    """``<image> <method>#<run> <output>``, e.g. ``astronaut k-means#2 outlines``."""
    return f"{request.source} {run_tag(seg, request)} {output}"


def cluster_names(seg: Segmentation) -> list[str]:
    if makes_edges(seg):
        return ["edge"] * seg.n_clusters
    return [f"cluster {label}" for label in range(1, seg.n_clusters + 1)]


def cluster_features(seg: Segmentation) -> pd.DataFrame:
    """The cluster table as napari Labels features: ``index`` is the label value.

    Edges get one bright color (the candidate farthest from the edge pixels' mean), so
    that edges on a grey image stand out; clusters keep their mean colors."""
    table = seg.table.rename(columns={"label": "index"})
    table.insert(1, "name", cluster_names(seg))
    table["fraction"] = table["fraction"].round(4)
    if makes_edges(seg) and len(table):
        # edges run between dark and bright pixels: the bright hue farthest from their mean
        # (cheap for lazy images too: no pixel is read again)
        table["color"] = hex_color(contrast_color(seg.colors, candidates=BRIGHT_HUES))
    return table


def hex_color(rgba) -> str:
    return "#{:02x}{:02x}{:02x}".format(*tuple(round(255 * c) for c in np.asarray(rgba)[:3]))


def table_names_and_colors(features) -> dict[int, dict]:
    """``{label: {"name", "color" (hex)}}`` of a clusters layer's table as it is now (names
    and colors typed in Cluster table); empty for a table without those columns."""
    features = pd.DataFrame(features)
    if not {"index", "name", "color"} <= set(features.columns):
        return {}
    return {
        int(label): {"name": str(name), "color": hex_color(transform_color(color)[0])}
        for label, name, color in zip(features["index"], features["name"], features["color"])
    }


def table_colormap(table: pd.DataFrame) -> DirectLabelColormap:
    """Each label painted with the hex ``color`` of its row (``index`` = label); 0 clear."""
    colors = {None: TRANSPARENT, 0: TRANSPARENT}
    for label, hex_color in zip(table["index"], table["color"]):
        colors[int(label)] = transform_color(hex_color)[0]
    return DirectLabelColormap(color_dict=colors)


#: The dtypes a result's labels are stored in when their values fit, smallest first.
COMPACT_DTYPES = (np.uint8, np.uint16)


def narrowed_labels(labels: Any) -> Any:
    """In-memory labels in the smallest unsigned dtype that holds their values (uint8 up
    to 255, uint16 up to 65535; others as they are): napari draws such labels as they are,
    where wider ones are mapped to a texture on the GUI thread at every refresh (~200 ms
    for 4096² int32) and sent to the graphics card two or four times as large. Lazy (dask)
    and multiscale labels are left as they are (their values are not all read)."""
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu" or not labels.size:
        return labels
    if labels.dtype.kind == "i" and int(labels.min()) < 0:
        return labels
    dtype = labels_dtype(int(labels.max()), labels.dtype)
    return labels.astype(dtype) if dtype.itemsize < labels.dtype.itemsize else labels


def labels_dtype(top: int, wide: npt.DTypeLike = np.int32) -> np.dtype:
    """The smallest of ``COMPACT_DTYPES`` that holds labels 0..``top``; ``wide`` when none
    does."""
    for dtype in map(np.dtype, COMPACT_DTYPES):
        if top <= np.iinfo(dtype).max:
            return dtype
    return np.dtype(wide)


def with_color_texture(colormap: Any, dtype: npt.DTypeLike) -> Any:
    """The colormap with its table of colors for labels of ``dtype`` made now (call it in
    a worker): napari makes it on the GUI thread when the layer is first drawn and keeps
    it in the colormap. ``_get_mapping_from_cache`` is napari's private method: without
    it, napari makes the table as before (the preview uses it too)."""
    make = getattr(colormap, "_get_mapping_from_cache", None)
    if make is not None and np.dtype(dtype).itemsize <= 2:
        with contextlib.suppress(Exception):  # only a head start: napari does it anyway
            make(np.dtype(dtype))
    return colormap


def random_colormap():
    """napari's own random label colors (tell clusters apart regardless of color)."""
    return label_colormap(num_colors=49, seed=0.5)


def provenance(seg: Segmentation, request: LayerRequest, output: str) -> dict:
    """The run's tag: ``run`` ("k-means#2") with ``source`` identifies one run's layers."""
    return {
        METADATA_KEY: {
            "source": request.source,
            "source_layer": request.source_layer,
            "plane": list(request.plane),
            "method": seg.method,
            "output": output,
            "run": run_tag(seg, request),
            "run_number": request.run,
            "params": seg.params,
            "score": seg.score,
            "model": seg.model.to_dict() if seg.model is not None else None,
            **({"pooled": request.pooled} if request.pooled is not None else {}),
        }
    }


def clusters_layer(seg: Segmentation, request: LayerRequest) -> LayerSpec:
    """Clusters (Labels) in their mean colors, 70 % opaque; edges in one bright color,
    fully opaque (thin lines must stand out on any image). In-memory labels are stored
    in the smallest dtype that holds them (:func:`narrowed_labels`: uint8 for up to 255
    clusters), lazy ones as they are."""
    output = output_of(seg)
    features = cluster_features(seg)
    edges = makes_edges(seg)
    random_colors = request.random_colors and not edges
    metadata = provenance(seg, request, output)
    metadata[METADATA_KEY]["random_colors"] = random_colors
    labels = narrowed_labels(seg.labels)
    colormap = random_colormap() if random_colors else table_colormap(features)
    return LayerSpec(
        "labels",
        labels,
        {
            "name": layer_name(seg, request, output),
            "features": features,
            "colormap": with_color_texture(colormap, labels.dtype),
            "metadata": metadata,
            "opacity": 1.0 if edges else CLUSTERS_OPACITY,
            **request.placement.kwargs(),
        },
    )


def quantized_layer(seg: Segmentation, request: LayerRequest) -> LayerSpec:
    """The quantized image; hidden when the clusters layer comes with it (same colors:
    it would cover the source image that shows through unselected clusters)."""
    kwargs = {
        k: v
        for k, v in request.source_kwargs.items()
        if k in ("rgb", "contrast_limits", "colormap")
    }
    return LayerSpec(
        "image",
        seg.quantized(),
        {
            "name": layer_name(seg, request, "quantized"),
            "metadata": provenance(seg, request, "quantized"),
            "visible": "clusters" not in request.outputs,
            **kwargs,
            **request.placement.kwargs(),
        },
    )


def gives_probabilities(method: object) -> bool:
    """True when the method named ``method`` fits a model that gives posterior
    probabilities (its predictor declares ``probabilities_rows``)."""
    known = METHODS.get(method) if isinstance(method, str) else None
    predictor = getattr(known, "predictor", None)
    return predictor is not None and predictor.probabilities_rows is not None


def probabilities_layer(seg: Segmentation, request: LayerRequest) -> LayerSpec:
    """The posterior of each cluster, as ONE Image layer with the cluster axis first
    (``(k, *spatial)``): napari shows a slider over the clusters, one cluster's posterior
    at a time (plane ``i``: label ``i + 1``), 0..1 in magma. Hidden when the clusters
    come with it (it would cover them and the image). Placed (scale 1 on the cluster
    axis); lazy results give dask arrays."""
    data = request.placement.cluster_first(seg.probabilities())
    metadata = provenance(seg, request, "probabilities")
    metadata[METADATA_KEY]["labels"] = list(range(1, int(data.shape[0]) + 1))
    return LayerSpec(
        "image",
        data,
        {
            "name": layer_name(seg, request, "probabilities"),
            "metadata": metadata,
            **_posterior_kwargs("probabilities", request),
            **request.placement.kwargs(cluster_axis=True),
            **cluster_axis_labels(request.source_kwargs.get("axis_labels"), data.ndim - 1),
        },
    )


#: The name napari's slider over the clusters of a probabilities layer shows.
CLUSTER_AXIS = "cluster"


def cluster_axis_labels(spatial_labels, ndim: int) -> dict:
    """``{"axis_labels": ("cluster", *spatial)}`` for a probabilities layer with ``ndim``
    axes after the clusters: the source image's labels of those axes when they are as
    many (layers then align by them too), else napari's defaults ("-2", "-1"). Empty for
    a napari whose layers take no axis labels."""
    if not _layers_take_axis_labels():
        return {}
    spatial = tuple(spatial_labels or ())
    if len(spatial) != ndim:
        spatial = tuple(str(axis - ndim) for axis in range(ndim))
    return {"axis_labels": (CLUSTER_AXIS, *spatial)}


def _layers_take_axis_labels() -> bool:
    import inspect

    from napari.layers import Image

    return "axis_labels" in inspect.signature(Image.__init__).parameters


def uncertainty_layer(seg: Segmentation, request: LayerRequest) -> LayerSpec:
    """How uncertain each pixel's cluster is (``seg.uncertainty(request.uncertainty)``:
    1 - the largest posterior, or their entropy over log k), 0..1 in inferno."""
    data = seg.uncertainty(request.uncertainty)
    if request.placement.leading:
        data = data[(np.newaxis,) * request.placement.leading]
    metadata = provenance(seg, request, "uncertainty")
    metadata[METADATA_KEY]["uncertainty"] = request.uncertainty
    return LayerSpec(
        "image",
        data,
        {
            "name": layer_name(seg, request, "uncertainty"),
            "metadata": metadata,
            **_posterior_kwargs("uncertainty", request),
            **request.placement.kwargs(),
        },
    )


def _posterior_kwargs(output: str, request: LayerRequest) -> dict:
    return {
        "colormap": POSTERIOR_COLORMAPS[output],
        "contrast_limits": (0.0, 1.0),  # never computed from (maybe lazy) data
        "visible": "clusters" not in request.outputs,
        "blending": "translucent",
    }


def _moveaxis(array, source: int, destination: int):
    """``numpy.moveaxis`` for numpy arrays, ``dask.array.moveaxis`` for dask arrays."""
    if isinstance(array, np.ndarray):
        return np.moveaxis(array, source, destination)
    import dask.array as da

    return da.moveaxis(array, source, destination)


def _posterior_levels(seg: Segmentation, request: LayerRequest, output: str) -> list:
    """The probabilities or uncertainty of every level of a multiscale source (full size
    first), as dask arrays: the model applied to each level's own pixels (as
    ``labels_of`` does), so that napari computes only what it shows. A model with
    spatial features (positions differ between levels) gets every n-th pixel of the full
    size instead."""
    from ..core.lazy.image import read_level
    from ..core.probabilities import lazy_probabilities, lazy_uncertainty

    full = (
        seg.probabilities() if output == "probabilities" else seg.uncertainty(request.uncertainty)
    )
    labelling = seg.model.probability_labelling()
    levels = [full]
    for level in request.levels[1:]:
        data = read_level(level, seg.image)
        if labelling.pipeline["spatial_weight"] > 0:
            steps = [
                max(1, round(a / b)) for a, b in zip(seg.image.spatial_shape, data.spatial_shape)
            ]
            index = tuple(slice(None, None, s) for s in steps)
            levels.append(full[index])
        elif output == "probabilities":
            levels.append(lazy_probabilities(labelling, data))
        else:
            levels.append(lazy_uncertainty(labelling, data, request.uncertainty))
    if output == "probabilities":
        levels = [_moveaxis(level, -1, 0) for level in levels]
    return levels


def outlines_layer(seg: Segmentation, request: LayerRequest, contours, min_area: int) -> LayerSpec:
    names = cluster_names(seg)
    labels = np.array([c.label for c in contours], int)
    features = pd.DataFrame(
        {
            "label": labels,
            "name": [names[label - 1] for label in labels],
            "area": [c.area for c in contours],
        }
    )
    edge_colors = outline_colors(labels, cluster_features(seg), DEFAULT_OUTLINE_MODE)
    return LayerSpec(
        "shapes",
        [c.vertices for c in contours],
        {
            "name": layer_name(seg, request, "outlines"),
            "shape_type": "polygon",
            "edge_color": edge_colors if len(contours) else "white",
            "face_color": "transparent",
            "edge_width": OUTLINE_WIDTH,
            "features": features,
            "metadata": {
                METADATA_KEY: {
                    **provenance(seg, request, "outlines")[METADATA_KEY],
                    "min_area": int(min_area),
                    "outline_mode": DEFAULT_OUTLINE_MODE,
                }
            },
            **request.placement.kwargs(),
        },
    )


def default_min_area(labels: np.ndarray) -> int:
    """Outline regions of at least 0.05 % of a plane: a few hundred on a 512² photo."""
    return max(1, int(DEFAULT_MIN_AREA_SHARE * labels.shape[-1] * labels.shape[-2]))


def result_layers(seg: Segmentation, request: LayerRequest, build: bool = True) -> list[LayerSpec]:
    """Every requested layer, bottom to top: quantized, probabilities, uncertainty,
    clusters, outlines. Call it off the GUI thread (the posteriors are computed here):
    with ``build`` the napari layers are made here too (see :func:`add_result_layers`).

    Lazy results stay lazy (dask arrays; a pyramid when the source is multiscale), and
    get no outlines: tracing them would compute every pixel. Probabilities and
    uncertainty are made only for methods that give them (:func:`gives_probabilities`).
    """
    specs = []
    lazy = seg.is_lazy
    pyramid = lazy and len(request.levels) > 1
    if "quantized" in request.outputs:
        specs.append(quantized_layer(seg, request))
        if pyramid:
            specs[-1].data = [specs[-1].data, *map(seg.quantized_of, request.levels[1:])]
    if "clusters" in request.outputs:
        specs.append(clusters_layer(seg, request))
        if pyramid:
            specs[-1].data = [specs[-1].data, *map(seg.labels_of, request.levels[1:])]
    if "outlines" in request.outputs and not lazy:
        min_area = request.min_area or default_min_area(seg.labels)
        specs.append(outlines_layer(seg, request, seg.contours(min_area=min_area), min_area))
    specs = [request.placement.place(spec) for spec in specs]
    posteriors = []  # placed by themselves (the cluster axis goes in front of all)
    if gives_probabilities(seg.method):
        makers = {"probabilities": probabilities_layer, "uncertainty": uncertainty_layer}
        for output in POSTERIOR_OUTPUTS:
            if output in request.outputs:
                posteriors.append(makers[output](seg, request))
                if pyramid:
                    posteriors[-1].data = _posterior_levels(seg, request, output)
    below = int("quantized" in request.outputs)
    specs[below:below] = posteriors
    return [spec.build() for spec in specs] if build else specs


def add_result_layers(viewer, specs: list[LayerSpec], breathe: bool = True) -> list:
    """Add the layers (those :meth:`LayerSpec.build` made, else from data and keyword
    arguments) in order; the clusters layer becomes the selected one. Returns them.

    napari needs ~50-200 ms of GUI time per layer (its visual, overlays, first draw);
    with ``breathe`` pending events (repaints, timers, input) are processed after each
    layer, so the interface freezes for one layer at a time, not for all of them.
    """
    added = []
    for spec in specs:
        layer = (
            spec.layer
            if spec.layer is not None
            else Layer.create(spec.data, dict(spec.kwargs), spec.kind)
        )
        added.append(viewer.add_layer(layer))
        if breathe:
            _process_events()
    clusters = [layer for layer in added if _tag(layer).get("output") in ("clusters", "edges")]
    if clusters and clusters[-1] in viewer.layers:
        viewer.layers.selection.active = clusters[-1]
    return added


def _process_events() -> None:
    from qtpy.QtWidgets import QApplication

    if QApplication.instance() is not None:
        QApplication.processEvents()


def run_layers(layers, layer, output: str | None = None) -> list:
    """The layers of ``layer``'s run (same source and run), optionally of one ``output``."""
    tag = _tag(layer)
    if not tag:
        return []
    return [
        other
        for other in layers
        if _tag(other).get("source") == tag.get("source")
        and _tag(other).get("run") == tag.get("run")
        and (output is None or _tag(other).get("output") == output)
    ]


def chosen_clusters_layer(layers, active=None):
    """The clusters layer a toggle acts on: that of the run of the ``active`` layer, else
    the newest (topmost) clusters layer of this plugin; None when there is none."""
    if active is not None:
        of_run = run_layers(layers, active, "clusters")
        if of_run:
            return of_run[-1]
    ours = [layer for layer in layers if _tag(layer).get("output") == "clusters"]
    return ours[-1] if ours else None


def recolor_clusters(layer, random_colors: bool) -> None:
    """Show one clusters layer in napari's random colors or in its table's colors (the
    other results keep theirs); remembered in its tag as ``random_colors``."""
    layer.colormap = random_colormap() if random_colors else table_colormap(layer.features)
    tag = _tag(layer)
    if tag:
        tag["random_colors"] = bool(random_colors)


def contrast_color(
    colors: np.ndarray, weights=None, candidates: tuple[str, ...] = tuple(CONTRAST_CANDIDATES)
) -> np.ndarray:
    """RGBA of the candidate color (names from ``CONTRAST_CANDIDATES``) that blends least
    into the cluster ``colors`` (RGB in [0, 1]).

    Each cluster pulls a candidate in by exp(-distance / ``CONTRAST_FALLOFF``), weighted
    by ``weights`` (e.g. pixel fractions): a color close only to a tiny cluster still
    wins over one close to the background. Ties go to the first candidate.
    """
    candidates = np.array([CONTRAST_CANDIDATES[name] for name in candidates])
    colors = np.asarray(colors, float).reshape(-1, 3)
    if len(colors) == 0:
        return np.array([*candidates[0], 1.0])
    weights = np.ones(len(colors)) if weights is None else np.asarray(weights, float)
    distance = np.linalg.norm(candidates[:, None, :] - colors[None, :, :], axis=-1)
    # how much of the image each candidate blends into (near colors count most)
    blending = (np.exp(-distance / CONTRAST_FALLOFF) * weights[None, :]).sum(axis=1)
    best = int(np.flatnonzero(blending <= blending.min() * (1 + 1e-9) + 1e-12)[0])
    return np.array([*candidates[best], 1.0])


def feature_colors(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(labels, RGBA) of every cluster row of a clusters layer's ``features``."""
    labels = np.asarray(features["index"], int)
    return labels, np.array([transform_color(c)[0] for c in features["color"]]).reshape(-1, 4)


def outline_colors(labels: np.ndarray, features: pd.DataFrame, mode: str) -> np.ndarray:
    """(n, 4) RGBA of outlines of regions with these ``labels`` in ``mode`` (see
    ``OUTLINE_MODES``); ValueError naming ``mode`` for anything else."""
    if mode not in OUTLINE_MODES:
        raise ValueError(f"mode: must be one of {', '.join(OUTLINE_MODES)}; got {mode!r}.")
    labels = np.asarray(labels, int)
    if mode == "random":
        return np.asarray(random_colormap().map(labels)).reshape(-1, 4)
    cluster_labels, colors = feature_colors(features)
    if mode == "contrast":
        weights = features.get("fraction", None)
        return np.tile(contrast_color(colors[:, :3], weights), (len(labels), 1))
    lookup = np.zeros((max(int(cluster_labels.max(initial=0)), int(labels.max(initial=0))) + 1, 4))
    lookup[:, 3] = 1.0
    lookup[cluster_labels] = colors
    return lookup[labels]


def style_outlines(
    outlines_layer, features: pd.DataFrame, mode: str, width: float | None = None
) -> None:
    """Color an outlines Shapes layer in ``mode`` and optionally set its line ``width``.

    ``features`` is the clusters layer's table (``index`` = label, hex ``color``,
    ``fraction``): "contrast" draws every outline in the one bright color farthest from
    the clusters' colors, "cluster" each in its cluster's color, "random" in napari's
    random label colors (those of a clusters layer shown in random colors). The mode is
    remembered in the layer's metadata (``outline_mode``).
    """
    if width is not None and not width > 0:
        raise ValueError(f"width: must be positive, got {width}.")
    if len(outlines_layer.data):
        labels = np.asarray(outlines_layer.features["label"], int)
        outlines_layer.edge_color = outline_colors(labels, features, mode)
        if width is not None:
            outlines_layer.edge_width = float(width)
    else:
        outline_colors(np.zeros(0, int), features, mode)  # still checks the mode
    tag = outlines_layer.metadata.get(METADATA_KEY)
    if isinstance(tag, dict):
        tag["outline_mode"] = mode
        if width is not None:
            tag["outline_width"] = float(width)
