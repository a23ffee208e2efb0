"""The sample images (_sample_data.py) open from napari's File > Open Sample."""

from __future__ import annotations

import numpy as np
import pytest


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
