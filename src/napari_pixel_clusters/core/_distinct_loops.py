"""The compiled loops of :mod:`.features` (numba; imported when an integer image is first
compressed, so that importing the package stays quick): the distinct rows of an integer
image without sorting, the lookup of a label per row for every pixel, and the columns'
weighted mean and variance with numpy's own arithmetic (the same bits, one pass each).

Each pixel's values are packed into one key (its index in the grid of possible values,
as :func:`~.features.pack_keys` packs them) and the key's bit is set in a bitset of every
possible key: for 8-bit RGB 2**24 bits (2 MB, cache-resident), where ``np.unique``
sorted the keys and ``np.bincount`` filled and scanned 2**24 eight-byte counters. The set
bits in order are the distinct rows in ``np.unique``'s order; a row's index is the
number of set bits before its key (a prefix count per 64-bit word and a popcount), so
the inverse index and the counts come from one more pass over the pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np
from numba import njit

#: Rows per thread at least (smaller images are done in the calling thread).
PART_MIN_ROWS = 2**17

_ONE = np.uint64(1)
_SIX = np.uint64(6)
_LOW_BITS = np.uint64(63)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_SHIFT_TOP = np.uint64(56)


@njit(cache=True, nogil=True, inline="always")
def _popcount(x: np.uint64) -> np.uint64:
    """Set bits of a 64-bit word (the SWAR count, which LLVM turns into ``popcnt``)."""
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> _SHIFT_TOP


@njit(cache=True, nogil=True, inline="always")
def _key(values: np.ndarray, i: int, lows: np.ndarray, widths: np.ndarray) -> np.uint64:
    key = np.uint64(0)
    for c in range(values.shape[1]):
        key = (key << widths[c]) | np.uint64(np.int64(values[i, c]) - lows[c])
    return key


@njit(cache=True, nogil=True)
def mark_keys(values: np.ndarray, lows: np.ndarray, widths: np.ndarray, bits: np.ndarray) -> None:
    """Set the bit of every row's key in ``bits`` (``(n_keys + 63) // 64`` uint64 words)."""
    for i in range(values.shape[0]):
        key = _key(values, i, lows, widths)
        bits[key >> _SIX] |= _ONE << (key & _LOW_BITS)


@njit(cache=True, nogil=True)
def rank_words(bits: np.ndarray, ranks: np.ndarray) -> int:
    """``ranks[w]`` = set bits in the words before ``w``; returns all set bits."""
    total = 0
    for w in range(len(bits)):
        ranks[w] = total
        total += np.int64(_popcount(bits[w]))
    return total


@njit(cache=True, nogil=True)
def present_keys(bits: np.ndarray, n_rows: int) -> np.ndarray:
    """The keys whose bit is set, ascending (int64)."""
    keys = np.empty(n_rows, dtype=np.int64)
    n = 0
    for w in range(len(bits)):
        word = bits[w]
        while word:
            low = word & (~word + _ONE)  # the lowest set bit
            keys[n] = w * 64 + np.int64(_popcount(low - _ONE))
            n += 1
            word ^= low
    return keys


@njit(cache=True, nogil=True)
def index_rows(
    values: np.ndarray,
    lows: np.ndarray,
    widths: np.ndarray,
    bits: np.ndarray,
    ranks: np.ndarray,
    inverse: np.ndarray,
    counts: np.ndarray,
) -> None:
    """``inverse[i]``: the row of pixel ``i`` (the set bits before its key); ``counts``
    (integers) of each row's pixels, counted in a second loop (faster than counting in
    the first: no chain of increments of one counter through memory)."""
    for i in range(values.shape[0]):
        key = _key(values, i, lows, widths)
        word = key >> _SIX
        below = bits[word] & ((_ONE << (key & _LOW_BITS)) - _ONE)
        inverse[i] = ranks[word] + np.int64(_popcount(below))
    for i in range(len(inverse)):
        counts[inverse[i]] += 1


@njit(cache=True, nogil=True)
def unpack_rows(keys: np.ndarray, lows: np.ndarray, widths: np.ndarray, rows: np.ndarray) -> None:
    """The rows of values behind ``keys`` (the inverse of the packing), into ``rows``."""
    for i in range(len(keys)):
        remaining = np.uint64(keys[i])
        for c in range(rows.shape[1] - 1, -1, -1):
            rows[i, c] = np.int64(remaining & ((_ONE << widths[c]) - _ONE)) + lows[c]
            remaining >>= widths[c]


@njit(cache=True, nogil=True)
def gather(table: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = table[index[i]]``."""
    for i in range(len(index)):
        out[i] = table[index[i]]


@njit(cache=True, nogil=True)
def column_mean_var(
    X: np.ndarray, weights: np.ndarray, total: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each column of ``X``, row ``i`` counted ``weights[i]`` times
    (``total``: their sum), with numpy's arithmetic for a C-ordered ``X`` of two or more
    columns: ``np.average(X, axis=0, weights=...)`` and of ``(X - mean) ** 2`` sum the
    products row after row (no pairwise summation across rows), so do these loops."""
    n, f = X.shape
    sums = np.zeros(f)
    for i in range(n):
        for c in range(f):
            sums[c] += X[i, c] * weights[i]
    mean = sums / total
    squares = np.zeros(f)
    for i in range(n):
        for c in range(f):
            d = X[i, c] - mean[c]
            squares[c] += (d * d) * weights[i]
    return mean, squares / total


@njit(cache=True, nogil=True)
def column_mean_var_unweighted(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.mean(X, axis=0)`` and ``np.var(X, axis=0)`` of a C-ordered ``X`` of two or
    more columns, with numpy's arithmetic (sums row after row)."""
    n, f = X.shape
    sums = np.zeros(f)
    for i in range(n):
        for c in range(f):
            sums[c] += X[i, c]
    mean = sums / n
    squares = np.zeros(f)
    for i in range(n):
        for c in range(f):
            d = X[i, c] - mean[c]
            squares[c] += d * d
    return mean, squares / n


def take(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for a 1-D ``table`` and an int32 ``index`` (a label per row to a
    label per pixel), split between threads."""
    out = np.empty(len(index), dtype=table.dtype)
    _in_threads(gather, [(table, index[part], out[part]) for part in _parts(len(index))])
    return out


def distinct_keyed_rows(
    values: np.ndarray, lows: np.ndarray, widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct keys of the rows of ``values`` (``(N, C)`` C-contiguous uint8,
    uint16 or int64; channel ``c`` takes ``widths[c]`` bits of the key, its values minus
    ``lows[c]``), their counts (float64) and the inverse index (int32, or int64 beyond
    2**31 rows). Large images are split between threads (each marks its own bitset and
    counts its own rows; the bitsets are joined, the counts added: exact)."""
    parts = _parts(len(values))
    n_words = max(1, (1 << int(widths.sum())) // 64)
    bitsets = [np.zeros(n_words, dtype=np.uint64) for _ in parts]
    _in_threads(mark_keys, [(values[part], lows, widths, b) for part, b in zip(parts, bitsets)])
    bits = bitsets[0]
    for other in bitsets[1:]:
        np.bitwise_or(bits, other, out=bits)
    del bitsets
    ranks = np.empty(n_words, dtype=np.int32 if len(values) < 2**31 else np.int64)
    n_rows = rank_words(bits, ranks)
    inverse = np.empty(len(values), dtype=np.int32 if n_rows < 2**31 else np.int64)
    counts = [np.zeros(n_rows, dtype=ranks.dtype) for _ in parts]
    _in_threads(
        index_rows,
        [(values[p], lows, widths, bits, ranks, inverse[p], c) for p, c in zip(parts, counts)],
    )
    total = counts[0].astype(np.float64)
    for part_counts in counts[1:]:
        total += part_counts
    return present_keys(bits, n_rows), total, inverse


def _parts(n: int) -> list[slice]:
    """Row ranges of the threads (one per core, each at least PART_MIN_ROWS)."""
    n_parts = max(1, min(_n_cores(), n // PART_MIN_ROWS))
    bounds = [n * i // n_parts for i in range(n_parts + 1)]
    return [slice(a, b) for a, b in pairwise(bounds)]


def _n_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _in_threads(loop: Callable[..., None], arguments: list[tuple[Any, ...]]) -> None:
    """``loop(*a)`` for each ``a``: the first in this thread, the others in their own."""
    if len(arguments) == 1:
        loop(*arguments[0])
        return
    with ThreadPoolExecutor(max_workers=len(arguments) - 1) as pool:
        others = [pool.submit(loop, *a) for a in arguments[1:]]
        loop(*arguments[0])
        for other in others:
            other.result()


def warm_up() -> None:
    """Compile the loops for 8-bit, 16-bit and int64 values, the lookup of int32 labels
    and the column statistics (or load them from numba's disk cache)."""
    for dtype in (np.uint8, np.uint16, np.int64):
        values = np.array([[3, 1], [0, 2], [3, 1]], dtype=dtype)
        lows, widths = np.zeros(2, dtype=np.int64), np.full(2, 2, dtype=np.uint64)
        keys, _, _ = distinct_keyed_rows(values, lows, widths)
        unpack_rows(keys, lows, widths, np.empty((len(keys), 2), dtype=dtype))
    take(np.arange(3, dtype=np.int32), np.array([2, 0], dtype=np.int32))
    X = np.array([[0.5, 1.0], [0.25, 2.0]])
    column_mean_var(X, np.array([1.0, 2.0]), 3.0)
    column_mean_var_unweighted(X)
