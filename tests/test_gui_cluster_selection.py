"""The selection of clusters (gui/cluster_selection.py), as a person reviews a result:
selecting, hiding and picking clusters show on the canvas and in both review widgets at
once (Cluster table, Cluster colors), linked both ways."""

from __future__ import annotations

import numpy as np
from matplotlib.backend_bases import MouseButton, MouseEvent
from qtpy.QtCore import Qt

from _canvas import difference, interior, shown, source_colors
from napari_pixel_clusters.gui.cluster_colors import FADED
from napari_pixel_clusters.gui.cluster_selection import FADED_OUTLINES, cluster_selection
from napari_pixel_clusters.gui.cluster_table import NAME, SHOW

#: Screen colors within this many levels (of 255) count as the same (rounding, blending).
SAME = 6


def regions(layer):
    """Each cluster's pixels away from region borders (where outlines are drawn)."""
    return {label: interior(layer.data == label) for label in layer.features["index"]}


def mouse(canvas, kind, axes, x, y):
    px, py = axes.transData.transform((x, y))
    MouseEvent(kind, canvas, px, py, MouseButton.LEFT)._process()


def assert_shows_only(viewer, layer, image, before, labels):
    """The clusters ``labels`` look as before; every other cluster shows the photo."""
    for label, mask in regions(layer).items():
        now = shown(viewer, mask)
        if label in labels:
            assert difference(now, before[label]) <= SAME, f"cluster {label} changed"
        else:
            assert difference(now, source_colors(image, mask)) <= SAME, (
                f"cluster {label} does not show the image"
            )
            assert difference(now, before[label]) > SAME, f"cluster {label} did not change"


def canvas_before(viewer, layer):
    return {label: shown(viewer, mask) for label, mask in regions(layer).items()}


def test_the_result_covers_the_photo_before_any_selection(review):
    viewer, _, _, layer, image = review
    for mask in regions(layer).values():  # clusters drawn: the canvas is not the photo
        assert difference(shown(viewer, mask), source_colors(image, mask)) > SAME


def test_selecting_a_table_row_shows_that_cluster_over_the_photo(review):
    viewer, table, colors, layer, image = review
    before = canvas_before(viewer, layer)
    table.select_rows([2])
    assert layer.selected_label == 3 and layer.show_selected_label
    assert_shows_only(viewer, layer, image, before, {3})
    # Cluster colors highlights the same cluster: outlined bar segment, others faded
    patches = colors.bar_patches
    assert patches[2].get_linewidth() > 0 and patches[2].get_alpha() == 1.0
    assert all(
        p.get_linewidth() == 0 and p.get_alpha() == FADED for i, p in enumerate(patches) if i != 2
    )
    # over a veil that fades the scatter, the selected cluster's points are drawn again
    assert all(veil.get_visible() and veil.get_alpha() == 1 - FADED for veil in colors.veils)
    mine = colors.sample.labels == 3
    np.testing.assert_array_equal(
        colors.selected_points[0].get_offsets(), colors.sample.coords[mine][:, :2]
    )
    assert all(artist in colors.highlighted() for artist in colors.selected_points)
    sizes = colors.center_marks[0].get_sizes()
    assert sizes[2] > max(np.delete(sizes, 2))
    # outlines of the other clusters fade, the selected cluster's stay
    outlines = next(layer for layer in viewer.layers if layer.name.endswith("outlines"))
    edge_alpha = np.asarray(outlines.edge_color)[:, 3]
    selected = np.asarray(outlines.features["label"]) == 3
    assert np.all(edge_alpha[selected] == 1.0)
    np.testing.assert_allclose(edge_alpha[~selected], FADED_OUTLINES)
    # clearing the selection shows every cluster again
    table.select_rows([])
    assert not layer.show_selected_label and colors.bar_patches[0].get_alpha() == 1.0
    assert not any(veil.get_visible() for veil in colors.veils)
    for label, mask in regions(layer).items():
        assert difference(shown(viewer, mask), before[label]) <= SAME


def test_clicking_the_color_bar_selects_shows_and_highlights(review):
    viewer, table, colors, layer, image = review
    before = canvas_before(viewer, layer)
    ends = np.cumsum(layer.features["fraction"])
    mouse(colors.canvas, "button_press_event", colors.bar_axes, (ends[0] + ends[1]) / 2, 0)
    assert table.selected_labels() == [2]
    assert_shows_only(viewer, layer, image, before, {2})
    assert colors.bar_patches[1].get_linewidth() > 0


def test_a_lasso_around_centers_shows_those_clusters_only(review):
    viewer, table, colors, layer, image = review
    before = canvas_before(viewer, layer)
    centers = colors.sample.centers[:, [1, 2]]
    pick = centers[[0, 3]]
    low, high = pick.min(axis=0) - 1e-3, pick.max(axis=0) + 1e-3
    inside = np.all((centers >= low) & (centers <= high), axis=1)
    expected = set(np.asarray(layer.features["index"])[inside])
    colors._on_lasso(
        [(low[0], low[1]), (high[0], low[1]), (high[0], high[1]), (low[0], high[1])], 1, 2
    )
    assert set(table.selected_labels()) == expected and len(expected) >= 2
    assert not layer.show_selected_label  # several: the others are transparent
    assert_shows_only(viewer, layer, image, before, expected)


def test_hide_shows_the_photo_there_and_marks_the_row(review, qtbot):
    viewer, table, colors, layer, image = review
    before = canvas_before(viewer, layer)
    table.select_rows([0])
    table.hide_selected()
    assert table.hidden_labels() == [1] and table.selected_labels() == []
    masks = regions(layer)
    assert difference(shown(viewer, masks[1]), source_colors(image, masks[1])) <= SAME
    for label in (2, 3, 4):  # the others are drawn as before
        assert difference(shown(viewer, masks[label]), before[label]) <= SAME
    # the row is marked hidden: unticked, "hidden", grey italics; the bar segment hatched
    show = table.table.item(0, SHOW)
    assert show.checkState() == Qt.CheckState.Unchecked and show.text() == "hidden"
    assert table.table.item(0, NAME).font().italic()
    assert not table.table.item(1, NAME).font().italic()
    assert colors.bar_patches[0].get_hatch() == "xx"
    assert "1 hidden" in table._status.value
    # ticking "show" brings it back
    show.setCheckState(Qt.CheckState.Checked)
    assert table.hidden_labels() == [] and layer.colormap.map(1)[3] == 1
    assert difference(shown(viewer, masks[1]), before[1]) <= SAME


def test_picking_a_label_in_the_viewer_selects_its_row_everywhere(review):
    _viewer, table, colors, layer, _image = review
    layer.selected_label = 4  # what napari's picker (or the label box) does
    assert table.selected_labels() == [4]
    assert layer.show_selected_label
    assert colors.bar_patches[3].get_linewidth() > 0
    # unticking napari's "show selected" clears the selection
    layer.show_selected_label = False
    assert table.selected_labels() == []
    assert colors.bar_patches[3].get_linewidth() == 0


def test_one_selection_per_layer_shared_by_both_widgets(review):
    _viewer, table, colors, layer, _ = review
    selection = cluster_selection(layer)
    assert table._selection is selection and colors._selection is selection
    selection.select([2, 4])
    assert table.selected_labels() == [2, 4]
    np.testing.assert_array_equal(layer.colormap.map(np.array([1, 2, 3, 4]))[:, 3], [0, 1, 0, 1])
