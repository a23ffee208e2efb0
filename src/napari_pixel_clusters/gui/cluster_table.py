"""The "Cluster table" dock widget: name, recolor, hide and merge the clusters of a
clusters layer, keeping every layer of the same run consistent.

The table is the layer's own ``features`` (so names show in the status bar on hover);
painting on the layer refreshes the pixel counts. Selecting rows selects those clusters
(see ``cluster_selection``: the canvas shows only them, and Cluster colors highlights
them); picking a label in napari selects its row. Hidden clusters are unticked in the
"show" column, in grey italics. Merging relabels the pixels with napari's own
``data_setitem`` (undoable with the Labels layer's undo), and updates the table, the
colors, the quantized image and the outlines of the same run; when napari's undo brings
the merged labels back, all of these are restored too. The outlines of the run can be
drawn in a contrasting color, their cluster's color or random colors, at any width.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton
from matplotlib.colors import to_hex
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QBrush, QColor, QPen
from qtpy.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QHeaderView,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QTableWidgetSelectionRange,
)

from ..core.contours import region_contours
from ..core.lazy import is_lazy
from . import _panel
from ._panel import clusters_layer_choice
from .cluster_selection import cluster_selection, run_layers
from .docking import keep_window_on_screen
from .layers import (
    DEFAULT_OUTLINE_MODE,
    METADATA_KEY,
    OUTLINE_WIDTH,
    default_min_area,
    style_outlines,
    table_colormap,
)

if TYPE_CHECKING:
    import napari

COLUMNS = ("show", "color", "name", "pixels", "fraction", "mean color")
SHOW, COLOR, NAME, PIXELS, FRACTION, MEAN = range(len(COLUMNS))
#: Item data role holding a row's swatch color (painted by ``SwatchDelegate``).
SWATCH_ROLE = Qt.ItemDataRole.UserRole + 1
#: Item data role saying the row's cluster is hidden (its swatch is drawn hatched).
HIDDEN_ROLE = Qt.ItemDataRole.UserRole + 2
HIDDEN_TEXT = QColor(128, 128, 128)
#: Outline styles offered: (shown as, ``style_outlines`` mode).
OUTLINE_STYLES = (("contrast", "contrast"), ("cluster color", "cluster"), ("random", "random"))
#: The table asks for room for about this many rows at least; the rest scrolls.
MIN_TABLE_HEIGHT = 84


class SwatchDelegate(QStyledItemDelegate):
    """Paints a row's color swatch over the cell, inside the selection highlight, so a
    selected row still shows its color (a cell background would be painted over)."""

    def paint(self, painter, option, index):
        super().paint(painter, option, index)
        color = index.data(SWATCH_ROLE)
        if not color:
            return
        rect = option.rect.adjusted(4, 3, -4, -3)
        painter.save()
        hidden = bool(index.data(HIDDEN_ROLE))
        brush = QBrush(
            QColor(color), Qt.BrushStyle.BDiagPattern if hidden else Qt.BrushStyle.SolidPattern
        )
        painter.fillRect(rect, brush)
        painter.setPen(QPen(QColor(HIDDEN_TEXT if hidden else "#808080"), 1))
        painter.drawRect(rect)
        painter.restore()


@dataclass
class Merge:
    """What a merge changed, to restore when napari's undo brings the labels back."""

    target: dict  # the target's table row before the merge
    merged_away: dict[int, dict]  # label -> its table row
    new_mean: np.ndarray  # the merged cluster's mean value per channel
    outlines: list = field(default_factory=list)  # (outlines layer, polygons, features)


class ClusterTableWidget(Container):
    """One row per cluster of the chosen clusters layer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        keep_window_on_screen(self.native)
        self._viewer = viewer
        self._filling = False
        self._syncing = False
        self._selection = None  # the ClusterSelection of the chosen layer
        self._layer = clusters_layer_choice(viewer)
        self._merge = PushButton(
            name="merge", text="Merge", tooltip="Merge the selected clusters into the first one."
        )
        self._hide = PushButton(
            name="hide", text="Hide", tooltip='Hide the selected clusters (untick "show").'
        )
        self._show_all = PushButton(name="show_all", text="Show all")
        self._recolor = PushButton(name="recolor", text="Recolor...")
        self._refresh = PushButton(
            name="refresh",
            text="Refresh",
            tooltip="Recount pixels from the layer (e.g. after undo).",
        )
        self._outline_style = ComboBox(
            name="outline_style",
            label="outlines",
            choices=OUTLINE_STYLES,
            value=DEFAULT_OUTLINE_MODE,
            tooltip="Color of the outlines of this result: one color that contrasts with "
            "every cluster, each cluster's own color, or random colors.",
        )
        self._outline_width = FloatSpinBox(
            name="outline_width",
            label="width",
            value=OUTLINE_WIDTH,
            min=0.5,
            max=20.0,
            step=0.5,
            tooltip="Width of the outlines, in image pixels.",
        )
        self._outline_controls = Container(
            name="outline_controls",
            label="outlines",
            layout="horizontal",
            labels=False,
            widgets=[self._outline_style, Label(value="width"), self._outline_width],
        )
        self._outline_controls.margins = (0, 0, 0, 0)
        self._status = Label(name="status", label=" ", value="")
        buttons = Container(
            layout="horizontal",
            widgets=[self._merge, self._hide, self._show_all, self._recolor, self._refresh],
        )
        buttons.margins = (0, 0, 0, 0)
        self.extend([self._layer, buttons, self._outline_controls, self._status])
        self.margins = (4, 4, 4, 4)  # compact: the dock shares a laptop screen's height
        self.native.layout().setSpacing(3)
        self._merges: list[Merge] = []  # newest last, for napari's undo
        self._undone: list[Merge] = []  # merges undone, for napari's redo
        self._history = None  # lengths of the layer's undo/redo stacks
        self.table = self._make_table()
        self.native.layout().addWidget(self.table)
        self._merge.changed.connect(lambda: self.merge_selected())
        self._hide.changed.connect(lambda: self.hide_selected())
        self._show_all.changed.connect(lambda: self.show_all())
        self._recolor.changed.connect(lambda: self.recolor())
        self._refresh.changed.connect(lambda: self.refresh_counts())
        self._outline_style.changed.connect(lambda: self.style_outlines())
        self._outline_width.changed.connect(lambda: self.style_outlines())
        self._layer.changed.connect(self._connect_layer)
        self._connected = None
        self._connect_layer()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setMinimumHeight(MIN_TABLE_HEIGHT)
        table.verticalHeader().setVisible(False)
        table.setItemDelegateForColumn(COLOR, SwatchDelegate(table))
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(24)
        table.itemSelectionChanged.connect(self._rows_selected)
        table.itemChanged.connect(self._item_changed)
        table.cellDoubleClicked.connect(
            lambda row, column: self.recolor() if column == COLOR else None
        )
        return table

    # ----------------------------------------------------------------- the layer
    def _connect_layer(self, event=None):
        if self._connected is not None:
            self._connected.events.paint.disconnect(self._painted)
            self._connected.events.set_data.disconnect(self._data_set)
        if self._selection is not None:
            self._selection.changed.disconnect(self._show_selection)
        self._connected = self._layer.value
        self._selection = None
        self._merges, self._undone = [], []
        if self._connected is not None:
            self._connected.events.paint.connect(self._painted)
            self._connected.events.set_data.connect(self._data_set)
            self._history = _history_lengths(self._connected)
            self._selection = cluster_selection(self._connected, self._viewer)
            self._selection.changed.connect(self._show_selection)
        self._read_outline_style()
        self._fill()

    def _painted(self, event=None):
        # napari announces a stroke before writing it: count once the event loop is free
        self._history = _history_lengths(self._connected)
        QTimer.singleShot(0, self.refresh_counts)

    def _data_set(self, event=None):
        """napari's undo and redo announce only new data: recount when the history moved
        (not on every redraw)."""
        history = _history_lengths(self._connected)
        if history != self._history:
            self._history = history
            QTimer.singleShot(0, self.refresh_counts)

    @property
    def features(self) -> pd.DataFrame:
        return self._layer.value.features

    def _run_layers(self, output: str):
        """Layers of the same run as the chosen clusters layer (quantized, outlines)."""
        return run_layers(self._viewer, self._layer.value, output)

    # ----------------------------------------------------------------- the table
    def _fill(self):
        self._filling = True
        layer = self._layer.value
        rows = [] if layer is None else list(layer.features.itertuples(index=False))
        self.table.setRowCount(len(rows))
        means = [
            c
            for c in (layer.features.columns if layer is not None else [])
            if c.startswith("mean_")
        ]
        for row, record in enumerate(rows):
            values = record._asdict()
            show = QTableWidgetItem("")
            show.setFlags(
                (show.flags() | Qt.ItemFlag.ItemIsUserCheckable) & ~Qt.ItemFlag.ItemIsEditable
            )
            show.setToolTip("Untick to hide this cluster on the canvas.")
            self.table.setItem(row, SHOW, show)
            swatch = QTableWidgetItem("")
            swatch.setData(SWATCH_ROLE, values["color"])
            swatch.setToolTip(f"{values['color']} (double-click to recolor)")
            swatch.setFlags(swatch.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, COLOR, swatch)
            self.table.setItem(row, NAME, QTableWidgetItem(str(values["name"])))
            mean = ", ".join(f"{values[c]:.3g}" for c in means)
            for column, text in (
                (PIXELS, f"{values['pixels']:,}"),
                (FRACTION, f"{values['fraction']:.1%}"),
                (MEAN, mean),
            ):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self._filling = False
        self._sync_rows()

    def _row_labels(self) -> list[int]:
        layer = self._layer.value
        return [] if layer is None else [int(label) for label in layer.features["index"]]

    def selected_labels(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        labels = self._row_labels()
        return [labels[row] for row in rows if row < len(labels)]

    def rename(self, label: int, name: str):
        """Name the cluster ``label`` (as typing in its "name" cell does)."""
        self.table.item(self._row_labels().index(int(label)), NAME).setText(name)

    def hidden_labels(self) -> list[int]:
        """Labels of the clusters unticked in the "show" column."""
        return [] if self._selection is None else sorted(self._selection.hidden)

    def select_rows(self, rows: list[int]):
        """Select these table rows (as a person would with ctrl-click)."""
        self._syncing = True  # one selection change, not one per row
        try:
            self.table.clearSelection()
            last = self.table.columnCount() - 1
            for row in rows:
                self.table.setRangeSelected(QTableWidgetSelectionRange(row, 0, row, last), True)
        finally:
            self._syncing = False
        self._rows_selected()

    def _rows_selected(self):
        if not self._syncing and self._selection is not None:
            self._selection.select(self.selected_labels())

    def _show_selection(self):
        """The shared selection changed: rows, hidden marks, outlines and the status."""
        selection = self._selection
        if selection is None:
            return
        self._sync_rows()
        hidden = len(selection.hidden)
        names = self.features.set_index("index")["name"]
        chosen = ", ".join(str(names[label]) for label in selection.selected)
        self._status.value = "; ".join(
            text
            for text in (
                f"selected: {chosen}" if chosen else "",
                f'{hidden} hidden (tick "show" or Show all)' if hidden else "",
            )
            if text
        )

    def _sync_rows(self):
        """Select the rows of the selected clusters; mark the hidden ones."""
        selection = self._selection
        if selection is None:
            return
        labels = self._row_labels()
        self._syncing, self._filling = True, True
        try:
            if self.selected_labels() != sorted(selection.selected):
                self.table.clearSelection()
                last = self.table.columnCount() - 1
                for label in selection.selected:
                    row = labels.index(label)
                    self.table.setRangeSelected(
                        QTableWidgetSelectionRange(row, 0, row, last), True
                    )
                if selection.selected:
                    self.table.scrollToItem(
                        self.table.item(labels.index(selection.selected[0]), NAME)
                    )
            for row, label in enumerate(labels):
                self._mark_hidden(row, label in selection.hidden)
        finally:
            self._syncing, self._filling = False, False

    def _mark_hidden(self, row: int, hidden: bool):
        """A hidden cluster's row: unticked "show", "hidden", grey italics, hatched swatch."""
        show = self.table.item(row, SHOW)
        if show is None:
            return
        show.setCheckState(Qt.CheckState.Unchecked if hidden else Qt.CheckState.Checked)
        show.setText("hidden" if hidden else "")
        self.table.item(row, COLOR).setData(HIDDEN_ROLE, hidden)
        for column in (SHOW, NAME, PIXELS, FRACTION, MEAN):
            item = self.table.item(row, column)
            font = item.font()
            font.setItalic(hidden)
            item.setFont(font)
            if hidden:
                item.setForeground(HIDDEN_TEXT)
            else:
                item.setData(Qt.ItemDataRole.ForegroundRole, None)

    def _item_changed(self, item: QTableWidgetItem):
        if self._filling:
            return
        if item.column() == SHOW:
            label = self._row_labels()[item.row()]
            if item.checkState() == Qt.CheckState.Checked:
                self._selection.show([label])
            else:
                self._selection.hide([label])
        elif item.column() == NAME:
            features = self.features.copy()
            features.loc[features.index[item.row()], "name"] = item.text()
            self._layer.value.features = features

    # ----------------------------------------------------------------- outlines
    def _read_outline_style(self):
        """The outline controls show the chosen result's outlines (hidden without any)."""
        outlines = self._run_layers("outlines")
        self._outline_controls.visible = bool(outlines)
        if not outlines:
            return
        tag = outlines[0].metadata[METADATA_KEY]
        width = tag.get("outline_width")
        if width is None and len(outlines[0].data):
            width = float(np.asarray(outlines[0].edge_width)[0])
        with self._outline_style.changed.blocked(), self._outline_width.changed.blocked():
            self._outline_style.value = tag.get("outline_mode", DEFAULT_OUTLINE_MODE)
            self._outline_width.value = width or OUTLINE_WIDTH

    def style_outlines(self, mode: str | None = None, width: float | None = None):
        """Draw the outlines of the chosen result in ``mode`` ("contrast", "cluster" or
        "random") at ``width`` (the controls' values when not given)."""
        with self._outline_style.changed.blocked(), self._outline_width.changed.blocked():
            if mode is not None:
                self._outline_style.value = mode
            if width is not None:
                self._outline_width.value = width
        if self._layer.value is None:
            return
        for outlines in self._run_layers("outlines"):
            style_outlines(
                outlines, self.features, self._outline_style.value, self._outline_width.value
            )
        self._selection.style_outlines()  # hidden and unselected clusters' outlines

    # ----------------------------------------------------------------- editing
    def refresh_counts(self, event=None):
        """Pixel counts and fractions from the layer's current data (after painting)."""
        layer = self._layer.value
        if layer is None or layer not in self._viewer.layers:
            return
        if layer.multiscale or is_lazy(layer.data):  # counted exactly by the run; not editable
            return
        data = np.asarray(layer.data)
        features = layer.features.copy()
        merged_away = [label for merge in self._merges for label in merge.merged_away]
        counts = np.bincount(
            data.ravel(),
            minlength=int(max(features["index"].max(), max(merged_away, default=0))) + 1,
        )

        def present(label):
            return label < len(counts) and counts[label] > 0

        while self._merges and any(map(present, self._merges[-1].merged_away)):
            self._undone.append(self._merges.pop())  # undo brought the labels back
            features = self._undo_merge(self._undone[-1], features, data)
        while (
            self._undone
            and present(self._undone[-1].target["index"])
            and not any(map(present, self._undone[-1].merged_away))
        ):  # redo merged them again
            self._merges.append(self._undone.pop())
            self._apply_merge(self._merges[-1], data)
            features = layer.features.copy()
        features["pixels"] = counts[features["index"].to_numpy()]
        features["fraction"] = (features["pixels"] / max(features["pixels"].sum(), 1)).round(4)
        layer.features = features
        self._fill()

    def recolor(self, color: str | None = None):
        """Give the selected cluster a new color (a color dialog when none is given)."""
        labels = self.selected_labels()
        if not labels:
            _panel.notify_error("Select the cluster to recolor in the table first.")
            return
        if color is None:
            chosen = QColorDialog.getColor(QColor(self._color_of(labels[0])), self.native)
            if not chosen.isValid():
                return
            color = chosen.name()
        features = self.features.copy()
        features.loc[features["index"].isin(labels), "color"] = to_hex(color)
        self._layer.value.features = features
        self._selection.use_colors(table_colormap(features))
        self._fill()

    def hide_selected(self):
        """Hide the selected clusters on the canvas (they leave the selection)."""
        if self._selection is not None:
            self._selection.hide(self.selected_labels())

    def show_all(self):
        """Show every hidden cluster again."""
        if self._selection is not None:
            self._selection.show()

    def merge_selected(self):
        """Merge the selected clusters into the first of them, in every layer of the run."""
        labels = self.selected_labels()
        if len(labels) < 2:
            _panel.notify_error("Select two or more clusters to merge.")
            return
        layer, target, others = self._layer.value, labels[0], labels[1:]
        if layer.multiscale or is_lazy(layer.data):
            _panel.notify_error(
                f"'{layer.name}' is a lazy result of a large image and cannot "
                "be edited; rename, recolor or hide its clusters instead."
            )
            return
        data = np.asarray(layer.data)
        features = self.features.set_index("index")
        merged = features.loc[labels]
        weights = merged["pixels"].to_numpy(dtype=float)
        means = [c for c in features.columns if c.startswith("mean_")]
        merge = Merge(
            target=features.loc[target].to_dict() | {"index": target},
            merged_away={
                label: features.loc[label].to_dict() | {"index": label} for label in others
            },
            new_mean=(merged[means].to_numpy() * weights[:, None]).sum(0) / max(weights.sum(), 1),
            outlines=[
                (outlines, list(outlines.data), outlines.features.copy())
                for outlines in self._run_layers("outlines")
            ],
        )
        layer.data_setitem(np.nonzero(np.isin(data, others)), target)  # undoable, like paint
        self._history = _history_lengths(layer)
        self._merges.append(merge)
        self._undone = []
        self._apply_merge(merge, np.asarray(layer.data))
        self._status.value = f"merged {len(labels)} clusters into label {target}"

    def _apply_merge(self, merge: Merge, data: np.ndarray):
        """Table, quantized colors and outlines after ``merge`` (its pixels relabelled)."""
        target, others = merge.target["index"], list(merge.merged_away)
        rows = [merge.target, *merge.merged_away.values()]
        features = self.features.set_index("index")
        means = [c for c in features.columns if c.startswith("mean_")]
        features.loc[target, means] = merge.new_mean
        features.loc[target, "pixels"] = int(sum(row["pixels"] for row in rows))
        features.loc[target, "fraction"] = round(float(sum(row["fraction"] for row in rows)), 4)
        self._layer.value.features = features.drop(index=others, errors="ignore").reset_index()
        self._merge_in_quantized(data == target, merge.new_mean)
        self._merge_in_outlines(target, others, data)
        self._selection.apply()
        self._fill()

    def _undo_merge(self, merge: Merge, features: pd.DataFrame, data: np.ndarray):
        """The table rows, quantized colors and outline labels from before ``merge``."""
        rows = pd.DataFrame([merge.target, *merge.merged_away.values()])
        features = features[~features["index"].isin(rows["index"])]
        features = pd.concat([features, rows], ignore_index=True).sort_values("index")
        features = features.reset_index(drop=True)
        means = [c for c in features.columns if c.startswith("mean_")]
        for _, row in rows.iterrows():
            self._merge_in_quantized(data == row["index"], row[means].to_numpy(dtype=float))
        for outlines, polygons, outline_features in merge.outlines:
            if outlines in self._viewer.layers:
                _set_polygons(outlines, polygons, outline_features)
        self._layer.value.features = features
        self._selection.apply()
        self._status.value = f"undone: merge into label {merge.target['index']}"
        return self._layer.value.features.copy()

    def _merge_in_quantized(self, region: np.ndarray, mean: np.ndarray):
        for quantized in self._run_layers("quantized"):
            data = np.array(quantized.data)
            pixels = data if quantized.rgb else data[..., np.newaxis]
            value = np.rint(mean) if np.issubdtype(data.dtype, np.integer) else mean
            pixels[region] = value.astype(data.dtype)[: pixels.shape[-1]]
            quantized.data = data

    def _merge_in_outlines(self, target: int, others: list[int], labels: np.ndarray):
        """Outlines of the merged cluster traced again (one region where there were two)."""
        names = self.features.set_index("index")["name"]
        for outlines in self._run_layers("outlines"):
            tag = outlines.metadata[METADATA_KEY]
            min_area = tag.get("min_area") or default_min_area(labels)
            kept = ~outlines.features["label"].isin([target, *others]).to_numpy()
            traced = region_contours(np.where(labels == target, target, 0), min_area)
            features = pd.concat(
                [
                    outlines.features[kept],
                    pd.DataFrame(
                        {
                            "label": [c.label for c in traced],
                            "name": names[target],
                            "area": [c.area for c in traced],
                        }
                    ),
                ],
                ignore_index=True,
            )
            polygons = [p for p, keep in zip(outlines.data, kept) if keep]
            _set_polygons(outlines, polygons + [c.vertices for c in traced], features)

    def _color_of(self, label: int) -> str:
        return self.features.set_index("index").loc[label, "color"]


def _history_lengths(layer) -> tuple[int, int]:
    """Lengths of a Labels layer's undo and redo stacks ((0, 0) where napari hides them)."""
    return (len(getattr(layer, "_undo_history", ())), len(getattr(layer, "_redo_history", ())))


def _set_polygons(outlines, polygons: list, features: pd.DataFrame) -> None:
    """Replace an outlines layer's polygons and their features (colors follow later),
    keeping the layer's line width."""
    width = outlines.metadata.get(METADATA_KEY, {}).get("outline_width")
    if width is None:
        width = float(np.asarray(outlines.edge_width)[0]) if len(outlines.data) else OUTLINE_WIDTH
    outlines.data = [(polygon, "polygon") for polygon in polygons]
    outlines.features = features.reset_index(drop=True)
    if len(polygons):
        outlines.edge_width = width
        outlines.face_color = "transparent"
