"""One battery over every method and every kind of image (scikit-learn's common tests idea)."""

from __future__ import annotations

import numpy as np
import pytest

import napari_pixel_clusters as npc
from conftest import IMAGE_KINDS

ONE_CLUSTER_KINDS = {"constant", "one_pixel"}


def run(method, kind, **extra):
    image, read_options = IMAGE_KINDS[kind]
    k = None if method == "canny" else (1 if kind in ONE_CLUSTER_KINDS else 3)
    return npc.segment(image, method, k, random_state=0, **read_options, **extra)


def usable_pixels(kind):
    image, options = IMAGE_KINDS[kind]
    if kind == "rgba":
        return image[..., 3] > 0
    pixels = np.moveaxis(image, options["channel_axis"], -1) if "channel_axis" in options \
        else image[..., None] if kind != "rgb" else image
    return np.isfinite(pixels.astype(float)).all(axis=-1)


@pytest.mark.parametrize("kind", sorted(IMAGE_KINDS))
@pytest.mark.parametrize("method", sorted(npc.METHODS))
def test_method_on_image_kind(method, kind):
    image, _ = IMAGE_KINDS[kind]
    before = image.copy()
    seg = run(method, kind)
    usable = usable_pixels(kind)

    assert seg.labels.shape == usable.shape
    assert seg.labels.dtype == np.int32
    assert np.all(seg.labels[~usable] == 0)
    found = np.unique(seg.labels[seg.labels > 0])
    np.testing.assert_array_equal(found, np.arange(1, seg.n_clusters + 1))
    if method == "canny":
        assert seg.n_clusters in (0, 1)
    else:
        assert np.all(seg.labels[usable] > 0), "every usable pixel belongs to a cluster"
        assert seg.n_clusters == seg.params["n_clusters_requested"]
    assert len(seg.table) == seg.n_clusters
    assert seg.table["pixels"].sum() == np.count_nonzero(seg.labels)
    assert seg.palette.shape[0] == seg.n_clusters

    quantized = seg.quantized()
    assert quantized.shape == image.shape and quantized.dtype == image.dtype

    np.testing.assert_array_equal(image, before)  # the input is never modified
    np.testing.assert_array_equal(run(method, kind).labels, seg.labels)  # deterministic
