"""The launcher (gui/launch.py): ``napari-pixel-clusters`` opens the sample with the
Pixel clusters widget, the whole image fitted to the canvas the dock left."""

from __future__ import annotations

import napari
import numpy as np
import pytest

from napari_pixel_clusters.gui import launch


@pytest.fixture
def launched(make_napari_viewer, monkeypatch, qtbot):
    """``napari-pixel-clusters`` as a person starts it, in a 1440 x 900 window; the viewer."""
    viewers = []

    def shown_viewer(**kwargs):
        viewer = make_napari_viewer(show=True, **kwargs)
        viewer.window.resize(1440, 900)
        viewers.append(viewer)
        return viewer

    monkeypatch.setattr(napari, "Viewer", shown_viewer)
    monkeypatch.setattr(napari, "run", lambda *args, **kwargs: None)
    launch.main([])
    qtbot.wait(100)  # the event loop napari.run would start
    return viewers[0]


def test_the_launcher_shows_the_whole_image(launched):
    viewer = launched
    assert "Pixel clusters (napari-pixel-clusters)" in viewer.window.dock_widgets
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9
    zoom, center = camera.zoom, np.array(camera.center)
    viewer.reset_view()  # the fit to the canvas as it is now, with the dock
    assert zoom == pytest.approx(camera.zoom)  # cropped before: 1.58 instead of 1.17
    np.testing.assert_allclose(center, camera.center)
    height, width = viewer.layers["astronaut"].data.shape[:2]
    canvas = viewer.window._qt_viewer.canvas.size  # (height, width) in screen pixels
    assert height * zoom <= canvas[0] and width * zoom <= canvas[1]


def test_console_script_opens_the_sample_with_the_widget(make_napari_viewer, monkeypatch):
    import napari

    from napari_pixel_clusters.gui import launch

    viewers = []

    def viewer_factory(**kwargs):
        viewers.append(make_napari_viewer(**kwargs))
        return viewers[-1]

    monkeypatch.setattr(napari, "Viewer", viewer_factory)
    monkeypatch.setattr(napari, "run", lambda: None)
    launch.main([])
    viewer = viewers[0]
    assert [layer.name for layer in viewer.layers] == ["astronaut"]
    assert "Pixel clusters (napari-pixel-clusters)" in viewer.window.dock_widgets
