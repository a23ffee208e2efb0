"""Controls generated from the registry's declared parameters, shared by the dock widgets.

One declared :class:`~..core.registry.Param` gives one magicgui control with the
parameter's help as tooltip, so a parameter looks and behaves the same in every widget
that shows it (Pixel clusters, Choose number of clusters).
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, SpinBox

from ..core import METHODS
from ..core.registry import Method, Param
from ._numbers import NumberBox


def param_widget(param: Param, name: str | None = None):
    """A magicgui widget for one declared parameter, its help text as tooltip.

    Numbers are spin boxes: optional ones read "auto" (None) at their lowest value,
    tolerances (small positive defaults) step by factors of 10, numbers without a
    maximum (in image units) step by a tenth of their order of magnitude.
    """
    options: dict[str, Any] = {
        "name": name or param.name,
        "label": param.name.replace("_", " "),
        "tooltip": param.help,
    }
    if param.choices is not None:
        value = param.default if param.default is not None else param.choices[0]
        return ComboBox(choices=param.choices, value=value, **options)
    if param.type is bool:
        return CheckBox(value=param.default, **options)
    if param.type is int:
        return SpinBox(
            value=param.default if param.default is not None else 0,
            min=int(param.minimum or 0),
            max=int(min(param.maximum or 2**31 - 1, 2**31 - 1)),
            **options,
        )
    lowest = float(param.minimum or 0.0)
    highest = float(param.maximum) if param.maximum is not None else 1e12
    step = 0.05 if highest <= 1 else 0.1 if highest <= 100 else 1.0
    optional = param.default is None
    if optional:
        options["tooltip"] += " 'auto' (below the lowest value) leaves it to the method."
    return NumberBox(
        param.default,
        optional=optional,
        min=lowest,
        max=highest,
        step=step,
        decades=bool(param.default) and 0 < param.default < 0.01,
        adaptive=param.maximum is None,
        start=max(lowest, step),
        **options,
    )


def method_choices(methods: list[Method] | None = None) -> list[tuple[str, str]]:
    """(title, name) of ``methods`` (default: every registered method), for a ComboBox."""
    return [(method.title, method.name) for method in methods or METHODS.values()]


def sweepable_methods() -> list[Method]:
    """The registered methods a sweep over k can use (Choose number of clusters)."""
    return [method for method in METHODS.values() if method.sweepable]
