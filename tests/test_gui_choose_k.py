"""Drive the "Choose number of clusters" widget: sweep, plots, click a k, save."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import napari_pixel_clusters as npc
from napari_pixel_clusters.gui import _panel
from test_sweep import blob_image

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


def plotted_points(axes):
    return [len(line.get_xdata()) for line in axes.get_lines() if line.get_marker() != "None"]


@pytest.mark.parametrize("method, top_scores", [("kmeans", 1), ("gmm", 2)])
def test_sweep_is_plotted_with_the_suggested_k(choose_k, qtbot, method, top_scores):
    viewer, widget = choose_k
    widget._method.value = method
    widget._k_min.value, widget._k_max.value = 2, 7
    widget._sample_size.value = 1000
    run_sweep(widget, qtbot)
    expected = npc.sweep(blob_image(4), method, range(2, 8), sample_size=1000,
                         random_state=0)
    pd.testing.assert_frame_equal(widget.sweep.table.drop(columns="seconds"),
                                  expected.table.drop(columns="seconds"))
    assert widget.sweep.suggested_k == 4 and "k=4" in widget._status.value
    top, bottom = widget.axes
    assert plotted_points(top) == [6] * top_scores and plotted_points(bottom) == [6]
    marks = [line for line in top.get_lines() if line.get_marker() == "None"]
    assert [line.get_xdata()[0] for line in marks] == [4]
    assert [layer.name for layer in viewer.layers] == ["blobs"]  # a sweep adds no layer


def test_clicking_a_k_sets_it_in_pixel_clusters(choose_k, qtbot):
    viewer, widget = choose_k
    widget._k_min.value, widget._k_max.value = 2, 6
    run_sweep(widget, qtbot)
    axes = widget.axes[1]
    x, y = axes.transData.transform((5, widget.sweep.table["silhouette"].iloc[3]))
    click(widget.canvas, x, y)
    pixel_clusters = viewer.window.dock_widgets["Pixel clusters (napari-pixel-clusters)"]
    assert pixel_clusters._n_clusters.value == 5
    assert pixel_clusters._method.value == "kmeans"


def click(canvas, x, y):
    """A left click on the plot at display coordinates (x, y), as matplotlib delivers it."""
    from matplotlib.backend_bases import MouseButton, MouseEvent

    MouseEvent("button_press_event", canvas, x, y, MouseButton.LEFT)._process()


def test_click_can_run_pixel_clusters(choose_k, qtbot):
    viewer, widget = choose_k
    widget._k_min.value, widget._k_max.value = 2, 5
    run_sweep(widget, qtbot)
    widget._run_on_click.value = True
    pixel_clusters = widget.choose_k(3)
    qtbot.waitUntil(lambda: pixel_clusters._worker is None, timeout=60_000)
    assert viewer.layers["blobs clusters"].data.max() == 3


def test_saving_the_plot_and_table(choose_k, qtbot, tmp_path):
    _, widget = choose_k
    widget._k_min.value, widget._k_max.value = 2, 4
    run_sweep(widget, qtbot)
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

    assert to_hex(widget.figure.get_facecolor()) == to_hex(
        get_theme("light").background.as_hex())


def test_a_large_multiscale_image_is_swept_from_its_chunk_histogram(choose_k, qtbot):
    import dask.array as da

    viewer, widget = choose_k
    image = np.tile(blob_image(4), (3, 3, 1))
    pyramid = [da.from_array(image, chunks=(64, 64, 3)),
               da.from_array(image[::2, ::2], chunks=(64, 64, 3))]
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
