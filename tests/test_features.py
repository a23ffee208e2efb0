"""Feature pipeline: distinct-value compression is exact, color spaces, scaling, masks."""

from __future__ import annotations

import os

import numpy as np
import pytest
from skimage import color

from conftest import forked_child_result
from napari_pixel_clusters.core import features
from napari_pixel_clusters.core.features import build_features, distinct_rows
from napari_pixel_clusters.core.image import read_image


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).integers(0, 256, (5000, 3)).astype(np.uint8),
        np.random.default_rng(1).integers(0, 65536, (5000, 1)).astype(np.uint16),
        np.random.default_rng(2).integers(-300, 300, (5000, 2)).astype(np.int16),
        np.random.default_rng(3).integers(0, 2**40, (500, 2)).astype(np.int64),
        np.round(np.random.default_rng(4).random((5000, 2)), 1),
    ],
    ids=["u8-rgb", "u16-grey", "i16-negative", "i64-wide", "float"],
)
def test_distinct_rows_match_numpy_unique(values):
    rows, counts, inverse = distinct_rows(values)
    expected_rows, expected_counts = np.unique(values, axis=0, return_counts=True)
    order = np.lexsort(rows.T[::-1])
    np.testing.assert_array_equal(rows[order], expected_rows)
    np.testing.assert_array_equal(counts[order], expected_counts)
    np.testing.assert_array_equal(rows[inverse], values)
    assert rows.dtype == values.dtype


def _rgb_photo_rows(channels: int) -> np.ndarray:
    from skimage import data

    image = data.astronaut()[::4, ::4]
    if channels == 4:
        alpha = np.full(image.shape[:2] + (1,), 255, dtype=np.uint8)
        alpha[:10] = 254
        image = np.concatenate([image, alpha], axis=-1)
    return image.reshape(-1, channels)


EXACT_CASES = {
    "u8-rgb-photo": _rgb_photo_rows(3),
    "u8-rgba-photo": _rgb_photo_rows(4),
    "u8-rgb-random": np.random.default_rng(5).integers(0, 256, (40_000, 3)).astype(np.uint8),
    "u16-grey": np.random.default_rng(6).integers(0, 65536, (3000, 1)).astype(np.uint16),
    "u16-rgb-wide": np.random.default_rng(7).integers(0, 65536, (3000, 3)).astype(np.uint16),
    "u16-rgb-narrow": np.random.default_rng(8).integers(1000, 1040, (3000, 3)).astype(np.uint16),
    "i64-negative": np.random.default_rng(9).integers(-50, 50, (3000, 2)),
    "i64-extremes": np.array([[-(2**63)], [2**63 - 1], [0], [-(2**63)]], dtype=np.int64),
    "u64-top": np.array([[2**64 - 1, 0], [2**64 - 2, 1], [2**64 - 1, 0]], dtype=np.uint64),
    "i8": np.random.default_rng(10).integers(-128, 128, (3000, 2)).astype(np.int8),
    "bool": np.random.default_rng(11).random((3000, 3)) > 0.5,
    "constant-rgb": np.full((5000, 3), 7, dtype=np.uint8),
    "one-pixel-rgb": np.array([[1, 2, 3]], dtype=np.uint8),
    "one-pixel-u16": np.array([[65535]], dtype=np.uint16),
    "one-pixel-i64": np.array([[-5, 5]], dtype=np.int64),
    "strided-rgb": np.random.default_rng(12).integers(0, 256, (3000, 4)).astype(np.uint8)[:, 1:],
}


@pytest.mark.parametrize("values", EXACT_CASES.values(), ids=EXACT_CASES.keys())
def test_distinct_rows_equal_numpy_unique_exactly(values):
    """Same rows in the same order, the same counts and the same inverse (values and
    dtype int32) as np.unique, whichever route (bitset, sort) is taken."""
    rows, counts, inverse = distinct_rows(values)
    expected_rows, expected_inverse, expected_counts = np.unique(
        values, axis=0, return_inverse=True, return_counts=True
    )
    assert rows.dtype == values.dtype and counts.dtype == np.float64
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(counts, expected_counts)
    assert inverse.dtype == np.int32
    np.testing.assert_array_equal(inverse, expected_inverse.reshape(-1))


@pytest.mark.parametrize("values", EXACT_CASES.values(), ids=EXACT_CASES.keys())
def test_bitset_rows_equal_the_sorting_route(values, monkeypatch):
    bitset = features._bitset_rows(values)
    if values is EXACT_CASES["i64-extremes"] or values is EXACT_CASES["u16-rgb-wide"]:
        assert bitset is None  # keys too wide for a bitset: sorted instead
        return
    assert bitset is not None
    monkeypatch.setattr(features, "_bitset_rows", lambda values: None)
    for got, expected in zip(bitset, distinct_rows(values)):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_bitset_rows_split_between_threads_stay_exact(monkeypatch):
    from napari_pixel_clusters.core import _distinct_loops

    monkeypatch.setattr(_distinct_loops, "PART_MIN_ROWS", 1000)
    monkeypatch.setattr(_distinct_loops, "_n_cores", lambda: 3)
    assert len(_distinct_loops._parts(10_000)) == 3
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgb-random"])
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["i64-negative"])


KEPT_BITSET_CASES = ["u8-rgb-photo", "u16-grey", "u8-rgb-random", "bool", "i64-negative"]


def test_kept_bitsets_are_reused_and_left_all_zero():
    """Bitsets of up to 2**24 keys are kept between calls (no fresh pages to fault in):
    every call leaves them all zero, so the next image's rows are exact."""
    from napari_pixel_clusters.core import _distinct_loops

    for name in KEPT_BITSET_CASES + KEPT_BITSET_CASES[::-1]:
        test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES[name])
        kept = _distinct_loops._SCRATCH["bitsets"]
        assert not kept.any()
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgb-photo"])
    assert _distinct_loops._SCRATCH["bitsets"] is kept  # the same buffer, not a new one


def test_bitsets_too_large_to_keep_or_in_use_are_new(monkeypatch):
    from napari_pixel_clusters.core import _distinct_loops

    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgb-photo"])
    kept = _distinct_loops._SCRATCH["bitsets"]
    monkeypatch.setattr(_distinct_loops, "SCRATCH_MAX_WORDS", 2**10)  # 2**16 keys kept
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgba-photo"])
    with _distinct_loops._SCRATCH_LOCK:  # another thread's call: new bitsets
        test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgb-random"])
    assert _distinct_loops._SCRATCH["bitsets"] is kept and not kept.any()


def test_a_failed_call_drops_the_kept_bitsets(monkeypatch):
    from napari_pixel_clusters.core import _distinct_loops

    def fail(*args):
        raise MemoryError("no room for the rows")

    with monkeypatch.context() as patch:
        patch.setattr(_distinct_loops, "present_rows", fail)
        with pytest.raises(MemoryError):
            distinct_rows(EXACT_CASES["u8-rgb-random"])  # its bits stay set
    assert "bitsets" not in _distinct_loops._SCRATCH
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgb-random"])
    assert not _distinct_loops._SCRATCH["bitsets"].any()


def test_threads_of_the_parts_are_kept(monkeypatch):
    from napari_pixel_clusters.core import _distinct_loops

    monkeypatch.setattr(_distinct_loops, "PART_MIN_ROWS", 1000)
    pool = _distinct_loops._pool()
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgb-random"])
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u16-rgb-narrow"])
    assert _distinct_loops._pool() is pool


def _distinct_rows_in_child(queue):
    values = EXACT_CASES["u8-rgb-random"]
    rows, counts, inverse = distinct_rows(values)
    queue.put(bool(np.array_equal(rows[inverse], values) and counts.sum() == len(values)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_process_starts_threads_of_its_own(monkeypatch):
    """The kept threads do not survive a fork: the child makes its own (else its parts
    would wait forever for threads that are gone)."""
    from napari_pixel_clusters.core import _distinct_loops

    monkeypatch.setattr(_distinct_loops, "PART_MIN_ROWS", 1000)
    monkeypatch.setattr(_distinct_loops, "_n_cores", lambda: 2)
    test_distinct_rows_equal_numpy_unique_exactly(EXACT_CASES["u8-rgb-random"])  # threads
    assert forked_child_result(_distinct_rows_in_child) is True


def test_wide_uint16_channels_take_the_bitset_of_their_range():
    values = EXACT_CASES["u16-rgb-narrow"]  # 48 bits of dtype range, 18 bits of values
    assert features.bitset_max_bits(len(values)) < 48
    assert features._bitset_rows(values) is not None


def test_large_key_range_uses_unique_and_stays_exact(monkeypatch):
    monkeypatch.setattr(features, "BINCOUNT_MAX_KEYS", 10)
    monkeypatch.setattr(features, "_bitset_rows", lambda values: None)
    values = np.random.default_rng(0).integers(0, 50, (300, 3)).astype(np.uint8)
    rows, counts, inverse = distinct_rows(values)
    np.testing.assert_array_equal(rows[inverse], values)
    assert counts.sum() == 300


def test_color_conversion_runs_on_distinct_values_and_matches_per_pixel(photo):
    feature_set = build_features(read_image(photo), color_space="lab")
    assert feature_set.weights is not None and len(feature_set.X) < photo.shape[0] * photo.shape[1]
    per_pixel = color.rgb2lab(photo / 255.0).reshape(-1, 3)
    np.testing.assert_allclose(feature_set.to_pixels(feature_set.X), per_pixel, atol=1e-12)
    assert feature_set.n_pixels == len(per_pixel)


@pytest.mark.parametrize("space", ["rgb", "hsv"])
def test_standardized_features_are_zscores_of_the_pixels(photo, space):
    feature_set = build_features(read_image(photo), color_space=space, standardize=True)
    pixels = feature_set.to_pixels(feature_set.X)
    np.testing.assert_allclose(pixels.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(pixels.std(axis=0), 1, atol=1e-9)


def test_spatial_features_have_the_requested_weight(photo):
    feature_set = build_features(read_image(photo), spatial_weight=2.0)
    assert feature_set.inverse is None and feature_set.names == ["R", "G", "B", "y", "x"]
    color_var = feature_set.X[:, :3].var(axis=0).mean()
    coord_var = feature_set.X[:, 3:].var(axis=0).mean()
    assert coord_var / color_var == pytest.approx(4.0)


def test_mostly_distinct_float_images_are_not_compressed():
    image = np.random.default_rng(0).random((50, 50))
    feature_set = build_features(read_image(image))
    assert feature_set.weights is None
    assert feature_set.compression.startswith("none: float pixels are mostly distinct")


def test_float_image_with_few_values_is_compressed():
    image = np.random.default_rng(0).integers(0, 10, (50, 50)) / 10.0
    feature_set = build_features(read_image(image))
    assert len(feature_set.X) == 10 and feature_set.weights.sum() == 2500


def test_rgba_alpha_is_a_mask_not_a_feature():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:20, :, 3] = 255
    data = read_image(rgba)
    assert data.kind == "rgba" and data.mask.sum() == 800
    assert build_features(data).X.shape[1] == 3


@pytest.fixture(scope="module")
def ihc():
    """A corner of scikit-image's immunohistochemistry sample (hematoxylin + DAB)."""
    from skimage import data

    return data.immunohistochemistry()[:96, :96]


@pytest.mark.parametrize(
    "space, stains, reference",
    [
        ("hed", ["hematoxylin", "eosin", "DAB"], color.rgb2hed),
        (
            "hdab",
            ["hematoxylin", "DAB", "residual"],
            lambda rgb: color.separate_stains(rgb, color.hdx_from_rgb),
        ),
    ],
)
def test_stain_spaces_match_skimage_on_the_same_pixels(ihc, space, stains, reference):
    feature_set = build_features(read_image(ihc), color_space=space)
    assert feature_set.names == stains
    assert feature_set.compression.startswith("distinct values")
    assert len(feature_set.X) < ihc.shape[0] * ihc.shape[1]
    expected = reference(ihc).reshape(-1, 3)
    np.testing.assert_allclose(feature_set.to_pixels(feature_set.X), expected, rtol=0, atol=1e-12)
    assert expected.max() > 0  # the stains are there, not all clipped to zero


def test_stain_spaces_are_color_spaces_of_every_entry_point():
    from napari_pixel_clusters.core.registry import FEATURE_PARAMS

    assert {"hed", "hdab", "stains"} <= set(features.COLOR_SPACES)
    choices = next(p.choices for p in FEATURE_PARAMS if p.name == "color_space")
    assert {"hed", "hdab", "stains"} <= set(choices)  # the CLI's --color-space, the widget


def test_kmeans_in_hed_matches_sklearn_on_rgb2hed_pixels(ihc):
    from sklearn.cluster import KMeans

    import napari_pixel_clusters as npc

    X = color.rgb2hed(ihc).reshape(-1, 3)
    init = X[np.linspace(0, len(X) - 1, 3).astype(int)]
    reference = KMeans(n_clusters=3, init=init, n_init=1).fit(X)
    seg = npc.segment(ihc, "kmeans", 3, color_space="hed", init=init)
    np.testing.assert_array_equal(seg.labels.ravel(), reference.labels_ + 1)
    assert seg.score["inertia"] == pytest.approx(reference.inertia_, rel=1e-9)
    assert seg.params["color_space"] == "hed"
    import dask.array as da

    lazy = npc.segment(
        da.from_array(ihc, chunks=(48, 48, 3)), "kmeans", 3, color_space="hed", init=init
    )
    np.testing.assert_array_equal(np.asarray(lazy.labels), seg.labels)  # per chunk, same labels


@pytest.mark.parametrize("space", ["hed", "hdab"])
def test_stain_space_model_predicts_the_same_labels_after_save_and_load(ihc, tmp_path, space):
    import napari_pixel_clusters as npc

    seg = npc.segment(ihc, "kmeans", 3, color_space=space, random_state=0)
    model = npc.load_model(npc.save_model(seg, tmp_path / "model.json"))
    assert model.pipeline["color_space"] == space
    np.testing.assert_array_equal(model.predict(ihc).labels, seg.labels)
    flipped = ihc[::-1]  # another image: the nearest center in stain space
    centers = np.asarray(model.parameters["centers"])
    X = build_features(read_image(flipped), color_space=space)
    nearest = ((X.X[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1) + 1
    np.testing.assert_array_equal(model.predict(flipped).labels.ravel(), X.to_pixels(nearest))


@pytest.mark.parametrize("space", ["hed", "hdab"])
def test_slic_clusters_stain_concentrations(ihc, space):
    from skimage.segmentation import slic

    import napari_pixel_clusters as npc

    seg = npc.segment(ihc, "slic", color_space=space, n_segments=20, compactness=0.1)
    stains = (
        color.rgb2hed(ihc) if space == "hed" else color.separate_stains(ihc, color.hdx_from_rgb)
    )
    reference = slic(stains, n_segments=20, compactness=0.1, convert2lab=False, start_label=1)
    np.testing.assert_array_equal(seg.labels, reference)


def test_fixed_stain_vectors_are_used_and_never_estimated_again(ihc):
    """A fitted model's vectors (``fixed``) win over 'estimate'; estimates are made on the
    weighted distinct values (the same as on every pixel)."""
    data = read_image(ihc)
    recorded = {"names": ["H", "D", "r"], "vectors": np.eye(3).tolist(), "estimated": True}
    fixed = build_features(
        data, color_space="stains", stain_vectors="estimate", fixed={"stain_vectors": recorded}
    )
    assert fixed.names == ["H", "D", "r"]
    assert fixed.standardization["stain_vectors"] == recorded
    np.testing.assert_allclose(
        fixed.to_pixels(fixed.X), color.separate_stains(ihc, np.eye(3)).reshape(-1, 3), atol=1e-12
    )
    compressed = build_features(data, color_space="stains", stain_vectors="estimate")
    per_pixel = build_features(
        data, color_space="stains", stain_vectors="estimate", compress=False
    )
    assert compressed.weights is not None and per_pixel.weights is None
    np.testing.assert_allclose(
        compressed.standardization["stain_vectors"]["vectors"],
        per_pixel.standardization["stain_vectors"]["vectors"],
        atol=1e-12,
    )


@pytest.mark.parametrize("n_columns", [2, 3, 4, 5])
@pytest.mark.parametrize("weights", ["counts", "fractional", None])
def test_weighted_mean_var_has_the_bits_of_numpy_average(n_columns, weights):
    """The compiled statistics sum the rows one after the other, as numpy does along
    axis 0 of a C-ordered array: the same bits as np.average and np.var, which the
    k-means tolerance (scikit-learn's variance of the data) depends on."""
    rng = np.random.default_rng(n_columns)
    X = rng.random((50_000, n_columns)) * 37.0 - 5.0
    w = {
        "counts": rng.integers(1, 500, len(X)).astype(np.float64),
        "fractional": rng.random(len(X)) + 0.01,
        None: None,
    }[weights]
    assert features._sums_row_after_row(X, w)
    mean, var = features.weighted_mean_var(X, w)
    expected_mean = np.average(X, axis=0, weights=w)
    np.testing.assert_array_equal(mean, expected_mean)
    np.testing.assert_array_equal(var, np.average((X - expected_mean) ** 2, axis=0, weights=w))
    np.testing.assert_array_equal(features.column_variance(X), np.var(X, axis=0))
    # a pairwise sum of the columns would differ: the test can tell the two apart
    assert not np.array_equal(X.sum(axis=0), [np.sum(X[:, c].copy()) for c in range(n_columns)])


def test_column_statistics_of_other_layouts_are_numpy_s():
    X = np.random.default_rng(0).random((10_000, 3))
    for other in (np.asfortranarray(X), X[:, :1], X[:100], X.astype(np.float32)):
        assert not features._sums_row_after_row(other, None)
        np.testing.assert_array_equal(features.column_variance(other), np.var(other, axis=0))


def test_labels_to_pixels_by_the_compiled_lookup(photo):
    feature_set = build_features(read_image(photo))
    row_labels = (np.arange(len(feature_set.X)) % 7).astype(np.int32)
    assert feature_set.inverse is not None and feature_set.inverse.dtype == np.int32
    got = feature_set.to_pixels(row_labels)
    np.testing.assert_array_equal(got, row_labels[feature_set.inverse])
    assert got.dtype == np.int32
