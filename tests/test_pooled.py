"""One model for many images (core/pooled.py, ``segment_many``): against scikit-learn's
KMeans on the concatenated pixels, against ``segment`` on the concatenated image, per-image
tables, the shared model, clean-up, probabilities and bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from skimage import data
from sklearn.cluster import KMeans

import napari_pixel_clusters as npc
from conftest import collect_steps
from napari_pixel_clusters.core.cleanup import Cleanup
from napari_pixel_clusters.core.pooled import PooledImageSegmentation

PHOTO = np.ascontiguousarray(data.astronaut()[::4, ::4])  # 128 x 128 RGB
#: three pieces of one photo and another photo, of different sizes, uint8 RGB
PIECES = [PHOTO[:40], PHOTO[40:100, :96], np.ascontiguousarray(data.chelsea()[::6, ::6])]
#: pieces of the same width, to compare with segment on np.concatenate
ROWS = [PHOTO[:40], PHOTO[40:82], PHOTO[82:]]  # sides over 30: guessed RGB
GREY16 = data.camera()[::4, ::4].astype(np.uint16) * 257


def joined_labels(pooled) -> np.ndarray:
    return np.concatenate([result.labels for result in pooled.results])


def test_pooled_kmeans_is_scikit_learns_kmeans_on_the_concatenated_pixels():
    init = np.array([[0.9, 0.8, 0.75], [0.1, 0.05, 0.08], [0.7, 0.35, 0.3], [0.4, 0.2, 0.18]])
    pooled = npc.segment_many(PIECES, "kmeans", 4, color_space="rgb", init=init)
    pixels = np.concatenate([piece.reshape(-1, 3) for piece in PIECES]) / 255.0
    reference = KMeans(4, init=init, n_init=1, max_iter=300, tol=1e-4).fit(pixels)
    ends = np.cumsum([piece.shape[0] * piece.shape[1] for piece in PIECES])
    for result, piece, labels in zip(pooled.results, PIECES, np.split(reference.labels_, ends)):
        assert result.labels.shape == piece.shape[:2]
        np.testing.assert_array_equal(result.labels.ravel(), labels + 1)
    np.testing.assert_allclose(pooled.model.parameters["centers"], reference.cluster_centers_)
    assert pooled.score["inertia"] == pytest.approx(reference.inertia_, rel=1e-9)


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_pooled_is_segment_on_the_concatenated_image(method):
    pooled = npc.segment_many(ROWS, method, 4, color_space="lab", random_state=0)
    joined = npc.segment(np.concatenate(ROWS), method, 4, color_space="lab", random_state=0)
    np.testing.assert_array_equal(joined_labels(pooled), joined.labels)
    pd.testing.assert_frame_equal(pooled.table, joined.table)
    assert pooled.score == joined.score
    assert pooled.params["compression"].startswith("pooled: distinct values of 3 images")


@pytest.mark.parametrize(
    "images, options",
    [
        ([GREY16[:50], GREY16[50:]], {"standardize": True}),  # 16-bit grey, summed histograms
        ([ROWS[0] / 255.0, ROWS[1] / 255.0], {}),  # float: the pixels, compressed or not
    ],
    ids=["grey16", "float"],
)
def test_every_route_is_segment_on_the_concatenated_image(images, options):
    masks = [np.ones(image.shape[:2], bool) for image in images]
    masks[0][:10] = False
    pooled = npc.segment_many(images, "kmeans", 3, masks=masks, random_state=1, **options)
    joined = npc.segment(
        np.concatenate(images), "kmeans", 3, mask=np.concatenate(masks), random_state=1, **options
    )
    np.testing.assert_array_equal(joined_labels(pooled), joined.labels)
    assert not pooled.results[0].labels[:10].any()
    np.testing.assert_allclose(pooled.table["pixels"], joined.table["pixels"])
    assert pooled.results[0].params["mask"] == {
        "pixels_inside": int(masks[0].sum()),
        "pixels": masks[0].size,
    }


def test_each_image_has_its_own_counts_in_the_shared_numbering_and_colors():
    pooled = npc.segment_many(PIECES, "kmeans", 5, random_state=0)
    assert len(pooled) == 3 and pooled.n_clusters == 5
    tables = []
    for result, piece in zip(pooled.results, PIECES):
        table = result.table
        assert table["label"].tolist() == [1, 2, 3, 4, 5]
        counts = np.bincount(result.labels.ravel(), minlength=6)[1:]
        np.testing.assert_array_equal(table["pixels"], counts)
        for label, row in table.set_index("label").iterrows():
            inside = piece[result.labels == label]
            if len(inside):
                np.testing.assert_allclose(row["mean_R"], inside[:, 0].mean())
            else:
                assert np.isnan(row["mean_R"])
        assert table["color"].tolist() == pooled.table["color"].tolist()
        assert result.model is pooled.model
        assert result.params["pooled"]["images"] == 3
        tables.append(table)
    np.testing.assert_array_equal(pooled.table["pixels"], sum(t["pixels"] for t in tables))
    assert pooled.tables()["image"].tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_a_cluster_absent_from_an_image_keeps_its_row():
    dark = np.zeros((40, 40, 3), np.uint8)
    dark[:, 20:] = 40
    light = np.full((40, 40, 3), 230, np.uint8)
    light[:20] = 200
    pooled = npc.segment_many([dark, light], "kmeans", 4, random_state=0)
    first = pooled.results[0]
    assert first.n_clusters == 4 and first.labels.max() <= 4
    assert (first.table["pixels"] == 0).sum() == 2
    quantized = first.quantized()
    assert quantized.shape == dark.shape
    np.testing.assert_array_equal(np.unique(quantized), [0, 40])


def test_the_shared_model_labels_every_image_and_others_the_same_way(tmp_path):
    pooled = npc.segment_many(PIECES, "gmm", 4, color_space="lab", random_state=0)
    npc.save_model(pooled.model, tmp_path / "model.json")
    model = npc.load_model(tmp_path / "model.json")
    for result, piece in zip(pooled.results, PIECES):
        predicted = model.predict(piece)
        np.testing.assert_array_equal(predicted.labels, result.labels)
        np.testing.assert_allclose(predicted.probabilities(), result.probabilities(), atol=1e-7)
    assert [c["color"] for c in model.clusters] == pooled.table["color"].tolist()


def test_spatial_features_use_each_images_own_positions():
    pooled = npc.segment_many(PIECES[:2], "kmeans", 4, spatial_weight=0.5, random_state=0)
    assert pooled.params["compression"].startswith("pooled: 2 images; none")
    for result, piece in zip(pooled.results, PIECES[:2]):
        np.testing.assert_array_equal(pooled.model.predict(piece).labels, result.labels)


def test_clean_up_is_applied_to_each_image_and_kept_in_the_model():
    plain = npc.segment_many(PIECES, "kmeans", 4, random_state=0)
    cleaned = npc.segment_many(PIECES, "kmeans", 4, random_state=0, smooth=1, min_region=5)
    assert cleaned.model.cleanup == {"min_region": 5, "fill_holes": 0, "smooth": 1}
    for before, after, piece in zip(plain.results, cleaned.results, PIECES):
        np.testing.assert_array_equal(
            after.labels, Cleanup(min_region=5, smooth=1).apply(before.labels)
        )
        np.testing.assert_array_equal(cleaned.model.predict(piece).labels, after.labels)
        np.testing.assert_array_equal(
            after.table["pixels"], np.bincount(after.labels.ravel(), minlength=5)[1:]
        )
        assert after.params["cleanup_changed_pixels"] == np.count_nonzero(
            after.labels != before.labels
        )


def test_results_are_segmentations_that_write_like_any_other(tmp_path):
    pooled = npc.segment_many(ROWS, "gmm", 3, random_state=0)
    result = pooled.results[1]
    assert isinstance(result, PooledImageSegmentation) and isinstance(result, npc.Segmentation)
    folder = npc.write_result(result, tmp_path / "r", probabilities=True)
    saved = npc.read_result(folder)
    np.testing.assert_array_equal(saved.labels, result.labels)
    pd.testing.assert_frame_equal(saved.table, result.table, check_dtype=False)
    assert saved.model.to_dict()["parameters"] == pooled.model.to_dict()["parameters"]


def test_steps_report_progress_after_everything_is_checked():
    steps = npc.segment_many_steps(ROWS, "kmeans", 3, random_state=0)
    stages, pooled = collect_steps(steps)
    assert {"features", "fit", "labels"} <= {stage for stage, _ in stages}
    assert len(pooled.results) == 3
    bad = npc.segment_many_steps([ROWS[0], ROWS[1][..., 0]], "kmeans", 3)
    with pytest.raises(ValueError, match=r"^images: image 2 is grey"):
        next(bad)


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (PHOTO, {}, r"^images: expected a list of images"),
        ([], {}, r"^images: the list is empty"),
        ([PHOTO, PHOTO[..., 0]], {}, r"^images: image 2 is grey \(1 channel\(s\) of uint8\)"),
        ([PHOTO, PHOTO.astype(np.uint16)], {}, r"^images: image 2 is rgb .* of uint16\)"),
        ([PHOTO, np.zeros(5)], {}, r"^images: image 2 of 2: needs at least two spatial axes"),
        ([PHOTO, da.from_array(PHOTO)], {}, r"^images: image 2 of 2 is larger than memory"),
        ([PHOTO, PHOTO], {"masks": [None]}, r"^masks: expected a list of 2 masks"),
        ([PHOTO, PHOTO], {"masks": [None, np.ones(3, bool)]}, r"^masks: mask 2 of 2: has shape"),
        ([PHOTO], {"method": "ward"}, r"^method: 'ward' cannot fit one model .*'gmm'"),
        ([PHOTO], {"n_clusters": None}, r"^n_clusters: method 'kmeans' needs"),
        ([PHOTO], {"n_clusters": 0}, r"^n_clusters: must be at least 1"),
        ([np.zeros((8, 8), np.uint8)] * 2, {"n_clusters": 2}, r"^n_clusters: 2 clusters"),
        ([PHOTO], {"tol": -1}, r"^tol: must be at least 0"),
        (
            [PHOTO, np.stack([PHOTO] * 2)],
            {"spatial_weight": 1.0},
            r"^images: image 2 has 3 spatial axes",
        ),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(images, kwargs, message):
    kwargs = {"method": "kmeans", "n_clusters": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        npc.segment_many(images, **kwargs)


def test_input_images_are_not_modified():
    copies = [piece.copy() for piece in PIECES]
    npc.segment_many(PIECES, "kmeans", 3, random_state=0, smooth=1)
    for piece, copy in zip(PIECES, copies):
        np.testing.assert_array_equal(piece, copy)
