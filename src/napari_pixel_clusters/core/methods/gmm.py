"""Gaussian mixtures fitted by EM on distinct feature vectors weighted by pixel counts.

scikit-learn's ``GaussianMixture`` takes no ``sample_weight``; this module runs the same
EM loop (same initialisation, ``reg_covar``, lower bound and stopping rule, all four
covariance types) with every row counted as many times as pixels share its value. On
uncompressed features every weight is 1 and the loop is scikit-learn's.

Speed comes from sufficient statistics: with the monomials ``z = [x_i x_j (i <= j), x, 1]``
of the (centerd) features, the E-step's quadratic forms for all components are one matrix
product ``z @ W`` and the M-step's sums are one product ``resp.T @ z``. Rows are processed
in chunks, so memory stays bounded for any image size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ..features import FeatureSet
from ..registry import Method, Param, Predictor, RowFit, Steps, drain
from ._pointwise import check_start_array, run_on_rows
from ._pointwise_lazy import lazy_run_on_rows

if TYPE_CHECKING:  # model_check imports the methods: no import back at run time
    from ..field_check import FieldCheck

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: The k-means partition that starts EM keeps the best of this many weighted k-means runs
#: (scikit-learn uses one); cheap on distinct values, and it avoids poor local optima.
START_KMEANS_RUNS = 3
#: Rows per chunk in the E/M steps; monomials are kept in memory up to CACHE_BYTES.
CHUNK_ROWS = 65_536
CACHE_BYTES = 512 * 2**20

#: ``resp_of_chunk(z, rows)``: (k, n) responsibilities of a chunk's rows, from its monomials.
RespOfChunk: TypeAlias = Callable[[np.ndarray, slice], np.ndarray]
#: What :meth:`Moments.coefficients` returns (see there).
Coefficients: TypeAlias = "tuple[np.ndarray, np.ndarray, np.ndarray, Mixture]"
#: The best fit of :func:`fit_mixture_steps`: mixture, lower bound, iterations, converged.
MixtureFit: TypeAlias = "tuple[Mixture, float, int, bool]"


@dataclass
class Mixture:
    """Parameters of a fitted mixture (scikit-learn's names, without trailing ``_``)."""

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariances: np.ndarray | None = None

    def precisions(self) -> np.ndarray:
        """(k, F, F) precision matrices, whatever the covariance type."""
        k, d = self.means.shape
        pc = self.precisions_cholesky
        if self.covariance_type == "full":
            return pc @ pc.transpose(0, 2, 1)
        if self.covariance_type == "tied":
            return np.broadcast_to(pc @ pc.T, (k, d, d))
        diag = pc**2 if self.covariance_type == "diag" else np.outer(pc**2, np.ones(d))
        return diag[:, :, None] * np.eye(d)

    def log_det(self) -> np.ndarray:
        """log |precision cholesky| per component, as scikit-learn's ``_compute_log_det``."""
        k, d = self.means.shape
        pc = self.precisions_cholesky
        if self.covariance_type == "full":
            return np.log(np.diagonal(pc, axis1=1, axis2=2)).sum(axis=1)
        if self.covariance_type == "tied":
            return np.full(k, np.log(np.diag(pc)).sum())
        return np.log(pc).sum(axis=1) if self.covariance_type == "diag" else d * np.log(pc)

    def n_parameters(self) -> int:
        k, d = self.means.shape
        cov = {
            "full": k * d * (d + 1) / 2,
            "diag": k * d,
            "tied": d * (d + 1) / 2,
            "spherical": k,
        }[self.covariance_type]
        return int(cov + k * d + k - 1)

    def log_resp(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood and (n, k) log responsibilities (the E-step)."""
        log_norm, resp = _normalise(log_gaussian_prob(X, self).T + np.log(self.weights)[:, None])
        with np.errstate(divide="ignore"):
            return log_norm, np.log(resp).T


def log_gaussian_prob(X: np.ndarray, mix: Mixture) -> np.ndarray:
    """(n, k) log N(x | mean_k, cov_k) for every row and component."""
    moments = Moments(X, np.ones(len(X)))
    coefficients = moments.coefficients(mix)
    log_prob = np.hstack(
        [moments.weighted_log_prob(z, coefficients, rows) for z, _, rows in moments]
    )
    return (log_prob - np.log(mix.weights)[:, None]).T


class Moments:
    """Centerd monomials ``[x_i x_j (i <= j), x, 1]`` of the rows with their weights.

    Stored transposed, ``(P, rows)`` per chunk, so that every reduction over components
    runs along contiguous memory.
    """

    def __init__(self, X: np.ndarray, w: np.ndarray):
        self.X, self.w = X, w
        self.center = np.average(X, axis=0, weights=w)
        self.pairs = np.triu_indices(X.shape[1])
        n_columns = len(self.pairs[0]) + X.shape[1] + 1
        cache = len(X) * n_columns * 8 <= CACHE_BYTES
        self._cached = [self._monomials(rows) for rows in self._chunks()] if cache else None
        #: Largest squared distance of a row from the center (bounds rounding errors).
        self.reach = max(
            (
                float(np.max(np.sum((self.X[rows] - self.center) ** 2, axis=1), initial=0.0))
                for rows in self._chunks()
            ),
            default=0.0,
        )

    def _chunks(self) -> list[slice]:
        return [slice(start, start + CHUNK_ROWS) for start in range(0, len(self.X), CHUNK_ROWS)]

    def _monomials(self, rows: slice) -> np.ndarray:
        Xc = (self.X[rows] - self.center).T
        return np.vstack([Xc[self.pairs[0]] * Xc[self.pairs[1]], Xc, np.ones((1, Xc.shape[1]))])

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, slice]]:
        """(monomials (P, n), weights (n,), rows) per chunk."""
        for i, rows in enumerate(self._chunks()):
            z = self._cached[i] if self._cached is not None else self._monomials(rows)
            yield z, self.w[rows], rows

    def sums(self, resp_of_chunk: RespOfChunk) -> np.ndarray:
        """(k, P) weighted sums ``sum_rows w * resp * z``: counts, first and second moments."""
        return sum((resp_of_chunk(z, rows) * w) @ z.T for z, w, rows in self)

    def coefficients(self, mix: Mixture) -> Coefficients:
        """(k, P) coefficients of the quadratic forms, the per-component constant, and what
        :meth:`weighted_log_prob` needs for the components computed directly."""
        d = self.X.shape[1]
        precision = mix.precisions()
        mean = mix.means - self.center
        i, j = self.pairs
        quadratic = np.where(i == j, 1.0, 2.0) * precision[:, i, j]
        linear = -2 * np.einsum("kab,kb->ka", precision, mean)
        constant = np.einsum("ka,kab,kb->k", mean, precision, mean)
        W = -0.5 * np.hstack([quadratic, linear, constant[:, None]])
        offset = -0.5 * d * np.log(2 * np.pi) + mix.log_det() + np.log(mix.weights)
        return W, offset, self._unstable(mix), mix

    def _unstable(self, mix: Mixture) -> np.ndarray:
        """Components whose expanded quadratic form ``x'Px - 2m'Px + m'Pm`` (about the
        center) would lose more than LOG_PROB_TOLERANCE to rounding: a cluster much
        tighter than its distance from the center. Their densities are computed directly
        from ``x - m``, as scikit-learn does."""
        pc = mix.precisions_cholesky
        scale = {
            "full": lambda: (pc**2).sum(axis=(1, 2)),
            "tied": lambda: np.full(len(mix.means), (pc**2).sum()),
            "diag": lambda: (pc**2).sum(axis=1),
            "spherical": lambda: mix.means.shape[1] * pc**2,
        }[mix.covariance_type]()
        reach = self.reach + ((mix.means - self.center) ** 2).sum(axis=1)
        error = np.finfo(np.float64).eps * scale * reach
        return np.flatnonzero(~(error <= LOG_PROB_TOLERANCE))

    def weighted_log_prob(
        self, z: np.ndarray, coefficients: Coefficients, rows: slice
    ) -> np.ndarray:
        """(k, n) log(weight_k) + log N(x | mean_k, cov_k) for the rows of one chunk."""
        W, offset, unstable, mix = coefficients
        out = W @ z
        out += offset[:, None]
        for k in unstable:
            out[k] = offset[k] - 0.5 * _squared_mahalanobis(self.X[rows], mix, k)
        return out

    def parameters(
        self,
        sums: np.ndarray,
        reg_covar: float,
        covariance_type: str,
        resp_of_chunk: RespOfChunk | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """M-step from the weighted sums (scikit-learn's formulas).

        A covariance from moments about the center, ``second / n - mean**2``, loses its
        digits when a cluster is much tighter than its distance from the center (a single
        value far out gives a tiny negative variance). Such clusters' scatter is summed
        again about their own mean, as scikit-learn does, when ``resp_of_chunk`` can give
        the responsibilities again.
        """
        d = self.X.shape[1]
        n_pairs = len(self.pairs[0])
        nk = sums[:, -1] + 10 * np.finfo(np.float64).eps
        centerd_means = sums[:, n_pairs : n_pairs + d] / nk[:, None]
        second = np.zeros((len(nk), d, d))
        second[:, self.pairs[0], self.pairs[1]] = sums[:, :n_pairs]
        second[:, self.pairs[1], self.pairs[0]] = sums[:, :n_pairs]
        outer = np.einsum("ka,kb->kab", centerd_means, centerd_means)
        full = second / nk[:, None, None] - outer
        lost = _lost_digits(full, second / nk[:, None, None])
        resummed = resp_of_chunk is not None and lost.any()
        if resummed and resp_of_chunk is not None:  # (the second test narrows its type)
            components = np.flatnonzero(lost)
            exact = self.scatter(resp_of_chunk, centerd_means + self.center, components)
            full[components] = exact / nk[components, None, None]
        if covariance_type == "tied":
            if resummed:
                cov = (full * nk[:, None, None]).sum(axis=0) / nk.sum()
            else:
                cov = (second.sum(axis=0) - (nk[:, None, None] * outer).sum(axis=0)) / nk.sum()
            cov.flat[:: d + 1] += reg_covar
        else:
            full[:, np.arange(d), np.arange(d)] += reg_covar
            cov = {
                "full": full,
                "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
                "spherical": np.diagonal(full, axis1=1, axis2=2).mean(axis=1),
            }[covariance_type]
        return nk, centerd_means + self.center, cov

    def scatter(
        self, resp_of_chunk: RespOfChunk, means: np.ndarray, components: np.ndarray
    ) -> np.ndarray:
        """(len(components), F, F) sums of ``w * resp * (x - mean)(x - mean)^T``."""
        d = self.X.shape[1]
        out = np.zeros((len(components), d, d))
        for z, w, rows in self:
            resp = resp_of_chunk(z, rows)
            X = self.X[rows]
            for i, c in enumerate(components):
                diff = X - means[c]
                out[i] += (diff * (resp[c] * w)[:, None]).T @ diff
        return out


#: Largest rounding error (in log density; a bound, usually far above the actual error)
#: accepted from the expanded quadratic forms.
LOG_PROB_TOLERANCE = 1e-6


def _squared_mahalanobis(X: np.ndarray, mix: Mixture, k: int) -> np.ndarray:
    """``(x - m_k)' P_k (x - m_k)`` for every row, from the differences (no cancellation)."""
    diff = X - mix.means[k]
    pc = mix.precisions_cholesky
    y = {
        "full": lambda: diff @ pc[k],
        "tied": lambda: diff @ pc,
        "diag": lambda: diff * pc[k],
        "spherical": lambda: diff * pc[k],
    }[mix.covariance_type]()
    return np.sum(y**2, axis=1)


#: A variance below this share of the second moment about the center has lost most of
#: its digits to cancellation (float64 keeps about 16).
CANCELLATION = 1e-6


def _lost_digits(full: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(k,) True where a component's variances came out of cancellation (see above)."""
    variances = np.diagonal(full, axis1=1, axis2=2)
    moments = np.diagonal(second, axis1=1, axis2=2)
    return np.any((moments > 0) & (variances < CANCELLATION * moments), axis=1)


def _normalise(weighted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-sum-exp over components (axis 0; by hand: scipy's is slow here), responsibilities.

    ``weighted`` (k, n) is overwritten with the responsibilities.
    """
    top = weighted.max(axis=0)
    weighted -= top
    resp = np.exp(weighted, out=weighted)
    total = resp.sum(axis=0)
    resp /= total
    return top + np.log(total), resp


def precision_cholesky(cov: np.ndarray, covariance_type: str) -> np.ndarray:
    """Cholesky factor of the precision matrices, as scikit-learn computes it."""
    if covariance_type in ("diag", "spherical"):
        if np.any(cov <= 0):
            raise ValueError(_DEGENERATE)
        return 1.0 / np.sqrt(cov)
    matrices = cov[None] if covariance_type == "tied" else cov
    try:
        chol = np.linalg.cholesky(matrices)
    except np.linalg.LinAlgError:
        raise ValueError(_DEGENERATE) from None
    eye = np.broadcast_to(np.eye(matrices.shape[-1]), matrices.shape)
    out = np.linalg.solve(chol, eye).transpose(0, 2, 1)
    return out[0] if covariance_type == "tied" else out


def _from_precisions(
    kind: str, weights: np.ndarray, means: np.ndarray, prec: np.ndarray
) -> Mixture:
    if kind in ("diag", "spherical"):
        return Mixture(kind, weights, means, np.sqrt(prec))
    chol = np.linalg.cholesky(prec[None] if kind == "tied" else prec)
    return Mixture(kind, weights, means, chol[0] if kind == "tied" else chol)


def _start(
    moments: Moments, n_components: int, params: dict[str, Any], rng: np.random.RandomState
) -> Mixture:
    kind = params["covariance_type"]
    starts = ("weights_init", "means_init", "precisions_init")
    labels = np.zeros(len(moments.X), dtype=np.intp)
    if any(params[name] is None for name in starts):
        from sklearn.cluster import KMeans

        labels = (
            KMeans(n_clusters=n_components, n_init=START_KMEANS_RUNS, random_state=rng)
            .fit(moments.X, sample_weight=moments.w)
            .labels_
        )
    one_hot = np.eye(n_components)

    def assignments(z: np.ndarray, rows: slice) -> np.ndarray:
        return one_hot[:, labels[rows]]

    sums = moments.sums(assignments)
    nk, means, cov = moments.parameters(sums, params["reg_covar"], kind, assignments)
    weights = nk / moments.w.sum() if params["weights_init"] is None else params["weights_init"]
    if params["means_init"] is not None:
        means = params["means_init"]
    if params["precisions_init"] is not None:
        return _from_precisions(kind, weights, means, params["precisions_init"])
    return Mixture(kind, weights, means, precision_cholesky(cov, kind), cov)


def _em_step(moments: Moments, mix: Mixture, reg_covar: float) -> tuple[Mixture, float]:
    """One E-step and M-step over all chunks: (new mixture, lower bound of ``mix``)."""
    log_likelihood = 0.0
    coefficients = moments.coefficients(mix)

    def responsibilities(z: np.ndarray, rows: slice) -> np.ndarray:
        nonlocal log_likelihood
        log_norm, resp = _normalise(moments.weighted_log_prob(z, coefficients, rows))
        log_likelihood += moments.w[rows] @ log_norm
        return resp

    def responsibilities_again(z: np.ndarray, rows: slice) -> np.ndarray:
        return _normalise(moments.weighted_log_prob(z, coefficients, rows))[1]

    sums = moments.sums(responsibilities)
    nk, means, cov = moments.parameters(
        sums, reg_covar, mix.covariance_type, responsibilities_again
    )
    new = Mixture(
        mix.covariance_type,
        nk / nk.sum(),
        means,
        precision_cholesky(cov, mix.covariance_type),
        cov,
    )
    return new, float(log_likelihood / moments.w.sum())


def fit_mixture(
    X: np.ndarray,
    w: np.ndarray,
    n_components: int,
    params: dict[str, Any],
    random_state: int | np.random.RandomState | None,
) -> MixtureFit:
    """EM with ``n_init`` starts; returns the best mixture, its lower bound, iterations."""
    return drain(fit_mixture_steps(X, w, n_components, params, random_state))


def fit_mixture_steps(
    X: np.ndarray,
    w: np.ndarray,
    n_components: int,
    params: dict[str, Any],
    random_state: int | np.random.RandomState | None,
) -> Steps[MixtureFit]:
    """:func:`fit_mixture` as a generator that yields ("fit", fraction) every iteration."""
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    moments = Moments(X, w)
    best: tuple[Mixture | None, float, int, bool] = (None, -np.inf, 0, False)
    n_steps = params["n_init"] * params["max_iter"]
    for start in range(params["n_init"]):
        mix = _start(moments, n_components, params, rng)
        lower_bound, converged, n_iter = -np.inf, False, 0
        for n_iter in range(1, params["max_iter"] + 1):
            yield "fit", (start * params["max_iter"] + n_iter) / n_steps
            previous = lower_bound
            mix, lower_bound = _em_step(moments, mix, params["reg_covar"])
            if abs(lower_bound - previous) < params["tol"]:
                converged = True
                break
        if best[0] is None or lower_bound > best[1]:
            best = (mix, lower_bound, n_iter, converged)
    mixture, lower_bound, n_iter, converged = best
    assert mixture is not None  # n_init is at least 1: the first start is kept at least
    return mixture, lower_bound, n_iter, converged


def predict(X: np.ndarray, w: np.ndarray, mix: Mixture) -> tuple[np.ndarray, float]:
    """Most likely component per row, and the weighted mean log-likelihood."""
    moments = Moments(X, w)
    labels = np.empty(len(X), dtype=np.intp)
    total = 0.0
    coefficients = moments.coefficients(mix)
    for z, weights, rows in moments:
        weighted = moments.weighted_log_prob(z, coefficients, rows)
        labels[rows] = weighted.argmax(axis=0)
        total += weights @ _normalise(weighted)[0]
    return labels, float(total / w.sum())


def precision_shape(covariance_type: str, k: int, d: int) -> tuple[int, ...]:
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def check_starts(params: dict[str, Any], k: int, d: int) -> None:
    """Explicit starting values must have scikit-learn's shapes and be valid."""
    check_start_array("means_init", params["means_init"], (k, d))
    weights = params["weights_init"]
    check_start_array("weights_init", weights, (k,))
    if weights is not None and (np.any(weights < 0) or not np.isclose(weights.sum(), 1.0)):
        raise ValueError("weights_init: the starting weights must be 0 or more and sum to 1.")
    kind = params["covariance_type"]
    precisions = params["precisions_init"]
    check_start_array("precisions_init", precisions, precision_shape(kind, k, d))
    if precisions is None:
        return
    matrices = precisions if kind == "full" else precisions[None] if kind == "tied" else None
    if matrices is not None and not np.allclose(matrices, matrices.swapaxes(-1, -2)):
        raise ValueError("precisions_init: the starting precision matrices must be symmetric.")
    positive = (
        np.all(np.linalg.eigvalsh(matrices) > 0)
        if matrices is not None
        else np.all(precisions > 0)
    )
    if not positive:
        raise ValueError(
            f"precisions_init: the starting precisions must be positive "
            f"(definite, for covariance_type={kind!r})."
        )


def fit_rows(
    feature_set: FeatureSet, n_clusters: int, params: dict[str, Any], random_state: int | None
) -> Steps[RowFit]:
    """EM on the feature rows, weighted by their pixel counts (a generator)."""
    X, w = feature_set.X, feature_set.pixel_weights()
    d = X.shape[1]
    check_starts(params, n_clusters, d)
    mixture, _, n_iter, converged = yield from fit_mixture_steps(
        X, w, n_clusters, params, random_state
    )
    row_labels, mean_ll = predict(X, w, mixture)
    n_pixels = w.sum()
    n_params = mixture.n_parameters()
    score = {
        "log_likelihood": mean_ll,
        "bic": float(-2 * mean_ll * n_pixels + n_params * np.log(n_pixels)),
        "aic": float(-2 * mean_ll * n_pixels + 2 * n_params),
        "n_iter": int(n_iter),
        "converged": bool(converged),
    }
    return RowFit(
        labels=row_labels,
        score=score,
        details={"start": f"best of {START_KMEANS_RUNS} weighted k-means runs"},
        model={
            "covariance_type": mixture.covariance_type,
            "weights": mixture.weights,
            "means": mixture.means,
            "precisions_cholesky": mixture.precisions_cholesky,
        },
    )


def _saved_mixture(parameters: dict[str, Any]) -> Mixture:
    """The mixture of a model's (or a fit's) parameters."""
    return Mixture(
        parameters["covariance_type"],
        np.asarray(parameters["weights"], dtype=np.float64),
        np.asarray(parameters["means"], dtype=np.float64),
        np.asarray(parameters["precisions_cholesky"], dtype=np.float64),
    )


_NO_LIKELIHOOD = (
    "model: its Gaussian parameters give no finite likelihood for this image's pixels "
    "(values too large for them); apply it to images like the one it was made from."
)


def predict_rows(parameters: dict[str, Any], feature_set: FeatureSet) -> np.ndarray:
    """The most likely component of every feature row (a saved model's prediction)."""
    X = feature_set.X
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        components, mean_log_likelihood = predict(
            X, feature_set.pixel_weights(), _saved_mixture(parameters)
        )
    if len(X) and not np.isfinite(mean_log_likelihood):
        raise ValueError(_NO_LIKELIHOOD)
    return components


def probabilities_rows(parameters: dict[str, Any], feature_set: FeatureSet) -> np.ndarray:
    """(n_rows, k) posterior probability of each component for every feature row: the
    responsibilities of the E-step, as scikit-learn's ``GaussianMixture.predict_proba``."""
    mixture = _saved_mixture(parameters)
    X = feature_set.X
    out = np.empty((len(X), len(mixture.means)))
    if len(X) == 0:
        return out
    moments = Moments(X, np.ones(len(X)))
    coefficients = moments.coefficients(mixture)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for z, _, rows in moments:
            log_norm, resp = _normalise(moments.weighted_log_prob(z, coefficients, rows))
            if not np.isfinite(log_norm).all():
                raise ValueError(_NO_LIKELIHOOD)
            out[rows] = resp.T
    return out


def check_model_parameters(check: FieldCheck, parameters: dict[str, Any], k: int, d: int) -> None:
    """A model file's mixture parameters besides the means (``check``: the file's field
    checker)."""
    kind = check.text(
        check.key(parameters, "covariance_type", "parameters"),
        "parameters.covariance_type",
        COVARIANCE_TYPES,
    )
    weights = check.array(check.key(parameters, "weights", "parameters"), "parameters.weights", 1)
    check.shape(weights, "parameters.weights", (k,), "one per component")
    if not (np.all(weights > 0) and abs(weights.sum() - 1) <= 1e-6):
        check.fail("parameters.weights", "expected positive numbers that sum to 1.")
    field = "parameters.precisions_cholesky"
    shape = precision_shape(kind, k, d)
    factors = check.array(
        check.key(parameters, "precisions_cholesky", "parameters"), field, len(shape)
    )
    check.shape(factors, field, shape, f"as scikit-learn's for covariance_type={kind!r}")
    if kind in ("full", "tied"):
        matrices = factors if kind == "full" else factors[None]
        diagonals = np.diagonal(matrices, axis1=1, axis2=2)
        triangular = all(_triangular(m) for m in matrices)
        if not triangular or not np.all(diagonals > 0):
            check.fail(field, "expected triangular Cholesky factors with a positive diagonal.")
        with np.errstate(over="ignore", invalid="ignore"):
            finite = np.isfinite(matrices @ matrices.transpose(0, 2, 1)).all()
    else:
        if not np.all(factors > 0):
            check.fail(field, "expected numbers above 0.")
        with np.errstate(over="ignore"):
            finite = np.isfinite(np.square(factors)).all()
    if not finite:
        check.fail(field, "values too large: the precisions overflow.")


def _triangular(matrix: np.ndarray) -> bool:
    """Upper or lower triangular, up to rounding (a solver leaves ~1e-15 in the zeros)."""
    tolerance = 1e-9 * np.abs(matrix).max()
    return bool(
        np.abs(np.tril(matrix, -1)).max(initial=0) <= tolerance
        or np.abs(np.triu(matrix, 1)).max(initial=0) <= tolerance
    )


PREDICTOR = Predictor(
    components_key="means",
    predict_rows=predict_rows,
    check_parameters=check_model_parameters,
    probabilities_rows=probabilities_rows,
)

_DEGENERATE = (
    "n_clusters: a cluster of the Gaussian mixture collapsed (to a single color, or flat "
    "along a feature), so its covariance cannot be inverted; use fewer clusters, a larger "
    "reg_covar, covariance_type='diag', or standardize=True when the features' scale is "
    "very large or very small."
)

_HIDDEN: dict[str, Any] = dict(allow_array=True, allow_scalar=False, in_widget=False)

METHOD = Method(
    name="gmm",
    title="Gaussian mixture",
    summary="Models colors as k Gaussian blobs (scikit-learn GaussianMixture semantics); "
    "clusters may be elongated.",
    params=(
        Param(
            "covariance_type",
            str,
            "full",
            "Shape of each cluster: 'full' (any ellipsoid), 'tied' (all the same), "
            "'diag' (axis-aligned), 'spherical' (round).",
            choices=COVARIANCE_TYPES,
        ),
        Param(
            "n_init",
            int,
            1,
            "Number of starts; the most likely result is kept.",
            minimum=1,
            maximum=100,
            advanced=True,
        ),
        Param(
            "max_iter",
            int,
            100,
            "Maximum number of EM iterations per start.",
            minimum=1,
            maximum=10_000,
            advanced=True,
        ),
        Param(
            "tol",
            float,
            1e-3,
            "Stop when the mean log-likelihood per pixel improves less than this.",
            minimum=0.0,
            maximum=1.0,
            advanced=True,
        ),
        Param(
            "reg_covar",
            float,
            1e-6,
            "Added to the covariance diagonals so that they stay invertible.",
            minimum=0.0,
            maximum=1e3,
            advanced=True,
        ),
        Param("weights_init", float, None, "Starting mixture weights (k,).", **_HIDDEN),
        Param("means_init", float, None, "Starting means (k, features).", **_HIDDEN),
        Param(
            "precisions_init",
            float,
            None,
            "Starting precisions, shaped as scikit-learn's precisions_.",
            **_HIDDEN,
        ),
    ),
    run=run_on_rows(fit_rows),
    lazy_run=lazy_run_on_rows(fit_rows, PREDICTOR),
    fit_rows=fit_rows,
    predictor=PREDICTOR,
    sweep_scores=("bic", "aic"),
)
