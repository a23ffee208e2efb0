"""Pixel counts and value sums per cluster: exact for integer images, never wrapping.

The mean color of a cluster (the palette, the table's means, the quantized image) is a
sum divided by a count. Summed in float64, integers above 2**53 lose digits and a cast
back to the image's dtype can wrap (2**64 - 1 rounds to 2**64, which is 0 as uint64).
So integer values are summed exactly: each value (minus the smallest) is cut into limbs
small enough that ``np.bincount``'s float64 sums of them are exact integers, and the
limbs are joined as Python integers (only k x C numbers). Means are then correctly
rounded to float64 (palette, table) or rounded half to even in the image's own integer
dtype (quantized): a cluster of identical values gets exactly that value back, and the
mean of values of a dtype always lies in the dtype's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Integers up to 2**53 are exact in float64.
EXACT_FLOAT_BITS = 53


@dataclass
class ClusterSums:
    """Pixel count and per-channel sum of values of each cluster.

    Attributes
    ----------
    counts : ndarray (k,) float64
        Pixels per cluster (whole numbers).
    sums : ndarray (k, C)
        Sums of each channel: Python integers (object dtype, exact) for integer and
        boolean images, float64 for float images.
    """

    counts: np.ndarray
    sums: np.ndarray

    @classmethod
    def of(
        cls, labels: np.ndarray, values: np.ndarray, size: int, weights: np.ndarray | None = None
    ) -> ClusterSums:
        """Sums of the rows of ``values`` (N, C) per label in ``labels`` (N,), labels below
        ``size``; each row counted ``weights`` (whole numbers) times. Pixels without
        data (NaN, inf) must be labelled 0: they only reach the sums of label 0, which the
        callers then drop."""
        labels = np.asarray(labels).ravel()
        compiled = _compiled_sums(labels, values, size, weights)
        if compiled is not None:
            return compiled
        counts = np.bincount(labels, weights=weights, minlength=size)[:size].astype(np.float64)
        n_channels = values.shape[1]
        if values.dtype.kind in "biu":
            sums = np.empty((size, n_channels), dtype=object)
            for c in range(n_channels):
                sums[:, c] = _exact_sums(labels, values[:, c], size, weights)
        else:
            sums = np.zeros((size, n_channels))
            for c in range(n_channels):
                column = values[:, c].astype(np.float64)
                if weights is not None:
                    column *= weights
                sums[:, c] = np.bincount(labels, weights=column, minlength=size)[:size]
        return cls(counts, sums)

    @classmethod
    def empty(cls, size: int, n_channels: int, dtype: npt.DTypeLike) -> ClusterSums:
        exact = np.dtype(dtype).kind in "biu"
        sums = (
            np.full((size, n_channels), 0, dtype=object) if exact else np.zeros((size, n_channels))
        )
        return cls(np.zeros(size), sums)

    def __add__(self, other: ClusterSums) -> ClusterSums:
        return ClusterSums(self.counts + other.counts, self.sums + other.sums)

    def take(self, index: slice | npt.NDArray[np.integer | np.bool_]) -> ClusterSums:
        """The clusters at ``index`` (a slice, indices or a boolean mask)."""
        return ClusterSums(self.counts[index], self.sums[index])

    def total(self) -> ClusterSums:
        """All clusters together, as one."""
        return ClusterSums(self.counts.sum(keepdims=True), self.sums.sum(axis=0)[None])

    def means(self) -> np.ndarray:
        """(k, C) float64 mean of each cluster (0 for an empty one); correctly rounded
        for integer images, and never beyond the values averaged."""
        if self.sums.dtype != object:
            return self.sums / np.maximum(self.counts, 1)[:, None]
        out = np.zeros(self.sums.shape)
        for i, (row, count) in enumerate(zip(self.sums, self.counts)):
            if count:
                out[i] = [int(total) / int(count) for total in row]  # exact int / int
        return out

    def as_dtype(
        self,
        dtype: npt.DTypeLike,
        low: npt.ArrayLike | None = None,
        high: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        """(k, C) means in ``dtype``: integers rounded half to even, exactly; booleans
        True from a mean of 0.5; floats clipped to ``low``..``high`` per channel (the
        image's range, where float rounding could overshoot it) and the dtype's range."""
        dtype = np.dtype(dtype)
        if dtype.kind == "b":
            return self.means() >= 0.5
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            out = np.zeros(self.sums.shape, dtype=dtype)
            for i, (row, count) in enumerate(zip(self.sums, self.counts)):
                if count:
                    out[i] = [
                        min(max(_divide_rounded(total, count), int(info.min)), int(info.max))
                        for total in row
                    ]
            return out
        means = self.means()
        if low is not None and high is not None:
            means = np.clip(means, np.asarray(low, float), np.asarray(high, float))
        info = np.finfo(dtype)
        return np.clip(means, float(info.min), float(info.max)).astype(dtype)


def _divide_rounded(total: int | float, count: float) -> int:
    """``total / count`` rounded half to even, in exact integer arithmetic."""
    if isinstance(total, float):  # float sums (not exact): round the float mean
        return int(np.rint(total / count))
    count = int(count)
    quotient, remainder = divmod(int(total), count)
    if 2 * remainder > count or (2 * remainder == count and quotient % 2):
        quotient += 1
    return quotient


def _compiled_sums(
    labels: np.ndarray, values: np.ndarray, size: int, weights: np.ndarray | None
) -> ClusterSums | None:
    """:meth:`ClusterSums.of` of 8- and 16-bit (and boolean) values whose float64 sums are
    exact (see :func:`_exact_sums`) in one compiled pass, with the same additions in the
    same order as its ``np.bincount`` calls: the same numbers. None for other input."""
    if values.dtype == bool:
        values = values.view(np.uint8)
    if not (
        values.dtype in (np.uint8, np.uint16)
        and values.ndim == 2
        and values.flags.c_contiguous
        and labels.dtype == np.int32
        and len(labels) == len(values) > 0
        and (weights is None or (weights.dtype == np.float64 and weights.shape == labels.shape))
        and _weight_bits(len(values), weights) + (2**16).bit_length() <= EXACT_FLOAT_BITS
    ):
        return None
    from . import _distinct_loops

    counts, sums = np.zeros(size), np.zeros((size, values.shape[1]))
    if not _distinct_loops.label_sums(
        labels, values, np.empty(0) if weights is None else weights, counts, sums
    ):
        return None  # a label out of range: np.bincount's way
    return ClusterSums(counts, sums.astype(np.int64).astype(object))


def _weight_bits(n_values: int, weights: np.ndarray | None) -> int:
    """Bits of the total weight of ``n_values`` rows, at least 1."""
    total_weight = n_values if weights is None else int(np.ceil(weights.sum()))
    return max(total_weight, 1).bit_length()


def _exact_sums(
    labels: np.ndarray, column: np.ndarray, size: int, weights: np.ndarray | None
) -> np.ndarray:
    """(size,) exact sums (Python ints) of an integer ``column`` per label."""
    if column.dtype == bool:
        column = column.view(np.uint8)
    out = np.full(size, 0, dtype=object)
    if len(column) == 0:
        return out
    weight_bits = _weight_bits(len(column), weights)
    bound = 2**16 if column.dtype.itemsize <= 2 else None  # largest |value| possible
    if bound is None or bound.bit_length() + weight_bits > EXACT_FLOAT_BITS:
        low, high = int(column.min()), int(column.max())
        bound = max(abs(low), abs(high))
    if bound.bit_length() + weight_bits <= EXACT_FLOAT_BITS:
        values = column.astype(np.float64)  # every partial sum is a float64-exact integer
        return _int_sums(labels, values, size, weights)
    offsets = _offsets(column, low)  # 0 <= value - low < 2**64
    limb_bits = max(1, EXACT_FLOAT_BITS - weight_bits)
    counts = np.bincount(labels, weights=weights, minlength=size)[:size]
    out += counts.astype(np.int64).astype(object) * low
    mask = np.uint64((1 << limb_bits) - 1) if limb_bits < 64 else np.uint64(2**64 - 1)
    span = high - low
    shift = 0
    while span >> shift:
        limb = ((offsets >> np.uint64(shift)) & mask).astype(np.float64)
        out += _int_sums(labels, limb, size, weights) * (1 << shift)
        shift += limb_bits
    return out


def _int_sums(
    labels: np.ndarray, values: np.ndarray, size: int, weights: np.ndarray | None
) -> np.ndarray:
    if weights is not None:
        values = values * weights
    sums = np.bincount(labels, weights=values, minlength=size)[:size]
    return sums.astype(np.int64).astype(object)


def _offsets(column: np.ndarray, low: int) -> np.ndarray:
    """``column - low`` as uint64, exact (computed modulo 2**64; the result fits)."""
    if column.dtype.kind == "u":
        return column.astype(np.uint64) - np.uint64(low)
    return column.astype(np.int64).view(np.uint64) - np.uint64(low % 2**64)
