"""Segmentation (core/result.py): cluster table, palette and colors, recorded parameters,
contiguous labels. Outlines are in test_contours.py, saving in test_export.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.result import compact_labels


def test_table_describes_each_cluster(photo):
    seg = npc.segment(photo, "kmeans", 4, random_state=0)
    table = seg.table
    assert list(table.columns) == [
        "label",
        "pixels",
        "fraction",
        "mean_R",
        "mean_G",
        "mean_B",
        "color",
    ]
    assert table["pixels"].sum() == photo.shape[0] * photo.shape[1]
    assert table["fraction"].sum() == pytest.approx(1.0)
    first = table.iloc[0]
    expected = photo[seg.labels == 1].mean(axis=0)
    assert first["color"] == "#{:02x}{:02x}{:02x}".format(*tuple(round(v) for v in expected))


def test_grey_table_and_colors_use_intensity():
    seg = npc.segment(data.coins(), "kmeans", 3, random_state=0)
    assert "mean_intensity" in seg.table.columns
    assert seg.colors.shape == (3, 3)
    assert np.all(seg.colors[:, 0] == seg.colors[:, 1])
    darkest = np.argmin(seg.palette[:, 0])
    assert seg.table["color"][darkest] < seg.table["color"][np.argmax(seg.palette[:, 0])]


def test_params_hold_everything_used_and_are_json(photo):
    seg = npc.segment(photo, "gmm", 3, color_space="lab", covariance_type="diag")
    params = json.loads(json.dumps(seg.params))
    for key in (
        "method",
        "n_clusters_requested",
        "color_space",
        "spatial_weight",
        "standardize",
        "random_state",
        "covariance_type",
        "n_init",
        "max_iter",
        "tol",
        "reg_covar",
        "compression",
        "features",
        "versions",
        "image",
    ):
        assert key in params, key
    assert params["color_space"] == "lab" and params["covariance_type"] == "diag"
    assert params["versions"]["scikit-learn"]
    assert set(seg.score) >= {"bic", "aic", "log_likelihood"}


def test_empty_components_are_dropped_and_labels_stay_contiguous():
    labels = np.array([[0, 2, 2], [5, 5, 0]])
    compact, kept = compact_labels(labels)
    np.testing.assert_array_equal(compact, [[0, 1, 1], [2, 2, 0]])
    np.testing.assert_array_equal(kept, [2, 5])
