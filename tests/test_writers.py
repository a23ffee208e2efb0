"""The npe2 writers (_writers.py): a clusters layer's table as CSV with its JSON sidecar,
and a whole result as a folder (the folder rules shared with ``write_result`` are in
test_export.py; saving from a real viewer is at the end)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage import data

import napari_pixel_clusters as npc
from conftest import PLUGIN, clusters_layer_data, no_leftovers, press_run


def test_the_table_sidecar_never_replaces_a_json_we_did_not_write(small_results, tmp_path):
    from napari_pixel_clusters._writers import write_table

    (tmp_path / "table.json").write_text('{"my": "settings"}')
    _, attributes, _ = clusters_layer_data(small_results[0])[0]
    with pytest.raises(
        ValueError,
        match=f"^path: {tmp_path / 'table.json'} exists already "
        "and was not written by napari-pixel-clusters",
    ):
        write_table(str(tmp_path / "table.csv"), small_results[0].labels, attributes)
    assert (tmp_path / "table.json").read_text() == '{"my": "settings"}'
    assert not (tmp_path / "table.csv").exists()


def test_the_table_and_its_own_sidecar_are_replaced(small_results, tmp_path):
    from napari_pixel_clusters._writers import write_table

    for seg in small_results:  # the second save replaces the first (napari asked about the CSV)
        _, attributes, _ = clusters_layer_data(seg)[0]
        written = write_table(str(tmp_path / "table.csv"), seg.labels, attributes)
    assert written == [str(tmp_path / "table.csv"), str(tmp_path / "table.json")]
    assert list(pd.read_csv(tmp_path / "table.csv")["label"]) == [1, 2]
    sidecar = json.loads((tmp_path / "table.json").read_text())
    assert sidecar["format"] == "napari-pixel-clusters table"
    assert sidecar["params"]["n_clusters_requested"] == 2
    legacy = {key: sidecar[key] for key in ("source", "layer", "written", "params", "score")}
    (tmp_path / "table.json").write_text(json.dumps(legacy))  # written before the marker
    write_table(
        str(tmp_path / "table.csv"),
        small_results[0].labels,
        clusters_layer_data(small_results[0])[0][1],
    )
    assert json.loads((tmp_path / "table.json").read_text())["params"]["n_clusters_requested"] == 3
    assert no_leftovers(tmp_path)


def test_the_napari_folder_writer_saves_the_names_and_colors_typed_in_the_table(
    small_results, tmp_path
):
    """The saved model.json once kept the run's names ("cluster 1") whatever the table said."""
    from napari_pixel_clusters._writers import write_result_folder

    layer_data = clusters_layer_data(small_results[0])
    features = layer_data[0][1]["features"].copy()
    features["name"] = ["sky", "suit", "skin"]
    features.loc[1, "color"] = "#ff00ff"
    layer_data[0][1]["features"] = features
    folder = write_result_folder(str(tmp_path / "named"), layer_data)[0]
    model = npc.load_model(Path(folder) / "model.json")
    assert [c["name"] for c in model.clusters] == ["sky", "suit", "skin"]
    assert model.clusters[1]["color"] == "#ff00ff"
    relabelled = model.predict(data.astronaut()[::16, ::16])
    np.testing.assert_array_equal(relabelled.labels, small_results[0].labels)


def test_a_result_folder_holds_uint8_layer_labels_as_int32_like_write_result(
    small_results, tmp_path
):
    """Clusters layers keep their labels in uint8 or uint16 (napari draws them faster); the
    folder holds them in int32 as ``write_result`` does, and the reader opens them small."""
    import tifffile

    from napari_pixel_clusters._reader import get_reader
    from napari_pixel_clusters._writers import write_result_folder

    seg = small_results[0]
    for dtype in (np.uint8, np.uint16):
        ((labels, attributes, kind),) = clusters_layer_data(seg)
        folder = write_result_folder(
            str(tmp_path / f"in {np.dtype(dtype).name}"),
            [(labels.astype(dtype), attributes, kind)],
        )[0]
        written = tifffile.imread(Path(folder) / "labels.tif")
        assert written.dtype == np.int32
        np.testing.assert_array_equal(written, seg.labels)
        reopened = get_reader(folder + "/params.json")(folder + "/params.json")
        ((data_, _, _),) = [layer for layer in reopened if layer[2] == "labels"]
        assert data_.dtype == np.uint8
        np.testing.assert_array_equal(data_, seg.labels)
    other = np.array([[1, 2], [2, 1]], np.uint8)  # a labels layer that is not ours: as it is
    folder = write_result_folder(str(tmp_path / "other"), [(other, {"name": "x"}, "labels")])[0]
    assert tifffile.imread(Path(folder) / "labels.tif").dtype == np.uint8


# --- saved from a real viewer (File > Save Selected Layers) ----------------------------------
def test_plugin_writers_save_the_table_and_a_result_folder(viewer_with_widget, qtbot, tmp_path):
    viewer, widget = viewer_with_widget(data.astronaut()[::4, ::4].copy(), name="a")
    widget._outputs["outlines"].value = True
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    clusters = viewer.layers["a k-means#1 clusters"]
    viewer.layers.selection = {clusters}
    viewer.layers.save(str(tmp_path / "table.csv"), selected=True, plugin=PLUGIN)
    table = pd.read_csv(tmp_path / "table.csv")
    assert list(table["label"]) == [1, 2, 3] and next(iter(table["name"])) == "cluster 1"
    import json

    sidecar = json.loads((tmp_path / "table.json").read_text())
    assert sidecar["source"] == "a" and sidecar["params"]["method"] == "kmeans"

    viewer.layers.selection = {
        clusters,
        viewer.layers["a k-means#1 quantized"],
        viewer.layers["a k-means#1 outlines"],
    }
    viewer.layers.save(str(tmp_path / "result"), selected=True, plugin=PLUGIN)
    saved = npc.read_result(tmp_path / "result")
    np.testing.assert_array_equal(saved.labels, clusters.data)
    np.testing.assert_array_equal(saved.quantized, viewer.layers["a k-means#1 quantized"].data)
    assert saved.outlines["index"].nunique() == len(viewer.layers["a k-means#1 outlines"].data)
    assert saved.params["params"]["method"] == "kmeans"
    source = viewer.layers["a"].data
    np.testing.assert_array_equal(saved.model.predict(source).labels, clusters.data)


def test_save_selected_layers_writes_an_objects_layer_table_as_csv(
    make_napari_viewer, qtbot, tmp_path
):
    """File > Save Selected Layers on an objects layer (Cluster table's Make objects):
    napari offers our table writer for .csv, and the CSV is ``seg.objects(...).table``."""
    from napari.plugins._npe2 import file_extensions_string_for_layers

    viewer = make_napari_viewer()
    image = data.astronaut()[::4, ::4].copy()
    viewer.add_image(image, name="a", scale=(2.0, 2.0))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    _, table = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    table.select_rows([1])
    table.make_objects()
    qtbot.waitUntil(lambda: table._objects_worker is None, timeout=20_000)
    objects = viewer.layers["a k-means#1 clusters objects"]
    viewer.layers.selection = {objects}
    offered, _ = file_extensions_string_for_layers([objects])
    assert "cluster or objects table (*.csv)" in offered
    viewer.layers.save(str(tmp_path / "objects.csv"), selected=True)  # no plugin named
    seg = npc.segment(image, "kmeans", 3, random_state=0)
    expected = seg.objects([2], scale=2.0)
    np.testing.assert_array_equal(objects.data, expected.labels)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "objects.csv"), expected.table, check_dtype=False
    )
    sidecar = json.loads((tmp_path / "objects.json").read_text())
    assert sidecar["objects"]["clusters"] == [2] and sidecar["objects"]["connectivity"] == "full"
    assert sidecar["params"]["method"] == "kmeans"
