"""A spin box for real numbers that shows them as people write them (0.0001, 1e-06, 250)
and takes any such number typed, optionally with "auto" for "leave it to the method".

magicgui's FloatSpinBox shows a fixed number of decimals: 1e-06 would need six and show
every other value with six trailing zeros. This one keeps 12 decimals internally and
shows at most 10 significant digits. An optional number has one more value, below its
minimum, that reads "auto" (Qt's special value text) and stands for None.
"""

from __future__ import annotations

import math
import re

from magicgui.application import use_app
from magicgui.widgets.bases import RangedWidget
from qtpy.QtGui import QValidator
from qtpy.QtWidgets import QDoubleSpinBox

AUTO = "auto"
DECIMALS = 12
#: What may still become a number while it is typed: "", "-", "1.", "1e", "1e-" ...
PARTIAL_NUMBER = re.compile(r"[-+]?(\d*\.?\d*)([eE][-+]?\d*)?")


class QNumberSpinBox(QDoubleSpinBox):
    """QDoubleSpinBox with short text, numbers typed in any notation, and arrows that
    step linearly, by a tenth of the value's order of magnitude (``adaptive``) or by
    factors of 10 (``decades``). With special value text, ``minimum()`` is "auto" and
    ``lowest`` the smallest number."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(DECIMALS)
        self.decades = False
        self.adaptive = False
        self.start = None  # where the up arrow goes from "auto" (or from 0 with decades)
        self.lowest = None  # the smallest number (None: minimum())

    def textFromValue(self, value: float) -> str:
        return f"{value:.10g}"

    def valueFromText(self, text: str) -> float:
        text = text.strip()
        if self.specialValueText() and text in ("", self.specialValueText()):
            return self.minimum()
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        special = self.specialValueText()
        if special and stripped == special:
            return QValidator.State.Acceptable, text, pos
        if special and stripped and special.startswith(stripped):
            return QValidator.State.Intermediate, text, pos
        try:
            value = float(stripped)
        except ValueError:
            state = (
                QValidator.State.Intermediate
                if PARTIAL_NUMBER.fullmatch(stripped)
                else QValidator.State.Invalid
            )
            return state, text, pos
        inside = math.isfinite(value) and self.minimum() <= value <= self.maximum()
        return (
            QValidator.State.Acceptable if inside else QValidator.State.Intermediate,
            text,
            pos,
        )

    def is_auto(self) -> bool:
        return bool(self.specialValueText()) and self.value() == self.minimum()

    def stepBy(self, steps: int) -> None:
        lowest = self.minimum() if self.lowest is None else self.lowest
        value = self.value()
        if self.is_auto():
            if steps > 0:
                self.setValue(lowest if self.start is None else self.start)
            return
        if self.decades:
            new = value * 10.0**steps if value > 0 else (self.start or lowest)
        else:
            new = value + steps * self._step(value, steps)
        if new < lowest:  # below the smallest number: "auto", or the smallest
            new = self.minimum() if self.specialValueText() and value <= lowest else lowest
        self.setValue(min(new, self.maximum()))

    def _step(self, value: float, steps: int) -> float:
        if not self.adaptive or value == 0:
            return self.singleStep()
        magnitude = math.floor(math.log10(abs(value)) + 1e-9)
        if (steps < 0) == (value > 0) and math.isclose(abs(value), 10.0**magnitude):
            magnitude -= 1  # 100 steps down to 99, not 90
        return 10.0 ** (magnitude - 1)


def _backend():
    """magicgui's Qt FloatSpinBox, on a :class:`QNumberSpinBox`."""
    float_spin_box = use_app().get_obj("FloatSpinBox")

    class NumberSpinBoxBackend(float_spin_box):
        def __init__(self, **kwargs):
            super(float_spin_box, self).__init__(QNumberSpinBox, **kwargs)

        def _mgui_set_step(self, value: float):
            self._qwidget.setSingleStep(value)

    return NumberSpinBoxBackend


class NumberBox(RangedWidget):
    """A magicgui spin box for a real number; ``optional=True`` adds "auto" (None).

    The arrows add ``step``; with ``adaptive=True`` a tenth of the value's order of
    magnitude (for values in any unit, e.g. thresholds); with ``decades=True`` they
    multiply or divide by 10 (for tolerances such as 1e-4). ``start`` is where the up
    arrow goes from "auto".
    """

    def __init__(
        self,
        value=None,
        *,
        optional: bool = False,
        decades: bool = False,
        adaptive: bool = False,
        start: float | None = None,
        min: float = 0.0,
        max: float = 1e9,
        step: float = 0.1,
        **kwargs,
    ):
        self._optional = optional
        # "auto" sits one step below the smallest number (at 0 for positive minimums)
        auto_value = (0.0 if min > 0 else min - step) if optional else min
        kwargs["widget_type"] = _backend()
        super().__init__(min=auto_value, max=max, step=step, **kwargs)
        spin_box = self.native
        spin_box.decades, spin_box.adaptive = decades, adaptive
        spin_box.start, spin_box.lowest = start, min
        if optional:
            spin_box.setSpecialValueText(AUTO)
        self.value = value

    @property
    def optional(self) -> bool:
        return self._optional

    def get_value(self) -> float | None:
        value = super().get_value()
        if self._optional and value <= self.min:
            return None
        return float(value)

    def set_value(self, value) -> None:
        if value is None:
            if not self._optional:
                raise ValueError(f"{self.name}: a number is needed here (not 'auto').")
            value = self.min
        super().set_value(float(value))

    def _on_value_change(self, value=None) -> None:
        self.changed.emit(self.get_value())
