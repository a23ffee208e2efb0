"""Drive the "Cluster table" widget (gui/cluster_table.py): rename, recolor, select, hide,
merge, paint, split a cluster, merge similar clusters, and undo and redo them (buttons,
Ctrl+Z on the layer) across every layer of the run; a selected row keeps its color
swatch; outline style controls; Copy as Python (the script, run in a new process, makes
the edited layer again); objects (Make objects, the object counts column, saving the
objects' table; gui/objects.py) against scikit-image; Merge, Split and Merge similar
computed in a worker (the GUI thread keeps running, a result made stale by painting is
dropped); the probabilities and uncertainty layers following merges, splits and undo (or
renamed "(before merge)" when lazy). The editing itself (headless) is
in test_editing.py and test_recluster.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from napari.utils.key_bindings import coerce_keybinding
from pandas.testing import assert_frame_equal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QFileDialog
from skimage import data, measure

import napari_pixel_clusters as npc
from conftest import run_pixel_clusters
from napari_pixel_clusters.core import recluster
from napari_pixel_clusters.core.contours import region_contours
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.objects import label_objects
from napari_pixel_clusters.gui.cluster_table import (
    COLOR,
    NAME,
    OBJECTS,
    PIXELS,
    REDO_KEY,
    UNDO_KEY,
)
from napari_pixel_clusters.gui.objects import OBJECT_COLORS

PLUGIN = "napari-pixel-clusters"


def finish_edit(widget, qtbot):
    """Wait for the Merge, Split or Merge similar (or the Undo or Redo of one) computed
    in a worker to be shown."""
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)


def outline_rows(polygons, table) -> list[tuple]:
    """Outlines as sorted (label, vertex bytes, name, area): the set of polygons and rows,
    whatever their order (Undo puts the restored outlines last)."""
    return sorted(
        (
            int(row.label),
            np.ascontiguousarray(polygon, dtype=float).tobytes(),
            str(row.name),
            int(row.area),
        )
        for polygon, row in zip(polygons, table.itertuples(index=False))
    )


@pytest.fixture
def table_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(data.astronaut()[::4, ::4].copy(), name="a")
    run_pixel_clusters(viewer, qtbot, outlines=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    return viewer, widget, viewer.layers["a k-means#1 clusters"]


def test_table_lists_the_clusters(table_widget):
    _, widget, layer = table_widget
    assert widget._layer.value is layer and widget.table.rowCount() == 4
    assert widget.table.item(0, NAME).text() == "cluster 1"
    assert widget.table.item(0, PIXELS).text() == f"{layer.features['pixels'][0]:,}"


def test_renaming_a_cluster_reaches_the_features_and_status_bar(table_widget):
    _, widget, layer = table_widget
    widget.table.item(1, NAME).setText("stroma")
    assert layer.features["name"][1] == "stroma"
    widget.rename(3, "lumen")
    assert layer.features["name"][2] == "lumen" and widget.table.item(2, NAME).text() == "lumen"
    position = tuple(np.argwhere(layer.data == 2)[0])
    assert "name: stroma" in layer._get_properties(position)


def test_selecting_rows_shows_that_cluster(table_widget):
    _, widget, layer = table_widget
    widget.select_rows([2])
    assert layer.selected_label == 3 and layer.show_selected_label
    widget.select_rows([0, 2])
    assert widget.selected_labels() == [1, 3] and not layer.show_selected_label


def test_recolor_updates_labels_and_outlines(table_widget):
    viewer, widget, layer = table_widget
    widget.style_outlines("cluster")  # outlines in their cluster's color follow it
    widget.select_rows([1])
    widget.recolor("#00ff00")
    assert layer.features["color"][1] == "#00ff00"
    np.testing.assert_allclose(layer.colormap.map(2)[:3], (0, 1, 0))
    outlines = viewer.layers["a k-means#1 outlines"]
    rows = np.flatnonzero(outlines.features["label"] == 2)
    np.testing.assert_allclose(outlines.edge_color[rows[0]][:3], (0, 1, 0))


def test_hide_and_show(table_widget):
    _, widget, layer = table_widget
    widget.select_rows([0])
    widget.hide_selected()
    assert layer.colormap.map(1)[3] == 0 and layer.colormap.map(2)[3] == 1
    widget.show_all()
    assert layer.colormap.map(1)[3] == 1


def test_merge_updates_every_layer_of_the_run_and_undo_restores_them(table_widget, qtbot):
    viewer, widget, layer = table_widget
    before = layer.data.copy()
    quantized_before = viewer.layers["a k-means#1 quantized"].data.copy()
    outlines = viewer.layers["a k-means#1 outlines"]
    outlines_before = outline_rows(outlines.data, outlines.features)
    features = layer.features.set_index("index")
    widget.style_outlines("cluster")
    widget.select_rows([0, 2])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    assert set(np.unique(layer.data)) == {1, 2, 4}
    np.testing.assert_array_equal(layer.data == 1, np.isin(before, [1, 3]))
    merged = layer.features.set_index("index")
    assert merged.loc[1, "pixels"] == features.loc[1, "pixels"] + features.loc[3, "pixels"]
    expected_mean = (
        features.loc[[1, 3], "mean_R"] * features.loc[[1, 3], "pixels"]
    ).sum() / merged.loc[1, "pixels"]
    assert merged.loc[1, "mean_R"] == pytest.approx(expected_mean)
    assert widget.table.rowCount() == 3
    quantized = viewer.layers["a k-means#1 quantized"].data
    assert len(np.unique(quantized[layer.data == 1], axis=0)) == 1
    assert 3 not in set(outlines.features["label"])
    # the merged cluster's regions are traced again: one outline per merged region
    min_area = outlines.metadata["napari_pixel_clusters"]["min_area"]
    traced = region_contours(np.where(layer.data == 1, 1, 0), min_area)
    assert list(outlines.features["label"]).count(1) == len(traced)
    assert len(outlines.data) == len(outlines.features)
    np.testing.assert_allclose(
        outlines.edge_color[list(outlines.features["label"]).index(1)],
        [*to_rgb(merged.loc[1, "color"]), 1.0],
    )
    widget._undo.native.click()  # Undo: the labels, table, quantized image and outlines
    finish_edit(widget, qtbot)
    np.testing.assert_array_equal(layer.data, before)
    assert widget.table.rowCount() == 4
    assert list(layer.features["index"]) == [1, 2, 3, 4]
    assert list(layer.features["pixels"]) == list(np.bincount(before.ravel())[1:5])
    assert layer.features["color"][2] == features.loc[3, "color"]
    assert layer.features["mean_R"][0] == pytest.approx(features.loc[1, "mean_R"])
    np.testing.assert_array_equal(viewer.layers["a k-means#1 quantized"].data, quantized_before)
    assert outline_rows(outlines.data, outlines.features) == outlines_before
    assert widget._status.value.startswith("undone")
    widget._redo.native.click()  # and Redo merges them again, everywhere
    finish_edit(widget, qtbot)
    assert widget.table.rowCount() == 3
    assert list(layer.features["index"]) == [1, 2, 4]
    assert layer.features["mean_R"][0] == pytest.approx(expected_mean)
    assert (
        len(np.unique(viewer.layers["a k-means#1 quantized"].data[layer.data == 1], axis=0)) == 1
    )
    assert 3 not in set(outlines.features["label"])


def test_painting_refreshes_the_counts(table_widget, qtbot):
    _, widget, layer = table_widget
    total = int(layer.features["pixels"].sum())
    layer.selected_label = 2
    layer.brush_size = 9
    layer.paint((20, 20), 2)  # the table listens to the layer's paint events
    qtbot.waitUntil(
        lambda: list(layer.features["pixels"]) == list(np.bincount(layer.data.ravel())[1:5]),
        timeout=5_000,
    )
    counts = np.bincount(layer.data.ravel())
    assert list(layer.features["pixels"]) == list(counts[1:5])
    assert int(layer.features["pixels"].sum()) == total
    assert widget.table.item(1, PIXELS).text() == f"{counts[2]:,}"
    assert to_rgb(layer.features["color"][0])  # colors untouched


def run_state(viewer, layer):
    """Everything an edit may change: labels, table, quantized image, outlines."""
    outlines = viewer.layers["a k-means#1 outlines"]
    return {
        "labels": layer.data.copy(),
        "table": layer.features.copy(),
        "quantized": viewer.layers["a k-means#1 quantized"].data.copy(),
        "outlines": [p.copy() for p in outlines.data],
        "outline table": outlines.features.copy(),
    }


def assert_same_state(now, expected):
    np.testing.assert_array_equal(now["labels"], expected["labels"])
    assert_frame_equal(now["table"], expected["table"])
    np.testing.assert_array_equal(now["quantized"], expected["quantized"])
    assert len(now["outlines"]) == len(now["outline table"]) == len(expected["outlines"])
    assert outline_rows(now["outlines"], now["outline table"]) == outline_rows(
        expected["outlines"], expected["outline table"]
    )
    assert list(now["outline table"].columns) == list(expected["outline table"].columns)


def test_merge_undo_redo_with_the_buttons_as_a_person_does(table_widget, qtbot):
    viewer, widget, layer = table_widget
    assert not widget._undo.enabled and not widget._redo.enabled  # nothing to undo yet
    before = run_state(viewer, layer)
    widget.select_rows([1, 3])  # ctrl-click two rows, press Merge
    widget._merge.native.click()
    finish_edit(widget, qtbot)
    merged = run_state(viewer, layer)
    assert set(np.unique(merged["labels"])) == {1, 2, 3}
    assert list(merged["table"]["index"]) == [1, 2, 3]
    assert widget._undo.enabled and "merge of 4 into 2" in widget._undo.tooltip
    # the merged cluster's mean is that of its pixels in the image, exactly
    image = viewer.layers["a"].data
    region = merged["labels"] == 2
    expected = image[region].astype(np.int64).sum(axis=0) / region.sum()
    row = merged["table"].set_index("index").loc[2]
    np.testing.assert_array_equal(row[["mean_R", "mean_G", "mean_B"]].to_numpy(float), expected)
    assert len(np.unique(merged["quantized"][region], axis=0)) == 1
    outlines = merged["outline table"]
    min_area = viewer.layers["a k-means#1 outlines"].metadata["napari_pixel_clusters"]["min_area"]
    assert list(outlines["label"]).count(2) == len(
        region_contours(np.where(region, 2, 0), min_area)
    )
    assert 4 not in set(outlines["label"])

    widget._undo.native.click()
    assert widget.busy and not widget._redo.enabled  # computed in a worker
    finish_edit(widget, qtbot)
    assert_same_state(run_state(viewer, layer), before)
    assert widget.table.rowCount() == 4 and widget._status.value.startswith("undone: merge")
    assert widget._redo.enabled and not widget._undo.enabled

    widget._redo.native.click()
    finish_edit(widget, qtbot)
    assert_same_state(run_state(viewer, layer), merged)
    assert widget.table.rowCount() == 3 and widget._status.value.startswith("redone: merge")


def test_rename_and_recolor_are_undone_and_redone(table_widget):
    viewer, widget, layer = table_widget
    before = run_state(viewer, layer)
    widget.table.item(0, NAME).setText("skin")  # typed in the table
    widget.select_rows([2])
    widget.recolor("#00ff00")
    edited = run_state(viewer, layer)
    assert layer.features["name"][0] == "skin" and layer.features["color"][2] == "#00ff00"
    widget.undo()  # the recolor
    assert layer.features["color"][2] == before["table"]["color"][2]
    np.testing.assert_allclose(layer.colormap.map(3)[:3], to_rgb(before["table"]["color"][2]))
    assert layer.features["name"][0] == "skin" and widget.table.item(0, NAME).text() == "skin"
    widget.undo()  # the rename
    assert_same_state(run_state(viewer, layer), before)
    assert widget.table.item(0, NAME).text() == "cluster 1"
    widget.redo()
    widget.redo()
    assert_same_state(run_state(viewer, layer), edited)


def test_ctrl_z_on_the_layer_undoes_painting_and_merges_in_order(table_widget, qtbot):
    viewer, widget, layer = table_widget
    keys = viewer.window._qt_viewer._key_map_handler  # the canvas's key presses go here
    viewer.layers.selection.active = layer
    before = run_state(viewer, layer)
    layer.selected_label = 2
    layer.brush_size = 9
    layer.paint((20, 20), 2)  # a stroke with napari's brush: napari records it
    qtbot.waitUntil(lambda: widget.history.can_undo, timeout=5_000)
    painted = run_state(viewer, layer)
    assert list(painted["table"]["pixels"]) == list(np.bincount(painted["labels"].ravel())[1:])
    widget.select_rows([0, 2])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    merged = run_state(viewer, layer)
    keys.press_key(UNDO_KEY)  # Ctrl+Z: the merge first...
    finish_edit(widget, qtbot)
    assert_same_state(run_state(viewer, layer), painted)
    keys.press_key(UNDO_KEY)  # ...then the stroke, with napari's own undo
    assert_same_state(run_state(viewer, layer), before)
    keys.press_key(REDO_KEY)
    keys.press_key(REDO_KEY)
    finish_edit(widget, qtbot)
    assert_same_state(run_state(viewer, layer), merged)
    # the widget lets go of the layer (here: it is removed): the keys are napari's again
    assert coerce_keybinding(UNDO_KEY) in layer.keymap
    viewer.layers.remove(layer)
    assert widget._layer.value is None
    assert coerce_keybinding(UNDO_KEY) not in layer.keymap
    assert coerce_keybinding(REDO_KEY) not in layer.keymap


def test_closing_the_widget_gives_the_layer_its_undo_keys_back(table_widget, qtbot):
    viewer, widget, layer = table_widget
    assert coerce_keybinding(UNDO_KEY) in layer.keymap
    viewer.window.remove_dock_widget(widget.native)  # undocked: it could come back
    assert coerce_keybinding(UNDO_KEY) in layer.keymap
    widget.native.deleteLater()  # closed for good
    qtbot.waitUntil(lambda: coerce_keybinding(UNDO_KEY) not in layer.keymap, timeout=5_000)
    assert coerce_keybinding(REDO_KEY) not in layer.keymap
    before = layer.data.copy()
    layer.paint((20, 20), 3)
    viewer.layers.selection.active = layer
    viewer.window._qt_viewer._key_map_handler.press_key(UNDO_KEY)  # napari's own undo
    np.testing.assert_array_equal(layer.data, before)


def test_undo_traces_outlines_again_where_someone_edited_them(table_widget, qtbot):
    viewer, widget, layer = table_widget
    outlines = viewer.layers["a k-means#1 outlines"]
    before = run_state(viewer, layer)
    widget.select_rows([0, 2])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    outlines.selected_data = {0}  # a person deletes an outline polygon
    outlines.remove_selected()
    widget.undo()
    finish_edit(widget, qtbot)
    np.testing.assert_array_equal(layer.data, before["labels"])
    assert len(outlines.data) == len(outlines.features)
    # the merged clusters' outlines are those of the labels, traced again
    min_area = outlines.metadata["napari_pixel_clusters"]["min_area"]
    for label in (1, 3):
        traced = region_contours(np.where(layer.data == label, label, 0), min_area)
        assert list(outlines.features["label"]).count(label) == len(traced)


def traced_outlines(labels: np.ndarray, min_area: int) -> list[tuple[int, bytes]]:
    """(label, vertex bytes) of every outline tracing ``labels`` from scratch gives."""
    return sorted(
        (c.label, np.ascontiguousarray(c.vertices, dtype=float).tobytes())
        for c in region_contours(labels, min_area)
    )


def assert_outlines_follow_the_labels(outlines, layer):
    """The outlines layer holds exactly the polygons tracing the labels gives, one row
    each, named and colored (the "cluster" style) after their cluster."""
    min_area = outlines.metadata["napari_pixel_clusters"]["min_area"]
    rows = outline_rows(outlines.data, outlines.features)
    assert [(label, polygon) for label, polygon, _, _ in rows] == traced_outlines(
        layer.data, min_area
    )
    clusters = layer.features.set_index("index")
    labels = np.asarray(outlines.features["label"], dtype=int)
    assert len(outlines.data) == len(labels) == len(outlines.edge_color)
    assert list(outlines.features["name"]) == list(clusters.loc[labels, "name"])
    np.testing.assert_allclose(  # RGB: the unselected clusters' outlines are faded
        np.asarray(outlines.edge_color)[:, :3],
        [to_rgb(color) for color in clusters.loc[labels, "color"]],
    )


def test_outlines_after_merge_split_undo_and_redo_are_those_of_the_labels(table_widget, qtbot):
    viewer, widget, layer = table_widget
    outlines = viewer.layers["a k-means#1 outlines"]
    widget.style_outlines("cluster")
    assert_outlines_follow_the_labels(outlines, layer)
    states = [outline_rows(outlines.data, outlines.features)]
    widget.select_rows([0, 2])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    assert_outlines_follow_the_labels(outlines, layer)
    states.append(outline_rows(outlines.data, outlines.features))
    widget.select_rows([1])
    widget.split_selected(3)
    finish_edit(widget, qtbot)
    assert_outlines_follow_the_labels(outlines, layer)
    states.append(outline_rows(outlines.data, outlines.features))
    assert states[0] != states[1] != states[2]
    for expected in (states[1], states[0]):  # undo twice: the same set as before
        widget.undo()
        finish_edit(widget, qtbot)
        assert_outlines_follow_the_labels(outlines, layer)
        assert outline_rows(outlines.data, outlines.features) == expected
    for expected in (states[1], states[2]):  # and redo twice
        widget.redo()
        finish_edit(widget, qtbot)
        assert_outlines_follow_the_labels(outlines, layer)
        assert outline_rows(outlines.data, outlines.features) == expected


@pytest.mark.parametrize("touched", [False, True])
def test_a_polygon_drawn_by_hand_before_undo(table_widget, qtbot, touched):
    """A polygon drawn on the outlines layer after a merge: with the label of a cluster
    the merge did not touch it stays through Undo and Redo; with the merged cluster's
    label Undo traces that cluster's outlines again (the drawn one goes)."""
    viewer, widget, layer = table_widget
    outlines = viewer.layers["a k-means#1 outlines"]
    widget.style_outlines("cluster")
    before = layer.data.copy()
    widget.select_rows([0, 2])  # 3 into 1
    widget.merge_selected()
    finish_edit(widget, qtbot)
    drawn = np.array([[2.0, 2.0], [2.0, 12.0], [12.0, 12.0], [12.0, 2.0]])
    outlines.add_polygons([drawn])
    rows = outlines.features.copy()
    rows.loc[len(rows) - 1, ["label", "name", "area"]] = [1 if touched else 2, "drawn", 100]
    outlines.features = rows
    widget.undo()
    finish_edit(widget, qtbot)
    np.testing.assert_array_equal(layer.data, before)
    assert len(outlines.data) == len(outlines.features)
    min_area = outlines.metadata["napari_pixel_clusters"]["min_area"]
    now = outline_rows(outlines.data, outlines.features)
    hand = (2, drawn.tobytes(), "drawn", 100)
    if touched:  # clusters 1 and 3 traced again: exactly the labels' outlines
        assert_outlines_follow_the_labels(outlines, layer)
    else:  # the drawn outline stays, the others are those of the labels
        assert hand in now
        now.remove(hand)
        assert [(label, polygon) for label, polygon, _, _ in now] == traced_outlines(
            layer.data, min_area
        )
    widget.redo()
    finish_edit(widget, qtbot)
    assert (hand in outline_rows(outlines.data, outlines.features)) is not touched
    merged = outline_rows(outlines.data, outlines.features)
    assert [(label, p) for label, p, name, _ in merged if name != "drawn"] == traced_outlines(
        layer.data, min_area
    )


def test_selected_row_keeps_its_swatch_visible(review, qtbot):
    _viewer, table, _colors, layer, _image = review
    table.select_rows([1])
    qtbot.wait(50)
    rect = table.table.visualItemRect(table.table.item(1, COLOR))
    picture = table.table.viewport().grab().toImage()
    center = QColor(picture.pixel(rect.center()))
    expected = [round(255 * c) for c in to_rgb(layer.features["color"][1])]
    assert max(abs(a - b) for a, b in zip(center.getRgb()[:3], expected)) <= 2
    # the columns fit: nothing is cut off at the table's width
    header = table.table.horizontalHeader()
    assert header.length() <= table.table.viewport().width() + 1


def test_outline_style_controls_recolor_the_outlines_of_the_run(review):
    viewer, table, _, layer, _ = review
    outlines = next(layer for layer in viewer.layers if layer.name.endswith("outlines"))
    assert table._outline_controls.visible
    table._outline_style.value = "cluster"
    colors = {int(r["index"]): to_rgb(r["color"]) for _, r in layer.features.iterrows()}
    expected = [colors[label] for label in outlines.features["label"]]
    np.testing.assert_allclose(np.asarray(outlines.edge_color)[:, :3], expected)
    table._outline_style.value = "contrast"
    edges = np.asarray(outlines.edge_color)[:, :3]
    assert len(np.unique(edges, axis=0)) == 1  # one color, far from the clusters' colors
    assert min(np.abs(edges[0] - c).sum() for c in colors.values()) > 0.5
    table._outline_width.value = 4.5
    np.testing.assert_allclose(outlines.edge_width, 4.5)
    assert outlines.metadata["napari_pixel_clusters"]["outline_mode"] == "contrast"


# ------------------------------------------------------------------------------ objects
SCALE = (0.5, 2.0)  # anisotropic pixels: areas and centroids in physical units


@pytest.fixture
def scaled_table(make_napari_viewer, qtbot):
    """A k-means result of an astronaut with non-unit scale and a translation, and the
    Cluster table on it once its object counts are in."""
    viewer = make_napari_viewer()
    image = data.astronaut()[::4, ::4].copy()
    viewer.add_image(image, name="a", scale=SCALE, translate=(3.0, -4.0))
    run_pixel_clusters(viewer, qtbot, quantized=False)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    qtbot.waitUntil(lambda: widget.object_counts() is not None, timeout=20_000)
    return viewer, widget, viewer.layers["a k-means#1 clusters"], image


def make_objects(widget, qtbot):
    """Press Make objects and wait for the worker; the layer it added."""
    before = len(widget._viewer.layers)
    widget._make_objects.native.click()
    qtbot.waitUntil(lambda: widget._objects_worker is None, timeout=20_000)
    assert len(widget._viewer.layers) == before + 1
    return widget._viewer.layers[-1]


def skimage_counts(labels, connectivity):
    return {
        int(c): int(measure.label(labels == c, connectivity=connectivity).max())
        for c in np.unique(labels[labels > 0])
    }


def test_make_objects_of_the_selected_cluster_matches_skimage(scaled_table, qtbot):
    _, widget, layer, image = scaled_table
    labels_before, table_before = layer.data.copy(), layer.features.copy()
    widget.rename(2, "skin")
    widget.select_rows([1])
    assert "the selected cluster (skin)" in widget._make_objects.tooltip
    objects = make_objects(widget, qtbot)
    assert objects.name == "a k-means#1 clusters objects"
    expected = measure.label(np.where(layer.data == 2, 2, 0), connectivity=2)
    np.testing.assert_array_equal(objects.data, expected)
    assert objects.data.dtype == (np.uint8 if expected.max() <= 255 else np.uint16)
    props = measure.regionprops_table(
        expected, intensity_image=image, properties=["label", "area", "centroid", "intensity_mean"]
    )
    features = objects.features
    assert len(features) == expected.max() > 5
    np.testing.assert_array_equal(features["index"], props["label"])  # napari's label column
    np.testing.assert_allclose(features["area"], props["area"] * SCALE[0] * SCALE[1])
    np.testing.assert_allclose(features["centroid_y"], props["centroid-0"] * SCALE[0])
    np.testing.assert_allclose(features["centroid_x"], props["centroid-1"] * SCALE[1])
    for c, channel in enumerate("RGB"):
        np.testing.assert_allclose(features[f"mean_{channel}"], props[f"intensity_mean-{c}"])
    assert set(features["cluster"]) == {2} and set(features["cluster_name"]) == {"skin"}
    assert features["perimeter"].isna().all()  # anisotropic pixels
    # placed over the clusters, made from them, in napari's own random colors
    np.testing.assert_allclose(objects.scale, layer.scale)
    np.testing.assert_allclose(objects.translate, layer.translate)
    np.testing.assert_allclose(objects.affine.affine_matrix, layer.affine.affine_matrix)
    tag = objects.metadata["napari_pixel_clusters"]
    assert tag["output"] == "objects" and tag["clusters_layer"] == layer.name
    assert (tag["clusters"], tag["connectivity"], tag["count"]) == ([2], "full", len(features))
    shown = objects.colormap.map(np.arange(1, 6))
    assert len(np.unique(shown[:, :3], axis=0)) == 5 and (shown[:, 3] == 1).all()
    np.testing.assert_allclose(shown[0, :3], to_rgb(OBJECT_COLORS[0]), atol=1e-6)  # not brown
    assert widget._status.value == f"{len(features)} objects from cluster skin"
    # the input layers are untouched (the name is the one edit made)
    np.testing.assert_array_equal(layer.data, labels_before)
    assert_frame_equal(layer.features.drop(columns="name"), table_before.drop(columns="name"))
    assert widget._layer.value is layer  # the table still follows the clusters


def test_without_a_selection_every_cluster_makes_objects_face_connected(scaled_table, qtbot):
    _, widget, layer, _ = scaled_table
    assert "all clusters (none is selected)" in widget._make_objects.tooltip
    widget._connectivity.value = "face"
    objects = make_objects(widget, qtbot)
    np.testing.assert_array_equal(objects.data, measure.label(layer.data, connectivity=1))
    counts = objects.features["cluster"].value_counts().to_dict()
    assert counts == skimage_counts(layer.data, 1)
    assert objects.metadata["napari_pixel_clusters"]["connectivity"] == "face"


def test_object_counts_follow_merges_undo_and_painting(scaled_table, qtbot):
    _, widget, layer, _ = scaled_table
    assert widget.object_counts() == skimage_counts(layer.data, 2)
    shown = [widget.table.item(row, OBJECTS).text() for row in range(4)]
    assert shown == [f"{n:,}" for n in skimage_counts(layer.data, 2).values()]
    widget.select_rows([0, 2])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    assert widget.object_counts() is None  # being counted again
    assert widget.table.item(0, OBJECTS).text() == "\N{HORIZONTAL ELLIPSIS}"
    qtbot.waitUntil(lambda: widget.object_counts() is not None, timeout=20_000)
    assert widget.object_counts() == skimage_counts(layer.data, 2) and 3 not in set(
        widget.object_counts()
    )
    widget._undo.native.click()
    finish_edit(widget, qtbot)
    qtbot.waitUntil(lambda: widget.object_counts() is not None, timeout=20_000)
    assert widget.object_counts() == skimage_counts(layer.data, 2)
    widget._connectivity.value = "face"
    qtbot.waitUntil(lambda: widget.object_counts() is not None, timeout=20_000)
    assert widget.object_counts() == skimage_counts(layer.data, 1)
    layer.selected_label = 4
    layer.brush_size = 3
    layer.paint((5, 60), 4)  # a new small region of cluster 4 (or grown into one)
    qtbot.waitUntil(
        lambda: widget.object_counts() == skimage_counts(layer.data, 1), timeout=20_000
    )
    assert widget.table.item(3, OBJECTS).text() == f"{skimage_counts(layer.data, 1)[4]:,}"


def test_objects_table_saves_as_csv_and_never_overwrites_silently(
    scaled_table, qtbot, tmp_path, error_notifications, monkeypatch
):
    import pandas as pd

    _, widget, layer, image = scaled_table
    widget.select_rows([2])
    objects = make_objects(widget, qtbot)
    expected = label_objects(
        layer.data, [3], layer.features, scale=SCALE, image=read_image(image)
    ).table
    path = tmp_path / "objects.csv"
    assert widget.save_objects(str(path)) == str(path)
    assert_frame_equal(pd.read_csv(path), expected, check_dtype=False)
    assert json.loads(path.with_suffix(".json").read_text())["layer"] == objects.name
    # an existing file: refused, one notification, left as it was
    path.write_text("mine")
    assert widget.save_objects(str(path)) is None
    assert path.read_text() == "mine" and "exists already" in error_notifications[-1]
    # the button's dialog asks before replacing a file (Qt's save dialog does by default)
    dialog = widget._csv_dialog(objects.name)
    assert dialog.acceptMode() == QFileDialog.AcceptMode.AcceptSave
    assert not dialog.testOption(QFileDialog.Option.DontConfirmOverwrite)
    assert dialog.defaultSuffix() == "csv"

    class Confirmed:  # the user picked the existing file and confirmed replacing it
        def exec(self):
            return True

        def selectedFiles(self):
            return [str(path)]

    monkeypatch.setattr(type(widget), "_csv_dialog", lambda self, name: Confirmed())
    widget._save_objects.native.click()
    assert_frame_equal(pd.read_csv(path), expected, check_dtype=False)


def test_a_stack_gives_volumes_and_a_plane_gives_areas(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.zeros((4, 40, 40), np.uint8)
    stack[1:3, 5:15, 5:15] = 200
    stack[0:4, 25:35, 20:30] = 200
    stack[2, 0:3, 30:40] = 200
    stack += np.random.default_rng(0).integers(0, 20, stack.shape, dtype=np.uint8)
    viewer.add_image(stack, name="s", scale=(3.0, 0.5, 0.5))
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    pixel_clusters._stack_mode.value = "whole stack"
    pixel_clusters._n_clusters.value = 2
    pixel_clusters._run_button.native.click()
    qtbot.waitUntil(lambda: pixel_clusters._worker is None, timeout=60_000)
    layer = viewer.layers["s k-means#1 clusters"]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    bright = int(layer.features.set_index("index")["mean_intensity"].idxmax())
    widget.select_rows([list(layer.features["index"]).index(bright)])
    objects = make_objects(widget, qtbot)
    expected = measure.label(layer.data == bright, connectivity=3)
    np.testing.assert_array_equal(objects.data, expected)
    props = measure.regionprops_table(expected, properties=["label", "area", "centroid"])
    features = objects.features
    assert "volume" in features and "area" not in features and "perimeter" not in features
    assert len(features) == 3
    np.testing.assert_allclose(features["volume"], props["area"] * 3.0 * 0.5 * 0.5)
    np.testing.assert_allclose(features["centroid_z"], props["centroid-0"] * 3.0)
    np.testing.assert_allclose(features["centroid_x"], props["centroid-2"] * 0.5)
    qtbot.waitUntil(lambda: widget.object_counts() is not None, timeout=20_000)
    assert widget.object_counts()[bright] == 3
    # one plane of the stack: 2-D objects (areas, perimeters) on that plane
    viewer.dims.set_point(0, 2 * 3.0)
    pixel_clusters._stack_mode.value = "current plane"
    pixel_clusters._run_button.native.click()
    qtbot.waitUntil(lambda: pixel_clusters._worker is None, timeout=60_000)
    plane = viewer.layers["s (plane 2) k-means#2 clusters"]
    widget._layer.value = plane
    bright = int(plane.features.set_index("index")["mean_intensity"].idxmax())
    widget.select_rows([list(plane.features["index"]).index(bright)])
    objects = make_objects(widget, qtbot)
    assert objects.data.shape == plane.data.shape == (1, 40, 40)
    expected = measure.label(plane.data[0] == bright, connectivity=2)
    np.testing.assert_array_equal(objects.data[0], expected)
    assert "area" in objects.features and "perimeter" in objects.features
    np.testing.assert_allclose(objects.translate, plane.translate)
    props = measure.regionprops_table(
        expected, intensity_image=stack[2], properties=["area", "intensity_mean"]
    )
    np.testing.assert_allclose(objects.features["area"], props["area"] * 0.25)
    np.testing.assert_allclose(objects.features["mean_intensity"], props["intensity_mean"])


def test_a_lazy_result_is_not_counted_and_makes_no_objects(
    make_napari_viewer, error_notifications
):
    import dask.array as da

    from napari_pixel_clusters.gui.layers import METADATA_KEY

    viewer = make_napari_viewer()
    seg = npc.segment(
        da.from_array(data.coins()[::4, ::4], chunks=32), "kmeans", 3, random_state=0
    )
    viewer.add_labels(
        seg.labels,
        name="lazy clusters",
        features=seg.table.rename(columns={"label": "index"}).assign(name=["a", "b", "c"]),
        metadata={METADATA_KEY: {"output": "clusters", "source": "c", "run": "k-means#1"}},
    )
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    assert widget.table.item(0, OBJECTS).text() == ""
    assert widget.make_objects() is None
    assert "lazy result" in error_notifications[-1] and len(viewer.layers) == 1


# ------------------------------------------------------------------------------ re-clustering
def test_split_a_selected_cluster_into_three_then_undo_and_redo(table_widget, qtbot):
    viewer, widget, layer = table_widget
    image = viewer.layers["a"].data
    before = run_state(viewer, layer)
    params = layer.metadata["napari_pixel_clusters"]["params"]
    expected, expected_table = recluster.split_cluster(
        before["labels"], before["table"], image, 2, 3, params
    )
    widget.select_rows([1])  # cluster 2
    widget._split_parts.value = 3
    widget._split.native.click()
    finish_edit(widget, qtbot)
    split = run_state(viewer, layer)
    assert widget.table.rowCount() == 6 and list(layer.features["index"]) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(split["labels"], expected)
    assert_frame_equal(split["table"], expected_table)
    np.testing.assert_array_equal(
        split["labels"][before["labels"] != 2], before["labels"][before["labels"] != 2]
    )
    # the quantized image paints each part in its mean color; outlines traced for each
    for label in (2, 5, 6):
        region = split["labels"] == label
        assert len(np.unique(split["quantized"][region], axis=0)) == 1
        min_area = viewer.layers["a k-means#1 outlines"].metadata["napari_pixel_clusters"][
            "min_area"
        ]
        traced = region_contours(np.where(region, label, 0), min_area)
        assert list(split["outline table"]["label"]).count(label) == len(traced)
    widget.select_rows([])  # every cluster drawn: the new ones in their mean colors
    np.testing.assert_allclose(
        layer.colormap.map(5)[:3], to_rgb(layer.features.set_index("index").loc[5, "color"])
    )
    assert "split of 2 into 3" in widget._undo.tooltip
    widget._undo.native.click()
    finish_edit(widget, qtbot)
    assert_same_state(run_state(viewer, layer), before)
    assert widget.table.rowCount() == 4
    widget._redo.native.click()
    finish_edit(widget, qtbot)
    assert_same_state(run_state(viewer, layer), split)
    assert widget.table.rowCount() == 6


def test_merge_similar_down_to_k_and_undo(table_widget, qtbot):
    viewer, widget, layer = table_widget
    before = run_state(viewer, layer)
    params = layer.metadata["napari_pixel_clusters"]["params"]
    expected, expected_table = recluster.merge_similar(
        before["labels"], before["table"], viewer.layers["a"].data, 2, params
    )
    assert widget._merge_down_to.max == 3  # fewer than the 4 clusters
    widget._merge_down_to.value = 2
    widget._merge_similar.native.click()
    finish_edit(widget, qtbot)
    assert widget.table.rowCount() == 2
    np.testing.assert_array_equal(layer.data, expected)
    assert_frame_equal(layer.features, expected_table)
    assert int(layer.features["pixels"].sum()) == layer.data.size
    assert widget._merge_down_to.max == 1
    widget._undo.native.click()
    finish_edit(widget, qtbot)
    assert_same_state(run_state(viewer, layer), before)


def test_split_needs_one_selected_cluster_and_the_image(table_widget, error_notifications):
    viewer, widget, layer = table_widget
    widget.select_rows([0, 1])
    widget.split_selected()
    assert error_notifications[-1] == "Select the one cluster to split in the table."
    widget.select_rows([0])
    viewer.layers["a"].name = "renamed"
    before = layer.data.copy()
    widget.split_selected(2)
    assert "open it as an image layer of that name" in error_notifications[-1]
    widget.merge_similar(2)
    assert error_notifications[-1].startswith("Merge similar clusters the pixels of the image")
    np.testing.assert_array_equal(layer.data, before)
    assert not widget.history.can_undo


def test_split_of_a_plane_of_a_stack(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.stack([data.coins()[::6, ::6]] * 3)
    stack[2] = stack[2][::-1]
    viewer.add_image(stack, name="s")
    viewer.dims.set_point(0, 2)
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    pixel_clusters._n_clusters.value = 2
    pixel_clusters._run_button.native.click()
    qtbot.waitUntil(lambda: pixel_clusters._worker is None, timeout=60_000)
    layer = viewer.layers["s (plane 2) k-means#1 clusters"]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    widget._layer.value = layer
    params = layer.metadata["napari_pixel_clusters"]["params"]
    expected, _ = recluster.split_cluster(layer.data, layer.features, stack[2][None], 1, 2, params)
    widget.select_rows([0])
    widget.split_selected(2)
    finish_edit(widget, qtbot)
    assert layer.data.shape == (1, *stack.shape[1:])
    np.testing.assert_array_equal(layer.data, expected)
    widget.undo()
    finish_edit(widget, qtbot)
    assert set(np.unique(layer.data)) == {1, 2}


# ------------------------------------------------------------------------------ Copy as Python
def test_copy_as_python_reproduces_the_edited_layer_in_a_new_process(
    make_napari_viewer, qtbot, tmp_path
):
    import subprocess
    import sys

    import tifffile
    from qtpy.QtWidgets import QApplication, QPlainTextEdit

    image = np.ascontiguousarray(data.astronaut()[::4, ::4])
    path = tmp_path / "astronaut.tif"
    tifffile.imwrite(path, image)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari")
    assert viewer.layers["astronaut"].source.path == str(path)
    run_pixel_clusters(viewer, qtbot, color_space="lab")
    layer = viewer.layers["astronaut k-means#1 clusters"]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    widget.select_rows([0, 3])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    widget.select_rows([1])
    widget.split_selected(3)
    finish_edit(widget, qtbot)
    widget.rename(3, "sky")
    widget.select_rows([0])
    widget.recolor("#00ff00")
    widget.undo()  # the recolor is not in the script any more
    tag = layer.metadata["napari_pixel_clusters"]
    assert [edit["edit"] for edit in tag["edits"]] == ["merge", "split", "rename"]
    script = widget._copy_python.native.click() or QApplication.clipboard().text()
    assert script == widget.python_code()
    assert f"tifffile.imread({str(path)!r})" in script and "recolor" not in script
    shown = widget._python_dialog.findChild(QPlainTextEdit)
    assert shown.toPlainText() == script and shown.isReadOnly()
    out = tmp_path / "labels.npy"
    program = script + f"import numpy\nnumpy.save({str(out)!r}, labels)\n"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_array_equal(np.load(out), layer.data)
    # painting cannot be replayed: the script says so
    layer.selected_label = 2
    layer.paint((10, 10), 2)
    qtbot.waitUntil(lambda: tag["edits"][-1]["edit"] == "painting", timeout=5_000)
    assert "Then painting in napari, which code cannot replay" in widget.python_code()


def test_copy_as_python_of_an_image_from_memory_asks_for_it(table_widget):
    _, widget, layer = table_widget
    script = widget.copy_python()
    assert "`image`: the image the result was made from (the layer 'a')" in script
    assert "define `image` before this line" in script
    namespace = {"image": np.ascontiguousarray(data.astronaut()[::4, ::4])}
    exec(script, namespace)
    np.testing.assert_array_equal(namespace["labels"], layer.data)
    # painted while no table listened: the script says it cannot replay that
    layer.data[:3, :3] = 1
    widget._connect_layer()  # (a new table: nothing recorded)
    assert "which code cannot replay" in widget.python_code()


# ------------------------------------------------------------------------------ in a worker
def test_split_runs_in_a_worker_and_the_gui_thread_keeps_beating(
    make_napari_viewer, qtbot, monkeypatch
):
    """A split of a ~1024² photo: split_selected returns before the result is shown, a
    QTimer on the GUI thread keeps beating meanwhile, and the result is the core's. The
    split waits (up to 10 s) for three beats, so a fast machine cannot finish it before
    the timer had a chance to fire; on the GUI thread it would wait in vain."""
    import threading
    import time

    from qtpy.QtCore import QTimer

    from napari_pixel_clusters.gui import cluster_table

    beats: list[float] = []
    three_beats = threading.Event()
    planned_on = []
    plan_split_parts = cluster_table.plan_split_parts

    def plan_after_three_beats(*args, **kwargs):
        planned_on.append(threading.current_thread() is threading.main_thread())
        three_beats.wait(timeout=10)
        return plan_split_parts(*args, **kwargs)

    def beat():
        beats.append(time.perf_counter())
        if len(beats) >= 3:
            three_beats.set()

    monkeypatch.setattr(cluster_table, "plan_split_parts", plan_after_three_beats)

    viewer = make_napari_viewer()
    photo = np.repeat(np.repeat(data.astronaut()[::2, ::2], 4, axis=0), 4, axis=1)  # 1024²
    viewer.add_image(photo, name="big")
    run_pixel_clusters(viewer, qtbot, outlines=False, quantized=False)
    layer = viewer.layers["big k-means#1 clusters"]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    params = layer.metadata["napari_pixel_clusters"]["params"]
    before = layer.data.copy()
    expected, expected_table = recluster.split_cluster(before, layer.features, photo, 1, 3, params)
    timer = QTimer()
    timer.timeout.connect(beat)
    widget.select_rows([0])
    timer.start(10)
    worker = widget.split_selected(3)
    assert worker is not None and widget.busy  # returned; the split is still computed
    assert not widget._split.enabled and not widget._merge.enabled
    np.testing.assert_array_equal(layer.data, before)
    finish_edit(widget, qtbot)
    timer.stop()
    assert planned_on == [False]  # the split was computed off the GUI thread...
    assert len(beats) >= 3  # ...which kept running meanwhile
    np.testing.assert_array_equal(layer.data, expected)
    assert_frame_equal(layer.features, expected_table)
    assert widget._split.enabled
    widget.undo()
    finish_edit(widget, qtbot)
    np.testing.assert_array_equal(layer.data, before)


def test_a_split_is_dropped_when_the_labels_change_while_it_runs(table_widget, qtbot):
    _, widget, layer = table_widget
    widget.select_rows([1])
    widget.split_selected(2)
    assert widget.busy
    layer.selected_label = 1
    layer.paint((5, 5), 1)  # painted while the split is computed
    finish_edit(widget, qtbot)
    assert widget.table.rowCount() == 4 and set(np.unique(layer.data)) == {1, 2, 3, 4}
    assert widget._status.value.startswith("dropped: split of 2")
    assert [edit.description for edit in widget.history._undo] == ["painting"]


# ------------------------------------------------------------------------------ probabilities
@pytest.fixture
def gmm_table(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(data.astronaut()[::8, ::8].copy(), name="g")
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    pixel_clusters._method.value = "gmm"
    pixel_clusters._uncertainty_kind.value = "entropy"
    run_pixel_clusters(viewer, qtbot, n_clusters=3, probabilities=True, uncertainty=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    layers = [viewer.layers[f"g Gaussian mixture#1 {o}"] for o in ("clusters", "probabilities")]
    return viewer, widget, *layers, viewer.layers["g Gaussian mixture#1 uncertainty"]


def test_probabilities_follow_merge_and_split_and_undo(gmm_table, qtbot):
    from napari_pixel_clusters.core.probabilities import (
        merge_posteriors,
        split_posteriors,
        uncertainty_of_posteriors,
    )

    viewer, widget, layer, probabilities, uncertainty = gmm_table
    tag = probabilities.metadata["napari_pixel_clusters"]
    p0, u0 = probabilities.data.copy(), uncertainty.data.copy()
    assert tag["labels"] == [1, 2, 3] and p0.shape == (3, 64, 64)
    widget.select_rows([0, 2])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    merged, columns = merge_posteriors(p0, [1, 2, 3], [1, 3], axis=0)
    np.testing.assert_array_equal(probabilities.data, merged)
    assert tag["labels"] == columns == [1, 2]
    np.testing.assert_allclose(probabilities.data.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(
        uncertainty.data, uncertainty_of_posteriors(merged, "entropy", axis=0)
    )
    # split 2 into 2: p_2 * q_j with q the split GMM's posteriors
    labels_merged = layer.data.copy()
    params = layer.metadata["napari_pixel_clusters"]["params"]
    image = viewer.layers["g"].data
    plan = recluster.plan_split_parts(labels_merged, layer.features, image, 2, 2, params)
    q = np.moveaxis(recluster.part_posteriors(plan, image), -1, 0)
    widget.select_rows([1])
    widget.split_selected(2)
    finish_edit(widget, qtbot)
    split, columns = split_posteriors(merged, [1, 2], 2, q, plan.labels_by_size, axis=0)
    np.testing.assert_array_equal(
        layer.data,
        recluster.split_cluster(labels_merged, plan.edit.table_before, image, 2, 2, params)[0],
    )
    np.testing.assert_allclose(probabilities.data, split, atol=1e-6)
    assert tag["labels"] == columns == [1, 2, 3]  # 3 is free again after the merge
    np.testing.assert_allclose(probabilities.data.sum(axis=0), 1.0, atol=1e-5)
    widget.undo()
    finish_edit(widget, qtbot)
    np.testing.assert_array_equal(probabilities.data, merged)
    assert tag["labels"] == [1, 2]
    widget.undo()
    finish_edit(widget, qtbot)
    np.testing.assert_array_equal(probabilities.data, p0)
    np.testing.assert_array_equal(uncertainty.data, u0)
    assert tag["labels"] == [1, 2, 3]
    widget.redo()
    finish_edit(widget, qtbot)
    np.testing.assert_array_equal(probabilities.data, merged)


def test_lazy_probabilities_are_renamed_not_left_stale(gmm_table, qtbot):
    import dask.array as da

    _, widget, layer, probabilities, uncertainty = gmm_table
    probabilities.data = da.from_array(probabilities.data, chunks=(3, 32, 32))
    name, unc_name = probabilities.name, uncertainty.name
    widget.select_rows([0, 1])
    widget.merge_selected()
    finish_edit(widget, qtbot)
    assert set(np.unique(layer.data)) == {1, 3}
    # the uncertainty cannot follow without its probabilities: both say so
    assert probabilities.name == f"{name} (before merge)"
    assert uncertainty.name == f"{unc_name} (before merge)"
    widget.undo()
    finish_edit(widget, qtbot)
    assert (probabilities.name, uncertainty.name) == (name, unc_name)


# --- labels in uint8 (the clusters layer's dtype when its labels fit) ------------------------
@pytest.fixture
def near_255(make_napari_viewer, qtbot):
    """A uint8 clusters layer whose cluster 4 is numbered 254 (as if split before)."""
    from napari_pixel_clusters.gui.layers import table_colormap

    viewer = make_napari_viewer()
    viewer.add_image(data.astronaut()[::4, ::4].copy(), name="a")
    run_pixel_clusters(viewer, qtbot)
    layer = viewer.layers["a k-means#1 clusters"]
    assert layer.data.dtype == np.uint8
    labels = layer.data.copy()
    labels[labels == 4] = 254
    features = layer.features.copy()
    features.loc[features["index"] == 4, "index"] = 254
    layer.data, layer.features = labels, features
    layer.colormap = table_colormap(features)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    return viewer, widget, layer


def test_a_split_past_255_widens_the_labels_and_undo_gives_them_back(near_255, qtbot):
    viewer, widget, layer = near_255
    quantized = viewer.layers["a k-means#1 quantized"]
    before = layer.data.copy(), layer.features.copy(), quantized.data.copy()
    params = layer.metadata["napari_pixel_clusters"]["params"]
    expected, expected_table = recluster.split_cluster(
        before[0].astype(np.int32), before[1], viewer.layers["a"].data, 254, 3, params
    )
    assert expected.max() == 256  # new labels 255 and 256: past uint8
    widget.select_rows([list(layer.features["index"]).index(254)])
    widget.split_selected(3)
    finish_edit(widget, qtbot)
    assert layer.data.dtype == np.uint16
    np.testing.assert_array_equal(layer.data, expected)
    assert_frame_equal(layer.features, expected_table)
    assert list(layer.features["index"]) == [1, 2, 3, 254, 255, 256]
    for label in (254, 255, 256):  # each part painted in its own mean color
        assert len(np.unique(quantized.data[layer.data == label], axis=0)) == 1
    split_quantized = quantized.data.copy()
    widget.undo()
    finish_edit(widget, qtbot)
    assert layer.data.dtype == np.uint8  # exactly as before: values and dtype
    np.testing.assert_array_equal(layer.data, before[0])
    assert_frame_equal(layer.features, before[1])
    np.testing.assert_array_equal(quantized.data, before[2])
    widget.redo()
    finish_edit(widget, qtbot)
    assert layer.data.dtype == np.uint16
    np.testing.assert_array_equal(layer.data, expected)
    np.testing.assert_array_equal(quantized.data, split_quantized)
    widget.select_rows([0, 5])  # 256 merged into 1: the labels stay uint16
    widget.merge_selected()
    finish_edit(widget, qtbot)
    assert layer.data.dtype == np.uint16 and 256 not in layer.data
    np.testing.assert_array_equal(layer.data, np.where(expected == 256, 1, expected))


def test_painting_with_a_new_label_keeps_its_value_and_napari_refuses_past_uint8(
    table_widget, qtbot
):
    from napari.layers.labels._labels_key_bindings import new_label

    _, _, layer = table_widget  # the Cluster table is open: it recounts after painting
    assert layer.data.dtype == np.uint8 and layer.data.max() == 4
    new_label(layer)  # napari's "new label" button
    assert layer.selected_label == 5
    layer.brush_size = 5
    layer.paint((20, 20), layer.selected_label)
    assert layer.data[20, 20] == 5 and layer.data.dtype == np.uint8
    counts = np.bincount(layer.data.ravel())
    assert counts[5] > 1  # the table counts the clusters' pixels left
    qtbot.waitUntil(lambda: list(layer.features["pixels"]) == list(counts[1:5]), timeout=5_000)
    labels = layer.data.copy()
    labels[0, 0] = 255  # the largest uint8 label in use: napari's next one does not fit
    layer.data = labels
    new_label(layer)  # a warning, the label stays
    assert layer.selected_label == 5
    with pytest.raises(ValueError, match="256"):
        layer.paint((30, 30), 256)  # refused, nothing wraps
    np.testing.assert_array_equal(layer.data, labels)
