"""Files a user hands us (core/files.py): only regular files of a bounded size are read
(a FIFO, a device or a directory is refused before it is opened), and text that breaks
parsers (deep nesting, huge integers, not JSON, not UTF-8) is a clear ValueError. Checked
through ``load_model``, the way users reach them."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import finishes, release_fifo

try:
    import resource
except ImportError:  # not on Windows
    resource = None

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.files import MAX_JSON_DEPTH
from napari_pixel_clusters.core.model import MAX_MODEL_BYTES

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


def test_a_huge_integer_inside_a_model_is_refused(three_region_models, tmp_path):
    content = copy.deepcopy(three_region_models["kmeans"])
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
        error = finishes(lambda: npc.load_model(fifo))
    finally:
        release_fifo(fifo)
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


def test_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "model.json"
    path.write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(ValueError, match=r"^model file: "):
        npc.load_model(path)
