"""The "Pixel clusters" dock widget, generated from the method registry with magicgui.

The user picks an image layer and a method, sets that method's parameters and presses Run.
The work runs in the panel's worker thread (see ``_panel``), which walks
:func:`segment_steps`: every step moves the progress bar and is a point where Cancel stops
the run. Layers are added only when the run has finished, so a cancelled or failed run
leaves the viewer as it was.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    SpinBox,
)
from napari.utils.notifications import show_info

from ..core import FEATURE_PARAMS, METHODS, segment_steps
from ..core.lazy import is_lazy
from ..core.registry import N_CLUSTERS, RANDOM_STATE, Param
from ._panel import RunPanel, large_image_levels
from .layers import (
    METADATA_KEY,
    LayerRequest,
    Placement,
    random_colormap,
    result_layers,
    table_colormap,
)

if TYPE_CHECKING:
    import napari

CURRENT_PLANE, WHOLE_STACK = "current plane", "whole stack"
#: Shown under the method when the image is a dask array or a pyramid.
LARGE_IMAGE_NOTES = {
    None: "Large image: read chunk by chunk; results are lazy\n(computed as you view them); "
          "no outlines.",
    "ward": "Large image: Ward is not defined chunk by chunk, so it\nclusters a downscaled "
            "level (block averages; 'downscale'\nsets the level) and enlarges the labels.",
    "canny": "Large image: edges per chunk with overlap, joined\nacross chunks: identical "
             "to the whole image's.\nThresholds must be in image units (no quantiles).",
}


def param_widget(param: Param):
    """A magicgui widget for one declared parameter, its help text as tooltip."""
    options: dict[str, Any] = {"name": param.name, "label": param.name.replace("_", " "),
                               "tooltip": param.help}
    if param.choices is not None:
        value = param.default if param.default is not None else param.choices[0]
        return ComboBox(choices=param.choices, value=value, **options)
    if param.type is bool:
        return CheckBox(value=param.default, **options)
    if param.type is int:
        return SpinBox(value=param.default if param.default is not None else 0,
                       min=int(param.minimum or 0), max=int(min(param.maximum or 2**31 - 1,
                                                               2**31 - 1)), **options)
    if param.default is None:  # optional number: empty means automatic
        options["tooltip"] += " Leave empty for the automatic value."
        return LineEdit(value="", **options)
    if param.default != 0 and abs(param.default) < 0.01:  # tolerances: typed, e.g. 1e-06
        return LineEdit(value=repr(param.default), **options)
    return FloatSpinBox(value=param.default, min=param.minimum or 0.0,
                        max=param.maximum if param.maximum is not None else 1e9,
                        step=0.1, **options)


def widget_value(widget, param: Param):
    """The widget's value as the parameter's type ('' -> None for optional numbers)."""
    value = widget.value
    if isinstance(widget, LineEdit):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{param.name}: {text!r} is not a number.") from None
    return value


class PixelClustersWidget(RunPanel):
    """Dock widget: segment the chosen image layer with the chosen method."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self._runs = itertools.count(1)
        self._method = ComboBox(name="method", label="method",
                                choices=[(m.title, m.name) for m in METHODS.values()])
        self._n_clusters = param_widget(N_CLUSTERS)
        self._method_params = {
            name: Container(name=f"{name}_parameters", label=f"{method.title} parameters",
                            labels=True,
                            widgets=[param_widget(p) for p in method.params if p.in_widget])
            for name, method in METHODS.items()
        }
        self._feature_widgets = {p.name: param_widget(p) for p in FEATURE_PARAMS}
        self._features = Container(name="features", label="features", labels=True,
                                   widgets=list(self._feature_widgets.values()))
        self._random_state = param_widget(RANDOM_STATE)
        self._stack_mode = ComboBox(name="stack", label="stack",
                                    choices=[CURRENT_PLANE, WHOLE_STACK],
                                    tooltip="Segment the plane on screen, or fit once on the "
                                    "whole stack and label every plane.")
        self._outputs = {
            "clusters": CheckBox(value=True, text="clusters (Labels)", name="out_clusters"),
            "quantized": CheckBox(value=True, text="quantized (Image)", name="out_quantized"),
            "outlines": CheckBox(value=False, text="outlines (Shapes)", name="out_outlines"),
        }
        self._min_area = SpinBox(name="min_area", label="min outline area (px)", value=0,
                                 min=0, max=10**9, tooltip="Regions smaller than this many "
                                 "pixels get no outline; 0 picks 0.05% of the image.")
        self._random_colors = CheckBox(name="random_colors", value=False,
                                       text="random label colours",
                                       tooltip="Show clusters in napari's random colours "
                                       "instead of their mean colours.")
        self._large_image_note = Label(name="large_image_note", label=" ", value="")
        self._replace = CheckBox(name="replace", value=False,
                                 text="replace previous result",
                                 tooltip="Remove this image's earlier layers from the same "
                                 "method before adding the new ones.")
        self.extend([
            self._image, self._method, self._large_image_note, self._n_clusters,
            *self._method_params.values(),
            self._features, self._random_state, self._stack_mode,
            Container(name="outputs", label="add", widgets=list(self._outputs.values())),
            self._min_area, self._random_colors, self._replace,
        ])
        self._finish_layout()
        self._method.changed.connect(self._show_method)
        self._image.changed.connect(self._show_image_options)
        self._random_colors.changed.connect(self._recolour_results)
        self._show_method()

    # ----------------------------------------------------------------- showing options
    @property
    def method(self):
        return METHODS[self._method.value]

    def _show_method(self, event=None):
        method = self.method
        for name, container in self._method_params.items():
            container.visible = name == method.name and len(container) > 0
        self._n_clusters.visible = method.needs_n_clusters
        self._features.visible = method.uses_features
        self._random_state.visible = method.uses_random_state
        self._outputs["clusters"].text = (
            "clusters (Labels)" if method.needs_n_clusters else "edges (Labels)")
        self._outputs["quantized"].visible = method.needs_n_clusters
        self._show_image_options()

    def _show_image_options(self, event=None):
        layer = self._image.value
        self._feature_widgets["color_space"].visible = bool(layer is not None and layer.rgb)
        large = layer is not None and (layer.multiscale or is_lazy(layer.data))
        self._stack_mode.visible = bool(layer is not None and layer.ndim > 2 and not large)
        outlines = self.method.needs_n_clusters and not large  # tracing needs every pixel
        self._outputs["outlines"].visible = self._min_area.visible = outlines
        note = LARGE_IMAGE_NOTES.get(self.method.name, LARGE_IMAGE_NOTES[None])
        self._large_image_note.value = note if large else ""
        self._large_image_note.visible = bool(large)

    # ----------------------------------------------------------------- reading choices
    def _options(self) -> dict:
        method = self.method
        widgets = {p.name: (self._method_params[method.name][p.name], p)
                   for p in method.params if p.in_widget}
        if method.uses_features:
            colour = bool(self._image.value is not None and self._image.value.rgb)
            widgets |= {p.name: (self._feature_widgets[p.name], p) for p in FEATURE_PARAMS
                        if p.name != "color_space" or colour}
        if method.uses_random_state:
            widgets["random_state"] = (self._random_state, RANDOM_STATE)
        return {name: widget_value(widget, param) for name, (widget, param) in widgets.items()}

    def _source(self):
        """(layer, array, rgb, placement, plane index) of what to segment, or ValueError."""
        layer = self._chosen_image()
        scale, translate = tuple(layer.scale), tuple(layer.translate)
        levels = large_image_levels(layer)
        if levels:  # large: clustered chunk by chunk
            return layer, levels, layer.rgb, Placement(scale, translate), ()
        data = np.asarray(layer.data)
        index = ()
        if layer.ndim > 2 and self._stack_mode.value == CURRENT_PLANE:
            index = self._current_index(layer)
            # one plane, kept as a stack of one (with length-1 axes before it for 4-D+
            # images) so that the results sit on that plane only
            data = data[index][np.newaxis]
            translate = (*(t + i * s for t, i, s in zip(translate, index, scale)),
                         *translate[len(index):])
            return layer, data, layer.rgb, Placement(scale, translate, len(index) - 1), index
        return layer, data, layer.rgb, Placement(scale, translate), index

    def _current_index(self, layer) -> tuple[int, ...]:
        point = self._viewer.dims.point[-layer.ndim:]
        position = layer.world_to_data(point)[: layer.ndim - 2]
        shape = layer.data.shape[: layer.ndim - 2]
        return tuple(int(np.clip(round(p), 0, s - 1)) for p, s in zip(position, shape))

    # ----------------------------------------------------------------- running
    def _start(self):
        """Validate the choices, then segment in a worker thread (see ``RunPanel.run``)."""
        layer, data, rgb, placement, index = self._source()
        levels = data if isinstance(data, list) else None
        method = self.method
        k = self._n_clusters.value if method.needs_n_clusters else None
        source = (levels if len(levels) > 1 else levels[0]) if levels else data
        steps = segment_steps(source, method.name, k, rgb=rgb, **self._options())
        first = next(steps)  # validates everything before any thread starts
        offered = self._outputs if method.needs_n_clusters else ["clusters"]
        source_kwargs = {"rgb": layer.rgb}
        if not layer.rgb:
            source_kwargs |= {"contrast_limits": layer.contrast_limits,
                              "colormap": layer.colormap}
        plane = f" (plane {', '.join(map(str, index))})" if index else ""
        request = LayerRequest(
            source=layer.name + plane, source_layer=layer.name, plane=index,
            placement=placement, run=next(self._runs),
            outputs={name for name in offered if self._outputs[name].value},
            random_colors=self._random_colors.value, source_kwargs=source_kwargs,
            min_area=self._min_area.value or None, levels=levels or [],
        )
        return self._launch(first, _segment_and_build(steps, request), layer,
                            lambda result: self._add_layers(result, layer))

    def _add_layers(self, result, layer):
        """Add the layers the worker built (on the GUI thread: napari's own work only)."""
        seg, specs = result
        if self._replace.value:
            self._remove_previous(layer.name, seg.method)
        for spec in specs:
            getattr(self._viewer, f"add_{spec.kind}")(spec.data, **spec.kwargs)
        self._status.value = self._summary(seg)
        show_info(self._summary(seg))

    @staticmethod
    def _summary(seg) -> str:
        seconds = seg.params.get("seconds", 0)
        if seg.method == "canny":
            return f"Canny: {int(seg.pixel_counts.sum()):,} edge pixels in {seconds:.1f} s"
        level = seg.params.get("lazy_level")
        on_level = f" (on a level {1 / seg.params['downscale']:.0f}x smaller)" if level else ""
        return (f"{METHODS[seg.method].title}: {seg.n_clusters} clusters in {seconds:.1f} s"
                f"{on_level}")

    def _remove_previous(self, source: str, method: str):
        for layer in list(self._viewer.layers):
            tag = layer.metadata.get(METADATA_KEY, {})
            made_from = tag.get("source", "")
            same_source = made_from == source or made_from.startswith(f"{source} (plane ")
            if tag.get("method") == method and same_source:
                self._viewer.layers.remove(layer)

    def _recolour_results(self, random_colors: bool):
        """Switch this plugin's clusters and outlines between mean and random colours."""
        clusters = {}
        for layer in self._viewer.layers:
            tag = layer.metadata.get(METADATA_KEY, {})
            if tag.get("output") == "clusters":
                layer.colormap = (random_colormap() if random_colors
                                  else table_colormap(layer.features))
                clusters[tag["run"]] = layer
        for layer in self._viewer.layers:
            tag = layer.metadata.get(METADATA_KEY, {})
            if tag.get("output") == "outlines" and tag["run"] in clusters and len(layer.data):
                colormap = clusters[tag["run"]].colormap
                layer.edge_color = colormap.map(np.asarray(layer.features["label"]))


def _segment_and_build(steps, request: LayerRequest):
    """In the worker: walk the remaining steps (each a cancel point), build the layers."""
    seg = yield from steps
    yield "layers", 1.0
    return seg, result_layers(seg, request)


__all__ = ["PixelClustersWidget"]
