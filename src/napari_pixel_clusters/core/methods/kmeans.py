"""k-means on pixel features, fitted on distinct values weighted by their pixel counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..features import FeatureSet, column_variance, weighted_mean_var
from ..registry import Method, Param, Predictor, RowFit, Steps
from ._pointwise import check_start_array, run_on_rows
from ._pointwise_lazy import lazy_run_on_rows


def sklearn_equivalent_tol(
    tol: float, feature_set: FeatureSet, row_var: float | None = None
) -> float:
    """``tol`` that stops KMeans on weighted rows exactly where it stops on all pixels.

    scikit-learn's stopping threshold is ``tol * mean(var(X))`` of the data it is given;
    the variance of weighted distinct rows differs from the pixels' variance, so ``tol``
    is rescaled by the ratio of the two. ``row_var``: ``mean(var(X))`` if known.
    """
    if feature_set.weights is None or tol == 0:
        return tol
    if row_var is None:
        row_var = float(np.mean(column_variance(feature_set.X)))
    pixel_var = np.mean(weighted_mean_var(feature_set.X, feature_set.weights)[1])
    return tol if row_var == 0 else float(tol * pixel_var / row_var)


def fit_rows(
    feature_set: FeatureSet, n_clusters: int, params: dict[str, Any], random_state: int | None
) -> Steps[RowFit]:
    """KMeans on the feature rows, weighted by their pixel counts (a generator).

    scikit-learn's ``KMeans(...).fit(X, sample_weight=counts)``, compiled
    (:mod:`._kmeans_lloyd`): the same starts, iterations and labels, faster.
    """
    init = params["init"]
    check_start_array("init", init, (n_clusters, feature_set.X.shape[1]))
    column_mean, variances = weighted_mean_var(feature_set.X, None)  # scikit-learn's, once
    row_var = float(np.mean(variances))
    tol = sklearn_equivalent_tol(params["tol"], feature_set, row_var)
    yield "fit", 0.1
    from . import _kmeans_lloyd

    fit = _kmeans_lloyd.fit(
        feature_set.X,
        n_clusters,
        feature_set.weights,
        init=init,
        n_init=1 if isinstance(init, np.ndarray) else params["n_init"],
        max_iter=params["max_iter"],
        tol=tol,
        random_state=random_state,
        column_variance=row_var,
        column_mean=column_mean,
    )
    return RowFit(
        labels=fit.labels,
        score={"inertia": fit.inertia, "n_iter": fit.n_iter},
        details={"tol_effective": tol},
        model={"centers": fit.centers},
    )


def predict_rows(parameters: dict[str, Any], feature_set: FeatureSet) -> np.ndarray:
    """The nearest center of every feature row (a saved model's prediction)."""
    from sklearn.metrics import pairwise_distances_argmin

    return pairwise_distances_argmin(feature_set.X, np.asarray(parameters["centers"]))


def warm_up() -> None:
    """Compile the k-means loops, the distinct rows' loops and the lazy histogram's
    counting loop (once per machine) or load them from numba's disk cache."""
    from .. import _distinct_loops
    from ..lazy import _counting
    from . import _kmeans_lloyd

    _kmeans_lloyd.warm_up()
    _distinct_loops.warm_up()
    _counting.warm_up()


PREDICTOR = Predictor(components_key="centers", predict_rows=predict_rows)

METHOD = Method(
    name="kmeans",
    title="k-means",
    summary="Groups pixels around k center colors (scikit-learn KMeans); fast and exact.",
    params=(
        Param(
            "init",
            str,
            "k-means++",
            "How to choose the starting centers: 'k-means++' (spread out) or 'random'. "
            "Scripts may pass an array of starting centers (clusters x features).",
            choices=("k-means++", "random"),
            allow_array=True,
            advanced=True,
        ),
        Param(
            "n_init",
            int,
            3,
            "Number of random starts; the most compact result is kept.",
            minimum=1,
            maximum=100,
            advanced=True,
        ),
        Param(
            "max_iter",
            int,
            300,
            "Maximum number of iterations per start.",
            minimum=1,
            maximum=10_000,
            advanced=True,
        ),
        Param(
            "tol",
            float,
            1e-4,
            "Stop when centers move less than this (relative to the data's variance).",
            minimum=0.0,
            maximum=1.0,
            advanced=True,
        ),
    ),
    run=run_on_rows(fit_rows),
    lazy_run=lazy_run_on_rows(fit_rows, PREDICTOR),
    fit_rows=fit_rows,
    predictor=PREDICTOR,
    sweep_scores=("inertia",),
    warm_up=warm_up,
)
