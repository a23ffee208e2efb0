"""Reading an array (core/image.py): RGB guessed as napari does, channels moved last.
The mask of usable pixels (NaN, transparent) is checked in test_features.py and on every
kind of image in test_battery.py; refused images in test_bad_input.py."""

from __future__ import annotations

import numpy as np

from napari_pixel_clusters.core.image import read_image


def test_rgb_is_guessed_like_napari():
    assert read_image(np.zeros((40, 40, 3))).kind == "rgb"
    assert read_image(np.zeros((20, 20, 3))).kind == "grey"  # napari: sides must exceed 30
    assert read_image(np.zeros((20, 20, 3)), rgb=True).kind == "rgb"
    assert read_image(np.zeros((40, 40, 3)), rgb=False).kind == "grey"


def test_channel_axis_moves_channels_last():
    image = np.random.default_rng(0).random((3, 10, 12))
    data = read_image(image, channel_axis=0)
    assert data.kind == "multichannel" and data.spatial_shape == (10, 12)
    np.testing.assert_array_equal(data.pixels[..., 1], image[1])
