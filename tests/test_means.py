"""Cluster means are exact for integer images and never wrap or overflow (issue 11, part 3)."""

from __future__ import annotations

from fractions import Fraction

import dask.array as da
import numpy as np
import pytest

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.means import ClusterSums

U64_MAX = 2**64 - 1
I64 = np.iinfo(np.int64)


def exact_means(labels, values, size):
    """Means as exact fractions, with Python integers."""
    sums = [[Fraction(0)] * values.shape[1] for _ in range(size)]
    counts = [0] * size
    for label, row in zip(labels.tolist(), values.tolist()):
        counts[label] += 1
        sums[label] = [s + v for s, v in zip(sums[label], row)]
    return [[s / n if n else Fraction(0) for s in row] for row, n in zip(sums, counts)]


def round_half_even(fraction: Fraction) -> int:
    return round(fraction)  # Fraction rounds half to even


@pytest.mark.parametrize(
    "dtype", [np.uint64, np.int64, np.uint32, np.int32, np.int16, np.uint8, np.bool_]
)
def test_integer_means_are_exact_and_rounded_half_to_even(dtype):
    rng = np.random.default_rng(0)
    if dtype == np.bool_:
        values = rng.random((500, 2)) > 0.3
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, (500, 2), dtype=dtype, endpoint=True)
        values[:40] = info.max  # near the top, where float64 rounds
        values[40:60] = info.min
    labels = rng.integers(0, 4, 500)
    labels[:40] = 4  # a cluster of identical maxima
    sums = ClusterSums.of(labels, values, 5)
    expected = exact_means(labels, values, 5)
    np.testing.assert_array_equal(sums.means(), np.array(expected, dtype=float))
    if dtype != np.bool_:
        np.testing.assert_array_equal(
            sums.as_dtype(dtype),
            np.array([[round_half_even(m) for m in row] for row in expected], dtype=dtype),
        )
        assert sums.as_dtype(dtype)[4].tolist() == [int(np.iinfo(dtype).max)] * 2


def test_weighted_rows_are_summed_exactly():
    """Distinct values with large pixel counts (as k-means fits them) stay exact."""
    rows = np.array([[U64_MAX], [U64_MAX - 1], [2**63 + 1]], dtype=np.uint64)
    weights = np.array([3e9, 1e9, 5.0])
    sums = ClusterSums.of(np.array([0, 0, 1]), rows, 2, weights)
    assert sums.sums[0, 0] == 3 * 10**9 * U64_MAX + 10**9 * (U64_MAX - 1)
    mean = Fraction(int(sums.sums[0, 0]), 4 * 10**9)
    assert sums.as_dtype(np.uint64)[0, 0] == round(mean) == U64_MAX  # 2**64 - 1.25
    assert sums.as_dtype(np.uint64)[1, 0] == 2**63 + 1


@pytest.mark.parametrize("lazy", [False, True], ids=["in memory", "lazy"])
@pytest.mark.parametrize("method", ["kmeans", "gmm", "ward"])
def test_quantized_keeps_64_bit_extremes(method, lazy):
    """2**64 - 1 became 0 and int64's maximum became its minimum: the float64 mean rounded
    up to 2**64 (2**63), and the cast wrapped; quantized.tif got the wrong values."""
    unsigned = np.array([[0, 0, U64_MAX], [0, U64_MAX, U64_MAX]], dtype=np.uint64)
    signed = np.array(
        [[I64.min, I64.min, I64.max], [I64.min, I64.max, I64.max]], dtype=np.int64
    )  # connected regions, for Ward
    for image in (unsigned, signed):
        source = da.from_array(image, chunks=2) if lazy else image
        seg = npc.segment(source, method, 2)
        quantized = np.asarray(seg.quantized())
        assert quantized.dtype == image.dtype
        np.testing.assert_array_equal(quantized, image)


def test_quantized_rgb_of_64_bit_extremes_and_float_maxima():
    rgb = np.zeros((4, 5, 3), dtype=np.uint64)
    rgb[:2] = U64_MAX
    seg = npc.segment(rgb, "kmeans", 2, rgb=True)
    np.testing.assert_array_equal(seg.quantized(), rgb)
    for dtype in (np.float16, np.float32):
        top = np.finfo(dtype).max
        image = np.full((4, 5, 3), top, dtype=dtype)
        image[:2] = 0
        for method in ("kmeans", "gmm", "ward"):  # a mixture needs features of sane scale
            seg = npc.segment(image, method, 2, rgb=True, standardize=method == "gmm")
            assert np.isfinite(seg.palette).all() and np.isfinite(seg.colors).all()
            np.testing.assert_array_equal(seg.quantized(), image)  # no inf from the mean


def test_float_means_stay_within_the_image_range():
    """A mean of identical floats can come out one ulp above them; it is clipped back."""
    image = np.full((7, 9), 0.1)
    image[0, 0] = 0.7
    seg = npc.segment(image, "ward", 2)
    quantized = seg.quantized()
    assert quantized.max() <= 0.7 and quantized.min() >= 0.1


def _bincount_route(monkeypatch):
    """ClusterSums.of by np.bincount only (the compiled pass turned off)."""
    from napari_pixel_clusters.core import means

    monkeypatch.setattr(means, "_compiled_sums", lambda *args: None)


def _assert_same_sums(got: ClusterSums, expected: ClusterSums) -> None:
    assert got.counts.dtype == expected.counts.dtype == np.float64
    np.testing.assert_array_equal(got.counts, expected.counts)
    assert got.sums.dtype == expected.sums.dtype == object
    assert got.sums.tolist() == expected.sums.tolist()
    assert {type(v) for v in got.sums.ravel()} == {type(v) for v in expected.sums.ravel()}


@pytest.mark.parametrize("weights", [None, "counts", "fractional"])
@pytest.mark.parametrize("n_channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.bool_])
def test_compiled_sums_equal_the_bincount_sums(dtype, n_channels, weights, monkeypatch):
    """8-, 16-bit and boolean rows are summed in one compiled pass (k-means' distinct
    values and their counts): the same counts and sums as np.bincount's."""
    from napari_pixel_clusters.core import means

    rng = np.random.default_rng(n_channels)
    n = 20_000
    if dtype == np.bool_:
        values = rng.random((n, n_channels)) > 0.4
    else:
        values = rng.integers(0, np.iinfo(dtype).max, (n, n_channels), endpoint=True, dtype=dtype)
    labels = np.repeat(rng.integers(0, 6, n // 50), 50).astype(np.int32)  # runs, as fits give
    w = {
        None: None,
        "counts": rng.integers(1, 10_000, n).astype(np.float64),
        "fractional": rng.random(n) * 3.0,
    }[weights]
    assert means._compiled_sums(labels, values, 7, w) is not None
    got = ClusterSums.of(labels, values, 7, w)
    _bincount_route(monkeypatch)
    _assert_same_sums(got, ClusterSums.of(labels, values, 7, w))


def test_compiled_sums_leave_other_input_to_bincount(monkeypatch):
    from napari_pixel_clusters.core import means

    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, (1000, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, 1000).astype(np.int32)
    huge = np.full(1000, 2.0**40)  # sums beyond float64's exact integers: limbs
    other_input = [
        (labels.astype(np.int64), values, None),
        (labels, values.astype(np.int32), None),
        (labels, np.asfortranarray(values), None),
        (labels, values, huge),
        (labels[:0], values[:0], None),
    ]
    for args in other_input:
        assert means._compiled_sums(args[0], args[1], 4, args[2]) is None
    labels_beyond = labels.copy()
    labels_beyond[::7] = 5  # above size: np.bincount's sums leave them out
    got = ClusterSums.of(labels_beyond, values, 4)
    negative = labels.copy()
    negative[3] = -1
    with pytest.raises(ValueError):
        ClusterSums.of(negative, values, 4)
    _bincount_route(monkeypatch)
    _assert_same_sums(got, ClusterSums.of(labels_beyond, values, 4))
    for args in other_input[:4]:
        np.testing.assert_array_equal(
            ClusterSums.of(args[0], args[1], 4, args[2]).counts,
            np.bincount(labels, weights=args[2], minlength=4),
        )
