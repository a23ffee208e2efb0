"""The "Cluster colors" dock widget: what the clusters of a clusters layer are in color.

- A dominant-color bar: each cluster's mean color, as wide as its share of the pixels
  (hover for the percentage; click to select the cluster).
- RGB images: the pixels in color space, a reproducible sample in the three 2-D
  projections of the feature space the clusters were made in (R-G, R-B, G-B or L-a, L-b,
  a-b; the stains' names for stain color spaces, with the result's own stain vectors),
  colored by their own color or their cluster's, with the cluster centers marked.
  Clicking a center, or drawing a lasso around centers, selects those clusters.
- Grey images: a grey-level histogram, each bar stacked by cluster in the cluster's
  color, the cluster centers marked; clicking a bar or a center selects its cluster.
- "Open 3-D view" (RGB images only): the sample as napari Points in color-space
  coordinates.

The selection is the layer's shared one (``cluster_selection``): it shows on the canvas,
in Cluster table, and here (selected segments outlined, their points and centers drawn
over a veil that fades the rest). Highlights are blitted over the drawn plots, so a
selection or hover redraws only what changed. The plots scroll inside the dock. Everything is read
from the layer itself (its data, ``features`` and ``metadata``), so painted edits show after
"Update".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, SpinBox
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.colors import to_rgb, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.path import Path
from matplotlib.widgets import LassoSelector
from napari.layers import Labels
from napari.utils.theme import get_theme
from qtpy.QtWidgets import QFrame, QScrollArea

from ..core.features import USER_STAINS, color_coordinates, rgb_to_unit_range
from ..core.lazy import is_lazy
from ..core.methods import METHODS
from ..core.stains import StainVectors, parse_stain_vectors
from . import _panel
from ._panel import clusters_layer_choice
from .cluster_selection import cluster_selection
from .docking import keep_window_on_screen
from .layers import METADATA_KEY

if TYPE_CHECKING:
    import napari

PIXEL_COLOR, CLUSTER_COLOR = "own color", "cluster color"
PAIRS = ((0, 1), (0, 2), (1, 2))
#: Height of the plots, in pixels: they scroll inside the dock when it is smaller.
PLOTS_HEIGHT = {"color": 560, "grey": 320}
#: The scrolled plots ask for at least this much of the dock.
MIN_PLOTS_HEIGHT = 100
#: Opacity of what is not selected, while something is.
FADED = 0.25
#: Bins of the grey-level histogram; values of at most this many grey levels get one each.
HISTOGRAM_BINS = 64
#: The histogram counts at most this many pixels (a reproducible sample of larger images).
HISTOGRAM_PIXELS = 2_000_000


#: Of a pyramid, the sample comes from the smallest level with this many pixels per
#: sampled pixel (computed whole: a small level of a large image).
PIXELS_PER_SAMPLE = 20


def _in_memory_level(layer: Labels, source, size: int):
    """The image and its labels in memory: for pyramids, matching small levels."""
    if not (source.multiscale or is_lazy(source.data)):
        return np.asarray(source.data), np.asarray(layer.data)
    if not (source.multiscale and layer.multiscale and len(source.data) == len(layer.data)):
        raise ValueError(
            f"'{source.name}' is a large image that is not a pyramid; its "
            f"colors are plotted from a small level, which it does not have "
            f"(the cluster table of '{layer.name}' has them)."
        )
    spatial = [np.prod(level.shape[:-1] if source.rgb else level.shape) for level in source.data]
    enough = [i for i, n in enumerate(spatial) if n >= PIXELS_PER_SAMPLE * size]
    level = enough[-1] if enough else 0
    return np.asarray(source.data[level]), np.asarray(layer.data[level])


class ColorSample:
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
        self.space = params.get("color_space") or (
            _default_color_space(params.get("method")) if source.rgb else None
        )
        means = self.table[[c for c in self.table.columns if c.startswith("mean_")]]
        if self.space is not None:
            stains = _stain_vectors(params, layer.name) if self.space == USER_STAINS else None
            self.coords, self.names = color_coordinates(pixels[chosen, :3], self.space, stains)
            mean_rgb = means.to_numpy()[:, :3].astype(np.float64)
            if np.issubdtype(pixels.dtype, np.integer):
                mean_rgb /= np.iinfo(pixels.dtype).max  # floats are read as 0..1
            self.centers = color_coordinates(mean_rgb, self.space, stains)[0]
            self.own_colors = np.clip(rgb_to_unit_range(pixels[chosen, :3]), 0, 1)
        else:
            self.coords = np.column_stack([pixels[chosen, 0], np.zeros(len(chosen))])
            self.names = ["grey level", "pixels"]
            self.centers = np.column_stack([means.to_numpy()[:, 0], np.zeros(len(means))])
            values = self.coords[:, 0]
            grey = (values - values.min()) / max(np.ptp(values), 1e-12)
            self.own_colors = np.repeat(grey[:, None], 3, axis=1)
            if len(labelled) > HISTOGRAM_PIXELS:
                labelled = np.sort(rng.choice(labelled, HISTOGRAM_PIXELS, replace=False))
            self.values = pixels[labelled, 0]
            self.value_labels = labels[labelled]
        self.cluster_colors = np.array([to_rgb(c) for c in self.table["color"]])
        self.center_labels = self.table.index.to_numpy()

    @property
    def is_grey(self) -> bool:
        """A grey image: one value per pixel (a histogram, no color space)."""
        return self.space is None

    def histogram(self, bins: int = HISTOGRAM_BINS):
        """Bin edges and (clusters, bins) pixel counts of the grey levels of each cluster."""
        values = self.values.astype(np.float64)
        low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
        if np.issubdtype(self.values.dtype, np.integer) and high - low + 1 <= bins:
            edges = np.arange(low - 0.5, high + 1.0)  # one bin per grey level
        else:
            edges = np.linspace(low, high if high > low else low + 1, bins + 1)
        rows = {label: i for i, label in enumerate(self.center_labels)}
        which = np.array(
            [rows.get(label, -1) for label in range(int(self.value_labels.max(initial=0)) + 1)]
        )[self.value_labels]
        kept = which >= 0
        bin_of = np.clip(np.searchsorted(edges, values[kept], side="right") - 1, 0, len(edges) - 2)
        counts = np.zeros((len(self.center_labels), len(edges) - 1), dtype=np.int64)
        np.add.at(counts, (which[kept], bin_of), 1)
        return edges, counts

    def colors(self, mode: str) -> np.ndarray:
        if mode == PIXEL_COLOR:
            return self.own_colors
        row = {label: i for i, label in enumerate(self.center_labels)}
        return self.cluster_colors[[row[label] for label in self.labels]]


class _PlotCanvas(FigureCanvasQTAgg):
    """A matplotlib canvas that lets the mouse wheel scroll the dock around it."""

    def wheelEvent(self, event):
        event.ignore()


class ClusterColorsWidget(Container):
    """Color bar and color-space scatter (or grey-level histogram) of a clusters layer
    made by this plugin."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        keep_window_on_screen(self.native)
        self._viewer = viewer
        self.sample = None
        self._selection = None  # the shared selection of the chosen layer
        self._announced = ()  # the selection last made (and described) here
        self._layer = clusters_layer_choice(viewer)
        self._sample_size = SpinBox(
            name="sample_size",
            label="sample",
            value=5_000,
            min=100,
            max=200_000,
            tooltip="Pixels drawn in the color-space plots.",
        )
        # wide enough for "200000" between its buttons (napari's style sheet sets 70 px)
        self._sample_size.native.setStyleSheet("QAbstractSpinBox { min-width: 100px; }")
        self._color_by = ComboBox(
            name="color_by", label="points in", choices=[PIXEL_COLOR, CLUSTER_COLOR]
        )
        self._update = PushButton(name="update", text="Update")
        self._open_3d = PushButton(
            name="open_3d",
            text="Open 3-D view",
            visible=False,
            tooltip="The pixel sample as points in color space, in a new 3-D viewer (RGB images).",
        )
        self._status = Label(name="status", label=" ", value="")
        options = Container(
            name="options",
            label=" ",
            layout="horizontal",
            labels=True,
            widgets=[self._sample_size, self._color_by],
        )
        buttons = Container(
            name="buttons", label=" ", layout="horizontal", widgets=[self._update, self._open_3d]
        )
        for row in (options, buttons):
            row.margins = (0, 0, 0, 0)
        self.extend([self._layer, options, buttons, self._status])
        self.margins = (4, 4, 4, 4)  # compact: the dock shares a laptop screen's height
        self.native.layout().setSpacing(3)
        self.figure = Figure(figsize=(4, 7))
        self._background = None  # the plots without highlights, for blitting
        self.canvas = _PlotCanvas(self.figure)
        self.canvas.setMinimumHeight(PLOTS_HEIGHT["color"])
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.canvas)
        self.scroll.setMinimumHeight(MIN_PLOTS_HEIGHT)
        self.native.layout().addWidget(self.scroll)
        self.canvas.mpl_connect("motion_notify_event", self._on_hover)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self.canvas.mpl_connect("pick_event", self._on_pick)
        self.canvas.mpl_connect("draw_event", self._on_draw)
        self.canvas.mpl_connect("resize_event", lambda event: self._fit_layout())
        self._update.changed.connect(self.update)
        self._open_3d.changed.connect(lambda: self.open_3d())
        self._color_by.changed.connect(self._recolor)
        self._layer.changed.connect(self.update)
        viewer.events.theme.connect(lambda event: self.update())
        self.update()

    # ----------------------------------------------------------------- drawing
    def update(self, event=None):
        """Draw the chosen clusters layer (again, e.g. after painting)."""
        layer = self._layer.value
        self.sample = None
        self._follow_selection(layer)
        if layer is not None:
            source_name = layer.metadata[METADATA_KEY].get("source_layer", "")
            if source_name not in self._viewer.layers:
                _panel.notify_error(
                    f"The image '{source_name}' that '{layer.name}' was made "
                    "from is not open; its colors cannot be shown."
                )
            else:
                try:
                    self.sample = ColorSample(
                        layer, self._viewer.layers[source_name], self._sample_size.value
                    )
                except ValueError as error:
                    _panel.notify_error(str(error))
        color = self.sample is not None and not self.sample.is_grey
        self._open_3d.visible = color  # a 3-D color space needs three color channels
        self._color_by.visible = color
        self._draw()

    def _follow_selection(self, layer):
        selection = None if layer is None else cluster_selection(layer, self._viewer)
        if selection is self._selection:
            return
        if self._selection is not None:
            self._selection.changed.disconnect(self._show_selection)
        self._selection = selection
        if selection is not None:
            selection.changed.connect(self._show_selection)

    def _theme(self):
        theme = get_theme(self._viewer.theme)
        return theme.background.as_hex(), theme.text.as_hex()

    def _style(self, axes, background, text):
        axes.set_facecolor(background)
        axes.tick_params(colors=text, labelsize=7)
        for spine in axes.spines.values():
            spine.set_color(text)

    def _fit_layout(self):
        """Lay the plots out for the canvas's size (on a full draw or resize only: it costs
        as much as drawing them)."""
        if self.figure.axes:
            self.figure.tight_layout()

    def _draw(self):
        background, text = self._theme()
        self._text_color, self._background_color = text, background
        self.figure.clear()
        self._background = None
        self.figure.set_facecolor(background)
        grey = self.sample is not None and self.sample.is_grey
        self.canvas.setMinimumHeight(PLOTS_HEIGHT["grey" if grey else "color"])
        rows = (0.45, 1.6) if grey else (0.45, 1, 1, 1)
        grid = self.figure.add_gridspec(len(rows), 1, height_ratios=rows)
        self.bar_axes = self.figure.add_subplot(grid[0])
        self._style(self.bar_axes, background, text)
        self.scatter_axes, self.points, self.center_marks, self._lassos = [], [], [], []
        self.selected_points, self.veils = [], []
        self.hist_axes, self.hist_bars, self.bar_patches = None, [], []
        self.hover_text = None
        if self.sample is None:
            self.bar_axes.set_title("Choose a clusters layer", color=text)
            self.canvas.draw_idle()
            return
        self._draw_bar(text)
        if grey:
            self.hist_axes = self.figure.add_subplot(grid[1])
            self._style(self.hist_axes, background, text)
            self._draw_histogram(self.hist_axes, text)
        else:
            for row, (i, j) in enumerate(PAIRS, start=1):
                axes = self.figure.add_subplot(grid[row])
                self._style(axes, background, text)
                self._draw_scatter(axes, i, j, text)
        self._fit_layout()
        self._set_highlights()
        self.canvas.draw_idle()

    def _veil(self, axes):
        """A sheet of the background color over ``axes``: fades what is under it."""
        veil = Rectangle(
            (0, 0),
            1,
            1,
            transform=axes.transAxes,
            facecolor=self._background_color,
            alpha=1 - FADED,
            edgecolor="none",
            animated=True,
            visible=False,
        )
        axes.add_patch(veil)
        self.veils.append(veil)

    def _draw_bar(self, text):
        table = self.sample.table
        left = np.concatenate([[0], np.cumsum(table["fraction"].to_numpy())[:-1]])
        self.bar_patches = list(
            self.bar_axes.barh(
                0,
                table["fraction"],
                left=left,
                color=table["color"],
                height=1.0,
                edgecolor="none",
                animated=True,
            )
        )
        self.bar_axes.set_xlim(0, 1)
        self.bar_axes.set_ylim(-0.5, 0.5)
        self.bar_axes.set_yticks([])
        self.bar_axes.set_title(
            "dominant colors (width = share of pixels)", color=text, fontsize=9
        )
        self.hover_text = self.bar_axes.annotate(
            "",
            xy=(0.5, 0.5),
            xycoords="axes fraction",
            ha="center",
            va="center",
            color="white",
            fontsize=9,
            bbox={"boxstyle": "round", "fc": "black", "alpha": 0.6},
            animated=True,
        )
        self.hover_text.set_visible(False)

    def _draw_scatter(self, axes, i, j, text):
        sample = self.sample
        points = axes.scatter(
            sample.coords[:, i],
            sample.coords[:, j],
            s=3,
            c=sample.colors(self._color_by.value),
            linewidths=0,
        )
        self._veil(axes)
        selected = axes.scatter(
            sample.coords[:0, i], sample.coords[:0, j], s=5, linewidths=0, animated=True, zorder=2
        )
        marks = axes.scatter(
            sample.centers[:, i],
            sample.centers[:, j],
            s=90,
            c=sample.cluster_colors,
            marker="X",
            edgecolors=text,
            linewidths=1.2,
            picker=True,
            zorder=3,
            animated=True,
        )
        axes.set_xlabel(sample.names[i], color=text, fontsize=8)
        axes.set_ylabel(sample.names[j], color=text, fontsize=8)
        self.scatter_axes.append(axes)
        self.points.append(points)
        self.selected_points.append(selected)
        self.center_marks.append(marks)
        self._lassos.append(
            LassoSelector(axes, lambda verts, i=i, j=j: self._on_lasso(verts, i, j))
        )

    def _draw_histogram(self, axes, text):
        """Grey levels stacked by cluster, each in its color; centers marked above."""
        sample = self.sample
        self.hist_edges, self.hist_counts = sample.histogram()
        widths = np.diff(self.hist_edges)
        bottom = np.zeros(len(widths))
        for counts, color in zip(self.hist_counts, sample.cluster_colors):
            self.hist_bars.append(
                list(
                    axes.bar(
                        self.hist_edges[:-1],
                        counts,
                        width=widths,
                        bottom=bottom,
                        align="edge",
                        color=color,
                        edgecolor="none",
                    )
                )
            )
            bottom = bottom + counts
        top = max(float(bottom.max(initial=0)), 1.0)
        for center, color in zip(sample.centers[:, 0], sample.cluster_colors):
            axes.axvline(center, color=color, linestyle="--", linewidth=1, zorder=2)
        self._veil(axes)
        marks = axes.scatter(
            sample.centers[:, 0],
            np.full(len(sample.centers), top * 1.06),
            s=90,
            c=sample.cluster_colors,
            marker="v",
            edgecolors=text,
            linewidths=1.2,
            picker=True,
            zorder=3,
            clip_on=False,
            animated=True,
        )
        axes.set_ylim(0, top * 1.15)
        axes.set_xlim(self.hist_edges[0], self.hist_edges[-1])
        axes.set_xlabel("grey level", color=text, fontsize=8)
        axes.set_ylabel("pixels", color=text, fontsize=8)
        axes.set_title("grey levels by cluster (\u25bc = cluster center)", color=text, fontsize=9)
        self.center_marks.append(marks)

    def _recolor(self, event=None):
        if self.sample is None:
            return
        for points in self.points:
            points.set_facecolors(self.sample.colors(self._color_by.value))
        self._set_highlights()
        self.canvas.draw_idle()

    # ----------------------------------------------------------------- selection
    def _show_selection(self):
        """The shared selection changed (here, in Cluster table or in napari)."""
        if self.sample is None:
            return
        selected = self._selection.selected if self._selection is not None else ()
        table = self.sample.table
        names = [str(table.loc[label, "name"]) for label in selected if label in table.index]
        if selected != self._announced:  # made elsewhere (here it is said in select_clusters)
            self._status.value = f"selected {', '.join(names)}" if names else ""
        self._highlight()

    def selected_and_hidden(self) -> tuple[set, set]:
        selection = self._selection
        if selection is None:
            return set(), set()
        return set(selection.selected), set(selection.hidden)

    def _set_highlights(self):
        """Highlight artists for the selection: selected bar segments outlined and the
        others faded, hidden ones hatched; over a veil that fades the plots, the selected
        clusters' points, histogram bars and (enlarged) centers."""
        sample = self.sample
        if sample is None:
            return
        selected, hidden = self.selected_and_hidden()
        labels = sample.center_labels
        chosen = np.isin(labels, list(selected))
        alpha = np.where(chosen | (not selected), 1.0, FADED)
        for patch, is_chosen, label, opacity in zip(self.bar_patches, chosen, labels, alpha):
            patch.set_alpha(opacity)
            patch.set_edgecolor(self._text_color if is_chosen else "none")
            patch.set_linewidth(2.5 if is_chosen else 0.0)
            patch.set_hatch("xx" if label in hidden else None)
            patch.set_zorder(3 if is_chosen else 1)
        for veil in self.veils:
            veil.set_visible(bool(selected))
        in_selection = np.isin(sample.labels, list(selected))
        colors = sample.colors(self._color_by.value)[in_selection]
        for points, (i, j) in zip(self.selected_points, PAIRS):
            points.set_offsets(sample.coords[in_selection][:, [i, j]])
            points.set_facecolors(colors)
        edge = np.array([to_rgba(self._text_color, a) for a in alpha]).reshape(-1, 4)
        for marks in self.center_marks:
            marks.set_facecolors(np.column_stack([sample.cluster_colors, alpha]))
            marks.set_edgecolors(edge)
            marks.set_sizes(np.where(chosen, 220.0, 90.0))
            marks.set_linewidths(np.where(chosen, 2.5, 1.2))

    def highlighted(self) -> list:
        """The artists drawn over the plots: what the selection and hover show."""
        selected, _ = self.selected_and_hidden()
        rows = (
            np.flatnonzero(np.isin(self.sample.center_labels, list(selected)))
            if self.sample is not None
            else []
        )
        bars = [bar for row in rows for bar in self.hist_bars[row]] if self.hist_bars else []
        hover = [self.hover_text] if self.hover_text is not None else []
        return [
            *self.bar_patches,
            *self.veils,
            *self.selected_points,
            *bars,
            *self.center_marks,
            *hover,
        ]

    def _on_draw(self, event):
        """After a full draw: keep it as the background and draw the highlights over it."""
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_highlights()

    def _draw_highlights(self):
        for artist in self.highlighted():
            if artist.get_visible():
                self.figure.draw_artist(artist)

    def _highlight(self):
        """Show the selection: redraw only the highlights over the kept background."""
        self._set_highlights()
        self._blit()

    def _blit(self):
        if self._background is None:
            self.canvas.draw_idle()
            return
        self.canvas.restore_region(self._background)
        self._draw_highlights()
        self.canvas.update()  # painted from the buffer with the next frame, not now

    # ----------------------------------------------------------------- interaction
    def _cluster_at(self, x: float) -> int | None:
        fractions = np.cumsum(self.sample.table["fraction"].to_numpy())
        index = int(np.searchsorted(fractions, x))
        return int(self.sample.center_labels[index]) if index < len(fractions) else None

    def _cluster_in_histogram(self, x: float, y: float) -> int | None:
        """The cluster whose stacked segment of the histogram is at (x, y)."""
        edges = self.hist_edges
        column = int(np.searchsorted(edges, x, side="right")) - 1
        if not 0 <= column < len(edges) - 1 or y < 0:
            return None
        tops = np.cumsum(self.hist_counts[:, column])
        index = int(np.searchsorted(tops, y, side="right"))
        return int(self.sample.center_labels[index]) if index < len(tops) else None

    def _on_hover(self, event):
        if self.sample is None or event.inaxes is not self.bar_axes or event.xdata is None:
            return
        label = self._cluster_at(event.xdata)
        if label is None:
            return
        row = self.sample.table.loc[label]
        self.hover_text.set_text(f"{row['name']}: {100 * row['fraction']:.1f} % of pixels")
        self.hover_text.set_visible(True)
        self._blit()

    def _on_click(self, event):
        if self.sample is None or event.xdata is None:
            return
        label = None
        if event.inaxes is self.bar_axes:
            label = self._cluster_at(event.xdata)
        elif self.hist_axes is not None and event.inaxes is self.hist_axes:
            label = self._cluster_in_histogram(event.xdata, event.ydata)
        if label is not None:
            self.select_clusters([label])

    def _on_pick(self, event):
        if event.artist in self.center_marks:
            self.select_clusters([int(self.sample.center_labels[event.ind[0]])])

    def _on_lasso(self, vertices, i, j):
        inside = Path(vertices).contains_points(self.sample.centers[:, [i, j]])
        self.select_clusters([int(label) for label in self.sample.center_labels[inside]])

    def select_clusters(self, labels: list[int]):
        """Select these clusters (shown on the canvas, in Cluster table and here); the
        largest becomes napari's selected label."""
        if not labels or self._selection is None or self.sample is None:
            return
        pixels = self.sample.table.loc[labels, "pixels"].sort_values(
            ascending=False, kind="stable"
        )
        names = ", ".join(self.sample.table.loc[labels, "name"])
        self._status.value = f"selected {names}" if len(labels) == 1 else f"lasso: {names}"
        self._announced = tuple(int(label) for label in pixels.index)
        self._selection.select(self._announced)

    def open_3d(self):
        """The sample as points in color space, in a new 3-D napari viewer."""
        import napari

        if self.sample is None or self.sample.is_grey:
            _panel.notify_error("The 3-D view needs a clusters layer of an RGB image.")
            return None
        viewer = napari.Viewer(
            title=f"{self._layer.value.name} in {self.sample.space.upper()}", ndisplay=3
        )
        spread = max(float(np.ptp(self.sample.coords, axis=0).max()), 1e-6)
        viewer.add_points(
            self.sample.coords,
            face_color=self.sample.own_colors,
            size=spread / 80,
            border_width=0,
            name="pixels",
        )
        viewer.add_points(
            self.sample.centers,
            face_color=self.sample.cluster_colors,
            size=spread / 25,
            symbol="cross",
            name="cluster centers",
        )
        viewer.dims.axis_labels = self.sample.names
        return viewer


def _stain_vectors(params: dict, name: str) -> StainVectors:
    """The stain vectors a "stains" result was made with (its params keep them: the
    axes are the stains' names)."""
    try:
        return parse_stain_vectors(params.get("stain_vectors"))
    except ValueError as error:
        raise ValueError(
            f"'{name}' was made in color space 'stains' but its metadata has no usable "
            f"stain vectors ({error}); segment the image again."
        ) from None


def _default_color_space(method_name: str | None) -> str:
    """The color space a method compares RGB pixels in when none was chosen ("auto");
    RGB for a result of a method this version does not know."""
    method = METHODS.get(method_name) if isinstance(method_name, str) else None
    return method.default_color_space if method is not None else "rgb"
