"""The content of a model (core/model_check.py): a saved model file is untrusted input,
every tampered field is one clear ValueError naming the file and the field, checked again
before a model tampered after loading predicts."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

import napari_pixel_clusters as npc
from conftest import THREE_REGIONS, case_ids


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def tamper(content):
        target = content
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return tamper


def _drop(*keys):
    def tamper(content):
        target = content
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return tamper


def _replace(value):
    def tamper(content):
        return value

    tamper.replaces = True  # the whole content, not an edit in place
    return tamper


def _scale_diagonal(factor):
    def tamper(content):
        content["parameters"]["precisions_cholesky"][0][0][0] *= factor

    return tamper


MODEL_TAMPERINGS = [
    # the whole file
    ("kmeans", _replace([]), "not a napari-pixel-clusters model"),
    ("kmeans", _replace(None), "not a napari-pixel-clusters model"),
    ("kmeans", _replace("model"), "not a napari-pixel-clusters model"),
    ("kmeans", _set("version", True), "version: True is not supported"),
    ("kmeans", _set("version", "1"), "version: '1' is not supported"),
    ("kmeans", _set("method", ["kmeans"]), "method: .* cannot label new images"),
    # missing keys
    ("kmeans", _drop("image", "kind"), r"image\.kind: missing"),
    ("kmeans", _drop("image", "n_channels"), r"image\.n_channels: missing"),
    ("kmeans", _drop("features", "color_space"), r"features\.color_space: missing"),
    ("kmeans", _drop("features", "constants"), r"features\.constants: missing"),
    ("kmeans", _drop("features", "names"), r"features\.names: missing"),
    ("gmm", _drop("parameters", "covariance_type"), r"parameters\.covariance_type: missing"),
    ("gmm", _drop("parameters", "weights"), r"parameters\.weights: missing"),
    ("kmeans", lambda c: c["clusters"][0].pop("label"), r"clusters\[0\]\.label: missing"),
    ("kmeans", lambda c: c["clusters"][1].pop("name"), r"clusters\[1\]\.name: missing"),
    ("kmeans", lambda c: c["clusters"][0].pop("component"), r"clusters\[0\]\.component: missing"),
    # wrong types
    ("kmeans", _set("image", [1, 2]), "image: expected a JSON object"),
    ("kmeans", _set("image", "kind", "hyperspectral"), r"image\.kind: expected one of"),
    ("kmeans", _set("image", "n_channels", True), r"image\.n_channels: expected a whole"),
    ("kmeans", _set("image", "n_channels", 4), r"image\.n_channels: expected a whole"),
    ("kmeans", _set("features", "standardize", "no"), r"features\.standardize: expected"),
    ("kmeans", _set("features", "spatial_weight", "1"), r"features\.spatial_weight: expected"),
    ("kmeans", _set("features", "spatial_weight", -1.0), r"features\.spatial_weight: "),
    ("kmeans", _set("features", "color_space", "xyz"), r"features\.color_space: expected"),
    ("kmeans", _set("features", "names", "RGB"), r"features\.names: expected a list"),
    ("kmeans", _set("features", "names", ["R", "G"]), r"features\.names: expected 3 names"),
    ("kmeans", _set("features", "constants", []), r"features\.constants: expected a JSON"),
    ("kmeans", _set("parameters", [1]), "parameters: expected a JSON object"),
    ("kmeans", _set("parameters", "centers", "import os"), r"parameters\.centers: expected"),
    (
        "kmeans",
        _set("parameters", "centers", [[True, 0.5, 0.5]] * 3),
        r"parameters\.centers: expected",
    ),
    (
        "kmeans",
        _set("parameters", "centers", [[0.1, 0.2, 0.3], [0.1, 0.2]]),
        r"parameters\.centers: expected",
    ),
    (
        "kmeans",
        _set("parameters", "centers", [[0.1, 0.2]] * 3),
        r"parameters\.centers: expected shape \(3, 3\)",
    ),
    (
        "kmeans",
        _set("parameters", "centers", [[1e200, 0.0, 0.0]] * 3),
        r"parameters\.centers: values too large",
    ),
    ("kmeans", _set("clusters", {"label": 1}), "clusters: expected a list"),
    ("kmeans", lambda c: c["clusters"][0].update(label="1"), r"clusters\[0\]\.label: expected"),
    ("kmeans", lambda c: c["clusters"][0].update(label=1.0), r"clusters\[0\]\.label: expected"),
    ("kmeans", lambda c: c["clusters"][0].update(color="red"), r"clusters\[0\]\.color: "),
    ("kmeans", lambda c: c["clusters"][0].update(name=7), r"clusters\[0\]\.name: expected"),
    (
        "kmeans",
        lambda c: c["clusters"][0].update(component=7),
        r"clusters\[0\]\.component: expected",
    ),
    ("kmeans", _set("provenance", "today"), "provenance: expected a JSON object"),
    # labels: negative, zero, duplicate; more clusters than components
    ("kmeans", lambda c: c["clusters"][0].update(label=-1), r"clusters\[0\]\.label: expected"),
    ("kmeans", lambda c: c["clusters"][0].update(label=0), r"clusters\[0\]\.label: expected"),
    (
        "kmeans",
        lambda c: c["clusters"][1].update(label=c["clusters"][0]["label"]),
        r"clusters\[1\]\.label: 1 is used by another cluster",
    ),
    (
        "kmeans",
        lambda c: c["clusters"][1].update(component=c["clusters"][0]["component"]),
        r"clusters\[1\]\.component: .* is used by another cluster",
    ),
    (
        "kmeans",
        lambda c: c["clusters"].append(dict(c["clusters"][0], label=4)),
        "clusters: 4 clusters, but the model has only 3 components",
    ),
    # more components than n_clusters allows
    (
        "kmeans",
        lambda c: c["parameters"].update(centers=[[0.5] * 3] * 1001),
        r"parameters\.centers: 1001 components; at most 1000",
    ),
    # mixtures: weights and precisions
    (
        "gmm",
        lambda c: c["parameters"]["weights"].__setitem__(0, float("nan")),
        r"parameters\.weights: expected a list of finite numbers",
    ),
    (
        "gmm",
        lambda c: c["parameters"].update(weights=[-0.2, 0.6, 0.6]),
        r"parameters\.weights: expected positive numbers that sum to 1",
    ),
    (
        "gmm",
        lambda c: c["parameters"].update(weights=[0.0, 0.5, 0.5]),
        r"parameters\.weights: expected positive numbers",
    ),
    (
        "gmm",
        lambda c: c["parameters"].update(weights=[0.5, 0.5, 0.5]),
        r"parameters\.weights: expected positive numbers that sum to 1",
    ),
    (
        "gmm",
        lambda c: c["parameters"].update(weights=[1.0]),
        r"parameters\.weights: expected shape \(3,\)",
    ),
    (
        "gmm",
        _set("parameters", "covariance_type", "banana"),
        r"parameters\.covariance_type: expected one of",
    ),
    ("gmm", _scale_diagonal(float("nan")), r"parameters\.precisions_cholesky: expected a"),
    ("gmm", _scale_diagonal(float("inf")), r"parameters\.precisions_cholesky: expected a"),
    ("gmm", _scale_diagonal(0.0), r"parameters\.precisions_cholesky: expected triangular"),
    ("gmm", _scale_diagonal(-1.0), r"parameters\.precisions_cholesky: expected triangular"),
    ("gmm", _scale_diagonal(1e300), r"parameters\.precisions_cholesky: values too large"),
    (
        "gmm",
        lambda c: c["parameters"].update(precisions_cholesky=[[1.0, 1.0, 1.0]] * 3),
        r"parameters\.precisions_cholesky: expected a list of tables of finite numbers",
    ),
    (
        "gmm",
        lambda c: c["parameters"].update(
            precisions_cholesky=[[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]] * 3
        ),
        r"parameters\.precisions_cholesky: expected triangular",
    ),
    (
        "gmm",
        lambda c: c["parameters"].update(
            precisions_cholesky=[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]] * 3
        ),
        r"parameters\.precisions_cholesky: expected triangular",
    ),
    # the feature pipeline
    ("kmeans", _set("features", "standardize", True), r"features\.constants\.mean: missing"),
    ("spatial", _drop("features", "constants", "scale"), r"features\.constants\.scale: missing"),
    (
        "spatial",
        lambda c: c["features"]["constants"].update(scale=[1.0, 0.0, 1.0]),
        r"features\.constants\.scale: expected scales above 0",
    ),
    (
        "spatial",
        lambda c: c["features"]["constants"].update(mean=[0.5, 0.5]),
        r"features\.constants\.mean: expected shape \(3,\)",
    ),
    (
        "spatial",
        _drop("features", "constants", "coordinate_mean"),
        r"features\.constants\.coordinate_mean: missing",
    ),
    (
        "spatial",
        _set("features", "constants", "coordinate_scale", 0.0),
        r"features\.constants\.coordinate_scale: expected a number above 0",
    ),
    (
        "spatial",
        _set("features", "constants", "coordinate_mean", [15.5]),
        r"features\.names: expected 4 names",
    ),
    (
        "kmeans",
        _set("features", "constants", "coordinate_mean", [15.5, 15.5]),
        r"features\.constants\.coordinate_mean: given, but spatial_weight is 0",
    ),
]


def _apply(tamper, content):
    """Tamperings edit ``content`` in place, or (``_replace``) give a whole new one."""
    new = tamper(content)
    return new if getattr(tamper, "replaces", False) else content


@pytest.mark.parametrize(
    "method, tamper, message", MODEL_TAMPERINGS, ids=case_ids(MODEL_TAMPERINGS)
)
def test_a_tampered_model_file_is_a_value_error_naming_file_and_field(
    three_region_models, tmp_path, method, tamper, message
):
    content = _apply(tamper, copy.deepcopy(three_region_models[method]))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"^model file: {re.escape(str(path))}: {message}"):
        npc.load_model(path)


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda m: m.parameters.update(weights=[float("nan")] * 3), r"parameters\.weights: "),
        (lambda m: m.parameters.update(weights=np.array([0.0, 0.5, 0.5])), r"parameters\.weights"),
        (lambda m: m.clusters[0].update(label=0), r"clusters\[0\]\.label: "),
        (lambda m: m.pipeline.update(standardize=True), r"features\.constants\.mean: missing"),
        (
            lambda m: m.parameters.update(means=np.full((3, 3), 1e200)),
            r"parameters\.means: "
            "values too large",
        ),
        (
            lambda m: m.image.update(kind="rgba"),
            r"image\.n_channels: expected a whole number "
            "from 4 to 4",
        ),
    ],
)
def test_predict_refuses_a_model_tampered_after_loading(
    three_region_results, tmp_path, tamper, message
):
    model = npc.load_model(npc.save_model(three_region_results["gmm"], tmp_path / "model.json"))
    tamper(model)
    with pytest.raises(ValueError, match=f"^model: {message}"):
        model.predict(THREE_REGIONS)


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda c: c.update(format="something else"), "not a napari-pixel-clusters model"),
        (lambda c: c.update(version=99), "version: 99 is not supported"),
        (lambda c: c.pop("parameters"), "missing parameters"),
        (lambda c: c.update(method="ward"), "method: 'ward' cannot label new images"),
        (
            lambda c: c["parameters"].update(centers=[[1, 2]]),
            r"parameters.centers: expected shape",
        ),
        (
            lambda c: c["parameters"].update(centers="import os"),
            "parameters.centers: expected a table",
        ),
        (lambda c: c["clusters"][0].update(component=7), r"clusters\[0\].component: expected"),
    ],
)
def test_a_tampered_model_file_is_a_clear_error(photo, tmp_path, tamper, message):
    path = npc.save_model(npc.segment(photo, "kmeans", 3), tmp_path / "model.json")
    content = json.loads(path.read_text())
    tamper(content)
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"^model file: {path}: {message}"):
        npc.load_model(path)


@pytest.fixture(scope="module")
def stains_model():
    """A model made in color space "stains" (named vectors), as its file holds it."""
    from skimage import data

    ihc = data.immunohistochemistry()[:64, :64]
    vectors = {"hematoxylin": [0.65, 0.70, 0.29], "DAB": [0.27, 0.57, 0.78]}
    seg = npc.segment(ihc, "kmeans", 3, color_space="stains", stain_vectors=vectors)
    return seg.model.to_dict()


STAINS = ("features", "constants", "stain_vectors")
STAIN_TAMPERINGS = [
    (_drop(*STAINS), r"features\.constants\.stain_vectors: missing"),
    (_set(*STAINS, [[1, 0, 0]] * 3), r"features\.constants\.stain_vectors: expected a JSON"),
    (_drop(*STAINS, "vectors"), r"features\.constants\.stain_vectors\.vectors: missing"),
    (_set(*STAINS, "names", ["H", "D"]), r"stain_vectors\.names: expected a list of 3 texts"),
    (_set(*STAINS, "names", ["H", "D", 3]), r"stain_vectors\.names: expected a list of 3"),
    (_set(*STAINS, "vectors", [[0.6, 0.7, 0.3]] * 2), r"stain_vectors\.vectors: expected shape"),
    (_set(*STAINS, "vectors", [[0.6, "x", 0.3]] * 3), r"stain_vectors\.vectors: expected a"),
    (_set(*STAINS, "vectors", [[1, 0, 0], [0, 1, 0], [1, 1, 0]]), r"linearly dependent"),
    (_set(*STAINS, "names", ["H", "H", "r"]), r"stain_vectors: the names must differ"),
    (_set(*STAINS, "estimated", "yes"), r"stain_vectors\.estimated: expected true or false"),
    (_set(*STAINS, "source", "me"), r"stain_vectors\.source: unknown field"),
    (_set("features", "color_space", "hed"), r"stain_vectors: given, but color_space is 'hed'"),
]


@pytest.mark.parametrize(
    "tamper, message",
    STAIN_TAMPERINGS,
    ids=[f"{i}-{re.sub(r'[^a-z_.]+', '', m[-30:])}" for i, (_, m) in enumerate(STAIN_TAMPERINGS)],
)
def test_a_tampered_stain_vectors_field_is_a_value_error_naming_it(
    stains_model, tmp_path, tamper, message
):
    content = _apply(tamper, copy.deepcopy(stains_model))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"^model file: {re.escape(str(path))}: .*{message}"):
        npc.load_model(path)
    assert npc.Model.from_dict(stains_model).pipeline["constants"]["stain_vectors"]["names"] == [
        "hematoxylin",
        "DAB",
        "residual",
    ]
