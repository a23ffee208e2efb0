"""The "only inside" control (gui/masks.py, in Pixel clusters and Choose number of
clusters): a Labels or Shapes layer as the mask of a run, mapped into the image's pixel
grid, read in the worker; results equal ``segment(..., mask=...)`` with that mask."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from napari.layers import Labels

import napari_pixel_clusters as npc
from conftest import PLUGIN, SMALL_PHOTO, press_run, result_layers_of
from napari_pixel_clusters.gui.layers import METADATA_KEY
from napari_pixel_clusters.gui.masks import WHOLE_IMAGE, plan_mask
from napari_pixel_clusters.gui.state import shared_settings


def choice_names(control):
    return [control.native.itemText(i) for i in range(control.native.count())]


def blob_labels(shape):
    """Labels 0 outside two blobs (labels 3 and 7)."""
    labels = np.zeros(shape, np.uint8)
    labels[5:30, 8:28] = 3
    labels[40:60, 35:60] = 7
    return labels


@pytest.fixture
def photo_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(SMALL_PHOTO, name="astronaut")
    return viewer


def open_pixel_clusters(viewer):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    widget._n_clusters.value = 4
    widget._outputs["quantized"].value = False
    return widget


def clusters_of(viewer):
    (layer,) = result_layers_of(viewer)
    return layer


# ------------------------------------------------------------------ the choice
def test_only_inside_lists_labels_and_shapes_layers_and_follows_them(photo_viewer, qtbot):
    viewer = photo_viewer
    widget = open_pixel_clusters(viewer)
    assert choice_names(widget._inside) == [WHOLE_IMAGE] and widget._inside.value is None
    viewer.add_labels(blob_labels((64, 64)), name="cells")
    viewer.add_shapes([[[2, 2], [2, 20], [20, 20], [20, 2]]], shape_type="rectangle", name="roi")
    viewer.add_points([[1, 1]], name="dots")  # not a mask
    assert choice_names(widget._inside) == [WHOLE_IMAGE, "cells", "roi"]
    viewer.layers["cells"].name = "nuclei"
    assert sorted(choice_names(widget._inside)) == sorted([WHOLE_IMAGE, "nuclei", "roi"])
    widget._inside.value = viewer.layers["roi"]
    viewer.layers.remove("roi")
    assert choice_names(widget._inside) == [WHOLE_IMAGE, "nuclei"]
    assert widget._inside.value is None and shared_settings(viewer).mask is None
    widget._inside.value = viewer.layers["nuclei"]
    press_run(widget, qtbot)  # our own clusters layer is listed too: a legitimate mask
    assert choice_names(widget._inside) == [
        WHOLE_IMAGE,
        "nuclei",
        "astronaut k-means#1 clusters (result)",
    ]


# ------------------------------------------------------------------ runs
def test_a_labels_layer_as_only_inside_labels_only_its_non_zero_pixels(photo_viewer, qtbot):
    viewer = photo_viewer
    labels = blob_labels((64, 64))
    viewer.add_labels(labels, name="cells")
    widget = open_pixel_clusters(viewer)
    widget._inside.value = viewer.layers["cells"]
    press_run(widget, qtbot)
    result = clusters_of(viewer)
    inside = labels != 0
    expected = npc.segment(SMALL_PHOTO, "kmeans", 4, mask=inside, random_state=0)
    np.testing.assert_array_equal(result.data, expected.labels)
    assert np.all(result.data[~inside] == 0) and np.all(result.data[inside] > 0)
    assert result.features["pixels"].sum() == inside.sum()
    params = result.metadata[METADATA_KEY]["params"]
    assert params["mask"] == {
        "pixels_inside": int(inside.sum()),
        "pixels": 64 * 64,
        "layer": "cells",
    }
    np.testing.assert_array_equal(viewer.layers["cells"].data, labels)  # left as it was


def test_a_shapes_rectangle_as_only_inside(photo_viewer, qtbot):
    viewer = photo_viewer
    corners = np.array([[10, 12], [10, 50], [40, 50], [40, 12]])
    shapes = viewer.add_shapes([corners], shape_type="rectangle", name="roi")
    widget = open_pixel_clusters(viewer)
    widget._inside.value = shapes
    press_run(widget, qtbot)
    inside = shapes.to_masks((64, 64)).any(axis=0)
    result = clusters_of(viewer).data
    assert np.all(result[~inside] == 0) and np.all(result[inside] > 0)
    assert inside[10:41, 12:51].all() and inside.sum() == 31 * 39
    expected = npc.segment(SMALL_PHOTO, "kmeans", 4, mask=inside, random_state=0)
    np.testing.assert_array_equal(result, expected.labels)


def test_shapes_masks_are_napari_to_masks_of_the_shapes_that_enclose_pixels(make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((60, 70)))
    shapes = viewer.add_shapes(
        [
            [[5, 5], [5, 25], [20, 25], [20, 5]],
            [[30, 10], [55, 20], [40, 40]],
            [[25, 40], [25, 65], [55, 65], [55, 40]],
            [[2, 2], [50, 60]],
        ],
        shape_type=["rectangle", "polygon", "ellipse", "path"],
    )
    expected = shapes.to_masks((60, 70))[:3].any(axis=0)  # a path encloses nothing
    plan = plan_mask(shapes, image)
    np.testing.assert_array_equal(plan.read(), expected)
    lazy = plan.lazy(((25, 35), (30, 40)))
    np.testing.assert_array_equal(lazy.compute(), expected)
    only_a_path = viewer.add_shapes([[[2, 2], [50, 60]]], shape_type="path", name="line")
    with pytest.raises(ValueError, match=r"^only inside: .*'line' has no polygon.*enclose no"):
        plan_mask(only_a_path, image)


def test_shapes_are_mapped_into_the_image_grid_through_the_world(make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((40, 40)), scale=(2, 2), translate=(10, 0))
    shapes = viewer.add_shapes([[[20, 10], [20, 50], [50, 50], [50, 10]]], shape_type="polygon")
    mask = plan_mask(shapes, image).read()
    expected = np.zeros((40, 40), bool)  # world y 20..50 -> rows 5..20, x 10..50 -> 5..25
    expected[5:21, 5:26] = True
    np.testing.assert_array_equal(mask, expected)


def test_a_labels_layer_off_the_image_grid_is_one_notification_and_nothing_runs(
    photo_viewer, qtbot, error_notifications
):
    viewer = photo_viewer
    widget = open_pixel_clusters(viewer)
    before = list(viewer.layers)
    for labels, kwargs, why in [
        (np.ones((32, 32), int), {"scale": (2, 2)}, "does not lie on the pixel grid"),
        (np.ones((64, 64), int), {"translate": (0.5, 0)}, "does not lie on the pixel grid"),
        (np.ones((10, 10), int), {"translate": (100, 0)}, "lies outside"),
        (np.ones((2, 64, 64), int), {}, "has more axes"),
    ]:
        error_notifications.clear()
        widget._inside.value = viewer.add_labels(labels, **kwargs)
        press_run(widget, qtbot)
        assert len(error_notifications) == 1 and error_notifications[0].startswith("only inside:")
        assert why in error_notifications[0]
        assert "(shape" in error_notifications[0]  # the shapes are said
        assert result_layers_of(viewer) == []
    assert [
        layer for layer in viewer.layers if layer not in before and not isinstance(layer, Labels)
    ] == []


def test_a_mask_with_nothing_inside_is_one_notification(photo_viewer, qtbot, error_notifications):
    viewer = photo_viewer
    viewer.add_labels(np.zeros((64, 64), np.uint8), name="empty")
    widget = open_pixel_clusters(viewer)
    widget._inside.value = viewer.layers["empty"]
    press_run(widget, qtbot)
    assert len(error_notifications) == 1 and error_notifications[0].startswith("mask: no pixel")
    assert result_layers_of(viewer) == []


def test_a_labels_layer_is_not_read_on_the_gui_thread(make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((3000, 3000), np.uint8))
    labels = viewer.add_labels(np.zeros((3000, 3000), np.uint8))
    plan = plan_mask(labels, image)  # only the transforms are compared here
    assert plan.labels is labels.data  # read (!= 0, sliced) by plan.read() in the worker


# ------------------------------------------------------------------ stacks
@pytest.fixture
def stack():
    rng = np.random.default_rng(0)
    return rng.integers(0, 200, (4, 40, 48)).astype(np.uint8)


def test_stack_current_plane_slices_a_3d_labels_mask_the_same_way(
    make_napari_viewer, qtbot, stack
):
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="cells")
    masks = np.zeros(stack.shape, np.uint8)
    for z in range(4):
        masks[z, 5 * z : 5 * z + 20, 10:40] = z + 1
    viewer.add_labels(masks, name="per plane")
    viewer.dims.set_point(0, 2)
    widget = open_pixel_clusters(viewer)
    widget._n_clusters.value = 3
    widget._inside.value = viewer.layers["per plane"]
    assert widget._stack_mode.value == "current plane"
    press_run(widget, qtbot)
    result = clusters_of(viewer)
    assert result.data.shape == (1, 40, 48)
    inside = masks[2:3] != 0
    expected = npc.segment(stack[2:3], "kmeans", 3, mask=inside, random_state=0)
    np.testing.assert_array_equal(result.data, expected.labels)
    assert result.metadata[METADATA_KEY]["params"]["mask"]["layer"] == "per plane"


def test_a_2d_labels_mask_holds_for_every_plane_of_a_stack(make_napari_viewer, qtbot, stack):
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="cells")
    plane_mask = np.zeros(stack.shape[1:], np.uint8)
    plane_mask[10:30, 5:25] = 1
    viewer.add_labels(plane_mask, name="roi")
    widget = open_pixel_clusters(viewer)
    widget._n_clusters.value = 3
    widget._inside.value = viewer.layers["roi"]
    widget._stack_mode.value = "whole stack"
    press_run(widget, qtbot)
    inside = np.broadcast_to(plane_mask != 0, stack.shape)
    expected = npc.segment(stack, "kmeans", 3, mask=inside, random_state=0)
    np.testing.assert_array_equal(clusters_of(viewer).data, expected.labels)


def test_a_clusters_layer_of_one_plane_masks_that_plane_of_the_stack(stack):
    from napari.layers import Image

    image = Image(stack, scale=(3, 1, 1), translate=(6, 0, 0))
    plane = Labels(np.ones((1, 40, 48), int), scale=(3, 1, 1), translate=(6 + 3 * 2, 0, 0))
    plan = plan_mask(plane, image)
    assert plan.offset == (2, 0, 0)
    assert plan.read().sum(axis=(1, 2)).tolist() == [0, 0, 40 * 48, 0]
    assert plan.read((2,)).all() and not plan.read((1,)).any()


# ------------------------------------------------------------------ large images, Choose k
def test_a_large_image_takes_a_labels_mask_lazily(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(da.from_array(SMALL_PHOTO, chunks=(32, 32, 3)), name="big", rgb=True)
    labels = blob_labels((64, 64))
    viewer.add_labels(labels, name="cells")
    widget = open_pixel_clusters(viewer)
    widget._inside.value = viewer.layers["cells"]
    press_run(widget, qtbot)
    result = np.asarray(clusters_of(viewer).data)
    expected = npc.segment(SMALL_PHOTO, "kmeans", 4, mask=labels != 0, random_state=0)
    np.testing.assert_array_equal(result, expected.labels)


def test_only_inside_is_shared_with_choose_k_and_its_sweep_uses_it(photo_viewer, qtbot):
    viewer = photo_viewer
    labels = blob_labels((64, 64))
    viewer.add_labels(labels, name="cells")
    widget = open_pixel_clusters(viewer)
    _, choose = viewer.window.add_plugin_dock_widget(PLUGIN, "Choose number of clusters")
    widget._inside.value = viewer.layers["cells"]
    assert choose._inside.value is viewer.layers["cells"]
    choose._k_min.value, choose._k_max.value = 2, 4
    press_run(choose, qtbot)
    expected = npc.sweep(SMALL_PHOTO, "kmeans", range(2, 5), mask=labels != 0)
    np.testing.assert_allclose(choose.sweep.table["inertia"], expected.table["inertia"])
    assert choose.sweep.params["mask"]["layer"] == "cells"
    choose._inside.value = None
    assert widget._inside.value is None  # both ways
    choose.choose_k(3)  # the sweep's own settings come back, its mask too
    assert widget._inside.value is viewer.layers["cells"]


def test_shapes_drawn_on_planes_of_a_stack_mask_those_planes_only(stack):
    from napari.layers import Image, Shapes

    image = Image(stack)
    shapes = Shapes(
        [
            [[2, 5, 5], [2, 5, 30], [2, 20, 30], [2, 20, 5]],
            [[0, 30, 30], [0, 30, 40], [0, 38, 40], [0, 38, 30]],
        ],
        shape_type=["rectangle", "ellipse"],
    )
    expected = shapes.to_masks(stack.shape).any(axis=0)
    plan = plan_mask(shapes, image)
    np.testing.assert_array_equal(plan.read(), expected)
    np.testing.assert_array_equal(plan.read((2,)), expected[2:3])
    assert not plan.read((1,)).any()
    lazy = plan.lazy(((2, 2), (20, 20), (24, 24)))
    np.testing.assert_array_equal(lazy.compute(), expected)
