"""Result layers: arrangement (quantized hidden, outlines on top), outline and edge colors,
names with method and run, random colors for one result, and the visible selection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from napari.layers import Image, Labels, Shapes
from napari.utils.colormaps import DirectLabelColormap
from skimage import data

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.methods import METHODS
from napari_pixel_clusters.gui.layers import (
    CLUSTERS_OPACITY,
    CONTRAST_CANDIDATES,
    LayerRequest,
    Placement,
    RunNumbers,
    chosen_clusters_layer,
    contrast_color,
    method_label,
    random_colormap,
    recolor_clusters,
    result_layers,
    style_outlines,
)

PLUGIN = "napari-pixel-clusters"
BRIGHT = {name: CONTRAST_CANDIDATES[name] for name in ("yellow", "cyan", "magenta")}


def request(outputs=("clusters", "quantized", "outlines"), run=2, **options):
    return LayerRequest(
        source="astronaut",
        source_layer="astronaut",
        placement=options.pop("placement", Placement()),
        run=run,
        outputs=set(outputs),
        source_kwargs={"rgb": True},
        **options,
    )


@pytest.fixture(scope="module")
def photo_result():
    return npc.segment(data.astronaut()[::4, ::4], "kmeans", 4, random_state=0)


def test_quantized_below_and_hidden_clusters_then_outlines_on_top(photo_result):
    specs = result_layers(photo_result, request())
    names = [spec.kwargs["name"] for spec in specs]
    assert names == [
        "astronaut k-means#2 quantized",
        "astronaut k-means#2 clusters",
        "astronaut k-means#2 outlines",
    ]
    quantized, clusters, outlines = (spec.layer for spec in specs)
    assert isinstance(quantized, Image) and not quantized.visible
    assert isinstance(clusters, Labels) and clusters.opacity == CLUSTERS_OPACITY
    assert isinstance(outlines, Shapes) and len(outlines.data) > 3  # built in the worker
    tags = [layer.metadata["napari_pixel_clusters"] for layer in (quantized, clusters, outlines)]
    assert {(tag["run"], tag["run_number"], tag["source"]) for tag in tags} == {
        ("k-means#2", 2, "astronaut")
    }
    only_quantized = result_layers(photo_result, request(outputs=["quantized"]))
    assert only_quantized[0].layer.visible  # nothing would show otherwise


def test_outlines_get_one_color_that_contrasts_with_the_clusters(photo_result):
    outlines = result_layers(photo_result, request(outputs=["outlines"]))[0].layer
    colors = np.unique(outlines.edge_color, axis=0)
    assert len(colors) == 1 and tuple(colors[0][:3]) in CONTRAST_CANDIDATES.values()
    nearest = np.linalg.norm(photo_result.colors - colors[0][:3], axis=1).min()
    assert nearest > 0.4  # far from every cluster's color


@pytest.mark.parametrize(
    "colors, weights, not_expected",
    [
        (np.full((3, 3), 0.5), None, {"white", "black"}),  # grey: a bright hue
        (np.array([[1.0, 1.0, 0.1], [0.2, 0.2, 0.2]]), [0.9, 0.1], {"yellow", "black"}),
        (np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]), [0.5, 0.5], {"yellow", "cyan"}),
    ],
)
def test_contrast_color_avoids_the_colors_of_large_clusters(colors, weights, not_expected):
    chosen = tuple(contrast_color(colors, weights)[:3])
    assert chosen not in {CONTRAST_CANDIDATES[name] for name in not_expected}


def test_style_outlines_modes_and_width(photo_result):
    clusters, outlines = (
        spec.layer
        for spec in result_layers(photo_result, request(outputs=["clusters", "outlines"]))
    )
    labels = np.asarray(outlines.features["label"])
    features = clusters.features
    style_outlines(outlines, features, "cluster", width=3.5)
    np.testing.assert_allclose(
        outlines.edge_color[:, :3], photo_result.colors[labels - 1], atol=1 / 255
    )
    assert np.all(np.asarray(outlines.edge_width) == 3.5)
    style_outlines(outlines, features, "random")
    np.testing.assert_allclose(outlines.edge_color, random_colormap().map(labels))
    assert np.all(np.asarray(outlines.edge_width) == 3.5)  # width kept when not given
    style_outlines(outlines, features, "contrast")
    assert len(np.unique(outlines.edge_color, axis=0)) == 1
    assert outlines.metadata["napari_pixel_clusters"]["outline_mode"] == "contrast"
    with pytest.raises(ValueError, match=r"^mode"):
        style_outlines(outlines, features, "rainbow")
    with pytest.raises(ValueError, match=r"^width"):
        style_outlines(outlines, features, "cluster", width=0)


def test_edges_are_one_bright_color_fully_opaque():
    coins = data.coins()[::2, ::2]
    seg = npc.segment(coins, "canny", sigma=2.0, low_threshold=10, high_threshold=30)
    (edges,) = result_layers(seg, request(outputs=["clusters"]))
    layer = edges.layer
    assert layer.name == "astronaut Canny#2 edges" and layer.opacity == 1.0
    assert isinstance(layer.colormap, DirectLabelColormap)
    color = tuple(layer.colormap.map(1)[:3])
    assert color in BRIGHT.values()  # grey coins: a bright hue
    hex_color = "#{:02x}{:02x}{:02x}".format(*(int(255 * c) for c in color))
    assert layer.features["color"][0] == hex_color
    np.testing.assert_array_equal(layer.colormap.map(0), [0, 0, 0, 0])


def test_layer_names_take_the_method_title_from_its_declaration(photo_result, monkeypatch):
    assert [method_label(name) for name in ("kmeans", "gmm", "ward")] == [
        "k-means",
        "Gaussian mixture",
        "Ward",
    ]
    assert method_label("canny", "edges") == "Canny"
    renamed = dataclasses.replace(METHODS["kmeans"], title="Lloyd (fast)")
    monkeypatch.setitem(METHODS, "kmeans", renamed)
    specs = result_layers(photo_result, request(outputs=["clusters"], run=7), build=False)
    assert specs[0].kwargs["name"] == "astronaut Lloyd#7 clusters"


# ---------------------------------------------------------------- posteriors
def test_probabilities_put_the_cluster_axis_in_front_of_the_placement_axes():
    """A plane of a 4-D image (two leading axes of length 1 in front of the plane's
    labels): the cluster axis goes in front of all, with scale 1 and no shift."""
    plane = data.coins()[::8, ::8][np.newaxis]
    seg = npc.segment(plane, "gmm", 2, random_state=0)
    placed = Placement(scale=(5, 3, 2, 2), translate=(10, 6, 1, 1), leading=1)
    specs = result_layers(
        seg,
        request(outputs=["clusters", "probabilities", "uncertainty"], placement=placed),
        build=False,
    )
    probabilities, uncertainty, clusters = specs
    assert probabilities.kwargs["name"] == "astronaut Gaussian mixture#2 probabilities"
    assert probabilities.data.shape == (2, 1, 1, *plane.shape[1:])
    np.testing.assert_allclose(
        probabilities.data[:, 0], np.moveaxis(seg.probabilities(), -1, 0), atol=1e-7
    )
    assert probabilities.kwargs["scale"] == (1.0, 5, 3, 2, 2)
    assert probabilities.kwargs["translate"] == (0.0, 10, 6, 1, 1)
    assert uncertainty.data.shape == clusters.data.shape == (1, 1, *plane.shape[1:])
    assert uncertainty.kwargs["scale"] == clusters.kwargs["scale"] == (5, 3, 2, 2)
    np.testing.assert_allclose(uncertainty.data[0], seg.uncertainty(), atol=1e-7)
    # k-means gives none: asking adds nothing
    kmeans = npc.segment(plane, "kmeans", 2, random_state=0)
    asked = request(outputs=["clusters", "probabilities", "uncertainty"])
    assert [spec.kind for spec in result_layers(kmeans, asked, build=False)] == ["labels"]


def test_probabilities_of_a_pyramid_are_the_model_on_each_level():
    """A lazy result of a multiscale image: a probabilities pyramid, each level the model
    applied to that level's pixels (dask arrays: napari computes what it shows)."""
    import dask.array as da

    photo = data.astronaut()[::2, ::2]
    levels = [da.from_array(photo[:: 2**i, :: 2**i], chunks=(64, 64, 3)) for i in range(3)]
    seg = npc.segment(levels, "gmm", 3, random_state=0)
    specs = result_layers(
        seg, request(outputs=["probabilities", "uncertainty"], levels=levels), build=False
    )
    probabilities, uncertainty = specs
    assert [level.shape for level in probabilities.data] == [
        (3, 256, 256),
        (3, 128, 128),
        (3, 64, 64),
    ]
    assert all(isinstance(level, da.Array) for level in probabilities.data + uncertainty.data)
    on_level = seg.model.predict(levels[2])
    np.testing.assert_allclose(
        probabilities.data[2].compute(),
        np.moveaxis(on_level.probabilities().compute(), -1, 0),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        uncertainty.data[1].compute(), seg.model.predict(levels[1]).uncertainty().compute()
    )
    assert probabilities.layer is None and uncertainty.data[0].shape == (256, 256)
    assert probabilities.kwargs["visible"]  # no clusters asked: shown


def test_run_numbers_count_per_image_and_method_above_results_in_the_viewer():
    numbers = RunNumbers()
    earlier = Labels(
        np.zeros((4, 4), int),
        metadata={
            "napari_pixel_clusters": {"source_layer": "a", "method": "kmeans", "run_number": 4}
        },
    )
    layers = [earlier]
    assert numbers.next(layers, "a", "kmeans") == 5
    assert numbers.next(layers, "a", "gmm") == 1
    assert numbers.next(layers, "b", "kmeans") == 1
    assert numbers.next([], "a", "kmeans") == 6  # never given twice, even once removed


def test_random_colors_act_on_the_chosen_result_only(photo_result):
    first = result_layers(photo_result, request(outputs=["clusters", "outlines"], run=1))
    second = result_layers(photo_result, request(outputs=["clusters", "outlines"], run=2))
    layers = [spec.layer for spec in first + second]
    clusters_1, outlines_1, clusters_2, _outlines_2 = layers
    assert chosen_clusters_layer(layers) is clusters_2  # nothing selected: the newest
    assert chosen_clusters_layer(layers, outlines_1) is clusters_1  # the selected run's
    before = outlines_1.edge_color.copy()
    recolor_clusters(clusters_1, True)
    assert not isinstance(clusters_1.colormap, DirectLabelColormap)
    assert isinstance(clusters_2.colormap, DirectLabelColormap)
    assert clusters_1.metadata["napari_pixel_clusters"]["random_colors"]
    np.testing.assert_allclose(outlines_1.edge_color, before)
    recolor_clusters(clusters_1, False)
    np.testing.assert_allclose(
        clusters_1.colormap.map(1)[:3], photo_result.colors[0], atol=1 / 255
    )


# ---------------------------------------------------------------- on the canvas
def canvas_labels(viewer, labels: np.ndarray, shot: np.ndarray) -> np.ndarray:
    """The label under each pixel of a canvas screenshot (-1 off the image)."""
    height, width = shot.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    center, zoom = np.asarray(camera.center[-2:]), camera.zoom
    canvas_size = np.asarray(viewer.canvas.size, float)  # (height, width)
    scale = canvas_size / np.array([height, width])  # screenshot vs logical pixels
    world_r = center[0] + ((rows + 0.5) * scale[0] - canvas_size[0] / 2) / zoom
    world_c = center[1] + ((cols + 0.5) * scale[1] - canvas_size[1] / 2) / zoom
    r, c = np.floor(world_r).astype(int), np.floor(world_c).astype(int)
    inside = (r >= 0) & (r < labels.shape[0]) & (c >= 0) & (c < labels.shape[1])
    out = np.full((height, width), -1)
    out[inside] = labels[r[inside], c[inside]]
    return out


def test_a_selected_cluster_stands_out_on_the_canvas(make_napari_viewer, qtbot):
    from conftest import run_pixel_clusters

    viewer = make_napari_viewer(show=True)  # screenshots of a shown canvas
    photo = data.astronaut()[::4, ::4].copy()
    viewer.add_image(photo, name="astronaut")
    run_pixel_clusters(viewer, qtbot, n_clusters=4)
    clusters = viewer.layers["astronaut k-means#1 clusters"]
    assert not viewer.layers["astronaut k-means#1 quantized"].visible
    viewer.reset_view()
    qtbot.wait(100)
    before = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    under = canvas_labels(viewer, clusters.data, before)
    # pixels well inside one cluster (the edges of regions blur with the neighbours')
    from scipy import ndimage

    selected = int(np.bincount(clusters.data.ravel())[1:].argmax()) + 1
    solid = {label: ndimage.binary_erosion(under == label, iterations=2) for label in (1, 2, 3, 4)}
    others = np.any([solid[label] for label in solid if label != selected], axis=0)
    assert solid[selected].sum() > 200 and others.sum() > 200

    clusters.selected_label = selected
    clusters.show_selected_label = True
    qtbot.wait(100)  # the canvas follows the layer's events
    after = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    change = np.abs(after - before).sum(axis=-1)
    assert change[solid[selected]].mean() < 3  # the selected cluster is drawn as before
    assert change[others].mean() > 15  # the others now show the photo underneath
    clusters.visible = False  # the others look exactly like the photo alone
    qtbot.wait(100)
    photo_only = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    assert np.abs(after - photo_only).sum(axis=-1)[others].mean() < 3


# --- labels in the smallest dtype (napari draws uint8/uint16 labels without mapping them) ---
def test_clusters_layer_holds_its_labels_in_the_smallest_dtype(photo_result):
    clusters = result_layers(photo_result, request(outputs=["clusters"]))[0]
    assert clusters.layer.data.dtype == np.uint8
    np.testing.assert_array_equal(clusters.layer.data, photo_result.labels)
    assert photo_result.labels.dtype == np.int32  # the result itself is left as it was
    many = npc.segment(data.astronaut()[::2, ::2], "slic", n_segments=400)
    assert many.n_clusters > 255
    layer = result_layers(many, request(outputs=["clusters"]))[0].layer
    assert layer.data.dtype == np.uint16
    np.testing.assert_array_equal(layer.data, many.labels)


def test_narrowed_labels_keep_values_that_do_not_fit_and_lazy_labels_as_they_are():
    import dask.array as da

    from napari_pixel_clusters.gui.layers import labels_dtype, narrowed_labels

    for values, dtype in (
        ([0, 255], np.uint8),
        ([0, 256], np.uint16),
        ([0, 65_535], np.uint16),
        ([0, 70_000], np.int32),
        ([-1, 3], np.int32),
    ):
        labels = np.array(values, dtype=np.int32)
        out = narrowed_labels(labels)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, labels)
    small = np.array([1, 2], np.uint8)
    assert narrowed_labels(small) is small
    lazy = da.from_array(np.array([1, 2], np.int32))
    assert narrowed_labels(lazy) is lazy
    assert labels_dtype(255) == np.uint8 and labels_dtype(256) == np.uint16
    assert labels_dtype(70_000) == np.int32
