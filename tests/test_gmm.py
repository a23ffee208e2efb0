"""Gaussian mixtures (core/methods/gmm.py): weighted EM on distinct colors is
scikit-learn's GaussianMixture on all pixels; a model whose Gaussians give no finite
likelihood is an error, not labels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.features import build_features
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.methods.gmm import (
    METHOD,
    Mixture,
    Moments,
    fit_mixture,
    log_gaussian_prob,
)

try:
    import resource
except ImportError:  # not on Windows
    resource = None


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_weighted_em_matches_sklearn_from_identical_start(photo, covariance_type):
    feature_set = build_features(read_image(photo))
    X_pixels = feature_set.to_pixels(feature_set.X)
    start = GaussianMixture(4, covariance_type=covariance_type, max_iter=1, random_state=0).fit(
        X_pixels
    )
    inits = dict(
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
    )
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
        mixture = Mixture(
            covariance_type, reference.weights_, reference.means_, reference.precisions_cholesky_
        )
        np.testing.assert_allclose(mixture.log_resp(X)[0], reference.score_samples(X), rtol=1e-10)
        assert log_gaussian_prob(X, mixture).shape == (500, 3)


def tight_far_clusters():
    rng = np.random.default_rng(0)
    return np.concatenate(
        [
            rng.normal(0.0, 1.0, (60, 2)),
            rng.normal(1e8, 1.0, (60, 2)),
            rng.normal(-3e8, 1e-3, (30, 2)),
        ]
    )


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
def test_tight_clusters_far_from_the_center_match_sklearn():
    """Covariances from moments about the center (second / n - mean**2) cancelled to
    garbage, often negative ("a cluster collapsed"), for a cluster much tighter than its
    distance from the center; such clusters are now summed about their own mean, as
    scikit-learn's 'full' covariances are."""
    X = tight_far_clusters()
    start = GaussianMixture(3, max_iter=1, random_state=0).fit(X)
    inits = dict(
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
    )
    reference = GaussianMixture(3, tol=1e-6, **inits).fit(X)
    params = {**METHOD.defaults(), "tol": 1e-6, **inits}
    mixture, lower_bound, _, _ = fit_mixture(X, np.ones(len(X)), 3, params, random_state=0)
    np.testing.assert_allclose(mixture.covariances, reference.covariances_, rtol=1e-6)
    # means are centerd sums plus the center: exact up to float64's steps at |X| = 3e8
    np.testing.assert_allclose(
        mixture.means, reference.means_, rtol=1e-12, atol=1e-15 * np.abs(X).max()
    )
    # densities from x - mean, not from the expanded form (off by 3e5 here before)
    direct = np.log(
        sum(
            weight * multivariate_normal(mean, covariance).pdf(X)
            for weight, mean, covariance in zip(
                mixture.weights, mixture.means, mixture.covariances
            )
        )
    )
    np.testing.assert_allclose(mixture.log_resp(X)[0], direct, rtol=1e-9, atol=1e-9)
    assert np.isfinite(lower_bound) and abs(lower_bound - direct.mean()) < 1e-3


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_m_step_of_tight_far_clusters_is_exact(covariance_type):
    """Every covariance type (scikit-learn's own 'tied', 'diag' and 'spherical' cancel
    here and fail) gets the covariances of a two-pass sum about each cluster's mean."""
    X = tight_far_clusters()
    w = np.arange(1.0, len(X) + 1)  # weighted rows, as for distinct values
    labels = np.repeat([0, 1, 2], [60, 60, 30])
    moments = Moments(X, w)
    one_hot = np.eye(3)

    def assignments(z, rows):
        return one_hot[:, labels[rows]]

    _nk, _means, cov = moments.parameters(
        moments.sums(assignments), 1e-6, covariance_type, assignments
    )
    exact = np.array(
        [np.cov(X[labels == k].T, aweights=w[labels == k], bias=True) for k in range(3)]
    )
    counts = np.array([w[labels == k].sum() for k in range(3)])
    expected = {
        "full": exact,
        "tied": (exact * counts[:, None, None]).sum(0) / counts.sum(),
        "diag": np.diagonal(exact, axis1=1, axis2=2),
        "spherical": np.diagonal(exact, axis1=1, axis2=2).mean(axis=1),
    }[covariance_type]
    regularised = expected + 1e-6 * (np.eye(2) if covariance_type in ("full", "tied") else 1)
    np.testing.assert_allclose(cov, regularised, rtol=1e-6)
    assert (
        np.all(np.linalg.eigvalsh(cov if cov.ndim > 1 else np.diag(np.atleast_1d(cov))) > 0)
        if covariance_type in ("full", "tied")
        else np.all(cov > 0)
    )


def test_64_bit_extremes_fit_every_covariance_type():
    image = np.random.default_rng(0).choice(
        np.array([0, 2**64 - 1, 2**64 - 2, 2**63], dtype=np.uint64), (6, 7)
    )
    for covariance_type in ("full", "tied", "diag", "spherical"):
        seg = npc.segment(image, "gmm", 3, covariance_type=covariance_type)
        assert np.isfinite(seg.score["bic"])
        assert seg.n_clusters == 3


def test_a_mixture_without_a_finite_likelihood_is_an_error_not_labels():
    grey = np.linspace(0.0, 1.0, 1024).reshape(32, 32)
    model = npc.segment(grey, "gmm", 2, random_state=0, covariance_type="diag").model
    model.parameters["precisions_cholesky"] = [[1e150], [1e150]]  # valid, but extreme
    with pytest.raises(
        ValueError, match=r"^model: its Gaussian parameters give no finite likelihood"
    ):  # was: every pixel cluster 1
        model.predict(grey * 1e5)
