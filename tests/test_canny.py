"""Canny's automatic thresholds find edges on 8- and 16-bit images (issue 12, item 6).

They were scikit-image's 10% and 20% of the dtype's maximum: 6,553 and 13,107 on a
16-bit plane, far above the edges of a fluorescence plane with values up to 4,000, which
then had no edge at all. They are now 10% and 20% of the image's largest value.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from skimage import data, feature, filters

import napari_pixel_clusters as npc


def fluorescence_plane() -> np.ndarray:
    """uint16, values 100..4000: three blurred bright blobs on a dim noisy background."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    image = np.full((96, 96), 100.0)
    for cy, cx, r in [(25, 30, 9), (60, 65, 12), (70, 20, 7)]:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 4000
    image = filters.gaussian(image, 2, preserve_range=True) + rng.normal(0, 20, image.shape)
    return np.clip(image, 100, 4000).astype(np.uint16)


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
