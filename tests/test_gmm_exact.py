"""Weighted EM on distinct colours is scikit-learn's GaussianMixture on all pixels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from napari_pixel_clusters.core.features import build_features
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.methods.gmm import (
    METHOD,
    Mixture,
    fit_mixture,
    log_gaussian_prob,
)


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_weighted_em_matches_sklearn_from_identical_start(photo, covariance_type):
    feature_set = build_features(read_image(photo))
    X_pixels = feature_set.to_pixels(feature_set.X)
    start = GaussianMixture(4, covariance_type=covariance_type, max_iter=1,
                            random_state=0).fit(X_pixels)
    inits = dict(weights_init=start.weights_, means_init=start.means_,
                 precisions_init=start.precisions_)
    reference = GaussianMixture(4, covariance_type=covariance_type, tol=1e-6, **inits)
    reference_labels = reference.fit_predict(X_pixels)

    params = {**METHOD.defaults(), "covariance_type": covariance_type, "tol": 1e-6, **inits}
    mixture, lower_bound, n_iter, converged = fit_mixture(
        feature_set.X, feature_set.weights, 4, params, random_state=0
    )
    assert n_iter == reference.n_iter_ and converged == reference.converged_
    assert lower_bound == pytest.approx(reference.lower_bound_, abs=1e-9)
    np.testing.assert_allclose(mixture.means, reference.means_, rtol=1e-6, atol=1e-9)
    labels = feature_set.to_pixels(mixture.log_resp(feature_set.X)[1].argmax(axis=1))
    np.testing.assert_array_equal(labels, reference_labels)


def test_log_gaussian_prob_matches_sklearn_score_samples(photo):
    X = photo.reshape(-1, 3)[:500] / 255.0
    for covariance_type in ("full", "tied", "diag", "spherical"):
        reference = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
        mixture = Mixture(covariance_type, reference.weights_, reference.means_,
                          reference.precisions_cholesky_)
        np.testing.assert_allclose(mixture.log_resp(X)[0], reference.score_samples(X),
                                   rtol=1e-10)
        assert log_gaussian_prob(X, mixture).shape == (500, 3)
