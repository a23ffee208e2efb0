"""Number boxes (gui/_numbers.py): the widgets' real numbers are spin boxes that show
numbers as people write them (0.0001, 1e-06), take any such number typed, step
tolerances by factors of 10, and offer "auto" below the lowest number where a parameter
is optional."""

from __future__ import annotations

import pytest
from qtpy.QtGui import QValidator


def test_numbers_are_spin_boxes_that_take_small_tolerances_and_auto(pixel_clusters):
    _, widget = pixel_clusters
    from qtpy.QtWidgets import QAbstractSpinBox

    gmm = widget._method_params["gmm"]
    for name in ("tol", "reg_covar"):
        assert isinstance(gmm[name].native, QAbstractSpinBox)
    assert gmm["reg_covar"].value == 1e-6 and gmm["reg_covar"].native.text() == "1e-06"
    tol = widget._method_params["kmeans"]["tol"]
    assert tol.native.text() == "0.0001"
    tol.native.lineEdit().setText("2e-5")  # typed as people write it
    tol.native.interpretText()
    assert tol.value == 2e-5
    tol.native.stepBy(1)  # tolerances step by factors of 10
    assert tol.value == pytest.approx(2e-4)
    assert tol.native.validate("lots", 0)[0] == QValidator.State.Invalid
    widget._method.value = "kmeans"
    assert widget._options()["tol"] == pytest.approx(2e-4)

    downscale = widget._method_params["ward"]["downscale"]  # optional: "auto"
    widget._method.value = "ward"
    assert downscale.native.text() == "auto" and downscale.value is None
    assert widget._options()["downscale"] is None
    downscale.native.stepBy(1)
    assert downscale.value == pytest.approx(0.05)
    downscale.native.stepBy(-1)  # the lowest number first, then "auto" below it
    assert downscale.value == 0.001
    downscale.native.stepBy(-1)
    assert downscale.native.text() == "auto" and downscale.value is None
    assert widget._min_area.native.text() == "auto" and widget._min_area.value is None
    widget._method.value = "canny"
    for name in ("low_threshold", "high_threshold"):
        assert widget._method_params["canny"][name].native.text() == "auto"
