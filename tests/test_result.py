"""Segmentation: table, palette, colours, provenance and outline polygons."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data, draw

import napari_pixel_clusters as npc
from conftest import collect_steps
from napari_pixel_clusters.core.result import compact_labels


def test_table_describes_each_cluster(photo):
    seg = npc.segment(photo, "kmeans", 4, random_state=0)
    table = seg.table
    assert list(table.columns) == ["label", "pixels", "fraction", "mean_R", "mean_G",
                                   "mean_B", "color"]
    assert table["pixels"].sum() == photo.shape[0] * photo.shape[1]
    assert table["fraction"].sum() == pytest.approx(1.0)
    first = table.iloc[0]
    expected = photo[seg.labels == 1].mean(axis=0)
    assert first["color"] == "#%02x%02x%02x" % tuple(int(round(v)) for v in expected)


def test_grey_table_and_colours_use_intensity():
    seg = npc.segment(data.coins(), "kmeans", 3, random_state=0)
    assert "mean_intensity" in seg.table.columns
    assert seg.colors.shape == (3, 3)
    assert np.all(seg.colors[:, 0] == seg.colors[:, 1])
    darkest = np.argmin(seg.palette[:, 0])
    assert seg.table["color"][darkest] < seg.table["color"][np.argmax(seg.palette[:, 0])]


def test_params_hold_everything_used_and_are_json(photo):
    seg = npc.segment(photo, "gmm", 3, color_space="lab", covariance_type="diag")
    params = json.loads(json.dumps(seg.params))
    for key in ("method", "n_clusters_requested", "color_space", "spatial_weight",
                "standardize", "random_state", "covariance_type", "n_init", "max_iter",
                "tol", "reg_covar", "compression", "features", "versions", "image"):
        assert key in params, key
    assert params["color_space"] == "lab" and params["covariance_type"] == "diag"
    assert params["versions"]["scikit-learn"]
    assert set(seg.score) >= {"bic", "aic", "log_likelihood"}


def test_empty_components_are_dropped_and_labels_stay_contiguous():
    labels = np.array([[0, 2, 2], [5, 5, 0]])
    compact, kept = compact_labels(labels)
    np.testing.assert_array_equal(compact, [[0, 1, 1], [2, 2, 0]])
    np.testing.assert_array_equal(kept, [2, 5])


def test_contours_outline_each_region():
    labels = np.zeros((60, 80), np.int32)
    labels[draw.disk((20, 20), 10)] = 1
    labels[draw.rectangle((35, 40), (54, 69))] = 2
    labels[50:52, 5:7] = 1  # 4 pixels: below min_area
    seg = npc.segment(labels.astype(np.uint8), "kmeans", 3, random_state=0)
    contours = seg.contours(min_area=10)
    assert len(contours) == 3  # background, disk, rectangle
    disk = next(c for c in contours if c.area < 400)
    rows, cols = disk.vertices[:, 0], disk.vertices[:, 1]
    assert rows.min() == pytest.approx(10, abs=1) and rows.max() == pytest.approx(30, abs=1)
    assert cols.min() == pytest.approx(10, abs=1) and cols.max() == pytest.approx(30, abs=1)
    assert seg.labels[20, 20] == disk.label
    assert len(seg.contours(min_area=0)) == 4  # now with the small square


def test_contours_of_a_stack_carry_the_plane_index():
    stack = np.zeros((2, 30, 30), np.uint8)
    stack[1, 5:15, 5:15] = 9
    contours = npc.segment(stack, "kmeans", 2, random_state=0).contours(min_area=5)
    square = next(c for c in contours if c.area == 100)
    assert np.all(square.vertices[:, 0] == 1)
    assert square.vertices.shape[1] == 3


def test_segment_steps_report_named_stages_and_return_the_result(photo):
    steps = npc.segment_steps(photo, "gmm", 3, random_state=0)
    stages, result = collect_steps(steps)
    names = [stage for stage, _ in stages]
    assert names[0] == "features" and names[-1] == "predict"
    assert names.count("fit") == result.score["n_iter"]
    fractions = [fraction for _, fraction in stages]
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
    np.testing.assert_array_equal(result.labels, npc.segment(photo, "gmm", 3).labels)


def test_segment_steps_validate_before_the_first_step():
    steps = npc.segment_steps(np.zeros(5), "kmeans", 2)
    with pytest.raises(ValueError, match="^image:"):
        next(steps)


def test_closing_the_steps_abandons_the_run(photo):
    steps = npc.segment_steps(photo, "gmm", 3, random_state=0)
    assert next(steps) == ("features", 0.0)
    next(steps)
    steps.close()
    with pytest.raises(StopIteration):
        next(steps)


def test_outline_of_a_region_with_holes_is_its_outer_boundary():
    from napari_pixel_clusters.core.contours import region_contours

    labels = np.ones((14, 14), np.int32)
    labels[2, 2:12] = 2
    for column in range(2, 12, 2):
        labels[2:12, column] = 2
    outer = next(c for c in region_contours(labels, 1) if c.label == 1)
    assert outer.vertices[:, 0].min() <= 0 and outer.vertices[:, 0].max() >= 13
    assert outer.vertices[:, 1].min() <= 0 and outer.vertices[:, 1].max() >= 13
