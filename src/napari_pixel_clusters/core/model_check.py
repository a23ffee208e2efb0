"""Validation of a model's content (a saved model file is untrusted input).

:func:`check_model_dict` checks every field a :class:`~.model.Model` uses before it is
used: a method that can label new images (one with a
:class:`~.registry.Predictor`), types (a ``bool`` is not a number), shapes that agree with
each other, finite numbers, cluster labels 1..n, at most ``n_clusters``' maximum of
components, and what the method's predictor checks of its own parameters (e.g. positive
mixture weights and precisions). Each problem is one ``ValueError`` naming the
file (when there is one) and the field, e.g. ``model file: m.json: parameters.weights:
must be positive numbers that sum to 1.``
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .cleanup import check_cleanup_field
from .features import COLOR_SPACES, USER_STAINS
from .field_check import BOOLS, FieldCheck, describe
from .files import StrPath
from .methods import METHODS
from .registry import MAX_CLUSTERS, Predictor
from .stains import parse_stain_vectors

FORMAT = "napari-pixel-clusters model"
VERSION = 1
IMAGE_KINDS = ("grey", "rgb", "rgba", "multichannel")
#: Most components (k-means centers, mixture components) a model may have (a result
#: folder's table may have more clusters: ``export.MAX_TABLE_ROWS``).
MAX_COMPONENTS = MAX_CLUSTERS
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?")


def predictors() -> dict[str, Predictor]:
    """The methods whose models can label new images, by name, with their predictors."""
    return {name: m.predictor for name, m in METHODS.items() if m.predictor is not None}


def word_list(words: list[str], conjunction: str) -> str:
    """``a``, ``a or b``, ``a, b or c`` (or ``and``)."""
    return f" {conjunction} ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def check_model_dict(content: Any, what: str = "model file", path: StrPath | None = None) -> None:
    """Raise ValueError saying what is wrong with a model's content (``Model.to_dict()``
    form, as read from a model file); the message starts with ``what`` and ``path``."""
    check = FieldCheck(what, path)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        found = (
            f"its 'format' is {content.get('format')!r}"
            if isinstance(content, dict)
            else f"it holds {describe(content)}, not a JSON object"
        )
        check.fail(
            "", f"not a napari-pixel-clusters model ({found}; expected 'format': {FORMAT!r})."
        )
    version = content.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        check.fail("version", f"{version!r} is not supported (this is version {VERSION}).")
    missing = [
        k for k in ("method", "image", "features", "parameters", "clusters") if k not in content
    ]
    if missing:
        check.fail("", f"missing {', '.join(missing)}.")
    method = content["method"]
    predictor = predictors().get(method) if isinstance(method, str) else None
    if predictor is None:
        usable = word_list(list(map(repr, predictors())), "or")
        check.fail("method", f"{method!r} cannot label new images; use {usable}.")
    image = _check_image(check, content["image"])
    n_features = _check_features(check, content["features"], image)
    n_components = _check_parameters(check, predictor, content["parameters"], n_features)
    _check_clusters(check, content["clusters"], n_components)
    if "cleanup" in content:  # clean-up of the labels (absent: none)
        check_cleanup_field(check, content["cleanup"])
    if "provenance" in content:
        check.mapping(content["provenance"], "provenance")


def _check_image(check: FieldCheck, image: Any) -> dict[str, Any]:
    check.mapping(image, "image")
    kind = check.text(check.key(image, "kind", "image"), "image.kind", IMAGE_KINDS)
    channels = {"grey": (1, 1), "rgb": (3, 3), "rgba": (4, 4)}.get(kind, (1, None))
    check.integer(check.key(image, "n_channels", "image"), "image.n_channels", *channels)
    if "dtype" in image:
        check.text(image["dtype"], "image.dtype")
    return image


def _check_features(check: FieldCheck, pipeline: Any, image: dict[str, Any]) -> int:
    """Check the feature pipeline; return the number of features."""
    check.mapping(pipeline, "features")
    color = image["kind"] in ("rgb", "rgba")
    color_space = check.key(pipeline, "color_space", "features")
    if color_space is not None and not color:
        check.fail(
            "features.color_space",
            f"a {image['kind']} image is clustered on its raw "
            f"values; expected null, got {describe(color_space)}.",
        )
    if color_space is not None:
        check.text(color_space, "features.color_space", COLOR_SPACES)
    spatial_weight = check.number(
        check.key(pipeline, "spatial_weight", "features"), "features.spatial_weight", 0.0, 100.0
    )
    standardize = check.key(pipeline, "standardize", "features")
    if not isinstance(standardize, BOOLS):
        check.fail("features.standardize", f"expected true or false, got {describe(standardize)}.")
    names = check.key(pipeline, "names", "features")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        check.fail("features.names", f"expected a list of texts, got {describe(names)}.")
    constants = check.mapping(check.key(pipeline, "constants", "features"), "features.constants")
    n_values = 3 if color else image["n_channels"]
    n_axes = _check_coordinates(check, constants, spatial_weight)
    _check_stain_vectors(check, constants, color_space)
    if standardize:
        for key in ("mean", "scale"):
            field = f"features.constants.{key}"
            values = check.array(check.key(constants, key, "features.constants"), field, 1)
            check.shape(values, field, (n_values,), "one per value feature")
            if key == "scale" and not np.all(values > 0):
                check.fail(field, "expected scales above 0.")
    if len(names) != n_values + n_axes:
        check.fail(
            "features.names",
            f"expected {n_values + n_axes} names ({n_values} value "
            f"feature(s) of a {image['kind']} image and {n_axes} position(s)), got "
            f"{len(names)}.",
        )
    return len(names)


def _check_stain_vectors(
    check: FieldCheck, constants: dict[str, Any], color_space: str | None
) -> None:
    """Color space "stains" keeps its 3 named unit stain vectors; other spaces none."""
    field = "features.constants.stain_vectors"
    if color_space != USER_STAINS:
        if "stain_vectors" in constants:
            check.fail(field, f"given, but color_space is {describe(color_space)}.")
        return
    record = check.mapping(check.key(constants, "stain_vectors", "features.constants"), field)
    unknown = sorted(set(record) - {"names", "vectors", "estimated"})
    if unknown:
        check.fail(f"{field}.{unknown[0]}", "unknown field (expected names, vectors, estimated).")
    names = check.key(record, "names", field)
    texts = isinstance(names, list) and all(isinstance(n, str) for n in names)
    if not texts or len(names) != 3:
        check.fail(f"{field}.names", f"expected a list of 3 texts, got {describe(names)}.")
    vectors = check.array(check.key(record, "vectors", field), f"{field}.vectors", 2)
    check.shape(vectors, f"{field}.vectors", (3, 3), "one row of red, green, blue per stain")
    if not isinstance(record.get("estimated", False), BOOLS):
        check.fail(
            f"{field}.estimated", f"expected true or false, got {describe(record['estimated'])}."
        )
    try:
        parse_stain_vectors({"names": names, "vectors": vectors})
    except ValueError as error:
        check.fail(field, str(error).removeprefix("stain_vectors: "))


def _check_coordinates(check: FieldCheck, constants: dict[str, Any], spatial_weight: float) -> int:
    """Check the positions' scaling constants; return the number of position features."""
    field = "features.constants"
    if spatial_weight == 0:
        if "coordinate_mean" in constants:
            check.fail(f"{field}.coordinate_mean", "given, but spatial_weight is 0.")
        return 0
    center = check.array(
        check.key(constants, "coordinate_mean", field), f"{field}.coordinate_mean", 1
    )
    if not 1 <= len(center) <= 32:
        check.fail(f"{field}.coordinate_mean", f"expected 1 to 32 axes, got {len(center)}.")
    scale = check.number(
        check.key(constants, "coordinate_scale", field),
        f"{field}.coordinate_scale",
        0.0,
        float(np.finfo(np.float64).max),
    )
    if scale == 0:
        check.fail(f"{field}.coordinate_scale", "expected a number above 0, got 0.")
    return len(center)


def _check_parameters(
    check: FieldCheck, predictor: Predictor, parameters: Any, n_features: int
) -> int:
    """Check the fitted parameters; return the number of components."""
    check.mapping(parameters, "parameters")
    key = predictor.components_key
    components = check.key(parameters, key, "parameters")
    field = f"parameters.{key}"
    if isinstance(components, (list, tuple, np.ndarray)) and len(components) > MAX_COMPONENTS:
        check.fail(
            field,
            f"{len(components)} components; at most {MAX_COMPONENTS} (the most "
            "n_clusters allows) are read.",
        )
    components = check.array(components, field, 2)
    k = len(components)
    check.shape(components, field, (max(k, 1), n_features), "components x features")
    with np.errstate(over="ignore"):
        too_large = not np.isfinite(np.square(components).sum(axis=1)).all()
    if too_large:
        check.fail(field, "values too large to measure distances.")
    if predictor.check_parameters is not None:
        predictor.check_parameters(check, parameters, k, n_features)
    return k


def _check_clusters(check: FieldCheck, clusters: Any, n_components: int) -> None:
    if not isinstance(clusters, list):
        check.fail("clusters", f"expected a list, got {describe(clusters)}.")
    if len(clusters) > n_components:
        check.fail(
            "clusters",
            f"{len(clusters)} clusters, but the model has only {n_components} components.",
        )
    labels, components = set(), set()
    for i, cluster in enumerate(clusters):
        field = f"clusters[{i}]"
        check.mapping(cluster, field)
        label = check.integer(
            check.key(cluster, "label", field), f"{field}.label", 1, len(clusters)
        )
        component = check.integer(
            check.key(cluster, "component", field), f"{field}.component", 0, n_components - 1
        )
        check.text(check.key(cluster, "name", field), f"{field}.name")
        color = check.text(check.key(cluster, "color", field), f"{field}.color")
        if not _HEX_COLOR.fullmatch(color):
            check.fail(
                f"{field}.color", f"expected a hex color like '#1f77b4', got {color[:20]!r}."
            )
        if label in labels or component in components:
            what = "label" if label in labels else "component"
            check.fail(f"{field}.{what}", f"{cluster[what]} is used by another cluster too.")
        labels.add(label)
        components.add(component)
