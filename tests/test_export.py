"""Saved models and result folders are untrusted input: every tampering is one clear
ValueError naming the file and the field, never a crash, a hang or a silent wrong result;
good files still round-trip exactly."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import tifffile

try:
    import resource
except ImportError:  # not on Windows
    resource = None

import contextlib

import napari_pixel_clusters as npc
from napari_pixel_clusters._reader import get_reader
from napari_pixel_clusters.core.files import MAX_JSON_DEPTH
from napari_pixel_clusters.core.model import MAX_MODEL_BYTES


def _image() -> np.ndarray:
    """32 x 32 RGB: three color regions with some noise (distinct clusters)."""
    rng = np.random.default_rng(0)
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :12] = (200, 40, 40)
    image[:, 12:22] = (40, 180, 60)
    image[:, 22:] = (30, 50, 220)
    return np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)


IMAGE = _image()


@pytest.fixture(scope="module")
def segs():
    return {
        "kmeans": npc.segment(IMAGE, "kmeans", 3, random_state=0),
        "gmm": npc.segment(IMAGE, "gmm", 3, random_state=0, covariance_type="full"),
        "spatial": npc.segment(
            IMAGE, "kmeans", 3, random_state=0, spatial_weight=1.0, standardize=True
        ),
    }


@pytest.fixture(scope="module")
def contents(segs):
    return {name: json.loads(json.dumps(seg.model.to_dict())) for name, seg in segs.items()}


def _finishes(function, timeout: float = 20.0):
    """Run ``function`` in a thread; return what it raised (None), or fail after
    ``timeout`` s (a regression that blocks must not hang the suite)."""
    outcome = {}

    def run():
        try:
            function()
            outcome["error"] = None
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still blocked after {timeout} s"
    return outcome["error"]


def _release(fifo) -> None:
    """Unblock a reader stuck on ``fifo`` (only needed when the test fails)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


# ----------------------------------------------------------------------------- models
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


def _ids(cases):
    return [
        f"{i}-{case[0]}-{re.sub(r'[^a-z_.]+', '', case[-1][:30])}" for i, case in enumerate(cases)
    ]


@pytest.mark.parametrize("method, tamper, message", MODEL_TAMPERINGS, ids=_ids(MODEL_TAMPERINGS))
def test_a_tampered_model_file_is_a_value_error_naming_file_and_field(
    contents, tmp_path, method, tamper, message
):
    content = _apply(tamper, copy.deepcopy(contents[method]))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"^model file: {re.escape(str(path))}: {message}"):
        npc.load_model(path)


def _apply(tamper, content):
    """Tamperings edit ``content`` in place, or (``_replace``) give a whole new one."""
    new = tamper(content)
    return new if getattr(tamper, "replaces", False) else content


RAW_MODEL_FILES = [
    ("[" * 100_000 + "]" * 100_000, f"nests 100000 levels deep; at most {MAX_JSON_DEPTH}"),
    ('{"a": ' * 5_000 + "1" + "}" * 5_000, "nests 5000 levels deep"),
    (
        '{"format": "napari-pixel-clusters model", "version": ' + "9" * 400 + "}",
        "holds an integer of 400 digits",
    ),
    ('{"format": "napari-pixel-clusters model", "version": 1, ', "not valid JSON"),
    ("", "not valid JSON"),
    ("\x80\x04\x95pickle", "not UTF-8 text"),
    ("null", "not a napari-pixel-clusters model"),
    ('"[[[[ not nested ]]]]"', "not a napari-pixel-clusters model"),
]


@pytest.mark.parametrize("text, message", RAW_MODEL_FILES, ids=range(len(RAW_MODEL_FILES)))
def test_model_files_that_break_parsers_are_value_errors(tmp_path, text, message):
    path = tmp_path / "model.json"
    path.write_bytes(
        text.encode("utf-8", "surrogateescape")
        if not text.startswith("\x80")
        else b"\x80\x04\x95pickle"
    )
    with pytest.raises(ValueError, match=f"^model file: {re.escape(str(path))}: {message}"):
        npc.load_model(path)


def test_a_huge_integer_inside_a_model_is_refused(contents, tmp_path):
    content = copy.deepcopy(contents["kmeans"])
    path = tmp_path / "model.json"
    text = json.dumps(content).replace('"n_channels": 3', '"n_channels": ' + "9" * 400)
    path.write_text(text)
    with pytest.raises(ValueError, match="holds an integer of 400 digits"):
        npc.load_model(path)


def test_a_model_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "model.json"
    with open(path, "wb") as handle:  # sparse: nothing is written, nothing need be read
        handle.truncate(MAX_MODEL_BYTES + 1)
    with pytest.raises(
        ValueError,
        match=f"^model file: {re.escape(str(path))}: 64.0 MB; files over 64 MB are not read",
    ):
        npc.load_model(path)


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(
        ValueError,
        match=f"^model file: {re.escape(str(tmp_path))}: a directory, not a regular file",
    ):
        npc.load_model(tmp_path)


def test_a_missing_model_file(tmp_path):
    with pytest.raises(
        ValueError, match=r"^model file: .*nothing.json: cannot read it: No such file"
    ):
        npc.load_model(tmp_path / "nothing.json")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "model.json"
    os.mkfifo(fifo)
    try:
        error = _finishes(lambda: npc.load_model(fifo))
    finally:
        _release(fifo)
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"model file: {fifo}: a FIFO (named pipe), not a regular")


@pytest.mark.skipif(
    not os.path.exists("/dev/zero") or resource is None, reason="no /dev/zero here"
)
def test_a_device_is_refused_without_reading_it():
    """In a child process with little memory and time: reading /dev/zero never ends."""

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    code = (
        "import napari_pixel_clusters as npc\n"
        "try:\n    npc.load_model('/dev/zero')\n"
        "except ValueError as error:\n    print(error)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert shown.stdout.startswith("model file: /dev/zero: a character device"), shown.stderr


@pytest.mark.parametrize("method", ["kmeans", "gmm", "spatial"])
def test_good_model_files_round_trip_exactly(segs, tmp_path, method):
    seg = segs[method]
    path = npc.save_model(seg, tmp_path / "model.json")
    model = npc.load_model(path)
    assert model.to_dict() == json.loads(json.dumps(seg.model.to_dict()))
    np.testing.assert_array_equal(model.predict(IMAGE).labels, seg.labels)
    np.testing.assert_array_equal(
        model.predict(IMAGE[::-1]).labels, seg.model.predict(IMAGE[::-1]).labels
    )


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
def test_predict_refuses_a_model_tampered_after_loading(segs, tmp_path, tamper, message):
    model = npc.load_model(npc.save_model(segs["gmm"], tmp_path / "model.json"))
    tamper(model)
    with pytest.raises(ValueError, match=f"^model: {message}"):
        model.predict(IMAGE)


def test_a_mixture_without_a_finite_likelihood_is_an_error_not_labels():
    grey = np.linspace(0.0, 1.0, 1024).reshape(32, 32)
    model = npc.segment(grey, "gmm", 2, random_state=0, covariance_type="diag").model
    model.parameters["precisions_cholesky"] = [[1e150], [1e150]]  # valid, but extreme
    with pytest.raises(
        ValueError, match=r"^model: its Gaussian parameters give no finite likelihood"
    ):  # was: every pixel cluster 1
        model.predict(grey * 1e5)


# ----------------------------------------------------------------------- result folders
@pytest.fixture
def folder(segs, tmp_path):
    return npc.write_result(segs["gmm"], tmp_path / "result", source="image")


def _write_json(path, content):
    path.write_text(json.dumps(content))


def _edit_json(name, edit):
    def tamper(folder):
        content = json.loads((folder / name).read_text())
        edit(content)
        _write_json(folder / name, content)

    return tamper


def _edit_table(name, edit):
    def tamper(folder):
        table = pd.read_csv(folder / name)
        table = edit(table)
        table.to_csv(folder / name, index=False)

    return tamper


def _write(name, content):
    def tamper(folder):
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return tamper


def _remove(name):
    return lambda folder: (folder / name).unlink()


def _tiff(name, array):
    return lambda folder: tifffile.imwrite(folder / name, array)


def _link_out(name):
    def tamper(folder):
        outside = folder.parent / f"outside-{name}"
        os.replace(folder / name, outside)
        os.symlink(outside, folder / name)

    return tamper


def _directory(name):
    def tamper(folder):
        (folder / name).unlink()
        (folder / name).mkdir()

    return tamper


FOLDER_TAMPERINGS = [
    ("params.json", _write("params.json", "[]"), "expected a JSON object, got list"),
    ("params.json", _write("params.json", "null"), "expected a JSON object, got NoneType"),
    ("params.json", _write("params.json", "[" * 50_000 + "]" * 50_000), "nests 50000 levels"),
    (
        "params.json",
        _write("params.json", '{"source": 1' + "0" * 400 + "}"),
        "holds an integer of 401 digits",
    ),
    ("params.json", _write("params.json", "{'single': 'quotes'}"), "not valid JSON"),
    (
        "params.json",
        _edit_json("params.json", lambda c: c.update(params=[1, 2])),
        "params: expected a JSON object",
    ),
    (
        "params.json",
        _edit_json("params.json", lambda c: c.update(source=["a"])),
        "source: expected a text",
    ),
    (
        "params.json",
        _edit_json("params.json", lambda c: c.update(score="good")),
        "score: expected a JSON object",
    ),
    (
        "params.json",
        _edit_json("params.json", lambda c: c["params"].update(image=[3])),
        r"params\.image: expected a JSON object",
    ),
    (
        "params.json",
        _edit_json("params.json", lambda c: c["params"]["image"].update(kind=3)),
        r"params\.image\.kind: expected a text",
    ),
    ("params.json", _directory("params.json"), "a directory, not a regular file"),
    ("params.json", _link_out("params.json"), "a symbolic link to .*, outside the folder"),
    (
        "table.csv",
        _edit_table("table.csv", lambda t: t.drop(columns="color")),
        r"missing column\(s\) color",
    ),
    (
        "table.csv",
        _edit_table("table.csv", lambda t: t.drop(columns="label")),
        r"missing column\(s\) label",
    ),
    (
        "table.csv",
        _edit_table("table.csv", lambda t: t.assign(label=[0, 1, 2])),
        "label: expected different whole numbers of 1 or more",
    ),
    (
        "table.csv",
        _edit_table("table.csv", lambda t: t.assign(label=[-1, 1, 2])),
        "label: expected different whole numbers",
    ),
    (
        "table.csv",
        _edit_table("table.csv", lambda t: t.assign(label=[1, 1, 2])),
        "label: expected different whole numbers",
    ),
    (
        "table.csv",
        _edit_table("table.csv", lambda t: t.assign(label=[1.5, 2, 3])),
        "label: expected different whole numbers",
    ),
    (
        "table.csv",
        _edit_table("table.csv", lambda t: t.assign(color=["red", "#000000", "#ffffff"])),
        "color: expected hex colors",
    ),
    ("table.csv", _write("table.csv", 'label,color\n"1,#000000\n'), "not a readable CSV"),
    ("table.csv", _write("table.csv", ""), "not a readable CSV"),
    ("table.csv", _write("table.csv", b"\xff\xfe\x00garbage"), "not UTF-8 text"),
    (
        "table.csv",
        _write("table.csv", "label,color\n" + "".join(f"{i},#000000\n" for i in range(1, 1002))),
        "1001 clusters; at most 1000",
    ),
    ("table.csv", _link_out("table.csv"), "a symbolic link to .*, outside the folder"),
    ("labels.tif", _write("labels.tif", b"II*\x00 not really a tiff"), "labels: expected whole"),
    ("labels.tif", _write("labels.tif", "just text"), "not a readable TIFF"),
    (
        "labels.tif",
        _tiff("labels.tif", np.zeros((32, 32), np.float32)),
        "labels: expected whole numbers in 2 or more dimensions, got a 2-D array of float32",
    ),
    ("labels.tif", _tiff("labels.tif", np.zeros(32, np.int32)), "labels: expected whole"),
    (
        "labels.tif",
        _tiff("labels.tif", np.full((32, 32), -1, np.int32)),
        "labels: expected 0 or more",
    ),
    (
        "quantized.tif",
        _tiff("labels.tif", np.ones((16, 32), np.int32)),
        r"shape \(32, 32, 3\) does not match the labels' \(16, 32\)",
    ),
    (
        "quantized.tif",
        _tiff("quantized.tif", np.zeros((32, 31, 3), np.uint8)),
        r"shape \(32, 31, 3\) does not match",
    ),
    (
        "quantized.tif",
        _tiff("quantized.tif", np.zeros((32, 32), np.complex64)),
        "quantized: expected numbers",
    ),
    ("labels.tif", _link_out("labels.tif"), "a symbolic link to .*, outside the folder"),
    ("labels.tif", _directory("labels.tif"), "a directory, not a regular file"),
    (
        "outlines.csv",
        _edit_table("outlines.csv", lambda t: t.drop(columns="axis-1")),
        "expected napari's Shapes columns",
    ),
    (
        "outlines.csv",
        _edit_table("outlines.csv", lambda t: t.assign(**{"axis-0": "x"})),
        "axis-0: expected finite numbers",
    ),
    (
        "outlines.csv",
        _edit_table("outlines.csv", lambda t: t.assign(**{"axis-1": np.nan})),
        "axis-1: expected finite numbers",
    ),
    (
        "outlines.csv",
        _edit_table("outlines.csv", lambda t: t.assign(index=0.5)),
        "index: expected whole numbers",
    ),
    (
        "outlines.csv",
        _edit_table("outlines.csv", lambda t: t.assign(label="one")),
        "label: expected whole numbers",
    ),
    (
        "model.json",
        _edit_json("model.json", lambda c: c["parameters"].update(weights=[0.0, 0.5, 0.5])),
        r"parameters\.weights: expected positive numbers",
    ),
    (
        "model.json",
        _edit_json("model.json", lambda c: c.update(version=True)),
        "version: True is not supported",
    ),
    ("model.json", _write("model.json", "[" * 10_000 + "]" * 10_000), "nests 10000 levels"),
    ("model.json", _link_out("model.json"), "a symbolic link to .*, outside the folder"),
]


@pytest.mark.parametrize("name, tamper, message", FOLDER_TAMPERINGS, ids=_ids(FOLDER_TAMPERINGS))
def test_a_tampered_result_folder_is_a_value_error_naming_file_and_field(
    folder, name, tamper, message
):
    tamper(folder)
    expected = f"^folder: {re.escape(str(folder / name))}: {message}"
    with pytest.raises(ValueError, match=expected):
        npc.read_result(folder)
    reader = get_reader(str(folder / "params.json"))
    if reader is not None:  # the npe2 reader (File > Open) gives the same error
        with pytest.raises(ValueError, match=expected):
            reader(str(folder / "params.json"))


@pytest.mark.parametrize("name", ["labels.tif", "table.csv", "params.json"])
def test_a_folder_missing_a_required_file(folder, name):
    (folder / name).unlink()
    with pytest.raises(
        ValueError,
        match=f"^folder: {re.escape(str(folder))}: not a result folder \\(missing {name}\\)",
    ):
        npc.read_result(folder)


def test_a_file_is_not_a_result_folder(folder):
    with pytest.raises(ValueError, match=r"^folder: .*params.json: not a folder"):
        npc.read_result(folder / "params.json")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("name", ["params.json", "table.csv", "labels.tif", "model.json"])
def test_a_fifo_in_a_result_folder_is_refused_without_reading_it(folder, name):
    (folder / name).unlink()
    os.mkfifo(folder / name)
    try:
        error = _finishes(lambda: npc.read_result(folder))
    finally:
        _release(folder / name)
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"folder: {folder / name}: a FIFO")


def test_a_link_inside_the_folder_is_followed(folder):
    os.replace(folder / "table.csv", folder / "table copy")
    os.symlink(folder / "table copy", folder / "table.csv")
    assert list(npc.read_result(folder).table["label"]) == [1, 2, 3]


def test_a_lazy_result_with_a_link_out_of_its_zarr_store_is_refused(tmp_path):
    import dask.array as da

    seg = npc.segment(da.from_array(IMAGE, chunks=(16, 16, 3)), "kmeans", 3, random_state=0)
    folder = npc.write_result(seg, tmp_path / "lazy")
    np.testing.assert_array_equal(npc.read_result(folder).labels.compute(), np.asarray(seg.labels))
    chunk = next(
        path
        for path in sorted((folder / "labels.zarr").rglob("*"))
        if path.is_file() and not path.name.startswith((".", "zarr"))
    )
    (tmp_path / "secret").write_bytes(chunk.read_bytes())
    chunk.unlink()
    os.symlink(tmp_path / "secret", chunk)
    with pytest.raises(
        ValueError,
        match=f"^folder: {re.escape(str(chunk))}: a symbolic link to .* outside the folder",
    ):
        npc.read_result(folder)


@pytest.mark.parametrize("method", ["kmeans", "gmm", "spatial"])
def test_good_result_folders_round_trip_exactly(segs, tmp_path, method):
    seg = segs[method]
    saved = npc.read_result(npc.write_result(seg, tmp_path / "result", source="image"))
    np.testing.assert_array_equal(saved.labels, seg.labels)
    np.testing.assert_array_equal(saved.quantized, seg.quantized())
    pd.testing.assert_frame_equal(saved.table, seg.table, check_dtype=False)
    assert len(saved.outlines.groupby("index")) == len(seg.contours())
    assert saved.params["params"]["method"] == seg.method
    np.testing.assert_array_equal(saved.model.predict(IMAGE).labels, seg.labels)
    layers = get_reader(str(tmp_path / "result" / "params.json"))(
        str(tmp_path / "result" / "params.json")
    )
    assert [kind for _, _, kind in layers] == ["image", "labels", "shapes"]  # outlines on top
    np.testing.assert_array_equal(layers[1][0], seg.labels)
    assert layers[0][1]["rgb"]
