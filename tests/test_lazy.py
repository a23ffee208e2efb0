"""Lazy (dask) images (core/lazy/: reading, chunk machinery, lazy results; the point-wise
route of k-means and mixtures, methods/_pointwise_lazy.py): the same result as in memory,
one chunk at a time. Each method's own lazy route is tested in its file (test_canny.py,
test_ward.py); every method on lazy images of every kind: test_battery.py."""

from __future__ import annotations

import dataclasses

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from skimage import data
from sklearn.metrics import adjusted_rand_score

import napari_pixel_clusters as npc
from conftest import collect_steps


@pytest.mark.parametrize(
    "method, options",
    [
        ("kmeans", {"color_space": "lab"}),
        ("kmeans", {"standardize": True}),
        ("gmm", {"covariance_type": "diag"}),
    ],
)
def test_lazy_rgb_matches_in_memory(photo, method, options):
    lazy = da.from_array(photo, chunks=(48, 40, 3))
    result = npc.segment(lazy, method, 4, random_state=0, **options)
    expected = npc.segment(photo, method, 4, random_state=0, **options)
    assert isinstance(result.labels, da.Array) and isinstance(result.quantized(), da.Array)
    assert result.quantized().chunks == lazy.chunks  # what dask promises is what it gives
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


def test_one_histogram_step_per_batch_of_chunks_and_nothing_computed_whole(photo):
    lazy = da.from_array(photo, chunks=(16, 16, 3))  # 64 chunks: 4 batches of 16
    stages, result = collect_steps(npc.segment_steps(lazy, "kmeans", 3))
    assert [s for s, _ in stages].count("histogram") == 4
    assert result.labels.chunks == ((16,) * 8, (16,) * 8)


def test_model_of_a_lazy_result_labels_images_in_memory(photo):
    result = npc.segment(da.from_array(photo, chunks=64), "kmeans", 3, random_state=0)
    np.testing.assert_array_equal(result.model.predict(photo).labels, result.labels.compute())


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (
            dict(method="canny", use_quantiles=True, low_threshold=0.1, high_threshold=0.2),
            "use_quantiles",
        ),
        (dict(method="kmeans", n_clusters=5000), "n_clusters"),
        (dict(method="kmeans", n_clusters=3, channel_axis=5), "channel_axis"),
    ],
)
def test_what_cannot_be_done_lazily_says_so(kwargs, argument):
    lazy = da.from_array(data.coins()[::4, ::4], chunks=32)
    with pytest.raises(ValueError) as error:
        npc.segment(lazy, **kwargs)
    assert str(error.value).startswith(f"{argument}:")


def test_float_images_fit_on_a_sample_and_the_model_labels_every_chunk():
    image = np.tile(data.coins() / 255.0, (2, 2))  # 465,408 pixels: more than the sample
    result = npc.segment(da.from_array(image, chunks=100), "kmeans", 3, random_state=0)
    expected = npc.segment(image, "kmeans", 3, random_state=0)
    labels = result.labels.compute()
    assert result.params["compression"].startswith("lazy: fitted on a sample of")
    assert adjusted_rand_score(labels.ravel(), expected.labels.ravel()) > 0.99
    np.testing.assert_array_equal(result.model.predict(image).labels, labels)
    np.testing.assert_array_equal(result.table["pixels"], np.bincount(labels.ravel())[1:])
    again = npc.segment(da.from_array(image, chunks=100), "kmeans", 3, random_state=0)
    np.testing.assert_array_equal(again.labels.compute(), labels)


def test_spatial_features_use_each_chunks_position(photo):
    result = npc.segment(
        da.from_array(photo, chunks=(60, 50, 3)), "kmeans", 4, spatial_weight=1.0, random_state=0
    )
    labels = result.labels.compute()
    np.testing.assert_array_equal(result.model.predict(photo).labels, labels)
    expected = npc.segment(photo, "kmeans", 4, spatial_weight=1.0, random_state=0)
    assert adjusted_rand_score(labels.ravel(), expected.labels.ravel()) > 0.95


def test_lazy_rgba_leaves_transparent_pixels_unlabelled(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:40, :60, 3] = 0
    init = np.array([[0.2, 0.2, 0.2], [0.5, 0.4, 0.4], [0.8, 0.7, 0.6]])
    result = npc.segment(da.from_array(rgba, chunks=(50, 50, 4)), "kmeans", 3, init=init)
    expected = npc.segment(rgba, "kmeans", 3, init=init)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    np.testing.assert_array_equal(result.quantized().compute(), expected.quantized())


def test_lazy_multichannel_with_channel_axis_matches_in_memory():
    image = np.stack([data.coins()[:150, :150], data.camera()[::3, ::3][:150, :150]])
    init = np.array([[60.0, 60.0], [120.0, 160.0], [200.0, 220.0]])
    result = npc.segment(
        da.from_array(image, chunks=(2, 50, 50)), "kmeans", 3, channel_axis=0, init=init
    )
    expected = npc.segment(image, "kmeans", 3, channel_axis=0, init=init)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    np.testing.assert_array_equal(result.quantized().compute(), expected.quantized())
    pd.testing.assert_frame_equal(result.table, expected.table)


def test_a_dask_distributed_cluster_gives_the_same_labels(photo):
    """Every route's labeller is picklable: worker processes label chunks the same way."""
    from distributed import Client, LocalCluster

    lazy = da.from_array(photo, chunks=(64, 64, 3))
    expected = npc.segment(photo, "kmeans", 4, color_space="lab", random_state=0)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        result = npc.segment(lazy, "kmeans", 4, color_space="lab", random_state=0)
        labels = client.compute(result.labels).result()
        quantized = client.compute(result.quantized()).result()
        others = {
            "canny": npc.segment(lazy, "canny", sigma=1.5),
            "spatial": npc.segment(lazy, "kmeans", 3, spatial_weight=1.0, random_state=0),
            "ward": npc.segment(lazy, "ward", 3, downscale=0.25),
        }
        computed = {name: client.compute(seg.labels).result() for name, seg in others.items()}
    np.testing.assert_array_equal(labels, expected.labels)
    np.testing.assert_array_equal(quantized, expected.quantized())
    for name, seg in others.items():  # the same as with dask's default scheduler
        np.testing.assert_array_equal(computed[name], seg.labels.compute(scheduler="sync"))
    np.testing.assert_array_equal(computed["canny"], npc.segment(photo, "canny", sigma=1.5).labels)


def test_zarr_arrays_and_pyramids_are_read_chunk_by_chunk(photo, tmp_path):
    import zarr

    store = zarr.create_array(
        store=str(tmp_path / "photo.zarr"),
        shape=photo.shape,
        chunks=(64, 48, 3),
        dtype=photo.dtype,
    )
    store[:] = photo
    expected = npc.segment(photo, "kmeans", 3, random_state=0)
    result = npc.segment(store, "kmeans", 3, random_state=0)
    assert isinstance(result.labels, da.Array) and result.labels.chunksize == (64, 48)
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    pyramid = npc.segment([store, photo[::2, ::2], photo[::4, ::4]], "kmeans", 3, random_state=0)
    levels = pyramid.labels_pyramid()
    assert [level.shape for level in levels] == [photo.shape[:2], (64, 64), (32, 32)]
    np.testing.assert_array_equal(levels[2].compute(), expected.labels[::4, ::4])
    assert pyramid.quantized_pyramid()[1].compute().shape == (64, 64, 3)


def test_averaged_pyramid_levels_are_labelled_by_the_model_without_holes(photo):
    """Averaging makes colors the fit never saw: the model labels them, none is left 0."""
    result = npc.segment(
        da.from_array(photo, chunks=(32, 32, 3)), "kmeans", 4, color_space="lab", random_state=0
    )
    level = np.rint(photo.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))).astype(np.uint8)
    labels = result.labels_of(da.from_array(level, chunks=(32, 32, 3))).compute()
    assert labels.min() >= 1
    np.testing.assert_array_equal(labels, result.model.predict(level).labels)


def test_a_list_of_equal_planes_is_a_stack_not_a_pyramid():
    planes = [data.coins()[:60, :60], data.camera()[:60, :60]]
    result = npc.segment(planes, "kmeans", 3, random_state=0)
    expected = npc.segment(np.stack(planes), "kmeans", 3, random_state=0)
    np.testing.assert_array_equal(result.labels, expected.labels)
    assert result.labels.shape == (2, 60, 60)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64_bit_integer_images_are_counted_exactly(dtype):
    image = np.tile(data.camera()[::2, ::2], (2, 1)).astype(dtype)
    if dtype == np.uint64:  # values no int64 holds, still distinct as float64
        image = image * np.uint64(4096) + np.uint64(2**63)
    result = npc.segment(da.from_array(image, chunks=128), "gmm", 4, random_state=0)
    expected = npc.segment(image, "gmm", 4, random_state=0)
    assert result.params["compression"].startswith("lazy: distinct values")
    np.testing.assert_array_equal(result.labels.compute(), expected.labels)
    np.testing.assert_array_equal(result.quantized().compute(), expected.quantized())


@pytest.mark.parametrize("method", ["kmeans", "gmm", "ward"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_lazy_image_without_data_says_so_for_every_method(method, dtype):
    """A fully transparent RGBA image said "n_clusters: ... only 0 distinct pixel values"
    (k-means, GMM) or "downscale: no block ... has data" (Ward) instead."""
    image = np.zeros((8, 9, 4), dtype=dtype)
    with pytest.raises(ValueError, match=r"^image: no pixel has data"):
        npc.segment(da.from_array(image, chunks=4), method, 2, rgb=True)


def test_lazy_quantized_and_table_of_64_bit_extremes_are_exact():
    image = np.full((6, 8), 2**64 - 1, dtype=np.uint64)
    image[:, :3] = 0
    image[0, 0] = 2**64 - 2
    result = npc.segment(da.from_array(image, chunks=4), "kmeans", 2)
    expected = npc.segment(image, "kmeans", 2)
    quantized = result.quantized().compute()
    np.testing.assert_array_equal(quantized, expected.quantized())
    assert quantized.max() == 2**64 - 1 and quantized.dtype == np.uint64
    pd.testing.assert_frame_equal(result.table, expected.table)


def test_a_method_without_a_lazy_route_refuses_dask_images_by_name(monkeypatch):
    """A method registered without ``lazy_run`` works in memory; on a dask image it is a
    ValueError naming it (it was "TypeError: 'NoneType' object is not callable")."""
    from napari_pixel_clusters.core.methods import METHODS

    in_memory_only = dataclasses.replace(METHODS["kmeans"], name="memory_only", lazy_run=None)
    monkeypatch.setitem(METHODS, "memory_only", in_memory_only)
    image = data.coins()[::8, ::8]
    assert npc.segment(image, "memory_only", 3, random_state=0).n_clusters == 3
    with pytest.raises(ValueError, match=r"^method: 'memory_only' needs the whole image"):
        npc.segment(da.from_array(image, chunks=16), "memory_only", 3)
    with pytest.raises(ValueError, match=r"^method: 'memory_only' needs the whole image"):
        npc.segment([image, image[::2, ::2]], "memory_only", 3)


def _histograms(image, chunks, mask=None):
    """The lazy histogram (dense counters where the range allows), the same by sorting
    every chunk, and the in-memory distinct values: each as (rows, counts)."""
    from napari_pixel_clusters.core.features import distinct_rows, unpack_keys, usable_values
    from napari_pixel_clusters.core.image import read_image
    from napari_pixel_clusters.core.lazy import read_lazy_image
    from napari_pixel_clusters.core.methods import _pointwise_lazy

    lazy = read_lazy_image(da.from_array(image, chunks=chunks), mask=mask)
    results = []
    for dense_max in (_pointwise_lazy.DENSE_MAX_KEYS, 0):  # 0: sort every chunk
        _pointwise_lazy.DENSE_MAX_KEYS, saved = dense_max, _pointwise_lazy.DENSE_MAX_KEYS
        try:
            _, (keys, counts, lows, spans, _) = collect_steps(
                _pointwise_lazy._histogram_steps(lazy)
            )
        finally:
            _pointwise_lazy.DENSE_MAX_KEYS = saved
        results.append((unpack_keys(keys, lows, spans, image.dtype), counts))
    rows, counts, _ = distinct_rows(usable_values(read_image(image, mask=mask)))
    return results + [(rows, counts)]


@pytest.mark.parametrize(
    "kind", ["rgb", "rgb with a mask", "grey16", "int64", "int64 wide", "rgb16"]
)
def test_lazy_histogram_equals_the_in_memory_distinct_values(kind):
    rgb = data.astronaut()[::2, ::2]
    mask = None
    if kind.startswith("rgb"):
        image = rgb if kind != "rgb16" else rgb.astype(np.uint16) * 257 + 3
        chunks = (60, 50, 3)
        if kind == "rgb with a mask":
            mask = np.zeros(image.shape[:2], bool)
            mask[20:200, 35:140] = True
    elif kind == "grey16":
        image = (data.camera()[::2, ::2].astype(np.uint32) * 257 + 11).astype(np.uint16)
        chunks = 70
    else:  # int64: offset, negative values; "wide": a range too large for counters
        scale = 10**9 if kind == "int64 wide" else 1_000
        image = data.coins().astype(np.int64) * scale - 50_000
        chunks = (64, 100)
    dense, sorted_, in_memory = _histograms(image, chunks, mask)
    for rows, counts in (dense, sorted_):
        np.testing.assert_array_equal(rows, in_memory[0].reshape(rows.shape))
        np.testing.assert_array_equal(counts, in_memory[1])
        assert counts.dtype == np.float64
    assert dense[1].sum() == (image.shape[0] * image.shape[1] if mask is None else mask.sum())


def test_dense_histogram_gives_up_where_merging_did(monkeypatch):
    from napari_pixel_clusters.core.lazy import read_lazy_image
    from napari_pixel_clusters.core.methods import _pointwise_lazy

    image = da.from_array(data.astronaut(), chunks=(64, 64, 3))  # 64 chunks
    lazy = read_lazy_image(image)
    monkeypatch.setattr(_pointwise_lazy, "MAX_HISTOGRAM_ROWS", 1_000)
    assert collect_steps(_pointwise_lazy._histogram_steps(lazy))[1] is None
    monkeypatch.setattr(_pointwise_lazy, "DENSE_MAX_KEYS", 0)
    assert collect_steps(_pointwise_lazy._histogram_steps(lazy))[1] is None


def test_key_counts_past_16_bits_are_exact():
    from napari_pixel_clusters.core.lazy._counting import KeyCounts

    rng = np.random.default_rng(0)
    keys = np.repeat(np.array([7, 2, 9, 0, 5], dtype=np.uint32), [300_000, 65_535, 65_536, 1, 2])
    counts = KeyCounts(12)
    counts._buffer = np.empty(2, dtype=np.int64)  # full after two carries: resumes
    for part in np.array_split(rng.permutation(keys), 3):
        counts.add(part)
    found, totals = counts.histogram()
    expected = np.bincount(keys, minlength=12)
    np.testing.assert_array_equal(found, np.flatnonzero(expected))
    np.testing.assert_array_equal(totals, expected[expected > 0])
    assert counts.n_distinct == 5
