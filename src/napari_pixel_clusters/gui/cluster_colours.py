"""The "Cluster colours" dock widget: what the clusters of a clusters layer are in colour.

- A dominant-colour bar: each cluster's mean colour, as wide as its share of the pixels
  (hover for the percentage; click to select the cluster).
- The same pixels in colour space: a reproducible sample, in the three 2-D projections of
  the feature space the clusters were made in (R-G, R-B, G-B or L-a, L-b, a-b), coloured
  by their own colour or their cluster's, with the cluster centres marked. Clicking a
  centre, or drawing a lasso around centres, selects those clusters in the Labels layer.
- "Open 3-D view": the sample as a napari Points layer in colour-space coordinates.

Everything is read from the layer itself (its data, ``features`` and ``metadata``), so
painted edits show after "Update".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, SpinBox
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.path import Path
from matplotlib.widgets import LassoSelector
from napari.layers import Labels
from napari.utils.theme import get_theme

from ..core.features import colour_coordinates, rgb_to_unit_range
from ..core.lazy import is_lazy
from . import _panel
from ._panel import clusters_layer_choice
from .layers import METADATA_KEY

if TYPE_CHECKING:
    import napari

PIXEL_COLOUR, CLUSTER_COLOUR = "own colour", "cluster colour"
PAIRS = ((0, 1), (0, 2), (1, 2))


#: Of a pyramid, the sample comes from the smallest level with this many pixels per
#: sampled pixel (computed whole: a small level of a large image).
PIXELS_PER_SAMPLE = 20


def _in_memory_level(layer: Labels, source, size: int):
    """The image and its labels in memory: for pyramids, matching small levels."""
    if not (source.multiscale or is_lazy(source.data)):
        return np.asarray(source.data), np.asarray(layer.data)
    if not (source.multiscale and layer.multiscale
            and len(source.data) == len(layer.data)):
        raise ValueError(f"'{source.name}' is a large image that is not a pyramid; its "
                         f"colours are plotted from a small level, which it does not have "
                         f"(the cluster table of '{layer.name}' has them).")
    spatial = [np.prod(level.shape[:-1] if source.rgb else level.shape)
               for level in source.data]
    enough = [i for i, n in enumerate(spatial) if n >= PIXELS_PER_SAMPLE * size]
    level = enough[-1] if enough else 0
    return np.asarray(source.data[level]), np.asarray(layer.data[level])


class ColourSample:
    """A reproducible sample of a clusters layer's pixels, in its feature space."""

    def __init__(self, layer: Labels, source, size: int):
        tag = layer.metadata[METADATA_KEY]
        params = tag["params"]
        image, labels = _in_memory_level(layer, source, size)
        if tag.get("plane"):
            image = image[tuple(tag["plane"])][np.newaxis]
        pixels = image.reshape(-1, image.shape[-1]) if source.rgb else image.reshape(-1, 1)
        labels = labels.reshape(-1)
        if len(labels) != len(pixels):
            raise ValueError(f"'{layer.name}' no longer has the shape of '{source.name}'.")
        labelled = np.flatnonzero(labels > 0)
        rng = np.random.default_rng(0)
        chosen = rng.choice(labelled, size=min(size, len(labelled)), replace=False)
        self.labels = labels[chosen]
        self.table = layer.features.set_index("index")
        self.space = params.get("color_space") or ("rgb" if source.rgb else None)
        means = self.table[[c for c in self.table.columns if c.startswith("mean_")]]
        if self.space is not None:
            self.coords, self.names = colour_coordinates(pixels[chosen, :3], self.space)
            mean_rgb = means.to_numpy()[:, :3].astype(np.float64)
            if np.issubdtype(pixels.dtype, np.integer):
                mean_rgb /= np.iinfo(pixels.dtype).max  # floats are read as 0..1
            self.centres = colour_coordinates(mean_rgb, self.space)[0]
            self.own_colours = np.clip(rgb_to_unit_range(pixels[chosen, :3]), 0, 1)
        else:
            self.coords = np.column_stack([pixels[chosen, 0], np.zeros(len(chosen))])
            self.names = ["intensity", ""]
            self.centres = np.column_stack([means.to_numpy()[:, 0], np.zeros(len(means))])
            values = self.coords[:, 0]
            grey = (values - values.min()) / max(np.ptp(values), 1e-12)
            self.own_colours = np.repeat(grey[:, None], 3, axis=1)
        self.cluster_colours = np.array([to_rgb(c) for c in self.table["color"]])
        self.centre_labels = self.table.index.to_numpy()

    def colours(self, mode: str) -> np.ndarray:
        if mode == PIXEL_COLOUR:
            return self.own_colours
        row = {label: i for i, label in enumerate(self.centre_labels)}
        return self.cluster_colours[[row[label] for label in self.labels]]


class ClusterColoursWidget(Container):
    """Colour bar and colour-space scatter of a clusters layer made by this plugin."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = viewer
        self.sample = None
        self._layer = clusters_layer_choice(viewer)
        self._sample_size = SpinBox(name="sample_size", label="pixel sample", value=5_000,
                                    min=100, max=200_000)
        self._colour_by = ComboBox(name="colour_by", label="points in",
                                   choices=[PIXEL_COLOUR, CLUSTER_COLOUR])
        self._update = PushButton(name="update", text="Update")
        self._open_3d = PushButton(name="open_3d", text="Open 3-D view")
        self._status = Label(name="status", label=" ", value="")
        self.extend([self._layer, self._sample_size, self._colour_by, self._update,
                     self._open_3d, self._status])
        self.figure = Figure(figsize=(4, 7), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(620)
        self.native.layout().addWidget(self.canvas)
        self.canvas.mpl_connect("motion_notify_event", self._on_hover)
        self.canvas.mpl_connect("button_press_event", self._on_bar_click)
        self.canvas.mpl_connect("pick_event", self._on_pick)
        self._update.changed.connect(self.update)
        self._open_3d.changed.connect(lambda: self.open_3d())
        self._colour_by.changed.connect(self._recolour)
        self._layer.changed.connect(self.update)
        viewer.events.theme.connect(lambda event: self.update())
        self.update()

    # ----------------------------------------------------------------- drawing
    def update(self, event=None):
        """Draw the chosen clusters layer (again, e.g. after painting)."""
        layer = self._layer.value
        self.sample = None
        if layer is not None:
            source_name = layer.metadata[METADATA_KEY].get("source_layer", "")
            if source_name not in self._viewer.layers:
                _panel.notify_error(f"The image '{source_name}' that '{layer.name}' was made "
                                    "from is not open; its colours cannot be shown.")
            else:
                try:
                    self.sample = ColourSample(layer, self._viewer.layers[source_name],
                                               self._sample_size.value)
                except ValueError as error:
                    _panel.notify_error(str(error))
        self._draw()

    def _theme(self):
        theme = get_theme(self._viewer.theme)
        return theme.background.as_hex(), theme.text.as_hex()

    def _style(self, axes, background, text):
        axes.set_facecolor(background)
        axes.tick_params(colors=text, labelsize=7)
        for spine in axes.spines.values():
            spine.set_color(text)

    def _draw(self):
        background, text = self._theme()
        self.figure.clear()
        self.figure.set_facecolor(background)
        grid = self.figure.add_gridspec(4, 1, height_ratios=(0.45, 1, 1, 1))
        self.bar_axes = self.figure.add_subplot(grid[0])
        self._style(self.bar_axes, background, text)
        self.scatter_axes, self.points, self.centre_marks, self._lassos = [], [], [], []
        if self.sample is None:
            self.bar_axes.set_title("Choose a clusters layer", color=text)
            self.canvas.draw_idle()
            return
        self._draw_bar(text)
        pairs = PAIRS if self.sample.space is not None else ((0, 1),)
        for row, (i, j) in enumerate(pairs, start=1):
            axes = self.figure.add_subplot(grid[row])
            self._style(axes, background, text)
            self._draw_scatter(axes, i, j, text)
        self.canvas.draw_idle()

    def _draw_bar(self, text):
        table = self.sample.table
        left = np.concatenate([[0], np.cumsum(table["fraction"].to_numpy())[:-1]])
        self.bar_patches = self.bar_axes.barh(
            0, table["fraction"], left=left, color=table["color"], height=1.0,
            edgecolor="none")
        self.bar_axes.set_xlim(0, 1)
        self.bar_axes.set_yticks([])
        self.bar_axes.set_title("dominant colours (width = share of pixels)", color=text,
                                fontsize=9)
        self.hover_text = self.bar_axes.annotate(
            "", xy=(0.5, 0.5), xycoords="axes fraction", ha="center", va="center",
            color="white", fontsize=9, bbox={"boxstyle": "round", "fc": "black", "alpha": .6})
        self.hover_text.set_visible(False)

    def _draw_scatter(self, axes, i, j, text):
        sample = self.sample
        points = axes.scatter(sample.coords[:, i], sample.coords[:, j], s=3,
                              c=sample.colours(self._colour_by.value), linewidths=0)
        marks = axes.scatter(sample.centres[:, i], sample.centres[:, j], s=90,
                             c=sample.cluster_colours, marker="X", edgecolors=text,
                             linewidths=1.2, picker=True, zorder=3)
        axes.set_xlabel(sample.names[i], color=text, fontsize=8)
        axes.set_ylabel(sample.names[j], color=text, fontsize=8)
        self.scatter_axes.append(axes)
        self.points.append(points)
        self.centre_marks.append(marks)
        self._lassos.append(LassoSelector(axes, lambda verts, i=i, j=j: self._on_lasso(
            verts, i, j)))

    def _recolour(self, event=None):
        if self.sample is None:
            return
        for points in self.points:
            points.set_facecolors(self.sample.colours(self._colour_by.value))
        self.canvas.draw_idle()

    # ----------------------------------------------------------------- interaction
    def _cluster_at(self, x: float) -> int | None:
        fractions = np.cumsum(self.sample.table["fraction"].to_numpy())
        index = int(np.searchsorted(fractions, x))
        return int(self.sample.centre_labels[index]) if index < len(fractions) else None

    def _on_hover(self, event):
        if self.sample is None or event.inaxes is not self.bar_axes or event.xdata is None:
            return
        label = self._cluster_at(event.xdata)
        if label is None:
            return
        row = self.sample.table.loc[label]
        self.hover_text.set_text(f"{row['name']}: {100 * row['fraction']:.1f} % of pixels")
        self.hover_text.set_visible(True)
        self.canvas.draw_idle()

    def _on_bar_click(self, event):
        if self.sample is not None and event.inaxes is self.bar_axes and event.xdata is not None:
            label = self._cluster_at(event.xdata)
            if label is not None:
                self.select_clusters([label])

    def _on_pick(self, event):
        if event.artist in self.centre_marks:
            self.select_clusters([int(self.sample.centre_labels[event.ind[0]])])

    def _on_lasso(self, vertices, i, j):
        inside = Path(vertices).contains_points(self.sample.centres[:, [i, j]])
        self.select_clusters([int(label) for label in self.sample.centre_labels[inside]])

    def select_clusters(self, labels: list[int]):
        """Show only these clusters in the Labels layer (napari's selected label)."""
        layer = self._layer.value
        if not labels or layer is None:
            return
        pixels = self.sample.table.loc[labels, "pixels"]
        layer.selected_label = int(pixels.idxmax())
        layer.show_selected_label = True
        names = ", ".join(self.sample.table.loc[labels, "name"])
        largest = self.sample.table.loc[layer.selected_label, "name"]
        self._status.value = (f"selected {names}" if len(labels) == 1
                              else f"lasso: {names}; showing the largest, {largest}")

    def open_3d(self):
        """The sample as points in colour space, in a new 3-D napari viewer."""
        import napari

        if self.sample is None or self.sample.space is None:
            _panel.notify_error("The 3-D view needs a clusters layer of an RGB image.")
            return None
        viewer = napari.Viewer(title=f"{self._layer.value.name} in {self.sample.space.upper()}",
                               ndisplay=3)
        spread = np.ptp(self.sample.coords, axis=0).max()
        viewer.add_points(self.sample.coords, face_color=self.sample.own_colours,
                          size=spread / 80, border_width=0, name="pixels")
        viewer.add_points(self.sample.centres, face_color=self.sample.cluster_colours,
                          size=spread / 25, symbol="cross", name="cluster centres")
        viewer.dims.axis_labels = self.sample.names
        return viewer
