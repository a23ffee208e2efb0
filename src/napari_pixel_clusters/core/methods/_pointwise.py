"""Shared steps of the methods that cluster feature vectors (k-means, Gaussian mixtures).

Such a method declares ``fit_rows(feature_set, n_clusters, params, random_state)`` (a
generator that returns a :class:`RowFit`) and a :class:`~..registry.Predictor`; its
``run`` is :func:`run_on_rows` and its ``lazy_run``
:func:`~._pointwise_lazy.lazy_run_on_rows` of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np

from ..features import FeatureSet, build_features, stain_options
from ..image import ImageData
from ..means import ClusterSums
from ..registry import MethodOutput, RowFit, Steps


def point_features(
    data: ImageData[np.ndarray], n_clusters: int, feature_options: dict[str, Any]
) -> FeatureSet:
    """Build the (possibly compressed) feature set and check ``n_clusters`` fits it."""
    feature_set = build_features(
        data,
        color_space=feature_options["color_space"],
        spatial_weight=feature_options["spatial_weight"],
        standardize=feature_options["standardize"],
        **stain_options(feature_options),
    )
    compressed = feature_set.weights is not None
    check_rows(n_clusters, feature_set, "distinct pixel values" if compressed else "usable pixels")
    return feature_set


def check_rows(n_clusters: int, feature_set: FeatureSet, what: str) -> None:
    """``n_clusters`` must not exceed the rows to fit on (``what`` they are, in words)."""
    n_rows = len(feature_set.X)
    if n_clusters > n_rows:
        raise ValueError(
            f"n_clusters: {n_clusters} clusters were asked for, but the image has only "
            f"{n_rows} {what}; use n_clusters of at most {n_rows}."
        )


def pixel_labels(
    data: ImageData[np.ndarray], feature_set: FeatureSet, row_labels: np.ndarray
) -> np.ndarray:
    """Cluster index per feature row (0-based) -> label image (1..k, 0 = no data)."""
    labels_by_row = row_labels.astype(np.int32) + 1
    if data.mask.all():
        return feature_set.to_pixels(labels_by_row).reshape(data.spatial_shape)
    labels = np.zeros(data.spatial_shape, dtype=np.int32)
    labels[data.mask] = feature_set.to_pixels(labels_by_row)
    return labels


def row_sums(
    feature_set: FeatureSet, row_labels: np.ndarray, n_clusters: int
) -> ClusterSums | None:
    """Pixel count and value sums of each cluster from the distinct values and their counts.

    The same numbers as summing every pixel (exactly, for integer images), without
    touching the pixels; None when the rows are not distinct values.
    """
    if feature_set.raw is None:
        return None
    return ClusterSums.of(row_labels, feature_set.raw, n_clusters, feature_set.weights)


#: ``fit_rows(feature_set, n_clusters, params, random_state)``: yields progress, returns the fit.
FitRows: TypeAlias = Callable[[FeatureSet, int, dict[str, Any], int | None], Steps[RowFit]]


def fit_summary(fit: RowFit, feature_set: FeatureSet) -> dict[str, Any]:
    """The ``score``, ``details`` and ``model`` of a method's output, from its fit."""
    return {
        "score": fit.score,
        "details": {
            "compression": feature_set.compression,
            "features": feature_set.names,
            **fit.details,
            **feature_set.standardization,
        },
        "model": fit.model,
    }


def run_on_rows(
    fit_rows: FitRows,
) -> Callable[
    [ImageData[np.ndarray], int | None, dict[str, Any], dict[str, Any]], Steps[MethodOutput]
]:
    """A method's ``run`` from its ``fit_rows(feature_set, k, params, random_state)``.

    Features are built (compressed where exact), fitted on, and mapped back to pixels.
    """

    def run(
        data: ImageData[np.ndarray],
        n_clusters: int | None,
        feature_options: dict[str, Any],
        params: dict[str, Any],
    ) -> Steps[MethodOutput]:
        assert n_clusters is not None  # these methods need one: segment checked it
        feature_set = point_features(data, n_clusters, feature_options)
        fit = yield from fit_rows(feature_set, n_clusters, params, feature_options["random_state"])
        yield "predict", 1.0
        return MethodOutput(
            labels=pixel_labels(data, feature_set, fit.labels),
            cluster_sums=row_sums(feature_set, fit.labels, n_clusters),
            **fit_summary(fit, feature_set),
        )

    return run


def check_start_array(name: str, value: object, shape: tuple[int, ...]) -> None:
    """Explicit starting values (``init``, ``means_init``, ...) must fit the features."""
    if value is not None and isinstance(value, np.ndarray) and value.shape != shape:
        raise ValueError(
            f"{name}: expected an array of shape {shape} (clusters x features), "
            f"got shape {value.shape}."
        )
