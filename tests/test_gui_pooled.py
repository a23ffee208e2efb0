"""Pixel clusters with "fit on several images" (gui/widget.py, core/pooled.py): one model
fitted on the chosen image layers gives one set of layers per image, equal to
``segment_many`` on the same images, in the same cluster numbering and colors, each placed
over its image; its tag carries the pooled table and the shared model (Apply model takes
it); the probabilities of a pooled GMM; images read chunk by chunk refused."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from skimage import data

import napari_pixel_clusters as npc
from conftest import offered, press_run, result_layers_of
from napari_pixel_clusters.core.pooled import pooling_methods
from napari_pixel_clusters.gui.layers import METADATA_KEY

PLUGIN, WIDGET = "napari-pixel-clusters", "Pixel clusters"
PHOTO = np.ascontiguousarray(data.astronaut()[::8, ::8])  # 64 x 64 RGB
TOP, BOTTOM = PHOTO[:40].copy(), PHOTO[24:].copy()  # two images of different sizes


@pytest.fixture
def two_photos(make_napari_viewer):
    """A viewer with two RGB images (the second shifted and scaled) and a grey one, and
    Pixel clusters open with "fit on several images" on."""
    viewer = make_napari_viewer()
    viewer.add_image(TOP, name="top")
    viewer.add_image(BOTTOM, name="bottom", scale=(2, 2), translate=(100, 5))
    viewer.add_image(data.coins()[::8, ::8], name="grey")
    viewer.layers.selection.active = viewer.layers["top"]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._pooled.value = True
    return viewer, widget


def without_time(model: dict) -> dict:
    return {**model, "provenance": {**model["provenance"], "created": None}}


def choose(widget, *names):
    widget._pooled_images.reset_choices()
    widget._pooled_images.value = [
        layer for layer in widget._pooled_images.choices if layer.name in names
    ]


def test_two_images_give_two_clusters_layers_equal_to_segment_many(two_photos, qtbot):
    viewer, widget = two_photos
    assert offered(widget._pooled_images)
    # only images of the chosen one's kind are offered (not the grey one); the chosen
    # image is chosen already
    assert [layer.name for layer in widget._pooled_images.choices] == ["top", "bottom"]
    assert [layer.name for layer in widget._pooled_images.value] == ["top"]
    choose(widget, "top", "bottom")
    widget._method.value = "kmeans"
    widget._n_clusters.value = 4
    widget._feature_widgets["color_space"].value = "lab"
    widget._outputs["outlines"].value = True
    press_run(widget, qtbot)

    pooled = npc.segment_many([TOP, BOTTOM], "kmeans", 4, color_space="lab", random_state=0)
    clusters = result_layers_of(viewer, "clusters")
    assert [layer.name for layer in clusters] == [
        "top k-means#1 clusters",
        "bottom k-means#1 clusters",
    ]
    for layer, seg, image in zip(clusters, pooled.results, ("top", "bottom")):
        np.testing.assert_array_equal(layer.data, seg.labels)
        # each layer's table is its image's; the colors are the shared ones
        assert list(layer.features["pixels"]) == list(seg.table["pixels"])
        assert list(layer.features["color"]) == list(pooled.table["color"])
        for label, rgb in enumerate(pooled.colors, start=1):
            np.testing.assert_allclose(layer.colormap.map(label)[:3], rgb, atol=1 / 255)
        # placed over its image
        source = viewer.layers[image]
        np.testing.assert_array_equal(layer.scale, source.scale)
        np.testing.assert_array_equal(layer.translate, source.translate)
        tag = layer.metadata[METADATA_KEY]
        assert without_time(tag["model"]) == without_time(pooled.model.to_dict())
        assert tag["model"] == clusters[0].metadata[METADATA_KEY]["model"]  # one model
        assert tag["pooled"]["images"] == ["top", "bottom"]
        assert tag["pooled"]["table"]["pixels"] == list(pooled.table["pixels"])
        assert tag["source"] == image
    assert clusters[0].metadata[METADATA_KEY]["pooled"]["index"] == 0
    assert clusters[1].metadata[METADATA_KEY]["pooled"]["index"] == 1
    # the clusters of both images together are those of one image holding all pixels
    both = npc.segment(np.concatenate([TOP, BOTTOM]), "kmeans", 4, color_space="lab")
    np.testing.assert_array_equal(
        np.concatenate([clusters[0].data, clusters[1].data]), both.labels
    )
    # every image got its chosen outputs too, quantized in the shared means
    quantized = result_layers_of(viewer, "quantized")
    assert len(quantized) == 2 and len(result_layers_of(viewer, "outlines")) == 2
    np.testing.assert_array_equal(quantized[1].data, pooled.results[1].quantized())
    assert "one model on 2 images, 4 clusters" in widget._status.value


def test_apply_model_takes_the_shared_model_of_a_pooled_layer(two_photos, qtbot):
    viewer, widget = two_photos
    choose(widget, "top", "bottom")
    widget._n_clusters.value = 3
    widget._outputs["quantized"].value = False
    press_run(widget, qtbot)
    third = np.ascontiguousarray(data.astronaut()[256::8, ::8])
    viewer.add_image(third, name="third")
    _, apply = viewer.window.add_plugin_dock_widget(PLUGIN, "Apply model")
    apply._image.value = viewer.layers["third"]
    apply._model_source.value = viewer.layers["bottom k-means#1 clusters"]
    press_run(apply, qtbot)
    pooled = npc.segment_many([TOP, BOTTOM], "kmeans", 3, random_state=0)
    applied = viewer.layers[-1]
    np.testing.assert_array_equal(applied.data, pooled.model.predict(third).labels)
    assert list(applied.features["color"]) == list(pooled.table["color"])


def test_a_pooled_gmm_gives_each_image_its_probabilities(two_photos, qtbot):
    viewer, widget = two_photos
    choose(widget, "top", "bottom")
    widget._method.value = "gmm"
    widget._n_clusters.value = 3
    widget._outputs["quantized"].value = False
    widget._outputs["probabilities"].value = True
    widget._outputs["uncertainty"].value = True
    press_run(widget, qtbot)
    pooled = npc.segment_many([TOP, BOTTOM], "gmm", 3, random_state=0)
    for seg, image in zip(pooled.results, ("top", "bottom")):
        clusters = viewer.layers[f"{image} Gaussian mixture#1 clusters"]
        np.testing.assert_array_equal(clusters.data, seg.labels)
        probabilities = viewer.layers[f"{image} Gaussian mixture#1 probabilities"]
        np.testing.assert_allclose(
            probabilities.data, np.moveaxis(seg.probabilities(), -1, 0), atol=1e-6
        )
        np.testing.assert_array_equal(probabilities.scale[1:], viewer.layers[image].scale)
        np.testing.assert_allclose(
            viewer.layers[f"{image} Gaussian mixture#1 uncertainty"].data,
            seg.uncertainty(),
            atol=1e-6,
        )


def test_replace_removes_the_earlier_pooled_layers_of_each_image(two_photos, qtbot):
    viewer, widget = two_photos
    choose(widget, "top", "bottom")
    widget._outputs["quantized"].value = False
    press_run(widget, qtbot)
    widget._replace.value = True
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    assert [layer.name for layer in result_layers_of(viewer, "clusters")] == [
        "top k-means#2 clusters",
        "bottom k-means#2 clusters",
    ]


def test_fewer_than_two_images_or_a_lazy_one_is_one_notification(
    two_photos, qtbot, error_notifications
):
    viewer, widget = two_photos
    press_run(widget, qtbot)  # only "top" chosen
    assert len(error_notifications) == 1 and error_notifications[0].startswith("images:")
    viewer.add_image(da.from_array(TOP, chunks=(20, 20, 3)), name="lazy")
    viewer.layers.selection.active = viewer.layers["top"]
    choose(widget, "top", "lazy")
    press_run(widget, qtbot)
    assert len(error_notifications) == 2
    assert error_notifications[1].startswith("images: 'lazy' is read chunk by chunk")
    assert not result_layers_of(viewer, "clusters")


@pytest.mark.parametrize("name", list(npc.METHODS))
def test_the_toggle_is_offered_for_the_methods_that_can_pool(pixel_clusters, name):
    """Whatever the method's name: those that fit rows and label new pixels."""
    _, widget = pixel_clusters
    widget._pooled.value = True
    widget._method.value = name
    able = npc.METHODS[name] in pooling_methods()
    assert widget._pooled.enabled == able
    assert offered(widget._pooled_images) == able
    assert widget.pools == able


def test_pooled_current_planes_of_two_stacks(make_napari_viewer, qtbot):
    """Stacks give their plane on screen, each result on its plane."""
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    first = rng.integers(0, 4, (3, 20, 20)).astype(np.uint8) * 60
    second = rng.integers(0, 4, (3, 16, 24)).astype(np.uint8) * 60
    viewer.add_image(first, name="a")
    viewer.add_image(second, name="b")
    viewer.dims.set_point(0, 1)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._pooled.value = True
    choose(widget, "a", "b")
    widget._n_clusters.value = 3
    widget._outputs["quantized"].value = False
    press_run(widget, qtbot)
    pooled = npc.segment_many([first[1:2], second[1:2]], "kmeans", 3, random_state=0)
    for image, seg in zip(("a", "b"), pooled.results):
        layer = viewer.layers[f"{image} (plane 1) k-means#1 clusters"]
        np.testing.assert_array_equal(layer.data, seg.labels)
        assert layer.translate[0] == 1


def test_cancel_during_a_pooled_fit_adds_nothing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random((200, 200, 3)), name="a", rgb=True)
    viewer.add_image(rng.random((150, 200, 3)), name="b", rgb=True)
    viewer.layers.selection.active = viewer.layers["a"]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._pooled.value = True
    choose(widget, "a", "b")
    widget._method.value = "gmm"
    widget._n_clusters.value = 8
    widget._method_params["gmm"]["max_iter"].value = 10_000
    widget._method_params["gmm"]["tol"].value = 0
    fits = []
    widget.run()
    widget._worker.yielded.connect(lambda step: fits.append(step) if step[0] == "fit" else None)
    qtbot.waitUntil(lambda: len(fits) >= 2, timeout=60_000)
    assert not widget._pooled_images.enabled  # the choices wait for the run
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert [layer.name for layer in viewer.layers] == ["a", "b"]
    assert widget._status.value.startswith("cancelled")
    assert widget._pooled.enabled and widget._pooled_images.enabled


def test_a_mask_layer_masks_every_image_of_a_pooled_fit(two_photos, qtbot):
    """ "only inside" with several images: the same Shapes layer over each (in world
    coordinates, mapped into each image's pixels)."""
    from napari_pixel_clusters.gui.masks import plan_mask

    viewer, widget = two_photos
    # a rectangle over the top image's middle and the bottom image's top-left corner
    viewer.add_shapes([np.array([[10, 0], [110, 40]])], shape_type="rectangle", name="box")
    viewer.layers.selection.active = viewer.layers["top"]
    choose(widget, "top", "bottom")
    widget._inside.value = viewer.layers["box"]
    widget._n_clusters.value = 3
    widget._outputs["quantized"].value = False
    press_run(widget, qtbot)
    masks = [
        plan_mask(viewer.layers["box"], viewer.layers[name]).read() for name in ("top", "bottom")
    ]
    assert all(mask.any() and not mask.all() for mask in masks)
    pooled = npc.segment_many([TOP, BOTTOM], "kmeans", 3, masks=masks, random_state=0)
    for image, seg in zip(("top", "bottom"), pooled.results):
        layer = viewer.layers[f"{image} k-means#1 clusters"]
        np.testing.assert_array_equal(layer.data, seg.labels)
        assert layer.metadata[METADATA_KEY]["params"]["mask"]["layer"] == "box"
    assert not (viewer.layers["top k-means#1 clusters"].data[~masks[0]]).any()


def test_the_cluster_table_edits_one_pooled_layer_at_a_time(two_photos, qtbot):
    """Each image's clusters layer is its own result in the Cluster table: a rename or a
    merge on one leaves the others (and their shared numbering) as they were."""
    viewer, widget = two_photos
    choose(widget, "top", "bottom")
    widget._n_clusters.value = 4
    widget._outputs["quantized"].value = False
    press_run(widget, qtbot)
    top, bottom = (viewer.layers[f"{name} k-means#1 clusters"] for name in ("top", "bottom"))
    bottom_before = bottom.data.copy()
    viewer.layers.selection.active = top
    _, table = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    table._layer.value = top
    table.rename(2, "sky")
    table.select_rows([0, 1])
    table.merge_selected()
    qtbot.waitUntil(lambda: not table.busy, timeout=60_000)  # merged in a worker
    pooled = npc.segment_many([TOP, BOTTOM], "kmeans", 4, random_state=0)
    merged = pooled.results[0].labels.copy()
    merged[merged == 2] = 1
    np.testing.assert_array_equal(top.data, merged)
    np.testing.assert_array_equal(bottom.data, bottom_before)  # not propagated
    assert list(bottom.features["name"]) == [f"cluster {i}" for i in range(1, 5)]
    assert 2 not in set(top.data.ravel()) and 2 in set(bottom.data.ravel())
