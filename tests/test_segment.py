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
