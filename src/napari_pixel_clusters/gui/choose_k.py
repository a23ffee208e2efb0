"""The "Choose number of clusters" dock widget: a sweep over k, plotted in the dock.

Runs :func:`sweep_steps` in a worker (one progress step per k, Cancel between them) and
plots the scores against k in napari's colors, with the suggested k marked: on top the
scores the method declares (``Method.sweep_scores``: inertia with its elbow marked for
k-means, BIC and AIC in two colors with a legend for Gaussian mixtures), below the
silhouette. Only methods that can be swept (``Method.sweepable``) are offered.

The image, its "only inside" mask (a Labels or Shapes layer: the sweep fits and scores
only the pixels inside, see :mod:`.masks`), features and random state are the viewer's
shared settings (:mod:`.state`): Pixel clusters shows what is set here and the other way round.
Clicking a k puts the sweep's own settings back into the shared settings, sets
``n_clusters`` and emits ``k_chosen`` (see :meth:`ChooseKWidget.choose_k`), so Pixel
clusters uses the k with the features it was swept with. The two widgets never touch
each other's controls: the shared settings are all they know of each other.
The controls and the plot scroll inside the dock, which stays short on small screens.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, SpinBox
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from napari.utils.theme import get_theme
from qtpy.QtCore import QEvent, Qt, QTimer
from qtpy.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QScrollArea

from ..core import FEATURE_PARAMS, METHODS, sweep_steps
from ..core.registry import N_CLUSTERS, RANDOM_STATE
from ..core.sweep import DEFAULT_SAMPLE_SIZE
from . import _panel
from ._controls import (
    method_choices,
    offers_none,
    param_widget,
    show_feature_controls,
    stain_choices,
    sweepable_methods,
)
from ._panel import RunPanel, is_result, large_image_levels
from .docking import QtEventWatch
from .masks import mask_choice, masked_steps, plan_mask, spatial_chunks
from .state import shared_settings

if TYPE_CHECKING:
    import napari

#: The scores plotted below each method's own (``Method.sweep_scores``, on top).
BOTTOM_SCORES = ("silhouette",)
#: How score names read on the plot (a score not listed reads as its name).
LABELS = {"inertia": "inertia", "bic": "BIC", "aic": "AIC", "silhouette": "silhouette"}
#: Second curve of a panel (AIC) and the elbow mark: an orange that reads on dark and
#: light themes alike (the first curve is in the theme's text color).
SECOND_COLOR = "#f28e2b"
#: The plot's height: it scrolls with the controls when the dock is shorter.
PLOT_HEIGHT = 340
#: Docked under other widgets, the dock asks for this share of the window's height (Qt
#: gives a new dock its minimum otherwise): the plot shows without scrolling far.
DOCK_SHARE = 0.55
SHARED = (
    "color_space",
    "stain_vectors",
    "stain_background",
    "spatial_weight",
    "standardize",
    "random_state",
)


class ChooseKWidget(RunPanel):
    """Sweep k with a method that can be swept and pick the number of clusters."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, scrollable=True)
        self.sweep = None
        self._swept = {}  # the shared settings the shown sweep was run with
        self._settings = shared_settings(viewer)
        self._syncing = False  # True while controls are set from the shared settings
        self._method = ComboBox(
            name="method", label="method", choices=method_choices(sweepable_methods())
        )
        self._k_min = SpinBox(
            name="k_min",
            value=2,
            min=1,
            max=100,
            tooltip="The smallest number of clusters to try.",
        )
        self._k_max = SpinBox(
            name="k_max",
            value=10,
            min=2,
            max=100,
            tooltip="The largest number of clusters to try.",
        )
        self._k_range = Container(
            name="k_range",
            label="k from",
            layout="horizontal",
            labels=False,
            widgets=[self._k_min, Label(value="to"), self._k_max],
        )
        self._k_range.margins = (0, 0, 0, 0)
        #: the shared settings' controls, made as Pixel clusters makes them
        self._controls = {p.name: param_widget(p) for p in (*FEATURE_PARAMS, RANDOM_STATE)}
        self._inside = mask_choice(viewer)  # "only inside": shared, as the image
        self._sample_size = SpinBox(
            name="sample_size",
            label="pixel sample",
            value=DEFAULT_SAMPLE_SIZE,
            min=100,
            max=100_000,
            tooltip="Pixels drawn for the silhouette (exact "
            "silhouette on every pixel would be quadratic).",
        )
        self._run_on_click = CheckBox(
            name="run_on_click", value=False, text="run Pixel clusters when a k is clicked"
        )
        self._save_plot = PushButton(name="save_plot", text="Save plot (PNG)...")
        self._save_table = PushButton(name="save_table", text="Save table (CSV)...")
        self._saves = Container(
            name="save",
            label="",
            layout="horizontal",
            labels=False,
            widgets=[self._save_plot, self._save_table],
        )
        self._saves.margins = (0, 0, 0, 0)
        self.extend(
            [
                self._image,
                self._inside,
                self._method,
                self._k_range,
                *[self._controls[name] for name in SHARED],
                self._sample_size,
            ]
        )
        self._finish_layout()
        self.figure = Figure(figsize=(4, 4.2), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(PLOT_HEIGHT)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self._inner_layout().addWidget(self.canvas)
        self.extend([self._run_on_click, self._saves])
        self._method.changed.connect(lambda *_: self._draw())  # its scores' axes
        self._method.changed.connect(self._show_image_options)  # the features it takes
        self._save_plot.changed.connect(lambda: self.save_plot())
        self._save_table.changed.connect(lambda: self.save_table())
        self._follow_shared_settings()
        viewer.events.theme.connect(lambda event: self._draw())
        self._show_image_options()
        self._enable_saves()
        self._draw()
        QtEventWatch(
            self.root_native_widget,
            QEvent.Type.Show,
            lambda: QTimer.singleShot(0, self._take_fair_height),
            once=True,
        )

    def _take_fair_height(self):
        """Once docked under other docks, take a fair share of the window's height (the
        others shrink or scroll; the window keeps its size)."""
        try:
            dock = self.root_native_widget.parentWidget()
        except RuntimeError:  # closed before it showed
            return
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        window = dock.parentWidget() if dock is not None else None
        if dock is None or dock.isFloating() or not isinstance(window, QMainWindow):
            return
        wanted = min(
            self.root_native_widget.widget().sizeHint().height(), int(DOCK_SHARE * window.height())
        )
        if dock.height() < wanted:
            window.resizeDocks([dock], [wanted], Qt.Orientation.Vertical)

    def _inner_layout(self):
        """The layout holding the controls (inside the scroll area, when there is one)."""
        native = self.root_native_widget
        return (native.widget() if isinstance(native, QScrollArea) else native).layout()

    # ----------------------------------------------------------- shared settings
    def _follow_shared_settings(self):
        """Controls <-> shared settings: each control sets its field, each field event
        sets the control (without echoing back). Disconnected when the widget closes."""
        settings = self._settings
        self._followers = []
        for name in (*SHARED, "mask", "image"):
            control = self._control(name)
            control.changed.connect(self._setter(name))
            self._followers.append((getattr(settings.events, name), self._shower(name)))
        self._image.changed.connect(self._show_image_options)
        for signal, callback in self._followers:
            signal.connect(callback)
        self.native.destroyed.connect(self._unfollow_shared_settings)
        for name in (*SHARED, "mask"):  # start from what is shared (another widget set it)
            self._show_shared(name, getattr(settings, name))
        if settings.image is not None and settings.image in self._viewer.layers:
            self._show_shared("image", settings.image)
        else:
            settings.image = self._image.value

    def _unfollow_shared_settings(self, *args):
        for signal, callback in self._followers:
            signal.disconnect(callback)
        self._followers = []

    def _control(self, name: str):
        """The control that shows the shared setting ``name``."""
        return {"image": self._image, "mask": self._inside, **self._controls}[name]

    def _setter(self, name: str):
        return lambda value: self._set_shared(name, value)

    def _shower(self, name: str):
        return lambda value: self._show_shared(name, value)

    def _set_shared(self, name: str, value):
        """A control changed: share its value (not a result layer chosen as the image,
        which Pixel clusters would not follow onto)."""
        if self._syncing or (name == "image" and (value is None or is_result(value))):
            return
        setattr(self._settings, name, value)

    def _show_shared(self, name: str, value):
        control = self._control(name)
        if name == "image":
            control.reset_choices()
            if value is None or value not in [layer for _, layer in self._image_layers()]:
                return
        if name == "mask" and value not in control.choices:  # (not listed yet)
            control.reset_choices()
            if value not in control.choices:
                return
        if value is None and not offers_none(control):
            return  # random_state None: a new start each run; the box keeps its number
        self._syncing = True
        try:
            control.value = value
        except RuntimeError:  # the widget was closed; the settings outlive it
            pass
        finally:
            self._syncing = False

    def _show_image_options(self, *args):
        """The controls of the feature options the method takes (color space: RGB only)."""
        layer = self._image.value
        with contextlib.suppress(RuntimeError):  # closed
            rgb = bool(layer is not None and layer.rgb)
            show_feature_controls(self._controls, METHODS[self._method.value], rgb)

    # ----------------------------------------------------------------- running
    def _settings_used(self) -> dict:
        """The shared features the method takes and the random state, as the controls hold
        them (the color space for RGB images only; a stain vectors file by its path)."""
        method = METHODS[self._method.value]
        rgb = self._chosen_image().rgb
        return {
            name: value
            for name, value in self._settings.features().items()
            if name in (*method.takes_features, "random_state") and (name != "color_space" or rgb)
        }

    def _options(self) -> dict:
        """:meth:`_settings_used` as keyword arguments of ``sweep``: the stain options with
        color space "stains" only, a stain vectors file read (a ``ValueError`` naming it)."""
        return stain_choices(self._settings_used())

    def _start(self):
        """Validate, then sweep in a worker thread (see ``RunPanel.run``)."""
        layer = self._chosen_image()
        settings = self._settings_used()
        options = stain_choices(settings)
        levels = large_image_levels(layer)  # large images: read chunk by chunk
        mask_layer = self._inside.value
        plan = plan_mask(mask_layer, layer)  # checked here, read in the worker
        image = levels[0] if levels else np.asarray(layer.data)

        def steps_with(mask=None):
            return sweep_steps(
                image,
                self._method.value,
                range(self._k_min.value, self._k_max.value + 1),
                rgb=layer.rgb,
                sample_size=self._sample_size.value,
                mask=mask,
                **options,
            )

        steps = steps_with()
        first = next(steps)
        if plan is not None:  # a large mask layer takes time to read: in the worker
            steps.close()
            steps = masked_steps(plan, steps_with, (), spatial_chunks(levels, layer.rgb))
        worker = self._launch(
            first,
            steps,
            layer,
            lambda result: self._show_sweep(result, layer, settings, mask_layer),
        )
        return worker

    def _show_sweep(self, result, layer, settings, mask_layer=None):
        self.sweep = result
        self._swept = {"image": layer, "mask": mask_layer, **settings}
        self._status.value = result.rule
        self._draw()
        self._enable_saves()
        if isinstance(self.root_native_widget, QScrollArea):  # show the plot
            self.root_native_widget.ensureWidgetVisible(self.canvas)

    def _finish(self, *args):
        super()._finish(*args)
        self._enable_saves()

    def _enable_saves(self):
        """Save buttons only with a sweep to save."""
        with contextlib.suppress(RuntimeError):  # closed during a run
            self._save_plot.enabled = self._save_table.enabled = self.sweep is not None

    # ----------------------------------------------------------------- plotting
    def _colors(self) -> dict:
        theme = get_theme(self._viewer.theme)
        return {
            "background": theme.background.as_hex(),
            "text": theme.text.as_hex(),
            "second": SECOND_COLOR,
            "mark": theme.current.as_hex(),
        }

    def _draw(self):
        colors = self._colors()
        self.figure.clear()
        self.figure.set_facecolor(colors["background"])
        method = self.sweep.method if self.sweep is not None else self._method.value
        self.axes = self.figure.subplots(2, 1, sharex=True)
        for axes, scores in zip(self.axes, (METHODS[method].sweep_scores, BOTTOM_SCORES)):
            self._style_axes(axes, scores, colors)
            if self.sweep is not None:
                self._plot_scores(axes, scores, colors)
        self.axes[-1].set_xlabel("number of clusters k", color=colors["text"])
        if self.sweep is None:
            title = "Run to compare numbers of clusters"
        else:
            edge = ", the edge: try a wider range" if self.sweep.at_range_edge else ""
            title = f"suggested k = {self.sweep.suggested_k}{edge}\nclick a k to use it"
        self.axes[0].set_title(title, color=colors["text"], fontsize="medium")
        self.canvas.draw_idle()

    @staticmethod
    def _style_axes(axes, scores, colors):
        axes.set_facecolor(colors["background"])
        for spine in axes.spines.values():
            spine.set_color(colors["text"])
        axes.tick_params(colors=colors["text"])
        axes.set_ylabel(" / ".join(LABELS.get(s, s) for s in scores), color=colors["text"])
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))

    def _plot_scores(self, axes, scores, colors):
        """The scores' curves (first in the text color, second in orange), the elbow on
        the inertia curve and the suggested k; a legend when there is more than a curve."""
        table, sweep = self.sweep.table, self.sweep
        for score, style, color in zip(scores, ("o-", "s--"), (colors["text"], colors["second"])):
            axes.plot(
                table["k"],
                table[score],
                style,
                color=color,
                label=LABELS.get(score, score),
                picker=5,
            )
        if "inertia" in scores and sweep.elbow_k is not None:
            value = table.loc[table["k"] == sweep.elbow_k, "inertia"].iloc[0]
            axes.plot(
                [sweep.elbow_k],
                [value],
                "o",
                markersize=13,
                markerfacecolor="none",
                markeredgewidth=2,
                color=colors["second"],
                label=f"elbow (k={sweep.elbow_k})",
            )
        axes.axvline(
            sweep.suggested_k,
            color=colors["mark"],
            linewidth=2,
            label=f"suggested k={sweep.suggested_k}",
        )
        if axes is self.axes[0]:
            axes.legend(
                facecolor=colors["background"],
                labelcolor=colors["text"],
                edgecolor=colors["text"],
                fontsize="small",
            )

    def _on_click(self, event):
        if self.sweep is None or event.xdata is None:
            return
        ks = self.sweep.table["k"].to_numpy()
        self.choose_k(int(ks[np.argmin(np.abs(ks - event.xdata))]))

    def choose_k(self, k: int):
        """Use ``k`` with the sweep's settings: they go back into the shared settings
        (image, features, random state; ``n_clusters`` = k), then ``k_chosen`` asks Pixel
        clusters (opened if needed) to take the sweep's method, and to run if "run Pixel
        clusters when a k is clicked" is ticked. Returns the Pixel clusters widget."""
        if self.sweep is None:
            _panel.notify_error("Run a sweep first: there is no k to choose yet.")
            return None
        k = N_CLUSTERS.check(k)
        _, widget = self._viewer.window.add_plugin_dock_widget(
            "napari-pixel-clusters", "Pixel clusters"
        )
        swept = dict(self._swept)
        if swept.get("image") not in self._viewer.layers:  # removed since: keep the current
            swept.pop("image", None)
        if swept.get("mask") is not None and swept["mask"] not in self._viewer.layers:
            swept.pop("mask")
        self._settings.update(**swept)
        self._settings.choose_k(self.sweep.method, k, self._run_on_click.value)
        self._status.value = (
            f"k={k} ({METHODS[self.sweep.method].title}) set in Pixel "
            "clusters, with the sweep's settings"
        )
        return widget

    # ----------------------------------------------------------------- saving
    def save_plot(self, path: str | None = None):
        if self.sweep is None:
            _panel.notify_error("Run a sweep first: there is no plot to save.")
            return None
        path = (
            path
            or QFileDialog.getSaveFileName(self.native, "Save plot", "sweep.png", "PNG (*.png)")[0]
        )
        if path:
            self.figure.savefig(path, facecolor=self.figure.get_facecolor(), dpi=150)
        return path

    def save_table(self, path: str | None = None):
        if self.sweep is None:
            _panel.notify_error("Run a sweep first: there is no table to save.")
            return None
        path = (
            path
            or QFileDialog.getSaveFileName(self.native, "Save table", "sweep.csv", "CSV (*.csv)")[
                0
            ]
        )
        if path:
            self.sweep.table.to_csv(Path(path), index=False)
        return path
