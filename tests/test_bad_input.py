"""Bad input: a ValueError whose message names the argument and says what would work."""

from __future__ import annotations

import dataclasses

import dask.array as da
import numpy as np
import pytest

import napari_pixel_clusters as npc

F64_MAX = np.finfo(np.float64).max
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
        dict(image=np.tile([0, 1, 2], (4, 4)).astype(np.uint8), n_clusters=4),
        "n_clusters",
    ),
    "more clusters than pixels (gmm)": (
        dict(image=np.zeros((2, 2)), method="gmm", n_clusters=2),
        "n_clusters",
    ),
    "more clusters than pixels (ward)": (
        dict(image=GREY, method="ward", n_clusters=200),
        "n_clusters",
    ),
    "n_clusters for canny": (dict(image=GREY, method="canny", n_clusters=3), "n_clusters"),
    "unknown method": (dict(image=GREY, method="dbscan", n_clusters=3), "method"),
    "unknown color space": (dict(image=RGB, n_clusters=3, color_space="xyz"), "color_space"),
    "color space on grey": (dict(image=GREY, n_clusters=3, color_space="lab"), "color_space"),
    "color space on multichannel": (
        dict(image=RGB, channel_axis=2, n_clusters=3, color_space="hsv"),
        "color_space",
    ),
    "channel_axis out of range": (dict(image=RGB, n_clusters=3, channel_axis=3), "channel_axis"),
    "rgb without color axis": (dict(image=GREY, n_clusters=3, rgb=True), "image"),
    "unknown option": (dict(image=GREY, n_clusters=3, n_components=3), "n_components"),
    "option of another method": (dict(image=GREY, n_clusters=3, sigma=2.0), "sigma"),
    "wrong type": (dict(image=GREY, n_clusters=3, n_init="three"), "n_init"),
    "below minimum": (dict(image=GREY, n_clusters=3, spatial_weight=-1.0), "spatial_weight"),
    "nan parameter": (dict(image=GREY, n_clusters=3, tol=float("nan")), "tol"),
    "bad choice": (
        dict(image=GREY, method="gmm", n_clusters=3, covariance_type="round"),
        "covariance_type",
    ),
    "init of wrong shape": (dict(image=RGB, n_clusters=3, init=np.zeros((2, 3))), "init"),
    "ward on 4-D": (dict(image=np.zeros((2, 3, 4, 5)), method="ward", n_clusters=2), "image"),
    "gmm negative weights_init": (
        dict(image=RGB, method="gmm", n_clusters=3, weights_init=[-1.0, 1.0, 1.0]),
        "weights_init",
    ),
    "gmm precisions_init of wrong shape": (
        dict(image=RGB, method="gmm", n_clusters=3, precisions_init=np.ones((2, 2))),
        "precisions_init",
    ),
    "gmm precisions_init not positive definite": (
        dict(image=RGB, method="gmm", n_clusters=2, precisions_init=np.zeros((2, 3, 3))),
        "precisions_init",
    ),
    "downscale above 1": (
        dict(image=GREY, method="ward", n_clusters=3, downscale=2.0),
        "downscale",
    ),
    "feature option for canny": (
        dict(image=RGB, method="canny", color_space="lab"),
        "color_space",
    ),
    "canny thresholds reversed": (
        dict(image=GREY, method="canny", low_threshold=50.0, high_threshold=10.0),
        "high_threshold",
    ),
    # issue 11: each of these escaped as another exception type or a library's message
    "method as a list": (dict(image=GREY, method=["kmeans"], n_clusters=3), "method"),
    "method None": (dict(image=GREY, method=None, n_clusters=3), "method"),
    "channel_axis float": (dict(image=RGB, n_clusters=3, channel_axis=1.0), "channel_axis"),
    "channel_axis string": (dict(image=RGB, n_clusters=3, channel_axis="0"), "channel_axis"),
    "channel_axis bool": (dict(image=RGB, n_clusters=3, channel_axis=True), "channel_axis"),
    "rgb string": (dict(image=RGB, n_clusters=3, rgb="no"), "rgb"),
    "rgb number": (dict(image=RGB, n_clusters=3, rgb=1), "rgb"),
    "gmm weights_init scalar": (
        dict(image=GREY, method="gmm", n_clusters=2, weights_init=0.5),
        "weights_init",
    ),
    "gmm means_init scalar": (
        dict(image=GREY, method="gmm", n_clusters=2, means_init=0.5),
        "means_init",
    ),
    "gmm precisions_init scalar": (
        dict(image=GREY, method="gmm", n_clusters=2, precisions_init=0.5),
        "precisions_init",
    ),
    "gmm weights_init NaN": (
        dict(image=GREY, method="gmm", n_clusters=2, weights_init=[np.nan, 1.0]),
        "weights_init",
    ),
    "gmm means_init NaN": (
        dict(image=GREY, method="gmm", n_clusters=2, means_init=[[np.nan], [1.0]]),
        "means_init",
    ),
    "gmm precisions_init inf": (
        dict(
            image=GREY,
            method="gmm",
            n_clusters=2,
            covariance_type="diag",
            precisions_init=[[np.inf], [1.0]],
        ),
        "precisions_init",
    ),
    "gmm precisions_init not symmetric": (
        dict(
            image=RGB,
            method="gmm",
            n_clusters=2,
            precisions_init=np.array([np.eye(3), np.eye(3) + np.triu(np.ones((3, 3)), 1)]),
        ),
        "precisions_init",
    ),
    "kmeans init NaN": (dict(image=GREY, n_clusters=2, init=[[np.nan], [1.0]]), "init"),
    "kmeans init inf": (dict(image=GREY, n_clusters=2, init=[[np.inf], [1.0]]), "init"),
    "kmeans init strings": (dict(image=GREY, n_clusters=2, init=[["a"], ["b"]]), "init"),
    "kmeans init ragged": (dict(image=GREY, n_clusters=2, init=[[1.0], [1.0, 2.0]]), "init"),
    "kmeans init complex": (dict(image=GREY, n_clusters=2, init=np.ones((2, 1), complex)), "init"),
    "kmeans init of one dimension": (dict(image=GREY, n_clusters=2, init=[1.0, 2.0]), "init"),
    "canny low threshold alone above the default high": (
        dict(image=GREY, method="canny", low_threshold=100.0),
        "low_threshold",
    ),
    "canny high threshold alone below the default low": (
        dict(image=GREY, method="canny", high_threshold=5.0),
        "high_threshold",
    ),
    "canny low quantile alone above the default high": (
        dict(image=GREY, method="canny", use_quantiles=True, low_threshold=0.5),
        "low_threshold",
    ),
    "float64 1e308": (dict(image=np.array([[1e308, 0.0], [1.0, 2.0]]), n_clusters=2), "image"),
    "float64 max": (
        dict(image=np.array([[F64_MAX, -F64_MAX], [1.0, 2.0]]), n_clusters=2),
        "image",
    ),
    "float64 -max on canny": (
        dict(image=np.array([[-F64_MAX, 0.0], [1.0, 2.0]]), method="canny"),
        "image",
    ),
    "float64 huge on ward": (
        dict(image=np.array([[1e101, 0.0], [1.0, 2.0]]), method="ward", n_clusters=2),
        "image",
    ),
    "longdouble beyond float64": (  # (where longdouble is longer than float64)
        dict(
            image=np.array([["1e400", "0"], ["1", "2"]]).astype(np.longdouble)
            if np.finfo(np.longdouble).max > F64_MAX
            else np.array([[1e300, 0.0]]),
            n_clusters=2,
        ),
        "image",
    ),
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


def test_huge_values_are_refused_by_sweep_and_by_a_model_too():
    huge = np.array([[1e200, 0.0, 1.0], [2.0, 3.0, 4.0]])
    with pytest.raises(ValueError, match=r"^image: values up to 1e\+200"):
        npc.sweep(huge, "kmeans", [2, 3])
    model = npc.segment(np.arange(6.0).reshape(2, 3), "kmeans", 2).model
    with pytest.raises(ValueError, match=r"^image: "):
        model.predict(huge)


def test_values_up_to_1e100_are_clustered_without_overflow():
    image = np.array([[1e100, -1e100, 0.0], [1e100, -1e100, 0.0]])
    for method in ("kmeans", "gmm", "ward"):
        seg = npc.segment(image, method, 3, standardize=method == "gmm")
        assert np.isfinite(seg.palette).all() and np.isfinite(seg.table["mean_intensity"]).all()
        assert all(np.isfinite(v) for v in seg.score.values() if isinstance(v, float))
        np.testing.assert_array_equal(seg.quantized(), image)  # each value its own cluster


@pytest.mark.parametrize("min_area", ["x", -1, 1.5, None, True])
def test_contours_min_area_must_be_a_whole_number_of_at_least_0(min_area):
    seg = npc.segment(GREY, "kmeans", 2)
    with pytest.raises(ValueError, match=r"^min_area: "):
        seg.contours(min_area=min_area)
    lazy = npc.segment(da.from_array(GREY, chunks=5), "kmeans", 2)
    with pytest.raises(ValueError, match=r"^min_area: "):
        lazy.contours(min_area=min_area)


def test_n_clusters_for_a_method_without_k_says_what_the_method_finds(monkeypatch):
    """The wording comes from the method's declared output, not from its name."""
    from napari_pixel_clusters.core.methods import METHODS

    with pytest.raises(ValueError, match=r"^n_clusters: method 'canny' finds edges and takes"):
        npc.segment(GREY, "canny", 3)
    regions = dataclasses.replace(METHODS["canny"], name="regions", output="clusters")
    monkeypatch.setitem(METHODS, "regions", regions)
    with pytest.raises(
        ValueError, match=r"^n_clusters: method 'regions' chooses how many clusters it finds"
    ):
        npc.segment(GREY, "regions", 3)
