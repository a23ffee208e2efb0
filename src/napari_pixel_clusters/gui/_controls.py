"""Controls generated from the registry's declared parameters, shared by the dock widgets.

One declared :class:`~..core.registry.Param` gives one magicgui control with the
parameter's help as tooltip, so a parameter looks and behaves the same in every widget
that shows it (Pixel clusters, Choose number of clusters).
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, SpinBox

from ..core import FEATURE_PARAMS, METHODS
from ..core.registry import Method, Param
from ._numbers import NumberBox

#: How a control shows None: left to the method.
AUTO = "auto"


def param_widget(param: Param, name: str | None = None):
    """A magicgui widget for one declared parameter, its help text as tooltip.

    Choices left empty by default (None) read "auto" first, meaning None: the method
    decides (e.g. a color space). Numbers are spin boxes: optional ones read "auto"
    (None) at their lowest value,
    tolerances (small positive defaults) step by factors of 10, numbers without a
    maximum (in image units) step by a tenth of their order of magnitude.
    """
    options: dict[str, Any] = {
        "name": name or param.name,
        "label": param.name.replace("_", " "),
        "tooltip": param.help,
    }
    if param.choices is not None:
        if param.default is not None:
            return ComboBox(choices=param.choices, value=param.default, **options)
        options["tooltip"] += f" '{AUTO}' (first) leaves it to the method."
        choices = [(AUTO, None), *((str(choice), choice) for choice in param.choices)]
        return ComboBox(choices=choices, value=None, **options)
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


def offers_none(control) -> bool:
    """Whether ``control`` has a choice for None ("auto"), so it can show None."""
    if isinstance(control, ComboBox):
        return None in control.choices
    return bool(getattr(control, "optional", False))


def show_feature_controls(controls: dict, method: Method, rgb: bool) -> None:
    """Show the controls of the feature options ``method`` takes (color space only for RGB
    images), hide the others; the color space's tooltip says what "auto" is with it."""
    for name, control in controls.items():
        if name in {p.name for p in FEATURE_PARAMS}:
            control.visible = name in method.takes_features and (name != "color_space" or rgb)
    if "color_space" in controls:
        help_text = next(p.help for p in FEATURE_PARAMS if p.name == "color_space")
        controls["color_space"].tooltip = (
            f"{help_text} '{AUTO}' (first) leaves it to the method: {method.title} "
            f"uses {method.default_color_space}."
        )
