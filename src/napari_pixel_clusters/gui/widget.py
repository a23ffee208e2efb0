"""The "Pixel clusters" dock widget, generated from the method registry with magicgui.

The user picks an image layer, optionally a mask ("only inside": a Labels or Shapes layer,
see :mod:`.masks`; read in the worker, sliced as the image's plane is) and a method (its
one-line summary shows below it), sets that method's parameters and presses Run. Solver
settings the registry marks ``advanced`` fold under "advanced settings"; numbers are spin
boxes, and optional ones (and the color space) read "auto" when left to the method.
Everything about a method (its parameters, the feature options it takes, whether it takes
k, what it outputs, the note shown for large images) comes from its registry entry, never
from its name. The method, features, random state, k, the image and its mask are shared
with "Choose number of clusters" through :func:`~.state.shared_settings` (the only way the
two widgets know of each other).

The work runs in the panel's worker thread (see ``_panel``), which walks
:func:`segment_steps`: every step moves the progress bar and is a point where Cancel stops
the run. Layers are added only when the run has finished, so a cancelled or failed run
leaves the viewer as it was.

With "preview" on (:mod:`.preview`), every change of a control or of the plane on screen
segments the current plane again, in a worker, into one ``<image> preview`` layer
updated in place; Run still makes the final layers.

Methods whose model gives posterior probabilities (the registry's
``predictor.probabilities_rows``) offer two more outputs: "probabilities" (one Image layer,
the cluster axis first: a slider over the clusters) and "uncertainty"; both are computed
in the worker, lazily for images read chunk by chunk.

"fit on several images" (methods that fit a model which labels new pixels:
:func:`~.core.pooled.pooling_methods`) lists the viewer's images of the chosen image's
kind; Run fits ONE model on all the chosen ones (:func:`segment_many_steps`: exactly, as
one image holding all their pixels) and adds each image its own layers, with the same
cluster numbering and colors, placed over it. Each clusters layer's table is its image's;
its tag carries the pooled table and the shared model (Apply model can take it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, Select
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QEvent
from qtpy.QtWidgets import QSizePolicy

from ..core import FEATURE_PARAMS, METHODS, segment_many_steps, segment_steps
from ..core.lazy import is_lazy
from ..core.pooled import pooling_methods
from ..core.probabilities import UNCERTAINTY_KINDS
from ..core.registry import CLEANUP_PARAMS, N_CLUSTERS, RANDOM_STATE
from ._controls import (
    method_choices,
    offers_none,
    param_widget,
    show_feature_controls,
    stain_choices,
)
from ._numbers import NumberBox
from ._panel import RunPanel, is_result, large_image_levels
from .docking import QtEventWatch
from .layers import (
    METADATA_KEY,
    POSTERIOR_OUTPUTS,
    LayerRequest,
    Placement,
    RunNumbers,
    add_result_layers,
    chosen_clusters_layer,
    gives_probabilities,
    recolor_clusters,
    result_layers,
)
from .masks import mask_choice, masked_steps, plan_mask, read_mask, spatial_chunks
from .preview import PREVIEW_OUTPUT, LivePreview, PreviewRequest
from .state import shared_settings

if TYPE_CHECKING:
    import napari

CURRENT_PLANE, WHOLE_STACK = "current plane", "whole stack"
ADVANCED_CLOSED = "\N{BLACK RIGHT-POINTING SMALL TRIANGLE} advanced settings"
ADVANCED_OPEN = "\N{BLACK DOWN-POINTING SMALL TRIANGLE} advanced settings"
#: The list of images of a pooled fit shows this many rows before it scrolls.
POOLED_LIST_ROWS = 4
#: The worker's stages of a pooled fit, as the progress line names them.
POOLED_STAGES = {"labels": "predict"}
POSTERIOR_TIPS = {
    "probabilities": "An Image layer: the posterior probability (0..1) of each cluster at "
    "every pixel, one cluster at a time on a slider (methods whose model gives them, such "
    "as the Gaussian mixture).",
    "uncertainty": "An Image layer: how uncertain each pixel's cluster is, 0..1 (methods "
    "whose model gives posterior probabilities).",
}
POOLED_TIP = (
    "Fit one model on the pixels of all the images chosen below (exactly, as one image "
    "holding them all) and label each with it: one clusters layer per image, with the same "
    "cluster numbering and colors."
)


class PixelClustersWidget(RunPanel):
    """Dock widget: segment the chosen image layer with the chosen method."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, scrollable=True)
        self._settings = shared_settings(viewer)
        self._syncing = False  # True while controls are set from the shared settings
        self._docked_once = False  # see _closed_now
        self._started = 0.0  # perf_counter() when Run was pressed
        self._running_method = None  # the method of the run going or last started
        self._runs = RunNumbers()  # per image and method
        self._inside = mask_choice(viewer)  # "only inside": a Labels or Shapes layer
        self._method = ComboBox(name="method", label="method", choices=method_choices())
        self._summary = Label(name="summary", label=" ", value="")
        self._summary.native.setWordWrap(True)
        self._summary.native.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
        )
        self._large_image_note = Label(name="large_image_note", label=" ", value="")
        self._n_clusters = param_widget(N_CLUSTERS)
        #: method -> {parameter name: widget}; widget names are "<method>_<parameter>"
        self._method_params = {
            name: {
                p.name: param_widget(p, f"{name}_{p.name}") for p in method.params if p.in_widget
            }
            for name, method in METHODS.items()
        }
        self._feature_widgets = {p.name: param_widget(p) for p in FEATURE_PARAMS}
        #: smooth, fill_holes, min_region: shown for the methods that take them
        self._cleanup_widgets = {p.name: param_widget(p) for p in CLEANUP_PARAMS}
        self._random_state = param_widget(RANDOM_STATE)
        self._stack_mode = ComboBox(
            name="stack",
            label="stack",
            choices=[CURRENT_PLANE, WHOLE_STACK],
            tooltip="Segment the plane on screen, or fit once on the "
            "whole stack and label every plane.",
        )
        self._outputs = {
            "clusters": CheckBox(
                value=True,
                text="clusters",
                name="out_clusters",
                tooltip="A Labels layer: one label per cluster.",
            ),
            "quantized": CheckBox(
                value=True,
                text="quantized",
                name="out_quantized",
                tooltip="An Image layer: every pixel in its cluster's mean color.",
            ),
            "outlines": CheckBox(
                value=False,
                text="outlines",
                name="out_outlines",
                tooltip="A Shapes layer: one polygon per region.",
            ),
            **{
                name: CheckBox(value=False, text=name, name=f"out_{name}", tooltip=tip)
                for name, tip in POSTERIOR_TIPS.items()
            },
        }
        self._uncertainty_kind = ComboBox(
            name="uncertainty_kind",
            label="uncertainty as",
            choices=list(UNCERTAINTY_KINDS),
            value="margin",
            tooltip="Uncertainty as 'margin': 1 - the largest posterior, or 'entropy': the "
            "posteriors' entropy over log k (1: every cluster equally likely).",
        )
        outputs = Container(
            name="outputs",
            label="add",
            layout="horizontal",
            widgets=[self._outputs[name] for name in ("clusters", "quantized", "outlines")],
        )
        outputs.margins = (0, 0, 0, 0)
        posteriors = Container(
            name="posterior_outputs",
            label=" ",
            layout="horizontal",
            widgets=[self._outputs[name] for name in POSTERIOR_OUTPUTS],
        )
        posteriors.margins = (0, 0, 0, 0)
        self._pooled = CheckBox(
            name="pooled", value=False, text="fit on several images", tooltip=POOLED_TIP
        )
        self._pooled_images = Select(
            name="pooled_images",
            label="images",
            choices=self._pooling_candidates,
            tooltip="The images to fit one model on: those of the chosen image's kind "
            "(grey or RGB, same data type), in memory. Ctrl/Shift-click to choose several.",
        )
        rows = self._pooled_images.native.sizeHintForRow(0)
        self._pooled_images.native.setMaximumHeight(
            POOLED_LIST_ROWS * max(rows, self._pooled_images.native.fontMetrics().height()) + 6
        )
        self._min_area = NumberBox(
            None,
            optional=True,
            min=1,
            max=1e9,
            step=10,
            name="min_area",
            label="min outline area",
            tooltip="Regions smaller than this many pixels get no "
            "outline; 'auto': 0.05% of the image.",
        )
        self._random_colors = CheckBox(
            name="random_colors",
            value=False,
            text="random label colors",
            tooltip="Show the chosen result's clusters in "
            "napari's random colors instead of their mean "
            "colors (new results too).",
        )
        self._replace = CheckBox(
            name="replace",
            value=False,
            text="replace previous result",
            tooltip="Remove this image's earlier layers from the same "
            "method before adding the new ones.",
        )
        self._advanced_toggle = PushButton(
            name="advanced",
            text=ADVANCED_CLOSED,
            tooltip="Solver settings: starts, iterations, tolerances, random state.",
        )
        self._advanced_toggle.native.setCheckable(True)
        self._advanced_toggle.native.setStyleSheet("text-align: left; border: none;")
        self._preview = LivePreview(
            viewer,
            self._preview_request,
            self._show_preview_status,
            lambda: self._worker is not None,
        )
        main, advanced = [], []
        for name, method in METHODS.items():
            for param in method.params:
                if param.in_widget:
                    widget = self._method_params[name][param.name]
                    (advanced if param.advanced else main).append(widget)
        self.extend(
            [
                self._image,
                self._pooled,
                self._pooled_images,
                self._inside,
                self._method,
                self._summary,
                self._large_image_note,
                self._n_clusters,
                *main,
                *self._feature_widgets.values(),
                *self._cleanup_widgets.values(),
                self._stack_mode,
                outputs,
                posteriors,
                self._uncertainty_kind,
                self._min_area,
                self._random_colors,
                self._replace,
                self._advanced_toggle,
                *advanced,
                self._random_state,
                self._preview.toggle,
            ]
        )
        self._finish_layout()
        self._method.changed.connect(self._show_method)
        self._image.changed.connect(self._show_image_options)
        self._advanced_toggle.changed.connect(self._show_method)
        self._random_colors.changed.connect(self._recolor_results)
        self._pooled.changed.connect(self._show_pooling)
        self._pooled_images.changed.connect(self._show_image_options)
        for name in POSTERIOR_OUTPUTS:
            self._outputs[name].changed.connect(self._show_posteriors)
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._pooled_images.reset_choices)
        self._share_settings()
        self._show_method()
        self.changed.connect(self._preview.changed)  # any control: preview again
        self.native.destroyed.connect(self._preview.close)

    # ----------------------------------------------------------------- shared settings
    def _controls(self) -> dict:
        """Shared setting -> the control that shows it."""
        return {
            "method": self._method,
            **self._feature_widgets,
            "random_state": self._random_state,
            "n_clusters": self._n_clusters,
            "mask": self._inside,
        }

    def _share_settings(self):
        """Show the shared settings, and keep them and the controls equal both ways (until
        the widget is closed)."""
        settings = self._settings
        self._followers = [
            (settings.events.image, self._show_shared_image),
            (settings.k_chosen, self._k_chosen),
        ]
        for name, control in self._controls().items():
            self._followers.append(
                (
                    getattr(settings.events, name),
                    lambda value, *_, control=control: self._show_setting(control, value),
                )
            )
            control.changed.connect(lambda value, name=name: self._set_setting(name, value))
            if getattr(settings, name) is None:  # nobody said yet: ours
                self._set_setting(name, control.value)
            else:
                self._show_setting(control, getattr(settings, name))
        self._image.changed.connect(lambda layer: self._set_setting("image", layer))
        if settings.image is not None:
            self._show_shared_image(settings.image)
        else:
            self._set_setting("image", self._image.value)
        for signal, callback in self._followers:
            signal.connect(callback)
        self.native.destroyed.connect(self._unfollow_settings)
        QtEventWatch(self.native, QEvent.Type.ParentChange, self._closed_now)

    def _unfollow_settings(self, *args):
        for signal, callback in self._followers:
            signal.disconnect(callback, missing_ok=True)
        self._followers = []

    def _set_setting(self, name: str, value):
        if self._syncing or (name == "image" and (value is None or is_result(value))):
            return
        setattr(self._settings, name, value)

    def _closed_now(self) -> bool:
        """True (and the settings no longer followed) once the user closed the widget:
        it had a parent (a dock) and has none now (napari un-parents a closed dock
        widget)."""
        try:
            parent = self.native.parent()
        except RuntimeError:  # its Qt side is deleted
            parent = None
        self._docked_once = self._docked_once or parent is not None
        if self._docked_once and parent is None:
            self._unfollow_settings()
            self._preview.close()
            return True
        return False

    def _show_setting(self, control, value):
        if value is None and not offers_none(control):  # e.g. no k said yet: keep ours
            return
        if self._worker is not None or self._closed_now():
            return
        self._syncing = True
        try:
            control.value = value
        except (ValueError, TypeError):  # not a value this control offers
            pass
        finally:
            self._syncing = False

    def _show_shared_image(self, layer, *_):
        if layer is None or self._worker is not None or self._closed_now():
            return
        if layer is self._image.value:
            return
        self._image.reset_choices()
        if layer in [choice for _, choice in self._image_layers()]:
            self._syncing = True
            try:
                self._image.value = layer
            finally:
                self._syncing = False

    def _k_chosen(self, method: str, k: int, run: bool):
        """A k clicked in a sweep: its method and k (they, the features and the image
        came with the shared settings; shown again in case a control differed), and a
        run if asked."""
        if self._worker is not None or self._closed_now():
            return
        self._show_setting(self._method, method)
        self._show_setting(self._n_clusters, k)
        if run:
            self.run()

    # ----------------------------------------------------------------- showing options
    @property
    def method(self):
        return METHODS[self._method.value]

    @property
    def advanced_shown(self) -> bool:
        return bool(self._advanced_toggle.native.isChecked())

    def _show_method(self, event=None):
        method, advanced = self.method, self.advanced_shown
        self._summary.value = method.summary
        self._summary.native.setToolTip(method.summary)
        for name, widgets in self._method_params.items():
            for param in METHODS[name].params:
                if param.in_widget:
                    widgets[param.name].visible = name == method.name and (
                        advanced or not param.advanced
                    )
        self._n_clusters.visible = method.needs_n_clusters
        self._random_state.visible = method.uses_random_state and advanced
        has_advanced = method.uses_random_state or any(
            p.advanced and p.in_widget for p in method.params
        )
        self._advanced_toggle.visible = has_advanced
        self._advanced_toggle.text = ADVANCED_OPEN if advanced else ADVANCED_CLOSED
        self._outputs["clusters"].text = method.output  # "clusters" or "edges"
        self._outputs["quantized"].visible = method.output == "clusters"
        for widget in self._cleanup_widgets.values():
            widget.visible = method.takes_cleanup
        self._show_posteriors()
        self._show_pooling()

    def _show_posteriors(self, event=None):
        """The probabilities and uncertainty outputs: offered (enabled) only when the
        method's model gives posterior probabilities; the uncertainty's measure shown
        only with the uncertainty."""
        method = self.method
        offered = gives_probabilities(method.name)
        why = "" if offered else f" {method.title} gives none."
        for name, tip in POSTERIOR_TIPS.items():
            self._outputs[name].enabled = offered
            self._outputs[name].tooltip = tip + why
        self._uncertainty_kind.visible = offered and bool(self._outputs["uncertainty"].value)

    @property
    def pools(self) -> bool:
        """True when Run fits one model on several images (toggle on, method able)."""
        return bool(self._pooled.value) and self.method in pooling_methods()

    def _show_pooling(self, event=None):
        """ "fit on several images": enabled for the methods that can fit one model on
        several images; the list of images shown while it is on."""
        able = self.method in pooling_methods()
        self._pooled.enabled = able
        usable = ", ".join(m.title for m in pooling_methods())
        self._pooled.tooltip = (
            POOLED_TIP
            if able
            else f"{self.method.title} fits no model that labels other images; use {usable}."
        )
        if self.pools and not self._pooled_images.value and self._image.value is not None:
            self._pooled_images.reset_choices()
            if self._image.value in self._pooled_images.choices:
                self._pooled_images.value = [self._image.value]
        self._pooled_images.visible = self.pools
        self._show_image_options()

    def _pooling_candidates(self, widget=None) -> list:
        """(name, layer) of the source images of the chosen image's kind (grey or RGB with
        as many channels, same data type): those one model can be fitted on."""
        chosen = self._image.value
        images = [layer for name, layer in self._image_layers() if not is_result(layer)]
        if chosen is not None:
            images = [layer for layer in images if _same_kind(layer, chosen)]
        return [(layer.name, layer) for layer in images]

    def _show_image_options(self, event=None):
        layer = self._image.value
        rgb = bool(layer is not None and layer.rgb)
        show_feature_controls(self._feature_widgets, self.method, rgb)
        large = layer is not None and (layer.multiscale or is_lazy(layer.data))
        stacks = [layer] if layer is not None and not large else []
        if self.pools:
            stacks = list(self._pooled_images.value or [])
        self._stack_mode.visible = any(
            item.ndim > 2 and not (item.multiscale or is_lazy(item.data)) for item in stacks
        )
        # outlines of regions (not of edges); tracing them needs every pixel
        outlines = self.method.output == "clusters" and not large
        self._outputs["outlines"].visible = self._min_area.visible = outlines
        self._large_image_note.value = self.method.large_image_note if large else ""
        self._large_image_note.visible = bool(large)

    # ----------------------------------------------------------------- reading choices
    def _options(self) -> dict:
        method = self.method
        widgets = {
            p.name: (self._method_params[method.name][p.name], p)
            for p in method.params
            if p.in_widget
        }
        color = bool(self._image.value is not None and self._image.value.rgb)
        widgets |= {
            p.name: (self._feature_widgets[p.name], p)
            for p in method.feature_params()  # those it takes; color space for RGB only
            if p.name != "color_space" or color
        }
        if method.takes_cleanup:  # smooth, fill_holes, min_region
            widgets |= {p.name: (self._cleanup_widgets[p.name], p) for p in CLEANUP_PARAMS}
        if method.uses_random_state:
            widgets["random_state"] = (self._random_state, RANDOM_STATE)
        # the stain options with color space "stains" only; a stain vectors file read
        return stain_choices({name: widget.value for name, (widget, _) in widgets.items()})

    def _source(self):
        """(layer, array, rgb, placement, plane index) of what to segment, or ValueError."""
        layer = self._chosen_image()
        scale, translate = tuple(layer.scale), tuple(layer.translate)
        levels = large_image_levels(layer)
        if levels:  # large: clustered chunk by chunk
            return layer, levels, layer.rgb, Placement(scale, translate), ()
        data, placement, index = self._plane_of(layer)
        return layer, data, layer.rgb, placement, index

    def _plane_of(self, layer) -> tuple[np.ndarray, Placement, tuple[int, ...]]:
        """(pixels, placement, plane index) of an image layer in memory: the plane on
        screen of a stack ("current plane"), else the whole image."""
        scale, translate = tuple(layer.scale), tuple(layer.translate)
        data = np.asarray(layer.data)
        if layer.ndim > 2 and self._stack_mode.value == CURRENT_PLANE:
            index = self._current_index(layer)
            # one plane, kept as a stack of one (with length-1 axes before it for 4-D+
            # images) so that the results sit on that plane only
            data = data[index][np.newaxis]
            translate = (
                *(t + i * s for t, i, s in zip(translate, index, scale)),
                *translate[len(index) :],
            )
            return data, Placement(scale, translate, len(index) - 1), index
        return data, Placement(scale, translate), ()

    def _current_index(self, layer) -> tuple[int, ...]:
        point = self._viewer.dims.point[-layer.ndim :]
        position = layer.world_to_data(point)[: layer.ndim - 2]
        shape = layer.data.shape[: layer.ndim - 2]
        return tuple(int(np.clip(round(p), 0, s - 1)) for p, s in zip(position, shape))

    # ----------------------------------------------------------------- running
    def _start(self):
        """Validate the choices, then segment in a worker thread (see ``RunPanel.run``)."""
        self._started = time.perf_counter()
        if self.pools:
            return self._start_pooled()
        layer, data, rgb, placement, index = self._source()
        levels = data if isinstance(data, list) else None
        method = self._running_method = self.method
        k = self._n_clusters.value if method.needs_n_clusters else None
        source = (levels if len(levels) > 1 else levels[0]) if levels else data
        options = self._options()
        plan = plan_mask(self._inside.value, layer)  # checked here, read in the worker

        def steps_with(mask=None):
            return segment_steps(source, method.name, k, rgb=rgb, mask=mask, **options)

        steps = steps_with()
        first = next(steps)  # validates everything before any thread starts
        if plan is not None:  # a large mask layer takes time to read: in the worker
            steps.close()
            steps = masked_steps(plan, steps_with, index, spatial_chunks(levels, rgb))
        request = self._request(layer, placement, index, levels or [])
        return self._launch(
            first,
            _segment_and_build(steps, request),
            layer,
            lambda result: self._add_layers(result, layer),
        )

    def _chosen_outputs(self) -> set[str]:
        """The outputs to add: those ticked that the method offers."""
        method = self.method
        offered = ["clusters"]
        if method.output == "clusters":
            offered += ["quantized", "outlines"]
        if gives_probabilities(method.name):
            offered += list(POSTERIOR_OUTPUTS)
        return {name for name in offered if self._outputs[name].value}

    def _request(self, layer, placement: Placement, index: tuple, levels: list) -> LayerRequest:
        """The layers to make of ``layer`` (its plane ``index``), placed over it."""
        source_kwargs = {"rgb": layer.rgb, "axis_labels": tuple(getattr(layer, "axis_labels", ()))}
        if not layer.rgb:
            source_kwargs |= {"contrast_limits": layer.contrast_limits, "colormap": layer.colormap}
        plane = f" (plane {', '.join(map(str, index))})" if index else ""
        return LayerRequest(
            source=layer.name + plane,
            source_layer=layer.name,
            plane=index,
            placement=placement,
            run=self._runs.next(self._viewer.layers, layer.name, self.method.name),
            outputs=self._chosen_outputs(),
            random_colors=self._random_colors.value,
            source_kwargs=source_kwargs,
            min_area=None if self._min_area.value is None else int(self._min_area.value),
            levels=levels,
            uncertainty=self._uncertainty_kind.value,
        )

    # ----------------------------------------------------------------- pooled fit
    def _pooled_layers(self) -> list:
        """The images chosen for a pooled fit, in the viewer's order (ValueError: fewer
        than two, or one read chunk by chunk)."""
        chosen = list(self._pooled_images.value or [])
        layers = [layer for layer in self._viewer.layers if layer in chosen]
        if len(layers) < 2:
            raise ValueError(
                "images: choose at least two images to fit one model on (Ctrl-click in the "
                "list), or turn 'fit on several images' off."
            )
        large = [layer.name for layer in layers if large_image_levels(layer)]
        if large:
            names = ", ".join(f"'{name}'" for name in large)
            raise ValueError(
                f"images: {names} {'is' if len(large) == 1 else 'are'} read chunk by chunk "
                "(a pyramid or a dask array); one model is fitted on whole images in "
                "memory: leave it out of the list, or fit on the others and label it with "
                "Apply model."
            )
        return layers

    def _start_pooled(self):
        """Fit one model on every chosen image (each its plane on screen for "current
        plane"), label each, in a worker; one set of layers per image."""
        layers = self._pooled_layers()
        method = self._running_method = self.method
        planes = [self._plane_of(layer) for layer in layers]
        k = self._n_clusters.value if method.needs_n_clusters else None
        options = self._options()
        mask_layer = self._inside.value
        plans = [plan_mask(mask_layer, layer) for layer in layers] if mask_layer else None

        def steps_with(masks=None):
            images = [data for data, _, _ in planes]
            return segment_many_steps(
                images, method.name, k, rgb=layers[0].rgb, masks=masks, **options
            )

        steps = steps_with()
        first = next(steps)  # validates every image before any thread starts
        if plans is not None:
            steps.close()
            steps = _masked_many(plans, [index for _, _, index in planes], steps_with)
        requests = [
            self._request(layer, placement, index, [])
            for layer, (_, placement, index) in zip(layers, planes)
        ]
        data_then = [(layer, layer.data) for layer in layers]
        return self._launch(
            first,
            _segment_many_and_build(steps, requests),
            layers[0],
            lambda result: self._add_pooled_layers(result, data_then),
        )

    def _add_pooled_layers(self, result, data_then):
        """Add every image's layers (the result of each image whose data stayed)."""
        pooled, specs = result
        for layer, data in data_then:
            if layer not in self._viewer.layers or layer.data is not data:
                raise ValueError(
                    f"'{layer.name}' was removed or its data changed during the run; "
                    "nothing was added. Run again."
                )
        if self._replace.value:
            for layer, _ in data_then:
                self._remove_previous(layer.name, pooled.results[0].method)
        add_result_layers(self._viewer, [spec for image_specs in specs for spec in image_specs])
        title = METHODS[pooled.results[0].method].title
        seconds = time.perf_counter() - self._started
        fit = pooled.results[0].params.get("seconds", 0)
        summary = (
            f"{title}: one model on {len(pooled)} images, {pooled.n_clusters} clusters in "
            f"{seconds:.1f} s (fit {fit:.1f} s)"
        )
        self._status.value = summary
        show_info(summary)

    def _busy_text(self, step) -> str | None:
        return self._running_method.busy_text(step) if self._running_method else None

    def _add_layers(self, result, layer):
        """Add the layers the worker built (on the GUI thread: napari's own work only)."""
        seg, specs = result
        if not _found_anything(seg):  # e.g. no edge above the thresholds: say what to do
            message = _nothing_found(seg, layer.name)
            self._status.value = message.split(";")[0]
            show_warning(message)
            return
        if self._replace.value:
            self._remove_previous(layer.name, seg.method)
        add_result_layers(self._viewer, specs)
        summary = self._summary_of(seg, time.perf_counter() - self._started)
        self._status.value = summary
        show_info(summary)

    @staticmethod
    def _summary_of(seg, total_seconds: float) -> str:
        """What was found and how long the whole run took (fit, outlines, layers)."""
        fit = seg.params.get("seconds", 0)
        if METHODS[seg.method].output == "edges":
            return (
                f"{METHODS[seg.method].title}: {int(seg.pixel_counts.sum()):,} edge "
                f"pixels in {total_seconds:.1f} s"
            )
        timing = f"in {total_seconds:.1f} s (fit {fit:.1f} s)"
        level = seg.params.get("lazy_level")
        on_level = f" (on a level {1 / seg.params['downscale']:.0f}x smaller)" if level else ""
        return f"{METHODS[seg.method].title}: {seg.n_clusters} clusters {timing}{on_level}"

    def _remove_previous(self, source: str, method: str):
        for layer in list(self._viewer.layers):
            tag = layer.metadata.get(METADATA_KEY, {})
            made_from = tag.get("source", "")
            same_source = made_from == source or made_from.startswith(f"{source} (plane ")
            if tag.get("method") == method and same_source and tag.get("output") != PREVIEW_OUTPUT:
                self._viewer.layers.remove(layer)

    def _recolor_results(self, random_colors: bool):
        """Switch the chosen result's clusters between mean and random colors: the run
        of the selected layer, else the newest result (earlier results keep theirs)."""
        layer = chosen_clusters_layer(self._viewer.layers, self._viewer.layers.selection.active)
        if layer is not None:
            recolor_clusters(layer, random_colors)
        self._preview.recolor(random_colors)

    # ----------------------------------------------------------------- live preview
    def _preview_request(self) -> PreviewRequest:
        """The choices as the live preview uses them (a ValueError if they cannot be)."""
        layer = self._chosen_image()
        method = self.method
        return PreviewRequest(
            layer=layer,
            method=method,
            n_clusters=self._n_clusters.value if method.needs_n_clusters else None,
            options=self._options(),
            mask_layer=self._inside.value,
            plane=self._current_index(layer) if layer.ndim > 2 else (),
            random_colors=self._random_colors.value,
        )

    def _show_preview_status(self, text: str):
        self._status.value = text

    def _finish(self, *args):
        super()._finish(*args)
        try:
            self._show_posteriors()  # enabling every control re-enabled these too
            self._show_pooling()
        except RuntimeError:  # the widget was closed during the run
            pass
        self._preview.run_finished()  # a preview that waited for the run


def _found_anything(seg) -> bool:
    """False for a result without a single labelled pixel (edges: none above the
    thresholds)."""
    return bool(seg.n_clusters) and int(np.sum(seg.pixel_counts)) > 0


def _nothing_found(seg, image: str) -> str:
    """Why a run found nothing, with the thresholds and sigma it used if it has any, and
    what to change (the method's declared hint)."""
    params = seg.params
    used = [
        f"{name.replace('_', ' ')} {params[key]:.4g}"
        for name, key in (
            ("low threshold", "low_threshold_used"),
            ("high threshold", "high_threshold_used"),
            ("sigma", "sigma"),
        )
        if isinstance(params.get(key), (int, float))
    ]
    settings = f" ({', '.join(used)})" if used else ""
    return (
        f"{METHODS[seg.method].title}: nothing found in '{image}'{settings}; no layer "
        f"was added. {METHODS[seg.method].empty_hint}"
    ).strip()


def _segment_and_build(steps, request: LayerRequest):
    """In the worker: walk the remaining steps (each a cancel point), build the layers."""
    seg = yield from steps
    yield "layers", 1.0
    return seg, result_layers(seg, request)


def _same_kind(layer, other) -> bool:
    """True for image layers one model can be fitted on together: both grey or both RGB
    with as many channels, of one data type."""
    if bool(layer.rgb) != bool(other.rgb) or layer.dtype != other.dtype:
        return False
    return not layer.rgb or _channels(layer) == _channels(other)


def _channels(layer) -> int:
    data = layer.data[0] if layer.multiscale else layer.data
    return int(data.shape[-1])


def _masked_many(plans, planes, steps_with):
    """In the worker: read each image's mask (the same "only inside" layer over each),
    then walk ``steps_with(masks)``; each result records the mask layer's name."""
    yield "mask", 0.0
    masks = [read_mask(plan, plane) for plan, plane in zip(plans, planes)]
    pooled = yield from steps_with(masks)
    for result in pooled.results:
        record = result.params.get("mask")
        if isinstance(record, dict):
            record["layer"] = plans[0].name
    return pooled


def _segment_many_and_build(steps, requests: list[LayerRequest]):
    """In the worker: the pooled fit (each step a cancel point), then every image's
    layers (a cancel point between images), each tagged with the pooled fit: the images,
    its index among them, the pooled table."""
    while True:
        try:
            stage, fraction = next(steps)
        except StopIteration as stop:
            pooled = stop.value
            break
        yield POOLED_STAGES.get(stage, stage), fraction
    table = pooled.table.to_dict(orient="list")
    images = [request.source for request in requests]
    specs = []
    for i, (seg, request) in enumerate(zip(pooled.results, requests)):
        yield "layers", i / len(requests)
        request.pooled = {"images": images, "index": i, "table": table}
        specs.append(result_layers(seg, request))
    return pooled, specs


__all__ = ["PixelClustersWidget"]
