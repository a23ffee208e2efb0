"""Drive the Pixel clusters widget (gui/widget.py) in a real napari viewer, as a person
would: runs and their layers, cancel, stacks, large images, the advanced section, method
summary and large-image note from the registry, the shared settings both ways, and the
fixes of the issue 12 review (Ward's busy bar, Canny's defaults, whole-run time)."""

from __future__ import annotations

import dataclasses
import time

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from napari.layers import Image, Labels, Shapes
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtGui import QValidator
from skimage import data, feature

import napari_pixel_clusters as npc
from conftest import SMALL_PHOTO, fluorescence_plane, offered, press_run, result_layers_of
from napari_pixel_clusters.core import METHODS
from napari_pixel_clusters.core.methods.ward import auto_downscale
from napari_pixel_clusters.gui import widget as widget_module
from napari_pixel_clusters.gui.layers import CONTRAST_CANDIDATES, METADATA_KEY, default_min_area
from napari_pixel_clusters.gui.state import shared_settings

PLUGIN, WIDGET = "napari-pixel-clusters", "Pixel clusters"


def test_kmeans_run_adds_the_three_result_layers(viewer_with_widget, qtbot):
    photo = data.astronaut()[::2, ::2].copy()
    viewer, widget = viewer_with_widget(photo, name="astronaut")
    widget._method.value = "kmeans"
    widget._n_clusters.value = 5
    widget._feature_widgets["color_space"].value = "lab"
    widget._outputs["outlines"].value = True
    press_run(widget, qtbot)

    assert [layer.name for layer in viewer.layers] == [
        "astronaut",
        "astronaut k-means#1 quantized",
        "astronaut k-means#1 clusters",
        "astronaut k-means#1 outlines",
    ]  # outlines on top of the clusters
    expected = npc.segment(photo, "kmeans", 5, color_space="lab", random_state=0)
    clusters, quantized, outlines = (
        viewer.layers[f"astronaut k-means#1 {n}"] for n in ("clusters", "quantized", "outlines")
    )
    assert isinstance(clusters, Labels)
    np.testing.assert_array_equal(clusters.data, expected.labels)
    np.testing.assert_array_equal(viewer.layers["astronaut"].data, photo)

    assert list(clusters.features["index"]) == [1, 2, 3, 4, 5]
    assert list(clusters.features["name"]) == [f"cluster {i}" for i in range(1, 6)]
    assert list(clusters.features["pixels"]) == list(expected.table["pixels"])
    assert isinstance(clusters.colormap, DirectLabelColormap)
    for label, rgb in enumerate(expected.colors, start=1):
        np.testing.assert_allclose(clusters.colormap.map(label)[:3], rgb, atol=1 / 255)
    tag = clusters.metadata["napari_pixel_clusters"]
    assert tag["params"]["color_space"] == "lab" and tag["source"] == "astronaut"
    assert tag["score"]["inertia"] == pytest.approx(expected.score["inertia"])

    assert isinstance(quantized, Image) and quantized.rgb
    np.testing.assert_array_equal(quantized.data, expected.quantized())

    assert isinstance(outlines, Shapes)
    contours = expected.contours(min_area=default_min_area(expected.labels))
    assert len(outlines.data) == len(contours) > 10
    assert list(outlines.features["label"]) == [c.label for c in contours]
    assert len(np.unique(outlines.edge_color, axis=0)) == 1  # one contrasting color
    assert tuple(outlines.edge_color[0][:3]) in CONTRAST_CANDIDATES.values()
    assert not quantized.visible and viewer.layers.selection.active is clusters
    assert widget._run_button.text == "Run" and widget._method.enabled


@pytest.mark.parametrize(
    "method, options",
    [
        ("gmm", {"covariance_type": "diag"}),
        ("ward", {}),
    ],
)
def test_other_clustering_methods_from_the_widget(viewer_with_widget, qtbot, method, options):
    coins = data.coins()[::2, ::2].copy()
    viewer, widget = viewer_with_widget(coins, name="coins")
    widget._method.value = method
    widget._n_clusters.value = 3
    for name, value in options.items():
        widget._method_params[method][name].value = value
    assert not offered(widget._feature_widgets["color_space"])  # grey image
    press_run(widget, qtbot)
    expected = npc.segment(coins, method, 3, random_state=0, **options)
    title = {"gmm": "Gaussian mixture", "ward": "Ward"}[method]
    np.testing.assert_array_equal(viewer.layers[f"coins {title}#1 clusters"].data, expected.labels)
    quantized = viewer.layers[f"coins {title}#1 quantized"]
    assert (
        not quantized.rgb and quantized.contrast_limits == viewer.layers["coins"].contrast_limits
    )


def test_canny_adds_an_editable_edges_layer(viewer_with_widget, qtbot):
    coins = data.coins()
    viewer, widget = viewer_with_widget(coins, name="coins")
    widget._method.value = "canny"
    assert not offered(widget._n_clusters)
    assert not offered(widget._outputs["quantized"])
    assert offered(widget._method_params["canny"]["sigma"])
    widget._method_params["canny"]["sigma"].value = 2.0
    press_run(widget, qtbot)
    assert [layer.name for layer in viewer.layers] == ["coins", "coins Canny#1 edges"]
    edges = viewer.layers["coins Canny#1 edges"]
    from skimage.feature import canny

    largest = float(coins.max())  # 'auto' thresholds: 10% and 20% of the largest value
    np.testing.assert_array_equal(
        edges.data,
        canny(coins, sigma=2.0, low_threshold=0.1 * largest, high_threshold=0.2 * largest),
    )
    assert edges.editable and edges.features["name"][0] == "edge"


def test_cancel_mid_run_adds_nothing(viewer_with_widget, qtbot):
    big = np.random.default_rng(0).random((400, 400, 3))
    viewer, widget = viewer_with_widget(big, name="noise", rgb=True)
    widget._method.value = "gmm"
    widget._n_clusters.value = 8
    widget._method_params["gmm"]["max_iter"].value = 10_000
    widget._method_params["gmm"]["tol"].value = 0
    fits = []
    widget.run()
    worker = widget._worker
    worker.yielded.connect(lambda step: fits.append(step) if step[0] == "fit" else None)
    qtbot.waitUntil(lambda: len(fits) >= 2, timeout=60_000)
    assert widget._run_button.text == "Cancel" and not widget._method.enabled
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert [layer.name for layer in viewer.layers] == ["noise"]
    assert widget._status.value.startswith("cancelled")
    assert widget._run_button.text == "Run" and widget._method.enabled


def test_bad_choices_are_notifications_and_add_nothing(
    viewer_with_widget, qtbot, error_notifications
):
    viewer, widget = viewer_with_widget()
    widget.run()
    assert error_notifications and "no image layer" in error_notifications[-1]

    three_values = np.repeat(np.array([[0, 100, 200]], np.uint8), 40, axis=0)
    viewer.add_image(three_values, name="three values")
    widget._n_clusters.value = 5
    press_run(widget, qtbot)
    assert (
        error_notifications[-1].startswith("n_clusters:")
        and "at most 3" in error_notifications[-1]
    )

    widget._method.value = "gmm"
    widget._n_clusters.value = 3
    widget._method_params["gmm"]["reg_covar"].value = 0
    press_run(widget, qtbot)  # fails inside the worker: a collapsed cluster
    assert "collapsed" in error_notifications[-1]
    assert [layer.name for layer in viewer.layers] == ["three values"]
    np.testing.assert_array_equal(viewer.layers[0].data, three_values)

    reg_covar = widget._method_params["gmm"]["reg_covar"].native  # a spin box: no text
    assert reg_covar.validate("lots", 0)[0] == QValidator.State.Invalid


def test_rerun_numbers_or_replaces_only_its_own_layers(viewer_with_widget, qtbot):
    viewer, widget = viewer_with_widget(data.coins()[::3, ::3].copy(), name="coins")
    viewer.add_points([[5, 5]], name="my annotations")
    viewer.layers.selection.active = viewer.layers["coins"]
    widget._outputs["quantized"].value = False
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    press_run(widget, qtbot)
    names = [layer.name for layer in viewer.layers]
    assert names == [
        "coins",
        "my annotations",
        "coins k-means#1 clusters",
        "coins k-means#2 clusters",
    ]
    widget._replace.value = True
    widget._n_clusters.value = 4
    press_run(widget, qtbot)
    names = [layer.name for layer in viewer.layers]
    assert names == ["coins", "my annotations", "coins k-means#3 clusters"]
    assert viewer.layers["coins k-means#3 clusters"].data.max() == 4


def test_random_color_toggle_recolors_only_the_chosen_result(viewer_with_widget, qtbot):
    viewer, widget = viewer_with_widget(data.astronaut()[::4, ::4].copy(), name="a")
    widget._outputs["outlines"].value = True
    press_run(widget, qtbot)
    viewer.layers.selection.active = viewer.layers["a"]
    press_run(widget, qtbot)
    first, newest = viewer.layers["a k-means#1 clusters"], viewer.layers["a k-means#2 clusters"]
    outlines = viewer.layers["a k-means#2 outlines"]
    mean_color, outline_colors = newest.colormap.map(1), outlines.edge_color.copy()
    widget._random_colors.value = True  # no result selected: the newest one
    assert not isinstance(newest.colormap, DirectLabelColormap)
    assert isinstance(first.colormap, DirectLabelColormap)  # earlier results keep theirs
    np.testing.assert_allclose(outlines.edge_color, outline_colors)  # outlines: own style
    widget._random_colors.value = False
    np.testing.assert_allclose(newest.colormap.map(1), mean_color)
    viewer.layers.selection.active = first  # a selected result is the chosen one
    widget._random_colors.value = True
    assert not isinstance(first.colormap, DirectLabelColormap)
    assert isinstance(newest.colormap, DirectLabelColormap)


def test_stack_current_plane_or_whole_stack(viewer_with_widget, qtbot):
    stack = np.stack(
        [data.coins()[:100, :100], data.camera()[:100, :100], data.moon()[:100, :100]]
    )
    viewer, widget = viewer_with_widget(stack, name="stack", scale=(2.0, 0.5, 0.5))
    viewer.dims.set_current_step(0, 1)
    widget._outputs["quantized"].value = False
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    plane = viewer.layers["stack (plane 1) k-means#1 clusters"]
    np.testing.assert_array_equal(plane.data[0], npc.segment(stack[1], "kmeans", 3).labels)
    np.testing.assert_allclose(plane.scale, (2.0, 0.5, 0.5))
    np.testing.assert_allclose(plane.translate, (2.0, 0, 0))  # sits on plane 1, only there
    assert plane.extent.world[:, 0].tolist() == [2.0, 2.0]  # not drawn on other planes
    viewer.layers.selection.active = viewer.layers["stack"]
    widget._stack_mode.value = "whole stack"
    press_run(widget, qtbot)
    whole = viewer.layers["stack k-means#2 clusters"]
    np.testing.assert_array_equal(whole.data, npc.segment(stack, "kmeans", 3).labels)
    np.testing.assert_allclose(whole.scale, (2.0, 0.5, 0.5))


def test_current_plane_of_a_4d_image_sits_at_its_time_and_plane(viewer_with_widget, qtbot):
    planes = [data.coins()[:80, :80], data.camera()[:80, :80], data.moon()[:80, :80]]
    movie = np.stack([np.stack(planes), np.stack(planes[::-1])])  # (t, z, y, x)
    viewer, widget = viewer_with_widget(movie, name="movie")
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 2)
    widget._n_clusters.value = 3
    widget._outputs["outlines"].value = True
    widget._min_area.value = 10
    press_run(widget, qtbot)
    clusters = viewer.layers["movie (plane 1, 2) k-means#1 clusters"]
    assert clusters.data.shape == (1, 1, 80, 80)
    np.testing.assert_array_equal(
        clusters.data[0, 0], npc.segment(movie[1, 2], "kmeans", 3).labels
    )
    assert clusters.extent.world[:, :2].tolist() == [[1.0, 2.0], [1.0, 2.0]]  # t=1, z=2 only
    assert viewer.layers["movie (plane 1, 2) k-means#1 quantized"].data.shape == (1, 1, 80, 80)
    outlines = viewer.layers["movie (plane 1, 2) k-means#1 outlines"]
    assert outlines.ndim == 4 and all(np.all(v[:, :2] == 0) for v in outlines.data)
    assert outlines.extent.world[:, :2].tolist() == [[1.0, 2.0], [1.0, 2.0]]


def test_saved_layers_round_trip_with_edits(viewer_with_widget, qtbot, tmp_path):
    import tifffile
    from napari.layers import Shapes as ShapesLayer

    viewer, widget = viewer_with_widget(data.coins()[::2, ::2].copy(), name="coins")
    widget._n_clusters.value = 3
    widget._outputs["outlines"].value = True
    press_run(widget, qtbot)
    clusters = viewer.layers["coins k-means#1 clusters"]
    clusters.paint((10, 10), 2, refresh=True)  # a brush stroke with label 2
    clusters.fill((100, 100), 3)
    edited = clusters.data.copy()
    assert edited[10, 10] == 2

    labels_path = tmp_path / "clusters.tif"
    viewer.layers.selection = {clusters}
    viewer.layers.save(str(labels_path), selected=True, plugin="napari")
    np.testing.assert_array_equal(tifffile.imread(labels_path), edited)

    outlines = viewer.layers["coins k-means#1 outlines"]
    shapes_path = tmp_path / "outlines.csv"
    viewer.layers.selection = {outlines}
    viewer.layers.save(str(shapes_path), selected=True, plugin="napari")
    table = pd.read_csv(shapes_path)
    assert table["index"].nunique() == len(outlines.data)
    reopened = viewer.open(str(shapes_path), plugin="napari")[0]
    assert isinstance(reopened, ShapesLayer) and len(reopened.data) == len(outlines.data)
    np.testing.assert_allclose(reopened.data[0], outlines.data[0])


def test_viewer_stays_responsive_during_a_run(viewer_with_widget, qtbot):
    from qtpy.QtCore import QTimer

    big = np.ascontiguousarray(np.tile(data.astronaut(), (2, 2, 1)))
    viewer, widget = viewer_with_widget(big, name="big")
    widget._method.value = "gmm"
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    press_run(widget, qtbot)
    timer.stop()
    assert len(ticks) >= 5  # the event loop kept running while the worker fitted
    assert "big Gaussian mixture#1 clusters" in [layer.name for layer in viewer.layers]


def test_closing_the_widget_during_a_run_does_not_crash(viewer_with_widget, qtbot):
    viewer, widget = viewer_with_widget(data.astronaut(), name="a")
    widget._method.value = "gmm"
    worker = widget.run()
    viewer.window.remove_dock_widget("all")
    qtbot.waitUntil(lambda: not worker.is_running, timeout=60_000)
    assert [layer.name for layer in viewer.layers] == ["a"]


def test_screenshot_of_the_results_is_not_blank(viewer_with_widget, qtbot, tmp_path):
    viewer, widget = viewer_with_widget(data.astronaut(), name="astronaut")
    widget._outputs["outlines"].value = True
    press_run(widget, qtbot)
    shot = viewer.screenshot(str(tmp_path / "viewer.png"), canvas_only=False)
    assert shot.shape[0] > 300 and shot[..., :3].std() > 20
    assert (tmp_path / "viewer.png").stat().st_size > 10_000


def test_closing_the_viewer_during_a_run_does_not_crash(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(data.astronaut(), name="a")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "gmm"
    worker = widget.run()
    layers = viewer.layers
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=60_000)
    qtbot.wait(50)
    assert len(layers) == 0  # closing cleared the viewer, and nothing was added after


def test_replace_keeps_results_of_images_with_similar_names(viewer_with_widget, qtbot):
    viewer, widget = viewer_with_widget(data.coins()[::3, ::3].copy(), name="cells 2")
    viewer.add_image(data.coins()[::3, ::3].copy(), name="cells")
    widget._outputs["quantized"].value = False
    widget._n_clusters.value = 3
    widget._image.value = viewer.layers["cells 2"]
    press_run(widget, qtbot)
    widget._image.value = viewer.layers["cells"]
    widget._replace.value = True
    press_run(widget, qtbot)
    press_run(widget, qtbot)
    names = [layer.name for layer in viewer.layers]
    assert names == ["cells 2", "cells", "cells 2 k-means#1 clusters", "cells k-means#2 clusters"]


def test_multiscale_dask_image_gives_lazy_multiscale_results(viewer_with_widget, qtbot, tmp_path):
    import dask.array as da

    photo = data.astronaut()
    pyramid = [
        da.from_array(photo, chunks=(128, 128, 3)),
        da.from_array(photo[::2, ::2], chunks=(128, 128, 3)),
        da.from_array(photo[::4, ::4], chunks=(64, 64, 3)),
    ]
    viewer, widget = viewer_with_widget(pyramid, name="slide", rgb=True, multiscale=True)
    widget._n_clusters.value = 4
    widget._outputs["outlines"].value = True
    press_run(widget, qtbot)
    clusters = viewer.layers["slide k-means#1 clusters"]
    quantized = viewer.layers["slide k-means#1 quantized"]
    assert "slide k-means#1 outlines" not in [layer.name for layer in viewer.layers]
    assert clusters.multiscale and quantized.multiscale
    assert all(isinstance(level, da.Array) for level in clusters.data)
    assert [level.shape for level in clusters.data] == [(512, 512), (256, 256), (128, 128)]
    expected = npc.segment(photo, "kmeans", 4, random_state=0).labels
    np.testing.assert_array_equal(clusters.data[0].compute(), expected)
    np.testing.assert_array_equal(clusters.data[2].compute(), expected[::4, ::4])
    assert clusters.metadata["napari_pixel_clusters"]["params"]["image"]["lazy"]
    # saved as a result folder: the full-size level, as zarr stores (napari's own
    # np.asarray of a multiscale layer would give its smallest level)
    viewer.layers.selection = {clusters, quantized}
    viewer.layers.save(str(tmp_path / "slide result"), selected=True, plugin=PLUGIN)
    saved = npc.read_result(tmp_path / "slide result")
    assert isinstance(saved.labels, da.Array) and saved.labels.shape == (512, 512)
    np.testing.assert_array_equal(saved.labels.compute(), expected)
    assert saved.quantized.shape == (512, 512, 3)


def test_cancel_during_the_histogram_pass_adds_nothing(viewer_with_widget, qtbot):
    import dask.array as da

    big = da.from_array(np.tile(data.astronaut(), (4, 4, 1)), chunks=(128, 128, 3))
    viewer, widget = viewer_with_widget(big, name="big", rgb=True)
    chunks = []
    widget.run()
    widget._worker.yielded.connect(lambda s: chunks.append(s) if s[0] == "histogram" else None)
    qtbot.waitUntil(lambda: len(chunks) >= 2, timeout=60_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert [layer.name for layer in viewer.layers] == ["big"]
    assert len(chunks) < 256  # stopped long before the 256 chunks were all read


@pytest.fixture
def no_dask_cache():
    """napari caches dask chunks; without the cache every read is seen."""
    from napari.utils import _dask_utils, resize_dask_cache

    before = _dask_utils._DASK_CACHE.cache.available_bytes
    resize_dask_cache(nbytes=0)
    yield
    resize_dask_cache(nbytes=before)


def recorded_pyramid(image, chunk, levels=3):
    """A dask pyramid of ``image`` that records which chunks of which level are read."""
    import dask.array as da

    reads = []

    def read(block, level, block_info=None):
        reads.append((level, tuple(block_info[0]["chunk-location"])))
        return block

    pyramid = []
    for level in range(levels):
        step = 2**level
        source = da.from_array(image[::step, ::step], chunks=chunk)
        pyramid.append(source.map_blocks(read, level, dtype=image.dtype))
    return pyramid, reads


@pytest.mark.parametrize("method", ["kmeans", "canny", "ward"])
def test_large_images_give_lazy_pyramids_read_chunk_by_chunk(
    viewer_with_widget, qtbot, method, no_dask_cache
):
    coins = np.tile(data.coins(), (8, 8))  # 2424 x 3072: napari shows a coarser level
    pyramid, reads = recorded_pyramid(coins, 256, levels=4)
    viewer, widget = viewer_with_widget(pyramid, name="slide", multiscale=True)
    widget._method.value = method
    assert offered(widget._large_image_note)
    note = {"kmeans": "chunk by chunk", "canny": "joined", "ward": "downscaled level"}
    assert note[method] in widget._large_image_note.value
    assert not offered(widget._outputs["outlines"])  # tracing would need every pixel
    widget._n_clusters.value = 3
    if method == "ward":
        widget._method_params["ward"]["downscale"].value = 0.03125
    shown = ("layers",)  # marks the first result layer's insertion: what follows is shown
    viewer.layers.events.inserting.connect(lambda event: reads.append(shown))
    widget.run()
    marker = len(reads)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    run = {"kmeans": "k-means#1 clusters", "canny": "Canny#1 edges", "ward": "Ward#1 clusters"}
    layer = viewer.layers[f"slide {run[method]}"]
    assert layer.multiscale and [level.shape for level in layer.data] == [
        (2424, 3072),
        (1212, 1536),
        (606, 768),
        (303, 384),
    ]
    assert all(isinstance(level, da.Array) for level in layer.data)
    qtbot.wait(500)
    run_reads = reads[marker : reads.index(shown)]
    shown_reads = [read for read in reads[reads.index(shown) + 1 :] if read != shown]
    # the run reads every chunk of level 0, and level 3 only: napari's thumbnail of the
    # result layers, built in the worker, comes from the coarsest level (and Ward shrinks
    # level 3, 8x smaller, to its size); levels 1 and 2 are never computed whole
    assert {level for level, _ in run_reads} == {0, 3}
    assert len({r for r in run_reads if r[0] == 0}) == 10 * 12
    # showing the results reads only the coarse levels napari draws: none is computed whole
    assert shown_reads and {level for level, _ in shown_reads} <= {2, 3}
    assert layer.data_level == 2
    if method == "canny":
        expected = npc.segment(coins, "canny").labels
        assert widget._status.value.startswith(
            f"Canny edges: {int(expected.sum()):,} edge pixels in "
        )
    elif method == "kmeans":
        expected = npc.segment(coins, "kmeans", 3, random_state=0).labels
    else:
        levels = [da.from_array(coins[:: 2**i, :: 2**i], chunks=256) for i in range(4)]
        expected = npc.segment(levels, "ward", 3, downscale=0.03125).labels.compute()
        assert "level 32x smaller" in widget._status.value
        assert (
            "level 3 of the pyramid"
            in layer.metadata["napari_pixel_clusters"]["params"]["lazy_level"]
        )
    np.testing.assert_array_equal(layer.data[0].compute(), expected)


def made_up_method(**changes):
    """A method registered the documented way (a ``Method`` in ``METHODS``) under a name
    no code knows: what the widgets show of it must come from its declaration."""
    import dataclasses

    return dataclasses.replace(npc.METHODS["kmeans"], **changes)


@pytest.fixture
def registered(monkeypatch):
    """Register ``method`` in the registry for the test (removed afterwards)."""

    def register(method):
        monkeypatch.setitem(npc.METHODS, method.name, method)
        return method

    return register


EDGE_FINDER = {
    "name": "made_up_edges",
    "title": "Made-up edges",
    "output": "edges",
    "needs_n_clusters": False,
    "large_image_note": "Large image: a made-up note of the made-up edge finder.",
}


@pytest.mark.parametrize("name", [*npc.METHODS, "made_up_edges"])
def test_large_image_note_and_outputs_are_the_methods_own(viewer_with_widget, registered, name):
    """The note under the method for a dask image is the method's ``large_image_note``; an
    edge finder offers edges and no quantized image or outlines, whatever its name."""
    if name == "made_up_edges":
        registered(made_up_method(**EDGE_FINDER))
    method = npc.METHODS[name]
    image = da.from_array(data.coins()[::4, ::4], chunks=32)
    viewer, widget = viewer_with_widget(image, name="lazy coins")
    widget._method.value = name
    assert offered(widget._large_image_note)
    assert widget._large_image_note.value == method.large_image_note
    edges = method.output == "edges"
    assert widget._outputs["clusters"].text == ("edges" if edges else "clusters")
    assert offered(widget._outputs["quantized"]) is not edges
    assert not offered(widget._outputs["outlines"])  # large: never outlines
    assert offered(widget._n_clusters) is method.needs_n_clusters
    viewer.add_image(data.coins()[::4, ::4], name="coins in memory")
    assert not offered(widget._large_image_note)  # in memory: no note
    assert offered(widget._outputs["outlines"]) is not edges


def test_advanced_settings_are_folded_as_the_registry_declares(pixel_clusters):
    _, widget = pixel_clusters
    for name, method in METHODS.items():
        widget._method.value = name
        shown = {
            p.name
            for p in method.params
            if p.in_widget and offered(widget._method_params[name][p.name])
        }
        assert shown == {p.name for p in method.params if p.in_widget and not p.advanced}
        assert not offered(widget._random_state)  # folded too
    widget._method.value = "gmm"
    assert {"n_init", "max_iter", "tol", "reg_covar"}.isdisjoint(
        {n for n, w in widget._method_params["gmm"].items() if offered(w)}
    )
    widget._advanced_toggle.native.click()  # unfold
    assert all(offered(w) for w in widget._method_params["gmm"].values())
    assert (
        offered(widget._random_state)
        and "\N{BLACK DOWN-POINTING SMALL TRIANGLE}" in widget._advanced_toggle.text
    )
    widget._method.value = "kmeans"  # stays unfolded for another method
    assert all(offered(w) for w in widget._method_params["kmeans"].values())
    widget._advanced_toggle.native.click()  # fold again
    assert not any(offered(w) for w in widget._method_params["kmeans"].values())


def test_method_summary_shows_under_the_method(pixel_clusters):
    _, widget = pixel_clusters
    texts = set()
    for name, method in METHODS.items():
        widget._method.value = name
        assert widget._summary.value == method.summary and offered(widget._summary)
        texts.add(widget._summary.value)
    assert len(texts) == len(METHODS)


def test_ward_runs_with_auto_downscale_without_random_state_and_a_busy_bar(
    make_napari_viewer, qtbot
):
    """Regression (issue 12): Ward showed a random state that does nothing and a progress
    bar stuck at 10% while scikit-learn merged."""
    viewer = make_napari_viewer()
    coins = data.coins()[::2, ::2].copy()  # 38,000 px: 'auto' clusters them all
    viewer.add_image(coins, name="coins")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "ward"
    widget._advanced_toggle.native.click()
    assert not offered(widget._random_state)
    assert not offered(widget._advanced_toggle)  # nothing else is advanced for Ward
    widget._n_clusters.value = 3
    seen = []
    worker = widget.run()
    worker.yielded.connect(
        lambda step: seen.append((tuple(step), widget._progress.max, widget._status.value))
    )
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    merging = [entry for entry in seen if entry[0][0] == "fit" and 0.1 < entry[0][1] < 0.95]
    assert merging and all(entry[1] == 100 for entry in merging)  # the bar moves (issue 14)
    after = [entry for entry in seen if entry[0][0] == "predict"]
    assert after and after[0][1] == 100  # a progress bar again after the merge
    [clusters] = result_layers_of(viewer)
    expected = npc.segment(coins, "ward", 3)
    np.testing.assert_array_equal(clusters.data, expected.labels)
    params = clusters.metadata[METADATA_KEY]["params"]
    assert params["downscale"] == auto_downscale(coins.shape) and "random_state" not in params


def test_canny_defaults_find_edges_on_16_bit_and_none_found_adds_nothing(
    make_napari_viewer, qtbot, monkeypatch
):
    """Regression (issue 12): Canny's defaults found no edge on a 16-bit fluorescence
    plane, and an empty layer was added without a hint."""
    warnings = []
    monkeypatch.setattr(widget_module, "show_warning", warnings.append)
    viewer = make_napari_viewer()
    plane = fluorescence_plane()
    viewer.add_image(plane, name="cells")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "canny"
    press_run(widget, qtbot)
    [edges] = result_layers_of(viewer, "edges")
    largest = float(plane.max())
    np.testing.assert_array_equal(
        edges.data,
        feature.canny(plane, sigma=1.0, low_threshold=0.1 * largest, high_threshold=0.2 * largest),
    )
    assert edges.data.sum() > 100 and not warnings

    params = widget._method_params["canny"]
    params["low_threshold"].value, params["high_threshold"].value = 30_000, 40_000
    press_run(widget, qtbot)
    assert len(result_layers_of(viewer, "edges")) == 1  # nothing added...
    assert "nothing found" in warnings[-1] and "low threshold 3e+04" in warnings[-1]
    assert "Lower the thresholds" in warnings[-1]  # ...and says what to change
    assert widget._status.value.startswith("Canny edges: nothing found")


def test_status_reports_the_whole_run_time(pixel_clusters, qtbot, monkeypatch):
    """Regression (issue 12): the status line reported only the fit time."""
    _viewer, widget = pixel_clusters
    build = widget_module.result_layers

    def slow_build(*args, **kwargs):
        time.sleep(0.6)  # e.g. outlines and layers of a large image
        return build(*args, **kwargs)

    monkeypatch.setattr(widget_module, "result_layers", slow_build)
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    status = widget._status.value
    total, fit = (
        float(part.split(" s")[0]) for part in (status.split(" in ")[1], status.split("(fit ")[1])
    )
    assert status.startswith("k-means: 3 clusters in ")
    assert total >= fit + 0.5


def test_random_colors_act_on_the_chosen_result_only(pixel_clusters, qtbot):
    """Regression (issue 12): "random label colors" recolored every earlier result."""
    viewer, widget = pixel_clusters
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    press_run(widget, qtbot)
    first, second = result_layers_of(viewer)
    first_colors = first.colormap.map(np.arange(1, 4)).copy()
    second_colors = second.colormap.map(np.arange(1, 4)).copy()
    viewer.layers.selection.active = first
    widget._random_colors.value = True
    assert not np.allclose(first.colormap.map(np.arange(1, 4)), first_colors)
    np.testing.assert_allclose(second.colormap.map(np.arange(1, 4)), second_colors)
    widget._random_colors.value = False
    np.testing.assert_allclose(first.colormap.map(np.arange(1, 4)), first_colors)


def test_shared_settings_both_ways(pixel_clusters, qtbot):
    viewer, widget = pixel_clusters
    settings = shared_settings(viewer)
    assert settings.image is viewer.layers["astronaut"]
    widget._feature_widgets["spatial_weight"].value = 0.5  # widget -> settings
    widget._random_state.value = 7
    widget._n_clusters.value = 4
    assert (settings.spatial_weight, settings.random_state, settings.n_clusters) == (0.5, 7, 4)
    settings.color_space = "lab"  # settings -> widget
    settings.standardize = True
    assert widget._feature_widgets["color_space"].value == "lab"
    assert widget._feature_widgets["standardize"].value is True
    other = viewer.add_image(SMALL_PHOTO[::-1].copy(), name="flipped")
    viewer.layers.selection.active = viewer.layers["astronaut"]
    settings.image = other
    assert widget._image.value is other
    settings.choose_k("gmm", 3, run=True)  # a k clicked in a sweep, run
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    [clusters] = result_layers_of(viewer)
    params = clusters.metadata[METADATA_KEY]["params"]
    assert (
        params["method"],
        params["n_clusters_requested"],
        params["color_space"],
        params["random_state"],
        params["standardize"],
    ) == ("gmm", 3, "lab", 7, True)
    assert clusters.metadata[METADATA_KEY]["source_layer"] == "flipped"


def test_a_closed_widget_no_longer_follows_the_shared_settings(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(SMALL_PHOTO, name="astronaut")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    settings = shared_settings(viewer)
    assert widget._followers
    viewer.window.remove_dock_widget("all")
    settings.color_space = "hsv"
    settings.choose_k("kmeans", 3, run=True)  # a closed widget does not run
    assert widget._worker is None and not widget._followers  # and follows no more
    qtbot.wait(50)
    assert [layer.name for layer in viewer.layers] == ["astronaut"]


@pytest.mark.parametrize("size", [(1440, 900), (1366, 768)])
def test_fits_the_screen_and_scrolls_in_its_dock(make_napari_viewer, qtbot, size):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(SMALL_PHOTO, name="astronaut")
    window = viewer.window._qt_window
    window.resize(*size)
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "gmm"
    widget._outputs["outlines"].value = True
    widget._advanced_toggle.native.click()  # every row shown: the tallest it gets
    qtbot.wait(100)
    assert window.height() <= size[1]
    assert widget.native.minimumSizeHint().height() <= 450
    assert dock.minimumSizeHint().height() <= 450
    inner = widget.native.widget()  # the controls, in a scroll area
    assert inner.sizeHint().height() > 450  # taller than the minimum: it scrolls
    widget.native.resize(widget.native.width(), 300)
    qtbot.wait(50)
    assert widget.native.verticalScrollBar().maximum() > 0


# ------------------------------------------------ the feature options a method takes
@pytest.mark.parametrize("name", [*npc.METHODS, "standardize_only"])
def test_only_the_feature_options_the_method_takes_are_shown(viewer_with_widget, registered, name):
    """Each feature control shows only for methods that take it (``takes_features``),
    the color space for RGB images only, the stain controls with color space "stains"
    only; whatever the method's name."""
    if name == "standardize_only":
        registered(
            made_up_method(name=name, title="Standardize only", takes_features=("standardize",))
        )
    method = npc.METHODS[name]
    viewer, widget = viewer_with_widget(SMALL_PHOTO, name="astronaut")
    widget._method.value = name
    stain_options = {"stain_vectors", "stain_background"}
    shown = {n for n, control in widget._feature_widgets.items() if offered(control)}
    assert shown == set(method.takes_features) - stain_options
    if "color_space" in method.takes_features:
        widget._feature_widgets["color_space"].value = "stains"
        shown = {n for n, control in widget._feature_widgets.items() if offered(control)}
        assert shown == set(method.takes_features)
    viewer.add_image(data.coins()[::8, ::8], name="coins")  # grey: no color space
    shown = {n for n, control in widget._feature_widgets.items() if offered(control)}
    assert shown == set(method.takes_features) - {"color_space"} - stain_options


def test_options_a_method_does_not_take_are_not_sent_to_it(pixel_clusters, qtbot):
    """A spatial weight set for k-means (shared with Choose k) is hidden for SLIC and not
    sent: SLIC runs on its own options, as ``segment`` with them."""
    viewer, widget = pixel_clusters
    widget._method.value = "kmeans"
    widget._feature_widgets["spatial_weight"].value = 0.5
    widget._feature_widgets["standardize"].value = True
    widget._method.value = "slic"
    assert not offered(widget._feature_widgets["spatial_weight"])
    assert widget._options() == {
        **npc.METHODS["slic"].defaults(),
        "color_space": None,
        "standardize": True,
        "smooth": 0,  # clean-up: off
        "fill_holes": 0,
        "min_region": 0,
    }
    press_run(widget, qtbot)
    [clusters] = result_layers_of(viewer)
    expected = npc.segment(SMALL_PHOTO, "slic", standardize=True)
    np.testing.assert_array_equal(clusters.data, expected.labels)
    assert "spatial_weight" not in clusters.metadata[METADATA_KEY]["params"]


def test_color_space_auto_is_the_methods_default(pixel_clusters, qtbot):
    """The color space starts at "auto" (None, shown first): SLIC with the widget's
    defaults is ``segment(image, "slic")`` (Lab), k-means clusters RGB."""
    viewer, widget = pixel_clusters
    control = widget._feature_widgets["color_space"]
    assert control.value is None and control.native.itemText(0) == "auto"
    assert control.native.currentText() == "auto"
    assert shared_settings(viewer).color_space is None
    widget._method.value = "slic"
    assert control.tooltip.endswith(
        "'auto' (first) leaves it to the method: SLIC superpixels uses lab."
    )
    press_run(widget, qtbot)
    widget._method.value = "kmeans"
    assert control.tooltip.endswith("uses rgb.")
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    slic_layer, kmeans_layer = result_layers_of(viewer)
    np.testing.assert_array_equal(slic_layer.data, npc.segment(SMALL_PHOTO, "slic").labels)
    assert slic_layer.metadata[METADATA_KEY]["params"]["color_space_used"] == "lab"
    np.testing.assert_array_equal(
        kmeans_layer.data, npc.segment(SMALL_PHOTO, "kmeans", 3, color_space="rgb").labels
    )
    shared_settings(viewer).color_space = "hsv"  # shown, and back to auto
    assert control.value == "hsv"
    shared_settings(viewer).color_space = None
    assert control.value is None and control.native.currentText() == "auto"


# ------------------------------------------------ stain vectors
def test_stains_with_estimated_vectors_run_as_segment_and_record_them(viewer_with_widget, qtbot):
    """Color space "stains" shows the stain controls (the background with 'estimate'
    only); Run gives segment's result, the vectors and stain names in the layer."""
    ihc = np.ascontiguousarray(data.immunohistochemistry()[:96, :96])
    viewer, widget = viewer_with_widget(ihc, name="ihc")
    controls = widget._feature_widgets
    assert not offered(controls["stain_vectors"]) and not offered(controls["stain_background"])
    controls["color_space"].value = "stains"
    assert offered(controls["stain_vectors"]) and offered(controls["stain_background"])
    assert controls["stain_vectors"].value == "estimate"
    widget._n_clusters.value = 3
    controls["stain_background"].value = 0.2
    press_run(widget, qtbot)
    layer = result_layers_of(viewer)[-1]
    params = layer.metadata[METADATA_KEY]["params"]
    expected = npc.segment(
        ihc, "kmeans", 3, color_space="stains", stain_vectors="estimate", stain_background=0.2
    )
    np.testing.assert_array_equal(layer.data, expected.labels)
    assert params["stain_vectors"] == expected.params["stain_vectors"]
    assert params["stain_vectors"]["estimated"] is True
    assert params["features"] == ["stain 1", "stain 2", "residual"]
    columns = ["index", "name", "pixels", "fraction", "mean_R", "mean_G", "mean_B", "color"]
    assert list(layer.features.columns) == columns  # the table: pixels and mean colors
    assert list(layer.features["pixels"]) == list(expected.table["pixels"])
    assert shared_settings(viewer).stain_vectors == "estimate"
    controls["color_space"].value = "lab"  # other spaces: hidden and not sent
    assert not offered(controls["stain_vectors"]) and not offered(controls["stain_background"])
    assert "stain_vectors" not in widget._options()


def test_stains_from_a_json_file_and_a_bad_file_is_one_notification(
    viewer_with_widget, qtbot, tmp_path, error_notifications
):
    import json

    ihc = np.ascontiguousarray(data.immunohistochemistry()[:64, :64])
    viewer, widget = viewer_with_widget(ihc, name="ihc")
    controls = widget._feature_widgets
    controls["color_space"].value = "stains"
    named = {"hematoxylin": [0.65, 0.70, 0.29], "DAB": [0.27, 0.57, 0.78]}
    (tmp_path / "stains.json").write_text(json.dumps(named))
    controls["stain_vectors"].value = str(tmp_path / "stains.json")
    assert offered(controls["stain_vectors"].file) and not offered(controls["stain_background"])
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    layer = result_layers_of(viewer)[-1]
    params = layer.metadata[METADATA_KEY]["params"]
    assert params["features"] == ["hematoxylin", "DAB", "residual"]
    expected = npc.segment(ihc, "kmeans", 3, color_space="stains", stain_vectors=named)
    np.testing.assert_array_equal(layer.data, expected.labels)
    (tmp_path / "bad.json").write_text("[[1, 2, 3]]")
    controls["stain_vectors"].value = str(tmp_path / "bad.json")
    n_layers = len(viewer.layers)
    press_run(widget, qtbot)
    assert len(error_notifications) == 1
    assert error_notifications[0].startswith(f"stain vectors file: {tmp_path / 'bad.json'}: ")
    assert len(viewer.layers) == n_layers
    controls["stain_vectors"].source.value = "estimate"  # back to estimating
    assert controls["stain_vectors"].value == "estimate" and offered(controls["stain_background"])


# ------------------------------------------------ clean-up
def test_cleanup_controls_show_for_clustering_methods_and_min_region_cleans_the_layer(
    pixel_clusters, qtbot
):
    """smooth, fill_holes and min_region show for the methods that take clean-up (not
    Canny); min_region set in the widget leaves no region below it in the clusters layer,
    whose labels and table are segment's with it."""
    from skimage.measure import label as connected

    from napari_pixel_clusters.core.registry import CLEANUP_NAMES

    viewer, widget = pixel_clusters
    for name, method in npc.METHODS.items():
        widget._method.value = name
        shown = {n for n, control in widget._cleanup_widgets.items() if offered(control)}
        assert shown == (set(CLEANUP_NAMES) if method.takes_cleanup else set()), name
    widget._method.value = "kmeans"
    widget._n_clusters.value = 4
    plain = npc.segment(SMALL_PHOTO, "kmeans", 4)
    regions = connected(plain.labels, connectivity=1, background=0)
    assert np.bincount(regions.ravel())[1:].min() < 30  # speckle to clean
    widget._cleanup_widgets["min_region"].value = 30
    press_run(widget, qtbot)
    [clusters] = result_layers_of(viewer)
    regions = connected(clusters.data, connectivity=1, background=0)
    assert np.bincount(regions.ravel())[1:].min() >= 30
    expected = npc.segment(SMALL_PHOTO, "kmeans", 4, min_region=30)
    np.testing.assert_array_equal(clusters.data, expected.labels)
    assert clusters.metadata[METADATA_KEY]["params"]["min_region"] == 30
    counts = np.bincount(clusters.data.ravel())[1:]
    np.testing.assert_array_equal(clusters.features["pixels"], counts[counts > 0])


# ------------------------------------------------ probabilities and uncertainty outputs
def test_gmm_probabilities_and_uncertainty_layers_equal_the_results(viewer_with_widget, qtbot):
    viewer, widget = viewer_with_widget(SMALL_PHOTO, name="astronaut")
    widget._method.value = "gmm"
    widget._n_clusters.value = 3
    assert widget._outputs["probabilities"].enabled and widget._outputs["uncertainty"].enabled
    assert not offered(widget._uncertainty_kind)  # the measure only with the uncertainty
    widget._outputs["probabilities"].value = True
    widget._outputs["uncertainty"].value = True
    assert offered(widget._uncertainty_kind)
    press_run(widget, qtbot)
    assert [layer.name for layer in viewer.layers] == [
        "astronaut",
        "astronaut Gaussian mixture#1 quantized",
        "astronaut Gaussian mixture#1 probabilities",
        "astronaut Gaussian mixture#1 uncertainty",
        "astronaut Gaussian mixture#1 clusters",
    ]  # under the clusters, hidden like the quantized image
    seg = npc.segment(SMALL_PHOTO, "gmm", 3, random_state=0)
    clusters = viewer.layers["astronaut Gaussian mixture#1 clusters"]
    np.testing.assert_array_equal(clusters.data, seg.labels)
    probabilities = viewer.layers["astronaut Gaussian mixture#1 probabilities"]
    uncertainty = viewer.layers["astronaut Gaussian mixture#1 uncertainty"]
    # one layer, the cluster axis first: a slider over the clusters
    assert isinstance(probabilities, Image) and probabilities.data.shape == (3, 64, 64)
    np.testing.assert_allclose(
        probabilities.data, np.moveaxis(seg.probabilities(), -1, 0), atol=1e-6
    )
    np.testing.assert_allclose(probabilities.data.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(uncertainty.data, seg.uncertainty(), atol=1e-6)
    for layer, colormap in ((probabilities, "magma"), (uncertainty, "inferno")):
        assert not layer.visible and layer.colormap.name == colormap
        assert tuple(layer.contrast_limits) == (0.0, 1.0)
        tag = layer.metadata[METADATA_KEY]
        assert (tag["run"], tag["source"]) == ("Gaussian mixture#1", "astronaut")
    assert probabilities.metadata[METADATA_KEY]["labels"] == [1, 2, 3]
    assert uncertainty.metadata[METADATA_KEY]["uncertainty"] == "margin"
    assert viewer.dims.ndim == 3  # the clusters' slider, named so
    assert tuple(probabilities.axis_labels) == ("cluster", *viewer.layers["astronaut"].axis_labels)
    assert viewer.dims.axis_labels[0] == "cluster"
    # entropy, and "replace previous result" takes the posteriors of the run away too
    widget._uncertainty_kind.value = "entropy"
    widget._replace.value = True
    press_run(widget, qtbot)
    assert [layer.name for layer in viewer.layers][1:] == [
        "astronaut Gaussian mixture#2 quantized",
        "astronaut Gaussian mixture#2 probabilities",
        "astronaut Gaussian mixture#2 uncertainty",
        "astronaut Gaussian mixture#2 clusters",
    ]
    np.testing.assert_allclose(
        viewer.layers["astronaut Gaussian mixture#2 uncertainty"].data,
        seg.uncertainty("entropy"),
        atol=1e-6,
    )


@pytest.mark.parametrize("name", [*npc.METHODS, "made_up_posteriors"])
def test_posterior_outputs_are_offered_when_the_model_gives_probabilities(
    viewer_with_widget, qtbot, registered, name
):
    """Enabled iff the method's predictor declares ``probabilities_rows``, whatever the
    method's name; a ticked box of a method without them adds nothing."""
    if name == "made_up_posteriors":  # k-means's registration with GMM's posteriors
        predictor = dataclasses.replace(
            npc.METHODS["kmeans"].predictor,
            probabilities_rows=npc.METHODS["gmm"].predictor.probabilities_rows,
        )
        registered(made_up_method(name=name, predictor=predictor))
    viewer, widget = viewer_with_widget(SMALL_PHOTO, name="astronaut")
    method = npc.METHODS[name]
    gives = method.predictor is not None and method.predictor.probabilities_rows is not None
    widget._outputs["probabilities"].value = True
    widget._method.value = name
    assert widget._outputs["probabilities"].enabled is gives
    assert widget._outputs["uncertainty"].enabled is gives
    assert ("gives none" in widget._outputs["uncertainty"].tooltip) is not gives
    if name == "kmeans":  # a run adds no probabilities layer, and leaves them disabled
        widget._n_clusters.value = 3
        press_run(widget, qtbot)
        assert not result_layers_of(viewer, "probabilities") and result_layers_of(viewer)
        assert not widget._outputs["probabilities"].enabled


def test_probabilities_of_an_image_read_chunk_by_chunk_stay_lazy(viewer_with_widget, qtbot):
    photo = SMALL_PHOTO
    lazy = da.from_array(photo, chunks=(32, 32, 3))
    viewer, widget = viewer_with_widget(lazy, name="lazy", rgb=True)
    widget._method.value = "gmm"
    widget._n_clusters.value = 3
    widget._outputs["probabilities"].value = True
    widget._outputs["uncertainty"].value = True
    press_run(widget, qtbot)
    seg = npc.segment(lazy, "gmm", 3, random_state=0)
    probabilities = viewer.layers["lazy Gaussian mixture#1 probabilities"]
    uncertainty = viewer.layers["lazy Gaussian mixture#1 uncertainty"]
    assert isinstance(probabilities.data, da.Array) and isinstance(uncertainty.data, da.Array)
    np.testing.assert_allclose(
        probabilities.data.compute(), np.moveaxis(seg.probabilities().compute(), -1, 0)
    )
    np.testing.assert_allclose(uncertainty.data.compute(), seg.uncertainty().compute())


def test_probabilities_of_the_current_plane_sit_on_that_plane(viewer_with_widget, qtbot):
    stack = np.stack([data.coins()[::8, ::8]] * 3)
    viewer, widget = viewer_with_widget(stack, name="stack", scale=(3, 2, 2))
    viewer.dims.set_point(0, 6)  # plane 2
    widget._method.value = "gmm"
    widget._n_clusters.value = 2
    widget._outputs["probabilities"].value = True
    press_run(widget, qtbot)
    layer = viewer.layers["stack (plane 2) Gaussian mixture#1 probabilities"]
    seg = npc.segment(stack[2:3], "gmm", 2, random_state=0)
    assert layer.data.shape == (2, 1, *stack.shape[1:])
    np.testing.assert_allclose(layer.data, np.moveaxis(seg.probabilities(), -1, 0), atol=1e-6)
    np.testing.assert_array_equal(layer.scale, (1, 3, 2, 2))
    np.testing.assert_array_equal(layer.translate, (0, 6, 0, 0))


def test_a_run_gives_a_uint8_clusters_layer_with_the_results_labels(viewer_with_widget, qtbot):
    """napari maps int32 labels to a texture on the GUI thread at every refresh (~200 ms at
    4096²): a clusters layer holds its labels in the smallest dtype that fits them."""
    photo = data.astronaut()  # 512²
    viewer, widget = viewer_with_widget(photo, name="astronaut")
    widget._method.value = "kmeans"
    widget._n_clusters.value = 4
    widget._feature_widgets["color_space"].value = "lab"
    press_run(widget, qtbot)
    clusters = viewer.layers["astronaut k-means#1 clusters"]
    expected = npc.segment(photo, "kmeans", 4, color_space="lab", random_state=0)
    assert clusters.data.dtype == np.uint8
    np.testing.assert_array_equal(clusters.data, expected.labels)
