"""Posterior probabilities and uncertainty (core/probabilities.py, ``seg.probabilities()``,
``seg.uncertainty()``, the GMM's ``probabilities_rows``, ``write_result(probabilities=True)``):
against scikit-learn's ``GaussianMixture.predict_proba`` on the same features, in memory,
lazily, from saved models, and in result folders; the posteriors of merged and split
clusters (``merge_posteriors``, ``split_posteriors`` with the split GMM's
``predict_proba``) and their uncertainty."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from skimage import data
from sklearn.mixture import GaussianMixture

import napari_pixel_clusters as npc
from napari_pixel_clusters.core import recluster
from napari_pixel_clusters.core.export import read_result
from napari_pixel_clusters.core.features import build_features
from napari_pixel_clusters.core.probabilities import (
    merge_posteriors,
    split_posteriors,
    uncertainty_of_posteriors,
    uncertainty_of_rows,
)

PHOTO = np.ascontiguousarray(data.astronaut()[::8, ::8])  # 64 x 64 RGB
GREY16 = (data.camera()[::8, ::8].astype(np.uint16) * 257)[:, :48]


def sklearn_mixture(seg) -> GaussianMixture:
    """scikit-learn's GaussianMixture holding the fitted parameters of ``seg``."""
    fitted = seg.fitted
    kind = fitted["covariance_type"]
    mixture = GaussianMixture(len(fitted["means"]), covariance_type=kind)
    mixture.weights_ = np.asarray(fitted["weights"])
    mixture.means_ = np.asarray(fitted["means"])
    mixture.precisions_cholesky_ = np.asarray(fitted["precisions_cholesky"])
    return mixture


def pixel_features(seg) -> np.ndarray:
    """The fitted pipeline's features of every usable pixel, uncompressed, in C order."""
    pipeline = seg.model.pipeline
    return build_features(
        seg.image,
        color_space=pipeline["color_space"],
        spatial_weight=pipeline["spatial_weight"],
        standardize=pipeline["standardize"],
        compress=False,
        fixed=pipeline["constants"],
    ).X


def in_component_order(seg, probabilities: np.ndarray) -> np.ndarray:
    """(n_usable, k) columns in the mixture's component order (column i: component i)."""
    label_of = seg.model.labelling.label_of_component
    return probabilities[seg.image.mask][:, label_of - 1]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_probabilities_are_scikit_learns_predict_proba(covariance_type):
    seg = npc.segment(
        PHOTO, "gmm", 4, color_space="lab", covariance_type=covariance_type, random_state=0
    )
    probabilities = seg.probabilities()
    assert probabilities.shape == (64, 64, 4) and probabilities.dtype == np.float32
    expected = sklearn_mixture(seg).predict_proba(pixel_features(seg))
    np.testing.assert_allclose(in_component_order(seg, probabilities), expected, atol=1e-6)


@pytest.mark.parametrize(
    "image, options",
    [
        (GREY16, {"standardize": True}),
        (PHOTO, {"spatial_weight": 0.5}),
        (PHOTO.astype(np.float32) / 255, {"color_space": "hsv"}),
    ],
    ids=["grey16-standardized", "spatial", "float-hsv"],
)
def test_probabilities_match_scikit_learn_for_every_route(image, options):
    seg = npc.segment(image, "gmm", 3, random_state=0, **options)
    expected = sklearn_mixture(seg).predict_proba(pixel_features(seg))
    np.testing.assert_allclose(in_component_order(seg, seg.probabilities()), expected, atol=1e-6)


def test_columns_follow_the_labels_and_each_pixel_sums_to_one():
    mask = np.zeros(PHOTO.shape[:2], bool)
    mask[8:56, 4:60] = True
    image = PHOTO.astype(np.float64)
    image[0, :10] = np.nan  # pixels without data, outside the mask anyway
    image[20, 20] = np.nan  # and one inside
    seg = npc.segment(image, "gmm", 4, mask=mask, random_state=0)
    probabilities = seg.probabilities()
    labelled = seg.labels > 0
    assert labelled.sum() == mask.sum() - 1
    np.testing.assert_allclose(probabilities[labelled].sum(axis=1), 1.0, atol=1e-6)
    assert not probabilities[~labelled].any()  # no data: 0 in every column
    np.testing.assert_array_equal(probabilities[labelled].argmax(axis=1) + 1, seg.labels[labelled])


def test_uncertainty_is_margin_or_normalised_entropy_of_the_probabilities():
    seg = npc.segment(PHOTO, "gmm", 5, random_state=0)
    p = seg.probabilities().astype(np.float64)
    margin, entropy = seg.uncertainty(), seg.uncertainty("entropy")
    assert margin.dtype == entropy.dtype == np.float32 and margin.shape == PHOTO.shape[:2]
    np.testing.assert_allclose(margin, 1 - p.max(axis=-1), atol=1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    np.testing.assert_allclose(entropy, -terms.sum(axis=-1) / np.log(5), atol=1e-5)
    assert margin.min() >= 0 and margin.max() <= 1 - 1 / 5 + 1e-6  # max posterior >= 1/k
    assert entropy.min() >= 0 and entropy.max() <= 1


def test_uncertainty_of_rows_at_its_limits():
    certain, even = np.array([[1.0, 0.0, 0.0]]), np.full((1, 4), 0.25)
    assert uncertainty_of_rows(certain, "margin")[0] == 0
    assert uncertainty_of_rows(certain, "entropy")[0] == 0
    np.testing.assert_allclose(uncertainty_of_rows(even, "margin"), [0.75])
    np.testing.assert_allclose(uncertainty_of_rows(even, "entropy"), [1.0])
    assert uncertainty_of_rows(np.ones((2, 1)), "entropy").tolist() == [0.0, 0.0]  # k = 1


def test_one_cluster_is_certain_everywhere():
    seg = npc.segment(PHOTO, "gmm", 1, random_state=0)
    assert np.all(seg.probabilities() == 1)
    assert not seg.uncertainty().any() and not seg.uncertainty("entropy").any()


def test_probabilities_are_of_the_fit_before_the_clean_up():
    plain = npc.segment(PHOTO, "gmm", 4, random_state=0)
    cleaned = npc.segment(PHOTO, "gmm", 4, random_state=0, smooth=2)
    assert not np.array_equal(cleaned.labels, plain.labels)
    np.testing.assert_array_equal(cleaned.probabilities(), plain.probabilities())


def test_saved_models_give_the_same_probabilities(tmp_path):
    seg = npc.segment(PHOTO, "gmm", 4, color_space="lab", standardize=True, random_state=0)
    npc.save_model(seg, tmp_path / "model.json")
    model = npc.load_model(tmp_path / "model.json")
    predicted = model.predict(PHOTO)
    np.testing.assert_array_equal(predicted.labels, seg.labels)
    np.testing.assert_allclose(predicted.probabilities(), seg.probabilities(), atol=1e-7)
    other = np.ascontiguousarray(data.chelsea()[::6, ::6])
    on_other = model.predict(other)
    p = on_other.probabilities()
    np.testing.assert_array_equal(p.argmax(axis=-1) + 1, on_other.labels)
    features = build_features(
        on_other.image, "lab", standardize=True, compress=False, fixed=model.pipeline["constants"]
    ).X
    expected = sklearn_mixture(seg).predict_proba(features)
    label_of = model.labelling.label_of_component
    np.testing.assert_allclose(p.reshape(-1, 4)[:, label_of - 1], expected, atol=1e-6)


@pytest.mark.parametrize(
    "image, options",
    [
        (PHOTO, {}),  # histogram route: fitted on the distinct values of every chunk
        (PHOTO.astype(np.float32) / 255, {"spatial_weight": 0.3}),  # sample route, positions
    ],
    ids=["histogram", "sample-spatial"],
)
def test_lazy_probabilities_are_computed_chunk_by_chunk(image, options):
    lazy = npc.segment(
        da.from_array(image, chunks=(24, 20, 3)), "gmm", 3, random_state=0, **options
    )
    probabilities = lazy.probabilities()
    assert isinstance(probabilities, da.Array) and probabilities.dtype == np.float32
    assert probabilities.chunks == ((24, 24, 16), (20, 20, 20, 4), (3,))
    computed = probabilities.compute()
    np.testing.assert_array_equal(computed.argmax(axis=-1) + 1, np.asarray(lazy.labels))
    in_memory = lazy.model.predict(image)  # the same model on the whole image at once
    np.testing.assert_allclose(computed, in_memory.probabilities(), atol=1e-6)
    uncertain = lazy.uncertainty("entropy")
    assert isinstance(uncertain, da.Array) and uncertain.chunks == probabilities.chunks[:2]
    np.testing.assert_allclose(uncertain.compute(), in_memory.uncertainty("entropy"), atol=1e-6)


def test_lazy_probabilities_with_a_mask_are_zero_outside():
    mask = np.zeros(PHOTO.shape[:2], bool)
    mask[10:50, 5:40] = True
    lazy = npc.segment(da.from_array(PHOTO, chunks=(32, 32, 3)), "gmm", 3, mask=mask)
    eager = npc.segment(PHOTO, "gmm", 3, mask=mask)
    np.testing.assert_array_equal(np.asarray(lazy.labels), eager.labels)
    np.testing.assert_allclose(lazy.probabilities().compute(), eager.probabilities(), atol=1e-6)
    assert not lazy.uncertainty().compute()[~mask].any()


def test_methods_without_probabilities_say_so():
    with pytest.raises(ValueError, match=r"^method: 'kmeans' gives no probabilities.*'gmm'"):
        npc.segment(PHOTO, "kmeans", 3).probabilities()
    with pytest.raises(ValueError, match=r"^method: 'ward' gives no probabilities"):
        npc.segment(PHOTO, "ward", 3).uncertainty()
    with pytest.raises(ValueError, match=r"^method: 'kmeans' gives no probabilities"):
        npc.segment(da.from_array(PHOTO, chunks=32), "kmeans", 3).probabilities()
    with pytest.raises(ValueError, match=r"^kind: 'spread' is not a measure"):
        npc.segment(PHOTO, "gmm", 3).uncertainty("spread")


def test_every_predictor_with_probabilities_gives_rows_that_sum_to_one():
    for method in npc.METHODS.values():
        predictor = method.predictor
        if predictor is None or predictor.probabilities_rows is None:
            continue
        seg = npc.segment(PHOTO, method.name, 3, random_state=0)
        features = build_features(seg.image, "rgb")
        rows = predictor.probabilities_rows(seg.model.parameters, features)
        assert rows.shape == (len(features.X), 3)
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_array_equal(
            rows.argmax(axis=1), predictor.predict_rows(seg.model.parameters, features)
        )


def test_result_folders_hold_probabilities_and_uncertainty(tmp_path):
    seg = npc.segment(PHOTO, "gmm", 3, random_state=0)
    npc.write_result(seg, tmp_path / "r", probabilities=True, uncertainty="entropy")
    saved = read_result(tmp_path / "r")
    np.testing.assert_array_equal(saved.probabilities, np.moveaxis(seg.probabilities(), -1, 0))
    np.testing.assert_array_equal(saved.uncertainty, seg.uncertainty("entropy"))
    assert saved.params["probabilities"]["uncertainty"] == "entropy"
    assert saved.params["probabilities"]["labels"] == [1, 2, 3]
    plain = read_result(npc.write_result(seg, tmp_path / "plain"))
    assert plain.probabilities is None and plain.uncertainty is None


def test_lazy_result_folders_hold_probabilities_as_zarr(tmp_path):
    lazy = npc.segment(da.from_array(PHOTO, chunks=32), "gmm", 3, random_state=0)
    npc.write_result(lazy, tmp_path / "r", probabilities=True)
    saved = read_result(tmp_path / "r")
    assert isinstance(saved.probabilities, da.Array)
    np.testing.assert_array_equal(
        saved.probabilities.compute(), np.moveaxis(lazy.probabilities().compute(), -1, 0)
    )
    np.testing.assert_array_equal(saved.uncertainty.compute(), lazy.uncertainty().compute())


def test_a_method_without_probabilities_writes_nothing(tmp_path):
    seg = npc.segment(PHOTO, "kmeans", 3, random_state=0)
    with pytest.raises(ValueError, match=r"^method: 'kmeans' gives no probabilities"):
        npc.write_result(seg, tmp_path / "r", probabilities=True)
    with pytest.raises(ValueError, match=r"^kind: "):
        npc.write_result(
            npc.segment(PHOTO, "gmm", 3), tmp_path / "r", probabilities=True, uncertainty="x"
        )
    assert not list(tmp_path.iterdir())


def test_saved_probabilities_of_the_wrong_shape_are_refused(tmp_path):
    import tifffile

    seg = npc.segment(PHOTO, "gmm", 3, random_state=0)
    folder = npc.write_result(seg, tmp_path / "r", probabilities=True)
    tifffile.imwrite(
        folder / "probabilities.tif", np.zeros((3, 10, 10), np.float32), photometric="minisblack"
    )
    with pytest.raises(ValueError, match=r"^folder: .*probabilities.tif: probabilities: expected"):
        read_result(folder)
    tifffile.imwrite(
        folder / "probabilities.tif", np.zeros((3, 64, 64), np.uint8), photometric="minisblack"
    )
    with pytest.raises(ValueError, match=r"^folder: .*probabilities.tif: expected floats"):
        read_result(folder)


def test_a_model_labelling_a_lazy_image_gives_lazy_probabilities():
    seg = npc.segment(PHOTO, "gmm", 3, color_space="lab", random_state=0)
    predicted = seg.model.predict(da.from_array(PHOTO, chunks=(40, 40, 3)))
    probabilities = predicted.probabilities()
    assert isinstance(probabilities, da.Array)
    assert probabilities.chunks == ((40, 24), (40, 24), (3,))
    np.testing.assert_allclose(probabilities.compute(), seg.probabilities(), atol=1e-6)


# ------------------------------------------------------------------- edited clusters
def test_merged_posteriors_are_sums_and_rows_still_sum_to_one():
    seg = npc.segment(PHOTO, "gmm", 4, color_space="lab", random_state=0)
    posteriors = seg.probabilities()
    merged, columns = merge_posteriors(posteriors, [1, 2, 3, 4], [3, 1])
    assert columns == [2, 3, 4] and merged.dtype == np.float32
    np.testing.assert_allclose(merged[..., 1], posteriors[..., 0] + posteriors[..., 2], atol=1e-6)
    np.testing.assert_array_equal(merged[..., [0, 2]], posteriors[..., [1, 3]])
    np.testing.assert_allclose(merged.sum(axis=-1), 1.0, atol=1e-5)
    # the cluster axis first, as a probabilities layer holds them
    first, same = merge_posteriors(np.moveaxis(posteriors, -1, 0), [1, 2, 3, 4], [3, 1], axis=0)
    assert same == columns
    np.testing.assert_array_equal(first, np.moveaxis(merged, -1, 0))
    with pytest.raises(ValueError, match=r"^clusters: "):
        merge_posteriors(posteriors, [1, 2, 3, 4], [1, 5])
    with pytest.raises(ValueError, match=r"^columns: "):
        merge_posteriors(posteriors, [1, 2, 3], [1, 2])


def test_split_posteriors_are_the_cluster_times_the_split_gmms_predict_proba():
    """Part j of cluster c: p_c * q_j, q_j scikit-learn's predict_proba of the GMM fitted
    on c's pixels, at every pixel's features."""
    seg = npc.segment(PHOTO, "gmm", 3, color_space="lab", random_state=0)
    plan = recluster.plan_split_parts(seg.labels, seg.table, PHOTO, 2, 2, seg.params)
    q = recluster.part_posteriors(plan, PHOTO)
    assert q.shape == (64, 64, 2) and plan.labels_by_size == [2, 4]
    # by hand: the split's mixture on every pixel's features, in its components' order
    parts = plan.parts
    by_hand = sklearn_mixture(parts).predict_proba(pixel_features(parts.model.predict(PHOTO)))
    label_of = parts.model.labelling.label_of_component  # component -> the fit's label
    fit_label_of_part = [plan.part_labels.index(label) + 1 for label in plan.labels_by_size]
    expected_q = np.stack(
        [by_hand[:, list(label_of).index(fit)] for fit in fit_label_of_part], axis=-1
    )
    np.testing.assert_allclose(q.reshape(-1, 2), expected_q, atol=1e-5)
    p = seg.probabilities()
    split, columns = split_posteriors(p, [1, 2, 3], 2, q, plan.labels_by_size)
    assert columns == [1, 2, 3, 4] and split.dtype == np.float32
    np.testing.assert_allclose(split[..., 1], p[..., 1] * q[..., 0], atol=1e-6)
    np.testing.assert_allclose(split[..., 3], p[..., 1] * q[..., 1], atol=1e-6)
    np.testing.assert_array_equal(split[..., [0, 2]], p[..., [0, 2]])
    np.testing.assert_allclose(split.sum(axis=-1), 1.0, atol=1e-5)


def test_a_split_without_posteriors_gives_each_pixel_to_the_part_it_falls_in():
    seg = npc.segment(PHOTO, "kmeans", 3, color_space="lab", random_state=0)
    plan = recluster.plan_split_parts(seg.labels, seg.table, PHOTO, 1, 3, seg.params)
    q = recluster.part_posteriors(plan, PHOTO)
    predicted = plan.parts.model.predict(PHOTO).labels
    for column, label in enumerate(plan.labels_by_size):
        fit = plan.part_labels.index(label) + 1
        np.testing.assert_array_equal(q[..., column], predicted == fit)
    # inside the cluster the parts are the split's labels
    split_labels = recluster.split_cluster(seg.labels, seg.table, PHOTO, 1, 3, seg.params)[0]
    inside = seg.labels == 1
    hard = np.asarray(plan.labels_by_size)[q.argmax(axis=-1)]
    assert np.mean(hard[inside] == split_labels[inside]) > 0.99  # (clean-up aside)
    posteriors = np.full((64, 64, 3), 1 / 3, np.float32)
    split, _ = split_posteriors(posteriors, [1, 2, 3], 1, q, plan.labels_by_size)
    np.testing.assert_allclose(split.sum(axis=-1), 1.0, atol=1e-6)


def test_split_posteriors_check_their_labels():
    p = np.full((4, 4, 2), 0.5, np.float32)
    q = np.full((4, 4, 2), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"^part_labels: "):
        split_posteriors(p, [1, 2], 1, q, [1, 2])  # 2 is not new
    with pytest.raises(ValueError, match=r"^part_posteriors: "):
        split_posteriors(p, [1, 2], 1, q[..., :1], [1, 3])
    zero = np.zeros_like(q)  # no posterior: equal shares
    split, _ = split_posteriors(p, [1, 2], 1, zero, [1, 3])
    np.testing.assert_allclose(split[..., [0, 2]], 0.25)


def test_uncertainty_of_posteriors_is_the_results_own():
    seg = npc.segment(PHOTO, "gmm", 4, color_space="lab", random_state=0, mask=PHOTO[..., 0] > 40)
    for kind in ("margin", "entropy"):
        got = uncertainty_of_posteriors(np.moveaxis(seg.probabilities(), -1, 0), kind, axis=0)
        np.testing.assert_allclose(got, seg.uncertainty(kind), atol=1e-6)
        assert got.dtype == np.float32 and np.all(got[seg.labels == 0] == 0)
    blocks = uncertainty_of_posteriors(seg.probabilities(), "entropy", rows_per_block=100)
    np.testing.assert_allclose(blocks, seg.uncertainty("entropy"), atol=1e-6)
