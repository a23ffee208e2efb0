"""What several test files share: images (small crops of scikit-image samples, generated
edge cases), results and their saved files, helpers to drive the widgets."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading

import numpy as np
import pytest
from skimage import data, filters

import napari_pixel_clusters as npc


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images group pixels identically (up to renaming labels)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1).shape[1]
    return pairs == len(np.unique(a)) == len(np.unique(b))


def run_pixel_clusters(viewer, qtbot, **choices):
    """Open Pixel clusters on the active image, set its choices and press Run.

    ``choices``: ``n_clusters``, ``color_space``, and outputs as ``quantized=False`` etc.
    """
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    widget._n_clusters.value = choices.pop("n_clusters", 4)
    if "color_space" in choices:
        widget._feature_widgets["color_space"].value = choices.pop("color_space")
    for output, wanted in choices.items():
        widget._outputs[output].value = wanted
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    return widget


def collect_steps(steps):
    """Walk a generator of progress steps: (the steps, its return value)."""
    stages = []
    while True:
        try:
            stages.append(next(steps))
        except StopIteration as stop:
            return stages, stop.value


@pytest.fixture(scope="session")
def photo():
    """A 128 x 128 RGB uint8 photo (astronaut, every 4th pixel)."""
    return np.ascontiguousarray(data.astronaut()[::4, ::4])


def _image_kinds():
    rng = np.random.default_rng(1)
    coins = data.coins()[::6, ::6]
    rgb = np.ascontiguousarray(data.astronaut()[::12, ::12])
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:5, :5, 3] = 0
    nan_image = rng.random((30, 30))
    nan_image[3:7, 10:20] = np.nan
    nan_image[0, 0] = np.inf
    return {
        "grey_u8": (coins, {}),
        "grey_u16": ((coins.astype(np.uint16) * 257), {}),
        "grey_float": (rng.random((30, 36)).astype(np.float32), {}),
        "grey_u64": (coins.astype(np.uint64), {}),
        "grey_i32_negative": (coins.astype(np.int32) - 128, {}),
        "rgb": (rgb, {}),
        "rgba": (rgba, {}),
        "stack": (rng.integers(0, 40, (4, 24, 24)).astype(np.uint8), {}),
        "multichannel": (
            rng.integers(0, 1000, (2, 24, 28)).astype(np.uint16),
            {"channel_axis": 0},
        ),
        "with_nans": (nan_image, {}),
        "constant": (np.full((20, 20), 7, np.uint8), {}),
        "one_pixel": (np.array([[3.5]]), {}),
    }


IMAGE_KINDS = _image_kinds()


BLOB_COLORS = np.array(
    [[230, 40, 40], [40, 200, 60], [40, 60, 220], [240, 230, 50], [200, 60, 220], [30, 210, 220]],
    float,
)


def blob_image(n_colors: int, seed: int = 0) -> np.ndarray:
    """An RGB image of n well-separated color regions (vertical bands) plus noise."""
    rng = np.random.default_rng(seed)
    bands = np.repeat(np.arange(n_colors), 120 // n_colors + 1)[:120]
    image = BLOB_COLORS[:n_colors][np.tile(bands, (80, 1))]
    image += rng.normal(0, 12, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def fluorescence_plane() -> np.ndarray:
    """uint16, values 100..4000: three blurred bright blobs on a dim noisy background."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    image = np.full((96, 96), 100.0)
    for cy, cx, r in [(25, 30, 9), (60, 65, 12), (70, 20, 7)]:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 4000
    image = filters.gaussian(image, 2, preserve_range=True) + rng.normal(0, 20, image.shape)
    return np.clip(image, 100, 4000).astype(np.uint16)


# --------------------------------------------------------- results, saved files and folders
def _three_regions() -> np.ndarray:
    """32 x 32 RGB: three color regions with some noise (distinct clusters)."""
    rng = np.random.default_rng(0)
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :12] = (200, 40, 40)
    image[:, 12:22] = (40, 180, 60)
    image[:, 22:] = (30, 50, 220)
    return np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)


THREE_REGIONS = _three_regions()


@pytest.fixture(scope="module")
def three_region_results():
    """Results of :data:`THREE_REGIONS` with a model each: k-means, a full-covariance
    mixture, and k-means with spatial features (standardized)."""
    return {
        "kmeans": npc.segment(THREE_REGIONS, "kmeans", 3, random_state=0),
        "gmm": npc.segment(THREE_REGIONS, "gmm", 3, random_state=0, covariance_type="full"),
        "spatial": npc.segment(
            THREE_REGIONS, "kmeans", 3, random_state=0, spatial_weight=1.0, standardize=True
        ),
    }


@pytest.fixture(scope="module")
def three_region_models(three_region_results):
    """The models of :func:`three_region_results` as the JSON content of model files."""
    return {
        name: json.loads(json.dumps(seg.model.to_dict()))
        for name, seg in three_region_results.items()
    }


@pytest.fixture(scope="module")
def small_results():
    """Two results of a 32 x 32 RGB image (3 and 2 clusters)."""
    photo = data.astronaut()[::16, ::16]
    return (
        npc.segment(photo, "kmeans", 3, random_state=0),
        npc.segment(photo, "kmeans", 2, random_state=0),
    )


def clusters_layer_data(seg):
    """``seg`` as napari hands a clusters Labels layer to a writer: [(data, attributes, kind)]."""
    from napari_pixel_clusters.gui.layers import METADATA_KEY

    attributes = {
        "name": "c",
        "features": seg.table.rename(columns={"label": "index"}),
        "metadata": {
            METADATA_KEY: {"params": seg.params, "score": seg.score, "model": seg.model.to_dict()}
        },
    }
    return [(seg.labels, attributes, "labels")]


def snapshot(folder):
    """Every file under ``folder`` and its bytes (to check that nothing changed)."""
    return {
        path.relative_to(folder): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def no_leftovers(parent):
    """No hidden staging file or folder was left in ``parent``."""
    return [path.name for path in parent.iterdir() if path.name.startswith(".")] == []


def finishes(function, timeout: float = 20.0):
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


def release_fifo(fifo) -> None:
    """Unblock a reader stuck on ``fifo`` (only needed when the test fails)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def case_ids(cases):
    """Readable test ids for (what, ..., expected message) cases."""
    return [
        f"{i}-{case[0]}-{re.sub(r'[^a-z_.]+', '', case[-1][:30])}" for i, case in enumerate(cases)
    ]


# ------------------------------------------------------------------ driving the dock widgets
PLUGIN = "napari-pixel-clusters"
SMALL_PHOTO = np.ascontiguousarray(data.astronaut()[::8, ::8])  # 64 x 64 RGB


def offered(widget) -> bool:
    """Whether the widget is shown to the user (not hidden), even in a hidden viewer."""
    return not widget.native.isHidden()


def press_run(widget, qtbot, timeout=60_000):
    """Click a dock widget's Run button and wait until its run is over."""
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout)


def result_layers_of(viewer, output="clusters"):
    """The plugin's result layers of one output ("clusters", "quantized", "edges"...)."""
    from napari_pixel_clusters.gui.layers import METADATA_KEY

    return [
        layer
        for layer in viewer.layers
        if layer.metadata.get(METADATA_KEY, {}).get("output") == output
    ]


@pytest.fixture
def pixel_clusters(make_napari_viewer):
    """A viewer with :data:`SMALL_PHOTO` ("astronaut") and Pixel clusters open on it."""
    viewer = make_napari_viewer()
    viewer.add_image(SMALL_PHOTO, name="astronaut")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    return viewer, widget


@pytest.fixture
def viewer_with_widget(make_napari_viewer):
    """``open_widget(image=None, **layer_kwargs)``: add the image (if any) to a new viewer,
    open Pixel clusters; gives (viewer, widget)."""
    viewer = make_napari_viewer()

    def open_widget(image=None, **layer_kwargs):
        if image is not None:
            viewer.add_image(image, **layer_kwargs)
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
        return viewer, widget

    return open_widget


@pytest.fixture
def error_notifications(monkeypatch):
    """Messages the widgets show as napari error notifications."""
    from napari_pixel_clusters.gui import _panel

    shown = []
    monkeypatch.setattr(_panel, "notify_error", shown.append)
    return shown


@pytest.fixture
def review(make_napari_viewer, qtbot):
    """A k-means result of a small astronaut with outlines, both review widgets open."""
    viewer = make_napari_viewer(show=True)  # screenshots of a shown canvas
    image = np.ascontiguousarray(data.astronaut()[::4, ::4])
    viewer.add_image(image, name="a")
    run_pixel_clusters(viewer, qtbot, outlines=True)
    layer = next(layer for layer in viewer.layers if layer.name.endswith("clusters"))
    _, table = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    _, colors = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster colors")
    colors._sample_size.value = 1000
    colors.update()
    viewer.window._qt_window.resize(1300, 860)
    qtbot.wait(20)
    viewer.reset_view()
    return viewer, table, colors, layer, image


def forked_child_result(target, timeout: float = 60.0):
    """What ``target(queue)`` puts in ``queue`` when run in a forked child (which must
    end well within ``timeout`` seconds, exit code 0)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=target, args=(queue,))
    child.start()
    child.join(timeout=timeout)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    return queue.get(timeout=5)
