"""The reference notebook workflows through ``segment``, against the reference libraries."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color, data, filters, measure
from skimage.feature import canny
from skimage.transform import rescale, resize
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.feature_extraction.image import grid_to_graph
from sklearn.mixture import GaussianMixture

import napari_pixel_clusters as npc
from conftest import same_partition


@pytest.fixture(scope="module")
def smoothed_coins():
    return filters.gaussian(data.coins(), sigma=2)


def sklearn_ward(image: np.ndarray, n_clusters: int) -> np.ndarray:
    connectivity = grid_to_graph(*image.shape)
    model = AgglomerativeClustering(
        n_clusters=n_clusters, linkage="ward", connectivity=connectivity
    )
    return model.fit(image.reshape(-1, 1)).labels_.reshape(image.shape)


def test_ward_coins_example_matches_sklearn(smoothed_coins):
    """scikit-learn's coins example: smoothed, rescaled to 0.2, 27 clusters."""
    small = rescale(smoothed_coins, 0.2, anti_aliasing=False)
    seg = npc.segment(small, "ward", n_clusters=27, downscale=1.0)
    assert seg.n_clusters == 27
    assert same_partition(seg.labels, sklearn_ward(small, 27))


def test_ward_downscale_clusters_small_and_returns_full_size(smoothed_coins):
    seg = npc.segment(smoothed_coins, "ward", n_clusters=27, downscale=0.2)
    small_shape = tuple(round(s * 0.2) for s in smoothed_coins.shape)
    small = resize(smoothed_coins, small_shape, anti_aliasing=True)
    expected = resize(
        sklearn_ward(small, 27),
        smoothed_coins.shape,
        order=0,
        preserve_range=True,
        anti_aliasing=False,
    )
    assert seg.labels.shape == smoothed_coins.shape
    assert seg.params["clustered_shape"] == list(small_shape)
    assert same_partition(seg.labels, expected)


def test_ward_regions_are_connected(smoothed_coins):
    small = rescale(smoothed_coins, 0.2, anti_aliasing=False)
    labels = npc.segment(small, "ward", n_clusters=27, downscale=1.0).labels
    assert measure.label(labels, background=0, connectivity=1).max() == 27


def rgb_features(photo: np.ndarray, space: str) -> np.ndarray:
    unit = photo.reshape(-1, 3) / 255.0
    return color.rgb2lab(unit) if space == "lab" else unit


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_kmeans_with_given_init_matches_sklearn_on_all_pixels(photo, space):
    X = rgb_features(photo, space)
    init = X[np.linspace(0, len(X) - 1, 6).astype(int)]
    reference = KMeans(n_clusters=6, init=init, n_init=1).fit(X)
    seg = npc.segment(photo, "kmeans", 6, color_space=space, init=init)
    np.testing.assert_array_equal(seg.labels.ravel(), reference.labels_ + 1)
    assert seg.score["n_iter"] == reference.n_iter_
    assert seg.score["inertia"] == pytest.approx(reference.inertia_, rel=1e-9)
    assert seg.params["compression"].startswith("distinct values")


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_kmeans_default_init_is_as_compact_as_sklearn(photo, space):
    X = rgb_features(photo, space)
    for seed in range(3):
        reference = KMeans(n_clusters=5, n_init=3, random_state=seed).fit(X)
        seg = npc.segment(photo, "kmeans", 5, color_space=space, n_init=3, random_state=seed)
        assert seg.score["inertia"] <= reference.inertia_ * 1.005


def test_kmeans_quantized_image_is_the_centers(photo):
    seg = npc.segment(photo, "kmeans", 3, random_state=0)
    quantized = seg.quantized()
    assert quantized.shape == photo.shape and quantized.dtype == photo.dtype
    assert len(np.unique(quantized.reshape(-1, 3), axis=0)) == 3
    for label in range(1, 4):
        mean = photo[seg.labels == label].mean(axis=0)
        np.testing.assert_allclose(seg.palette[label - 1], mean)
        np.testing.assert_array_equal(quantized[seg.labels == label][0], np.rint(mean))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_likelihood_matches_sklearn_on_all_pixels(covariance_type):
    photo = np.ascontiguousarray(data.astronaut()[::8, ::8])
    X = photo.reshape(-1, 3) / 255.0
    reference = GaussianMixture(4, covariance_type=covariance_type, n_init=2, random_state=0).fit(
        X
    )
    seg = npc.segment(photo, "gmm", 4, covariance_type=covariance_type, n_init=2, random_state=0)
    assert seg.score["log_likelihood"] == pytest.approx(reference.score(X), abs=0.02)
    assert seg.score["bic"] == pytest.approx(
        -2 * seg.score["log_likelihood"] * len(X) + reference._n_parameters() * np.log(len(X))
    )


def test_canny_grey_matches_skimage():
    """The automatic thresholds are scikit-image's 10% and 20%, of the image's largest
    value (252 here) rather than of the dtype's maximum (255)."""
    coins = data.coins()
    seg = npc.segment(coins, "canny", sigma=2.0)
    largest = float(coins.max())
    expected = canny(coins, sigma=2.0, low_threshold=0.1 * largest, high_threshold=0.2 * largest)
    np.testing.assert_array_equal(seg.labels, expected.astype(int))
    explicit = npc.segment(coins, "canny", sigma=2.0, low_threshold=25.5, high_threshold=51.0)
    np.testing.assert_array_equal(explicit.labels, canny(coins, sigma=2.0).astype(int))


def test_canny_rgb_uses_8bit_thresholds_like_the_article(photo):
    seg = npc.segment(photo, "canny", sigma=1.0, low_threshold=150, high_threshold=200)
    grey = color.rgb2gray(photo) * 255  # grey in 8-bit units, not rounded
    expected = canny(grey, sigma=1.0, low_threshold=150, high_threshold=200)
    np.testing.assert_array_equal(seg.labels, expected.astype(int))
    assert 0 < seg.labels.sum() < seg.labels.size / 4


def test_canny_stack_is_processed_plane_by_plane():
    stack = np.stack([data.coins()[:100, :100], data.camera()[:100, :100]])
    seg = npc.segment(
        stack, "canny", sigma=1.5, use_quantiles=True, low_threshold=0.7, high_threshold=0.9
    )
    for z in range(2):
        expected = canny(
            stack[z], sigma=1.5, use_quantiles=True, low_threshold=0.7, high_threshold=0.9
        )
        np.testing.assert_array_equal(seg.labels[z], expected.astype(int))


def spatial_spread(labels: np.ndarray) -> float:
    """Mean within-cluster variance of pixel coordinates."""
    coords = np.indices(labels.shape).reshape(2, -1).T
    flat = labels.ravel()
    return float(np.mean([coords[flat == k].var(axis=0).sum() for k in np.unique(flat)]))


@pytest.mark.parametrize(
    "method, kwargs", [("kmeans", {}), ("gmm", {"covariance_type": "spherical"})]
)
def test_spatial_weight_makes_clusters_compact(photo, method, kwargs):
    color_only = npc.segment(photo, method, 6, random_state=0, **kwargs)
    spatial = npc.segment(photo, method, 6, spatial_weight=2.0, random_state=0, **kwargs)
    assert spatial.params["compression"].startswith("none")
    assert spatial.params["features"][-2:] == ["y", "x"]
    assert spatial_spread(spatial.labels) < 0.5 * spatial_spread(color_only.labels)
    regions = [measure.label(s.labels, connectivity=1).max() for s in (color_only, spatial)]
    assert regions[1] < 0.5 * regions[0]


def test_spatial_gmm_with_full_covariance_is_more_compact(photo):
    """Full covariances learn their own scale, so position helps less, but it helps."""
    color_only = npc.segment(photo, "gmm", 6, random_state=0)
    spatial = npc.segment(photo, "gmm", 6, spatial_weight=1.0, random_state=0)
    assert spatial_spread(spatial.labels) < 0.9 * spatial_spread(color_only.labels)


def test_ward_downscale_in_lab_matches_sklearn_on_the_shrunk_pixels(photo):
    seg = npc.segment(photo, "ward", 5, color_space="lab", downscale=0.5)
    small = resize(photo / 255.0, (64, 64, 3), anti_aliasing=True)
    features = color.rgb2lab(small).reshape(-1, 3)
    reference = AgglomerativeClustering(5, linkage="ward", connectivity=grid_to_graph(64, 64))
    expected = reference.fit(features).labels_.reshape(64, 64)
    enlarged = resize(expected, photo.shape[:2], order=0, preserve_range=True, anti_aliasing=False)
    assert same_partition(seg.labels, enlarged)
