"""Models (core/model.py): label other images the same way, saved and loaded as JSON that
round-trips exactly and never overwrites what is not a model. The checks of a model's
fields are in test_model_check.py, the reading of files in test_files.py."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from skimage import data

import napari_pixel_clusters as npc
from conftest import THREE_REGIONS, collect_steps, no_leftovers
from napari_pixel_clusters.core.methods import METHODS
from napari_pixel_clusters.core.methods._pointwise import run_on_rows
from napari_pixel_clusters.core.methods._pointwise_lazy import lazy_run_on_rows
from napari_pixel_clusters.core.registry import Method, Predictor, RowFit


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
    centers = np.asarray(seg.model.parameters["centers"])
    nearest = pairwise_distances(lab, centers).argmin(axis=1) + 1
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


# ------------------------------------------------------------------ a method added later
def _nearest(X: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    return np.argmin(((X[:, None, :] - anchors[None]) ** 2).sum(axis=2), axis=1)


def _fit_anchors(feature_set, n_clusters, params, random_state):
    """k distinct rows drawn at random; every row joins the nearest (a generator)."""
    yield "fit", 0.5
    rng = np.random.default_rng(random_state)
    anchors = feature_set.X[rng.choice(len(feature_set.X), n_clusters, replace=False)]
    return RowFit(labels=_nearest(feature_set.X, anchors), score={}, model={"anchors": anchors})


def _predict_anchors(parameters, feature_set):
    return _nearest(feature_set.X, np.asarray(parameters["anchors"], dtype=np.float64))


_ANCHORS_PREDICTOR = Predictor(components_key="anchors", predict_rows=_predict_anchors)
ANCHORS = Method(
    name="anchors",
    title="Nearest anchor",
    summary="Every pixel joins the nearest of k pixel values drawn at random.",
    params=(),
    run=run_on_rows(_fit_anchors),
    lazy_run=lazy_run_on_rows(_fit_anchors, _ANCHORS_PREDICTOR),
    fit_rows=_fit_anchors,
    predictor=_ANCHORS_PREDICTOR,
)


@pytest.fixture
def anchors_method(monkeypatch):
    """The method registered as a module under core/methods/ would register it."""
    monkeypatch.setitem(METHODS, "anchors", ANCHORS)


def test_a_new_point_wise_method_predicts_saves_and_loads_its_model(
    anchors_method, photo, tmp_path
):
    seg = npc.segment(photo, "anchors", 4, random_state=0)
    assert seg.n_clusters == 4
    np.testing.assert_array_equal(seg.model.predict(photo).labels, seg.labels)
    path = npc.save_model(seg, tmp_path / "anchors.json")
    model = npc.load_model(path)
    assert model.method == "anchors" and model.n_components == 4
    np.testing.assert_array_equal(model.predict(photo).labels, seg.labels)
    lazy = npc.segment(da.from_array(photo, chunks=(48, 40, 3)), "anchors", 4, random_state=0)
    np.testing.assert_array_equal(lazy.labels.compute(), seg.labels)
    np.testing.assert_array_equal(lazy.model.predict(photo).labels, seg.labels)


def test_a_new_method_s_model_file_is_checked_through_its_predictor(
    anchors_method, photo, tmp_path
):
    path = npc.save_model(npc.segment(photo, "anchors", 3), tmp_path / "anchors.json")
    content = json.loads(path.read_text())
    content["parameters"]["anchors"] = [[1.0, 2.0]]
    path.write_text(json.dumps(content))
    with pytest.raises(
        ValueError, match=rf"^model file: {path}: parameters.anchors: expected shape"
    ):
        npc.load_model(path)
    content["method"] = "ward"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="use 'kmeans', 'gmm' or 'anchors'"):
        npc.load_model(path)


@pytest.mark.parametrize("method", ["kmeans", "gmm", "spatial"])
def test_good_model_files_round_trip_exactly(three_region_results, tmp_path, method):
    seg = three_region_results[method]
    path = npc.save_model(seg, tmp_path / "model.json")
    model = npc.load_model(path)
    assert model.to_dict() == json.loads(json.dumps(seg.model.to_dict()))
    np.testing.assert_array_equal(model.predict(THREE_REGIONS).labels, seg.labels)
    np.testing.assert_array_equal(
        model.predict(THREE_REGIONS[::-1]).labels, seg.model.predict(THREE_REGIONS[::-1]).labels
    )


def test_save_model_does_not_overwrite_without_asking(small_results, tmp_path):
    path = npc.save_model(small_results[0], tmp_path / "model.json", overwrite=True)  # new: fine
    before = path.read_bytes()
    with pytest.raises(
        ValueError,
        match=f"^path: {path} exists already; choose another file "
        r"or pass overwrite=True\.$",
    ):
        npc.save_model(small_results[1], path)
    assert path.read_bytes() == before
    npc.save_model(small_results[1], path, overwrite=True)
    assert npc.load_model(path).n_components == 2
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize("content", [b"my notes", b'{"format": "something else"}', b""])
def test_save_model_never_overwrites_another_file(small_results, tmp_path, content):
    path = tmp_path / "notes.json"
    path.write_bytes(content)
    with pytest.raises(
        ValueError,
        match=f"^path: {path} is not a napari-pixel-clusters model "
        "file, so it is not replaced even with "
        "overwrite=True",
    ):
        npc.save_model(small_results[0], path, overwrite=True)
    assert path.read_bytes() == content
    assert no_leftovers(tmp_path)


def test_a_saved_model_labels_a_dask_image_lazily(photo, tmp_path):
    path = npc.save_model(npc.segment(photo[:64], "gmm", 3, random_state=0), tmp_path / "m")
    model = npc.load_model(path)
    lazy = da.from_array(photo, chunks=(50, 60, 3))
    stages, result = collect_steps(model.predict_steps(lazy))
    expected = model.predict(photo)
    assert isinstance(result.labels, da.Array)
    assert [s for s, _ in stages].count("counting") == -(-lazy.npartitions // 16)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    pd.testing.assert_frame_equal(result.table, expected.table)


# ------------------------------------------------------------------ stain vectors
def _stained(first, second, seed):
    """A synthetic brightfield image of two stains (see test_stains.synthetic)."""
    rng = np.random.default_rng(seed)
    amounts = rng.uniform(0, 1, (64, 64, 2)) * (rng.random((64, 64, 1)) < 0.7)
    density = amounts[..., :1] * first + amounts[..., 1:] * second
    return np.clip(255 * 10.0**-density + rng.normal(0, 1, density.shape), 0, 255).astype(np.uint8)


def test_a_stains_model_reuses_its_estimated_vectors_and_never_estimates_again(tmp_path):
    """Fitted with 'estimate' on image A, the model labels image B with A's vectors: the
    labels of B's pixels (with A's vectors, via separate_stains) at A's nearest centers,
    as segment on B with A's recorded vectors gives the features; B's own estimate
    would differ."""
    from skimage import color

    a = _stained(color.rgb_from_hed[0], color.rgb_from_hed[1], 0)  # H&E
    b = _stained(color.rgb_from_hdx[0], color.rgb_from_hdx[1], 1)  # H-DAB: other vectors
    seg = npc.segment(a, "kmeans", 3, color_space="stains", stain_vectors="estimate")
    recorded = seg.params["stain_vectors"]
    assert recorded["estimated"] is True and recorded["names"][2] == "residual"
    model = npc.load_model(npc.save_model(seg, tmp_path / "model.json"))
    assert model.pipeline["constants"]["stain_vectors"] == recorded
    predicted = model.predict(b)
    assert predicted.params["stain_vectors"] == recorded
    np.testing.assert_array_equal(seg.model.predict(b).labels, predicted.labels)
    vectors = np.array(recorded["vectors"])
    features = color.separate_stains(b, np.linalg.inv(vectors)).reshape(-1, 3)
    centers = np.array(model.parameters["centers"])
    nearest = ((features[:, None] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(
        predicted.labels.ravel(), model.labelling.label_of_component[nearest]
    )
    explicit = npc.segment(b, "kmeans", 3, color_space="stains", stain_vectors=recorded)
    assert explicit.params["stain_vectors"]["vectors"] == recorded["vectors"]
    own = npc.segment(b, "kmeans", 3, color_space="stains", stain_vectors="estimate")
    assert own.params["stain_vectors"]["vectors"] != recorded["vectors"]  # B's differ
    lazy = model.predict(da.from_array(b, chunks=(32, 32, 3)))  # chunk by chunk: the same
    np.testing.assert_array_equal(np.asarray(lazy.labels), predicted.labels)


def test_a_model_without_stain_vectors_is_saved_as_before(photo, tmp_path):
    seg = npc.segment(photo, "kmeans", 3, color_space="lab", standardize=True)
    content = json.loads(npc.save_model(seg, tmp_path / "model.json").read_text())
    assert set(content["features"]["constants"]) == {"mean", "scale"}
    assert "stain_vectors" not in npc.load_model(tmp_path / "model.json").predict(photo).params
