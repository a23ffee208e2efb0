"""The compiled loops of :mod:`.features` (numba; imported when an integer image is first
compressed, so that importing the package stays quick): the distinct rows of an integer
image without sorting, the lookup of a label per row for every pixel, the columns'
weighted mean and variance with numpy's own arithmetic (the same bits, one pass each),
and the pixel counts and value sums per label of :class:`~.means.ClusterSums` (numpy's
``bincount`` additions, for every column in one pass).

Each pixel's values are packed into one key (its index in the grid of possible values,
as :func:`~.features.pack_keys` packs them) and the key's bit is set in a bitset of every
possible key: for 8-bit RGB 2**24 bits (2 MB, cache-resident), where ``np.unique``
sorted the keys and ``np.bincount`` filled and scanned 2**24 eight-byte counters. The set
bits in order are the distinct rows in ``np.unique``'s order; a row's index is the
number of set bits before its key (a prefix count per 64-bit word and a popcount), so
the inverse index and the counts come from one more pass over the pixels.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import numpy as np
from numba import njit

#: Rows per thread at least (smaller images are done in the calling thread): at 512²
#: two threads gain nothing on repeated calls and lose ~4 ms on a process's first (the
#: second thread's bitset is fresh pages); from 1024² they save a quarter on repeated calls.
PART_MIN_ROWS = 2**19
#: Bitsets of at most this many 64-bit words (2**24 keys: 8-bit RGB, 2 MB) and their
#: word ranks are kept between calls, zeroed again, rather than allocated: the first
#: touch of fresh pages costs ~0.3 ms per MB, a fifth of the distinct rows of a 512² image.
SCRATCH_MAX_WORDS = 2**18

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


@njit(cache=True, nogil=True, inline="always")
def _key3(
    values: np.ndarray, i: int, low0: Any, low1: Any, low2: Any, width1: Any, width2: Any
) -> np.uint64:
    """:func:`_key` of a row of three columns, the lows and widths held in locals (in a
    loop over the columns, and reloaded from their arrays for each row, keys took twice as
    long: the loops below are mostly this)."""
    key = np.uint64(np.int64(values[i, 0]) - low0) << width1
    key = (key | np.uint64(np.int64(values[i, 1]) - low1)) << width2
    return key | np.uint64(np.int64(values[i, 2]) - low2)


@njit(cache=True, nogil=True)
def mark_keys(values: np.ndarray, lows: np.ndarray, widths: np.ndarray, bits: np.ndarray) -> None:
    """Set the bit of every row's key in ``bits`` (``(n_keys + 63) // 64`` uint64 words)."""
    if values.shape[1] == 3:  # colors
        low0, low1, low2, width1, width2 = lows[0], lows[1], lows[2], widths[1], widths[2]
        for i in range(values.shape[0]):
            key = _key3(values, i, low0, low1, low2, width1, width2)
            bits[key >> _SIX] |= _ONE << (key & _LOW_BITS)
        return
    for i in range(values.shape[0]):
        key = _key(values, i, lows, widths)
        bits[key >> _SIX] |= _ONE << (key & _LOW_BITS)


@njit(cache=True, nogil=True)
def rank_words(bitsets: np.ndarray, ranks: np.ndarray) -> int:
    """Joins the bitsets (rows of ``bitsets``) into the first, leaving the others all zero;
    ``ranks[w]`` = set bits in the words before ``w``; returns all set bits."""
    bits = bitsets[0]
    total = 0
    for w in range(len(bits)):
        word = bits[w]
        for p in range(1, len(bitsets)):
            word |= bitsets[p, w]
            bitsets[p, w] = 0
        bits[w] = word
        ranks[w] = total
        total += np.int64(_popcount(word))
    return total


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
    (float64, whole numbers) of each row's pixels, counted in a second loop (faster than
    counting in the first: no chain of increments of one counter through memory)."""
    if values.shape[1] == 3:  # colors (see _key3)
        low0, low1, low2, width1, width2 = lows[0], lows[1], lows[2], widths[1], widths[2]
        for i in range(values.shape[0]):
            key = _key3(values, i, low0, low1, low2, width1, width2)
            word = key >> _SIX
            below = bits[word] & ((_ONE << (key & _LOW_BITS)) - _ONE)
            inverse[i] = ranks[word] + np.int64(_popcount(below))
    else:
        for i in range(values.shape[0]):
            key = _key(values, i, lows, widths)
            word = key >> _SIX
            below = bits[word] & ((_ONE << (key & _LOW_BITS)) - _ONE)
            inverse[i] = ranks[word] + np.int64(_popcount(below))
    for i in range(len(inverse)):
        counts[inverse[i]] += 1.0


@njit(cache=True, nogil=True)
def present_rows(bits: np.ndarray, lows: np.ndarray, widths: np.ndarray, rows: np.ndarray) -> None:
    """The rows of values whose key's bit is set, in ascending key order, into ``rows``
    (one row per set bit; the inverse of the packing); ``bits`` is left all zero."""
    n_columns = rows.shape[1]
    masks = np.empty(n_columns, dtype=np.uint64)
    shifts = np.empty(n_columns, dtype=np.uint64)
    shift = np.uint64(0)
    for c in range(n_columns - 1, -1, -1):
        masks[c] = (_ONE << widths[c]) - _ONE
        shifts[c] = shift
        shift += widths[c]
    n = 0
    for w in range(len(bits)):
        word = bits[w]
        if word == 0:
            continue
        bits[w] = 0
        first_key = np.uint64(w * 64)
        while word:
            key = first_key + _popcount((word & (~word + _ONE)) - _ONE)  # the lowest set bit
            for c in range(n_columns):
                rows[n, c] = np.int64((key >> shifts[c]) & masks[c]) + lows[c]
            n += 1
            word &= word - _ONE


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
    (``total``: their sum; ``weights`` empty: once, ``total`` the rows), with numpy's
    arithmetic for a C-ordered ``X`` of two or more columns: ``np.average(X, axis=0,
    weights=...)`` and of ``(X - mean) ** 2`` (or ``np.mean``, ``np.var``) sum the
    products row after row (no pairwise summation across rows), so do these loops (a
    weight of 1.0 changes no product). Three columns are summed in registers."""
    n, f = X.shape
    weighted = len(weights) == n
    if f == 3:
        s0 = s1 = s2 = 0.0
        for i in range(n):
            w = weights[i] if weighted else 1.0
            s0 += X[i, 0] * w
            s1 += X[i, 1] * w
            s2 += X[i, 2] * w
        m0, m1, m2 = s0 / total, s1 / total, s2 / total
        q0 = q1 = q2 = 0.0
        for i in range(n):
            w = weights[i] if weighted else 1.0
            d0, d1, d2 = X[i, 0] - m0, X[i, 1] - m1, X[i, 2] - m2
            q0 += (d0 * d0) * w
            q1 += (d1 * d1) * w
            q2 += (d2 * d2) * w
        return np.array([m0, m1, m2]), np.array([q0, q1, q2]) / total
    sums = np.zeros(f)
    for i in range(n):
        w = weights[i] if weighted else 1.0
        for c in range(f):
            sums[c] += X[i, c] * w
    mean = sums / total
    squares = np.zeros(f)
    for i in range(n):
        w = weights[i] if weighted else 1.0
        for c in range(f):
            d = X[i, c] - mean[c]
            squares[c] += (d * d) * w
    return mean, squares / total


@njit(cache=True, nogil=True)
def label_sums(
    labels: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    counts: np.ndarray,
    sums: np.ndarray,
) -> bool:
    """Adds each row's weight (``weights`` empty: 1.0) to ``counts[label]`` and its values
    (as float64) times its weight to ``sums[label]``, row after row: the additions of
    ``np.bincount(labels, weights=...)``, in one pass for every column. False (the sums
    left incomplete) at a label outside ``0..len(counts) - 1``."""
    n, f = values.shape
    size = len(counts)
    weighted = len(weights) == n
    for i in range(n):
        label = labels[i]
        if label < 0 or label >= size:
            return False
        w = weights[i] if weighted else 1.0
        counts[label] += w
        for c in range(f):
            sums[label, c] += np.float64(values[i, c]) * w
    return True


def take(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for a 1-D ``table`` and an int32 ``index`` (a label per row to a
    label per pixel), split between threads."""
    out = np.empty(len(index), dtype=table.dtype)
    _in_threads(gather, [(table, index[part], out[part]) for part in _parts(len(index))])
    return out


def distinct_keyed_rows(
    values: np.ndarray, lows: np.ndarray, widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of ``values`` (``(N, C)`` C-contiguous uint8, uint16 or int64;
    channel ``c`` takes ``widths[c]`` bits of the key, its values minus ``lows[c]``) in
    ascending key order (same dtype and columns), their counts (float64) and the inverse
    index (int32, or int64 beyond 2**31 rows). Large images are split between threads
    (each marks its own bitset and counts its own rows; the bitsets are joined, the counts
    added: exact)."""
    parts = _parts(len(values))
    n_words = max(1, (1 << int(widths.sum())) // 64)
    rank_dtype = np.int32 if len(values) < 2**31 else np.int64
    with _scratch(n_words, len(parts), rank_dtype) as (bitsets, ranks):
        _in_threads(
            mark_keys, [(values[part], lows, widths, b) for part, b in zip(parts, bitsets)]
        )
        n_rows = rank_words(bitsets, ranks)
        bits = bitsets[0]
        inverse = np.empty(len(values), dtype=np.int32 if n_rows < 2**31 else np.int64)
        counts = [np.zeros(n_rows) for _ in parts]
        _in_threads(
            index_rows,
            [(values[p], lows, widths, bits, ranks, inverse[p], c) for p, c in zip(parts, counts)],
        )
        rows = np.empty((n_rows, values.shape[1]), dtype=values.dtype)
        present_rows(bits, lows, widths, rows)  # and zeroes the bitset again
    total = counts[0]
    for part_counts in counts[1:]:
        total += part_counts
    return rows, total, inverse


_SCRATCH_LOCK = threading.Lock()
#: Kept buffers: all-zero words for the bitsets of the threads, and int32 ranks.
_SCRATCH: dict[str, np.ndarray] = {}


@contextmanager
def _scratch(
    n_words: int, n_parts: int, rank_dtype: type[np.int32 | np.int64]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(n_parts, n_words)`` all-zero bitsets and ``n_words`` ranks: the kept ones when
    they are large enough and free (the caller leaves the bitsets all zero), otherwise
    new ones."""
    if (
        n_words > SCRATCH_MAX_WORDS
        or rank_dtype != np.int32
        or not _SCRATCH_LOCK.acquire(blocking=False)
    ):
        yield np.zeros((n_parts, n_words), dtype=np.uint64), np.empty(n_words, rank_dtype)
        return
    try:
        if len(_SCRATCH.get("bitsets", ())) < n_parts * SCRATCH_MAX_WORDS:
            _SCRATCH["bitsets"] = np.zeros(n_parts * SCRATCH_MAX_WORDS, dtype=np.uint64)
        if "ranks" not in _SCRATCH:
            _SCRATCH["ranks"] = np.empty(SCRATCH_MAX_WORDS, dtype=np.int32)
        bitsets = _SCRATCH["bitsets"][: n_parts * n_words].reshape(n_parts, n_words)
        yield bitsets, _SCRATCH["ranks"][:n_words]
    except BaseException:
        _SCRATCH.pop("bitsets", None)  # maybe not all zero: new ones next time
        raise
    finally:
        _SCRATCH_LOCK.release()


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
    """``loop(*a)`` for each ``a``: the first in this thread, the others in the kept
    threads of :func:`_pool` (starting threads anew costs ~0.1-0.4 ms a call)."""
    if len(arguments) == 1:
        loop(*arguments[0])
        return
    pool = _pool()
    others = [pool.submit(loop, *a) for a in arguments[1:]]
    try:
        loop(*arguments[0])
    finally:
        for other in others:
            other.result()


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Threads kept for the parts of every call (their tasks never wait for other tasks
    of the pool, so calls from several threads at once only queue)."""
    return ThreadPoolExecutor(
        max_workers=max(1, _n_cores() - 1), thread_name_prefix="distinct-rows"
    )


def _reset_after_fork() -> None:
    """In a forked child: the parent's threads are gone (a kept pool would never run the
    parts), and a call in another of its threads may have held the kept bitsets."""
    global _SCRATCH_LOCK
    if _SCRATCH_LOCK.locked():
        _SCRATCH.clear()
    _SCRATCH_LOCK = threading.Lock()
    _pool.cache_clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def warm_up() -> None:
    """Compile the loops for 8-bit, 16-bit and int64 values, the lookup of int32 labels,
    the column statistics and the sums per label of 8- and 16-bit values (or load them
    from numba's disk cache)."""
    for dtype in (np.uint8, np.uint16, np.int64):
        values = np.array([[3, 1], [0, 2], [3, 1]], dtype=dtype)
        lows, widths = np.zeros(2, dtype=np.int64), np.full(2, 2, dtype=np.uint64)
        distinct_keyed_rows(values, lows, widths)
    take(np.arange(3, dtype=np.int32), np.array([2, 0], dtype=np.int32))
    X = np.array([[0.5, 1.0], [0.25, 2.0]])
    column_mean_var(X, np.array([1.0, 2.0]), 3.0)
    for dtype in (np.uint8, np.uint16):  # the sums of clusters of 8- and 16-bit images
        label_sums(
            np.array([1, 0], dtype=np.int32),
            np.array([[3], [4]], dtype=dtype),
            np.array([1.0, 2.0]),
            np.zeros(2),
            np.zeros((2, 1)),
        )
