"""Controls generated from the registry's declared parameters, shared by the dock widgets.

One declared :class:`~..core.registry.Param` gives one magicgui control with the
parameter's help as tooltip, so a parameter looks and behaves the same in every widget
that shows it (Pixel clusters, Choose number of clusters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FileEdit, SpinBox
from magicgui.widgets.bases import ValuedContainerWidget

from ..core import FEATURE_PARAMS, METHODS
from ..core.features import USER_STAINS
from ..core.registry import Method, Param
from ..core.stains import ESTIMATE, read_stain_vectors
from ._numbers import NumberBox

#: How a control shows None: left to the method.
AUTO = "auto"
#: The feature options shown for RGB images only.
COLOR_ONLY = ("color_space", "stain_vectors", "stain_background")
#: The stain vectors control's second choice: a JSON file.
FROM_FILE = "JSON file"


class StainVectorsEdit(ValuedContainerWidget[str]):
    """Stain vectors of color space "stains": "estimate" (Macenko, from the image) or a
    JSON file of stain vectors (see :func:`~..core.stains.read_stain_vectors`). Its
    value is ``"estimate"`` or the file's path (``""`` while no file is chosen)."""

    def __init__(self, **kwargs: Any):
        self.source = ComboBox(
            choices=[ESTIMATE, FROM_FILE],
            value=ESTIMATE,
            tooltip="'estimate': Macenko's method on the image's tissue pixels; "
            f"'{FROM_FILE}': stain vectors you give.",
        )
        self.file = FileEdit(mode="r", filter="*.json", nullable=True, visible=False)
        self.file.line_edit.tooltip = (
            "A JSON file: a list of 2 or 3 rows of red, green, blue optical densities, "
            '{"names": [...], "vectors": [[...]]}, or {"stain name": [r, g, b], ...}.'
        )
        super().__init__(widgets=[self.source, self.file], labels=False, **kwargs)
        self.margins = (0, 0, 0, 0)
        self.source.changed.connect(self._source_changed)
        self.file.changed.connect(lambda *_: self.changed.emit(self.value))
        #: whether the method and image allow stain vectors; what shows the stain controls
        self.allowed = False
        self.shown_with: Any = None

    def _source_changed(self, *_: Any) -> None:
        self.file.visible = self.source.value == FROM_FILE
        self.changed.emit(self.value)

    def get_value(self) -> str:
        if self.source.value == ESTIMATE:
            return ESTIMATE
        path = self.file.value
        return "" if path is None else str(path)

    def set_value(self, value: Any) -> None:
        if value in (None, ESTIMATE):
            self.source.value = ESTIMATE
            return
        if not isinstance(value, (str, Path)):
            raise TypeError(f"stain vectors: expected {ESTIMATE!r} or a path, got {value!r}")
        self.file.value = value or None
        self.source.value = FROM_FILE
        self.file.visible = True


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
    if param.name == "stain_vectors":  # "estimate" or a file: not one kind of value
        return StainVectorsEdit(**options)
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


def _follow_stain_choices(controls: dict, allowed: bool) -> None:
    """Show the stain controls only where ``allowed`` (the method takes them, the image
    is RGB) with color space "stains" (stain background: with "estimate" too); once per
    set of controls, follow the color space's and the stain vectors' changes."""
    space, vectors = controls.get("color_space"), controls.get("stain_vectors")
    background = controls.get("stain_background")
    if space is None or not isinstance(vectors, StainVectorsEdit) or background is None:
        return
    if vectors.shown_with is None:  # first call: follow the choices from now on

        def show(*_: Any) -> None:
            stains = bool(vectors.allowed) and space.value == USER_STAINS
            vectors.visible = stains
            background.visible = stains and vectors.value == ESTIMATE

        space.changed.connect(show)
        vectors.changed.connect(show)
        vectors.shown_with = show
    vectors.allowed = allowed
    vectors.shown_with()


def stain_choices(options: dict[str, Any]) -> dict[str, Any]:
    """The widgets' options as ``segment`` takes them: the stain options only with color
    space "stains" (the background only to estimate), a chosen file read into its
    vectors (a bad file is a ``ValueError`` naming it)."""
    options = dict(options)
    if options.get("color_space") != USER_STAINS:
        options.pop("stain_vectors", None)
        options.pop("stain_background", None)
        return options
    choice = options.get("stain_vectors")
    if choice != ESTIMATE:
        if not choice:
            raise ValueError(
                "stain vectors: choose 'estimate' or a JSON file of stain vectors for "
                "color space 'stains'."
            )
        options["stain_vectors"] = read_stain_vectors(choice)
        options.pop("stain_background", None)
    return options


def offers_none(control) -> bool:
    """Whether ``control`` has a choice for None ("auto"), so it can show None."""
    if isinstance(control, ComboBox):
        return None in control.choices
    return bool(getattr(control, "optional", False))


def show_feature_controls(controls: dict, method: Method, rgb: bool) -> None:
    """Show the controls of the feature options ``method`` takes (color space only for RGB
    images), hide the others; the color space's tooltip says what "auto" is with it.
    The stain controls show only with color space "stains" (the background only to
    estimate), and follow the color space's and the stain vectors' choices."""
    for name, control in controls.items():
        if name in {p.name for p in FEATURE_PARAMS}:
            control.visible = name in method.takes_features and (name not in COLOR_ONLY or rgb)
    _follow_stain_choices(controls, "stain_vectors" in method.takes_features and rgb)
    if "color_space" in controls:
        help_text = next(p.help for p in FEATURE_PARAMS if p.name == "color_space")
        controls["color_space"].tooltip = (
            f"{help_text} '{AUTO}' (first) leaves it to the method: {method.title} "
            f"uses {method.default_color_space}."
        )
