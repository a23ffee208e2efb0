"""Live preview in Pixel clusters (gui/preview.py), in a real viewer: one preview layer
updated in place with exactly what ``segment`` gives on the plane on screen, the newest
change winning, decimated views of large planes placed over the image, errors in the
status line only, the layer gone when preview is off or the widget closes."""

from __future__ import annotations

import time

import dask.array as da
import numpy as np
import pytest
from napari.layers import Labels

import napari_pixel_clusters as npc
from _canvas import difference, interior, shown
from conftest import SMALL_PHOTO, press_run, result_layers_of
from napari_pixel_clusters.gui import preview as preview_module
from napari_pixel_clusters.gui.layers import METADATA_KEY
from napari_pixel_clusters.gui.masks import plan_mask

PLUGIN, WIDGET = "napari-pixel-clusters", "Pixel clusters"


def preview_layers(viewer) -> list:
    return [
        layer
        for layer in viewer.layers
        if layer.metadata.get(METADATA_KEY, {}).get("output") == "preview"
    ]


def settle(widget, qtbot, timeout=30_000):
    """Wait until no preview is pending or running (stale workers included)."""
    qtbot.waitUntil(lambda: not widget._preview.busy, timeout=timeout)


def expected(widget, image, **changes):
    """``segment`` on ``image`` with the widget's choices (and ``changes``)."""
    method = widget.method
    k = widget._n_clusters.value if method.needs_n_clusters else None
    rgb = bool(widget._image.value.rgb)
    return npc.segment(image, method.name, k, rgb=rgb, **{**widget._options(), **changes})


def updates_of(widget) -> list:
    seen = []
    widget._preview.updated.append(seen.append)
    return seen


def test_preview_on_shows_one_layer_equal_to_segment(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    image = viewer.layers["astronaut"]
    original = image.data.copy()
    widget._preview.toggle.value = True
    settle(widget, qtbot)

    (layer,) = preview_layers(viewer)
    assert isinstance(layer, Labels) and layer.name == "astronaut preview"
    seg = expected(widget, SMALL_PHOTO)
    np.testing.assert_array_equal(layer.data, seg.labels)
    assert list(layer.features["pixels"]) == list(seg.table["pixels"])
    for label, rgb in enumerate(seg.colors, start=1):
        np.testing.assert_allclose(layer.colormap.map(label)[:3], rgb, atol=1 / 255)
    assert widget._status.value.startswith("preview: k-means, 5 clusters")
    # not a result: no Run number taken, the image stays chosen and selected
    assert result_layers_of(viewer, "clusters") == []
    assert widget._image.value is image and viewer.layers.selection.active is image
    np.testing.assert_array_equal(image.data, original)


def test_changing_k_and_color_space_updates_the_same_layer(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    layer = widget._preview.layer
    first_id = id(layer)
    layer.opacity = 0.4  # the user's choice stays

    widget._n_clusters.value = 3
    settle(widget, qtbot)
    assert preview_layers(viewer) == [layer] and id(widget._preview.layer) == first_id
    np.testing.assert_array_equal(layer.data, expected(widget, SMALL_PHOTO).labels)
    assert len(layer.features) == 3 and layer.opacity == 0.4

    widget._feature_widgets["color_space"].value = "lab"
    settle(widget, qtbot)
    assert preview_layers(viewer) == [layer]
    seg = expected(widget, SMALL_PHOTO)
    assert seg.params["color_space"] == "lab"
    np.testing.assert_array_equal(layer.data, seg.labels)
    assert layer.metadata[METADATA_KEY]["params"]["color_space"] == "lab"


def test_an_update_refreshes_the_layer_once_with_narrowed_labels(pixel_clusters, qtbot):
    """The GUI thread's share of an update: the layer is sliced and redrawn once (not once
    per setter), its labels are uint8 (napari draws them without mapping them), written
    into its array (no data event: the viewer's dimensions are not recomputed)."""
    _, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    layer = widget._preview.layer
    assert layer.data.dtype == np.uint8
    redraws, data_events = [], []
    layer.events.set_data.connect(lambda event: redraws.append(event))
    layer.events.data.connect(lambda event: data_events.append(event))

    widget._n_clusters.value = 3
    settle(widget, qtbot)

    seg = expected(widget, SMALL_PHOTO)
    assert len(redraws) == 1 and data_events == []
    assert layer.data.dtype == np.uint8
    np.testing.assert_array_equal(layer.data, seg.labels)
    np.testing.assert_array_equal(layer._slice.image.raw, seg.labels)  # what is drawn
    for label, rgb in enumerate(seg.colors, start=1):
        np.testing.assert_allclose(layer.colormap.map(label)[:3], rgb, atol=1 / 255)


def test_an_update_is_drawn_on_the_canvas(make_napari_viewer, qtbot):
    """The labels written into the layer's array are what the canvas shows: each cluster
    in its color after a change of k."""
    viewer = make_napari_viewer(show=True)  # screenshots of a shown canvas
    image_layer = viewer.add_image(SMALL_PHOTO, name="astronaut")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    widget._preview.layer.opacity = 1.0
    image_layer.visible = False
    viewer.reset_view()

    widget._n_clusters.value = 3
    settle(widget, qtbot)
    qtbot.wait(20)

    seg = expected(widget, SMALL_PHOTO)
    for label, rgb in enumerate(seg.colors, start=1):
        mask = interior(seg.labels == label, margin=1)
        if mask.sum() < 20:
            continue
        drawn = shown(viewer, mask)
        assert difference(drawn, np.tile(255 * np.asarray(rgb), (len(drawn), 1))) <= 2


def test_rapid_changes_end_with_the_last_ones_result(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    updates = updates_of(widget)
    counts = []
    viewer.layers.events.inserted.connect(lambda e: counts.append(len(preview_layers(viewer))))

    for k in (2, 3, 4, 6, 7):  # five changes in a row, no event processed between them
        widget._n_clusters.value = k
    settle(widget, qtbot)
    qtbot.wait(50)

    assert [len(update.features) for update in updates] == [7]  # only the last one
    (layer,) = preview_layers(viewer)
    np.testing.assert_array_equal(layer.data, expected(widget, SMALL_PHOTO).labels)
    assert counts == []  # no layer was added meanwhile


def test_a_late_result_of_an_older_change_is_dropped(pixel_clusters, qtbot, monkeypatch):
    """The first change's run is slow and does not stop (no step after the wait): its
    result arrives after the second change's and must not replace it."""
    _viewer, widget = pixel_clusters
    real = preview_module.segment_steps

    def slow_for_k3(image, method, k, **kwargs):
        if k == 3:
            time.sleep(1.0)
            return npc.segment(image, method, k, **kwargs)
            yield  # a generator that never yields: nothing stops it
        return (yield from real(image, method, k, **kwargs))

    monkeypatch.setattr(preview_module, "segment_steps", slow_for_k3)
    widget._n_clusters.value = 3
    updates = updates_of(widget)
    widget._preview.toggle.value = True  # k=3: starts at once
    qtbot.wait(100)
    widget._n_clusters.value = 4
    settle(widget, qtbot)  # both workers done, the slow one last
    assert [len(update.features) for update in updates] == [4]
    np.testing.assert_array_equal(widget._preview.layer.data, expected(widget, SMALL_PHOTO).labels)


def test_stack_preview_follows_the_plane_on_screen(viewer_with_widget, qtbot):
    grey = SMALL_PHOTO.mean(axis=-1).astype(np.uint8)
    stack = np.stack([grey, 255 - grey, np.roll(grey, 20, axis=1)])
    viewer, widget = viewer_with_widget(stack, name="stack")
    widget._n_clusters.value = 3
    viewer.dims.set_current_step(0, 1)
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    layer = widget._preview.layer
    assert layer.data.shape == grey.shape
    np.testing.assert_array_equal(layer.data, expected(widget, stack[1]).labels)
    assert layer.metadata[METADATA_KEY]["plane"] == [1]

    viewer.dims.set_current_step(0, 2)
    settle(widget, qtbot)
    assert widget._preview.layer is layer and preview_layers(viewer) == [layer]
    np.testing.assert_array_equal(layer.data, expected(widget, stack[2]).labels)
    assert layer.metadata[METADATA_KEY]["plane"] == [2]


def test_new_image_data_is_previewed_again(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    flipped = SMALL_PHOTO[::-1].copy()
    viewer.layers["astronaut"].data = flipped
    settle(widget, qtbot)
    np.testing.assert_array_equal(widget._preview.layer.data, expected(widget, flipped).labels)


def test_preview_off_removes_the_layer_and_nothing_else(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    before = list(viewer.layers)
    original = viewer.layers["astronaut"].data.copy()
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    assert len(viewer.layers) == 2
    widget._preview.toggle.value = False
    assert list(viewer.layers) == before and widget._preview.layer is None
    np.testing.assert_array_equal(viewer.layers["astronaut"].data, original)
    assert widget._status.value == ""
    widget._n_clusters.value = 3  # off: changes preview nothing
    qtbot.wait(300)
    assert list(viewer.layers) == before


def test_removing_the_preview_layer_by_hand_turns_preview_off(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    viewer.layers.remove(widget._preview.layer)
    assert not widget._preview.toggle.value and not widget._preview.enabled
    widget._n_clusters.value = 3
    qtbot.wait(300)
    assert [layer.name for layer in viewer.layers] == ["astronaut"]


def test_closing_the_widget_removes_the_preview(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    viewer.window.remove_dock_widget("all")
    assert [layer.name for layer in viewer.layers] == ["astronaut"]
    viewer.dims.set_current_step(0, 3)  # no longer followed
    qtbot.wait(300)
    assert [layer.name for layer in viewer.layers] == ["astronaut"]


def test_run_while_preview_is_on_adds_the_normal_result_layers(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    preview = widget._preview.layer
    press_run(widget, qtbot)
    settle(widget, qtbot)
    names = [layer.name for layer in viewer.layers]
    assert names == [
        "astronaut",
        "astronaut preview",
        "astronaut k-means#1 quantized",
        "astronaut k-means#1 clusters",
    ]
    (clusters,) = result_layers_of(viewer, "clusters")
    np.testing.assert_array_equal(clusters.data, expected(widget, SMALL_PHOTO).labels)
    assert widget._preview.layer is preview and preview_layers(viewer) == [preview]
    # "replace previous result" leaves the preview alone
    widget._replace.value = True
    press_run(widget, qtbot)
    assert preview in viewer.layers and len(result_layers_of(viewer, "clusters")) == 1


def test_an_error_shows_in_the_status_line_only(
    viewer_with_widget, qtbot, error_notifications, monkeypatch
):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    two_colors = np.zeros((32, 32, 3), np.uint8)
    two_colors[:16] = 200
    _viewer, widget = viewer_with_widget(two_colors, name="flat")
    widget._n_clusters.value = 2
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    good = widget._preview.layer.data.copy()

    for k in (3, 4, 5):  # every one too many for two colors
        widget._n_clusters.value = k
        settle(widget, qtbot)
    assert widget._status.value.startswith("preview failed: n_clusters: 5 clusters")
    assert error_notifications == [] and shown == []
    np.testing.assert_array_equal(widget._preview.layer.data, good)  # the last good one

    widget._n_clusters.value = 2  # fixed: previewed again
    settle(widget, qtbot)
    assert widget._status.value.startswith("preview: k-means, 2 clusters")


def test_a_large_plane_is_previewed_decimated_and_overlays_the_image(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    image = viewer.layers["astronaut"]
    image.scale, image.translate = (0.5, 0.5), (10, 20)
    widget._preview.max_pixels = 32 * 32  # the 64² photo counts as large
    widget._preview.toggle.value = True
    settle(widget, qtbot)

    layer = widget._preview.layer
    assert layer.name == "astronaut preview (1/2 resolution)"
    assert "preview at 1/2 resolution" in widget._status.value
    np.testing.assert_array_equal(layer.data, expected(widget, SMALL_PHOTO[::2, ::2]).labels)
    for point in [(0, 0), (5, 7), (31, 31)]:  # preview pixel j sits on image pixel 2j
        np.testing.assert_allclose(
            layer.data_to_world(point), image.data_to_world(2 * np.array(point))
        )


def test_a_pyramid_is_previewed_on_a_level_that_fits(viewer_with_widget, qtbot):
    levels = [SMALL_PHOTO, SMALL_PHOTO[::2, ::2].copy(), SMALL_PHOTO[::4, ::4].copy()]
    _viewer, widget = viewer_with_widget(
        [da.from_array(level, chunks=(16, 16, 3)) for level in levels],
        name="pyramid",
        multiscale=True,
        rgb=True,
    )
    widget._preview.max_pixels = 32 * 32
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    layer = widget._preview.layer
    assert layer.name == "pyramid preview (1/2 resolution)"
    np.testing.assert_array_equal(layer.data, expected(widget, levels[1]).labels)
    np.testing.assert_allclose(layer.scale, (2, 2))


def test_only_inside_a_shape_previews_the_masked_pixels(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    image = viewer.layers["astronaut"]
    shapes = viewer.add_shapes(
        [np.array([[4.3, 5.2], [4.3, 50.7], [40.6, 50.7], [40.6, 5.2]])],
        shape_type="rectangle",
        name="roi",
    )
    viewer.layers.selection.active = image
    widget._inside.value = shapes
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    mask = plan_mask(shapes, image).read()
    seg = expected(widget, SMALL_PHOTO, mask=mask)
    np.testing.assert_array_equal(widget._preview.layer.data, seg.labels)
    assert (widget._preview.layer.data[~mask] == 0).all()

    updates = updates_of(widget)
    shapes.add_rectangles(np.array([[50.0, 50.0], [60.0, 60.0]]))  # drawn: previewed again
    settle(widget, qtbot)
    assert len(updates) == 1
    mask = plan_mask(shapes, image).read()
    np.testing.assert_array_equal(
        widget._preview.layer.data, expected(widget, SMALL_PHOTO, mask=mask).labels
    )

    widget._preview.max_pixels = 32 * 32  # decimated: the mask at the kept pixels
    widget._preview.changed(force=True)
    settle(widget, qtbot)
    seg = expected(widget, SMALL_PHOTO[::2, ::2], mask=mask[::2, ::2])
    np.testing.assert_array_equal(widget._preview.layer.data, seg.labels)


@pytest.mark.parametrize("method", ["canny", "gmm"])
def test_other_methods_preview_like_segment(pixel_clusters, qtbot, method):
    _viewer, widget = pixel_clusters
    widget._method.value = method
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    layer = widget._preview.layer
    np.testing.assert_array_equal(layer.data, expected(widget, SMALL_PHOTO).labels)
    edges = method == "canny"
    assert layer.metadata[METADATA_KEY]["labels"] == ("edges" if edges else "clusters")
    assert layer.opacity == (1.0 if edges else 0.7)


def test_random_colors_recolor_the_preview(pixel_clusters, qtbot):
    _viewer, widget = pixel_clusters
    widget._preview.toggle.value = True
    settle(widget, qtbot)
    layer = widget._preview.layer
    mean_color = layer.colormap.map(1).copy()
    widget._random_colors.value = True
    assert not np.allclose(layer.colormap.map(1), mean_color)
    assert layer.metadata[METADATA_KEY]["random_colors"]
    widget._random_colors.value = False
    np.testing.assert_allclose(layer.colormap.map(1), mean_color)
