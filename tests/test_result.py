"""Segmentation: table, palette, colors, provenance and outline polygons."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage import data, draw

import napari_pixel_clusters as npc
from conftest import collect_steps
from napari_pixel_clusters.core.result import compact_labels


def test_table_describes_each_cluster(photo):
    seg = npc.segment(photo, "kmeans", 4, random_state=0)
    table = seg.table
    assert list(table.columns) == [
        "label",
        "pixels",
        "fraction",
        "mean_R",
        "mean_G",
        "mean_B",
        "color",
    ]
    assert table["pixels"].sum() == photo.shape[0] * photo.shape[1]
    assert table["fraction"].sum() == pytest.approx(1.0)
    first = table.iloc[0]
    expected = photo[seg.labels == 1].mean(axis=0)
    assert first["color"] == "#{:02x}{:02x}{:02x}".format(*tuple(round(v) for v in expected))


def test_grey_table_and_colors_use_intensity():
    seg = npc.segment(data.coins(), "kmeans", 3, random_state=0)
    assert "mean_intensity" in seg.table.columns
    assert seg.colors.shape == (3, 3)
    assert np.all(seg.colors[:, 0] == seg.colors[:, 1])
    darkest = np.argmin(seg.palette[:, 0])
    assert seg.table["color"][darkest] < seg.table["color"][np.argmax(seg.palette[:, 0])]


def test_params_hold_everything_used_and_are_json(photo):
    seg = npc.segment(photo, "gmm", 3, color_space="lab", covariance_type="diag")
    params = json.loads(json.dumps(seg.params))
    for key in (
        "method",
        "n_clusters_requested",
        "color_space",
        "spatial_weight",
        "standardize",
        "random_state",
        "covariance_type",
        "n_init",
        "max_iter",
        "tol",
        "reg_covar",
        "compression",
        "features",
        "versions",
        "image",
    ):
        assert key in params, key
    assert params["color_space"] == "lab" and params["covariance_type"] == "diag"
    assert params["versions"]["scikit-learn"]
    assert set(seg.score) >= {"bic", "aic", "log_likelihood"}


def test_empty_components_are_dropped_and_labels_stay_contiguous():
    labels = np.array([[0, 2, 2], [5, 5, 0]])
    compact, kept = compact_labels(labels)
    np.testing.assert_array_equal(compact, [[0, 1, 1], [2, 2, 0]])
    np.testing.assert_array_equal(kept, [2, 5])


def test_contours_outline_each_region():
    labels = np.zeros((60, 80), np.int32)
    labels[draw.disk((20, 20), 10)] = 1
    labels[draw.rectangle((35, 40), (54, 69))] = 2
    labels[50:52, 5:7] = 1  # 4 pixels: below min_area
    seg = npc.segment(labels.astype(np.uint8), "kmeans", 3, random_state=0)
    contours = seg.contours(min_area=10)
    assert len(contours) == 3  # background, disk, rectangle
    disk = next(c for c in contours if c.area < 400)
    rows, cols = disk.vertices[:, 0], disk.vertices[:, 1]
    assert rows.min() == pytest.approx(10, abs=1) and rows.max() == pytest.approx(30, abs=1)
    assert cols.min() == pytest.approx(10, abs=1) and cols.max() == pytest.approx(30, abs=1)
    assert seg.labels[20, 20] == disk.label
    assert len(seg.contours(min_area=0)) == 4  # now with the small square


def test_contours_of_a_stack_carry_the_plane_index():
    stack = np.zeros((2, 30, 30), np.uint8)
    stack[1, 5:15, 5:15] = 9
    contours = npc.segment(stack, "kmeans", 2, random_state=0).contours(min_area=5)
    square = next(c for c in contours if c.area == 100)
    assert np.all(square.vertices[:, 0] == 1)
    assert square.vertices.shape[1] == 3


def test_segment_steps_report_named_stages_and_return_the_result(photo):
    steps = npc.segment_steps(photo, "gmm", 3, random_state=0)
    stages, result = collect_steps(steps)
    names = [stage for stage, _ in stages]
    assert names[0] == "features" and names[-1] == "predict"
    assert names.count("fit") == result.score["n_iter"]
    fractions = [fraction for _, fraction in stages]
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
    np.testing.assert_array_equal(result.labels, npc.segment(photo, "gmm", 3).labels)


def test_segment_steps_validate_before_the_first_step():
    steps = npc.segment_steps(np.zeros(5), "kmeans", 2)
    with pytest.raises(ValueError, match=r"^image:"):
        next(steps)


def test_closing_the_steps_abandons_the_run(photo):
    steps = npc.segment_steps(photo, "gmm", 3, random_state=0)
    assert next(steps) == ("features", 0.0)
    next(steps)
    steps.close()
    with pytest.raises(StopIteration):
        next(steps)


def test_outline_of_a_region_with_holes_is_its_outer_boundary():
    from napari_pixel_clusters.core.contours import region_contours

    labels = np.ones((14, 14), np.int32)
    labels[2, 2:12] = 2
    for column in range(2, 12, 2):
        labels[2:12, column] = 2
    outer = next(c for c in region_contours(labels, 1) if c.label == 1)
    assert outer.vertices[:, 0].min() <= 0 and outer.vertices[:, 0].max() >= 13
    assert outer.vertices[:, 1].min() <= 0 and outer.vertices[:, 1].max() >= 13


# ------------------------------------------------- writers never destroy what is not theirs
@pytest.fixture(scope="module")
def small():
    """Two results of a 32 x 32 RGB image (3 and 2 clusters)."""
    photo = data.astronaut()[::16, ::16]
    return (
        npc.segment(photo, "kmeans", 3, random_state=0),
        npc.segment(photo, "kmeans", 2, random_state=0),
    )


def _layer_data(seg):
    from napari_pixel_clusters.gui.layers import METADATA_KEY

    attributes = {
        "name": "c",
        "features": seg.table.rename(columns={"label": "index"}),
        "metadata": {
            METADATA_KEY: {"params": seg.params, "score": seg.score, "model": seg.model.to_dict()}
        },
    }
    return [(seg.labels, attributes, "labels")]


def _write_with_api(seg, folder):
    return npc.write_result(seg, folder, source="photo")


def _write_with_napari(seg, folder):
    from napari_pixel_clusters._writers import write_result_folder

    return write_result_folder(str(folder), _layer_data(seg))[0]


WRITERS = [_write_with_api, _write_with_napari]


def _snapshot(folder):
    return {
        path.relative_to(folder): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _no_leftovers(parent):
    return [path.name for path in parent.iterdir() if path.name.startswith(".")] == []


@pytest.mark.parametrize("write", WRITERS)
def test_a_dotted_folder_name_is_used_as_given(small, tmp_path, write):
    """Saving to mydata.v2 once replaced an existing folder mydata and its files."""
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "labels.tif").write_bytes(b"my own labels")
    before = _snapshot(mine)
    written = write(small[0], tmp_path / "mydata.v2")
    assert str(written) == str(tmp_path / "mydata.v2")
    assert _snapshot(mine) == before
    np.testing.assert_array_equal(npc.read_result(tmp_path / "mydata.v2").labels, small[0].labels)
    assert _no_leftovers(tmp_path)


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
def test_an_existing_non_empty_folder_is_refused_and_left_alone(small, tmp_path, write, message):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=message.format(re.escape(str(folder)))):
        write(small[0], folder)
    assert _snapshot(folder) == {Path("notes.txt"): b"mine"}
    assert _no_leftovers(tmp_path)


@pytest.mark.parametrize("write", WRITERS)
def test_an_existing_result_folder_is_not_replaced_without_asking(small, tmp_path, write):
    folder = write(small[0], tmp_path / "x")
    before = _snapshot(Path(folder))
    with pytest.raises(ValueError, match="exists already"):
        write(small[1], folder)
    assert _snapshot(Path(folder)) == before


@pytest.mark.parametrize("write", WRITERS)
def test_an_existing_empty_folder_is_used(small, tmp_path, write):
    (tmp_path / "empty").mkdir()
    write(small[0], tmp_path / "empty")
    np.testing.assert_array_equal(npc.read_result(tmp_path / "empty").labels, small[0].labels)
    assert _no_leftovers(tmp_path)


@pytest.mark.parametrize("write", WRITERS)
def test_a_file_in_the_way_is_never_replaced(small, tmp_path, write):
    (tmp_path / "x").write_text("my file")
    with pytest.raises(ValueError, match=r"^(out|path): .* exists already"):
        write(small[0], tmp_path / "x")
    with pytest.raises(ValueError, match=r"^out: .* exists already and is not a folder"):
        npc.write_result(small[0], tmp_path / "x", overwrite=True)
    assert (tmp_path / "x").read_text() == "my file"


def test_overwrite_replaces_a_result_folder_we_wrote(small, tmp_path):
    folder = npc.write_result(small[0], tmp_path / "x")
    npc.write_result(small[1], folder, overwrite=True)
    saved = npc.read_result(folder)
    np.testing.assert_array_equal(saved.labels, small[1].labels)
    assert len(saved.table) == 2
    assert _no_leftovers(tmp_path)


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
def test_overwrite_never_replaces_a_folder_we_did_not_write(small, tmp_path, content, reason):
    folder = tmp_path / "x"
    folder.mkdir()
    for name, data_bytes in content.items():
        (folder / name).write_bytes(data_bytes)
    with pytest.raises(
        ValueError,
        match=f"^out: {folder} is not a result folder written by "
        f"napari-pixel-clusters \\({reason}",
    ):
        npc.write_result(small[0], folder, overwrite=True)
    assert _snapshot(folder) == {Path(name): value for name, value in content.items()}


def test_overwrite_keeps_a_result_folder_the_user_added_files_to(small, tmp_path):
    folder = npc.write_result(small[0], tmp_path / "x")
    (folder / "my notes.txt").write_text("mine")
    before = _snapshot(folder)
    with pytest.raises(ValueError, match=r"it holds my notes.txt"):
        npc.write_result(small[1], folder, overwrite=True)
    assert _snapshot(folder) == before


def test_a_failed_overwrite_keeps_the_old_result_whole(small, tmp_path, monkeypatch):
    from napari_pixel_clusters.core import export

    folder = npc.write_result(small[0], tmp_path / "x")
    before = _snapshot(folder)

    def broken(path, array, info):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(export, "write_tiff", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        npc.write_result(small[1], folder, overwrite=True)
    assert _snapshot(folder) == before
    assert _no_leftovers(tmp_path)


def test_an_unwritable_place_is_a_value_error(small, tmp_path):
    (tmp_path / "a file").write_text("mine")
    with pytest.raises(ValueError, match=r"^out: cannot write .*a file/x: "):
        npc.write_result(small[0], tmp_path / "a file" / "x")
    assert (tmp_path / "a file").read_text() == "mine"


def test_the_table_sidecar_never_replaces_a_json_we_did_not_write(small, tmp_path):
    from napari_pixel_clusters._writers import write_table

    (tmp_path / "table.json").write_text('{"my": "settings"}')
    _, attributes, _ = _layer_data(small[0])[0]
    with pytest.raises(
        ValueError,
        match=f"^path: {tmp_path / 'table.json'} exists already "
        "and was not written by napari-pixel-clusters",
    ):
        write_table(str(tmp_path / "table.csv"), small[0].labels, attributes)
    assert (tmp_path / "table.json").read_text() == '{"my": "settings"}'
    assert not (tmp_path / "table.csv").exists()


def test_the_table_and_its_own_sidecar_are_replaced(small, tmp_path):
    from napari_pixel_clusters._writers import write_table

    for seg in small:  # the second save replaces the first (napari asked about the CSV)
        _, attributes, _ = _layer_data(seg)[0]
        written = write_table(str(tmp_path / "table.csv"), seg.labels, attributes)
    assert written == [str(tmp_path / "table.csv"), str(tmp_path / "table.json")]
    assert list(pd.read_csv(tmp_path / "table.csv")["label"]) == [1, 2]
    sidecar = json.loads((tmp_path / "table.json").read_text())
    assert sidecar["format"] == "napari-pixel-clusters table"
    assert sidecar["params"]["n_clusters_requested"] == 2
    legacy = {key: sidecar[key] for key in ("source", "layer", "written", "params", "score")}
    (tmp_path / "table.json").write_text(json.dumps(legacy))  # written before the marker
    write_table(str(tmp_path / "table.csv"), small[0].labels, _layer_data(small[0])[0][1])
    assert json.loads((tmp_path / "table.json").read_text())["params"]["n_clusters_requested"] == 3
    assert _no_leftovers(tmp_path)


def test_save_model_does_not_overwrite_without_asking(small, tmp_path):
    path = npc.save_model(small[0], tmp_path / "model.json", overwrite=True)  # new: fine
    before = path.read_bytes()
    with pytest.raises(
        ValueError,
        match=f"^path: {path} exists already; choose another file "
        r"or pass overwrite=True\.$",
    ):
        npc.save_model(small[1], path)
    assert path.read_bytes() == before
    npc.save_model(small[1], path, overwrite=True)
    assert npc.load_model(path).n_components == 2
    assert _no_leftovers(tmp_path)


@pytest.mark.parametrize("content", [b"my notes", b'{"format": "something else"}', b""])
def test_save_model_never_overwrites_another_file(small, tmp_path, content):
    path = tmp_path / "notes.json"
    path.write_bytes(content)
    with pytest.raises(
        ValueError,
        match=f"^path: {path} is not a napari-pixel-clusters model "
        "file, so it is not replaced even with "
        "overwrite=True",
    ):
        npc.save_model(small[0], path, overwrite=True)
    assert path.read_bytes() == content
    assert _no_leftovers(tmp_path)


def test_the_napari_folder_writer_saves_the_names_and_colors_typed_in_the_table(small, tmp_path):
    """The saved model.json once kept the run's names ("cluster 1") whatever the table said."""
    from napari_pixel_clusters._writers import write_result_folder

    layer_data = _layer_data(small[0])
    features = layer_data[0][1]["features"].copy()
    features["name"] = ["sky", "suit", "skin"]
    features.loc[1, "color"] = "#ff00ff"
    layer_data[0][1]["features"] = features
    folder = write_result_folder(str(tmp_path / "named"), layer_data)[0]
    model = npc.load_model(Path(folder) / "model.json")
    assert [c["name"] for c in model.clusters] == ["sky", "suit", "skin"]
    assert model.clusters[1]["color"] == "#ff00ff"
    relabelled = model.predict(data.astronaut()[::16, ::16])
    np.testing.assert_array_equal(relabelled.labels, small[0].labels)
