"""Models: label other images the same way, saved and loaded as validated JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data

import napari_pixel_clusters as npc
from conftest import collect_steps


@pytest.mark.parametrize(
    "method, options",
    [
        ("kmeans", {"color_space": "lab"}),
        ("gmm", {"covariance_type": "full"}),
        ("gmm", {"covariance_type": "spherical", "standardize": True}),
        ("kmeans", {"spatial_weight": 1.0, "standardize": True}),
    ],
)
def test_model_json_round_trip_gives_identical_labels(photo, tmp_path, method, options):
    seg = npc.segment(photo, method, 4, random_state=0, **options)
    path = npc.save_model(seg, tmp_path / "model.json")
    content = json.loads(path.read_text())
    assert content["format"] == "napari-pixel-clusters model" and content["version"] == 1
    model = npc.load_model(path)
    again = model.predict(photo)
    np.testing.assert_array_equal(again.labels, seg.labels)
    assert [c["color"] for c in model.clusters] == list(seg.table["color"])


def test_model_labels_another_image_sensibly():
    astronaut = data.astronaut()
    seg = npc.segment(astronaut[:256], "kmeans", 5, color_space="lab", random_state=0)
    other = seg.model.predict(astronaut[256:])
    assert other.labels.shape == (256, 512) and set(np.unique(other.labels)) <= set(range(1, 6))
    from skimage.color import rgb2lab
    from sklearn.metrics import pairwise_distances

    lab = rgb2lab(astronaut[256:] / 255.0).reshape(-1, 3)
    centres = np.asarray(seg.model.parameters["centers"])
    nearest = pairwise_distances(lab, centres).argmin(axis=1) + 1
    np.testing.assert_array_equal(other.labels.ravel(), nearest)


def test_grey_model_on_a_grey_stack():
    coins = data.coins()
    seg = npc.segment(coins, "gmm", 3, covariance_type="diag", random_state=0)
    stack = np.stack([coins, coins[::-1]])
    labels = seg.model.predict(stack).labels
    np.testing.assert_array_equal(labels[0], seg.labels)
    np.testing.assert_array_equal(labels[1], seg.labels[::-1])


def test_model_refuses_an_image_with_other_channels(photo):
    model = npc.segment(photo, "kmeans", 3).model
    with pytest.raises(ValueError, match=r"^image: this model was fitted on a rgb image"):
        model.predict(data.coins())


def test_ward_and_canny_have_no_model(tmp_path):
    seg = npc.segment(data.coins()[::4, ::4], "ward", 3)
    assert seg.model is None
    with pytest.raises(ValueError, match=r"^model: a 'ward' result has no model"):
        npc.save_model(seg, tmp_path / "m.json")


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda c: c.update(format="something else"), "not a napari-pixel-clusters model"),
        (lambda c: c.update(version=99), "version: 99 is not supported"),
        (lambda c: c.pop("parameters"), "missing parameters"),
        (lambda c: c.update(method="ward"), "method: 'ward' cannot label new images"),
        (
            lambda c: c["parameters"].update(centers=[[1, 2]]),
            r"parameters.centers: expected shape",
        ),
        (
            lambda c: c["parameters"].update(centers="import os"),
            "parameters.centers: expected a table",
        ),
        (lambda c: c["clusters"][0].update(component=7), r"clusters\[0\].component: expected"),
    ],
)
def test_a_tampered_model_file_is_a_clear_error(photo, tmp_path, tamper, message):
    path = npc.save_model(npc.segment(photo, "kmeans", 3), tmp_path / "model.json")
    content = json.loads(path.read_text())
    tamper(content)
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"^model file: {path}: {message}"):
        npc.load_model(path)


def test_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "model.json"
    path.write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(ValueError, match=r"^model file: "):
        npc.load_model(path)


def test_predict_plane_by_plane_labels_every_plane():
    coins = data.coins()
    model = npc.segment(coins, "kmeans", 3, random_state=0).model
    stack = np.stack([coins, coins[::-1], coins[:, ::-1]])
    steps = model.predict_steps(stack, per_plane=True)
    stages, result = collect_steps(steps)
    assert stages == [("plane", 0.0), ("plane", 1 / 3), ("plane", 2 / 3)]
    np.testing.assert_array_equal(result.labels, model.predict(stack).labels)
    np.testing.assert_array_equal(result.labels[2], model.predict(coins[:, ::-1]).labels)


def test_spatial_model_on_an_image_of_other_dimensions_is_a_clear_error():
    coins = data.coins()
    model = npc.segment(coins, "kmeans", 3, spatial_weight=1.0).model
    with pytest.raises(ValueError, match=r"^image: this model uses the features"):
        model.predict(np.stack([coins, coins]))
