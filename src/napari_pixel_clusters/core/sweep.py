"""How many clusters? Fit k-means or a Gaussian mixture for a range of k and compare.

The features are built (and compressed) once and every fit reuses them. Scores that
need distances between pixels (silhouette, Calinski-Harabasz, Davies-Bouldin) are
computed on a fixed-size, reproducible sample of pixels: silhouette on every pixel would
be quadratic. They are computed after the fits, for every k at once (core/scores.py: the
sample's pairwise distances once, in blocks, not once per k).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .features import FeatureSet, build_features, stain_options
from .image import ImageData, mask_record, read_image
from .lazy import is_lazy, is_multiscale, read_lazy_image
from .methods import METHODS, get_method
from .methods._pointwise_lazy import lazy_feature_steps
from .registry import N_CLUSTERS, Method, Steps, T, check_options, cleanup_options, drain
from .scores import score_steps

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
        The k the rule picks (see :func:`suggest_k`).
    rule : str
        The rule and why it picked ``suggested_k``, in a few sentences; it says so when
        ``suggested_k`` is at the edge of the range tried.
    method : str
    params : dict
        Every parameter used (as in ``Segmentation.params``) plus the sample size.
    elbow_k : int or None
        The elbow of the inertia curve (see :func:`elbow_k`); None for mixtures, or when
        the curve has no elbow inside the range.
    """

    table: pd.DataFrame
    suggested_k: int
    rule: str
    method: str
    params: dict[str, Any]
    elbow_k: int | None = None

    @property
    def at_range_edge(self) -> bool:
        """True when ``suggested_k`` is the largest k tried (or the smallest, above 2):
        a wider range may suggest another k."""
        return _at_range_edge(self.suggested_k, [int(k) for k in self.table["k"]])


def sweep(
    image: Any,
    method: str = "kmeans",
    k_values: Iterable[int] = DEFAULT_K_VALUES,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    mask: Any = None,
    **options: Any,
) -> Sweep:
    """Fit ``method`` for every k in ``k_values`` and suggest the number of clusters.

    Parameters
    ----------
    image, rgb, channel_axis, **options
        As for :func:`segment` (color space, spatial weight, the method's parameters...).
    method : str
        A method with sweep scores (``Method.sweepable``: ``"kmeans"``, ``"gmm"``).
    k_values : iterable of int
        Numbers of clusters to try (at least two values; each at least 1).
    sample_size : int
        Pixels drawn (reproducibly, from ``random_state``) for the distance-based scores.
    mask : array_like or None
        Only the pixels inside are fitted and scored, as by :func:`segment` (an array of
        the image's spatial shape, non-zero inside); ``params["mask"]`` records it.

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
    return drain(
        sweep_steps(
            image,
            method,
            k_values,
            rgb=rgb,
            channel_axis=channel_axis,
            sample_size=sample_size,
            mask=mask,
            **options,
        )
    )


def sweep_steps(
    image: Any,
    method: str = "kmeans",
    k_values: Iterable[int] = DEFAULT_K_VALUES,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    mask: Any = None,
    **options: Any,
) -> Steps[Sweep]:
    """:func:`sweep` as a generator: yields ``("k=K", fraction)`` before each fit, then
    ``("scores", fraction)`` while the sample is scored (every k at once), then ``"done"``.

    Dask and zarr arrays (and pyramids) are read chunk by chunk first, as by
    :func:`segment`: their distinct values are counted exactly (or sampled).
    """
    return (
        yield from _sweep_steps(
            image,
            _check_sweepable(get_method(method)),
            _check_k_values(k_values),
            rgb,
            channel_axis,
            sample_size,
            options,
            mask,
        )
    )


def _sweep_steps(
    image: Any,
    method: Method,
    ks: list[int],
    rgb: bool | None,
    channel_axis: int | None,
    sample_size: int,
    options: dict[str, Any],
    mask: Any = None,
) -> Steps[Sweep]:
    if is_multiscale(image):  # a pyramid: its full-size level
        image = image[0]
    lazy = is_lazy(image)
    data: ImageData[Any] = (read_lazy_image if lazy else read_image)(
        image, rgb=rgb, channel_axis=channel_axis, mask=mask
    )
    feature_options, params = check_options(method, options)
    cleaned = [name for name, value in cleanup_options(method, options).items() if value]
    if cleaned:  # scores are of the fit: a clean-up would change nothing, so say so
        raise ValueError(
            f"{cleaned[0]}: a sweep scores the fits before any clean-up; leave "
            f"{cleaned[0]} out (give it to segment with the k you choose)."
        )
    _check_no_start_arrays(params)
    if not isinstance(sample_size, (int, np.integer)) or sample_size < 10:
        raise ValueError(
            f"sample_size: must be a whole number of at least 10, got {sample_size!r}."
        )
    if lazy:  # larger than memory: distinct values counted chunk by chunk, or a sample
        feature_set, _ = yield from lazy_feature_steps(data, feature_options)
    else:
        feature_set = build_features(
            data,
            color_space=feature_options["color_space"],
            spatial_weight=feature_options["spatial_weight"],
            standardize=feature_options["standardize"],
            **stain_options(feature_options),
        )
    if ks[-1] > len(feature_set.X):
        raise ValueError(
            f"k_values: up to {ks[-1]} clusters were asked for, but the image has only "
            f"{len(feature_set.X)} distinct feature vectors; use k of at most "
            f"{len(feature_set.X)}."
        )
    random_state = feature_options["random_state"]
    sample = _sample_rows(feature_set, sample_size, random_state)
    sample_rows, sample_counts = np.unique(sample, return_counts=True)
    rows, sample_labels = [], []
    share = len(ks) / (len(ks) + 1)  # of the progress bar; the scores the rest
    for i, k in enumerate(ks):
        yield f"k={k}", share * i / len(ks)
        row, labels = _fit_k(method, feature_set, k, params, random_state)
        rows.append(row)
        sample_labels.append(labels[sample_rows])
    scores = yield from _scaled_steps(
        score_steps(feature_set.X[sample_rows], sample_labels, sample_counts), share
    )
    yield "done", 1.0
    table = pd.DataFrame([row | score for row, score in zip(rows, scores, strict=True)])
    table = table[[column for column in table if column != "seconds"] + ["seconds"]]
    total = total_inertia(feature_set) if "inertia" in table and ks[0] > 1 else None
    suggested_k, rule, elbow = suggest_k(table, len(sample), total)
    return Sweep(
        table,
        suggested_k,
        rule,
        method.name,
        {
            **feature_options,
            **params,
            "k_values": ks,
            "sample_size": len(sample),
            "compression": feature_set.compression,
            **mask_record(data),
        },
        elbow,
    )


def _check_sweepable(method: Method) -> Method:
    if not method.sweepable:
        names = " or ".join(repr(m.name) for m in METHODS.values() if m.sweepable)
        raise ValueError(
            f"method: a sweep compares numbers of clusters for {names}, not {method.name!r}."
        )
    return method


def _check_k_values(k_values: Iterable[int]) -> list[int]:
    try:
        ks = sorted({N_CLUSTERS.check(k) for k in k_values})
    except TypeError:
        raise ValueError(
            f"k_values: expected numbers of clusters such as range(2, 11), got {k_values!r}."
        ) from None
    except ValueError as error:
        raise ValueError(f"k_values: {error}") from None
    if len(ks) < 2:
        raise ValueError(f"k_values: give at least two numbers of clusters to compare, got {ks}.")
    return ks


def _check_no_start_arrays(params: dict[str, Any]) -> None:
    for name, value in params.items():
        if isinstance(value, np.ndarray):
            raise ValueError(
                f"{name}: explicit starting values fit one k only; a sweep "
                "starts every k from its own random start."
            )


def _sample_rows(
    feature_set: FeatureSet, size: int | np.integer, random_state: int | None
) -> np.ndarray:
    """Row of ``X`` for each of ``size`` pixels drawn without replacement (rows weighted
    by their pixel counts when only the counts are known, as for a lazy image)."""
    rng = np.random.default_rng(0 if random_state is None else random_state)
    n_pixels = feature_set.n_pixels
    if feature_set.inverse is None and feature_set.weights is not None:
        weights = feature_set.weights / feature_set.weights.sum()
        return rng.choice(len(weights), size=min(size, n_pixels), p=weights)
    pixels = rng.choice(n_pixels, size=min(size, n_pixels), replace=False)
    return pixels if feature_set.inverse is None else feature_set.inverse[pixels]


def _fit_k(
    method: Method,
    feature_set: FeatureSet,
    k: int,
    params: dict[str, Any],
    random_state: int | None,
) -> tuple[dict[str, Any], np.ndarray]:
    """(the table's row: k, the method's scores and the seconds, label of each row of X)."""
    assert method.fit_rows is not None  # a sweepable method (see _check_sweepable)
    started = time.perf_counter()
    fit = drain(method.fit_rows(feature_set, k, params, random_state))
    seconds = time.perf_counter() - started
    scores = {
        name: value
        for name, value in fit.score.items()
        if name in ("inertia", "bic", "aic", "log_likelihood")
    }
    return {"k": k, **scores, "seconds": round(seconds, 4)}, fit.labels


def _scaled_steps(steps: Steps[T], start: float) -> Steps[T]:
    """``steps`` with their fractions mapped from [0, 1] to [start, 1]."""
    while True:
        try:
            stage, fraction = next(steps)
        except StopIteration as stop:
            return stop.value
        yield stage, start + (1 - start) * fraction


def total_inertia(feature_set: FeatureSet) -> float:
    """The inertia of one cluster (k=1): the pixels' squared distances to their mean."""
    weights = feature_set.pixel_weights()
    mean = np.average(feature_set.X, axis=0, weights=weights)
    return float(weights @ ((feature_set.X - mean) ** 2).sum(axis=1))


ELBOW_MIN_DEPTH = 0.05  # how far below the chord (in scaled units) an elbow must lie


def elbow_k(ks: Sequence[int] | npt.ArrayLike, values: npt.ArrayLike) -> int | None:
    """The elbow of a decreasing curve such as inertia against k, or None if it has none.

    Kneedle (Satopaa et al., 2011) on the logarithm of the values: with k and log(value)
    each scaled to [0, 1], the elbow is the k lying farthest below the chord from the
    first point to the last. The logarithm compares gains in proportion, so an elbow
    near the end of the range (where the absolute drops are small) is found as surely as
    one near the start; a running minimum first irons out noise (a k that fits worse
    than a smaller k). None when no k lies at least ``ELBOW_MIN_DEPTH`` below the chord:
    the curve is straight or still bending down, and any elbow lies outside the range.

    Examples
    --------
    >>> elbow_k([1, 2, 3, 4, 5, 6], [100, 60, 30, 5, 4.5, 4])
    4
    >>> elbow_k([2, 3, 4], [3, 2, 1]) is None
    True
    """
    ks = np.asarray(ks, float)
    values = np.asarray(values, float)
    if ks.ndim != 1 or len(ks) < 2 or np.any(np.diff(ks) <= 0):
        raise ValueError(
            f"ks: expected at least two increasing numbers of clusters, got {ks.tolist()}."
        )
    if values.shape != ks.shape or not np.all(np.isfinite(values)):
        raise ValueError(
            f"values: expected one finite score per k ({len(ks)}), got {values.tolist()}."
        )
    values = np.minimum.accumulate(values)
    if values[0] <= 0 or values[-1] >= values[0]:
        return None
    log_values = np.log(np.maximum(values, values[0] * 1e-12))  # exact fits: inertia 0
    y = (log_values - log_values[-1]) / (log_values[0] - log_values[-1])
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    depth = (1 - x) - y
    best = int(np.argmax(depth))
    return int(ks[best]) if depth[best] >= ELBOW_MIN_DEPTH else None


def suggest_k(
    table: pd.DataFrame, sample_size: int, total_inertia: float | None = None
) -> tuple[int, str, int | None]:
    """(suggested k, the rule in words, elbow k or None) for a sweep's table.

    - With ``bic`` (mixtures): the k of lowest BIC.
    - With ``inertia`` (k-means): the elbow of the inertia curve (:func:`elbow_k`), the
      curve starting from ``total_inertia`` at k=1 when the table starts above 1 (so an
      elbow at the smallest k tried can be found). Without an elbow, the k of highest
      silhouette. The suggestion never contradicts the marked elbow: it is the elbow.
    - A suggestion at the top of the range (or at its bottom, above k=2) says the range
      may be too small.
    """
    ks = [int(k) for k in table["k"]]
    if "bic" in table:
        # pandas-stubs type idxmin's row label as Hashable, which .loc does not take
        best = table.loc[table["bic"].idxmin()]  # type: ignore[call-overload]
        k = int(best["k"])
        rule = (
            f"k={k} has the lowest BIC ({best['bic']:,.0f}): the best balance between "
            "how well the mixture fits the pixels and how many parameters it needs."
        )
        return k, rule + _range_warning(k, ks), None
    curve_ks, curve = ks, list(table["inertia"])
    if total_inertia is not None:
        curve_ks, curve = [1, *ks], [total_inertia, *curve]
    elbow = elbow_k(curve_ks, curve)
    silhouette = table["silhouette"]
    # (as for BIC above: pandas-stubs type idxmax's label as Hashable)
    best_silhouette = (
        None if silhouette.isna().all() else table.loc[silhouette.idxmax()]  # type: ignore[call-overload]
    )
    if elbow is not None:
        rule = (
            f"k={elbow} is the elbow of the inertia curve: up to it, each added "
            "cluster shrinks the spread within clusters by a much larger fraction than "
            "after it."
        )
        if best_silhouette is not None and int(best_silhouette["k"]) != elbow:
            other = int(best_silhouette["k"])
            rule += (
                f" The silhouette (on {sample_size:,} pixels) is highest at k={other}, "
                f"a {'coarser' if other < elbow else 'finer'} split."
            )
        return elbow, rule + _range_warning(elbow, ks), elbow
    flat = (
        f"The inertia curve has no elbow between k={ks[0]} and k={ks[-1]}: it has not "
        f"levelled off by k={ks[-1]}."
    )
    if best_silhouette is None:
        return ks[-1], flat + _range_warning(ks[-1], ks), None
    k = int(best_silhouette["k"])
    rule = (
        f"{flat} k={k} has the highest silhouette ({best_silhouette['silhouette']:.2f}, "
        f"on {sample_size:,} pixels): its clusters are the most compact and the best "
        "separated."
    )
    return k, rule + _range_warning(k, ks), None


def _range_warning(k: int, ks: list[int]) -> str:
    """A sentence when ``k`` is the edge of the range and the range could be wider
    (below: down to k=2, as one cluster segments nothing)."""
    if not _at_range_edge(k, ks):
        return ""
    return f" k={k} is the {'largest' if k == ks[-1] else 'smallest'} k tried; try a wider range."


def _at_range_edge(k: int, ks: list[int]) -> bool:
    return k == ks[-1] or (k == ks[0] and k > 2)
