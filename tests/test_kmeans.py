"""k-means (core/methods/kmeans.py): fitted on distinct values weighted by their counts,
it is scikit-learn's KMeans on every pixel, stopping where scikit-learn stops. The
notebook's k-means workflows are in test_reference_workflows.py."""

from __future__ import annotations

import numpy as np
import pytest

from napari_pixel_clusters.core.features import build_features
from napari_pixel_clusters.core.image import read_image


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 1), (np.uint16, 257)])
def test_kmeans_on_grey_distinct_values_matches_sklearn(dtype, scale):
    from skimage import data
    from sklearn.cluster import KMeans

    import napari_pixel_clusters as npc

    image = (data.camera()[::2, ::2].astype(np.uint32) * scale).astype(dtype)
    X = image.reshape(-1, 1).astype(np.float64)
    init = np.array([[10.0], [80.0], [150.0], [240.0]]) * scale
    reference = KMeans(4, init=init, n_init=1).fit(X)
    seg = npc.segment(image, "kmeans", 4, init=init)
    assert seg.params["compression"].startswith("distinct values: ")
    np.testing.assert_array_equal(seg.labels.ravel(), reference.labels_ + 1)
    assert seg.score["n_iter"] == reference.n_iter_
    assert seg.params["tol_effective"] != 1e-4  # rescaled to the pixels' variance


def test_tol_is_rescaled_to_stop_where_sklearn_stops(photo):
    from napari_pixel_clusters.core.methods.kmeans import sklearn_equivalent_tol

    feature_set = build_features(read_image(photo))
    pixels = feature_set.to_pixels(feature_set.X)
    rescaled = sklearn_equivalent_tol(1e-4, feature_set)
    assert rescaled * np.var(feature_set.X, axis=0).mean() == pytest.approx(
        1e-4 * np.var(pixels, axis=0).mean()
    )


def _sklearn_route(image, k, random_state, **options):
    """What segment gave before the compiled k-means: scikit-learn's KMeans on the same
    feature rows, weighted by their counts, with the rescaled tol (labels 1..k per pixel)."""
    import warnings

    from sklearn.cluster import KMeans

    from napari_pixel_clusters.core.methods.kmeans import sklearn_equivalent_tol

    feature_set = build_features(read_image(image), **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer distinct clusters than k, on purpose
        model = KMeans(
            k, n_init=3, tol=sklearn_equivalent_tol(1e-4, feature_set), random_state=random_state
        ).fit(feature_set.X, sample_weight=feature_set.weights)
    return feature_set.to_pixels(model.labels_ + 1).reshape(image.shape[:2]), model


def _camera16():
    from skimage import data, transform

    camera = data.camera()[::2, ::2] * 257.0  # enlarged: thousands of 16-bit levels
    return transform.resize(camera, (320, 320), order=1, preserve_range=True).astype(np.uint16)


def _images():
    from skimage import data

    return {
        "astronaut": data.astronaut()[::2, ::2],
        "coins": data.coins(),
        "cat": data.chelsea()[::2, ::2],
        "camera16": _camera16(),
    }


@pytest.mark.parametrize(
    "name, options",
    [
        ("astronaut", {"color_space": "rgb"}),
        ("astronaut", {"color_space": "lab"}),
        ("astronaut", {"color_space": "lab", "standardize": True}),
        ("astronaut", {"color_space": "rgb", "spatial_weight": 0.5}),
        ("cat", {"color_space": "rgb"}),
        ("cat", {"color_space": "lab", "standardize": True}),
        ("coins", {}),
        ("coins", {"standardize": True, "spatial_weight": 1.0}),
        ("camera16", {}),
        ("camera16", {"standardize": True}),
    ],
)
@pytest.mark.parametrize("random_state", [0, 3])
def test_segment_gives_the_labels_of_sklearn_kmeans_on_the_same_rows(name, options, random_state):
    import napari_pixel_clusters as npc

    image = _images()[name]
    if "spatial_weight" in options:
        image = image[::2, ::2]  # pixel rows: keep the reference quick
    seg = npc.segment(image, "kmeans", 6, random_state=random_state, **options)
    expected, model = _sklearn_route(image, 6, random_state, **options)
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.score["inertia"] == pytest.approx(model.inertia_, rel=1e-9)
    assert seg.score["n_iter"] == model.n_iter_


def test_segment_with_k_the_number_of_colors_one_color_and_an_empty_start():
    import napari_pixel_clusters as npc

    image = _images()["coins"][::4, ::4]
    k = len(np.unique(image))
    seg = npc.segment(image, "kmeans", k, random_state=0)
    expected, _ = _sklearn_route(image, k, 0)
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.n_clusters == k

    flat = np.full((20, 30, 3), 90, np.uint8)  # one distinct color
    seg = npc.segment(flat, "kmeans", 1, random_state=0)
    assert (seg.labels == 1).all() and seg.score["inertia"] == 0.0

    far = np.array([[10.0], [90.0], [2000.0]])  # the last start is nearest to no pixel
    seg = npc.segment(image, "kmeans", 3, init=far)
    from sklearn.cluster import KMeans

    reference = KMeans(3, init=far, n_init=1).fit(image.reshape(-1, 1).astype(float))
    np.testing.assert_array_equal(seg.labels.ravel(), reference.labels_ + 1)
    assert seg.score["n_iter"] == reference.n_iter_
