"""Checks of the fields of untrusted JSON content (model files, result folders), one
``ValueError`` naming the field for the first problem.

A low-level module (numpy only): the registry's :class:`~.registry.Predictor` and the
methods' model checks take a :class:`FieldCheck`, and :mod:`.model_check` uses it for a
whole model.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NoReturn

import numpy as np

from .files import StrPath

INTEGERS = (int, np.integer)
NUMBERS = (int, float, np.integer, np.floating)
BOOLS = (bool, np.bool_)


class FieldCheck:
    """Raise ``ValueError("<what>: <path>: <field>: <problem>")`` for the first problem."""

    def __init__(self, what: str, path: StrPath | None = None):
        self.prefix = f"{what}: {path}: " if path is not None else f"{what}: "

    def fail(self, field: str, problem: str) -> NoReturn:
        raise ValueError(
            f"{self.prefix}{field}: {problem}" if field else f"{self.prefix}{problem}"
        )

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(field, f"expected a JSON object, got {describe(value)}.")
        return value

    def key(self, mapping: dict[str, Any], key: str, field: str) -> Any:
        if key not in mapping:
            self.fail(f"{field}.{key}" if field else key, "missing.")
        return mapping[key]

    def integer(self, value: Any, field: str, low: int, high: int | None = None) -> int:
        if (
            not isinstance(value, INTEGERS)
            or isinstance(value, BOOLS)
            or value < low
            or (high is not None and value > high)
        ):
            limits = f"from {low} to {high}" if high is not None else f"of {low} or more"
            self.fail(field, f"expected a whole number {limits}, got {describe(value)}.")
        return int(value)

    def number(self, value: Any, field: str, low: float, high: float) -> float:
        if (
            not isinstance(value, NUMBERS)
            or isinstance(value, BOOLS)
            or not _finite_float(value)
            or not low <= float(value) <= high
        ):
            self.fail(
                field, f"expected a finite number from {low} to {high}, got {describe(value)}."
            )
        return float(value)

    def text(self, value: Any, field: str, choices: Collection[str] | None = None) -> str:
        if not isinstance(value, str) or (choices is not None and value not in choices):
            expected = f"one of {', '.join(map(repr, choices))}" if choices else "a text"
            self.fail(field, f"expected {expected}, got {describe(value)}.")
        return value

    def array(self, value: Any, field: str, ndim: int) -> np.ndarray:
        """A finite float64 array of ``ndim`` dimensions from nested lists of numbers."""
        problem = f"expected a {_TABLES[ndim]} of finite numbers"
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "iuf":
                self.fail(field, f"{problem}, got an array of {value.dtype}.")
        elif not _nested_numbers(value, ndim):
            self.fail(field, f"{problem}, got {describe(value)}.")
        try:
            array = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            self.fail(field, f"{problem}; its rows differ in length or its numbers are too large.")
        if array.ndim != ndim or not np.isfinite(array).all():
            self.fail(field, f"{problem} (no NaN or infinity).")
        return array

    def shape(
        self, array: np.ndarray, field: str, expected: tuple[int, ...], meaning: str
    ) -> None:
        if array.shape != expected:
            self.fail(field, f"expected shape {expected} ({meaning}), got {array.shape}.")


_TABLES = {1: "list", 2: "table (list of rows)", 3: "list of tables"}


def describe(value: object) -> str:
    text = repr(value)
    return (
        f"{text[:60]}... ({type(value).__name__})"
        if len(text) > 60
        else (f"{text} ({type(value).__name__})")
    )


def _finite_float(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:
        return False


def _nested_numbers(value: Any, ndim: int) -> bool:
    """``value`` is ``ndim`` levels of lists (or tuples) with numbers (not bools) inside."""
    level = [value]
    for _ in range(ndim):
        if not all(isinstance(item, (list, tuple, np.ndarray)) for item in level):
            return False
        level = [item for items in level for item in items]
    return all(isinstance(item, NUMBERS) and not isinstance(item, BOOLS) for item in level)
