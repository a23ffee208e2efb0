"""The npe2 reader (_reader.py): a result folder's ``params.json`` opens in napari as the
layers it was saved from (tampered folders: test_export.py, which checks the reader too)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.export import read_result, write_result
from napari_pixel_clusters.gui.objects import objects_colormap


def test_a_result_folder_opens_in_napari_as_the_layers_it_came_from(tmp_path, make_napari_viewer):
    photo = data.astronaut()[::4, ::4]
    seg = npc.segment(photo, "kmeans", 4, color_space="lab", random_state=0)
    folder = write_result(seg, tmp_path / "result", source="astronaut.png", min_area=50)
    viewer = make_napari_viewer()
    # File > Open offers only this reader for params.json; viewer.open defaults to napari's
    viewer.open(str(folder / "params.json"), plugin="napari-pixel-clusters")
    assert [layer.name for layer in viewer.layers] == [  # as Pixel clusters adds them
        "result quantized",
        "result clusters",
        "result outlines",
    ]
    assert not viewer.layers["result quantized"].visible
    clusters = viewer.layers["result clusters"]
    np.testing.assert_array_equal(clusters.data, seg.labels)
    assert clusters.data.dtype == np.uint8  # the smallest dtype of its labels (as after Run)
    assert list(clusters.features["index"]) == [1, 2, 3, 4]
    assert list(clusters.features["color"]) == list(seg.table["color"])
    np.testing.assert_allclose(
        clusters.colormap.map(2)[:3],
        [int(seg.table["color"][1][i : i + 2], 16) / 255 for i in (1, 3, 5)],
        atol=1e-6,
    )
    tag = clusters.metadata["napari_pixel_clusters"]
    assert tag["params"]["color_space"] == "lab" and tag["model"]["method"] == "kmeans"
    np.testing.assert_array_equal(viewer.layers["result quantized"].data, seg.quantized())
    assert viewer.layers["result quantized"].rgb
    outlines = viewer.layers["result outlines"]
    contours = seg.contours(min_area=50)
    assert len(outlines.data) == len(contours)
    assert list(outlines.features["label"]) == [c.label for c in contours]
    # the reopened clusters work with the other widgets: its model labels a new image
    _, apply = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Apply model")
    assert apply._model_source.value is clusters


@pytest.mark.parametrize(
    "method, saved_as, output",
    [
        ("kmeans", "a_retired_method", "clusters"),  # a method since removed: clusters
        ("canny", "canny", "edges"),  # the method's declared output
    ],
)
def test_a_result_folder_opens_by_the_declared_output_or_as_clusters_if_unknown(
    tmp_path, make_napari_viewer, method, saved_as, output
):
    import json

    coins = data.coins()[::4, ::4]
    seg = npc.segment(coins, method, 3 if method == "kmeans" else None)
    folder = write_result(seg, tmp_path / "old")
    if saved_as != method:  # a folder written by a method this version does not have
        params = json.loads((folder / "params.json").read_text())
        params["params"]["method"] = saved_as
        (folder / "params.json").write_text(json.dumps(params))
        (folder / "model.json").unlink()  # its model could not be read: it has none
    viewer = make_napari_viewer()
    viewer.open(str(folder / "params.json"), plugin="napari-pixel-clusters")
    labels = viewer.layers[f"old {output}"]
    np.testing.assert_array_equal(labels.data, seg.labels)
    tag = labels.metadata["napari_pixel_clusters"]
    assert (tag["method"], tag["output"]) == (saved_as, output)
    assert list(labels.features["index"]) == list(seg.table["label"])


def test_a_lazy_result_folder_opens_as_a_lazy_pyramid(tmp_path, make_napari_viewer):
    import dask.array as da

    big = np.tile(data.coins(), (4, 4))  # 1212 x 1536: one extra level
    seg = npc.segment(da.from_array(big, chunks=256), "kmeans", 3, random_state=0)
    folder = write_result(seg, tmp_path / "big")
    viewer = make_napari_viewer()
    viewer.open(str(folder / "params.json"), plugin="napari-pixel-clusters")
    clusters = viewer.layers["big clusters"]
    assert clusters.multiscale and isinstance(clusters.data[0], da.Array)
    assert [level.shape for level in clusters.data] == [(1212, 1536), (606, 768)]
    np.testing.assert_array_equal(clusters.data[0].compute(), seg.labels.compute())
    assert "big outlines" not in [layer.name for layer in viewer.layers]


def test_a_folder_saved_with_only_the_clusters_layer_opens(tmp_path, make_napari_viewer):
    from napari_pixel_clusters._reader import get_reader
    from napari_pixel_clusters._writers import write_result_folder
    from napari_pixel_clusters.gui.layers import METADATA_KEY

    seg = npc.segment(data.camera()[::4, ::4], "kmeans", 3, random_state=0)
    attributes = {
        "name": "c",
        "features": seg.table.rename(columns={"label": "index"}),
        "metadata": {METADATA_KEY: {"params": seg.params, "score": seg.score}},
    }
    folder = write_result_folder(
        str(tmp_path / "only labels"), [(seg.labels, attributes, "labels")]
    )[0]
    saved = read_result(folder)
    assert saved.quantized is None and saved.outlines.empty
    layers = get_reader(folder + "/params.json")(folder + "/params.json")
    assert [kind for _, _, kind in layers] == ["labels"]
    np.testing.assert_array_equal(layers[0][0], seg.labels)


def test_a_folder_with_objects_opens_them_as_a_labels_layer_with_their_table(
    tmp_path, make_napari_viewer
):
    seg = npc.segment(data.coins()[::4, ::4], "kmeans", 3, random_state=0)
    objects = seg.objects([3], connectivity=1)
    folder = write_result(seg, tmp_path / "coins", objects=objects)
    viewer = make_napari_viewer()
    viewer.open(str(folder / "params.json"), plugin="napari-pixel-clusters")
    assert [layer.name for layer in viewer.layers][-1] == "coins objects"  # on top
    layer = viewer.layers["coins objects"]
    np.testing.assert_array_equal(layer.data, objects.labels)
    assert layer.data.dtype == (np.uint8 if objects.labels.max() <= 255 else np.uint16)
    assert list(layer.features["index"]) == list(objects.table["label"])  # label -> row
    np.testing.assert_allclose(layer.features["area"], objects.table["area"])
    tag = layer.metadata["napari_pixel_clusters"]
    assert tag["output"] == "objects" and tag["objects"]["clusters"] == [3]
    np.testing.assert_allclose(  # the colors Make objects gives
        layer.colormap.map(1)[:3], objects_colormap().map(1)[:3]
    )
    # hovering an object shows its measurements (napari maps labels to rows by index)
    row = objects.table.iloc[len(objects.table) // 2]
    position = tuple(np.argwhere(objects.labels == row["label"])[0])
    shown = layer._get_properties(position)
    assert "cluster_name: cluster 3" in shown and f"pixels: {row['pixels']}" in shown


def test_saved_probabilities_open_as_image_layers_with_the_clusters_on_a_slider(
    tmp_path, make_napari_viewer
):
    photo = data.astronaut()[::8, ::8]
    seg = npc.segment(photo, "gmm", 3, random_state=0)
    folder = write_result(
        seg, tmp_path / "gmm", probabilities=True, uncertainty="entropy", min_area=10
    )
    viewer = make_napari_viewer()
    viewer.open(str(folder / "params.json"), plugin="napari-pixel-clusters")
    assert [layer.name for layer in viewer.layers] == [  # as Pixel clusters adds them
        "gmm quantized",
        "gmm probabilities",
        "gmm uncertainty",
        "gmm clusters",
        "gmm outlines",
    ]
    probabilities, uncertainty = (
        viewer.layers["gmm probabilities"],
        viewer.layers["gmm uncertainty"],
    )
    assert probabilities.data.shape == (3, *photo.shape[:2])  # cluster first: a slider
    assert probabilities.axis_labels[0] == "cluster" == viewer.dims.axis_labels[0]
    np.testing.assert_allclose(probabilities.data, np.moveaxis(seg.probabilities(), -1, 0))
    np.testing.assert_allclose(uncertainty.data, seg.uncertainty("entropy"))
    for layer, colormap in ((probabilities, "magma"), (uncertainty, "inferno")):
        assert not layer.visible and layer.colormap.name == colormap
        assert tuple(layer.contrast_limits) == (0.0, 1.0)
    tags = [layer.metadata["napari_pixel_clusters"] for layer in viewer.layers]
    assert len({tag["run"] for tag in tags}) == 1  # one run, as the Cluster table sees it
    assert tags[1]["output"] == "probabilities" and tags[1]["labels"] == [1, 2, 3]
    assert tags[2]["output"] == "uncertainty" and tags[2]["uncertainty"] == "entropy"


def test_lazily_saved_probabilities_open_lazily(tmp_path, make_napari_viewer):
    import dask.array as da

    big = np.tile(data.coins(), (4, 4))  # 1212 x 1536: one extra level
    seg = npc.segment(da.from_array(big, chunks=256), "gmm", 2, random_state=0)
    folder = write_result(seg, tmp_path / "big", probabilities=True)
    viewer = make_napari_viewer()
    viewer.open(str(folder / "params.json"), plugin="napari-pixel-clusters")
    probabilities = viewer.layers["big probabilities"]
    assert probabilities.multiscale and isinstance(probabilities.data[0], da.Array)
    assert [level.shape for level in probabilities.data] == [(2, 1212, 1536), (2, 606, 768)]
    window = (slice(None), slice(300, 400), slice(500, 600))
    np.testing.assert_allclose(
        probabilities.data[0][window].compute(),
        np.moveaxis(seg.probabilities()[window[1:]].compute(), -1, 0),
    )
    uncertainty = viewer.layers["big uncertainty"]
    assert [level.shape for level in uncertainty.data] == [(1212, 1536), (606, 768)]
