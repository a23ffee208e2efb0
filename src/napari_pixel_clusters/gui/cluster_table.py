"""The "Cluster table" dock widget: name, recolor, hide and merge the clusters of a
clusters layer, keeping every layer of the same run consistent.

The table is the layer's own ``features`` (so names show in the status bar on hover);
painting on the layer refreshes the pixel counts. Selecting rows selects those clusters
(see ``cluster_selection``: the canvas shows only them, and Cluster colors highlights
them); picking a label in napari selects its row. Hidden clusters are unticked in the
"show" column, in grey italics. The outlines of the run can be drawn in a contrasting
color, their cluster's color or random colors, at any width.

Every edit is domain work of ``core.editing`` (merge, recount, rename, recolor, outlines
traced again); this widget applies it to the layers of the run and records it in an
:class:`~napari_pixel_clusters.core.editing.EditHistory`. Undo and Redo (the buttons, or
Ctrl+Z and Ctrl+Shift+Z on the clusters layer) go back and forth through merges, renames,
recolors and painting in the order they were made, restoring the labels, the table, the
colors, the quantized image and the outlines: napari records painting (its own undo
restores those pixels), the history records the rest. napari offers no public way to add
other edits to its undo history or to hear about its undo, hence the history here.

Re-clustering: "Split" re-clusters the selected cluster's pixels into n parts with the
features the result was made with (new labels after the largest), "Merge similar" joins
clusters whose mean features are close (Ward, weighted by pixel counts) down to k; both
need the result's image layer, and both are undone and redone like merges (see
``core/recluster.py``). A clusters layer holds its labels in uint8 (or uint16) when they
fit (``layers.narrowed_labels``): a Split past label 255 gives the layer a new uint16
array (past 65535, int32), and its Undo gives it back its uint8 labels. Merge, Split
and Merge similar are computed in a background worker (the labels' edit, the labels
and quantized images after it, the outlines traced again, the posteriors below): the
edit buttons wait meanwhile, and the result is applied
on the GUI thread, or dropped (one notification) when the labels changed meanwhile
(painting, Undo) or the layer went. Undo and Redo of those edits compute the labels and
quantized images in a worker too. The GUI thread only copies or assigns arrays, replaces
the outlines of the changed clusters (napari triangulates only those polygons; the
restored ones come last, the set of outlines is exact) and refreshes each layer once
(``benchmarks/bench_cluster_table.py`` times it).

Probabilities follow: when the run has a probabilities layer (one channel per cluster,
on the "cluster" axis; its tag's ``labels`` name them) and an uncertainty layer, Merge
and Merge similar give the merged cluster the sum of its members' posteriors, Split
gives part j of cluster c the posterior ``p_c * q_j`` (``q_j``: the split model's
posterior of part j at each pixel; see ``core/probabilities.py``), and the uncertainty is
computed again from them with its own measure (margin or entropy). Undo and Redo put the
arrays back. Layers that cannot follow (lazy, multiscale, another shape, an uncertainty
without its probabilities) are renamed "... (before merge)" / "(before split)" with one
notification, never left showing other clusters than the labels.

"Copy as Python" puts the script that makes the layer again on the clipboard and shows
it (``core/reproduce.py``): ``segment`` with every parameter, the image's file when
napari read it from one, and the edits made in this table since, replayed, up to any
painting (recorded in the layer's metadata as ``edits``).

Objects: the "objects" column counts the connected regions of each cluster (with the
connectivity chosen next to "Make objects"), in a background worker each time the labels
change (debounced; "…" until it is done). "Make objects" turns the connected regions of
the selected clusters (all clusters when none is selected) into an instance Labels layer
with their measurements as features (see ``gui/objects.py``), made in a worker; "Save
objects..." writes that table as CSV (napari's File > Save Selected Layers does too).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from app_model.types import KeyCode, KeyMod
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox
from matplotlib.colors import to_hex
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QBrush, QColor, QFontDatabase, QPen
from qtpy.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QPlainTextEdit,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QTableWidgetSelectionRange,
    QVBoxLayout,
)

from .. import _writers
from ..core.editing import (
    Edit,
    EditHistory,
    LabelsChange,
    Outlines,
    OutlinesChange,
    painting_record,
    plan_merge,
    quantized_colors,
    recolor_clusters,
    recolor_record,
    recount,
    rename_cluster,
    rename_record,
    retrace_outlines,
    table_edit,
    table_labels,
    with_extra,
)
from ..core.probabilities import merge_posteriors, split_posteriors, uncertainty_of_posteriors
from ..core.recluster import part_posteriors, plan_merge_similar_groups, plan_split_parts
from ..core.registry import MAX_CLUSTERS
from ..core.reproduce import python_script
from . import _panel
from ._panel import clusters_layer_choice, failure_of
from .cluster_selection import cluster_selection, run_layers
from .docking import keep_window_on_screen
from .layers import (
    DEFAULT_OUTLINE_MODE,
    METADATA_KEY,
    OUTLINE_WIDTH,
    default_min_area,
    labels_dtype,
    outline_colors,
    style_outlines,
    table_colormap,
)
from .objects import (
    CONNECTIVITIES,
    DEFAULT_CONNECTIVITY,
    OUTPUT,
    build_objects_layer,
    count_objects,
    editable_labels,
    objects_job,
    plane_axes,
    summary,
)
from .preview import one_refresh

if TYPE_CHECKING:
    import napari

COLUMNS = ("show", "color", "name", "pixels", "fraction", "objects", "mean color")
SHOW, COLOR, NAME, PIXELS, FRACTION, OBJECTS, MEAN = range(len(COLUMNS))
#: What the "objects" column shows while its counts are being computed.
COUNTING = "\N{HORIZONTAL ELLIPSIS}"
#: Object counts wait this long after the last change of the labels (ms): a burst of
#: paint strokes or merges is counted once.
COUNT_DELAY_MS = 150
#: Item data role holding a row's swatch color (painted by ``SwatchDelegate``).
SWATCH_ROLE = Qt.ItemDataRole.UserRole + 1
#: Item data role saying the row's cluster is hidden (its swatch is drawn hatched).
HIDDEN_ROLE = Qt.ItemDataRole.UserRole + 2
HIDDEN_TEXT = QColor(128, 128, 128)
#: Outline styles offered: (shown as, ``style_outlines`` mode).
OUTLINE_STYLES = (("contrast", "contrast"), ("cluster color", "cluster"), ("random", "random"))
#: The table asks for room for about this many rows at least; the rest scrolls.
MIN_TABLE_HEIGHT = 84
#: Keys of napari's own undo and redo on a Labels layer: on the chosen clusters layer they
#: go through this widget's history (which undoes painting with napari's undo).
UNDO_KEY = KeyMod.CtrlCmd | KeyCode.KeyZ
REDO_KEY = KeyMod.CtrlCmd | KeyMod.Shift | KeyCode.KeyZ


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
class PosteriorEdit:
    """A probabilities layer's data (cluster axis first) and cluster labels before and
    after an edit, and its run's uncertainty layers' data before and after."""

    layer: object
    before: np.ndarray
    after: np.ndarray
    columns_before: list[int]
    columns_after: list[int]
    uncertainties: list[tuple[object, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """The arrays before the edit (those after are the layer's, or the next edit's
        before)."""
        return self.before.nbytes + sum(before.nbytes for _, before, _ in self.uncertainties)


@dataclass
class LayerEdits:
    """What an edit did besides the labels and the table (kept as the edit's ``extra``):
    the outlines it traced again, how many napari paint strokes it stands for (those
    pixels are restored with napari's own undo and redo), the probabilities and
    uncertainty it changed, the layers it renamed (layer, name before, after), and the
    dtypes of the labels before and after it when it widened them (a Split past 255
    labels in uint8: Undo gives the labels their dtype back)."""

    outlines: list[tuple[object, OutlinesChange]] = field(default_factory=list)
    napari_paints: int = 0
    posteriors: list[PosteriorEdit] = field(default_factory=list)
    renamed: list[tuple[object, str, str]] = field(default_factory=list)
    dtypes: tuple[np.dtype, np.dtype] | None = None

    @property
    def nbytes(self) -> int:
        return sum(change.nbytes for _, change in self.outlines) + sum(
            change.nbytes for change in self.posteriors
        )


#: A planned edit and how the posteriors follow it: ``(posteriors, columns)`` (cluster
#: axis first) -> the same after the edit (a ValueError when they cannot).
Follow = Callable[[np.ndarray, list[int]], tuple[np.ndarray, list[int]]]


@dataclass
class PosteriorInput:
    """What the worker reads of a probabilities layer (and its run's uncertainties)."""

    layer: object
    data: np.ndarray
    columns: list[int]
    uncertainties: list[tuple[object, np.ndarray, str]]


@dataclass
class LabelsView:
    """What a worker computed of the labels after an edit (or an undo or redo), for the
    GUI thread only to copy or assign: the labels ``result`` (the ``labels`` array it was
    computed from is the layer's) and each quantized image of the run (layer, the array
    it was painted from, the painted copy)."""

    labels: np.ndarray
    result: np.ndarray
    quantized: list[tuple[object, np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class PlannedEdit:
    """A worker's result: the edit (the layer's labels shape), the outlines' changes, the
    posteriors' edits, the posterior layers that could not follow, and the labels and
    quantized images after it (None when the edit changes no labels)."""

    edit: Edit
    labels: np.ndarray  # the labels it was planned on (the layer's array)
    outlines: list[tuple[object, OutlinesChange]]
    posteriors: list[PosteriorEdit]
    stale: list[object]
    view: LabelsView | None = None


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
            tooltip="Recount pixels from the layer (e.g. after a script changed it).",
        )
        self._undo = PushButton(
            name="undo",
            text="Undo",
            tooltip="Undo the last merge, rename, recolor or painting "
            "(Ctrl+Z on the clusters layer).",
        )
        self._redo = PushButton(
            name="redo",
            text="Redo",
            tooltip="Redo what Undo undid (Ctrl+Shift+Z on the clusters layer).",
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
        self._outline_width.native.setSuffix(" px")
        self._outline_controls = Container(
            name="outline_controls",
            label="outlines",
            layout="horizontal",
            labels=False,
            widgets=[Label(value="outlines"), self._outline_style, self._outline_width],
        )
        self._outline_controls.margins = (0, 0, 0, 0)
        self._make_objects = PushButton(name="make_objects", text="Make objects")
        self._connectivity = ComboBox(
            name="connectivity",
            label="connectivity",
            choices=CONNECTIVITIES,
            value=DEFAULT_CONNECTIVITY,
            tooltip="Which pixels join into one object, and into one region counted in the "
            '"objects" column: full (also across corners) or face (shared edges only).',
        )
        self._save_objects = PushButton(
            name="save_objects",
            text="Save objects...",
            tooltip="Save the table of the objects made from this clusters layer as CSV "
            "(the selected objects layer, else the newest).",
        )
        self._objects_controls = Container(
            name="objects_controls",
            label="objects",
            layout="horizontal",
            labels=False,
            widgets=[self._make_objects, self._connectivity, self._save_objects],
        )
        self._objects_controls.margins = (0, 0, 0, 0)
        self._split = PushButton(
            name="split",
            text="Split",
            tooltip="Cluster the selected cluster's pixels again into this many parts, "
            "with the features the result was made with; the largest part keeps the "
            "cluster, the others get new labels.",
        )
        self._split_parts = SpinBox(
            name="split_parts",
            label="into",
            value=2,
            min=2,
            max=MAX_CLUSTERS,
            tooltip="Split into this many parts.",
        )
        self._merge_similar = PushButton(
            name="merge_similar",
            text="Merge similar",
            tooltip="Join the clusters whose mean features are closest (Ward linkage "
            "weighted by pixel counts) until this many are left.",
        )
        self._merge_down_to = SpinBox(
            name="merge_down_to",
            label="down to",
            value=2,
            min=1,
            tooltip="Merge similar clusters until this many are left.",
        )
        self._copy_python = PushButton(
            name="copy_python",
            text="Copy as Python",
            tooltip="Copy the Python that makes this clusters layer again (segment with "
            "every parameter, then the edits made here) to the clipboard, and show it.",
        )
        self._status = Label(name="status", label=" ", value="")
        # as few rows as will do: the dock shares a laptop screen with the others (the
        # outline style sits by the layer, Copy as Python with the other saving; the
        # re-cluster row shows only for a result that can be edited)
        layer_row = Container(
            name="layer_row",
            label=self._layer.label,
            layout="horizontal",
            labels=False,
            widgets=[self._layer, self._outline_controls],
        )
        buttons = Container(
            name="buttons",
            label=" ",
            layout="horizontal",
            labels=False,
            widgets=[
                self._merge,
                self._hide,
                self._show_all,
                self._recolor,
                self._refresh,
                self._undo,
                self._redo,
            ],
        )
        self._recluster_row = recluster_row = Container(
            name="recluster_row",
            label="refine",  # re-cluster: no wider than "clusters" (the dock stays narrow)
            tooltip="Re-cluster: split the selected cluster, or merge similar clusters.",
            layout="horizontal",
            labels=False,
            widgets=[
                self._split,
                Label(value="into"),
                self._split_parts,
                self._merge_similar,
                Label(value="down to"),
                self._merge_down_to,
            ],
        )
        self._objects_controls.append(self._copy_python)
        for row in (layer_row, buttons, recluster_row):
            row.margins = (0, 0, 0, 0)
        self.extend([layer_row, buttons, recluster_row, self._objects_controls, self._status])
        self.margins = (4, 4, 4, 4)  # compact: the dock shares a laptop screen's height
        self.native.layout().setSpacing(3)
        self.history = EditHistory()  # the chosen layer's edits, for Undo and Redo
        self._pending_paints = 0  # napari paint strokes not recorded yet
        self._painted_from: pd.DataFrame | None = None  # the table before them
        self._keys: dict = {}  # key -> the layer's own binding we replaced
        self._counts: np.ndarray | None = None  # objects per cluster (None: not known yet)
        self._counts_version = 0  # changes each time the labels do: older counts are dropped
        self._counts_worker = None
        self._counts_timer = QTimer(self.native)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(COUNT_DELAY_MS)
        self._counts_timer.timeout.connect(self._count_objects)
        self._objects_worker = None
        self._edit_worker = None  # Merge, Split or Merge similar being computed
        self._labels_version = 0  # changes with the labels: a planned edit of older is dropped
        self.table = self._make_table()
        self.native.layout().addWidget(self.table)
        self._merge.changed.connect(lambda: self.merge_selected())
        self._hide.changed.connect(lambda: self.hide_selected())
        self._show_all.changed.connect(lambda: self.show_all())
        self._recolor.changed.connect(lambda: self.recolor())
        self._refresh.changed.connect(lambda: self.refresh_counts())
        self._undo.changed.connect(lambda: self.undo())
        self._redo.changed.connect(lambda: self.redo())
        self._outline_style.changed.connect(lambda: self.style_outlines())
        self._outline_width.changed.connect(lambda: self.style_outlines())
        self._make_objects.changed.connect(lambda: self.make_objects())
        self._save_objects.changed.connect(lambda: self.save_objects())
        self._split.changed.connect(lambda: self.split_selected())
        self._merge_similar.changed.connect(lambda: self.merge_similar())
        self._copy_python.changed.connect(lambda: self.copy_python())
        self._python_dialog: QDialog | None = None
        self._connectivity.changed.connect(self._labels_changed)
        self._layer.changed.connect(self._connect_layer)
        # the choice empties without a word when its layer is removed
        viewer.layers.events.removed.connect(self._layer_removed)
        self.native.destroyed.connect(partial(_let_go, weakref.ref(self)))
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
        """Follow the chosen layer (its paint strokes, its undo keys); a new history."""
        if self._connected is not None:
            self._connected.events.paint.disconnect(self._painted)
            self._release_keys(self._connected)
        if self._selection is not None:
            self._selection.changed.disconnect(self._show_selection)
        chosen = self._layer.value
        self._connected = chosen if chosen in self._viewer.layers else None
        self._selection = None
        self.history = EditHistory()
        self._labels_version += 1
        self._pending_paints, self._painted_from = 0, None
        if self._connected is not None:
            self._connected.events.paint.connect(self._painted)
            self._take_keys(self._connected)
            self._selection = cluster_selection(self._connected, self._viewer)
            self._selection.changed.connect(self._show_selection)
        self._read_outline_style()
        self._recluster_row.visible = self._editable_labels() is not None
        self._labels_changed()
        self._fill()
        self._update_buttons()
        self._describe_make_objects()

    def _layer_removed(self, event=None):
        if self._connected is not None and self._connected not in self._viewer.layers:
            self._connect_layer()

    def _take_keys(self, layer):
        """Ctrl+Z and Ctrl+Shift+Z on ``layer`` undo and redo through this widget."""
        me = weakref.ref(self)
        for key, action in ((UNDO_KEY, "undo"), (REDO_KEY, "redo")):
            self._keys[key] = layer.bind_key(key, _key_action(me, action), overwrite=True)

    def _release_keys(self, layer):
        """Give ``layer`` back the key bindings it had (napari's own undo and redo)."""
        for key, previous in self._keys.items():
            layer.bind_key(key, previous, overwrite=True)
        self._keys = {}

    def _painted(self, event=None):
        """napari recorded a paint stroke (it announces it before writing the pixels):
        recount and record it once the event loop is free."""
        if self._pending_paints == 0:
            self._painted_from = self.features.copy()
        self._pending_paints += 1
        self._labels_version += 1
        QTimer.singleShot(0, self._record_paints)

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
                (OBJECTS, self._count_text(int(values["index"]))),
                (MEAN, mean),
            ):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self._filling = False
        self._merge_down_to.max = max(1, len(rows) - 1)
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
        # not while the rows are filled in: rows removed (a merge) change the table's
        # selection, and the shared selection (already applied) selects the rows after
        if not self._syncing and not self._filling and self._selection is not None:
            self._selection.select(self.selected_labels())

    def _show_selection(self):
        """The shared selection changed: rows, hidden marks, outlines and the status."""
        selection = self._selection
        if selection is None:
            return
        self._sync_rows()
        self._describe_make_objects()
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
        was = self._syncing, self._filling  # restored after (this may run inside _fill)
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
            self._syncing, self._filling = was

    def _mark_hidden(self, row: int, hidden: bool):
        """A hidden cluster's row: unticked "show", "hidden", grey italics, hatched swatch."""
        show = self.table.item(row, SHOW)
        if show is None:
            return
        show.setCheckState(Qt.CheckState.Unchecked if hidden else Qt.CheckState.Checked)
        show.setText("hidden" if hidden else "")
        self.table.item(row, COLOR).setData(HIDDEN_ROLE, hidden)
        for column in (SHOW, NAME, PIXELS, FRACTION, OBJECTS, MEAN):
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
            self._record_paints()
            label = self._row_labels()[item.row()]
            before = self.features
            if str(before["name"].iloc[item.row()]) == item.text():
                return  # not a new name
            edit = table_edit(
                f"rename of cluster {label}",
                before,
                rename_cluster(before, label, item.text()),
                record=rename_record(label, item.text()),
            )
            self._record(edit)
            self._layer.value.features = edit.table_after.copy()
            self._update_buttons()

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
    def _editable_labels(self) -> np.ndarray | None:
        """The chosen layer's labels array (edited in place), or None for a lazy or
        multiscale result (counted exactly by its run; not editable)."""
        layer = self._layer.value
        if layer is None or layer not in self._viewer.layers or layer.multiscale:
            return None
        return layer.data if isinstance(layer.data, np.ndarray) else None

    def refresh_counts(self, event=None):
        """Pixel counts and fractions from the layer's current data (after a script or
        napari's own undo changed it; painting is counted by itself)."""
        data = self._editable_labels()
        if data is None:
            return
        self._layer.value.features = recount(self.features, data)
        self._labels_version += 1
        self._labels_changed()
        self._fill()

    def _record_paints(self):
        """Record the paint strokes napari announced as one edit: the counts after them."""
        strokes, self._pending_paints = self._pending_paints, 0
        data = self._editable_labels()
        if not strokes or data is None:
            return
        before = self._painted_from
        edit = table_edit(
            "painting",
            before,
            recount(before, data),
            extra=LayerEdits(napari_paints=strokes),
            record=painting_record(strokes),
        )
        self._record(edit)
        self._layer.value.features = edit.table_after.copy()
        self._labels_changed()
        self._fill()
        self._update_buttons()

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
        self._record_paints()
        before = self.features
        after = recolor_clusters(before, labels, to_hex(color))
        edit = table_edit(
            f"recolor of {', '.join(map(str, labels))}",
            before,
            after,
            record=recolor_record(labels, to_hex(color)),
        )
        self._record(edit)
        self._apply(edit, undo=False)

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
        layer = self._layer.value
        data = self._editable_labels()
        if data is None:
            _panel.notify_error(
                f"'{layer.name}' is a lazy result of a large image and cannot "
                "be edited; rename, recolor or hide its clusters instead."
            )
            return
        if self._refuse_while_busy():
            return None
        self._record_paints()
        plan = partial(_merge_plan, data, self.features.copy(), labels, self._image_dtype())
        return self._start_edit(
            plan,
            f"merging {', '.join(map(str, labels))}{COUNTING}",
            f"merged {len(labels)} clusters into label {labels[0]}",
        )

    @property
    def busy(self) -> bool:
        """True while a Merge, Split or Merge similar (or the Undo or Redo of one) is
        computed."""
        return self._edit_worker is not None

    def _refuse_while_busy(self) -> bool:
        if self.busy:
            _panel.notify_error("An edit is being computed: wait for it to be shown.")
        return self.busy

    def _start_edit(self, plan, doing: str, done: str, shape: tuple | None = None):
        """Compute the edit ``plan()`` plans (``(edit, follow)``), the outlines traced
        again and the posteriors following it in a worker; shown by ``_edit_planned``.
        ``shape``: the shape the edit was planned in, when not the layer's. Returns the
        worker."""
        layer, data = self._layer.value, self._editable_labels()
        outlines = [
            (
                shapes,
                _outlines_of(shapes),
                shapes.metadata[METADATA_KEY].get("min_area") or default_min_area(data),
            )
            for shapes in self._run_layers("outlines")
        ]
        posteriors, stale = self._posterior_inputs(data)
        worker = create_worker(
            _planned_edit,
            plan,
            data,
            outlines,
            posteriors,
            stale,
            self._quantized_inputs(data),
            _ignore_errors=True,
        )
        worker.returned.connect(partial(self._edit_planned, self._labels_version, layer, done))
        worker.errored.connect(self._edit_failed)
        worker.finished.connect(self._edit_finished)
        self._edit_worker = worker
        self._status.value = doing
        self._update_buttons()
        worker.start()
        return worker

    def _edit_planned(self, version: int, layer, done: str, planned: PlannedEdit):
        """On the GUI thread: apply the worker's edit, unless the labels changed since."""
        with contextlib.suppress(RuntimeError):  # the widget was closed meanwhile
            edit = planned.edit
            data = self._editable_labels()
            if (
                version != self._labels_version
                or layer is not self._layer.value
                or data is not planned.labels
            ):
                show_info(
                    f"The {edit.description} was not applied: the labels of "
                    f"'{layer.name}' changed while it was computed (nothing changed)."
                )
                self._status.value = f"dropped: {edit.description}"
                return
            if edit.labels is None and not edit.changed_clusters():
                self._status.value = "no similar clusters to merge"
                return
            dtypes = None
            if planned.view is not None and planned.view.result.dtype != data.dtype:
                dtypes = (data.dtype, planned.view.result.dtype)  # assigned by _apply
            else:
                edit.apply_in_place(data, result=planned.view.result if planned.view else None)
            posteriors = [
                change
                for change in planned.posteriors
                if change.layer.data is change.before
                and all(layer.data is before for layer, before, _ in change.uncertainties)
            ]
            stale = planned.stale + [
                change.layer for change in planned.posteriors if change not in posteriors
            ]
            renamed = self._renamed_stale(stale, edit)
            edit = with_extra(
                edit,
                LayerEdits(
                    outlines=planned.outlines,
                    posteriors=posteriors,
                    renamed=renamed,
                    dtypes=dtypes,
                ),
            )
            self._record(edit)
            self._apply(edit, undo=False, view=planned.view)  # the other layers
            self._status.value = done.format(n=len(self.features), edit=edit)

    def _edit_failed(self, error):
        with contextlib.suppress(RuntimeError):
            self._status.value = failure_of(error).status
        _panel.notify_error(failure_of(error).message)

    def _edit_finished(self, *args):
        self._edit_worker = None
        with contextlib.suppress(RuntimeError):
            self._update_buttons()

    # ------------------------------------------------------------- posteriors
    def _posterior_inputs(self, labels: np.ndarray) -> tuple[list[PosteriorInput], list]:
        """The run's probabilities layers that can follow an edit of ``labels`` (in
        memory, the cluster axis first, then the labels' shape) with their uncertainty
        layers, and the posterior layers that cannot."""
        usable, stale = [], []
        uncertainties = [u for u in self._run_layers("uncertainty") if not _before_edit(u)]
        for layer in self._run_layers("probabilities"):
            if _before_edit(layer):
                continue
            data = layer.data
            tag = layer.metadata[METADATA_KEY]
            fits = (
                isinstance(data, np.ndarray)
                and not layer.multiscale
                and data.shape[1:] == labels.shape
            )
            columns = list(tag.get("labels") or range(1, data.shape[0] + 1)) if fits else []
            if not fits or len(columns) != data.shape[0]:
                stale.append(layer)
                continue
            followers = [
                (u, u.data, str(u.metadata[METADATA_KEY].get("uncertainty") or "margin"))
                for u in uncertainties
                if isinstance(u.data, np.ndarray) and u.data.shape == labels.shape
            ]
            usable.append(PosteriorInput(layer, data, columns, followers))
        followed = {id(u) for p in usable for u, _, _ in p.uncertainties}
        stale += [u for u in uncertainties if id(u) not in followed]
        return usable, stale

    def _renamed_stale(self, layers: list, edit: Edit) -> list[tuple[object, str, str]]:
        """Rename posterior layers that could not follow ``edit`` "... (before merge)" (one
        notification); the renames, for Undo."""
        layers = [layer for layer in dict.fromkeys(layers) if layer in self._viewer.layers]
        if not layers:
            return []
        what = (edit.record or {}).get("edit", "edit")
        renamed = [(layer, layer.name, f"{layer.name} (before {what})") for layer in layers]
        for layer, _, after in renamed:
            layer.name = after
            layer.metadata[METADATA_KEY]["before_edit"] = edit.description
        show_info(
            f"{', '.join(repr(before) for _, before, _ in renamed)} could not follow the "
            f"{edit.description} (a lazy or changed layer): renamed to say they show the "
            f"clusters before it."
        )
        return renamed

    def _apply_posteriors(self, edits: LayerEdits, undo: bool):
        """The probabilities and uncertainty layers as before or after an edit."""
        for change in edits.posteriors:
            tag = change.layer.metadata[METADATA_KEY]
            tag["labels"] = list(change.columns_before if undo else change.columns_after)
            change.layer.data = change.before if undo else change.after
            for layer, before, after in change.uncertainties:
                layer.data = before if undo else after
        for layer, before, after in edits.renamed:
            layer.name = before if undo else after
            tag = layer.metadata[METADATA_KEY]
            if undo:
                tag.pop("before_edit", None)
            else:
                tag["before_edit"] = after

    def _record(self, edit: Edit):
        """Record an applied edit for Undo, and its replay in the layer's ``edits``."""
        self.history.record(edit)
        self._log_edit(edit, undo=False)

    def _log_edit(self, edit: Edit, undo: bool):
        """The layer's metadata lists the edits applied to it (``Edit.record``), oldest
        first: what Copy as Python replays."""
        tag = self._layer.value.metadata.get(METADATA_KEY)
        if edit.record is None or not isinstance(tag, dict):
            return
        edits = tag.setdefault("edits", [])
        if not undo:
            edits.append(edit.record)
        elif edits and edits[-1] == edit.record:
            edits.pop()

    # ------------------------------------------------------------- re-clustering
    def _image_and_labels(self, what: str):
        """(image as the run read it, rgb, the labels in its shape, the layer's labels) of
        the chosen result, or None after one notification saying why ``what`` cannot."""
        layer = self._layer.value
        data = self._editable_labels()
        if layer is None or data is None:
            _panel.notify_error(
                "Choose a clusters layer first."
                if layer is None
                else f"'{layer.name}' is a lazy result of a large image and cannot be "
                f"edited; {what} needs its labels in memory."
            )
            return None
        tag = layer.metadata.get(METADATA_KEY, {})
        name = tag.get("source_layer") or ""
        source = self._layer_named(name)
        if not isinstance(source, Image) or source.multiscale:
            _panel.notify_error(
                f"{what} clusters the pixels of the image '{name or tag.get('source', '?')}' "
                f"that '{layer.name}' was made from; open it as an image layer of that name."
            )
            return None
        image = np.asarray(source.data)
        plane = tuple(int(i) for i in tag.get("plane") or ())
        if plane:
            image = image[plane][np.newaxis]  # as the run took its plane (a stack of one)
        spatial = image.shape[:-1] if source.rgb else image.shape
        if int(np.prod(spatial)) != data.size:
            _panel.notify_error(
                f"The image '{name}' has changed size since '{layer.name}' was made "
                f"({spatial} pixels, the labels {data.shape}); {what} needs the same image."
            )
            return None
        return image, bool(source.rgb), data.reshape(spatial), data

    def split_selected(self, n_clusters: int | None = None):
        """Split the selected cluster into ``n_clusters`` parts (the "into" box's value
        when not given) in every layer of the run."""
        labels = self.selected_labels()
        if len(labels) != 1:
            _panel.notify_error("Select the one cluster to split in the table.")
            return
        if n_clusters is not None:
            self._split_parts.value = n_clusters
        found = self._image_and_labels("Split")
        if found is None:
            return
        image, rgb, labels_view, _ = found
        if self._refuse_while_busy():
            return None
        self._record_paints()
        params = self._layer.value.metadata[METADATA_KEY].get("params") or {}
        n_parts = self._split_parts.value
        plan = partial(
            _split_plan, labels_view, self.features.copy(), image, labels[0], n_parts, params, rgb
        )
        return self._start_edit(
            plan,
            f"splitting cluster {labels[0]} into {n_parts}{COUNTING}",
            "{edit.description}: {n} clusters",
        )

    def merge_similar(self, n_clusters: int | None = None):
        """Merge the clusters with the closest mean features until ``n_clusters`` are
        left (the "down to" box's value when not given), in every layer of the run."""
        if n_clusters is not None:
            self._merge_down_to.value = n_clusters
        found = self._image_and_labels("Merge similar")
        if found is None:
            return
        image, rgb, labels_view, _ = found
        if self._refuse_while_busy():
            return None
        self._record_paints()
        params = self._layer.value.metadata[METADATA_KEY].get("params") or {}
        down_to = self._merge_down_to.value
        plan = partial(
            _merge_similar_plan, labels_view, self.features.copy(), image, down_to, params, rgb
        )
        return self._start_edit(
            plan,
            f"merging similar clusters down to {down_to}{COUNTING}",
            "{edit.description}: {n} clusters",
        )

    # ------------------------------------------------------------- reproducible code
    def python_code(self) -> str | None:
        """The script that makes the chosen clusters layer again (see
        ``core/reproduce.py``), or None after one notification."""
        layer = self._layer.value
        if layer is None:
            _panel.notify_error("Choose a clusters layer first.")
            return None
        self._record_paints()
        tag = layer.metadata.get(METADATA_KEY, {})
        edits = list(tag.get("edits") or [])
        data = self._editable_labels()
        if data is not None and not np.array_equal(
            recount(self.features, data)["pixels"], self.features["pixels"]
        ):  # painted while no Cluster table listened
            edits.append(painting_record(0))
        mask = (tag.get("params") or {}).get("mask") or {}
        try:
            return python_script(
                tag.get("params") or {},
                image=self._file_of(tag.get("source_layer")),
                mask=self._file_of(mask.get("layer")) if mask else None,
                plane=tuple(tag.get("plane") or ()),
                edits=edits,
                title=layer.name,
                image_name=tag.get("source_layer") or "",
            )
        except ValueError as error:
            _panel.notify_error(f"'{layer.name}' cannot be made again by code: {error}")
            return None

    def _layer_named(self, name: str | None):
        """The viewer's layer called ``name`` (None: no such layer; napari's layer list
        has no ``get``)."""
        return self._viewer.layers[name] if name and name in self._viewer.layers else None

    def _file_of(self, name: str | None) -> str | None:
        """The file napari read the layer ``name`` from, if any."""
        path = getattr(getattr(self._layer_named(name), "source", None), "path", None)
        return str(path) if path else None

    def copy_python(self) -> str | None:
        """Copy the chosen layer's script to the clipboard and show it in a read-only
        window; returns it (None after one notification)."""
        script = self.python_code()
        if script is None:
            return None
        QApplication.clipboard().setText(script)
        self._show_python(script)
        self._status.value = "Python copied to the clipboard"
        return script

    def _show_python(self, script: str):
        if self._python_dialog is not None:
            with contextlib.suppress(RuntimeError):  # closed and deleted already
                self._python_dialog.close()
        dialog = QDialog(self.native)
        dialog.setWindowTitle(f"Python: {self._layer.value.name}")
        text = QPlainTextEdit(script)
        text.setReadOnly(True)
        text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.resize(760, 520)
        dialog.show()
        self._python_dialog = dialog

    def undo(self):
        """Undo the last edit (merge, rename, recolor or painting) in every layer of the
        run; with nothing left here, napari's own undo (painting before this widget).
        Undoing a merge or split computes the labels and quantized images before it in a
        worker (returned; None otherwise); the other layers follow on the GUI thread."""
        return self._step(undo=True)

    def redo(self):
        """Redo the last edit Undo undid, in every layer of the run (a merge or split in
        a worker, returned, as Undo)."""
        return self._step(undo=False)

    def _step(self, undo: bool):
        self._record_paints()
        layer, data = self._layer.value, self._editable_labels()
        if layer is None or self._refuse_while_busy():
            return None
        if undo and not self.history.can_undo:
            if self.history.forgotten == 0 and data is not None:
                layer.undo()
                self.history.forget_redo()  # the labels moved underneath what was undone
                self.refresh_counts()
                self._update_buttons()
            return None
        edit = self.history.peek_undo() if undo else self.history.peek_redo()
        if edit is None:
            return None
        if edit.labels is None or data is None:
            self._stepped(edit, undo)
            return None
        what = "undoing" if undo else "redoing"
        worker = create_worker(
            _labels_view,
            edit,
            undo,
            data,
            self._quantized_inputs(data),
            _step_dtype(edit, undo, data.dtype),
            _ignore_errors=True,
        )
        worker.returned.connect(
            partial(self._step_computed, self._labels_version, layer, edit, undo)
        )
        worker.errored.connect(self._edit_failed)
        worker.finished.connect(self._edit_finished)
        self._edit_worker = worker
        self._status.value = f"{what} the {edit.description}{COUNTING}"
        self._update_buttons()
        worker.start()
        return worker

    def _step_computed(self, version: int, layer, edit: Edit, undo: bool, view: LabelsView):
        """On the GUI thread: undo or redo ``edit`` with the labels and quantized images
        the worker computed, unless the labels or the history changed since."""
        with contextlib.suppress(RuntimeError):  # the widget was closed meanwhile
            newest = self.history.peek_undo() if undo else self.history.peek_redo()
            if (
                version != self._labels_version
                or layer is not self._layer.value
                or view.labels is not self._editable_labels()
                or newest is not edit
            ):
                what = "undo" if undo else "redo"
                show_info(
                    f"The {what} of the {edit.description} was not applied: the labels of "
                    f"'{layer.name}' changed meanwhile (nothing changed)."
                )
                self._status.value = f"dropped: {what} of the {edit.description}"
                return
            self._stepped(edit, undo, view)

    def _stepped(self, edit: Edit, undo: bool, view: LabelsView | None = None):
        """Move ``edit`` across the history (the labels from ``view`` when given) and show
        it in every layer of the run."""
        layer, data = self._layer.value, self._editable_labels()
        result = None if view is None else view.result
        if result is not None and data is not None and result.dtype != data.dtype:
            data = result  # another dtype: _apply makes it the layer's data (no copy)
        if undo:
            self.history.undo(data, result=result)
        else:
            self.history.redo(data, result=result)
        for _ in range(_layer_edits(edit).napari_paints):
            if undo:
                layer.undo()
            else:
                layer.redo()
        self._log_edit(edit, undo=undo)
        self._apply(edit, undo=undo, view=view)
        self._status.value = f"{'undone' if undo else 'redone'}: {edit.description}"

    def _apply(self, edit: Edit, undo: bool, view: LabelsView | None = None):
        """Show ``edit`` (its labels already changed) in the table and the other layers of
        the run, as before it (``undo``) or after it; ``view``: the quantized images a
        worker painted. Each layer is refreshed (sliced, drawn, its thumbnail made) once,
        and only the outlines of the clusters the edit changed are replaced."""
        layer = self._layer.value
        table = (edit.table_before if undo else edit.table_after).copy()
        changes = [
            (shapes, change)
            for shapes, change in _layer_edits(edit).outlines
            if shapes in self._viewer.layers
        ]
        with contextlib.ExitStack() as once:
            once.enter_context(one_refresh(layer))
            for shapes, _ in changes:
                once.enter_context(one_refresh(shapes))
            outlines = self._run_layers("outlines")
            for shapes in outlines:  # their thumbnails after every change
                once.enter_context(shapes.block_thumbnail_update())
            if view is not None and view.result.dtype != layer.data.dtype:
                layer.data = view.result  # labels widened (or narrowed back) by the edit
            layer.features = table
            for shapes, change in changes:
                self._change_outlines(shapes, change, undo, table)
            if edit.labels is not None:
                changed = edit.labels.labels_before() | edit.labels.labels_after()
                self._show_quantized(view, sorted(changed), table)
            if edit.labels is not None or _layer_edits(edit).napari_paints:
                self._labels_version += 1
                self._labels_changed()
            self._apply_posteriors(_layer_edits(edit), undo)
            other = edit.table_after if undo else edit.table_before
            if "color" in table and not table["color"].equals(other["color"]):
                self._selection.use_colors(table_colormap(table))
            else:
                self._selection.apply()
        for shapes in outlines:
            if all(shapes is not changed for changed, _ in changes):
                shapes.refresh(data_displayed=False, highlight=False, extent=False)
        self._fill()
        self._update_buttons()

    def _change_outlines(self, shapes, change: OutlinesChange, undo: bool, table):
        """Outlines as before or after an edit: those of the clusters it changed removed,
        theirs added (traced again where someone edited them since)."""
        outlines = _outlines_of(shapes)
        try:
            positions, added = change.swap(outlines, undo)
        except ValueError:  # polygons added or deleted by hand since: trace those clusters
            labels = self._layer.value.data
            min_area = shapes.metadata[METADATA_KEY].get("min_area") or default_min_area(labels)
            retraced = retrace_outlines(outlines, labels, change.clusters, table, min_area)
            positions, added = retraced.swap(outlines)
        after = np.ones(len(outlines.polygons), dtype=bool)
        after[positions] = False
        rows = pd.concat([outlines.table[after], added.table], ignore_index=True)
        _swap_outlines(shapes, positions, added, rows, table)

    def _update_buttons(self):
        """Undo and Redo enabled when there is something to undo or redo, which they name;
        the edit buttons wait while an edit is computed."""
        for button in (self._merge, self._split, self._merge_similar):
            button.enabled = not self.busy
        for button, verb, edit, key in (
            (self._undo, "Undo", self.history.peek_undo(), "Ctrl+Z"),
            (self._redo, "Redo", self.history.peek_redo(), "Ctrl+Shift+Z"),
        ):
            button.enabled = edit is not None and not self.busy
            what = f"the {edit.description}" if edit is not None else "the last edit"
            button.tooltip = f"{verb} {what} ({key} on the clusters layer)."

    def _image_dtype(self):
        """The dtype of the image the result was made from (its integer means are exact),
        from the run's provenance or its quantized image; None when unknown."""
        tag = self._layer.value.metadata.get(METADATA_KEY, {})
        dtype = ((tag.get("params") or {}).get("image") or {}).get("dtype")
        if dtype is None:
            quantized = self._run_layers("quantized")
            dtype = getattr(quantized[0].data, "dtype", None) if quantized else None
        try:
            return None if dtype is None else np.dtype(dtype)
        except TypeError:
            return None

    def _quantized_inputs(self, labels: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """The run's quantized images a worker can paint after an edit of ``labels``
        (in memory, the labels' shape then channels); lazy ones are left as they are."""
        return [
            (quantized, quantized.data)
            for quantized in self._run_layers("quantized")
            if isinstance(quantized.data, np.ndarray)
            and quantized.data.shape[: labels.ndim] == labels.shape
        ]

    def _show_quantized(self, view: LabelsView | None, clusters: list[int], table):
        """The quantized images of the run after an edit: the copies the worker painted
        (``view``), or, for one changed since it read it, painted here."""
        labels = self._layer.value.data
        done = set()
        for quantized, source, painted in view.quantized if view is not None else []:
            if quantized in self._viewer.layers and quantized.data is source:
                quantized.data = painted
                done.add(id(quantized))
        for quantized, data in self._quantized_inputs(labels):
            if id(quantized) not in done and _paint_clusters(data, labels, table, clusters):
                quantized.refresh()

    # ----------------------------------------------------------------- objects
    def _describe_make_objects(self):
        """The Make objects button says which clusters it will use."""
        chosen = self.selected_labels()
        which = (
            f"the selected cluster{'s' if len(chosen) > 1 else ''} "
            f"({', '.join(self._names_of(chosen))})"
            if chosen
            else "all clusters (none is selected)"
        )
        self._make_objects.tooltip = (
            f"Connected regions of {which} become a new Labels layer of objects, one label "
            "each, with their area (volume), centroid, perimeter, mean colors and bounding "
            "box as features. Select rows to choose clusters."
        )

    def _names_of(self, labels: list[int]) -> list[str]:
        names = self.features.set_index("index")["name"]
        return [str(names.get(label, label)) for label in labels]

    def make_objects(self):
        """Objects from the selected clusters (all when none is selected), made in a
        worker; returns the worker, or None when nothing was started (one notification)."""
        layer = self._layer.value
        if layer is None:
            _panel.notify_error("Choose a clusters layer first.")
            return None
        if self._objects_worker is not None:
            _panel.notify_error("Objects are being made: wait for them to be added.")
            return None
        self._record_paints()
        clusters = self.selected_labels() or table_labels(self.features)
        try:
            job = objects_job(self._viewer, layer, clusters, self._connectivity.value)
        except Exception as error:  # every error is one notification (see failure_of)
            self._objects_failed(error)
            return None
        names = self._names_of(clusters)
        worker = create_worker(build_objects_layer, job, _ignore_errors=True)
        worker.returned.connect(partial(self._objects_made, names, job.notes))
        worker.errored.connect(self._objects_failed)
        worker.finished.connect(self._objects_finished)
        self._objects_worker = worker
        self._make_objects.enabled = False
        self._status.value = f"making objects from {', '.join(names)}{COUNTING}"
        worker.start()
        return worker

    def _objects_made(self, names: list[str], notes: list[str], result):
        """On the GUI thread: add the objects layer the worker built, say what it holds."""
        objects, layer = result
        with contextlib.suppress(RuntimeError):  # the widget was closed meanwhile
            if not len(objects.table):
                _panel.notify_error(
                    f"No objects: {', '.join(names)} has no pixels left; nothing was added."
                )
                self._status.value = "no objects"
                return
            self._viewer.add_layer(layer)
            message = "; ".join(
                [
                    summary(objects, names),
                    *notes,
                    "save their table with Save objects... or File > Save Selected Layers (.csv)",
                ]
            )
            self._status.value = summary(objects, names)
            show_info(message)

    def _objects_failed(self, error):
        with contextlib.suppress(RuntimeError):
            self._status.value = failure_of(error).status
        _panel.notify_error(failure_of(error).message)

    def _objects_finished(self, *args):
        self._objects_worker = None
        with contextlib.suppress(RuntimeError):
            self._make_objects.enabled = True

    def objects_layers(self) -> list:
        """The objects layers made from the chosen clusters layer, oldest first."""
        layer = self._layer.value
        if layer is None:
            return []
        return [
            other
            for other in self._viewer.layers
            if other.metadata.get(METADATA_KEY, {}).get("output") == OUTPUT
            and other.metadata[METADATA_KEY].get("clusters_layer") == layer.name
        ]

    def save_objects(self, path: str | None = None, overwrite: bool = False):
        """Save the objects' table (of the selected objects layer, else the newest made
        from the chosen clusters layer) as CSV with its provenance in a ``.json`` beside
        it. Without ``path`` a save dialog asks for one (and asks before replacing a
        file); a given ``path`` that exists is refused unless ``overwrite``. Returns the
        path written, or None."""
        layers = self.objects_layers()
        if not layers:
            _panel.notify_error("Make objects first: there is no objects layer to save.")
            return None
        active = self._viewer.layers.selection.active
        objects = active if active in layers else layers[-1]
        if path is None:
            dialog = self._csv_dialog(objects.name)
            if not dialog.exec():
                return None
            path, overwrite = dialog.selectedFiles()[0], True  # the dialog asked
        if os.path.lexists(path) and not overwrite:
            _panel.notify_error(
                f"path: {path} exists already; choose another file (nothing was written)."
            )
            return None
        attributes = {
            "name": objects.name,
            "features": objects.features,
            "metadata": objects.metadata,
        }
        try:
            _writers.write_table(str(path), objects.data, attributes)
        except ValueError as error:
            _panel.notify_error(str(error))
            return None
        self._status.value = f"saved {len(objects.features)} objects to {path}"
        return str(path)

    def _csv_dialog(self, name: str) -> QFileDialog:
        """A save dialog for a CSV file that asks before replacing one (Qt's default)."""
        dialog = QFileDialog(self.native, "Save the objects table", f"{name}.csv")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("CSV table (*.csv)")
        dialog.setDefaultSuffix("csv")
        return dialog

    # ------------------------------------------------------------ object counts
    def _labels_changed(self, *args):
        """The labels (or the connectivity) changed: count the objects again after a
        pause; "…" until then."""
        self._counts_version += 1
        self._counts = None
        self._counts_timer.start()
        self._show_counts()

    def object_counts(self) -> dict[int, int] | None:
        """Objects of each cluster of the table as shown, or None while counting."""
        if self._counts is None:
            return None
        return {label: self._count_of(label) for label in self._row_labels()}

    def _count_of(self, label: int) -> int:
        counts = self._counts
        return int(counts[label]) if counts is not None and 0 <= label < len(counts) else 0

    def _count_text(self, label: int) -> str:
        if self._layer.value is None or editable_labels(self._layer.value) is None:
            return ""  # a lazy result: not counted
        return COUNTING if self._counts is None else f"{self._count_of(label):,}"

    def _show_counts(self):
        was, self._filling = self._filling, True
        try:
            for row, label in enumerate(self._row_labels()):
                item = self.table.item(row, OBJECTS)
                if item is not None:
                    item.setText(self._count_text(label))
        finally:
            self._filling = was

    def _count_objects(self):
        """Count in a worker (one at a time; a change meanwhile counts again after)."""
        layer = self._layer.value
        if self._counts_worker is not None or layer is None:
            return
        data = editable_labels(layer)
        if data is None:
            return
        version = self._counts_version
        worker = create_worker(
            count_objects, data, plane_axes(layer), self._connectivity.value, _ignore_errors=True
        )
        worker.returned.connect(partial(self._counted, version))
        worker.errored.connect(self._objects_failed)
        worker.finished.connect(self._counting_finished)
        self._counts_worker = worker
        worker.start()

    def _counted(self, version: int, counts: np.ndarray):
        if version != self._counts_version:
            return  # the labels changed while counting
        self._counts = counts
        with contextlib.suppress(RuntimeError):
            self._show_counts()

    def _counting_finished(self, *args):
        self._counts_worker = None
        if self._counts is None:  # changed while counting: again
            with contextlib.suppress(RuntimeError):
                self._counts_timer.start()

    def _color_of(self, label: int) -> str:
        return self.features.set_index("index").loc[label, "color"]


def _let_go(widget_ref, *args):
    """The widget is closed: its layer gets napari's own undo keys back."""
    widget = widget_ref()
    if widget is not None and widget._connected is not None:
        widget._connected.events.paint.disconnect(widget._painted)
        widget._release_keys(widget._connected)
        widget._connected = None


def _key_action(widget_ref, action: str):
    """A key binding that runs ``action`` ("undo", "redo") of the widget, or the layer's
    own when the widget is gone or follows another layer."""

    def on_key(layer):
        widget = widget_ref()
        if widget is None or widget._connected is not layer:
            getattr(layer, action)()
        else:
            getattr(widget, action)()

    return on_key


def _layer_edits(edit: Edit) -> LayerEdits:
    return edit.extra if isinstance(edit.extra, LayerEdits) else LayerEdits()


def _outlines_of(shapes) -> Outlines:
    """The polygons and table of an outlines Shapes layer."""
    return Outlines(list(shapes.data), shapes.features.copy())


def _swap_outlines(
    shapes, positions: np.ndarray, added: Outlines, rows: pd.DataFrame, table: pd.DataFrame
) -> None:
    """Remove an outlines layer's polygons at ``positions`` and add ``added`` at the end
    in their clusters' outline colors (``table``: the clusters layer's), at the layer's
    line width; ``rows``: its features after. napari triangulates only the added
    polygons (replacing ``data`` triangulates every one)."""
    width = shapes.metadata.get(METADATA_KEY, {}).get("outline_width")
    if width is None:
        width = float(np.asarray(shapes.edge_width)[0]) if len(shapes.data) else OUTLINE_WIDTH
    if len(positions):
        shapes.selected_data = set()
        shapes.remove([int(i) for i in positions])
    if added.polygons:
        mode = shapes.metadata.get(METADATA_KEY, {}).get("outline_mode", DEFAULT_OUTLINE_MODE)
        labels = np.asarray(added.table["label"], dtype=int)
        shapes.add(
            list(added.polygons),
            shape_type="polygon",
            edge_width=width,
            edge_color=outline_colors(labels, table, mode),
            face_color="transparent",
        )
    shapes.features = rows.reset_index(drop=True)


# ------------------------------------------------------------------ edits in a worker
def _merge_plan(labels, table, clusters, dtype) -> tuple[Edit, Follow]:
    edit = plan_merge(labels, table, clusters, dtype=dtype)
    return edit, partial(_merged_posteriors, [list(clusters)])


def _merge_similar_plan(labels, table, image, n_clusters, params, rgb) -> tuple[Edit, Follow]:
    edit, groups = plan_merge_similar_groups(labels, table, image, n_clusters, params, rgb=rgb)
    return edit, partial(_merged_posteriors, groups)


def _merged_posteriors(groups, posteriors, columns):
    for group in groups:
        posteriors, columns = merge_posteriors(posteriors, columns, group, axis=0)
    return posteriors, columns


def _split_plan(labels, table, image, cluster, n_clusters, params, rgb) -> tuple[Edit, Follow]:
    labels = _with_room(labels, table, n_clusters)
    plan = plan_split_parts(labels, table, image, cluster, n_clusters, params, rgb=rgb)
    parts: list[np.ndarray] = []  # the parts' posteriors, computed once

    def follow(posteriors, columns):
        if not parts:
            q = part_posteriors(plan, image)
            parts.append(np.moveaxis(q, -1, 0).reshape(q.shape[-1], *posteriors.shape[1:]))
        return split_posteriors(
            posteriors, columns, plan.cluster, parts[0], plan.labels_by_size, axis=0
        )

    return plan.edit, follow


def _with_room(labels: np.ndarray, table: pd.DataFrame, n_new: int) -> np.ndarray:
    """``labels``, or a copy in a wider dtype when ``n_new`` labels after the largest (of
    the labels and the table) do not fit in theirs (uint8 labels split past 255)."""
    top = max(int(labels.max(initial=0)), *table_labels(table)) + int(n_new)
    if labels.dtype.kind in "iu" and top > np.iinfo(labels.dtype).max:
        return labels.astype(np.promote_types(labels.dtype, labels_dtype(top)))
    return labels


def _holding(dtype: np.dtype, values: np.ndarray) -> np.dtype:
    """``dtype``, or a wider one when it cannot hold ``values`` (labels an edit writes)."""
    top = int(np.max(values, initial=0))
    if top <= np.iinfo(dtype).max:
        return np.dtype(dtype)
    return np.promote_types(dtype, labels_dtype(top))


def _step_dtype(edit: Edit, undo: bool, dtype: np.dtype) -> np.dtype:
    """The labels' dtype after undoing or redoing ``edit`` on labels of ``dtype``: the one
    they had before (or after) it when it widened them, else one that holds its values."""
    assert edit.labels is not None
    dtypes = _layer_edits(edit).dtypes
    if dtypes is not None and dtype == dtypes[1 if undo else 0]:
        return dtypes[0 if undo else 1]
    values = (edit.labels.before if undo else edit.labels.after).palette
    return _holding(dtype, values)


def _planned_edit(
    plan: Callable[[], tuple[Edit, Follow]],
    labels: np.ndarray,
    outlines: list[tuple[Any, Outlines, int]],
    posteriors: list[PosteriorInput],
    stale: list,
    quantized: list[tuple[Any, np.ndarray]],
) -> PlannedEdit:
    """In a worker: the edit ``plan`` plans (for the layer's ``labels`` array, not
    modified), the labels after it and the ``quantized`` images painted for them, the
    outlines of the clusters it changes traced again, the posteriors following it (those
    that cannot are added to ``stale``)."""
    edit, follow = plan()
    edit = edit.reshaped(labels.shape)
    if edit.labels is None and not edit.changed_clusters():
        return PlannedEdit(edit, labels, [], [], [])  # nothing to do
    outline_changes, view = [], None
    if edit.labels is not None:
        dtype = _holding(labels.dtype, edit.labels.after.palette)
        view = _labels_view(edit, False, labels, quantized, dtype)
        clusters = sorted(edit.labels.labels_before() | edit.labels.labels_after())
        outline_changes = [
            (shapes, retrace_outlines(drawn, view.result, clusters, edit.table_after, min_area))
            for shapes, drawn, min_area in outlines
        ]
    changes, stale = [], list(stale)
    for posterior in posteriors:
        try:
            new, columns = follow(posterior.data, posterior.columns)
        except ValueError:  # e.g. labels of components without pixels in the way
            stale += [posterior.layer, *(u for u, _, _ in posterior.uncertainties)]
            continue
        uncertainties = [
            (layer, data, uncertainty_of_posteriors(new, kind, axis=0))
            for layer, data, kind in posterior.uncertainties
        ]
        changes.append(
            PosteriorEdit(
                posterior.layer, posterior.data, new, posterior.columns, columns, uncertainties
            )
        )
    return PlannedEdit(edit, labels, outline_changes, changes, stale, view)


def _labels_view(
    edit: Edit,
    undo: bool,
    labels: np.ndarray,
    quantized: list[tuple[Any, np.ndarray]],
    dtype: np.dtype | None = None,
) -> LabelsView:
    """In a worker: the labels before (``undo``) or after ``edit`` (from the layer's
    ``labels``, not modified; in ``dtype`` when given) and a copy of each quantized
    image with the clusters the edit changed painted in their mean colors of the table
    then."""
    assert edit.labels is not None
    result = _labels_after(edit.labels, undo, labels, labels.dtype if dtype is None else dtype)
    table = edit.table_before if undo else edit.table_after
    clusters = sorted(edit.labels.labels_before() | edit.labels.labels_after())
    painted = []
    for layer, data in quantized:
        copy = data.copy()
        if _paint_clusters(copy, result, table, clusters):
            painted.append((layer, data, copy))
    return LabelsView(labels, result, painted)


def _labels_after(
    change: LabelsChange, undo: bool, labels: np.ndarray, dtype: np.dtype
) -> np.ndarray:
    """A copy of ``labels`` undone or redone by ``change``, in ``dtype`` (computed in the
    wider of both dtypes, so that no value wraps; kept wider if they do not fit)."""
    wide = np.promote_types(labels.dtype, dtype)
    if wide == labels.dtype:
        result = change.undone(labels) if undo else change.redone(labels)
    else:
        result = labels.astype(wide)
        (change.undo_in_place if undo else change.redo_in_place)(result)
    if result.dtype != np.dtype(dtype) and int(result.max(initial=0)) <= np.iinfo(dtype).max:
        result = result.astype(dtype)
    return result


def _paint_clusters(
    quantized: np.ndarray, labels: np.ndarray, table: pd.DataFrame, clusters: list[int]
) -> bool:
    """Paint ``clusters``' pixels of a quantized image (in place; channels last, or none)
    in their mean colors of ``table``, as ``Segmentation.quantized`` does; False when the
    image does not fit the labels (left as it is)."""
    if quantized.shape[: labels.ndim] != labels.shape:
        return False
    pixels = quantized if quantized.ndim > labels.ndim else quantized[..., np.newaxis]
    present = sorted(set(clusters) & set(table_labels(table)))
    colors = quantized_colors(table, present, quantized.dtype)
    if len(present) and colors.shape[-1] < pixels.shape[-1]:
        return False
    if not present:
        return True
    where = np.isin(labels, present)
    rows = np.searchsorted(np.asarray(present), labels[where])
    pixels[where] = colors[rows, : pixels.shape[-1]]
    return True


def _before_edit(layer) -> bool:
    """True for a posterior layer renamed to show the clusters before an edit."""
    return bool(layer.metadata.get(METADATA_KEY, {}).get("before_edit"))
