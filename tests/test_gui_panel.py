"""What every dock widget shares (gui/_panel.py, ``RunPanel``): the image choice follows
the selected image layer, never onto one of our results; every failure is reported once,
as a person would see it: one notification, a status line that says the run failed, the
Run button back, no layer added. And a result whose image changed (or went away) during
the run is dropped."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
from napari.layers import Labels
from napari.utils.notifications import notification_manager
from skimage import data

import napari_pixel_clusters as npc
from conftest import SMALL_PHOTO, offered, press_run, result_layers_of
from napari_pixel_clusters.core.model import Model
from napari_pixel_clusters.gui import _panel
from napari_pixel_clusters.gui import choose_k as choose_k_module
from napari_pixel_clusters.gui import widget as widget_module
from napari_pixel_clusters.gui.apply_model import FROM_FILE
from napari_pixel_clusters.gui.layers import METADATA_KEY

PLUGIN = "napari-pixel-clusters"
PHOTO = np.ascontiguousarray(data.astronaut()[::16, ::16])  # 32 x 32 RGB

#: dock widget -> (where its work is looked up, the name of the generator of steps)
WORK = {
    "Pixel clusters": (widget_module, "segment_steps"),
    "Choose number of clusters": (choose_k_module, "sweep_steps"),
    "Apply model": (Model, "predict_steps"),
}


class Reports:
    """What the user is shown: plugin notifications, and napari's traceback dialogs."""

    def __init__(self, monkeypatch):
        self.messages, self.tracebacks = [], []
        monkeypatch.setattr(_panel, "notify_error", self.messages.append)
        monkeypatch.setattr(
            notification_manager,
            "receive_error",
            lambda *args, **kwargs: self.tracebacks.append(args),
        )


@pytest.fixture
def reports(monkeypatch):
    return Reports(monkeypatch)


@pytest.fixture
def panel(make_napari_viewer, tmp_path):
    """Open one of the run panels on a small photo, ready to run."""

    def open_panel(name):
        viewer = make_napari_viewer()
        viewer.add_image(PHOTO.copy(), name="photo")
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        if name == "Pixel clusters":
            widget._n_clusters.value = 3
        elif name == "Choose number of clusters":
            widget._k_min.value, widget._k_max.value = 2, 3
            widget._sample_size.value = 200
        else:
            model = npc.save_model(
                npc.segment(PHOTO, "kmeans", 3, random_state=0), tmp_path / "model.json"
            )
            widget._model_source.value = FROM_FILE
            widget._model_file.value = model
        return viewer, widget

    return open_panel


def layer_names(viewer) -> list[str]:
    return [layer.name for layer in viewer.layers]


def assert_failed_once(viewer, widget, reports, names_before, containing):
    assert len(reports.messages) == 1, reports.messages
    assert containing in reports.messages[0]
    assert not reports.tracebacks  # never napari's dialog with a traceback
    assert widget._status.value.startswith("failed")
    assert widget._run_button.text == "Run"
    assert not widget._progress.visible and widget._progress.value == 0
    assert layer_names(viewer) == names_before
    assert getattr(widget, "sweep", None) is None  # Choose k: nothing plotted either
    assert all(control.enabled for control in widget)


def failing_after_first_step(real, error):
    """The real work's first step (taken before the thread), then ``error`` in the thread."""

    def steps(*args, **kwargs):
        work = real(*args, **kwargs)
        yield next(work)
        raise error

    return steps


def paused_after_first_step(real, gate: threading.Event):
    """The real work, waiting in the thread after its first step until ``gate`` is set."""

    def steps(*args, **kwargs):
        work = real(*args, **kwargs)
        yield next(work)
        assert gate.wait(30)
        return (yield from work)

    return steps


@pytest.mark.parametrize("name", list(WORK))
@pytest.mark.parametrize(
    "error, shown",
    [
        (ValueError("n_clusters: a made-up bad value."), "n_clusters: a made-up bad value."),
        (MemoryError(), "Not enough memory"),
        (RuntimeError("a made-up bug"), "RuntimeError: a made-up bug"),
    ],
)
def test_an_error_in_the_worker_is_one_notification(
    panel, qtbot, reports, caplog, monkeypatch, name, error, shown
):
    viewer, widget = panel(name)
    owner, attribute = WORK[name]
    monkeypatch.setattr(
        owner, attribute, failing_after_first_step(getattr(owner, attribute), error)
    )
    press_run(widget, qtbot)
    assert_failed_once(viewer, widget, reports, ["photo"], shown)
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    if isinstance(error, RuntimeError):  # a bug: its traceback goes to the log
        assert [r.exc_info[1] for r in logged] == [error]
        assert widget._status.value == "failed: unexpected RuntimeError"
    else:
        assert not logged and shown.lower() in widget._status.value.lower()


@pytest.mark.parametrize("name", list(WORK))
def test_an_unexpected_error_before_the_worker_is_one_notification(
    panel, qtbot, reports, monkeypatch, name
):
    viewer, widget = panel(name)

    def broken(*args, **kwargs):
        raise KeyError("kind")

    monkeypatch.setattr(*WORK[name], broken)
    widget._run_button.native.click()  # raised out of run() as a traceback before
    assert widget._worker is None
    assert_failed_once(viewer, widget, reports, ["photo"], "KeyError: 'kind'")


@pytest.mark.parametrize(
    "path", [("features", "color_space"), ("image", "kind"), ("clusters", 0, "name")]
)
def test_a_model_file_with_a_missing_key_is_one_notification(panel, qtbot, reports, path):
    """Missing features/color_space stopped the run silently, status stuck at
    "labelling pixels"; missing image/kind escaped from run() as a KeyError."""
    viewer, widget = panel("Apply model")
    model_file = widget._model_file.value
    content = json.loads(model_file.read_text())
    parent = content
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    model_file.write_text(json.dumps(content))
    press_run(widget, qtbot)
    assert_failed_once(viewer, widget, reports, ["photo"], repr(path[-1]).strip("'"))


def test_a_failure_while_adding_layers_leaves_the_viewer_as_it_was(
    panel, qtbot, reports, monkeypatch
):
    viewer, widget = panel("Pixel clusters")
    widget._outputs["outlines"].value = True
    press_run(widget, qtbot)
    before = list(viewer.layers)
    assert layer_names(viewer) == [
        "photo",
        "photo k-means#1 quantized",
        "photo k-means#1 clusters",
        "photo k-means#1 outlines",
    ]
    widget._replace.value = True  # removes the previous result before adding the new one
    add_layer = type(viewer).add_layer

    def failing_add_layer(self, layer):  # the clusters come after the quantized image
        if isinstance(layer, Labels):
            raise RuntimeError("a made-up failure in napari")
        return add_layer(self, layer)

    monkeypatch.setattr(type(viewer), "add_layer", failing_add_layer)
    press_run(widget, qtbot)
    assert list(viewer.layers) == before  # no half-added result; the replaced ones back
    assert_failed_once(
        viewer,
        widget,
        reports,
        [layer.name for layer in before],
        "RuntimeError: a made-up failure in napari",
    )


def test_an_error_escaping_the_guard_is_reported_once_without_a_traceback_dialog(
    panel, qtbot, reports, monkeypatch
):
    viewer, widget = panel("Pixel clusters")
    monkeypatch.setattr(_panel, "guarded_steps", lambda steps: steps)  # errors reach Qt
    # (not a RuntimeError: superqt takes that for a deleted worker and never finishes)
    monkeypatch.setattr(
        widget_module,
        "segment_steps",
        failing_after_first_step(widget_module.segment_steps, KeyError("a made-up bug")),
    )
    press_run(widget, qtbot)
    assert_failed_once(viewer, widget, reports, ["photo"], "KeyError: 'a made-up bug'")


@pytest.mark.parametrize("name", list(WORK))
@pytest.mark.parametrize("change", ["data replaced", "layer removed"])
def test_a_result_of_an_image_that_changed_during_the_run_is_not_added(
    panel, qtbot, reports, monkeypatch, name, change
):
    viewer, widget = panel(name)
    gate = threading.Event()
    owner, attribute = WORK[name]
    monkeypatch.setattr(owner, attribute, paused_after_first_step(getattr(owner, attribute), gate))
    widget._run_button.native.click()
    assert widget._worker is not None
    photo = viewer.layers["photo"]
    if change == "data replaced":
        photo.data = PHOTO[::-1].copy()
        expected, names = "its data changed while the run was going", ["photo"]
    else:
        viewer.layers.remove(photo)
        expected, names = "'photo' was removed during the run", []
    gate.set()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert_failed_once(viewer, widget, reports, names, expected)
    assert widget._status.value == "failed: the image changed during the run"


def test_run_while_a_run_is_going_is_a_notification(panel, qtbot, reports, monkeypatch):
    viewer, widget = panel("Pixel clusters")
    gate = threading.Event()
    monkeypatch.setattr(
        widget_module, "segment_steps", paused_after_first_step(widget_module.segment_steps, gate)
    )
    worker = widget.run()
    assert widget.run() is None and widget._worker is worker
    assert reports.messages == ["A run is going: wait for it to finish, or press Cancel."]
    gate.set()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert layer_names(viewer) == [
        "photo",
        "photo k-means#1 quantized",
        "photo k-means#1 clusters",
    ]
    assert len(reports.messages) == 1


def test_image_choice_never_follows_onto_a_result(pixel_clusters, qtbot):
    """Regression (issue 12): selecting our quantized layer made it the image, and Run
    clustered a result."""
    viewer, widget = pixel_clusters
    widget._n_clusters.value = 3
    press_run(widget, qtbot)
    source = viewer.layers["astronaut"]
    [quantized] = result_layers_of(viewer, "quantized")
    viewer.add_image(data.camera()[::8, ::8], name="camera")
    labels = [label for label, _ in widget._image_layers()]
    assert labels == ["astronaut", "camera", f"{quantized.name} (result)"]  # sources first
    viewer.layers.selection.active = source
    viewer.layers.selection.active = quantized  # the user clicks through the results
    assert widget._image.value is source
    press_run(widget, qtbot)
    newest = result_layers_of(viewer)[-1]
    assert newest.metadata[METADATA_KEY]["source_layer"] == "astronaut"
    np.testing.assert_array_equal(newest.data, npc.segment(SMALL_PHOTO, "kmeans", 3).labels)
    viewer.layers.selection.active = viewer.layers["camera"]  # sources are still followed
    assert widget._image.value is viewer.layers["camera"]


def test_widget_follows_the_active_image_layer(viewer_with_widget):
    viewer, widget = viewer_with_widget(data.astronaut(), name="astronaut")
    assert widget._image.value is viewer.layers["astronaut"]
    assert offered(widget._feature_widgets["color_space"])
    coins = viewer.add_image(data.coins(), name="coins")
    viewer.layers.selection.active = coins
    assert widget._image.value is coins
    viewer.add_labels(np.zeros((10, 10), int), name="not an image")
    assert [name for name, _ in widget._image_layers()] == ["astronaut", "coins"]


def test_out_of_memory_in_the_worker_is_a_notification(
    viewer_with_widget, qtbot, error_notifications, monkeypatch
):
    from napari_pixel_clusters.gui import widget as widget_module

    def exhausted(*args, **kwargs):
        yield "features", 0.0
        raise MemoryError

    monkeypatch.setattr(widget_module, "segment_steps", exhausted)
    viewer, widget = viewer_with_widget(data.coins(), name="coins")
    press_run(widget, qtbot)
    assert error_notifications[-1].startswith("Not enough memory for this run")
    assert [layer.name for layer in viewer.layers] == ["coins"]
    assert widget._status.value.startswith("failed")
