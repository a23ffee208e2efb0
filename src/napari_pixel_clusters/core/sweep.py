"""How many clusters? Fit k-means or a Gaussian mixture for a range of k and compare.

The features are built (and compressed) once and every fit reuses them. Scores that
need distances between pixels (silhouette, Calinski-Harabasz, Davies-Bouldin) are
computed on a fixed-size, reproducible sample of pixels: silhouette on every pixel would
be quadratic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .features import FeatureSet, build_features
from .image import read_image
from .methods import get_method
from .registry import N_CLUSTERS, check_options, drain

DEFAULT_K_VALUES = range(2, 11)
DEFAULT_SAMPLE_SIZE = 5_000


@dataclass
class Sweep:
    """What :func:`sweep` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per k: ``k``, the method's scores (``inertia``; ``bic``, ``aic``,
        ``log_likelihood``), ``silhouette``, ``calinski_harabasz``, ``davies_bouldin``
        (on the pixel sample) and ``seconds``.
    suggested_k : int
        The k the rule picks.
    rule : str
        The rule and why it picked ``suggested_k``, in a sentence.
    method : str
    params : dict
        Every parameter used (as in ``Segmentation.params``) plus the sample size.
    """

    table: pd.DataFrame
    suggested_k: int
    rule: str
    method: str
    params: dict


def sweep(image, method: str = "kmeans", k_values=DEFAULT_K_VALUES, *, rgb=None,
          channel_axis=None, sample_size: int = DEFAULT_SAMPLE_SIZE, **options) -> Sweep:
    """Fit ``method`` for every k in ``k_values`` and suggest the number of clusters.

    Parameters
    ----------
    image, rgb, channel_axis, **options
        As for :func:`segment` (colour space, spatial weight, the method's parameters...).
    method : {"kmeans", "gmm"}
    k_values : iterable of int
        Numbers of clusters to try (at least two values; each at least 1).
    sample_size : int
        Pixels drawn (reproducibly, from ``random_state``) for the distance-based scores.

    Returns
    -------
    Sweep

    Examples
    --------
    >>> from skimage import data
    >>> result = sweep(data.astronaut(), "kmeans", range(2, 6))
    >>> list(result.table["k"])
    [2, 3, 4, 5]
    """
    return drain(sweep_steps(image, method, k_values, rgb=rgb, channel_axis=channel_axis,
                             sample_size=sample_size, **options))


def sweep_steps(image, method: str = "kmeans", k_values=DEFAULT_K_VALUES, *, rgb=None,
                channel_axis=None, sample_size: int = DEFAULT_SAMPLE_SIZE, **options):
    """:func:`sweep` as a generator: yields ``("k=K", fraction)`` before each fit.

    Dask and zarr arrays (and pyramids) are read chunk by chunk first, as by
    :func:`segment`: their distinct values are counted exactly (or sampled).
    """
    spec = get_method(method)
    if spec.fit_rows is None:
        raise ValueError(
            f"method: a sweep compares numbers of clusters for 'kmeans' or 'gmm', not "
            f"{method!r}."
        )
    ks = _check_k_values(k_values)
    from .lazy import is_lazy, is_multiscale, read_lazy_image
    from .lazy.points import lazy_feature_steps

    if is_multiscale(image):  # a pyramid: its full-size level
        image = image[0]
    lazy = is_lazy(image)
    data = (read_lazy_image if lazy else read_image)(image, rgb=rgb, channel_axis=channel_axis)
    features, params = check_options(spec, options)
    _check_no_start_arrays(params)
    if not isinstance(sample_size, (int, np.integer)) or sample_size < 10:
        raise ValueError(f"sample_size: must be a whole number of at least 10, got "
                         f"{sample_size!r}.")
    if lazy:  # larger than memory: distinct values counted chunk by chunk, or a sample
        feature_set, _ = yield from lazy_feature_steps(data, features)
    else:
        feature_set = build_features(data, color_space=features["color_space"],
                                     spatial_weight=features["spatial_weight"],
                                     standardize=features["standardize"])
    if ks[-1] > len(feature_set.X):
        raise ValueError(
            f"k_values: up to {ks[-1]} clusters were asked for, but the image has only "
            f"{len(feature_set.X)} distinct feature vectors; use k of at most "
            f"{len(feature_set.X)}."
        )
    sample = _sample_rows(feature_set, sample_size, features["random_state"])
    rows = []
    for i, k in enumerate(ks):
        yield f"k={k}", i / len(ks)
        rows.append(_score_k(spec, feature_set, k, params, features["random_state"], sample))
    yield "done", 1.0
    table = pd.DataFrame(rows)
    suggested_k, rule = suggest_k(table, method, len(sample))
    return Sweep(table, suggested_k, rule, method,
                 {**features, **params, "k_values": ks, "sample_size": len(sample),
                  "compression": feature_set.compression})


def _check_k_values(k_values) -> list[int]:
    try:
        ks = sorted({N_CLUSTERS.check(k) for k in k_values})
    except TypeError:
        raise ValueError(f"k_values: expected numbers of clusters such as range(2, 11), "
                         f"got {k_values!r}.") from None
    except ValueError as error:
        raise ValueError(f"k_values: {error}") from None
    if len(ks) < 2:
        raise ValueError(f"k_values: give at least two numbers of clusters to compare, got "
                         f"{ks}.")
    return ks


def _check_no_start_arrays(params: dict) -> None:
    for name, value in params.items():
        if isinstance(value, np.ndarray):
            raise ValueError(f"{name}: explicit starting values fit one k only; a sweep "
                             "starts every k from its own random start.")


def _sample_rows(feature_set: FeatureSet, size: int, random_state) -> np.ndarray:
    """Row of ``X`` for each of ``size`` pixels drawn without replacement (rows weighted
    by their pixel counts when only the counts are known, as for a lazy image)."""
    rng = np.random.default_rng(0 if random_state is None else random_state)
    n_pixels = feature_set.n_pixels
    if feature_set.inverse is None and feature_set.weights is not None:
        weights = feature_set.weights / feature_set.weights.sum()
        return rng.choice(len(weights), size=min(size, n_pixels), p=weights)
    pixels = rng.choice(n_pixels, size=min(size, n_pixels), replace=False)
    return pixels if feature_set.inverse is None else feature_set.inverse[pixels]


def _score_k(spec, feature_set, k, params, random_state, sample) -> dict:
    started = time.perf_counter()
    fit = drain(spec.fit_rows(feature_set, k, params, random_state))
    seconds = time.perf_counter() - started
    X, labels = feature_set.X[sample], fit.labels[sample]
    scores = {name: value for name, value in fit.score.items()
              if name in ("inertia", "bic", "aic", "log_likelihood")}
    if len(np.unique(labels)) >= 2 and len(np.unique(labels)) < len(labels):
        from sklearn.metrics import (calinski_harabasz_score, davies_bouldin_score,
                                     silhouette_score)

        scores |= {"silhouette": float(silhouette_score(X, labels)),
                   "calinski_harabasz": float(calinski_harabasz_score(X, labels)),
                   "davies_bouldin": float(davies_bouldin_score(X, labels))}
    else:
        scores |= {"silhouette": np.nan, "calinski_harabasz": np.nan,
                   "davies_bouldin": np.nan}
    return {"k": k, **scores, "seconds": round(seconds, 4)}


def elbow_k(ks, values) -> int:
    """The knee of a decreasing curve: the point farthest below the chord (kneedle)."""
    x = (np.asarray(ks, float) - ks[0]) / max(ks[-1] - ks[0], 1)
    y = np.asarray(values, float)
    span = y[0] - y[-1]
    y = (y - y[-1]) / span if span > 0 else np.zeros_like(y)
    return int(ks[int(np.argmax((1 - x) - y))])


def suggest_k(table: pd.DataFrame, method: str, sample_size: int) -> tuple[int, str]:
    """(k, sentence): minimum BIC for mixtures, maximum silhouette for k-means."""
    if method == "gmm":
        best = table.loc[table["bic"].idxmin()]
        return int(best["k"]), (
            f"k={int(best['k'])} has the lowest BIC ({best['bic']:,.0f}): the best balance "
            "between how well the mixture fits the pixels and how many parameters it needs."
        )
    elbow = elbow_k(list(table["k"]), list(table["inertia"]))
    if table["silhouette"].isna().all():
        return elbow, (f"k={elbow} is the elbow of the inertia curve, where adding clusters "
                       "stops paying off.")
    best = table.loc[table["silhouette"].idxmax()]
    return int(best["k"]), (
        f"k={int(best['k'])} has the highest silhouette ({best['silhouette']:.2f}, on "
        f"{sample_size:,} pixels): its clusters are the most compact and the best "
        f"separated. The elbow of the inertia curve is at k={elbow}."
    )
