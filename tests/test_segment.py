"""``segment_steps`` (core/segment.py): named progress stages, validation before the first
step, and a run abandoned when the steps are closed. ``segment`` itself is checked
everywhere else: per method (test_<method>.py), on every image (test_battery.py) and with
every bad argument (test_bad_input.py)."""

from __future__ import annotations

import numpy as np
import pytest

import napari_pixel_clusters as npc
from conftest import collect_steps


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
    with pytest.raises(ValueError, match=r"^image:"):
        next(steps)


def test_closing_the_steps_abandons_the_run(photo):
    steps = npc.segment_steps(photo, "gmm", 3, random_state=0)
    assert next(steps) == ("features", 0.0)
    next(steps)
    steps.close()
    with pytest.raises(StopIteration):
        next(steps)


def test_labels_compacted_from_the_fit_s_counts_as_from_counting_the_pixels(photo):
    """segment compacts labels and counts clusters from the distinct rows' counts, without
    a pass over the pixels: the same labels and counts as counting them."""
    from napari_pixel_clusters.core.result import compact_labels

    labels = np.array([[0, 3, 1], [3, 3, 0]], dtype=np.int32)  # label 2 found no pixel
    counts = np.bincount(labels.ravel(), minlength=4)[1:]
    for got, expected in zip(compact_labels(labels, counts), compact_labels(labels)):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(compact_labels(labels, counts)[0], [[0, 2, 1], [2, 2, 0]])
    for method in ("kmeans", "gmm"):
        seg = npc.segment(photo, method, 5, random_state=0)
        assert seg.known_sums is not None
        np.testing.assert_array_equal(seg.pixel_counts, np.bincount(seg.labels.ravel())[1:])
        assert seg.pixel_counts.dtype == np.int64
        assert set(np.unique(seg.labels)) == set(range(1, seg.n_clusters + 1))
