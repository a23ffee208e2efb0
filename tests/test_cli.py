"""The command line and result folders, end to end on files in a temporary folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage import data, io

import napari_pixel_clusters as npc
from napari_pixel_clusters.cli import main
from napari_pixel_clusters.core.export import read_result, write_result


@pytest.fixture
def images(tmp_path):
    io.imsave(tmp_path / "astronaut.png", data.astronaut()[::4, ::4], check_contrast=False)
    io.imsave(tmp_path / "coins.png", data.coins()[::2, ::2], check_contrast=False)
    (tmp_path / "broken.png").write_text("not an image")
    return tmp_path


def test_segment_writes_a_folder_per_good_image_and_reports_the_bad_one(images, capsys):
    out = images / "out"
    code = main(["segment", str(images / "astronaut.png"), str(images / "broken.png"),
                 str(images / "coins.png"), "-k", "4", "--random-state", "0", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["astronaut", "coins"]  # nothing partial
    assert "[2/3]" in printed.err and "broken.png: error: cannot read it" in printed.err
    assert len(printed.err.strip().splitlines()) == 1
    result = read_result(out / "astronaut")
    expected = npc.segment(io.imread(images / "astronaut.png"), "kmeans", 4, random_state=0)
    np.testing.assert_array_equal(result.labels, expected.labels)
    np.testing.assert_array_equal(result.quantized, expected.quantized())
    pd.testing.assert_frame_equal(result.table, expected.table, check_dtype=False)
    assert result.params["source"].endswith("astronaut.png")
    assert result.params["params"]["method"] == "kmeans"
    np.testing.assert_array_equal(result.model.predict(io.imread(images / "astronaut.png"))
                                  .labels, expected.labels)


def test_outlines_csv_opens_as_napari_shapes(images, tmp_path):
    from napari_builtins.io import csv_to_layer_data

    seg = npc.segment(data.coins()[::2, ::2], "kmeans", 3, random_state=0)
    folder = write_result(seg, tmp_path / "result", source="coins", min_area=30)
    shapes, _, layer_type = csv_to_layer_data(str(folder / "outlines.csv"))
    assert layer_type == "shapes"
    contours = seg.contours(min_area=30)
    assert len(shapes) == len(contours)
    np.testing.assert_allclose(shapes[0], contours[0].vertices)
    with pytest.raises(ValueError, match="^out: .* exists already"):
        write_result(seg, folder)


def test_method_options_come_from_the_registry(images, capsys):
    out = images / "out"
    code = main(["segment", str(images / "coins.png"), "--method", "gmm", "-k", "3",
                 "--covariance-type", "diag", "--standardize", "--out", str(out)])
    assert code == 0
    params = read_result(out / "coins").params["params"]
    assert params["covariance_type"] == "diag" and params["standardize"] is True


def test_bad_options_give_one_line_and_no_folder(images, capsys):
    out = images / "out"
    assert main(["segment", str(images / "coins.png"), "-k", "0", "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().endswith("n_clusters: must be at least 1, got 0.")
    assert not (out / "coins").exists()
    assert main(["segment", str(images / "coins.png"), "-k", "3", "--sigma", "2",
                 "--out", str(out)]) == 1
    assert "sigma: not a parameter of method 'kmeans'" in capsys.readouterr().err


def test_apply_a_saved_model_to_other_images(images, capsys):
    out = images / "out"
    main(["segment", str(images / "astronaut.png"), "-k", "3", "--out", str(out)])
    code = main(["apply", "--model", str(out / "astronaut" / "model.json"),
                 str(images / "astronaut.png"), "--out", str(images / "applied")])
    assert code == 0
    np.testing.assert_array_equal(read_result(images / "applied" / "astronaut").labels,
                                  read_result(out / "astronaut").labels)
    (images / "fake.json").write_text("{}")
    assert main(["apply", "--model", str(images / "fake.json"), str(images / "coins.png"),
                 "--out", str(images / "x")]) == 1
    assert "model file: not a napari-pixel-clusters model" in capsys.readouterr().err


def test_sweep_prints_the_table_and_suggestion(images, capsys):
    assert main(["sweep", str(images / "coins.png"), "--k", "2..4"]) == 0
    printed = capsys.readouterr().out
    assert "silhouette" in printed and "suggested k:" in printed


def test_zarr_stores_are_segmented_lazily_into_zarr_results(tmp_path, capsys):
    import dask.array as da
    import zarr

    photo = data.astronaut()[::2, ::2]
    group = zarr.open_group(str(tmp_path / "slide.zarr"), mode="w")  # an OME-Zarr-like pyramid
    for level, step in (("0", 1), ("1", 2)):
        array = group.create_array(level, shape=photo[::step, ::step].shape, chunks=(64, 64, 3),
                                   dtype=photo.dtype)
        array[:] = photo[::step, ::step]
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "slide.zarr"), "-k", "4", "--random-state", "0",
                 "--out", str(out)]) == 0
    saved = read_result(out / "slide")
    expected = npc.segment(photo, "kmeans", 4, random_state=0)
    assert sorted(p.name for p in (out / "slide").iterdir()) == [
        "labels.zarr", "model.json", "params.json", "quantized.zarr", "table.csv"]
    assert isinstance(saved.labels, da.Array) and saved.labels.chunksize == (64, 64)
    np.testing.assert_array_equal(saved.labels.compute(), expected.labels)
    np.testing.assert_array_equal(saved.quantized.compute(), expected.quantized())
    assert zarr.open_array(str(out / "slide" / "labels.zarr")).attrs[
        "napari_pixel_clusters"]["params"]["image"]["lazy"]
    assert list(saved.table["pixels"]) == list(expected.table["pixels"])
    assert saved.outlines.empty
    assert main(["apply", "--model", str(out / "slide" / "model.json"),
                 str(tmp_path / "slide.zarr"), "--out", str(tmp_path / "applied")]) == 0
    applied = read_result(tmp_path / "applied" / "slide")
    np.testing.assert_array_equal(applied.labels.compute(), expected.labels)


def test_a_result_folder_opens_in_napari_as_the_layers_it_came_from(images, make_napari_viewer):
    photo = data.astronaut()[::4, ::4]
    seg = npc.segment(photo, "kmeans", 4, color_space="lab", random_state=0)
    folder = write_result(seg, images / "result", source="astronaut.png", min_area=50)
    viewer = make_napari_viewer()
    # File > Open offers only this reader for params.json; viewer.open defaults to napari's
    viewer.open(str(folder / "params.json"), plugin="napari-pixel-clusters")
    clusters = viewer.layers["result clusters"]
    np.testing.assert_array_equal(clusters.data, seg.labels)
    assert list(clusters.features["index"]) == [1, 2, 3, 4]
    assert list(clusters.features["color"]) == list(seg.table["color"])
    np.testing.assert_allclose(clusters.colormap.map(2)[:3],
                               [int(seg.table["color"][1][i:i + 2], 16) / 255
                                for i in (1, 3, 5)], atol=1e-6)
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
    attributes = {"name": "c", "features": seg.table.rename(columns={"label": "index"}),
                  "metadata": {METADATA_KEY: {"params": seg.params, "score": seg.score}}}
    folder = write_result_folder(str(tmp_path / "only labels"),
                                 [(seg.labels, attributes, "labels")])[0]
    saved = read_result(folder)
    assert saved.quantized is None and saved.outlines.empty
    layers = get_reader(folder + "/params.json")(folder + "/params.json")
    assert [kind for _, _, kind in layers] == ["labels"]
    np.testing.assert_array_equal(layers[0][0], seg.labels)
