"""Shared steps of the methods that cluster feature vectors (k-means, Gaussian mixtures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..features import FeatureSet, build_features
from ..image import ImageData
from ..means import ClusterSums
from ..registry import MethodOutput


def point_features(data: ImageData, n_clusters: int, features: dict) -> FeatureSet:
    """Build the (possibly compressed) feature set and check ``n_clusters`` fits it."""
    feature_set = build_features(
        data,
        color_space=features["color_space"],
        spatial_weight=features["spatial_weight"],
        standardize=features["standardize"],
    )
    n_distinct = len(feature_set.X) if feature_set.weights is not None else None
    n_rows = len(feature_set.X)
    if n_clusters > n_rows:
        what = "distinct pixel values" if n_distinct is not None else "usable pixels"
        raise ValueError(
            f"n_clusters: {n_clusters} clusters were asked for, but the image has only "
            f"{n_rows} {what}; use n_clusters of at most {n_rows}."
        )
    return feature_set


def pixel_labels(data: ImageData, feature_set: FeatureSet, row_labels: np.ndarray) -> np.ndarray:
    """Cluster index per feature row (0-based) -> label image (1..k, 0 = no data)."""
    labels_by_row = row_labels.astype(np.int32) + 1
    if data.mask.all():
        return feature_set.to_pixels(labels_by_row).reshape(data.spatial_shape)
    labels = np.zeros(data.spatial_shape, dtype=np.int32)
    labels[data.mask] = feature_set.to_pixels(labels_by_row)
    return labels


def row_sums(feature_set: FeatureSet, row_labels: np.ndarray, n_clusters: int):
    """Pixel count and value sums of each cluster from the distinct values and their counts.

    The same numbers as summing every pixel (exactly, for integer images), without
    touching the pixels; None when the rows are not distinct values.
    """
    if feature_set.raw is None:
        return None
    return ClusterSums.of(row_labels, feature_set.raw, n_clusters, feature_set.weights)


@dataclass
class RowFit:
    """A method fitted on feature rows: a 0-based cluster per row, scores, the model."""

    labels: np.ndarray
    score: dict
    details: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)


def run_on_rows(fit_rows: Callable):
    """A method's ``run`` from its ``fit_rows(feature_set, k, params, random_state)``.

    Features are built (compressed where exact), fitted on, and mapped back to pixels.
    """

    def run(data, n_clusters, features, params):
        feature_set = point_features(data, n_clusters, features)
        fit = yield from fit_rows(feature_set, n_clusters, params, features["random_state"])
        yield "predict", 1.0
        return MethodOutput(
            labels=pixel_labels(data, feature_set, fit.labels),
            cluster_sums=row_sums(feature_set, fit.labels, n_clusters),
            score=fit.score,
            details={
                "compression": feature_set.compression,
                "features": feature_set.names,
                **fit.details,
                **feature_set.standardization,
            },
            model=fit.model,
        )

    return run


def check_start_array(name: str, value, shape: tuple[int, ...]) -> None:
    """Explicit starting values (``init``, ``means_init``, ...) must fit the features."""
    if value is not None and isinstance(value, np.ndarray) and value.shape != shape:
        raise ValueError(
            f"{name}: expected an array of shape {shape} (clusters x features), "
            f"got shape {value.shape}."
        )
