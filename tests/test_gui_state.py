"""The settings shared by the plugin's widgets of one viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_pixel_clusters.gui.state import SharedSettings, shared_settings


def test_fields_emit_only_real_changes_and_k_chosen_carries_method_k_run():
    settings = SharedSettings()
    assert (
        settings.image,
        settings.color_space,
        settings.spatial_weight,
        settings.standardize,
        settings.random_state,
        settings.n_clusters,
        settings.method,
    ) == (None, None, 0.0, False, 0, None, None)  # color space None: "auto", the method's
    heard, chosen = [], []
    settings.events.color_space.connect(lambda new, old: heard.append((new, old)))
    settings.k_chosen.connect(lambda *args: chosen.append(args))
    settings.color_space = "lab"
    settings.color_space = "lab"  # no change, no event: widgets following each other do not loop
    settings.update(color_space="hsv", n_clusters=3)
    assert heard == [("lab", None), ("hsv", "lab")]
    assert settings.features() == {
        "color_space": "hsv",
        "stain_vectors": None,
        "stain_background": 0.15,
        "spatial_weight": 0.0,
        "standardize": False,
        "random_state": 0,
    }
    settings.choose_k("gmm", 4, True)
    assert chosen == [("gmm", 4, True)] and (settings.method, settings.n_clusters) == ("gmm", 4)
    with pytest.raises(ValueError, match=r"^color_space: "):
        settings.update(color_space="xyz")
    with pytest.raises(ValueError, match=r"^color: "):
        settings.update(color="lab")
    assert settings.color_space == "hsv"
    settings.update(color_space=None)  # back to "auto"
    assert settings.color_space is None and heard[-1] == (None, "hsv")


def test_one_settings_object_per_viewer_forgetting_a_removed_image(make_napari_viewer):
    viewer, other = make_napari_viewer(), make_napari_viewer()
    settings = shared_settings(viewer)
    assert shared_settings(viewer) is settings and shared_settings(other) is not settings
    layer = viewer.add_image(np.zeros((8, 8)), name="image")
    kept = viewer.add_image(np.ones((8, 8)), name="kept")
    settings.image = layer
    viewer.layers.remove(kept)
    assert settings.image is layer
    viewer.layers.remove(layer)
    assert settings.image is None
