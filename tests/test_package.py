"""Packaging: the core stays headless, importing the package leaves the heavy libraries for
later, and the manifest offers the widget in napari's layer menu (samples:
test_sample_data.py; the console script: test_gui_launch.py)."""

from __future__ import annotations

import subprocess
import sys


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


def test_widget_is_offered_in_the_layer_context_menu(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    items = get_app_model().menus.get_menu("napari/layers/segment")
    commands = [getattr(item, "command", None) for item in items]
    assert any(c is not None and c.id == "napari-pixel-clusters.pixel_clusters" for c in commands)
