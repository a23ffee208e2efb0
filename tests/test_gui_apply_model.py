"""Drive the "Apply model" widget: a model from a clusters layer or a file, on images
and stacks."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

import napari_pixel_clusters as npc
from conftest import SMALL_PHOTO, press_run, result_layers_of
from napari_pixel_clusters.gui import _panel
from napari_pixel_clusters.gui.apply_model import FROM_FILE
from napari_pixel_clusters.gui.layers import METADATA_KEY

PLUGIN = "napari-pixel-clusters"


@pytest.fixture
def fitted(make_napari_viewer, qtbot):
    """A viewer with the top half of the astronaut clustered, and the Apply model widget."""
    viewer = make_napari_viewer()
    top, bottom = data.astronaut()[:256:2, ::2].copy(), data.astronaut()[256::2, ::2].copy()
    viewer.add_image(top, name="top")
    _, clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    clusters._n_clusters.value = 4
    clusters._outputs["quantized"].value = False
    clusters._run_button.native.click()
    qtbot.waitUntil(lambda: clusters._worker is None, timeout=60_000)
    viewer.add_image(bottom, name="bottom")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Apply model")
    return viewer, widget, top, bottom


def test_apply_the_model_of_a_clusters_layer_to_another_image(fitted, qtbot):
    viewer, widget, top, bottom = fitted
    clusters = viewer.layers["top k-means#1 clusters"]
    assert widget._model_source.value is clusters and widget._image.value.name == "bottom"
    press_run(widget, qtbot)
    applied = viewer.layers["bottom (model) k-means#1 clusters"]
    model = npc.segment(top, "kmeans", 4, random_state=0).model
    np.testing.assert_array_equal(applied.data, model.predict(bottom).labels)
    assert applied.data.dtype == np.uint8  # 4 clusters: napari draws uint8 labels as they are
    assert list(applied.features["color"]) == list(clusters.features["color"])
    np.testing.assert_allclose(applied.colormap.map(2), clusters.colormap.map(2))
    np.testing.assert_array_equal(viewer.layers["bottom"].data, bottom)


def test_apply_a_saved_model_file_to_every_plane(fitted, qtbot, tmp_path):
    viewer, widget, top, bottom = fitted
    path = npc.save_model(npc.segment(top, "kmeans", 4, random_state=0), tmp_path / "m.json")
    stack = np.stack([bottom, top, bottom[::-1]])
    viewer.add_image(stack, name="stack", rgb=True)
    widget._image.value = viewer.layers["stack"]
    widget._model_source.value = FROM_FILE
    widget._model_file.value = path
    planes = []
    worker = widget.run()
    worker.yielded.connect(lambda step: planes.append(step) if step[0] == "plane" else None)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    labels = viewer.layers["stack (model) k-means#1 clusters"].data
    model = npc.load_model(path)
    for z in range(3):
        np.testing.assert_array_equal(labels[z], model.predict(stack[z]).labels)
    assert len(planes) >= 2  # one step per plane (the first is taken before the thread)


def test_an_image_that_does_not_fit_the_model_is_a_notification(fitted, qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr(_panel, "notify_error", shown.append)
    viewer, widget, _, _ = fitted
    viewer.add_image(data.coins(), name="coins")
    widget._image.value = viewer.layers["coins"]
    widget.run()
    assert shown[-1].startswith("image: this model was fitted on a rgb image")
    widget._model_source.value = FROM_FILE
    widget.run()
    assert shown[-1].startswith("model file: choose a model file")
    assert "coins (model) k-means#1 clusters" not in [layer.name for layer in viewer.layers]


def test_a_model_labels_a_large_multiscale_image_lazily(fitted, qtbot):
    import dask.array as da

    viewer, widget, top, bottom = fitted
    big = np.tile(bottom, (2, 2, 1))
    pyramid = [
        da.from_array(big, chunks=(64, 64, 3)),
        da.from_array(big[::2, ::2], chunks=(64, 64, 3)),
    ]
    viewer.add_image(pyramid, name="slide", rgb=True, multiscale=True)
    widget._image.value = viewer.layers["slide"]
    press_run(widget, qtbot)
    applied = viewer.layers["slide (model) k-means#1 clusters"]
    model = npc.segment(top, "kmeans", 4, random_state=0).model
    expected = model.predict(big).labels
    assert applied.multiscale and all(isinstance(level, da.Array) for level in applied.data)
    assert {level.dtype for level in applied.data} == {expected.dtype}  # lazy: as it is
    np.testing.assert_array_equal(applied.data[0].compute(), expected)
    np.testing.assert_array_equal(applied.data[1].compute(), expected[::2, ::2])
    counts = np.bincount(expected.ravel())[1:]
    np.testing.assert_array_equal(applied.features["pixels"], counts[counts > 0])


def test_apply_model_keeps_the_names_and_colors_of_the_table(pixel_clusters, qtbot):
    """Regression (issue 12): Apply model dropped the names typed in Cluster table (the
    model was read from the run's metadata, not from the layer's current table)."""
    viewer, widget = pixel_clusters
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    [clusters] = result_layers_of(viewer)
    features = clusters.features.copy()
    features.loc[features["index"] == 2, ["name", "color"]] = ["sky", "#ff00ff"]
    clusters.features = features  # as Cluster table writes a rename and a recolor
    viewer.add_image(SMALL_PHOTO[:, ::-1].copy(), name="mirrored")
    _, apply_model = viewer.window.add_plugin_dock_widget(PLUGIN, "Apply model")
    apply_model._image.value = viewer.layers["mirrored"]
    apply_model._model_source.value = clusters
    press_run(apply_model, qtbot)
    applied = result_layers_of(viewer)[-1]
    assert applied.metadata[METADATA_KEY]["source_layer"] == "mirrored"
    assert list(applied.features["name"]) == list(clusters.features["name"])
    assert list(applied.features["color"]) == list(clusters.features["color"])
    assert list(applied.features["name"])[1] == "sky"
    np.testing.assert_allclose(applied.colormap.map(2), [1, 0, 1, 1])
