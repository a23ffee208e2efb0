"""Gaussian mixtures fitted by EM on distinct feature vectors weighted by pixel counts.

scikit-learn's ``GaussianMixture`` takes no ``sample_weight``; this module runs the same
EM loop (same initialisation, ``reg_covar``, lower bound and stopping rule, all four
covariance types) with every row counted as many times as pixels share its value. On
uncompressed features every weight is 1 and the loop is scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state

from ..registry import Method, MethodOutput, Param
from ._pointwise import check_start_array, pixel_labels, point_features

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@dataclass
class Mixture:
    """Parameters of a fitted mixture (scikit-learn's names, without trailing ``_``)."""

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariances: np.ndarray | None = None

    def log_resp(self, X):
        """Per-row log-likelihood and log responsibilities (the E-step)."""
        weighted = log_gaussian_prob(X, self) + np.log(self.weights)
        top = weighted.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(weighted - top).sum(axis=1))
        return log_norm, weighted - log_norm[:, None]

    def n_parameters(self) -> int:
        k, d = self.means.shape
        cov = {"full": k * d * (d + 1) / 2, "diag": k * d, "tied": d * (d + 1) / 2,
               "spherical": k}[self.covariance_type]
        return int(cov + k * d + k - 1)


def estimate_parameters(X, resp, reg_covar, covariance_type):
    """M-step: ``resp`` already multiplied by the row weights (scikit-learn's formulas)."""
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = resp.T @ X / nk[:, None]
    d = X.shape[1]
    if covariance_type == "full":
        cov = np.empty((len(nk), d, d))
        for k in range(len(nk)):
            diff = X - means[k]
            cov[k] = (resp[:, k] * diff.T) @ diff / nk[k]
            cov[k].flat[:: d + 1] += reg_covar
    elif covariance_type == "tied":
        row_weight = resp.sum(axis=1)
        cov = (X.T @ (X * row_weight[:, None]) - (nk * means.T) @ means) / nk.sum()
        cov.flat[:: d + 1] += reg_covar
    else:
        cov = resp.T @ (X * X) / nk[:, None] - means**2 + reg_covar
        if covariance_type == "spherical":
            cov = cov.mean(axis=1)
    return nk, means, cov


def precision_cholesky(cov, covariance_type):
    """Cholesky factor of the precision matrices, as scikit-learn computes it."""
    if covariance_type in ("diag", "spherical"):
        if np.any(cov <= 0):
            raise ValueError(_DEGENERATE)
        return 1.0 / np.sqrt(cov)
    matrices = cov[None] if covariance_type == "tied" else cov
    out = np.empty_like(matrices)
    for k, matrix in enumerate(matrices):
        try:
            chol = linalg.cholesky(matrix, lower=True)
        except linalg.LinAlgError:
            raise ValueError(_DEGENERATE) from None
        out[k] = linalg.solve_triangular(chol, np.eye(len(matrix)), lower=True).T
    return out[0] if covariance_type == "tied" else out


def log_gaussian_prob(X, mix: Mixture):
    """log N(x | mean_k, cov_k) for every row and component, vectorised over components."""
    n, d = X.shape
    means, pc, kind = mix.means, mix.precisions_cholesky, mix.covariance_type
    if kind in ("full", "tied"):
        chols = pc if kind == "full" else np.broadcast_to(pc, (len(means), d, d))
        log_det = np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(axis=1)
        sq = np.empty((n, len(means)))
        for k, chol in enumerate(chols):
            y = X @ chol - means[k] @ chol
            sq[:, k] = np.einsum("ij,ij->i", y, y)
    elif kind == "diag":
        log_det = np.log(pc).sum(axis=1)
        prec = pc**2
        sq = (means**2 * prec).sum(1) - 2 * X @ (means * prec).T + (X**2) @ prec.T
    else:
        log_det = d * np.log(pc)
        prec = pc**2
        sq = ((means**2).sum(1) * prec - 2 * X @ means.T * prec
              + np.outer(np.einsum("ij,ij->i", X, X), prec))
    return -0.5 * (d * np.log(2 * np.pi) + sq) + log_det


def _start(X, w, n_components, params, rng) -> Mixture:
    kind = params["covariance_type"]
    resp = np.zeros((len(X), n_components))
    starts = ("weights_init", "means_init", "precisions_init")
    if any(params[name] is None for name in starts):
        km = KMeans(n_clusters=n_components, n_init=1, random_state=rng).fit(X, sample_weight=w)
        resp[np.arange(len(X)), km.labels_] = 1
    nk, means, cov = estimate_parameters(X, resp * w[:, None], params["reg_covar"], kind)
    weights = nk / w.sum() if params["weights_init"] is None else params["weights_init"]
    if params["means_init"] is not None:
        means = params["means_init"]
    if params["precisions_init"] is None:
        return Mixture(kind, weights, means, precision_cholesky(cov, kind), cov)
    prec = params["precisions_init"]
    if kind in ("diag", "spherical"):
        return Mixture(kind, weights, means, np.sqrt(prec))
    chol = [linalg.cholesky(p, lower=True) for p in (prec[None] if kind == "tied" else prec)]
    return Mixture(kind, weights, means, chol[0] if kind == "tied" else np.array(chol))


def fit_mixture(X, w, n_components, params, random_state):
    """EM with ``n_init`` starts; returns the best mixture, its lower bound, iterations."""
    rng = check_random_state(random_state)
    total = w.sum()
    best = (None, -np.inf, 0, False)
    for _ in range(params["n_init"]):
        mix = _start(X, w, n_components, params, rng)
        lower_bound, converged, n_iter = -np.inf, False, 0
        for n_iter in range(1, params["max_iter"] + 1):
            previous = lower_bound
            log_norm, log_resp = mix.log_resp(X)
            nk, means, cov = estimate_parameters(
                X, np.exp(log_resp) * w[:, None], params["reg_covar"], mix.covariance_type
            )
            mix = Mixture(mix.covariance_type, nk / nk.sum(), means,
                          precision_cholesky(cov, mix.covariance_type), cov)
            lower_bound = float(w @ log_norm / total)
            if abs(lower_bound - previous) < params["tol"]:
                converged = True
                break
        if best[0] is None or lower_bound > best[1]:
            best = (mix, lower_bound, n_iter, converged)
    return best


def run(data, n_clusters, features, params) -> MethodOutput:
    feature_set = point_features(data, n_clusters, features)
    X, w = feature_set.X, feature_set.pixel_weights()
    d = X.shape[1]
    check_start_array("means_init", params["means_init"], (n_clusters, d))
    check_start_array("weights_init", params["weights_init"], (n_clusters,))
    mixture, _, n_iter, converged = fit_mixture(
        X, w, n_clusters, params, features["random_state"]
    )
    log_norm, log_resp = mixture.log_resp(X)
    n_pixels = w.sum()
    mean_ll = float(w @ log_norm / n_pixels)
    n_params = mixture.n_parameters()
    score = {
        "log_likelihood": mean_ll,
        "bic": float(-2 * mean_ll * n_pixels + n_params * np.log(n_pixels)),
        "aic": float(-2 * mean_ll * n_pixels + 2 * n_params),
        "n_iter": int(n_iter),
        "converged": bool(converged),
    }
    return MethodOutput(
        labels=pixel_labels(data, feature_set, log_resp.argmax(axis=1)),
        score=score,
        details={"compression": feature_set.compression, "features": feature_set.names,
                 **feature_set.standardization},
        model={"weights": mixture.weights, "means": mixture.means,
               "covariances": mixture.covariances},
    )


_DEGENERATE = (
    "Gaussian mixture: a cluster collapsed to a single colour, so its covariance cannot be "
    "inverted; use fewer clusters, a larger reg_covar, or covariance_type='diag'."
)

_HIDDEN = dict(allow_array=True, in_widget=False)

METHOD = Method(
    name="gmm",
    title="Gaussian mixture",
    summary="Models colours as k Gaussian blobs (scikit-learn GaussianMixture semantics); "
    "clusters may be elongated.",
    params=(
        Param("covariance_type", str, "full",
              "Shape of each cluster: 'full' (any ellipsoid), 'tied' (all the same), "
              "'diag' (axis-aligned), 'spherical' (round).",
              choices=COVARIANCE_TYPES),
        Param("n_init", int, 1, "Number of starts; the most likely result is kept.",
              minimum=1, maximum=100),
        Param("max_iter", int, 100, "Maximum number of EM iterations per start.",
              minimum=1, maximum=10_000),
        Param("tol", float, 1e-3,
              "Stop when the mean log-likelihood per pixel improves less than this.",
              minimum=0.0, maximum=1.0),
        Param("reg_covar", float, 1e-6,
              "Added to the covariance diagonals so that they stay invertible.",
              minimum=0.0, maximum=1e3),
        Param("weights_init", float, None, "Starting mixture weights (k,).", **_HIDDEN),
        Param("means_init", float, None, "Starting means (k, features).", **_HIDDEN),
        Param("precisions_init", float, None,
              "Starting precisions, shaped as scikit-learn's precisions_.", **_HIDDEN),
    ),
    run=run,
)
