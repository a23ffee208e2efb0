"""What the plugin prepares once per session: label colors and warmed kernels."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest
from napari.settings import get_settings
from napari.utils.colormap_backend import ColormapBackend, get_backend, set_backend

from napari_pixel_clusters.core import METHODS
from napari_pixel_clusters.gui import session


@pytest.fixture
def backend():
    """Restore napari's colormap backend and setting after the test."""
    settings = get_settings().experimental
    before, chosen = get_backend(), settings.colormap_backend
    yield settings
    settings.colormap_backend = chosen
    set_backend(before)


def test_numpy_label_colors_when_napari_would_pick_numba(backend):
    backend.colormap_backend = ColormapBackend.fastest_available
    set_backend(ColormapBackend.fastest_available)
    assert session.use_numpy_label_colors()
    assert get_backend() == ColormapBackend.pure_python
    assert backend.colormap_backend == ColormapBackend.fastest_available  # setting kept


def test_a_backend_the_user_chose_is_kept(backend):
    backend.colormap_backend = ColormapBackend.numba
    assert not session.use_numpy_label_colors()
    assert get_backend() == ColormapBackend.numba


def test_opening_a_dock_prepares_the_session_once(make_napari_viewer, monkeypatch):
    calls = []
    monkeypatch.setattr(session, "_prepared", type(session._prepared)())
    monkeypatch.setattr(session, "use_numpy_label_colors", lambda: calls.append("colors"))
    monkeypatch.setattr(session, "warm_up_methods", lambda: calls.append("warm"))
    viewer = make_napari_viewer()
    viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Choose number of clusters")
    for _ in range(100):  # the warm-up thread starts at once
        if len(calls) == 2:
            break
        time.sleep(0.01)
    assert calls == ["colors", "warm"]


def test_every_methods_warm_up_runs_and_a_failure_is_only_logged(monkeypatch, caplog):
    ran = []

    def broken():
        raise RuntimeError("no compiler")

    methods = {
        "a": dataclasses.replace(METHODS["ward"], name="a", warm_up=lambda: ran.append("a")),
        "b": dataclasses.replace(METHODS["ward"], name="b", warm_up=broken),
        "c": dataclasses.replace(METHODS["canny"], name="c"),  # nothing to warm
    }
    monkeypatch.setattr(session, "METHODS", methods)
    with caplog.at_level(logging.ERROR):
        session.warm_up_methods()
    assert ran == ["a"] and "warming up" in caplog.text and "no compiler" in caplog.text


def test_ward_and_kmeans_declare_their_warm_ups_and_they_load_the_loops():
    warmed = {name for name, method in METHODS.items() if method.warm_up is not None}
    assert warmed == {"ward", "kmeans"}
    for name in sorted(warmed):
        METHODS[name].warm_up()  # compiled or loaded from the cache: no error
