"""The one declaration of every method and parameter.

``segment`` validates against it, and the widgets and the command line are generated from
it. A method is one module under ``methods/`` that declares a :class:`Method` as
``METHOD``: everything about the method (its routes in memory and for images larger than
memory, its output, its predictor for saved models, its sweep scores, its texts) is there,
and no code elsewhere asks for a method by name.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from .features import COLOR_SPACES
from .stains import DEFAULT_BACKGROUND, check_stain_options, check_stain_vectors

if TYPE_CHECKING:
    import dask.array as da

    from .features import FeatureSet
    from .field_check import FieldCheck
    from .image import ImageData
    from .lazy.chunks import Tally
    from .means import ClusterSums

T = TypeVar("T")
#: The progress protocol of every long computation (a method's ``run``, ``segment_steps``,
#: ``sweep_steps``): a generator that yields ``(stage, fraction)`` and returns its result.
Steps = Generator[tuple[str, float], None, T]


class Labeller(Protocol):
    """What labels a lazy image on demand (a :class:`~.lazy.chunks.ChunkLabeller`, or
    any object with its ``array``): labels of ``data`` as a dask array; ``scale``: the
    full-size pixels per pixel of a pyramid level (None: the full-size level)."""

    def array(
        self, data: ImageData[da.Array], scale: tuple[float, ...] | None = None
    ) -> da.Array: ...


_BOOLS = (bool, np.bool_)
_ACCEPTS = {
    bool: lambda v: isinstance(v, _BOOLS),
    int: lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, _BOOLS),
    float: lambda v: (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, _BOOLS)
    ),
}


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default, limits and the help a person reads in a tooltip."""

    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    allow_none: bool = False
    allow_array: bool = False
    allow_scalar: bool = True  # False: an array (or None) only, e.g. GMM starting values
    in_widget: bool = True  # arrays (explicit starting values) are for scripts only
    advanced: bool = False  # solver settings: the widget folds them under "advanced"
    #: a check of its own for values of several forms (stain vectors): returns the value
    #: to use, or raises ValueError naming the parameter
    convert: Callable[[Any], Any] | None = None

    def check(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type (plain Python numbers, or a
        float64 array of finite numbers), or raise ValueError naming the parameter."""
        if value is None and (self.allow_none or self.default is None):
            return None
        if self.convert is not None:
            return self.convert(value)
        if self.allow_array and isinstance(value, (np.ndarray, list, tuple)):
            return self._array(value)
        if not self.allow_scalar:
            raise ValueError(
                f"{self.name}: expected an array of numbers (or None), got {value!r} "
                f"({type(value).__name__}). {self.help}"
            )
        value = self._convert(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(
                f"{self.name}: {value!r} is not a valid choice; use one of "
                f"{', '.join(map(repr, self.choices))}."
            )
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{self.name}: must be at least {self.minimum}, got {value!r}.")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{self.name}: must be at most {self.maximum}, got {value!r}.")
        return value

    def _array(self, value: Any) -> np.ndarray:
        """A float64 array of finite numbers (not ragged, not strings, not complex)."""
        try:
            is_complex = np.iscomplexobj(value)
            array = None if is_complex else np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{self.name}: expected a rectangular array of numbers (every row the same "
                f"length, no strings), got {_short_repr(value)}. {self.help}"
            ) from None
        if array is None:  # complex
            raise ValueError(f"{self.name}: expected real numbers, got complex values.")
        if not np.isfinite(array).all():
            raise ValueError(
                f"{self.name}: every value must be a finite number (no NaN or "
                f"inf), got {_short_repr(array)}."
            )
        return array

    def _convert(self, value: Any) -> Any:
        kind = self.type
        ok = _ACCEPTS.get(kind, lambda v: isinstance(v, kind))(value)
        if not ok:
            raise ValueError(
                f"{self.name}: expected {kind.__name__}, got {value!r} "
                f"({type(value).__name__}). {self.help}"
            )
        if kind is float and not np.isfinite(value):
            raise ValueError(f"{self.name}: must be a finite number, got {value!r}.")
        return kind(value)


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: The feature options: how pixels become what a method compares. Each method declares
#: the ones it takes (``Method.takes_features``).
FEATURE_PARAMS = (
    Param(
        "color_space",
        str,
        None,
        "Color space for RGB images: 'rgb', 'lab' (perceptual: distances match what the "
        "eye sees), 'hsv' (hue first), or the brightfield stain concentrations 'hed' "
        "(hematoxylin, eosin, DAB), 'hdab' (hematoxylin, DAB, residual) and 'stains' "
        "(the stain vectors you give, or estimated from the image: see stain_vectors); "
        "empty: the method's default. Grey and multichannel images use their raw values.",
        choices=COLOR_SPACES,
        allow_none=True,
    ),
    Param(
        "stain_vectors",
        str,
        None,
        "Stain vectors of color space 'stains' (needed there, refused otherwise): "
        "'estimate' (Macenko's method on the image's tissue pixels), or the optical "
        "densities of 2 or 3 stains, one row of red, green, blue per stain (3x3 or 2x3; "
        "rows scaled to unit length, a residual third row added to two), optionally named "
        '{"hematoxylin": [r, g, b], "DAB": [r, g, b]}; from the command line and the '
        "widget, a JSON file of either. The vectors used are kept in the result's params "
        "and model.",
        allow_none=True,
        convert=check_stain_vectors,  # the widgets show their own control for it
    ),
    Param(
        "stain_background",
        float,
        DEFAULT_BACKGROUND,
        "Optical density below which, in every channel, a pixel is background and left out "
        "of estimating stain vectors (Macenko's beta); used with stain_vectors='estimate'.",
        minimum=0.0,
        maximum=5.0,
    ),
    Param(
        "spatial_weight",
        float,
        0.0,
        "0 clusters on color only; above 0 adds each pixel's position, scaled so that 1 "
        "weighs position as much as color. Larger values give more compact regions.",
        minimum=0.0,
        maximum=100.0,
    ),
    Param(
        "standardize",
        bool,
        False,
        "Scale every feature to zero mean and unit variance before clustering.",
    ),
)
#: The names of the feature options, in the order of :data:`FEATURE_PARAMS`.
FEATURE_NAMES = tuple(p.name for p in FEATURE_PARAMS)

#: The clean-up options of every clustering method (``Method.takes_cleanup``), applied
#: after the fit and before the table in this order: smooth, fill_holes, min_region (see
#: :mod:`.cleanup`). 0 is off; label 0 (no data, outside a mask) never changes.
CLEANUP_PARAMS = (
    Param(
        "smooth",
        int,
        0,
        "Majority filter radius in pixels: each pixel takes the most common label "
        "within a disk (ball in 3-D) of this radius (ties: the lowest label). Applied "
        "first. 0: off.",
        minimum=0,
        maximum=50,
    ),
    Param(
        "fill_holes",
        int,
        0,
        "Holes of at most this many pixels inside one cluster (other clusters' pixels "
        "enclosed by it alone, not touching the image border or unlabelled pixels) take "
        "its label; nested holes: the outermost cluster wins. Applied after smooth. 0: off.",
        minimum=0,
        maximum=10**9,
    ),
    Param(
        "min_region",
        int,
        0,
        "Connected regions smaller than this many pixels take the label they share the "
        "longest border with among larger regions (ties: the lowest label), round by "
        "round until none is left (an area of only small regions: its largest grows). "
        "Applied last. 0: off.",
        minimum=0,
        maximum=10**9,
    ),
)
#: The names of the clean-up options, in the order of :data:`CLEANUP_PARAMS`.
CLEANUP_NAMES = tuple(p.name for p in CLEANUP_PARAMS)


@dataclass(frozen=True)
class Predictor:
    """How a fitted point-wise method labels new pixels: what a saved model runs.

    ``components_key``
        The fitted parameter that holds one row per component in feature space (k-means
        ``"centers"``, mixtures ``"means"``): a model counts its components there, and a
        model file's must be a finite (components x features) table.
    ``predict_rows(parameters, feature_set)``
        The component (0-based) of every row of a :class:`~.features.FeatureSet`, from
        the fitted ``parameters`` (as saved: lists of numbers, or arrays).
    ``check_parameters(check, parameters, n_components, n_features)``
        Checks of a model file's other parameters (``check`` is the file's field checker,
        :class:`~.model_check.FieldCheck`: its ``key``, ``text``, ``array``, ``shape``
        and ``fail`` raise a ``ValueError`` naming the file and the field); None when
        the components are all there is.
    ``probabilities_rows(parameters, feature_set)``
        The posterior probability of every component (0-based columns) for every row,
        an ``(n_rows, n_components)`` float array whose rows sum to 1 (what
        ``Segmentation.probabilities`` maps to pixels); None when the method gives none.
    """

    components_key: str
    predict_rows: Callable[[dict[str, Any], FeatureSet], np.ndarray]
    check_parameters: Callable[[FieldCheck, dict[str, Any], int, int], None] | None = None
    probabilities_rows: Callable[[dict[str, Any], FeatureSet], np.ndarray] | None = None


@dataclass(frozen=True)
class Method:
    """A segmentation method as the API, the widget and the CLI see it.

    ``run(data, n_clusters, feature_options, params)`` gets an :class:`ImageData`, the
    checked number of clusters (None for methods that do not take one), the feature
    options (``color_space``, ``spatial_weight``, ``standardize``, ``random_state``) and
    its own checked parameters. It is a generator: it yields ``(stage, fraction)`` as it
    goes (each yield is a point where a caller may stop it) and returns a
    :class:`MethodOutput`.

    ``takes_features`` names the feature options (of :data:`FEATURE_PARAMS`) the method
    takes, by default all of them: ``check_options`` refuses the others (set to anything
    but their default) with a ``ValueError`` naming the option, the widgets show only
    these, and a result's ``params`` records only these. Its ``run`` still gets every
    feature option in ``feature_options`` (those it does not take at their defaults).
    ``default_color_space`` is the color space it compares RGB pixels in when
    ``color_space`` is left empty (None), as the widgets' "auto" choice says.

    ``lazy_run(data, n_clusters, feature_options, params, levels)`` does the same for an
    image larger than memory: ``data`` holds dask arrays, ``levels`` the pyramid it is the
    full-size level of (or ``()``); it reads the image chunk by chunk (see
    :mod:`.lazy.chunks`) and returns a :class:`LazyOutput`. None when the method cannot
    work chunk by chunk: ``segment`` then refuses dask images with a ``ValueError``.
    """

    name: str
    title: str
    summary: str
    params: tuple[Param, ...]
    run: Callable[
        [ImageData[np.ndarray], int | None, dict[str, Any], dict[str, Any]], Steps[MethodOutput]
    ]
    lazy_run: (
        Callable[
            [ImageData[da.Array], int | None, dict[str, Any], dict[str, Any], Sequence[Any]],
            Steps[LazyOutput],
        ]
        | None
    ) = None
    #: methods that cluster feature rows (sweeps reuse it): ``fit_rows(feature_set,
    #: n_clusters, params, random_state)`` yields progress and returns a ``RowFit``
    #: (``methods/_pointwise.py``)
    fit_rows: Callable[[FeatureSet, int, dict[str, Any], int | None], Steps[RowFit]] | None = None
    #: how a fitted model labels other images (methods whose results have a ``model``)
    predictor: Predictor | None = None
    needs_n_clusters: bool = True
    #: the feature options it takes (names in :data:`FEATURE_NAMES`): all by default
    takes_features: tuple[str, ...] = FEATURE_NAMES
    #: the color space of RGB pixels when ``color_space`` is None ("auto")
    default_color_space: str = "rgb"
    uses_random_state: bool = True
    #: ``((stage, fraction), text)`` pairs: after yielding that step the method works a
    #: long while without progress (one library call); a progress bar shows it as busy
    busy_steps: tuple[tuple[tuple[str, float], str], ...] = ()
    #: what to change when a run labels no pixel at all (e.g. no edge above thresholds)
    empty_hint: str = ""
    #: compiles the method's kernels, or loads them from the disk cache (slow the first
    #: time on a machine); the widget calls it in a background thread when it opens, so
    #: that a first run does not wait for it
    warm_up: Callable[[], None] | None = None
    #: what its labels are: "clusters" (regions with a table and a quantized image) or
    #: "edges" (label 1 on edge pixels)
    output: str = "clusters"
    #: the sentence the widget shows when the image is larger than memory (dask, pyramid)
    large_image_note: str = (
        "Large image: read chunk by chunk; results are lazy\n(computed as you view them); "
        "no outlines."
    )
    #: the scores a sweep over k plots for this method (besides silhouette), e.g.
    #: ``("inertia",)``; empty for methods that cannot be swept
    sweep_scores: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.takes_features) - set(FEATURE_NAMES))
        if unknown:
            raise ValueError(
                f"takes_features: {unknown[0]!r} is not a feature option; use names of "
                f"{', '.join(FEATURE_NAMES)}."
            )
        if self.default_color_space not in COLOR_SPACES:
            raise ValueError(
                f"default_color_space: {self.default_color_space!r} is not a color space; "
                f"use one of {', '.join(COLOR_SPACES)}."
            )

    @property
    def takes_cleanup(self) -> bool:
        """Whether it takes the clean-up options (:data:`CLEANUP_PARAMS`): methods whose
        output is clusters (regions), not edges."""
        return self.output == "clusters"

    @property
    def uses_features(self) -> bool:
        """Whether it takes any feature option (see ``takes_features``)."""
        return bool(self.takes_features)

    def feature_params(self) -> tuple[Param, ...]:
        """The feature options it takes, as declared parameters (in their usual order)."""
        return tuple(p for p in FEATURE_PARAMS if p.name in self.takes_features)

    @property
    def sweepable(self) -> bool:
        """Whether :func:`~.sweep.sweep` (and the Choose k widget) can sweep k with it."""
        return self.fit_rows is not None and bool(self.sweep_scores)

    def busy_text(self, step: Sequence[Any]) -> str | None:
        """What the method is doing after ``step``, when it cannot report progress."""
        return dict(self.busy_steps).get(tuple(step))

    def param(self, name: str) -> Param:
        return {p.name: p for p in self.params}[name]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def drain(steps: Steps[T]) -> T:
    """Run a generator of progress steps to its end and return its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


@dataclass
class RowFit:
    """A method fitted on feature rows: a 0-based cluster per row, scores, the model."""

    labels: np.ndarray
    score: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodOutput:
    """What a method's ``run`` returns: labels 0..k over the spatial shape, scores and
    details.

    ``cluster_sums`` (pixel count and value sums per label 1..k, a
    :class:`~.means.ClusterSums`) may be given when the method can compute them cheaply
    (from distinct values); otherwise the result computes them from the pixels.
    """

    labels: np.ndarray
    cluster_sums: ClusterSums | None = None
    score: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class LazyOutput:
    """What a method's ``lazy_run`` returns: a labeller and an exact count instead of labels.

    ``labeller`` labels any chunk of the image on demand (a
    :class:`~.lazy.chunks.ChunkLabeller`, or anything with its ``array(data, scale)``);
    ``tally`` holds the pixel counts, value sums and value ranges of labels 1..k (a
    :class:`~.lazy.chunks.Tally`); ``components`` the method's component (0-based) behind
    each label.
    """

    labeller: Labeller
    tally: Tally
    components: np.ndarray
    score: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)


#: The most clusters a method is asked for (and components a model file may hold; a result
#: folder's table has its own limit, ``export.MAX_TABLE_ROWS``: superpixels are many).
MAX_CLUSTERS = 1000
N_CLUSTERS = Param(
    "n_clusters", int, 5, "Number of clusters to find.", minimum=1, maximum=MAX_CLUSTERS
)

RANDOM_STATE = Param(
    "random_state",
    int,
    0,
    "Seed for the random starts; the same seed gives the same result every run.",
    minimum=0,
    maximum=2**32 - 1,
    allow_none=True,
    advanced=True,
)


def _equal(value: Any, default: Any) -> bool:
    """``value == default`` for plain values; an array, list or dict is never a default."""
    if value is default:
        return True
    return not isinstance(value, (np.ndarray, list, tuple, dict)) and bool(value == default)


def check_options(
    method: Method, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split and check keyword options into (feature options, method parameters).

    The feature options are all of :data:`FEATURE_PARAMS` and the random state (those
    given, checked; the others at their defaults); a feature option the method does not
    take (``Method.takes_features``) is refused unless it is at its default. The clean-up
    options are checked too (:func:`cleanup_options` gives them)."""
    feature_names = {p.name for p in FEATURE_PARAMS} | {RANDOM_STATE.name}
    allowed = {p.name for p in method.params} | feature_names | set(CLEANUP_NAMES)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"{unknown[0]}: not a parameter of method {method.name!r}; it takes "
            f"{', '.join(sorted(allowed))}."
        )
    refused = [
        p.name
        for p in FEATURE_PARAMS
        if p.name not in method.takes_features
        and not _equal(options.get(p.name, p.default), p.default)
    ]
    if refused:
        taken = ", ".join(method.takes_features) or "none"
        raise ValueError(
            f"{refused[0]}: method {method.name!r} does not take it (its feature options: "
            f"{taken}); leave {refused[0]} out."
        )
    feature_options = {
        p.name: p.check(options.get(p.name, p.default)) for p in (*FEATURE_PARAMS, RANDOM_STATE)
    }
    check_stain_options(feature_options)
    params = {p.name: p.check(options.get(p.name, p.default)) for p in method.params}
    cleanup_options(method, options)
    return feature_options, params


def cleanup_options(method: Method, options: dict[str, Any]) -> dict[str, int]:
    """The clean-up options of ``options`` (:data:`CLEANUP_PARAMS`), checked, 0 where not
    given; a method that does not take them (edges) refuses any but 0, naming it."""
    checked = {p.name: p.check(options.get(p.name, p.default)) for p in CLEANUP_PARAMS}
    refused = [name for name, value in checked.items() if value != 0]
    if refused and not method.takes_cleanup:
        raise ValueError(
            f"{refused[0]}: method {method.name!r} finds {method.output}, not clusters; the "
            f"clean-up options ({', '.join(CLEANUP_NAMES)}) apply to clustering methods "
            f"only; leave {refused[0]} out."
        )
    return checked
