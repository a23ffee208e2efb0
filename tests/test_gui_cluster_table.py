"""Drive the "Cluster table" widget: rename, recolor, select, hide, merge, paint, undo."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from skimage import data

from conftest import run_pixel_clusters
from napari_pixel_clusters.gui.cluster_table import NAME, PIXELS

PLUGIN = "napari-pixel-clusters"


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
    outline_labels = list(outlines.features["label"])
    polygons_before = [p.copy() for p in outlines.data]
    features = layer.features.set_index("index")
    widget.style_outlines("cluster")
    widget.select_rows([0, 2])
    widget.merge_selected()
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
    from napari_pixel_clusters.core.contours import region_contours

    min_area = outlines.metadata["napari_pixel_clusters"]["min_area"]
    traced = region_contours(np.where(layer.data == 1, 1, 0), min_area)
    assert list(outlines.features["label"]).count(1) == len(traced)
    assert len(outlines.data) == len(outlines.features)
    np.testing.assert_allclose(
        outlines.edge_color[list(outlines.features["label"]).index(1)],
        [*to_rgb(merged.loc[1, "color"]), 1.0],
    )
    layer.undo()  # napari's own undo: the table, quantized image and outlines follow
    np.testing.assert_array_equal(layer.data, before)
    qtbot.waitUntil(lambda: widget.table.rowCount() == 4, timeout=5_000)
    assert list(layer.features["index"]) == [1, 2, 3, 4]
    assert list(layer.features["pixels"]) == list(np.bincount(before.ravel())[1:5])
    assert layer.features["color"][2] == features.loc[3, "color"]
    assert layer.features["mean_R"][0] == pytest.approx(features.loc[1, "mean_R"])
    np.testing.assert_array_equal(viewer.layers["a k-means#1 quantized"].data, quantized_before)
    assert list(outlines.features["label"]) == outline_labels
    assert all(np.array_equal(a, b) for a, b in zip(outlines.data, polygons_before))
    assert widget._status.value.startswith("undone")
    layer.redo()  # and napari's redo merges them again, everywhere
    qtbot.waitUntil(lambda: widget.table.rowCount() == 3, timeout=5_000)
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
