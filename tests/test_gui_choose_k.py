"""Drive the "Choose number of clusters" widget: sweep, plots, click a k, save."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

import napari_pixel_clusters as npc
from conftest import blob_image
from napari_pixel_clusters.gui import _panel
from napari_pixel_clusters.gui.layers import METADATA_KEY
from napari_pixel_clusters.gui.state import shared_settings

PLUGIN = "napari-pixel-clusters"


@pytest.fixture
def choose_k(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image(4), name="blobs", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Choose number of clusters")
    return viewer, widget


def run_sweep(widget, qtbot):
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)


def curves(axes):
    """The score curves of a panel (not the elbow mark, not the suggested-k line)."""
    return [
        line
        for line in axes.get_lines()
        if line.get_marker() != "None" and not line.get_label().startswith("elbow")
    ]


@pytest.mark.parametrize("method, top_scores", [("kmeans", 1), ("gmm", 2)])
def test_sweep_is_plotted_with_the_suggested_k(choose_k, qtbot, method, top_scores):
    viewer, widget = choose_k
    widget._method.value = method
    widget._k_min.value, widget._k_max.value = 2, 7
    widget._sample_size.value = 1000
    assert not widget._save_plot.enabled and not widget._save_table.enabled  # nothing yet
    run_sweep(widget, qtbot)
    assert widget._save_plot.enabled and widget._save_table.enabled
    expected = npc.sweep(blob_image(4), method, range(2, 8), sample_size=1000, random_state=0)
    pd.testing.assert_frame_equal(
        widget.sweep.table.drop(columns="seconds"), expected.table.drop(columns="seconds")
    )
    assert widget.sweep.suggested_k == 4 and "k=4" in widget._status.value
    top, bottom = widget.axes
    assert [len(line.get_xdata()) for line in curves(top)] == [6] * top_scores
    assert [len(line.get_xdata()) for line in curves(bottom)] == [6]
    marks = [line for line in top.get_lines() if line.get_marker() == "None"]
    assert [line.get_xdata()[0] for line in marks] == [4]
    legend = [text.get_text() for text in top.get_legend().get_texts()]
    if method == "gmm":  # BIC and AIC: two colors, named in the legend
        assert legend[:2] == ["BIC", "AIC"]
        bic, aic = curves(top)
        assert to_hex(bic.get_color()) != to_hex(aic.get_color())
    else:  # the elbow is marked on the inertia curve, where the suggestion is
        elbow = [line for line in top.get_lines() if line.get_label().startswith("elbow")]
        assert widget.sweep.elbow_k == 4 and [tuple(line.get_xdata()) for line in elbow] == [(4,)]
        assert legend == ["inertia", "elbow (k=4)", "suggested k=4"]
    assert [layer.name for layer in viewer.layers] == ["blobs"]  # a sweep adds no layer


def test_saves_stay_disabled_after_a_cancelled_first_sweep(choose_k, qtbot):
    _, widget = choose_k
    widget._k_min.value, widget._k_max.value = 2, 40
    widget.run()
    widget.cancel()  # stops at the next k; the panel then re-enables its controls...
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert widget.sweep is None and widget._status.value.startswith("cancelled")
    assert widget._method.enabled
    assert not widget._save_plot.enabled and not widget._save_table.enabled  # ...not these


def test_clicking_k_in_a_lab_sweep_makes_pixel_clusters_run_in_lab(choose_k, qtbot):
    """Regression (issue 12): clicking k in a Lab sweep opened Pixel clusters in RGB."""
    viewer, widget = choose_k
    settings = shared_settings(viewer)
    widget._controls["color_space"].value = "lab"  # set in Choose k...
    assert settings.color_space == "lab"  # ...so it is shared
    widget._k_min.value, widget._k_max.value = 2, 5
    widget._sample_size.value = 500
    run_sweep(widget, qtbot)
    assert widget.sweep.params["color_space"] == "lab"
    settings.color_space = "hsv"  # changed since (e.g. in Pixel clusters): Choose k follows
    assert widget._controls["color_space"].value == "hsv"
    chosen = []
    settings.k_chosen.connect(lambda *args: chosen.append(args))
    axes = widget.axes[1]
    click(widget.canvas, *axes.transData.transform((3, widget.sweep.table["silhouette"].iloc[1])))
    # the sweep's settings are shared again, with the k clicked
    assert (settings.color_space, settings.n_clusters) == ("lab", 3)
    assert settings.image is viewer.layers["blobs"] and chosen == [("kmeans", 3, False)]
    assert widget._controls["color_space"].value == "lab"
    pixel_clusters = viewer.window.dock_widgets["Pixel clusters (napari-pixel-clusters)"]
    assert pixel_clusters._feature_widgets["color_space"].value == "lab"
    assert (pixel_clusters._n_clusters.value, pixel_clusters._method.value) == (3, "kmeans")
    widget._run_on_click.value = True
    pixel_clusters = widget.choose_k(4)  # the public way, and run
    qtbot.waitUntil(lambda: pixel_clusters._worker is None, timeout=60_000)
    [(_, clusters)] = _panel.clusters_layers(viewer)
    params = clusters.metadata[METADATA_KEY]["params"]
    assert (params["color_space"], params["n_clusters_requested"]) == ("lab", 4)
    assert clusters.data.max() == 4


def test_choose_k_and_pixel_clusters_follow_each_other(choose_k):
    """Regression (issue 12): neither widget picked up the other's feature settings."""
    viewer, widget = choose_k
    viewer.add_image(blob_image(3), name="other", rgb=True)
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    pixel_clusters._feature_widgets["color_space"].value = "hsv"  # Pixel clusters -> Choose k
    pixel_clusters._random_state.value = 11
    assert widget._controls["color_space"].value == "hsv"
    assert widget._controls["random_state"].value == 11
    widget._controls["spatial_weight"].value = 0.5  # Choose k -> Pixel clusters
    widget._controls["standardize"].value = True
    widget._image.value = viewer.layers["blobs"]
    assert pixel_clusters._feature_widgets["spatial_weight"].value == 0.5
    assert pixel_clusters._feature_widgets["standardize"].value is True
    assert pixel_clusters._image.value is viewer.layers["blobs"]
    assert widget._options() == {
        "color_space": "hsv",
        "spatial_weight": 0.5,
        "standardize": True,
        "random_state": 11,
    }


def click(canvas, x, y):
    """A left click on the plot at display coordinates (x, y), as matplotlib delivers it."""
    from matplotlib.backend_bases import MouseButton, MouseEvent

    MouseEvent("button_press_event", canvas, x, y, MouseButton.LEFT)._process()


def test_saving_the_plot_and_table(choose_k, qtbot, tmp_path):
    _, widget = choose_k
    widget._k_min.value, widget._k_max.value = 2, 4
    run_sweep(widget, qtbot)
    assert widget.axes[0].get_title().startswith("suggested k = 4, the edge: try a wider range")
    assert widget._status.value.endswith("k=4 is the largest k tried; try a wider range.")
    widget.save_plot(str(tmp_path / "sweep.png"))
    widget.save_table(str(tmp_path / "sweep.csv"))
    assert (tmp_path / "sweep.png").stat().st_size > 5_000
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(table["k"]) == [2, 3, 4]
    np.testing.assert_allclose(table["inertia"], widget.sweep.table["inertia"])


def test_bad_range_is_a_notification(choose_k, qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr(_panel, "notify_error", shown.append)
    _, widget = choose_k
    widget._k_min.value, widget._k_max.value = 5, 5
    widget.run()
    assert shown and shown[-1].startswith("k_values:") and widget._worker is None


def test_plot_follows_the_napari_theme(choose_k, qtbot):
    viewer, widget = choose_k
    viewer.theme = "light"
    from matplotlib.colors import to_hex
    from napari.utils.theme import get_theme

    assert to_hex(widget.figure.get_facecolor()) == to_hex(get_theme("light").background.as_hex())


def test_a_large_multiscale_image_is_swept_from_its_chunk_histogram(choose_k, qtbot):
    import dask.array as da

    viewer, widget = choose_k
    image = np.tile(blob_image(4), (3, 3, 1))
    pyramid = [
        da.from_array(image, chunks=(64, 64, 3)),
        da.from_array(image[::2, ::2], chunks=(64, 64, 3)),
    ]
    viewer.add_image(pyramid, name="slide", rgb=True, multiscale=True)
    widget._image.value = viewer.layers["slide"]
    widget._k_min.value, widget._k_max.value = 2, 6
    stages = []
    widget.run()
    widget._worker.yielded.connect(lambda step: stages.append(step[0]))
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    in_memory = npc.sweep(image, "kmeans", range(2, 7), random_state=0)
    assert "histogram" in stages
    np.testing.assert_allclose(widget.sweep.table["inertia"], in_memory.table["inertia"])
    assert widget.sweep.suggested_k == in_memory.suggested_k == 4
    assert widget.sweep.params["compression"].startswith("lazy: distinct values")


@pytest.mark.parametrize("size", [(1440, 900), (1366, 768)])
def test_docked_under_pixel_clusters_the_window_keeps_its_height(make_napari_viewer, qtbot, size):
    """Regression (issue 12): Choose k's minimum height (~800 px) grew a 1440x900 window
    to 1458 px. Now it scrolls in its dock, yet takes a fair share of the window."""
    viewer = make_napari_viewer(show=True)
    viewer.add_image(blob_image(4), name="blobs", rgb=True)
    window = viewer.window._qt_window
    window.resize(*size)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Choose number of clusters")
    # room to see its controls and scroll to the plot (taken once the dock shows)
    qtbot.waitUntil(lambda: dock.height() >= 0.4 * size[1], timeout=5_000)
    assert window.height() <= size[1]
    assert dock.minimumSizeHint().height() <= 450 and dock.minimumHeight() <= 450
    run_sweep(widget, qtbot)
    qtbot.wait(50)
    assert window.height() <= size[1]
    scroll = widget.root_native_widget
    top = widget.canvas.mapTo(scroll.widget(), widget.canvas.rect().topLeft()).y()
    assert scroll.verticalScrollBar().value() > 0 or top < dock.height()  # the plot in view


def test_a_chosen_k_reaches_pixel_clusters_through_the_shared_settings_only(
    choose_k, qtbot, monkeypatch
):
    """Choose k knows Pixel clusters only through the shared settings: with the widget it
    opens replaced by an object without attributes, the k still arrives (method, k and
    the sweep's features) when Pixel clusters is opened after the choice."""
    viewer, widget = choose_k
    settings = shared_settings(viewer)
    widget._method.value = "gmm"
    widget._controls["color_space"].value = "lab"
    widget._k_min.value, widget._k_max.value = 2, 4
    widget._sample_size.value = 500
    run_sweep(widget, qtbot)
    assert widget.sweep.method == "gmm"
    settings.color_space = "hsv"  # changed since the sweep
    opened = []
    real_open = viewer.window.add_plugin_dock_widget

    def open_nothing(plugin, name=None, **kwargs):  # any attribute use would fail
        opened.append(name)
        return None, object()

    monkeypatch.setattr(viewer.window, "add_plugin_dock_widget", open_nothing)
    widget.choose_k(3)
    assert opened == ["Pixel clusters"]
    assert (settings.method, settings.n_clusters, settings.color_space) == ("gmm", 3, "lab")
    monkeypatch.setattr(viewer.window, "add_plugin_dock_widget", real_open)
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    assert (pixel_clusters._method.value, pixel_clusters._n_clusters.value) == ("gmm", 3)
    assert pixel_clusters._feature_widgets["color_space"].value == "lab"


def test_the_methods_offered_and_their_plots_come_from_the_registry(
    make_napari_viewer, monkeypatch
):
    """Every sweepable method (and only those) is offered, each plotting its declared
    scores on top: a method registered the documented way appears with its scores."""
    import dataclasses

    made_up = dataclasses.replace(
        npc.METHODS["gmm"], name="made_up_mixture", title="Made-up mixture"
    )
    not_sweepable = dataclasses.replace(npc.METHODS["kmeans"], name="no_sweep", sweep_scores=())
    monkeypatch.setitem(npc.METHODS, made_up.name, made_up)
    monkeypatch.setitem(npc.METHODS, not_sweepable.name, not_sweepable)
    viewer = make_napari_viewer()
    viewer.add_image(blob_image(4), name="blobs", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Choose number of clusters")
    sweepable = [m.name for m in npc.METHODS.values() if m.sweepable]
    assert list(widget._method.choices) == sweepable
    assert "made_up_mixture" in sweepable and "no_sweep" not in sweepable
    assert {"kmeans", "gmm"} <= set(sweepable) and "canny" not in sweepable
    for name in sweepable:
        widget._method.value = name  # before a sweep: the axes of its scores
        top, bottom = (axes.get_ylabel() for axes in widget.axes)
        shown = {"inertia": "inertia", "bic": "BIC", "aic": "AIC"}
        assert top == " / ".join(shown[s] for s in npc.METHODS[name].sweep_scores)
        assert bottom == "silhouette"


def test_auto_color_space_is_swept_and_handed_back_as_auto(choose_k, qtbot):
    """The color space starts at "auto" (None: the method's default) in both widgets; a k
    clicked after an "auto" sweep brings Pixel clusters back to "auto"."""
    viewer, widget = choose_k
    settings = shared_settings(viewer)
    control = widget._controls["color_space"]
    assert control.value is None and control.native.currentText() == "auto"
    assert control.tooltip.endswith("leaves it to the method: k-means uses rgb.")
    widget._k_min.value, widget._k_max.value = 2, 4
    widget._sample_size.value = 500
    run_sweep(widget, qtbot)
    assert widget.sweep.params["color_space"] is None
    expected = npc.sweep(blob_image(4), "kmeans", range(2, 5), sample_size=500, random_state=0)
    pd.testing.assert_frame_equal(
        widget.sweep.table.drop(columns="seconds"), expected.table.drop(columns="seconds")
    )
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    pixel_clusters._feature_widgets["color_space"].value = "lab"  # changed since the sweep
    assert settings.color_space == "lab" and control.value == "lab"
    widget.choose_k(3)
    assert settings.color_space is None and control.value is None
    assert pixel_clusters._feature_widgets["color_space"].value is None


def test_only_the_feature_options_the_method_takes_are_shown_and_swept(
    make_napari_viewer, qtbot, monkeypatch
):
    """A sweepable method that takes only some feature options (declared, not named):
    Choose k hides the others and does not send them, even when they are shared."""
    import dataclasses

    method = dataclasses.replace(
        npc.METHODS["kmeans"],
        name="standardized_kmeans",
        title="Standardized k-means",
        takes_features=("standardize",),
    )
    monkeypatch.setitem(npc.METHODS, method.name, method)
    viewer = make_napari_viewer()
    viewer.add_image(blob_image(4), name="blobs", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Choose number of clusters")
    settings = shared_settings(viewer)
    settings.update(spatial_weight=0.5, color_space="lab", standardize=True)
    shown = lambda: {n for n, c in widget._controls.items() if not c.native.isHidden()}  # noqa: E731
    assert shown() == {"color_space", "spatial_weight", "standardize", "random_state"}
    widget._method.value = method.name
    assert shown() == {"standardize", "random_state"}
    assert widget._options() == {"standardize": True, "random_state": 0}
    widget._k_min.value, widget._k_max.value = 2, 4
    widget._sample_size.value = 500
    run_sweep(widget, qtbot)
    assert widget.sweep.method == method.name
    expected = npc.sweep(
        blob_image(4), "kmeans", range(2, 5), sample_size=500, random_state=0, standardize=True
    )
    pd.testing.assert_frame_equal(
        widget.sweep.table.drop(columns="seconds"), expected.table.drop(columns="seconds")
    )
