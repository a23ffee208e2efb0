"""The "Cluster table" dock widget: name, recolour, hide and merge the clusters of a
clusters layer, keeping every layer of the same run consistent.

The table is the layer's own ``features`` (so names show in the status bar on hover);
painting on the layer refreshes the pixel counts. Merging relabels the pixels with
napari's own ``data_setitem`` (undoable with the Labels layer's undo), and updates the
table, the colours, the quantized image and the outlines of the same run; when napari's
undo brings the merged labels back, all of these are restored too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import Container, Label, PushButton
from matplotlib.colors import to_hex, to_rgb
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QTableWidget,
    QTableWidgetItem,
    QTableWidgetSelectionRange,
)

from ..core.contours import region_contours
from ..core.lazy import is_lazy
from . import _panel
from ._panel import clusters_layer_choice
from .layers import METADATA_KEY, OUTLINE_WIDTH, TRANSPARENT, default_min_area, table_colormap

if TYPE_CHECKING:
    import napari

COLUMNS = ("colour", "name", "pixels", "fraction", "mean colour")


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
        self._viewer = viewer
        self._hidden: set[int] = set()
        self._filling = False
        self._layer = clusters_layer_choice(viewer)
        self._merge = PushButton(name="merge", text="Merge selected")
        self._hide = PushButton(name="hide", text="Hide selected")
        self._show_all = PushButton(name="show_all", text="Show all")
        self._recolour = PushButton(name="recolour", text="Recolour...")
        self._refresh = PushButton(name="refresh", text="Refresh",
                                   tooltip="Recount pixels from the layer (e.g. after undo).")
        self._status = Label(name="status", label=" ", value="")
        self.extend([self._layer, Container(layout="horizontal", widgets=[
            self._merge, self._hide, self._show_all, self._recolour, self._refresh]),
            self._status])
        self._merges: list[Merge] = []  # newest last, for napari's undo
        self._undone: list[Merge] = []  # merges undone, for napari's redo
        self._history = None  # lengths of the layer's undo/redo stacks
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setMinimumHeight(240)
        self.native.layout().addWidget(self.table)
        self.table.itemSelectionChanged.connect(self._show_selection)
        self.table.itemChanged.connect(self._renamed)
        self.table.cellDoubleClicked.connect(
            lambda row, column: self.recolour() if column == 0 else None)
        self._merge.changed.connect(lambda: self.merge_selected())
        self._hide.changed.connect(lambda: self.hide_selected())
        self._show_all.changed.connect(lambda: self.show_all())
        self._recolour.changed.connect(lambda: self.recolour())
        self._refresh.changed.connect(lambda: self.refresh_counts())
        self._layer.changed.connect(self._connect_layer)
        self._connected = None
        self._connect_layer()

    # ----------------------------------------------------------------- the layer
    def _connect_layer(self, event=None):
        if self._connected is not None:
            self._connected.events.paint.disconnect(self._painted)
            self._connected.events.set_data.disconnect(self._data_set)
        self._connected = self._layer.value
        self._hidden = set()
        self._merges, self._undone = [], []
        if self._connected is not None:
            self._connected.events.paint.connect(self._painted)
            self._connected.events.set_data.connect(self._data_set)
            self._history = _history_lengths(self._connected)
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
        tag = self._layer.value.metadata[METADATA_KEY]
        return [layer for layer in self._viewer.layers
                if layer.metadata.get(METADATA_KEY, {}).get("run") == tag["run"]
                and layer.metadata[METADATA_KEY].get("source") == tag["source"]
                and layer.metadata[METADATA_KEY].get("output") == output]

    # ----------------------------------------------------------------- the table
    def _fill(self):
        self._filling = True
        layer = self._layer.value
        rows = [] if layer is None else list(layer.features.itertuples(index=False))
        self.table.setRowCount(len(rows))
        means = [c for c in (layer.features.columns if layer is not None else [])
                 if c.startswith("mean_")]
        for row, record in enumerate(rows):
            values = record._asdict()
            swatch = QTableWidgetItem("")
            swatch.setBackground(QColor(values["color"]))
            swatch.setFlags(swatch.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 0, swatch)
            self.table.setItem(row, 1, QTableWidgetItem(str(values["name"])))
            mean = ", ".join(f"{values[c]:.4g}" for c in means)
            for column, text in ((2, f"{values['pixels']:,}"), (3, f"{values['fraction']:.2%}"),
                                 (4, mean)):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, column, item)
        self._filling = False

    def selected_labels(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return [int(self.features["index"].iloc[row]) for row in rows]

    def select_rows(self, rows: list[int]):
        """Select these table rows (as a person would with ctrl-click)."""
        self.table.clearSelection()
        last = self.table.columnCount() - 1
        for row in rows:
            self.table.setRangeSelected(QTableWidgetSelectionRange(row, 0, row, last), True)

    def _show_selection(self):
        layer, labels = self._layer.value, self.selected_labels()
        if layer is None:
            return
        if labels:
            layer.selected_label = labels[0]
        layer.show_selected_label = len(labels) == 1

    def _renamed(self, item: QTableWidgetItem):
        if self._filling or item.column() != 1:
            return
        features = self.features.copy()
        features.loc[features.index[item.row()], "name"] = item.text()
        self._layer.value.features = features

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
        counts = np.bincount(data.ravel(), minlength=int(
            max(features["index"].max(), max(merged_away, default=0))) + 1)
        def present(label):
            return label < len(counts) and counts[label] > 0

        while self._merges and any(map(present, self._merges[-1].merged_away)):
            self._undone.append(self._merges.pop())  # undo brought the labels back
            features = self._undo_merge(self._undone[-1], features, data)
        while self._undone and present(self._undone[-1].target["index"]) and not any(
                map(present, self._undone[-1].merged_away)):  # redo merged them again
            self._merges.append(self._undone.pop())
            self._apply_merge(self._merges[-1], data)
            features = layer.features.copy()
        features["pixels"] = counts[features["index"].to_numpy()]
        features["fraction"] = (features["pixels"] / max(features["pixels"].sum(), 1)).round(4)
        layer.features = features
        self._fill()

    def recolour(self, colour: str | None = None):
        """Give the selected cluster a new colour (a colour dialog when none is given)."""
        labels = self.selected_labels()
        if not labels:
            _panel.notify_error("Select the cluster to recolour in the table first.")
            return
        if colour is None:
            chosen = QColorDialog.getColor(QColor(self._colour_of(labels[0])), self.native)
            if not chosen.isValid():
                return
            colour = chosen.name()
        features = self.features.copy()
        features.loc[features["index"].isin(labels), "color"] = to_hex(colour)
        self._layer.value.features = features
        self._apply_colours()
        self._fill()

    def hide_selected(self):
        self._hidden |= set(self.selected_labels())
        self._apply_colours()

    def show_all(self):
        self._hidden = set()
        self._apply_colours()

    def merge_selected(self):
        """Merge the selected clusters into the first of them, in every layer of the run."""
        labels = self.selected_labels()
        if len(labels) < 2:
            _panel.notify_error("Select two or more clusters to merge.")
            return
        layer, target, others = self._layer.value, labels[0], labels[1:]
        if layer.multiscale or is_lazy(layer.data):
            _panel.notify_error(f"'{layer.name}' is a lazy result of a large image and cannot "
                                "be edited; rename, recolour or hide its clusters instead.")
            return
        data = np.asarray(layer.data)
        features = self.features.set_index("index")
        merged = features.loc[labels]
        weights = merged["pixels"].to_numpy(dtype=float)
        means = [c for c in features.columns if c.startswith("mean_")]
        merge = Merge(
            target=features.loc[target].to_dict() | {"index": target},
            merged_away={label: features.loc[label].to_dict() | {"index": label}
                         for label in others},
            new_mean=(merged[means].to_numpy() * weights[:, None]).sum(0)
            / max(weights.sum(), 1),
            outlines=[(outlines, list(outlines.data), outlines.features.copy())
                      for outlines in self._run_layers("outlines")])
        layer.data_setitem(np.nonzero(np.isin(data, others)), target)  # undoable, like paint
        self._history = _history_lengths(layer)
        self._merges.append(merge)
        self._undone = []
        self._apply_merge(merge, np.asarray(layer.data))
        self._status.value = f"merged {len(labels)} clusters into label {target}"

    def _apply_merge(self, merge: Merge, data: np.ndarray):
        """Table, quantized colours and outlines after ``merge`` (its pixels relabelled)."""
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
        self._apply_colours()
        self._fill()

    def _undo_merge(self, merge: Merge, features: pd.DataFrame, data: np.ndarray):
        """The table rows, quantized colours and outline labels from before ``merge``."""
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
        self._apply_colours()
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
            features = pd.concat([outlines.features[kept], pd.DataFrame({
                "label": [c.label for c in traced], "name": names[target],
                "area": [c.area for c in traced]})], ignore_index=True)
            polygons = [p for p, keep in zip(outlines.data, kept) if keep]
            _set_polygons(outlines, polygons + [c.vertices for c in traced], features)

    def _colour_of(self, label: int) -> str:
        return self.features.set_index("index").loc[label, "color"]

    def _apply_colours(self):
        """Colours and hidden clusters -> the Labels colormap and the outlines' edges."""
        layer = self._layer.value
        colormap = table_colormap(layer.features)
        for label in self._hidden:
            colormap.color_dict[label] = TRANSPARENT
        layer.colormap = colormap
        colours = self.features.set_index("index")["color"]
        for outlines in self._run_layers("outlines"):
            if len(outlines.data):
                outlines.edge_color = np.array(
                    [[*to_rgb(colours[label]), 0.0 if label in self._hidden else 1.0]
                     for label in outlines.features["label"]])


def _history_lengths(layer) -> tuple[int, int]:
    """Lengths of a Labels layer's undo and redo stacks ((0, 0) where napari hides them)."""
    return (len(getattr(layer, "_undo_history", ())), len(getattr(layer, "_redo_history", ())))


def _set_polygons(outlines, polygons: list, features: pd.DataFrame) -> None:
    """Replace an outlines layer's polygons and their features (colours follow later)."""
    outlines.data = [(polygon, "polygon") for polygon in polygons]
    outlines.features = features.reset_index(drop=True)
    if len(polygons):
        outlines.edge_width = OUTLINE_WIDTH
        outlines.face_color = "transparent"
