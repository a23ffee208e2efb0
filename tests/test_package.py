"""Packaging: the core stays headless, the manifest's samples open in a real viewer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def test_core_imports_no_qt_and_no_napari():
    code = (
        "import sys, napari_pixel_clusters as npc; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'vispy')); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_the_package_leaves_the_heavy_libraries_for_later():
    """scipy, scikit-learn, scikit-image, dask and numba are imported where a route uses
    them: the command line's --help and napari's plugin scan stay quick."""
    code = (
        "import sys, napari_pixel_clusters as npc; "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'scipy', 'sklearn', 'skimage', 'dask', 'numba'}); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_registry_declares_every_parameter():
    import napari_pixel_clusters as npc

    assert {"kmeans", "gmm", "ward", "canny"} <= set(npc.METHODS)  # and any added later
    for method in npc.METHODS.values():
        assert method.title and method.summary
        for param in (*method.params, *npc.FEATURE_PARAMS):
            assert param.help, f"{method.name}.{param.name} has no help text"
            if param.default is not None:
                assert param.check(param.default) == param.default


@pytest.mark.parametrize(
    "key, shape, rgb",
    [
        ("coins", (303, 384), False),
        ("astronaut", (512, 512, 3), True),
        ("cat", (300, 451, 3), True),
        ("immunohistochemistry", (512, 512, 3), True),
    ],
)
def test_sample_data_opens_in_napari(make_napari_viewer, key, shape, rgb):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-pixel-clusters", key)
    assert len(layers) == 1
    layer = viewer.layers[0]
    assert layer.data.shape == shape and layer.rgb == rgb and layer.name == key
    assert layer.data.dtype == np.uint8


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


def test_widget_is_offered_in_the_layer_context_menu(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    items = get_app_model().menus.get_menu("napari/layers/segment")
    commands = [getattr(item, "command", None) for item in items]
    assert any(c is not None and c.id == "napari-pixel-clusters.pixel_clusters" for c in commands)


def test_every_method_module_is_registered_without_a_list_to_edit():
    """A module under core/methods/ (not starting with "_") is a method: found on import."""
    import importlib
    from pathlib import Path

    from napari_pixel_clusters.core import methods

    modules = sorted(
        path.stem
        for path in Path(methods.__file__).parent.glob("*.py")
        if not path.stem.startswith("_")
    )
    declared = [importlib.import_module(f"{methods.__name__}.{name}").METHOD for name in modules]
    assert sorted(methods.METHODS) == sorted(method.name for method in declared)
    assert all(methods.METHODS[method.name] is method for method in declared)
    assert next(iter(methods.METHODS)) == "kmeans"  # the default comes first
