"""The "Choose number of clusters" dock widget: a sweep over k, plotted in the dock.

Runs :func:`sweep_steps` in a worker (one progress step per k, Cancel between them) and
plots the scores against k in napari's colours: inertia (the elbow) and silhouette for
k-means, BIC/AIC and silhouette for Gaussian mixtures, with the suggested k marked.
Clicking a k sets it in the Pixel clusters widget (and runs it, if asked).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, PushButton, SpinBox
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.theme import get_theme
from qtpy.QtWidgets import QFileDialog

from ..core import FEATURE_PARAMS, METHODS, sweep_steps
from ..core.registry import RANDOM_STATE
from ..core.sweep import DEFAULT_SAMPLE_SIZE
from . import _panel
from ._panel import RunPanel, large_image_levels
from .widget import param_widget, widget_value

if TYPE_CHECKING:
    import napari

PIXEL_CLUSTERS_DOCK = "Pixel clusters (napari-pixel-clusters)"
PANELS = {  # method -> the two scores plotted, top and bottom
    "kmeans": (("inertia",), ("silhouette",)),
    "gmm": (("bic", "aic"), ("silhouette",)),
}
LABELS = {"inertia": "inertia", "bic": "BIC", "aic": "AIC", "silhouette": "silhouette"}


class ChooseKWidget(RunPanel):
    """Sweep k for k-means or a Gaussian mixture and pick the number of clusters."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self.sweep = None
        self._method = ComboBox(name="method", label="method",
                                choices=[(METHODS[m].title, m) for m in PANELS])
        self._k_min = SpinBox(name="k_min", label="k from", value=2, min=1, max=100)
        self._k_max = SpinBox(name="k_max", label="k to", value=10, min=2, max=100)
        self._feature_widgets = {p.name: param_widget(p) for p in FEATURE_PARAMS}
        self._features = Container(name="features", label="features", labels=True,
                                   widgets=list(self._feature_widgets.values()))
        self._random_state = param_widget(RANDOM_STATE)
        self._sample_size = SpinBox(name="sample_size", label="pixel sample",
                                    value=DEFAULT_SAMPLE_SIZE, min=100, max=100_000,
                                    tooltip="Pixels drawn for the silhouette (exact "
                                    "silhouette on every pixel would be quadratic).")
        self._run_on_click = CheckBox(name="run_on_click", value=False,
                                      text="run Pixel clusters when a k is clicked")
        self._save_plot = PushButton(name="save_plot", text="Save plot (PNG)...")
        self._save_table = PushButton(name="save_table", text="Save table (CSV)...")
        self.extend([self._image, self._method, self._k_min, self._k_max, self._features,
                     self._random_state, self._sample_size])
        self._finish_layout()
        self.figure = Figure(figsize=(4, 5), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(360)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self.native.layout().addWidget(self.canvas)
        self.extend([self._run_on_click, self._save_plot, self._save_table])
        self._save_plot.changed.connect(lambda: self.save_plot())
        self._save_table.changed.connect(lambda: self.save_table())
        self._image.changed.connect(self._show_image_options)
        viewer.events.theme.connect(lambda event: self._draw())
        self._show_image_options()
        self._draw()

    def _show_image_options(self, event=None):
        layer = self._image.value
        self._feature_widgets["color_space"].visible = bool(layer is not None and layer.rgb)

    # ----------------------------------------------------------------- running
    def _options(self) -> dict:
        colour = bool(self._image.value is not None and self._image.value.rgb)
        options = {p.name: widget_value(self._feature_widgets[p.name], p)
                   for p in FEATURE_PARAMS if p.name != "color_space" or colour}
        options["random_state"] = self._random_state.value
        return options

    def _start(self):
        """Validate, then sweep in a worker thread (see ``RunPanel.run``)."""
        layer = self._chosen_image()
        levels = large_image_levels(layer)  # large images: read chunk by chunk
        steps = sweep_steps(levels[0] if levels else np.asarray(layer.data),
                            self._method.value,
                            range(self._k_min.value, self._k_max.value + 1),
                            rgb=layer.rgb, sample_size=self._sample_size.value,
                            **self._options())
        first = next(steps)
        return self._launch(first, steps, layer, self._show_sweep)

    def _show_sweep(self, result):
        self.sweep = result
        self._status.value = result.rule
        self._draw()

    # ----------------------------------------------------------------- plotting
    def _colours(self) -> dict:
        theme = get_theme(self._viewer.theme)
        return {"background": theme.background.as_hex(), "text": theme.text.as_hex(),
                "line": theme.highlight.as_hex(), "mark": theme.current.as_hex()}

    def _draw(self):
        colours = self._colours()
        self.figure.clear()
        self.figure.set_facecolor(colours["background"])
        method = self.sweep.method if self.sweep is not None else self._method.value
        self.axes = self.figure.subplots(2, 1, sharex=True)
        for axes, scores in zip(self.axes, PANELS[method]):
            axes.set_facecolor(colours["background"])
            for spine in axes.spines.values():
                spine.set_color(colours["text"])
            axes.tick_params(colors=colours["text"])
            axes.set_ylabel(" / ".join(LABELS[s] for s in scores), color=colours["text"])
            if self.sweep is None:
                continue
            table = self.sweep.table
            for score, style in zip(scores, ("o-", "s--")):
                axes.plot(table["k"], table[score], style, color=colours["text"],
                          label=LABELS[score], picker=5)
            axes.axvline(self.sweep.suggested_k, color=colours["mark"], linewidth=2)
            if len(scores) > 1:
                axes.legend(facecolor=colours["background"], labelcolor=colours["text"])
        self.axes[-1].set_xlabel("number of clusters k", color=colours["text"])
        if self.sweep is None:
            self.axes[0].set_title("Run to compare numbers of clusters", color=colours["text"])
        else:
            self.axes[0].set_title(f"suggested k = {self.sweep.suggested_k} "
                                   "(click a k to use it)", color=colours["text"])
        self.canvas.draw_idle()

    def _on_click(self, event):
        if self.sweep is None or event.xdata is None:
            return
        ks = self.sweep.table["k"].to_numpy()
        self.choose_k(int(ks[np.argmin(np.abs(ks - event.xdata))]))

    def choose_k(self, k: int):
        """Set k (and method) in the Pixel clusters widget, opening it if needed."""
        _, widget = self._viewer.window.add_plugin_dock_widget(
            "napari-pixel-clusters", "Pixel clusters")
        widget._method.value = self.sweep.method
        widget._n_clusters.value = k
        widget._image.value = self._image.value
        self._status.value = f"k={k} set in Pixel clusters"
        if self._run_on_click.value:
            widget.run()
        return widget

    # ----------------------------------------------------------------- saving
    def save_plot(self, path: str | None = None):
        path = path or QFileDialog.getSaveFileName(self.native, "Save plot", "sweep.png",
                                                   "PNG (*.png)")[0]
        if path:
            self.figure.savefig(path, facecolor=self.figure.get_facecolor(), dpi=150)
        return path

    def save_table(self, path: str | None = None):
        if self.sweep is None:
            _panel.notify_error("Run a sweep first: there is no table to save.")
            return None
        path = path or QFileDialog.getSaveFileName(self.native, "Save table", "sweep.csv",
                                                   "CSV (*.csv)")[0]
        if path:
            self.sweep.table.to_csv(Path(path), index=False)
        return path

