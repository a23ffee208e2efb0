"""Lazy (dask) images: the same result as in memory, one chunk at a time."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from skimage import data

import napari_pixel_clusters as npc
from conftest import collect_steps


@pytest.mark.parametrize("method, options", [
    ("kmeans", {"color_space": "lab"}),
    ("kmeans", {"standardize": True}),
    ("gmm", {"covariance_type": "diag"}),
])
def test_lazy_rgb_matches_in_memory(photo, method, options):
    lazy = da.from_array(photo, chunks=(48, 40, 3))
    result = npc.segment(lazy, method, 4, random_state=0, **options)
    expected = npc.segment(photo, method, 4, random_state=0, **options)
    assert isinstance(result.labels, da.Array) and isinstance(result.quantized(), da.Array)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    np.testing.assert_array_equal(result.quantized().compute(), expected.quantized())
    pd.testing.assert_frame_equal(result.table, expected.table)
    assert result.score == pytest.approx(expected.score)
    assert result.params["compression"].startswith("lazy: distinct values")


def test_lazy_16_bit_grey_with_explicit_init_matches_in_memory():
    image = (data.camera().astype(np.uint32) * 257).astype(np.uint16)
    init = np.array([[2_000.0], [20_000.0], [40_000.0], [60_000.0]])
    result = npc.segment(da.from_array(image, chunks=128), "kmeans", 4, init=init)
    expected = npc.segment(image, "kmeans", 4, init=init)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    np.testing.assert_array_equal(result.quantized().compute(), expected.quantized())


def test_one_histogram_step_per_chunk_and_nothing_computed_whole(photo):
    lazy = da.from_array(photo, chunks=(64, 64, 3))
    stages, result = collect_steps(npc.segment_steps(lazy, "kmeans", 3))
    assert [s for s, _ in stages].count("histogram") == 4
    assert result.labels.chunks == ((64, 64), (64, 64))


def test_model_of_a_lazy_result_labels_images_in_memory(photo):
    result = npc.segment(da.from_array(photo, chunks=64), "kmeans", 3, random_state=0)
    np.testing.assert_array_equal(result.model.predict(photo).labels,
                                  result.labels.compute())


@pytest.mark.parametrize("kwargs, argument", [
    (dict(method="ward", n_clusters=3), "method"),
    (dict(method="kmeans", n_clusters=3, spatial_weight=1.0), "spatial_weight"),
    (dict(method="kmeans", n_clusters=3, channel_axis=0), "channel_axis"),
    (dict(method="kmeans", n_clusters=5000), "n_clusters"),
])
def test_what_is_not_lazy_yet_says_so(kwargs, argument):
    lazy = da.from_array(data.coins()[::4, ::4], chunks=32)
    with pytest.raises(ValueError) as error:
        npc.segment(lazy, **kwargs)
    assert str(error.value).startswith(f"{argument}:")


def test_float_lazy_images_say_so():
    with pytest.raises(ValueError, match="^image: lazy images of dtype float64"):
        npc.segment(da.from_array(np.random.default_rng(0).random((40, 40)), chunks=20),
                    "kmeans", 2)


def test_a_dask_distributed_cluster_gives_the_same_labels(photo):
    from distributed import Client, LocalCluster

    lazy = da.from_array(photo, chunks=(64, 64, 3))
    expected = npc.segment(photo, "kmeans", 4, color_space="lab", random_state=0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        result = npc.segment(lazy, "kmeans", 4, color_space="lab", random_state=0)
        labels = client.compute(result.labels).result()
        quantized = client.compute(result.quantized()).result()
    np.testing.assert_array_equal(labels, expected.labels)
    np.testing.assert_array_equal(quantized, expected.quantized())
