"""Bad input: a ValueError whose message names the argument and says what would work."""

from __future__ import annotations

import numpy as np
import pytest

import napari_pixel_clusters as npc

GREY = np.arange(100, dtype=np.uint8).reshape(10, 10)
RGB = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)

CASES = {
    "1-D image": (dict(image=np.arange(10.0), n_clusters=2), "image"),
    "empty image": (dict(image=np.zeros((0, 5)), n_clusters=2), "image"),
    "zero-pixel stack": (dict(image=np.zeros((3, 0, 4)), n_clusters=2), "image"),
    "complex dtype": (dict(image=np.ones((5, 5), complex), n_clusters=2), "image"),
    "object dtype": (dict(image=np.full((5, 5), None, object), n_clusters=2), "image"),
    "all NaN": (dict(image=np.full((5, 5), np.nan), n_clusters=2), "image"),
    "n_clusters 0": (dict(image=GREY, n_clusters=0), "n_clusters"),
    "n_clusters negative": (dict(image=GREY, n_clusters=-3), "n_clusters"),
    "n_clusters float": (dict(image=GREY, n_clusters=2.5), "n_clusters"),
    "n_clusters missing": (dict(image=GREY), "n_clusters"),
    "more clusters than values": (
        dict(image=np.tile([0, 1, 2], (4, 4)).astype(np.uint8), n_clusters=4), "n_clusters"),
    "more clusters than pixels (gmm)": (
        dict(image=np.zeros((2, 2)), method="gmm", n_clusters=2), "n_clusters"),
    "more clusters than pixels (ward)": (
        dict(image=GREY, method="ward", n_clusters=200), "n_clusters"),
    "n_clusters for canny": (dict(image=GREY, method="canny", n_clusters=3), "n_clusters"),
    "unknown method": (dict(image=GREY, method="dbscan", n_clusters=3), "method"),
    "unknown colour space": (dict(image=RGB, n_clusters=3, color_space="xyz"), "color_space"),
    "colour space on grey": (dict(image=GREY, n_clusters=3, color_space="lab"), "color_space"),
    "colour space on multichannel": (
        dict(image=RGB, channel_axis=2, n_clusters=3, color_space="hsv"), "color_space"),
    "channel_axis out of range": (dict(image=RGB, n_clusters=3, channel_axis=3), "channel_axis"),
    "rgb without colour axis": (dict(image=GREY, n_clusters=3, rgb=True), "image"),
    "unknown option": (dict(image=GREY, n_clusters=3, n_components=3), "n_components"),
    "option of another method": (dict(image=GREY, n_clusters=3, sigma=2.0), "sigma"),
    "wrong type": (dict(image=GREY, n_clusters=3, n_init="three"), "n_init"),
    "below minimum": (dict(image=GREY, n_clusters=3, spatial_weight=-1.0), "spatial_weight"),
    "nan parameter": (dict(image=GREY, n_clusters=3, tol=float("nan")), "tol"),
    "bad choice": (dict(image=GREY, method="gmm", n_clusters=3, covariance_type="round"),
                   "covariance_type"),
    "init of wrong shape": (dict(image=RGB, n_clusters=3, init=np.zeros((2, 3))), "init"),
    "ward on 4-D": (dict(image=np.zeros((2, 3, 4, 5)), method="ward", n_clusters=2), "image"),
    "gmm negative weights_init": (
        dict(image=RGB, method="gmm", n_clusters=3, weights_init=[-1.0, 1.0, 1.0]),
        "weights_init"),
    "gmm precisions_init of wrong shape": (
        dict(image=RGB, method="gmm", n_clusters=3, precisions_init=np.ones((2, 2))),
        "precisions_init"),
    "gmm precisions_init not positive definite": (
        dict(image=RGB, method="gmm", n_clusters=2, precisions_init=np.zeros((2, 3, 3))),
        "precisions_init"),
    "downscale above 1": (dict(image=GREY, method="ward", n_clusters=3, downscale=2.0),
                          "downscale"),
    "feature option for canny": (dict(image=RGB, method="canny", color_space="lab"),
                                 "color_space"),
    "canny thresholds reversed": (
        dict(image=GREY, method="canny", low_threshold=50.0, high_threshold=10.0),
        "high_threshold"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_clear_value_error(case):
    kwargs, argument = CASES[case]
    kwargs = {"method": "kmeans", **kwargs}
    with pytest.raises(ValueError) as error:
        npc.segment(**kwargs)
    message = str(error.value)
    assert message.startswith(f"{argument}:"), message
    assert len(message) > len(argument) + 20, "the message says what would work"


def test_bad_input_leaves_the_image_untouched():
    image = RGB.copy()
    with pytest.raises(ValueError):
        npc.segment(image, "kmeans", 3, color_space="xyz")
    np.testing.assert_array_equal(image, RGB)
