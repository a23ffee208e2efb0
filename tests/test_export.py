"""A result as a folder of ordinary files, and back (core/export.py: ``write_result``,
``read_result``).

Writing never destroys what is not ours: each rule is checked through both doors, the API's
``write_result`` and napari's folder writer (``_writers.py``). Reading: a result folder is
untrusted input, every tampering is one clear ValueError naming the file and the field,
never a crash, a hang or a silent wrong result; good folders round-trip exactly."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage import data

import napari_pixel_clusters as npc
from conftest import (
    THREE_REGIONS,
    case_ids,
    clusters_layer_data,
    finishes,
    no_leftovers,
    release_fifo,
    snapshot,
)
from napari_pixel_clusters._reader import get_reader
from napari_pixel_clusters.core.export import write_result


# ------------------------------------------- reading: a result folder is untrusted input
@pytest.fixture
def folder(three_region_results, tmp_path):
    return npc.write_result(three_region_results["gmm"], tmp_path / "result", source="image")


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


@pytest.mark.parametrize(
    "name, tamper, message", FOLDER_TAMPERINGS, ids=case_ids(FOLDER_TAMPERINGS)
)
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


def _table_of(n_rows: int) -> str:
    labels = np.arange(1, n_rows + 1).astype(str).astype(object)
    return "label,color\n" + "".join(labels + ",#000000\n")


def test_a_table_may_hold_up_to_a_million_clusters_more_than_a_model(folder, monkeypatch):
    """A result's table has its own limit (superpixels: many more clusters than a model's
    1000 components), exactly at its edge; beyond it, one clear error."""
    from napari_pixel_clusters.core import export
    from napari_pixel_clusters.core.model_check import MAX_COMPONENTS

    assert export.MAX_TABLE_ROWS == 1_000_000 > MAX_COMPONENTS == 1000
    table = folder / "table.csv"
    table.write_text(_table_of(export.MAX_TABLE_ROWS))
    assert table.stat().st_size < export.MAX_TABLE_BYTES
    read = npc.read_result(folder).table
    assert len(read) == export.MAX_TABLE_ROWS and read["label"].iloc[-1] == 1_000_000
    monkeypatch.setattr(export, "MAX_TABLE_ROWS", 10)  # the same check, on a small table
    table.write_text(_table_of(11))
    with pytest.raises(
        ValueError,
        match=f"^folder: {re.escape(str(table))}: 11 clusters; at most 10 are read.$",
    ):
        npc.read_result(folder)


def test_a_table_larger_than_its_limit_is_refused_unread(folder, monkeypatch):
    """Sizes are checked before reading: a (sparse) table.csv of 128 MB and a byte is
    refused without being opened."""
    from napari_pixel_clusters.core.export import MAX_TABLE_BYTES

    assert MAX_TABLE_BYTES == 128 * 2**20
    table = folder / "table.csv"
    with open(table, "r+b") as handle:
        handle.truncate(MAX_TABLE_BYTES + 1)
    opened, real_open = [], os.open
    monkeypatch.setattr(
        os, "open", lambda path, *args: opened.append(path) or real_open(path, *args)
    )
    with pytest.raises(ValueError) as refused:
        npc.read_result(folder)
    assert str(refused.value) == f"folder: {table}: 128.0 MB; files over 128 MB are not read."
    assert folder / "params.json" in map(Path, opened)  # read (opened) before the table
    assert table not in map(Path, opened)


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
        error = finishes(lambda: npc.read_result(folder))
    finally:
        release_fifo(folder / name)
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"folder: {folder / name}: a FIFO")


def test_a_link_inside_the_folder_is_followed(folder):
    os.replace(folder / "table.csv", folder / "table copy")
    os.symlink(folder / "table copy", folder / "table.csv")
    assert list(npc.read_result(folder).table["label"]) == [1, 2, 3]


def test_a_lazy_result_with_a_link_out_of_its_zarr_store_is_refused(tmp_path):
    import dask.array as da

    seg = npc.segment(
        da.from_array(THREE_REGIONS, chunks=(16, 16, 3)), "kmeans", 3, random_state=0
    )
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
def test_good_result_folders_round_trip_exactly(three_region_results, tmp_path, method):
    seg = three_region_results[method]
    saved = npc.read_result(npc.write_result(seg, tmp_path / "result", source="image"))
    np.testing.assert_array_equal(saved.labels, seg.labels)
    np.testing.assert_array_equal(saved.quantized, seg.quantized())
    pd.testing.assert_frame_equal(saved.table, seg.table, check_dtype=False)
    assert len(saved.outlines.groupby("index")) == len(seg.contours())
    assert saved.params["params"]["method"] == seg.method
    np.testing.assert_array_equal(saved.model.predict(THREE_REGIONS).labels, seg.labels)
    layers = get_reader(str(tmp_path / "result" / "params.json"))(
        str(tmp_path / "result" / "params.json")
    )
    assert [kind for _, _, kind in layers] == ["image", "labels", "shapes"]  # outlines on top
    np.testing.assert_array_equal(layers[1][0], seg.labels)
    assert layers[0][1]["rgb"]


# ------------------------------------------ writing: never destroy what is not ours
def _write_with_api(seg, folder):
    return npc.write_result(seg, folder, source="photo")


def _write_with_napari(seg, folder):
    from napari_pixel_clusters._writers import write_result_folder

    return write_result_folder(str(folder), clusters_layer_data(seg))[0]


WRITERS = [_write_with_api, _write_with_napari]


@pytest.mark.parametrize("write", WRITERS)
def test_a_dotted_folder_name_is_used_as_given(small_results, tmp_path, write):
    """Saving to mydata.v2 once replaced an existing folder mydata and its files."""
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "labels.tif").write_bytes(b"my own labels")
    before = snapshot(mine)
    written = write(small_results[0], tmp_path / "mydata.v2")
    assert str(written) == str(tmp_path / "mydata.v2")
    assert snapshot(mine) == before
    np.testing.assert_array_equal(
        npc.read_result(tmp_path / "mydata.v2").labels, small_results[0].labels
    )
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize(
    "write, message",
    [
        (
            _write_with_api,
            r"^out: {} exists already; choose another folder or pass "
            r"overwrite=True \(--overwrite on the command line\)\.$",
        ),
        (
            _write_with_napari,
            r"^path: {} exists already; choose a new folder name \(napari "
            r"never replaces",
        ),
    ],
)
def test_an_existing_non_empty_folder_is_refused_and_left_alone(
    small_results, tmp_path, write, message
):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=message.format(re.escape(str(folder)))):
        write(small_results[0], folder)
    assert snapshot(folder) == {Path("notes.txt"): b"mine"}
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize("write", WRITERS)
def test_an_existing_result_folder_is_not_replaced_without_asking(small_results, tmp_path, write):
    folder = write(small_results[0], tmp_path / "x")
    before = snapshot(Path(folder))
    with pytest.raises(ValueError, match="exists already"):
        write(small_results[1], folder)
    assert snapshot(Path(folder)) == before


@pytest.mark.parametrize("write", WRITERS)
def test_an_existing_empty_folder_is_used(small_results, tmp_path, write):
    (tmp_path / "empty").mkdir()
    write(small_results[0], tmp_path / "empty")
    np.testing.assert_array_equal(
        npc.read_result(tmp_path / "empty").labels, small_results[0].labels
    )
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize("write", WRITERS)
def test_a_file_in_the_way_is_never_replaced(small_results, tmp_path, write):
    (tmp_path / "x").write_text("my file")
    with pytest.raises(ValueError, match=r"^(out|path): .* exists already"):
        write(small_results[0], tmp_path / "x")
    with pytest.raises(ValueError, match=r"^out: .* exists already and is not a folder"):
        npc.write_result(small_results[0], tmp_path / "x", overwrite=True)
    assert (tmp_path / "x").read_text() == "my file"


def test_overwrite_replaces_a_result_folder_we_wrote(small_results, tmp_path):
    folder = npc.write_result(small_results[0], tmp_path / "x")
    npc.write_result(small_results[1], folder, overwrite=True)
    saved = npc.read_result(folder)
    np.testing.assert_array_equal(saved.labels, small_results[1].labels)
    assert len(saved.table) == 2
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize(
    "content, reason",
    [
        ({"notes.txt": b"mine"}, "it holds notes.txt"),
        ({"labels.tif": b"mine", "table.csv": b"mine"}, "it has no params.json written by"),
        ({"params.json": b'{"mine": 1}'}, "it has no params.json written by"),
        (
            {"params.json": b'{"format": "my format", "source": "", "written": "", "params": {}}'},
            "it has no params.json written by",
        ),
    ],
)
def test_overwrite_never_replaces_a_folder_we_did_not_write(
    small_results, tmp_path, content, reason
):
    folder = tmp_path / "x"
    folder.mkdir()
    for name, data_bytes in content.items():
        (folder / name).write_bytes(data_bytes)
    with pytest.raises(
        ValueError,
        match=f"^out: {folder} is not a result folder written by "
        f"napari-pixel-clusters \\({reason}",
    ):
        npc.write_result(small_results[0], folder, overwrite=True)
    assert snapshot(folder) == {Path(name): value for name, value in content.items()}


def test_overwrite_keeps_a_result_folder_the_user_added_files_to(small_results, tmp_path):
    folder = npc.write_result(small_results[0], tmp_path / "x")
    (folder / "my notes.txt").write_text("mine")
    before = snapshot(folder)
    with pytest.raises(ValueError, match=r"it holds my notes.txt"):
        npc.write_result(small_results[1], folder, overwrite=True)
    assert snapshot(folder) == before


def test_a_failed_overwrite_keeps_the_old_result_whole(small_results, tmp_path, monkeypatch):
    from napari_pixel_clusters.core import export

    folder = npc.write_result(small_results[0], tmp_path / "x")
    before = snapshot(folder)

    def broken(path, array, info):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(export, "write_tiff", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        npc.write_result(small_results[1], folder, overwrite=True)
    assert snapshot(folder) == before
    assert no_leftovers(tmp_path)


def test_an_unwritable_place_is_a_value_error(small_results, tmp_path):
    (tmp_path / "a file").write_text("mine")
    with pytest.raises(ValueError, match=r"^out: cannot write .*a file/x: "):
        npc.write_result(small_results[0], tmp_path / "a file" / "x")
    assert (tmp_path / "a file").read_text() == "mine"


def test_outlines_csv_opens_as_napari_shapes(tmp_path):
    from napari_builtins.io import csv_to_layer_data

    seg = npc.segment(data.coins()[::2, ::2], "kmeans", 3, random_state=0)
    folder = write_result(seg, tmp_path / "result", source="coins", min_area=30)
    shapes, _, layer_type = csv_to_layer_data(str(folder / "outlines.csv"))
    assert layer_type == "shapes"
    contours = seg.contours(min_area=30)
    assert len(shapes) == len(contours)
    np.testing.assert_allclose(shapes[0], contours[0].vertices)
    with pytest.raises(ValueError, match=r"^out: .* exists already"):
        write_result(seg, folder)


# ------------------------------------------------------------ objects in a result folder
@pytest.fixture
def objects_folder(three_region_results, tmp_path):
    seg = three_region_results["kmeans"]
    objects = seg.objects([1, 2], connectivity=1)
    return seg, objects, write_result(seg, tmp_path / "result", source="image", objects=objects)


def test_objects_round_trip_with_their_table_and_how_they_were_made(objects_folder):
    seg, objects, folder = objects_folder
    assert {"objects.tif", "objects.csv"} <= {path.name for path in folder.iterdir()}
    saved = npc.read_result(folder)
    np.testing.assert_array_equal(saved.objects.labels, objects.labels)
    pd.testing.assert_frame_equal(saved.objects.table, objects.table, check_dtype=False)
    made = json.loads((folder / "params.json").read_text())["objects"]
    assert made == {"clusters": [1, 2], "connectivity": 1, "scale": [1.0, 1.0], "count": 2}
    assert saved.objects.params == made
    np.testing.assert_array_equal(saved.labels, seg.labels)  # the rest as without objects
    assert npc.read_result(write_result(seg, folder.parent / "plain")).objects is None


def test_objects_of_another_shape_are_refused_before_anything_is_written(
    three_region_results, tmp_path
):
    seg = three_region_results["kmeans"]
    other = npc.segment(THREE_REGIONS[:20], "kmeans", 3, random_state=0).objects([1])
    with pytest.raises(ValueError, match=r"^objects: their labels' shape"):
        write_result(seg, tmp_path / "x", objects=other)
    assert not (tmp_path / "x").exists() and no_leftovers(tmp_path)


def test_a_result_folder_with_objects_is_ours_to_replace_and_keeps_user_files(
    objects_folder, small_results
):
    _, _, folder = objects_folder
    (folder / "notes.txt").write_text("mine")
    before = snapshot(folder)
    with pytest.raises(ValueError, match=r"it holds notes.txt"):
        write_result(small_results[0], folder, overwrite=True)
    assert snapshot(folder) == before
    (folder / "notes.txt").unlink()
    write_result(small_results[0], folder, overwrite=True)  # our files only: replaced whole
    assert npc.read_result(folder).objects is None
    assert not (folder / "objects.csv").exists()


OBJECTS_TAMPERINGS = [
    ("objects.csv", _remove("objects.tif"), "objects: objects.tif is missing beside it"),
    ("objects.tif", _remove("objects.csv"), "objects: objects.csv is missing beside it"),
    (
        "objects.tif",
        _tiff("objects.tif", np.zeros((3, 3), np.int32)),
        r"objects: expected whole numbers of the labels' shape",
    ),
    (
        "objects.tif",
        _tiff("objects.tif", np.zeros(THREE_REGIONS.shape[:2], np.float32)),
        r"objects: expected whole numbers",
    ),
    ("objects.tif", _write("objects.tif", b"not a tiff"), "not a readable TIFF"),
    ("objects.csv", _edit_table("objects.csv", lambda t: t.drop(columns="label")), "missing"),
    (
        "objects.csv",
        _edit_table("objects.csv", lambda t: t.assign(label=1)),
        "label: expected different whole numbers",
    ),
    ("objects.csv", _link_out("objects.csv"), "a symbolic link to .*, outside the folder"),
]


@pytest.mark.parametrize(
    "name, tamper, message", OBJECTS_TAMPERINGS, ids=case_ids(OBJECTS_TAMPERINGS)
)
def test_tampered_objects_are_a_value_error_naming_the_file(objects_folder, name, tamper, message):
    _, _, folder = objects_folder
    tamper(folder)
    expected = f"^folder: {re.escape(str(folder / name))}: {message}"
    with pytest.raises(ValueError, match=expected):
        npc.read_result(folder)
    with pytest.raises(ValueError, match=expected):  # the npe2 reader: the same error
        get_reader(str(folder / "params.json"))(str(folder / "params.json"))
