"""Segmentation -> napari layers: clusters (Labels), quantized (Image), outlines (Shapes).

Plain functions that build the layers' data and keyword arguments; the widget only adds
them to the viewer. Every layer carries the cluster table in ``features`` and the run's
provenance in ``metadata["napari_pixel_clusters"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from napari.utils.colormaps import DirectLabelColormap, label_colormap
from napari.utils.colormaps.standardize_color import transform_color

from ..core.result import Segmentation

METADATA_KEY = "napari_pixel_clusters"
TRANSPARENT = np.zeros(4)
#: Regions smaller than this share of a plane get no outline polygon by default.
DEFAULT_MIN_AREA_SHARE = 0.0005
#: Outline polygons are drawn this wide, in image pixels.
OUTLINE_WIDTH = 2.0
#: How outlines can be coloured: one colour that contrasts with every cluster's colour,
#: each region in its cluster's colour, or napari's random label colours.
OUTLINE_MODES = ("contrast", "cluster", "random")
DEFAULT_OUTLINE_MODE = "contrast"
#: Bright colours an outline may take in "contrast" mode, the first best one wins.
CONTRAST_CANDIDATES = {
    "yellow": (1.0, 1.0, 0.0), "cyan": (0.0, 1.0, 1.0), "magenta": (1.0, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0),
}
#: RGB distance over which a cluster colour stops hiding a candidate outline colour.
CONTRAST_FALLOFF = 0.25


@dataclass
class Placement:
    """Where the result sits in the world: the source layer's scale and translate."""

    scale: tuple = ()
    translate: tuple = ()
    leading: int = 0  # axes of length 1 put in front (a plane of a 4-D image stays at its t)

    def kwargs(self) -> dict:
        return {"scale": self.scale, "translate": self.translate} if self.scale else {}

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
    source_kwargs: dict = field(default_factory=dict)  # rgb, contrast limits, colormap
    min_area: int | None = None  # outline regions; None = 0.05 % of the plane
    levels: list = field(default_factory=list)  # pyramid levels of a multiscale source


@dataclass
class LayerSpec:
    """One layer to add: its type, data and keyword arguments for ``viewer.add_*``."""

    kind: str  # "labels", "image" or "shapes"
    data: object
    kwargs: dict = field(default_factory=dict)


def cluster_names(seg: Segmentation) -> list[str]:
    if seg.method == "canny":
        return ["edge"] * seg.n_clusters
    return [f"cluster {label}" for label in range(1, seg.n_clusters + 1)]


def cluster_features(seg: Segmentation) -> pd.DataFrame:
    """The cluster table as napari Labels features: ``index`` is the label value."""
    table = seg.table.rename(columns={"label": "index"})
    table.insert(1, "name", cluster_names(seg))
    table["fraction"] = table["fraction"].round(4)
    return table


def table_colormap(table: pd.DataFrame) -> DirectLabelColormap:
    """Each label painted with the hex ``color`` of its row (``index`` = label); 0 clear."""
    colours = {None: TRANSPARENT, 0: TRANSPARENT}
    for label, hex_color in zip(table["index"], table["color"]):
        colours[int(label)] = transform_color(hex_color)[0]
    return DirectLabelColormap(color_dict=colours)


def random_colormap():
    """napari's own random label colours (tell clusters apart regardless of colour)."""
    return label_colormap(num_colors=49, seed=0.5)


def provenance(seg: Segmentation, request: LayerRequest, output: str) -> dict:
    return {METADATA_KEY: {"source": request.source, "source_layer": request.source_layer,
                           "plane": list(request.plane), "method": seg.method,
                           "output": output, "run": request.run, "params": seg.params,
                           "score": seg.score,
                           "model": seg.model.to_dict() if seg.model is not None else None}}


def clusters_layer(seg: Segmentation, request: LayerRequest) -> LayerSpec:
    output = "edges" if seg.method == "canny" else "clusters"
    features = cluster_features(seg)
    return LayerSpec("labels", seg.labels, {
        "name": f"{request.source} {output}",
        "features": features,
        "colormap": random_colormap() if request.random_colors else table_colormap(features),
        "metadata": provenance(seg, request, output),
        "opacity": 0.7,
        **request.placement.kwargs(),
    })


def quantized_layer(seg: Segmentation, request: LayerRequest) -> LayerSpec:
    kwargs = {k: v for k, v in request.source_kwargs.items()
              if k in ("rgb", "contrast_limits", "colormap")}
    return LayerSpec("image", seg.quantized(), {
        "name": f"{request.source} quantized",
        "metadata": provenance(seg, request, "quantized"),
        **kwargs,
        **request.placement.kwargs(),
    })


def label_colors(seg: Segmentation, random_colors: bool) -> np.ndarray:
    """(k, 4) RGBA of each cluster, as its clusters layer shows it."""
    if random_colors:
        return random_colormap().map(np.arange(1, seg.n_clusters + 1))
    return np.hstack([seg.colors, np.ones((seg.n_clusters, 1))])


def outlines_layer(seg: Segmentation, request: LayerRequest, contours,
                   min_area: int) -> LayerSpec:
    names = cluster_names(seg)
    labels = np.array([c.label for c in contours], int)
    features = pd.DataFrame({
        "label": labels,
        "name": [names[label - 1] for label in labels],
        "area": [c.area for c in contours],
    })
    edge_colors = outline_colors(labels, cluster_features(seg), DEFAULT_OUTLINE_MODE)
    return LayerSpec("shapes", [c.vertices for c in contours], {
        "name": f"{request.source} outlines",
        "shape_type": "polygon",
        "edge_color": edge_colors if len(contours) else "white",
        "face_color": "transparent",
        "edge_width": OUTLINE_WIDTH,
        "features": features,
        "metadata": {METADATA_KEY: {**provenance(seg, request, "outlines")[METADATA_KEY],
                                    "min_area": int(min_area),
                                    "outline_mode": DEFAULT_OUTLINE_MODE}},
        **request.placement.kwargs(),
    })


def default_min_area(labels: np.ndarray) -> int:
    """Outline regions of at least 0.05 % of a plane: a few hundred on a 512² photo."""
    return max(1, int(DEFAULT_MIN_AREA_SHARE * labels.shape[-1] * labels.shape[-2]))


def result_layers(seg: Segmentation, request: LayerRequest) -> list[LayerSpec]:
    """Every requested layer, built off the GUI thread; clusters last (it becomes active).

    Lazy results stay lazy (dask arrays; a pyramid when the source is multiscale), and
    get no outlines: tracing them would compute every pixel.
    """
    specs = []
    lazy = hasattr(seg, "labels_of")
    if "quantized" in request.outputs:
        specs.append(quantized_layer(seg, request))
    if "outlines" in request.outputs and not lazy:
        min_area = request.min_area or default_min_area(seg.labels)
        specs.append(outlines_layer(seg, request, seg.contours(min_area=min_area), min_area))
    if "clusters" in request.outputs:
        specs.append(clusters_layer(seg, request))
    if lazy and len(request.levels) > 1:
        for spec in specs:
            of_level = seg.quantized_of if spec.kind == "image" else seg.labels_of
            spec.data = [spec.data, *(of_level(level) for level in request.levels[1:])]
    return [request.placement.place(spec) for spec in specs]


def contrast_color(colors: np.ndarray, weights=None) -> np.ndarray:
    """RGBA of the bright candidate colour farthest from the cluster colours (RGB in [0, 1]).

    A candidate's distance is to its nearest cluster colour; ``weights`` (e.g. pixel
    fractions) make large clusters count more: a colour close only to a tiny cluster
    still wins over one close to the background.
    """
    candidates = np.array(list(CONTRAST_CANDIDATES.values()))
    colors = np.asarray(colors, float).reshape(-1, 3)
    if len(colors) == 0:
        return np.array([*candidates[0], 1.0])
    weights = np.ones(len(colors)) if weights is None else np.asarray(weights, float)
    distance = np.linalg.norm(candidates[:, None, :] - colors[None, :, :], axis=-1)
    # how much of the image each candidate blends into (near colours count most)
    blending = (np.exp(-distance / CONTRAST_FALLOFF) * weights[None, :]).sum(axis=1)
    best = int(np.argmin(blending))
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
    cluster_labels, colours = feature_colors(features)
    if mode == "contrast":
        weights = features["fraction"] if "fraction" in features else None
        return np.tile(contrast_color(colours[:, :3], weights), (len(labels), 1))
    lookup = np.zeros((max(int(cluster_labels.max(initial=0)), int(labels.max(initial=0))) + 1,
                       4))
    lookup[:, 3] = 1.0
    lookup[cluster_labels] = colours
    return lookup[labels]


def style_outlines(outlines_layer, features: pd.DataFrame, mode: str,
                   width: float | None = None) -> None:
    """Colour an outlines Shapes layer in ``mode`` and optionally set its line ``width``.

    ``features`` is the clusters layer's table (``index`` = label, hex ``color``,
    ``fraction``): "contrast" draws every outline in the one bright colour farthest from
    the clusters' colours, "cluster" each in its cluster's colour, "random" in napari's
    random label colours (those of a clusters layer shown in random colours). The mode is
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
