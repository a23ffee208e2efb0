"""Counting packed pixel values into one dense array (numba; imported when a lazy
histogram is counted, so that importing the package stays quick).

A chunk's values packed into integer keys (:func:`~..features.pack_keys`) are counted by
incrementing ``counts[key]``: one pass over the keys, no sort, where ``np.unique`` sorted
every chunk and every merge of chunks. Used when the keys' range is small enough for one
counter per possible value (8-bit RGB: 2**24 counters, 16-bit grey: 2**16).

Counters are 16-bit (32 MB for 8-bit RGB): a counter about to pass 65,535 hands 65,535
pixels to a list of carries and goes on from 1, so that any number of pixels is counted
exactly and a counter once above 0 never returns to 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: What a 16-bit counter hands to the carries before it would overflow.
CARRY = 0xFFFF
#: Carries recorded per call of the loop (it resumes where the buffer filled up).
CARRY_BUFFER = 1024


@njit(cache=True, nogil=True)
def add_keys(
    counts: np.ndarray, keys: np.ndarray, start: int, carries: np.ndarray
) -> tuple[int, int, int]:
    """``counts[key] += 1`` for the keys from ``start`` on, a full counter's 65,535 pixels
    into ``carries``. Returns where it stopped (``len(keys)`` when done; earlier when
    ``carries`` is full), how many keys it counted first, and how many carries it wrote."""
    new = 0
    n_carries = 0
    for i in range(start, len(keys)):
        key = keys[i]
        count = counts[key]
        if count == 0:
            new += 1
        elif count == CARRY:
            if n_carries == len(carries):
                return i, new, n_carries
            carries[n_carries] = key
            n_carries += 1
            count = 0
        counts[key] = count + 1
    return len(keys), new, n_carries


class KeyCounts:
    """Counts of every possible key ``0 .. n_keys - 1``, filled chunk by chunk.

    ``n_distinct`` is the number of keys counted so far.
    """

    def __init__(self, n_keys: int):
        self.counts = np.zeros(n_keys, dtype=np.uint16)
        self.carries: list[np.ndarray] = []
        self.n_distinct = 0
        self._buffer = np.empty(CARRY_BUFFER, dtype=np.int64)

    def add(self, keys: np.ndarray) -> None:
        start = 0
        while True:
            start, new, n_carries = add_keys(self.counts, keys, start, self._buffer)
            self.n_distinct += new
            if n_carries:
                self.carries.append(self._buffer[:n_carries].copy())
            if start == len(keys):
                return

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """The keys counted (sorted, int64) and their counts (float64, exact), as
        ``np.unique`` and ``np.bincount`` give them."""
        keys = np.flatnonzero(self.counts)
        counts = self.counts[keys].astype(np.float64)
        if self.carries:
            carried, times = np.unique(np.concatenate(self.carries), return_counts=True)
            counts[np.searchsorted(keys, carried)] += float(CARRY) * times
        return keys.astype(np.int64), counts


def warm_up() -> None:
    """Compile the counting loop for 32-bit keys, or load it from numba's disk cache."""
    KeyCounts(4).add(np.array([1, 3, 1], dtype=np.uint32))
