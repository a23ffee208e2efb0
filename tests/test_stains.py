"""Stain vectors (core/stains.py): user vectors against scikit-image's color
deconvolution on the same pixels, Macenko's estimate on synthetic images made from
known vectors, and color space "stains" through every route (distinct values, lazy,
Ward, SLIC, sweeps, masks)."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
from skimage import color, data

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.features import build_features
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.stains import (
    check_stain_vectors,
    estimate_stain_vectors,
    parse_stain_vectors,
    read_stain_vectors,
    weighted_percentiles,
)

HEMATOXYLIN, EOSIN, DAB = color.rgb_from_hed  # Ruifrok & Johnston's vectors
UNIT_HED = color.rgb_from_hed / np.linalg.norm(color.rgb_from_hed, axis=1, keepdims=True)
#: Macenko's estimate on the synthetic images must find the vectors within this angle.
MAX_ANGLE_DEGREES = 2.0


def angle(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees between two directions."""
    cosine = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def synthetic(first: np.ndarray, second: np.ndarray, seed: int = 0, n: int = 96) -> np.ndarray:
    """An 8-bit RGB image made from two known stain vectors (Beer-Lambert): a quarter of
    pure first stain, a quarter of pure second stain, a quarter of mixtures, a quarter of
    faint background; random concentrations, noise of one grey level."""
    rng = np.random.default_rng(seed)
    half = n // 2
    amounts = np.zeros((n, n, 2))
    amounts[:half, :half, 0] = rng.uniform(0.2, 1.0, (half, half))
    amounts[:half, half:, 1] = rng.uniform(0.2, 1.0, (half, half))
    amounts[half:, :half] = rng.uniform(0.1, 0.8, (half, half, 2))
    amounts[half:, half:] = rng.uniform(0.0, 0.02, (half, half, 2))
    density = amounts[..., :1] * first + amounts[..., 1:] * second
    rgb = 255 * 10.0**-density + rng.normal(0, 1.0, density.shape)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ihc():
    """A corner of scikit-image's immunohistochemistry sample (hematoxylin + DAB)."""
    return data.immunohistochemistry()[:96, :96]


# ------------------------------------------------------------------ user vectors
def test_user_vectors_give_separate_stains_on_the_same_pixels(ihc):
    feature_set = build_features(read_image(ihc), color_space="stains", stain_vectors=UNIT_HED)
    expected = color.separate_stains(ihc, np.linalg.inv(UNIT_HED)).reshape(-1, 3)
    np.testing.assert_allclose(feature_set.to_pixels(feature_set.X), expected, rtol=0, atol=1e-12)
    assert feature_set.compression.startswith("distinct values")
    assert feature_set.names == ["stain 1", "stain 2", "stain 3"]
    recorded = feature_set.standardization["stain_vectors"]
    assert recorded == {
        "names": feature_set.names,
        "vectors": UNIT_HED.tolist(),
        "estimated": False,
    }


def test_hed_vectors_give_hed_concentrations_scaled_by_the_rows_lengths(ihc):
    """Rows are used at unit length (Ruifrok & Johnston; QuPath): scikit-image's
    rgb_from_hed rows are 0.998, 0.999 and 1.003 long, so "stains" with them gives
    rgb2hed's concentrations times those lengths (exactly, to rounding)."""
    lengths = np.linalg.norm(color.rgb_from_hed, axis=1)
    feature_set = build_features(
        read_image(ihc), color_space="stains", stain_vectors=color.rgb_from_hed
    )
    hed = color.rgb2hed(ihc).reshape(-1, 3)
    np.testing.assert_allclose(
        feature_set.to_pixels(feature_set.X), hed * lengths, rtol=0, atol=1e-12
    )
    assert hed.max() > 0.05  # stains present, not all clipped to zero


def test_two_vectors_get_the_normalised_cross_product_as_residual(ihc):
    named = {"hematoxylin": HEMATOXYLIN.tolist(), "DAB": DAB.tolist()}
    record = check_stain_vectors(named)
    rows = np.array(record["vectors"])
    cross = np.cross(HEMATOXYLIN, DAB)
    np.testing.assert_allclose(rows[2], cross / np.linalg.norm(cross), atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-15)
    assert record["names"] == ["hematoxylin", "DAB", "residual"]
    unnamed = check_stain_vectors(np.array([HEMATOXYLIN, DAB]))
    assert unnamed["names"] == ["stain 1", "stain 2", "residual"]
    assert unnamed["vectors"] == record["vectors"]
    seg = npc.segment(ihc, "kmeans", 3, color_space="stains", stain_vectors=named)
    assert seg.params["features"] == ["hematoxylin", "DAB", "residual"]
    assert seg.params["stain_vectors"] == record
    expected = color.separate_stains(ihc, np.linalg.inv(rows)).reshape(-1, 3)
    again = npc.segment(  # the recorded vectors, passed back: the same run
        ihc, "kmeans", 3, color_space="stains", stain_vectors=seg.params["stain_vectors"]
    )
    np.testing.assert_array_equal(again.labels, seg.labels)
    centers = np.array(seg.model.parameters["centers"])  # each pixel at its nearest center
    nearest = ((expected[:, None] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(
        seg.labels.ravel(), seg.model.labelling.label_of_component[nearest]
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ([[1, 2, 3]], r"shape \(3, 3\) or \(2, 3\).*got shape \(1, 3\)"),
        (np.ones((3, 4)), r"got shape \(3, 4\)"),
        ([[0.6, np.nan, 0.3], [0.1, 0.9, 0.1]], r"finite"),
        ([[0.6, 0.7, 0.3], [0, 0, 0]], r"row 2 has no direction"),
        ([[0.6, 0.7, -0.3], [0.1, 0.9, 0.1]], r"row 1 has a negative optical density"),
        ([[0.6, 0.7, 0.3], [1.2, 1.4, 0.6]], r"parallel"),
        ([[1, 0, 0], [0, 1, 0], [1, 1, 0]], r"linearly dependent"),
        ("hematoxylin", r"expected 'estimate'"),
        ([["a", "b", "c"], [1, 2, 3]], r"table of numbers"),
        ({"H": [0.6, 0.7, 0.3]}, r"2 or 3 stains"),
        ({"x": [0.6, 0.7, 0.3], "E": [0.1, 0.9, 0.1]}, r"'x' cannot name a stain"),
        ({"names": ["H", "H"], "vectors": [[0.6, 0.7, 0.3], [0.1, 0.9, 0.1]]}, r"differ"),
        ({"names": ["H", "E"], "vectors": color.rgb_from_hed}, r"2 names for 3 vectors"),
        (np.array([[1 + 1j, 0, 0], [0, 1, 0]]), r"table of numbers"),
    ],
)
def test_bad_stain_vectors_are_refused_naming_the_argument(ihc, value, message):
    with pytest.raises(ValueError, match=rf"^stain_vectors: .*{message}"):
        npc.segment(ihc, "kmeans", 3, color_space="stains", stain_vectors=value)


def test_a_small_negative_from_rounding_is_allowed_and_a_residual_row_may_have_any_sign():
    record = check_stain_vectors([[0.65, 0.70, -0.02], [0.27, 0.57, 0.78]])
    assert record["vectors"][0][2] < 0
    hdx = check_stain_vectors(color.rgb_from_hdx)  # its third row is a residual: negative
    assert hdx["names"] == ["stain 1", "stain 2", "stain 3"]


def test_stain_options_go_with_color_space_stains_only(ihc):
    with pytest.raises(ValueError, match=r"^stain_vectors: color_space 'stains' needs"):
        npc.segment(ihc, "kmeans", 3, color_space="stains")
    with pytest.raises(ValueError, match=r"^stain_vectors: used with color_space='stains' only"):
        npc.segment(ihc, "kmeans", 3, color_space="lab", stain_vectors=UNIT_HED)
    with pytest.raises(ValueError, match=r"^stain_background: used only to estimate"):
        npc.segment(
            ihc, "kmeans", 3, color_space="stains", stain_vectors=UNIT_HED, stain_background=0.3
        )
    with pytest.raises(ValueError, match=r"^stain_vectors: method 'canny' does not take it"):
        npc.segment(ihc, "canny", stain_vectors=UNIT_HED)
    with pytest.raises(ValueError, match=r"^stain_background: must be at least 0"):
        npc.segment(
            ihc, "kmeans", 3, color_space="stains", stain_vectors="estimate", stain_background=-1
        )
    with pytest.raises(ValueError, match=r"^color_space: 'stains' applies to RGB images"):
        npc.segment(
            data.coins()[:32, :32], "kmeans", 3, color_space="stains", stain_vectors="estimate"
        )
    plain = npc.segment(ihc, "kmeans", 3, color_space="lab")  # other spaces: nothing recorded
    assert plain.params["stain_vectors"] is None
    assert "stain_vectors" not in plain.model.pipeline["constants"]


# ------------------------------------------------------------------ Macenko
@pytest.mark.parametrize(
    "first, second",
    [(HEMATOXYLIN, EOSIN), (color.rgb_from_hdx[0], color.rgb_from_hdx[1])],
    ids=["hematoxylin+eosin", "hematoxylin+DAB"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_macenko_recovers_the_vectors_a_synthetic_image_was_made_from(first, second, seed):
    """Measured (seeds 0, 1): 0.89 and 0.88 degrees (hematoxylin), 0.48 and 0.51
    (eosin); 0.59 and 0.62 (hematoxylin of H-DAB), 0.74 and 0.77 (DAB)."""
    image = synthetic(first, second, seed)
    rows = image.reshape(-1, 3) / 255.0
    found = estimate_stain_vectors(rows)
    assert found.estimated and found.names == ("stain 1", "stain 2", "residual")
    assert angle(found.vectors[0], first) < MAX_ANGLE_DEGREES  # larger red OD first
    assert angle(found.vectors[1], second) < MAX_ANGLE_DEGREES
    np.testing.assert_allclose(np.linalg.norm(found.vectors, axis=1), 1.0, atol=1e-12)
    assert (found.vectors[:2] >= 0).all()
    # weighted on distinct colors and their counts: the same as on every pixel
    distinct, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    weighted = estimate_stain_vectors(distinct / 255.0, counts.astype(float))
    np.testing.assert_allclose(weighted.vectors, found.vectors, atol=1e-9)
    seg = npc.segment(image, "kmeans", 3, color_space="stains", stain_vectors="estimate")
    np.testing.assert_allclose(seg.params["stain_vectors"]["vectors"], found.vectors, atol=1e-9)
    assert seg.params["stain_vectors"]["estimated"] is True


def test_macenko_on_the_immunohistochemistry_sample_finds_hematoxylin_and_dab():
    """Measured against scikit-image's hematoxylin and DAB (rgb_from_hdx): 5.7 and 5.6
    degrees (the sample's stains are not exactly Ruifrok's)."""
    ihc = data.immunohistochemistry()
    found = estimate_stain_vectors(ihc.reshape(-1, 3) / 255.0)
    assert angle(found.vectors[0], color.rgb_from_hdx[0]) < 8
    assert angle(found.vectors[1], color.rgb_from_hdx[1]) < 8


def test_weighted_percentiles_are_numpys_inverted_cdf():
    rng = np.random.default_rng(0)
    values = rng.normal(size=501)
    for percent in (1, 25, 50, 99):
        expected = np.percentile(values, percent, method="inverted_cdf")
        assert weighted_percentiles(values, np.ones(501), [percent]) == [expected]
    repeated = np.repeat(values[:50], np.arange(1, 51))  # counts are repetitions
    for percent in (1, 50, 99):
        expected = np.percentile(repeated, percent, method="inverted_cdf")
        assert weighted_percentiles(values[:50], np.arange(1, 51.0), [percent]) == [expected]


def test_too_little_tissue_or_one_color_cannot_be_estimated():
    white = np.full((40, 40, 3), 250, np.uint8)
    white[:3, :3] = (120, 60, 150)
    with pytest.raises(ValueError, match=r"^stain_background: only 9 of 1,600 pixels"):
        npc.segment(white, "kmeans", 2, color_space="stains", stain_vectors="estimate")
    amounts = np.linspace(0.2, 1, 96)[:, None, None]  # one stain: a single direction
    one_stain = np.broadcast_to(10.0 ** -(amounts * HEMATOXYLIN), (96, 96, 3))
    with pytest.raises(ValueError, match=r"^stain_vectors: the tissue pixels show a single"):
        npc.segment(one_stain, "kmeans", 2, color_space="stains", stain_vectors="estimate")


def test_a_higher_background_leaves_out_more_pixels_and_is_recorded():
    image = synthetic(HEMATOXYLIN, EOSIN)
    seg = npc.segment(
        image, "kmeans", 3, color_space="stains", stain_vectors="estimate", stain_background=0.3
    )
    assert seg.params["stain_background"] == 0.3
    found = estimate_stain_vectors(image.reshape(-1, 3) / 255.0, background=0.3)
    np.testing.assert_allclose(seg.params["stain_vectors"]["vectors"], found.vectors, atol=1e-9)


def test_masked_pixels_take_no_part_in_the_estimate():
    image = synthetic(HEMATOXYLIN, DAB)
    image[60:, 60:] = (200, 40, 40)  # a red patch that is no stain of the two
    inside = np.ones(image.shape[:2], bool)
    inside[60:, 60:] = False
    seg = npc.segment(
        image, "kmeans", 3, color_space="stains", stain_vectors="estimate", mask=inside
    )
    expected = estimate_stain_vectors(image[inside] / 255.0)
    np.testing.assert_allclose(seg.params["stain_vectors"]["vectors"], expected.vectors, atol=1e-9)


# ------------------------------------------------------------------ every route
def test_kmeans_and_gmm_estimate_the_same_on_the_lazy_route(ihc):
    lazy_image = da.from_array(ihc, chunks=(40, 40, 3))
    for method in ("kmeans", "gmm"):
        seg = npc.segment(
            ihc, method, 3, color_space="stains", stain_vectors="estimate", random_state=0
        )
        lazy = npc.segment(
            lazy_image, method, 3, color_space="stains", stain_vectors="estimate", random_state=0
        )
        assert lazy.params["compression"].startswith("lazy: distinct values")
        assert lazy.params["stain_vectors"] == seg.params["stain_vectors"]  # exactly
        np.testing.assert_array_equal(np.asarray(lazy.labels), seg.labels)
        assert lazy.params["features"] == ["stain 1", "stain 2", "residual"]


def test_lazy_float_images_estimate_on_their_sample_and_label_every_chunk_alike(ihc):
    image = ihc.astype(np.float64) / 255 + np.random.default_rng(0).uniform(0, 1e-4, ihc.shape)
    lazy = npc.segment(
        da.from_array(image, chunks=(40, 40, 3)),
        "kmeans",
        3,
        color_space="stains",
        stain_vectors="estimate",
    )
    assert lazy.params["compression"].startswith("lazy: fitted on a sample")
    model = lazy.model  # the vectors of the sample label every pixel
    np.testing.assert_array_equal(model.predict(image).labels, np.asarray(lazy.labels))


def test_ward_clusters_the_concentrations_of_the_given_vectors(ihc):
    """Ward in "stains" is Ward on a 3-channel image of the concentrations."""
    image = ihc[:48, :48]
    seg = npc.segment(image, "ward", 4, color_space="stains", stain_vectors=UNIT_HED[:2])
    rows = np.array(seg.params["stain_vectors"]["vectors"])
    concentrations = color.separate_stains(image, np.linalg.inv(rows))
    reference = npc.segment(concentrations, "ward", 4, channel_axis=-1)
    np.testing.assert_array_equal(seg.labels, reference.labels)
    assert seg.params["features"] == ["stain 1", "stain 2", "residual"]


def test_slic_clusters_the_concentrations_of_the_given_vectors(ihc):
    from skimage.segmentation import slic

    seg = npc.segment(
        ihc,
        "slic",
        color_space="stains",
        stain_vectors={"H": HEMATOXYLIN.tolist(), "DAB": DAB.tolist()},
        n_segments=20,
        compactness=0.1,
    )
    rows = np.array(seg.params["stain_vectors"]["vectors"])
    stains = color.separate_stains(ihc, np.linalg.inv(rows))
    reference = slic(stains, n_segments=20, compactness=0.1, convert2lab=False, start_label=1)
    np.testing.assert_array_equal(seg.labels, reference)
    assert seg.params["stain_vectors"]["names"] == ["H", "DAB", "residual"]
    estimated = npc.segment(ihc, "slic", color_space="stains", stain_vectors="estimate")
    kmeans = npc.segment(ihc, "kmeans", 2, color_space="stains", stain_vectors="estimate")
    assert estimated.params["stain_vectors"] == kmeans.params["stain_vectors"]  # same pixels


def test_a_sweep_clusters_the_same_features_as_segment(ihc):
    swept = npc.sweep(ihc, "kmeans", [2, 3], color_space="stains", stain_vectors="estimate")
    seg = npc.segment(ihc, "kmeans", 3, color_space="stains", stain_vectors="estimate")
    row = swept.table.set_index("k").loc[3]
    assert row["inertia"] == pytest.approx(seg.score["inertia"], rel=1e-9)


# ------------------------------------------------------------------ files
@pytest.mark.parametrize(
    "content, names",
    [
        ([HEMATOXYLIN.tolist(), DAB.tolist()], ["stain 1", "stain 2", "residual"]),
        ({"names": ["H", "E", "D"], "vectors": color.rgb_from_hed.tolist()}, ["H", "E", "D"]),
        ({"hematoxylin": HEMATOXYLIN.tolist(), "DAB": DAB.tolist()}, None),
    ],
    ids=["rows", "names-and-vectors", "named-rows"],
)
def test_stain_vector_files_in_every_form(tmp_path, content, names):
    path = tmp_path / "stains.json"
    path.write_text(json.dumps(content))
    record = read_stain_vectors(path)
    assert record == check_stain_vectors(content)
    assert record["names"] == (names or ["hematoxylin", "DAB", "residual"])
    assert parse_stain_vectors(record).names == tuple(record["names"])


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[[1, 2, 3]", r"not valid JSON"),
        ("[[1, 2, 3]]", r"expected shape \(3, 3\) or \(2, 3\)"),
        ('{"H": "red"}', r"2 or 3 stains"),
        ("\udcff", r"not valid JSON"),
    ],
)
def test_a_bad_stain_vector_file_is_one_error_naming_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError, match=rf"^stain vectors file: {path}: .*{problem}"):
        read_stain_vectors(path)
    with pytest.raises(ValueError, match=rf"^stain vectors file: {tmp_path}: not a regular"):
        read_stain_vectors(tmp_path)
    with pytest.raises(ValueError, match=r"^stain vectors file: .*missing.json: not a regular"):
        read_stain_vectors(tmp_path / "missing.json")


def test_one_stain_in_8_bit_is_refused_not_split_into_two_near_copies():
    """Rounding to 8 bits spreads one stain's colors a little: the estimate would give
    two stains about a degree apart (unusable concentrations); it is refused instead."""
    rng = np.random.default_rng(0)
    amounts = rng.uniform(0.1, 1.2, (128, 128, 1))
    one_stain = np.round(255 * 10.0 ** -(amounts * HEMATOXYLIN)).astype(np.uint8)
    with pytest.raises(ValueError, match=r"^stain_vectors: the two stains estimated are only"):
        npc.segment(one_stain, "kmeans", 2, color_space="stains", stain_vectors="estimate")
    two_stains = synthetic(HEMATOXYLIN, EOSIN)  # real pairs are far apart: still estimated
    seg = npc.segment(two_stains, "kmeans", 3, color_space="stains", stain_vectors="estimate")
    first, second = np.asarray(seg.params["stain_vectors"]["vectors"])[:2]
    assert np.degrees(np.arccos(first @ second)) > 20
