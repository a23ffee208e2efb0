"""Docks never push the window off the screen (gui/docking.py): docked under Pixel
clusters, the review widgets never make the window taller than the screen, all five
widgets opened one after another keep it on screen, and the plots scroll inside the dock."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from conftest import run_pixel_clusters

PLUGIN = "napari-pixel-clusters"
#: No widget may ask for more height than this.
MAX_MIN_HEIGHT = 450


@pytest.mark.parametrize("size", [(1440, 900), (1366, 768)])
def test_docking_the_review_widgets_keeps_the_window_on_screen(make_napari_viewer, qtbot, size):
    width, height = size
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(width, height)
    viewer.add_image(np.ascontiguousarray(data.astronaut()[::4, ::4]), name="a")
    pixel_clusters = run_pixel_clusters(viewer, qtbot, outlines=True)
    qtbot.wait(20)
    widgets = [pixel_clusters]
    for name in ("Cluster colors", "Cluster table"):
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        widgets.append(widget)
        qtbot.wait(20)
        assert window.height() <= height, f"docking {name} grew the window"
    table = widgets[2]
    table.select_rows([1])  # a selection redraws the plots: still on screen
    qtbot.wait(20)
    assert window.height() <= height and window.width() <= width
    for widget in widgets:
        assert widget.native.minimumSizeHint().height() <= MAX_MIN_HEIGHT, type(widget)


def test_the_plots_scroll_inside_the_dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1440, 900)
    viewer.add_image(np.ascontiguousarray(data.astronaut()[::4, ::4]), name="a")
    run_pixel_clusters(viewer, qtbot, color_space="lab")
    _, colors = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster colors")
    qtbot.wait(20)
    # the plots keep a readable size and scroll when the dock is smaller than them
    assert colors.canvas.minimumHeight() > colors.scroll.minimumHeight()
    assert colors.scroll.widget() is colors.canvas
    assert colors.native.minimumSizeHint().height() <= MAX_MIN_HEIGHT


@pytest.mark.parametrize("size", [(1440, 900), (1366, 768)])
def test_all_five_widgets_opened_one_after_another_keep_the_window_on_screen(
    make_napari_viewer, qtbot, size
):
    """Five stacked docks once grew a 1440x900 window to 1111 px: a dock that would make
    the window taller joins the dock above it as a tab, and is the one shown."""
    from qtpy.QtWidgets import QDockWidget

    width, height = size
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(width, height)
    viewer.add_image(np.ascontiguousarray(data.astronaut()[::4, ::4]), name="a")
    names = (
        "Pixel clusters",
        "Choose number of clusters",
        "Cluster colors",
        "Apply model",
        "Cluster table",
    )
    for name in names:
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        qtbot.wait(700)  # the dock settles over a few event-loop turns
        assert window.height() <= height, f"docking {name} grew the window"
        dock = next(
            d
            for d in window.findChildren(QDockWidget)
            if d.widget() is not None
            and widget.native in (d.widget(), *d.widget().findChildren(type(widget.native)))
        )
        assert not dock.visibleRegion().isEmpty(), f"{name} is docked but hidden"
    docks = [d for d in window.findChildren(QDockWidget) if PLUGIN in d.windowTitle()]
    assert len(docks) == len(names)
    assert any(window.tabifiedDockWidgets(d) for d in docks)  # some share a place as tabs
