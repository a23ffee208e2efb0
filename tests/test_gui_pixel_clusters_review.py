"""Pixel clusters as reviewed in issue 12: advanced section, spin boxes and "auto", fits
small screens, right input image, Ward and Canny details, method summary, whole-run time,
shared settings; Apply model keeps the names and colors typed in the cluster table."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qtpy.QtGui import QValidator
from skimage import data, feature

import napari_pixel_clusters as npc
from conftest import fluorescence_plane
from napari_pixel_clusters.core import METHODS
from napari_pixel_clusters.core.methods.ward import auto_downscale
from napari_pixel_clusters.gui import widget as widget_module
from napari_pixel_clusters.gui.layers import METADATA_KEY
from napari_pixel_clusters.gui.state import shared_settings

PLUGIN, WIDGET = "napari-pixel-clusters", "Pixel clusters"
SMALL_PHOTO = np.ascontiguousarray(data.astronaut()[::8, ::8])  # 64 x 64 RGB


def offered(widget) -> bool:
    """Whether the widget is shown to the user (not hidden), even in a hidden viewer."""
    return not widget.native.isHidden()


@pytest.fixture
def pixel_clusters(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(SMALL_PHOTO, name="astronaut")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    return viewer, widget


def press_run(widget, qtbot):
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)


def results(viewer, output="clusters"):
    return [
        layer
        for layer in viewer.layers
        if layer.metadata.get(METADATA_KEY, {}).get("output") == output
    ]


def test_advanced_settings_are_folded_as_the_registry_declares(pixel_clusters):
    _, widget = pixel_clusters
    for name, method in METHODS.items():
        widget._method.value = name
        shown = {
            p.name
            for p in method.params
            if p.in_widget and offered(widget._method_params[name][p.name])
        }
        assert shown == {p.name for p in method.params if p.in_widget and not p.advanced}
        assert not offered(widget._random_state)  # folded too
    widget._method.value = "gmm"
    assert {"n_init", "max_iter", "tol", "reg_covar"}.isdisjoint(
        {n for n, w in widget._method_params["gmm"].items() if offered(w)}
    )
    widget._advanced_toggle.native.click()  # unfold
    assert all(offered(w) for w in widget._method_params["gmm"].values())
    assert (
        offered(widget._random_state)
        and "\N{BLACK DOWN-POINTING SMALL TRIANGLE}" in widget._advanced_toggle.text
    )
    widget._method.value = "kmeans"  # stays unfolded for another method
    assert all(offered(w) for w in widget._method_params["kmeans"].values())
    widget._advanced_toggle.native.click()  # fold again
    assert not any(offered(w) for w in widget._method_params["kmeans"].values())


def test_numbers_are_spin_boxes_that_take_small_tolerances_and_auto(pixel_clusters):
    _, widget = pixel_clusters
    from qtpy.QtWidgets import QAbstractSpinBox

    gmm = widget._method_params["gmm"]
    for name in ("tol", "reg_covar"):
        assert isinstance(gmm[name].native, QAbstractSpinBox)
    assert gmm["reg_covar"].value == 1e-6 and gmm["reg_covar"].native.text() == "1e-06"
    tol = widget._method_params["kmeans"]["tol"]
    assert tol.native.text() == "0.0001"
    tol.native.lineEdit().setText("2e-5")  # typed as people write it
    tol.native.interpretText()
    assert tol.value == 2e-5
    tol.native.stepBy(1)  # tolerances step by factors of 10
    assert tol.value == pytest.approx(2e-4)
    assert tol.native.validate("lots", 0)[0] == QValidator.State.Invalid
    widget._method.value = "kmeans"
    assert widget._options()["tol"] == pytest.approx(2e-4)

    downscale = widget._method_params["ward"]["downscale"]  # optional: "auto"
    widget._method.value = "ward"
    assert downscale.native.text() == "auto" and downscale.value is None
    assert widget._options()["downscale"] is None
    downscale.native.stepBy(1)
    assert downscale.value == pytest.approx(0.05)
    downscale.native.stepBy(-1)  # the lowest number first, then "auto" below it
    assert downscale.value == 0.001
    downscale.native.stepBy(-1)
    assert downscale.native.text() == "auto" and downscale.value is None
    assert widget._min_area.native.text() == "auto" and widget._min_area.value is None
    widget._method.value = "canny"
    for name in ("low_threshold", "high_threshold"):
        assert widget._method_params["canny"][name].native.text() == "auto"


def test_ward_runs_with_auto_downscale_without_random_state_and_a_busy_bar(
    make_napari_viewer, qtbot
):
    """Regression (issue 12): Ward showed a random state that does nothing and a progress
    bar stuck at 10% while scikit-learn merged."""
    viewer = make_napari_viewer()
    coins = data.coins()[::2, ::2].copy()  # 38,000 px: 'auto' clusters them all
    viewer.add_image(coins, name="coins")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "ward"
    widget._advanced_toggle.native.click()
    assert not offered(widget._random_state)
    assert not offered(widget._advanced_toggle)  # nothing else is advanced for Ward
    widget._n_clusters.value = 3
    seen = []
    worker = widget.run()
    worker.yielded.connect(
        lambda step: seen.append((tuple(step), widget._progress.max, widget._status.value))
    )
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    merging = [entry for entry in seen if entry[0][0] == "fit" and 0.1 < entry[0][1] < 0.95]
    assert merging and all(entry[1] == 100 for entry in merging)  # the bar moves (issue 14)
    after = [entry for entry in seen if entry[0][0] == "predict"]
    assert after and after[0][1] == 100  # a progress bar again after the merge
    [clusters] = results(viewer)
    expected = npc.segment(coins, "ward", 3)
    np.testing.assert_array_equal(clusters.data, expected.labels)
    params = clusters.metadata[METADATA_KEY]["params"]
    assert params["downscale"] == auto_downscale(coins.shape) and "random_state" not in params


def test_method_summary_shows_under_the_method(pixel_clusters):
    _, widget = pixel_clusters
    texts = set()
    for name, method in METHODS.items():
        widget._method.value = name
        assert widget._summary.value == method.summary and offered(widget._summary)
        texts.add(widget._summary.value)
    assert len(texts) == len(METHODS)


def test_image_choice_never_follows_onto_a_result(pixel_clusters, qtbot):
    """Regression (issue 12): selecting our quantized layer made it the image, and Run
    clustered a result."""
    viewer, widget = pixel_clusters
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    source = viewer.layers["astronaut"]
    [quantized] = results(viewer, "quantized")
    viewer.add_image(data.camera()[::8, ::8], name="camera")
    labels = [label for label, _ in widget._image_layers()]
    assert labels == ["astronaut", "camera", f"{quantized.name} (result)"]  # sources first
    viewer.layers.selection.active = source
    viewer.layers.selection.active = quantized  # the user clicks through the results
    assert widget._image.value is source
    press_run(widget, qtbot)
    newest = results(viewer)[-1]
    assert newest.metadata[METADATA_KEY]["source_layer"] == "astronaut"
    np.testing.assert_array_equal(newest.data, npc.segment(SMALL_PHOTO, "kmeans", 3).labels)
    viewer.layers.selection.active = viewer.layers["camera"]  # sources are still followed
    assert widget._image.value is viewer.layers["camera"]


def test_canny_defaults_find_edges_on_16_bit_and_none_found_adds_nothing(
    make_napari_viewer, qtbot, monkeypatch
):
    """Regression (issue 12): Canny's defaults found no edge on a 16-bit fluorescence
    plane, and an empty layer was added without a hint."""
    warnings = []
    monkeypatch.setattr(widget_module, "show_warning", warnings.append)
    viewer = make_napari_viewer()
    plane = fluorescence_plane()
    viewer.add_image(plane, name="cells")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "canny"
    press_run(widget, qtbot)
    [edges] = results(viewer, "edges")
    largest = float(plane.max())
    np.testing.assert_array_equal(
        edges.data,
        feature.canny(plane, sigma=1.0, low_threshold=0.1 * largest, high_threshold=0.2 * largest),
    )
    assert edges.data.sum() > 100 and not warnings

    params = widget._method_params["canny"]
    params["low_threshold"].value, params["high_threshold"].value = 30_000, 40_000
    press_run(widget, qtbot)
    assert len(results(viewer, "edges")) == 1  # nothing added...
    assert "nothing found" in warnings[-1] and "low threshold 3e+04" in warnings[-1]
    assert "Lower the thresholds" in warnings[-1]  # ...and says what to change
    assert widget._status.value.startswith("Canny edges: nothing found")


def test_status_reports_the_whole_run_time(pixel_clusters, qtbot, monkeypatch):
    """Regression (issue 12): the status line reported only the fit time."""
    _viewer, widget = pixel_clusters
    build = widget_module.result_layers

    def slow_build(*args, **kwargs):
        time.sleep(0.6)  # e.g. outlines and layers of a large image
        return build(*args, **kwargs)

    monkeypatch.setattr(widget_module, "result_layers", slow_build)
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    status = widget._status.value
    total, fit = (
        float(part.split(" s")[0]) for part in (status.split(" in ")[1], status.split("(fit ")[1])
    )
    assert status.startswith("k-means: 3 clusters in ")
    assert total >= fit + 0.5


def test_shared_settings_both_ways(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    settings = shared_settings(viewer)
    assert settings.image is viewer.layers["astronaut"]
    widget._feature_widgets["spatial_weight"].value = 0.5  # widget -> settings
    widget._random_state.value = 7
    widget._n_clusters.value = 4
    assert (settings.spatial_weight, settings.random_state, settings.n_clusters) == (0.5, 7, 4)
    settings.color_space = "lab"  # settings -> widget
    settings.standardize = True
    assert widget._feature_widgets["color_space"].value == "lab"
    assert widget._feature_widgets["standardize"].value is True
    other = viewer.add_image(SMALL_PHOTO[::-1].copy(), name="flipped")
    viewer.layers.selection.active = viewer.layers["astronaut"]
    settings.image = other
    assert widget._image.value is other
    settings.choose_k("gmm", 3, run=True)  # a k clicked in a sweep, run
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    [clusters] = results(viewer)
    params = clusters.metadata[METADATA_KEY]["params"]
    assert (
        params["method"],
        params["n_clusters_requested"],
        params["color_space"],
        params["random_state"],
        params["standardize"],
    ) == ("gmm", 3, "lab", 7, True)
    assert clusters.metadata[METADATA_KEY]["source_layer"] == "flipped"


def test_random_colors_act_on_the_chosen_result_only(pixel_clusters, qtbot):
    """Regression (issue 12): "random label colors" recolored every earlier result."""
    viewer, widget = pixel_clusters
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    press_run(widget, qtbot)
    first, second = results(viewer)
    first_colors = first.colormap.map(np.arange(1, 4)).copy()
    second_colors = second.colormap.map(np.arange(1, 4)).copy()
    viewer.layers.selection.active = first
    widget._random_colors.value = True
    assert not np.allclose(first.colormap.map(np.arange(1, 4)), first_colors)
    np.testing.assert_allclose(second.colormap.map(np.arange(1, 4)), second_colors)
    widget._random_colors.value = False
    np.testing.assert_allclose(first.colormap.map(np.arange(1, 4)), first_colors)


def test_apply_model_keeps_the_names_and_colors_of_the_table(pixel_clusters, qtbot):
    """Regression (issue 12): Apply model dropped the names typed in Cluster table (the
    model was read from the run's metadata, not from the layer's current table)."""
    viewer, widget = pixel_clusters
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    [clusters] = results(viewer)
    features = clusters.features.copy()
    features.loc[features["index"] == 2, ["name", "color"]] = ["sky", "#ff00ff"]
    clusters.features = features  # as Cluster table writes a rename and a recolor
    viewer.add_image(SMALL_PHOTO[:, ::-1].copy(), name="mirrored")
    _, apply_model = viewer.window.add_plugin_dock_widget(PLUGIN, "Apply model")
    apply_model._image.value = viewer.layers["mirrored"]
    apply_model._model_source.value = clusters
    press_run(apply_model, qtbot)
    applied = results(viewer)[-1]
    assert applied.metadata[METADATA_KEY]["source_layer"] == "mirrored"
    assert list(applied.features["name"]) == list(clusters.features["name"])
    assert list(applied.features["color"]) == list(clusters.features["color"])
    assert list(applied.features["name"])[1] == "sky"
    np.testing.assert_allclose(applied.colormap.map(2), [1, 0, 1, 1])


@pytest.mark.parametrize("size", [(1440, 900), (1366, 768)])
def test_fits_the_screen_and_scrolls_in_its_dock(make_napari_viewer, qtbot, size):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(SMALL_PHOTO, name="astronaut")
    window = viewer.window._qt_window
    window.resize(*size)
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "gmm"
    widget._outputs["outlines"].value = True
    widget._advanced_toggle.native.click()  # every row shown: the tallest it gets
    qtbot.wait(100)
    assert window.height() <= size[1]
    assert widget.native.minimumSizeHint().height() <= 450
    assert dock.minimumSizeHint().height() <= 450
    inner = widget.native.widget()  # the controls, in a scroll area
    assert inner.sizeHint().height() > 450  # taller than the minimum: it scrolls
    widget.native.resize(widget.native.width(), 300)
    qtbot.wait(50)
    assert widget.native.verticalScrollBar().maximum() > 0


def test_a_closed_widget_no_longer_follows_the_shared_settings(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(SMALL_PHOTO, name="astronaut")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    settings = shared_settings(viewer)
    assert widget._followers
    viewer.window.remove_dock_widget("all")
    settings.color_space = "hsv"
    settings.choose_k("kmeans", 3, run=True)  # a closed widget does not run
    assert widget._worker is None and not widget._followers  # and follows no more
    qtbot.wait(50)
    assert [layer.name for layer in viewer.layers] == ["astronaut"]
