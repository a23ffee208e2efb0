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
