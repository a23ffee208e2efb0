"""Shared test images: small crops of scikit-image samples, plus generated edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images group pixels identically (up to renaming labels)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1).shape[1]
    return pairs == len(np.unique(a)) == len(np.unique(b))


def run_pixel_clusters(viewer, qtbot, **choices):
    """Open Pixel clusters on the active image, set its choices and press Run.

    ``choices``: ``n_clusters``, ``color_space``, and outputs as ``quantized=False`` etc.
    """
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    widget._n_clusters.value = choices.pop("n_clusters", 4)
    if "color_space" in choices:
        widget._feature_widgets["color_space"].value = choices.pop("color_space")
    for output, wanted in choices.items():
        widget._outputs[output].value = wanted
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    return widget


def collect_steps(steps):
    """Walk a generator of progress steps: (the steps, its return value)."""
    stages = []
    while True:
        try:
            stages.append(next(steps))
        except StopIteration as stop:
            return stages, stop.value


@pytest.fixture(scope="session")
def photo():
    """A 128 x 128 RGB uint8 photo (astronaut, every 4th pixel)."""
    return np.ascontiguousarray(data.astronaut()[::4, ::4])


def _image_kinds():
    rng = np.random.default_rng(1)
    coins = data.coins()[::6, ::6]
    rgb = np.ascontiguousarray(data.astronaut()[::12, ::12])
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:5, :5, 3] = 0
    nan_image = rng.random((30, 30))
    nan_image[3:7, 10:20] = np.nan
    nan_image[0, 0] = np.inf
    return {
        "grey_u8": (coins, {}),
        "grey_u16": ((coins.astype(np.uint16) * 257), {}),
        "grey_float": (rng.random((30, 36)).astype(np.float32), {}),
        "grey_u64": (coins.astype(np.uint64), {}),
        "grey_i32_negative": (coins.astype(np.int32) - 128, {}),
        "rgb": (rgb, {}),
        "rgba": (rgba, {}),
        "stack": (rng.integers(0, 40, (4, 24, 24)).astype(np.uint8), {}),
        "multichannel": (
            rng.integers(0, 1000, (2, 24, 28)).astype(np.uint16),
            {"channel_axis": 0},
        ),
        "with_nans": (nan_image, {}),
        "constant": (np.full((20, 20), 7, np.uint8), {}),
        "one_pixel": (np.array([[3.5]]), {}),
    }


IMAGE_KINDS = _image_kinds()
