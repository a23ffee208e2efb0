"""Canny edges (core/methods/canny.py, _canny_planes.py, _canny_lazy.py).

The automatic thresholds find edges on 8- and 16-bit images (issue 12, item 6). They were
scikit-image's 10% and 20% of the dtype's maximum: 6,553 and 13,107 on a 16-bit plane, far
above the edges of a fluorescence plane with values up to 4,000, which then had no edge at
all. They are now 10% and 20% of the image's largest value (its magnitude for an
all-negative image). On a dask image the edges are identical to the in-memory ones, also
where they cross chunk seams. The notebook's Canny workflows are in
test_reference_workflows.py.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from skimage import data, feature

import napari_pixel_clusters as npc
from conftest import fluorescence_plane


@pytest.mark.parametrize(
    "image", [data.coins(), fluorescence_plane()], ids=["uint8 coins", "uint16 fluorescence"]
)
def test_default_thresholds_find_edges_as_scikit_image_with_explicit_ones(image):
    seg = npc.segment(image, "canny", sigma=1.5)
    largest = float(image.max())
    expected = feature.canny(
        image, sigma=1.5, low_threshold=0.1 * largest, high_threshold=0.2 * largest
    )
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.labels.sum() > 100
    assert seg.params["low_threshold_used"] == pytest.approx(0.1 * largest)
    assert seg.params["high_threshold_used"] == pytest.approx(0.2 * largest)


def test_the_dtype_maximum_found_no_edge_on_the_fluorescence_plane():
    """What the defaults were: scikit-image's own, relative to 65,535."""
    assert not feature.canny(fluorescence_plane(), sigma=1.5).any()


def test_a_lazy_16_bit_plane_has_the_same_default_edges():
    plane = fluorescence_plane()
    lazy = npc.segment(da.from_array(plane, chunks=40), "canny", sigma=1.5)
    np.testing.assert_array_equal(
        lazy.labels.compute(), npc.segment(plane, "canny", sigma=1.5).labels
    )
    assert lazy.params["low_threshold_used"] == pytest.approx(400.0)


def test_canny_of_an_all_negative_64_bit_image_has_positive_default_thresholds():
    """The automatic thresholds were 10%/20% of the largest value, negative here, and
    scikit-image stopped with "low_threshold should be lower then high_threshold"."""
    image = -np.arange(1, 26, dtype=np.int64).reshape(5, 5) * 1000
    image[:, 3:] -= 50_000
    seg = npc.segment(image, "canny")
    largest = 75_000.0  # the largest magnitude
    expected = feature.canny(
        image.astype(float), sigma=1.0, low_threshold=0.1 * largest, high_threshold=0.2 * largest
    )
    np.testing.assert_array_equal(seg.labels, expected)
    assert expected.any()


# --- lazy images: the same edges as in memory, across chunk seams ----------------------------
@pytest.mark.parametrize(
    "image, chunks, options",
    [
        (data.coins(), (50, 70), {"sigma": 1.0}),
        (data.coins(), 64, {"sigma": 2.0, "low_threshold": 20, "high_threshold": 60}),
        (data.astronaut()[::2, ::2], (60, 50, 3), {"sigma": 1.5}),
        (
            np.stack([data.coins()[:200, :200], data.camera()[::2, ::2][:200, :200]]),
            (1, 64, 64),
            {"sigma": 1.0},
        ),
    ],
)
def test_lazy_canny_edges_are_identical_to_in_memory_everywhere(image, chunks, options):
    """Hysteresis is joined across chunks, so edges match even where they cross seams."""
    result = npc.segment(da.from_array(image, chunks=chunks), "canny", **options)
    expected = npc.segment(image, "canny", **options)
    assert isinstance(result.labels, da.Array)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    pd.testing.assert_frame_equal(result.table, expected.table)
    assert result.score == pytest.approx(expected.score)


def test_lazy_canny_of_float_image_with_missing_pixels_matches():
    image = data.camera()[::2, ::2] / 255.0
    image[100:130, 40:90] = np.nan
    result = npc.segment(da.from_array(image, chunks=48), "canny", sigma=1.0)
    np.testing.assert_array_equal(
        result.labels.compute(), npc.segment(image, "canny", sigma=1.0).labels
    )


def test_lazy_multichannel_canny_counts_edges_in_any_channel():
    image = np.stack([data.coins()[:160, :160], data.camera()[::3, ::3][:160, :160]], axis=-1)
    result = npc.segment(da.from_array(image, chunks=(40, 40, 2)), "canny", channel_axis=-1)
    expected = npc.segment(image, "canny", channel_axis=-1)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    pd.testing.assert_frame_equal(result.table, expected.table)


@pytest.mark.parametrize(
    "image",
    [
        data.astronaut()[:160, :200].astype(np.int64),
        data.coins()[:150, :150].astype(np.int64),
        data.coins()[:150, :150] > 100,
    ],
)
def test_canny_of_64_bit_and_boolean_images_agrees_lazily(image):
    """Thresholds are relative to the largest grey value, in memory and lazily."""
    expected = npc.segment(image, "canny")
    chunks = (40, 50, 3) if image.ndim == 3 else 40
    result = npc.segment(da.from_array(image, chunks=chunks), "canny")
    assert expected.labels.sum() > 0
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)


def test_lazy_canny_of_an_image_without_data_says_so():
    with pytest.raises(ValueError, match=r"^image: no pixel has data"):
        npc.segment(da.full((64, 64), np.nan, chunks=32), "canny")


@pytest.mark.parametrize(
    "shape, chunks",
    [
        ((5, 5), 5),
        ((7, 40), (7, 40)),
        ((7, 40), (3, 10)),
        ((2, 6, 30), (1, 4, 8)),
        ((40, 9), (16, 4)),
    ],
)
def test_lazy_canny_of_images_smaller_than_its_overlap_matches_in_memory(shape, chunks):
    """An axis shorter than the overlap (4 sigma + 3 = 11 pixels at sigma 2) raised dask's
    "The overlapping depth 11 is larger than your array 5"; in memory it worked."""
    image = np.random.default_rng(0).random(shape)
    image[..., : shape[-1] // 2] += 2.0  # an edge down the middle
    expected = npc.segment(image, "canny", sigma=2.0)
    result = npc.segment(da.from_array(image, chunks=chunks), "canny", sigma=2.0)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    pd.testing.assert_frame_equal(result.table, expected.table)


def test_lazy_canny_of_an_all_negative_64_bit_image_matches_in_memory():
    image = -(data.coins()[:60, :70].astype(np.int64) * 1000) - 1
    expected = npc.segment(image, "canny")
    result = npc.segment(da.from_array(image, chunks=32), "canny")
    assert expected.labels.sum() > 0
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
