"""scikit-learn's ``KMeans`` (Lloyd) on weighted rows, compiled (numba).

What scikit-learn computes
--------------------------
``KMeans(n_clusters, init=..., n_init=..., max_iter=..., tol=..., random_state=...)
.fit(X, sample_weight=w)`` sets its threshold to ``tol`` times the mean column variance
of ``X``, centers ``X`` on its (unweighted) column means and runs ``n_init`` starts. Each
start draws its centers from one ``RandomState`` shared by all starts (k-means++, or a
``choice`` of rows for "random"; an explicit array, centered the same way, is one start)
and repeats Lloyd iterations (``_kmeans_single_lloyd``):

1. E-step: every row goes to the center of least ``|c|² - 2 x.c`` (``|c|²`` by
   ``row_norms``, ``x.c`` by BLAS), the first one on a tie;
2. M-step: each cluster's weighted sum and weight; a cluster that received no row takes
   the row farthest from its center (``_relocate_empty_clusters_dense``); centers are the
   sums times the reciprocal of the weights (an empty one: the heaviest cluster's center);
   ``center_shift`` is how far each center moved;
3. stop when no label changed ("strict convergence"), when the summed squared shifts are
   at most the threshold, or after ``max_iter`` iterations; unless the labels did not
   change, one more E-step relabels the rows with the final centers.

The inertia is the weighted sum of squared distances to the assigned centers; the start
kept is the first of lowest inertia (a later start replaces it only when its inertia is
lower and its clustering differs).

How it is computed here
-----------------------
The same steps in the same order on the same centered rows, from the same starting
centers, with two differences.

*An E-step does not compute every distance.* Each row keeps an upper bound on its distance
to its center and a lower bound on its distance to every other center (Hamerly 2010); when
the centers move, the upper bound grows by its center's shift and the lower one shrinks by
the largest shift of the other centers. A row whose bounds show that its own center is
nearer than any other, by a margin far above rounding (:data:`MARGIN`, :data:`SLACK`),
keeps it without computing any distance; otherwise all ``k`` distances are computed by
scikit-learn's formula: ``|c|²`` as ``row_norms`` computes it (:func:`squared_norms`:
numpy's ``einsum`` steps, checked against ``row_norms`` before use) and ``x.c``
accumulated feature by feature with fused multiply-adds, as BLAS's kernels do. So a row is
labelled as scikit-learn labels it; rows exactly as far from two centers (pixel colors are
a lattice, and k-means++ starts from pixel colors) are decided by the same rounding where
BLAS accumulates that way (x86-64 with FMA: checked in the tests), and otherwise either
center may win.

*The M-step moves only the rows that changed cluster.* Each cluster's weighted sum and
weight are kept compensated (every rounding error kept beside them, Knuth's TwoSum), so
that taking rows out leaves no trace; they are summed afresh in the first iteration and
after a relocation. Rows are labelled in blocks of :data:`BLOCK_ROWS`; each block's change
is added in block order, so the sums are the same whether one thread labels every block or
several share them out. The centers equal scikit-learn's to rounding (its sums follow its
threads' order).

k-means++ (:func:`kmeans_plusplus`) is scikit-learn's ``_kmeans_plusplus``: the same draws
from the same ``RandomState`` and the same distances; each candidate's potential is summed
in one compiled pass (BLAS sums them in its own order). Empty clusters are relocated by
:func:`relocate_empty_clusters`: the numpy operations of scikit-learn's routine.

How it runs fast
----------------
A start's iterations run in one compiled call (:func:`lloyd`; it returns only to relocate
an empty cluster); the stopping rule's sum is numpy's pairwise sum (:func:`numpy_sum`).
An E-step checks the bounds of :data:`OPEN_ROWS` rows at a time in one pass without
branches (up to :data:`FEW_CENTERS` centers, a row's entries of the per-center tables are
picked by a tree of selects on its label's bits, not looked up: vector instructions), lists
the open rows eight flags a word (trailing zeros), then labels them in batches of
:data:`BATCH_ROWS`, their features gathered as columns so that each center's distances to
the batch are vector instructions (three features: the gather unrolled, two centers a
pass). k-means++ works on the feature columns (``X.T``, made once); for colors two
candidates' potentials a pass over slices of :data:`COLOR_CHUNK_ROWS` rows. Loops run from
0 over slices: numba vectorizes those, not a loop from ``start`` over a whole array (it
allows negative indices there). Per start at 512² (113,382 colors, k=8, one thread):
k-means++ ~2.5 ms, an iteration ~0.2-0.4 ms (the bounds leave ~5-30% of the rows open).

k-means++ draws nothing that depends on the distances (its first row, then uniforms scaled
by the potential), so every start's draws are taken first, in scikit-learn's order (the
first row's cdf made once: :func:`first_row_cdf`), and the starts, k-means++ included, run
in parallel threads (the loops release the GIL); fewer starts than CPUs share out each
E-step's blocks (driven from Python, :func:`_run_start_in_parts`).

Threads are kept from fit to fit (:func:`_shared_pool`, made again in a forked child), and
so are the work arrays of 512²-sized images (:func:`_work_array`: fresh pages cost ~1 µs
each to fault in, ~4 ms of such a fit).

First use compiles the loops into numba's cache (with the distinct-color loops,
``kmeans.warm_up``: 15-18 s on two cores, then ~0.25 s to load). What makes it longer: a
constant passed to a compiled function (it is compiled again for that literal value: pass
typed values, as :func:`lloyd` does), numpy calls inside the loops (each compiles its own
overloads; array assignment compiles string formatting for its error message), and
``inline="always"`` (numba inlines at IR level, typing the body again at each call; kept
only for the two tiny compensated-sum helpers of the per-row loops, where it pays at run
time).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, types
from numba.cpython.unsafe.numbers import trailing_zeros as _intrinsic_trailing_zeros

#: A bound decides a label only when it wins by this relative margin (bounds drift by
#: rounding, below 1e-13 relative after thousands of iterations) ...
MARGIN = 1e-10
#: ... and when the squared distances differ by more than this share of the largest
#: ``|x|² + |c|²`` (scikit-learn's formula rounds within about 1e-15 of it).
SLACK = 1e-12
#: Starts run in parallel only while their bounds and labels take at most this many bytes.
PARALLEL_STATE_BYTES = 1 << 30


def _fused_multiply_add() -> Any:
    """The intrinsic ``fma(a, b, c)``: ``a * b + c`` rounded once (LLVM's ``llvm.fma``: one
    instruction on CPUs that have it). Made here so that type checkers see it as Any."""
    from llvmlite import ir  # type: ignore[import-untyped]
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
        signature = types.float64(types.float64, types.float64, types.float64)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            double = ir.DoubleType()
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(double, [double] * 3), "llvm.fma.f64"
            )
            return builder.call(function, args)

        return signature, codegen

    return fma


_fma = _fused_multiply_add()
#: ``trailing_zeros(word)``: the number of zero bits below the lowest set one (one
#: instruction; typed Any for type checkers, which see an intrinsic's signature).
_trailing_zeros: Any = _intrinsic_trailing_zeros


@njit(cache=True, nogil=True)
def _dot(X: np.ndarray, i: int, centers: np.ndarray, j: int) -> float:
    """``X[i] . centers[j]`` as BLAS's kernels accumulate it: fused multiply-adds in
    feature order."""
    total = X[i, 0] * centers[j, 0]
    for f in range(1, X.shape[1]):
        total = _fma(X[i, f], centers[j, f], total)
    return total


@njit(cache=True, nogil=True)
def _squared_distance(a: np.ndarray, i: int, b: np.ndarray, j: int) -> float:
    """scikit-learn's ``_euclidean_dense_dense`` (squared): groups of four features."""
    total = 0.0
    n_features = a.shape[1]
    n_fours = n_features // 4
    for group in range(n_fours):
        f = 4 * group
        d0, d1 = a[i, f] - b[j, f], a[i, f + 1] - b[j, f + 1]
        d2, d3 = a[i, f + 2] - b[j, f + 2], a[i, f + 3] - b[j, f + 3]
        total += d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
    for f in range(4 * n_fours, n_features):
        difference = a[i, f] - b[j, f]
        total += difference * difference
    return total


@njit(cache=True, nogil=True)
def _half_gaps(centers: np.ndarray) -> np.ndarray:
    """Half the distance from each center to its nearest other center (inf for k=1)."""
    k = centers.shape[0]
    half_gap = np.empty(k)
    for a in range(k):
        half_gap[a] = np.inf
    for a in range(k):
        for b in range(a + 1, k):
            gap = 0.5 * np.sqrt(_squared_distance(centers, a, centers, b))
            half_gap[a] = min(half_gap[a], gap)
            half_gap[b] = min(half_gap[b], gap)
    return half_gap


@njit(cache=True, nogil=True, inline="always")
def _two_sum_into(totals: np.ndarray, j: int, f: int, value: float) -> None:
    """``totals[0, j, f] += value``, its rounding error added to ``totals[1, j, f]``
    (Knuth's TwoSum)."""
    total = totals[0, j, f]
    new = total + value
    part = new - total
    totals[0, j, f] = new
    totals[1, j, f] += (total - (new - part)) + (value - part)


@njit(cache=True, nogil=True, inline="always")
def _accumulate(totals: np.ndarray, j: int, X: np.ndarray, i: int, weight: float) -> None:
    """Add ``weight * X[i]`` and ``weight`` to cluster ``j``'s compensated totals, so that
    rows taken out again leave no trace of their rounding."""
    n_features = X.shape[1]
    for f in range(n_features):
        _two_sum_into(totals, j, f, X[i, f] * weight)
    _two_sum_into(totals, j, n_features, weight)


#: What an E-step does with the clusters' totals: nothing, move the rows that change
#: cluster, or sum every row afresh.
LABELS_ONLY, MOVED_ROWS, ALL_ROWS = 0, 1, 2
#: Rows are labelled in blocks of this many; each block's change to the clusters' totals is
#: added in block order, whichever thread labelled it: the same sums on any machine.
BLOCK_ROWS = 1 << 15


#: The bounds are checked over this many rows at a time, then the rows they leave open are
#: labelled (the rows' bounds and labels still in cache).
OPEN_ROWS = 8192
#: Unsettled rows are labelled in batches of this many: their features gathered, then the
#: distances to each center computed for the whole batch (vector instructions).
BATCH_ROWS = 512


#: Up to this many centers, :func:`_open_rows` picks a row's entries of the per-center
#: tables by a tree of selects instead of looking them up.
FEW_CENTERS = 8


@njit(cache=True, nogil=True)
def _padded(values: np.ndarray) -> np.ndarray:
    """``values`` (at most :data:`FEW_CENTERS`) followed by zeros, :data:`FEW_CENTERS` long."""
    padded = np.zeros(FEW_CENTERS)
    for j in range(len(values)):
        padded[j] = values[j]
    return padded


@njit(cache=True, nogil=True, inline="always")
def _move_bounds(
    upper: np.ndarray,
    lower: np.ndarray,
    i: int,
    shift: float,
    lower_shift: float,
    half_gap: float,
    slack: float,
    is_open: np.ndarray,
) -> None:
    """Move row ``i``'s bounds by its center's ``shift`` and the others' ``lower_shift``;
    open it unless they show that it keeps its center (``half_gap``: half the distance
    from its center to the nearest other)."""
    far_bound = upper[i] + shift
    near_bound = lower[i] - lower_shift
    upper[i] = far_bound
    lower[i] = near_bound
    near = (half_gap if half_gap > near_bound else near_bound) * (1.0 - MARGIN)
    far = far_bound * (1.0 + MARGIN)
    is_open[i] = (near <= far) | ((near - far) * (near + far) <= slack)


@njit(cache=True, nogil=True)
def _open_rows(
    labels: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    shift: np.ndarray,
    lower_shift: np.ndarray,
    half_gap: np.ndarray,
    slack: float,
    is_open: np.ndarray,
) -> None:
    """:func:`_move_bounds` of every row, its center's entries of ``shift``,
    ``lower_shift`` and ``half_gap`` (no branch; unsigned indices: no wraparound). Up to
    :data:`FEW_CENTERS` centers each table is held in eight locals and a row's entry
    picked by the bits of its label, a tree of selects (vector instructions, where a
    lookup per row is scalar: 1.6x faster at k=8); the same values."""
    if len(shift) > FEW_CENTERS:
        for i in range(len(labels)):
            label = np.uint32(labels[i])
            shifts = shift[label], lower_shift[label], half_gap[label]
            _move_bounds(upper, lower, i, shifts[0], shifts[1], shifts[2], slack, is_open)
        return
    s = _padded(shift)
    s0, s1, s2, s3, s4, s5, s6, s7 = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    s = _padded(lower_shift)
    l0, l1, l2, l3, l4, l5, l6, l7 = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    s = _padded(half_gap)
    g0, g1, g2, g3, g4, g5, g6, g7 = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    for i in range(len(labels)):
        label = labels[i]
        odd, two, four = label & 1, label & 2, label & 4
        s01, s23, s45, s67 = (
            s1 if odd else s0,
            s3 if odd else s2,
            s5 if odd else s4,
            s7 if odd else s6,
        )
        l01, l23, l45, l67 = (
            l1 if odd else l0,
            l3 if odd else l2,
            l5 if odd else l4,
            l7 if odd else l6,
        )
        g01, g23, g45, g67 = (
            g1 if odd else g0,
            g3 if odd else g2,
            g5 if odd else g4,
            g7 if odd else g6,
        )
        s03, s47 = s23 if two else s01, s67 if two else s45
        l03, l47 = l23 if two else l01, l67 if two else l45
        g03, g47 = g23 if two else g01, g67 if two else g45
        own_shift, others_shift = s47 if four else s03, l47 if four else l03
        _move_bounds(
            upper, lower, i, own_shift, others_shift, g47 if four else g03, slack, is_open
        )


@njit(cache=True, nogil=True)
def _nearest_centers(
    values: np.ndarray,
    m: int,
    centers: np.ndarray,
    norms: np.ndarray,
    dots: np.ndarray,
    nearest: np.ndarray,
    runner_up: np.ndarray,
    best: np.ndarray,
) -> None:
    """For the first ``m`` gathered rows (``values``: features x rows): the first center
    of least ``|c|² - 2 x.c`` (``best``, as scikit-learn's loop picks it), that value
    (``nearest``) and the second least (``runner_up``). ``x.c`` is accumulated feature by
    feature with fused multiply-adds; every loop runs over rows (vector instructions)."""
    k, n_features = centers.shape
    if n_features == 3:  # colors (columns xs, ys, zs): the same arithmetic, rows innermost
        xs, ys, zs = values[0], values[1], values[2]
        a, b, c, norm = centers[0, 0], centers[0, 1], centers[0, 2], norms[0]
        for t in range(m):
            nearest[t] = norm + -2.0 * _fma(zs[t], c, _fma(ys[t], b, xs[t] * a))
            runner_up[t] = np.inf
            best[t] = 0
        for j in range(1, k - 1, 2):  # two centers a pass, the xs one xs
            a, b, c, norm = centers[j, 0], centers[j, 1], centers[j, 2], norms[j]
            a2, b2, c2, norm2 = (
                centers[j + 1, 0],
                centers[j + 1, 1],
                centers[j + 1, 2],
                norms[j + 1],
            )
            for t in range(m):
                x, y, z = xs[t], ys[t], zs[t]
                distance = norm + -2.0 * _fma(z, c, _fma(y, b, x * a))
                distance2 = norm2 + -2.0 * _fma(z, c2, _fma(y, b2, x * a2))
                near, runner, label = nearest[t], runner_up[t], best[t]
                closer = distance < near
                runner = near if closer else min(runner, distance)
                near = distance if closer else near
                label = j if closer else label
                closer = distance2 < near
                runner_up[t] = near if closer else min(runner, distance2)
                nearest[t] = distance2 if closer else near
                best[t] = j + 1 if closer else label
        if k % 2 == 0:  # the last center alone
            j = k - 1
            a, b, c, norm = centers[j, 0], centers[j, 1], centers[j, 2], norms[j]
            for t in range(m):
                distance = norm + -2.0 * _fma(zs[t], c, _fma(ys[t], b, xs[t] * a))
                closer = distance < nearest[t]
                runner_up[t] = nearest[t] if closer else min(runner_up[t], distance)
                nearest[t] = distance if closer else nearest[t]
                best[t] = j if closer else best[t]
        return
    for j in range(k):
        first = centers[j, 0]
        for t in range(m):
            dots[t] = values[0, t] * first
        for f in range(1, n_features):
            center = centers[j, f]
            for t in range(m):
                dots[t] = _fma(values[f, t], center, dots[t])
        norm = norms[j]
        if j == 0:
            for t in range(m):
                nearest[t] = norm + -2.0 * dots[t]
                runner_up[t] = np.inf
                best[t] = 0
        else:
            for t in range(m):
                distance = norm + -2.0 * dots[t]
                closer = distance < nearest[t]
                runner_up[t] = nearest[t] if closer else min(runner_up[t], distance)
                nearest[t] = distance if closer else nearest[t]
                best[t] = j if closer else best[t]


@njit(cache=True, nogil=True)
def _label_batch(
    X: np.ndarray,
    weights: np.ndarray,
    centers: np.ndarray,
    center_norms: np.ndarray,
    labels: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    slack: float,
    delta: np.ndarray,
    update: int,
    rows: np.ndarray,
    values: np.ndarray,
    dots: np.ndarray,
    nearest: np.ndarray,
    runner_up: np.ndarray,
    best: np.ndarray,
    row_norms: np.ndarray,
) -> bool:
    """Label ``rows`` (at most :data:`BATCH_ROWS`) by their nearest center, set their
    bounds and move the rows that change cluster in ``delta`` (:data:`MOVED_ROWS`).
    Returns whether any label changed."""
    m, n_features = len(rows), X.shape[1]
    if n_features == 3:  # colors: the loop over features unrolled (1.6x faster gathers)
        for t in range(m):
            i = rows[t]
            values[0, t], values[1, t], values[2, t] = X[i, 0], X[i, 1], X[i, 2]
    else:
        for t in range(m):
            i = rows[t]
            for f in range(n_features):
                values[f, t] = X[i, f]
    for t in range(m):  # |x|² for the bounds only (any rounding: far below the slack)
        row_norms[t] = values[0, t] * values[0, t]
    for f in range(1, n_features):
        for t in range(m):
            row_norms[t] += values[f, t] * values[f, t]
    _nearest_centers(values, m, centers, center_norms, dots, nearest, runner_up, best)
    for t in range(m):  # the new bounds (vector instructions)
        nearest[t] = np.sqrt(max(nearest[t] + row_norms[t] + slack, 0.0)) * (1.0 + MARGIN)
        runner_up[t] = np.sqrt(max(runner_up[t] + row_norms[t] - slack, 0.0)) * (1.0 - MARGIN)
    changed = False
    for t in range(m):
        i = rows[t]
        upper[i], lower[i] = nearest[t], runner_up[t]
        label, new = labels[i], best[t]
        if new != label:
            changed = True
            labels[i] = new
            if update == MOVED_ROWS:
                _accumulate(delta, label, X, i, -weights[i])
                _accumulate(delta, new, X, i, weights[i])
    return changed


@njit(cache=True, nogil=True)
def _list_open(is_open: np.ndarray, count: int, start: int, rows: np.ndarray) -> int:
    """Write ``start + t`` for the open ``t < count`` (``is_open[t]``) into ``rows``;
    returns how many. The flags are read eight at a time as one word (little-endian: flag
    ``t`` is the word's byte ``t % 8``), its set bytes found by counting trailing zeros:
    no work for closed rows, most of them."""
    words = is_open.view(np.uint64)  # (is_open: OPEN_ROWS flags, a multiple of 8)
    n_open = 0
    for word in range(count // 8):
        flags = words[word]
        first = start + 8 * word
        while flags != 0:
            rows[n_open] = first + (_trailing_zeros(flags) >> 3)
            n_open += 1
            flags &= flags - np.uint64(1)
    for t in range(count - count % 8, count):
        rows[n_open] = start + t
        n_open += is_open[t]
    return n_open


@njit(cache=True, nogil=True)
def e_step(
    X: np.ndarray,
    weights: np.ndarray,
    max_x_norm: float,
    centers: np.ndarray,
    center_norms: np.ndarray,
    labels: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    shift: np.ndarray,
    first: bool | np.bool_,
    deltas: np.ndarray,
    update: int,
    first_block: int,
    end_block: int,
) -> bool:
    """Label the rows of blocks ``first_block .. end_block - 1`` (their bounds first moved
    by the centers' last ``shift``; all rows unsettled when ``first``) and, as ``update``
    says (:data:`LABELS_ONLY`, :data:`MOVED_ROWS`, :data:`ALL_ROWS`), set each block's
    change to the clusters' totals in ``deltas[block]`` (see :func:`add_deltas`).

    ``max_x_norm``: the rows' largest squared norm; ``center_norms``:
    ``row_norms(centers)``. Returns whether any label changed.
    """
    n, n_features = X.shape
    k = centers.shape[0]
    half_gap = _half_gaps(centers)
    slack = SLACK * (max_x_norm + _maximum(center_norms))
    lower_shift = np.zeros(k)  # by label: the largest shift of the other centers
    if not first:
        for a in range(k):
            for j in range(k):
                if j != a:
                    lower_shift[a] = max(lower_shift[a], shift[j])
    changed = False
    unsettled = np.empty(OPEN_ROWS, dtype=np.uint32)  # unsigned: no wraparound
    is_open = np.ones(OPEN_ROWS, dtype=np.bool_)
    values = np.empty((n_features, BATCH_ROWS))
    dots, nearest, runner_up = np.empty(BATCH_ROWS), np.empty(BATCH_ROWS), np.empty(BATCH_ROWS)
    best, row_norms = np.empty(BATCH_ROWS, dtype=np.int32), np.empty(BATCH_ROWS)
    for block in range(first_block, end_block):
        delta = deltas[block]
        if update != LABELS_ONLY:
            delta[:] = 0.0
        block_stop = min(n, (block + 1) * BLOCK_ROWS)
        for start in range(block * BLOCK_ROWS, block_stop, OPEN_ROWS):
            stop = min(block_stop, start + OPEN_ROWS)
            if not first:
                rows = slice(start, stop)
                _open_rows(
                    labels[rows],
                    upper[rows],
                    lower[rows],
                    shift,
                    lower_shift,
                    half_gap,
                    slack,
                    is_open,
                )
            n_unsettled = _list_open(is_open, stop - start, start, unsettled)
            for batch in range(0, n_unsettled, BATCH_ROWS):
                m = min(n_unsettled - batch, BATCH_ROWS)
                changed |= _label_batch(
                    X,
                    weights,
                    centers,
                    center_norms,
                    labels,
                    upper,
                    lower,
                    slack,
                    delta,
                    update,
                    unsettled[batch : batch + m],
                    values,
                    dots,
                    nearest,
                    runner_up,
                    best,
                    row_norms,
                )
        if update == ALL_ROWS:
            for i in range(block * BLOCK_ROWS, block_stop):
                _accumulate(delta, labels[i], X, i, weights[i])
    return changed


@njit(cache=True, nogil=True)
def add_deltas(totals: np.ndarray, deltas: np.ndarray, update: int) -> np.ndarray:
    """Add the blocks' ``deltas`` to the compensated ``totals`` in block order (from zero
    for :data:`ALL_ROWS`); returns each cluster's weighted sum and weight (last column)."""
    if update == ALL_ROWS:
        totals[:] = 0.0
    k, width = totals.shape[1], totals.shape[2]
    for block in range(deltas.shape[0]):
        for j in range(k):
            for f in range(width):
                _two_sum_into(totals, j, f, deltas[block, 0, j, f])
                totals[1, j, f] += deltas[block, 1, j, f]
    return totals[0] + totals[1]


@njit(cache=True, nogil=True)
def m_step(centers: np.ndarray, sums: np.ndarray, shift: np.ndarray) -> None:
    """scikit-learn's ``_average_centers`` and ``_center_shift``: ``sums`` ``(k,
    n_features + 1)`` are each cluster's weighted sum and weight (last column); the
    averages become the ``centers``, each center's move is its ``shift``."""
    k, n_features = centers.shape
    heaviest = 0  # np.argmax of the weights (finite)
    for j in range(1, k):
        if sums[j, n_features] > sums[heaviest, n_features]:
            heaviest = j
    for j in range(k):  # in scikit-learn's order: an empty cluster before the heaviest
        weight = sums[j, n_features]  # takes its sums, not yet averaged
        if weight > 0:
            alpha = 1.0 / weight
            for f in range(n_features):
                sums[j, f] *= alpha
        else:
            for f in range(n_features):
                sums[j, f] = sums[heaviest, f]
    for j in range(k):  # (a - b)² = (b - a)²: the distance to the averages
        shift[j] = np.sqrt(_squared_distance(centers, j, sums, j))
        for f in range(n_features):
            centers[j, f] = sums[j, f]


@njit(cache=True, nogil=True)
def _squared_norm(rows: np.ndarray, i: int) -> float:
    """scikit-learn's ``row_norms(rows, squared=True)[i]`` as numpy's ``einsum`` computes
    it (SSE2: two lanes, groups of eight features taken last pair first, then the rest;
    checked against ``row_norms`` before use: :func:`compiled_norms_match`)."""
    n_features = rows.shape[1]
    lane0, lane1 = 0.0, 0.0
    f = 0
    while n_features - f >= 8:
        for pair in (3, 2, 1, 0):
            value, other = rows[i, f + 2 * pair], rows[i, f + 2 * pair + 1]
            lane0 = value * value + lane0
            lane1 = other * other + lane1
        f += 8
    while f < n_features:
        value = rows[i, f]
        lane0 = lane0 + value * value
        if f + 1 < n_features:
            other = rows[i, f + 1]
            lane1 = lane1 + other * other
        f += 2
    return lane0 + lane1


@njit(cache=True, nogil=True)
def squared_norms(centers: np.ndarray) -> np.ndarray:
    """``row_norms(centers, squared=True)`` (:func:`_squared_norm` of each row)."""
    norms = np.empty(centers.shape[0])
    for j in range(centers.shape[0]):
        norms[j] = _squared_norm(centers, j)
    return norms


@njit(cache=True, nogil=True)
def _centered_rows(
    X: np.ndarray, mean: np.ndarray, centered: np.ndarray, norms: np.ndarray, columns: np.ndarray
) -> None:
    """One pass: ``centered = X - mean``, ``norms``: their :func:`_squared_norm`, and
    ``columns = centered.T`` (unless ``columns`` has no columns)."""
    n, n_features = X.shape
    transpose = columns.shape[1] == n
    for i in range(n):
        for f in range(n_features):
            value = X[i, f] - mean[f]
            centered[i, f] = value
            if transpose:
                columns[f, i] = value
        norms[i] = _squared_norm(centered, i)


#: Work arrays up to this size are kept between fits in the thread that made them: the
#: pages of fresh ones cost ~1 µs each to fault in (~4 ms of a 512² photo's ~45 ms); at
#: most seven per thread (~28 MB), none for large images (where faults matter less).
KEPT_MAX_BYTES = 4 << 20
_KEPT = threading.local()


def _work_array(name: str, shape: tuple[int, ...], reuse: bool) -> np.ndarray:
    """A float64 array of ``shape`` (uninitialized): when ``reuse``, the one this thread
    kept under ``name`` if it has that shape (its contents are overwritten by whoever
    asks next in this thread), else a new one, kept when small enough."""
    if not reuse:
        return np.empty(shape)
    kept = getattr(_KEPT, name, None)
    if kept is not None and kept.shape == shape:
        return kept
    array = np.empty(shape)
    setattr(_KEPT, name, array if array.nbytes <= KEPT_MAX_BYTES else None)
    return array


def centered_rows(
    X: np.ndarray, mean: np.ndarray | None, with_columns: bool, reuse: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``(X - mean, mean, row_norms(X - mean, squared=True), (X - mean).T)`` in float64
    (``mean``: ``X.mean(axis=0)``, if known; the transpose C-contiguous, only
    ``with_columns``): the values numpy and scikit-learn give, in one compiled pass where
    :func:`_squared_norm` is ``row_norms``'s arithmetic. ``reuse``: in this thread's kept
    work arrays (overwritten by its next call with ``reuse``)."""
    X = np.asarray(X)
    if X.dtype != np.float64 or X.ndim != 2 or not compiled_norms_match(X.shape[1]):
        from sklearn.utils.extmath import row_norms

        centered = np.array(X, dtype=np.float64, order="C")
        mean = centered.mean(axis=0) if mean is None or X.dtype != np.float64 else mean
        centered -= mean
        columns = np.ascontiguousarray(centered.T) if with_columns else None
        return centered, mean, row_norms(centered, squared=True), columns
    if mean is None or not X.flags.c_contiguous:  # (numpy sums F-ordered columns pairwise)
        X = np.ascontiguousarray(X)
        mean = X.mean(axis=0)
    n, n_features = X.shape
    centered = _work_array("centered", (n, n_features), reuse)
    norms = _work_array("norms", (n,), reuse)
    columns = _work_array("columns", (n_features, n), reuse) if with_columns else np.empty((0, 0))
    _centered_rows(X, mean, centered, norms, columns)
    return centered, mean, norms, columns if with_columns else None


@njit(cache=True, nogil=True)
def numpy_sum(values: np.ndarray) -> float:
    """``np.sum(values)`` for a contiguous float64 array: numpy's pairwise summation."""
    n = len(values)
    if n < 8:
        total = 0.0
        for i in range(n):
            total += values[i]
        return total
    if n <= 128:
        r = np.empty(8)
        for j in range(8):
            r[j] = values[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += values[i + j]
            i += 8
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            total += values[i]
            i += 1
        return total
    half = n // 2
    half -= half % 8
    return numpy_sum(values[:half]) + numpy_sum(values[half:])


@njit(cache=True, nogil=True)
def _maximum(values: np.ndarray) -> float:
    """``np.max(values)`` (NaN if any)."""
    largest = values[0]
    for value in values[1:]:
        if value > largest or value != value:
            largest = value
            if value != value:
                break
    return largest


@njit(cache=True, nogil=True)
def _any_empty(sums: np.ndarray) -> bool:
    """Whether a cluster has no weight (``sums``' last column)."""
    weight, empty = sums.shape[1] - 1, False
    for j in range(sums.shape[0]):
        empty |= sums[j, weight] == 0
    return empty


#: What :func:`lloyd` stopped on: labels unchanged (no relabelling), center shift within
#: the threshold or ``max_iter`` reached (relabelled), an empty cluster to relocate.
STRICT, CONVERGED, RELOCATE = 0, 1, 2


@njit(cache=True, nogil=True)
def lloyd(
    X: np.ndarray,
    weights: np.ndarray,
    x_norms: np.ndarray,
    centers: np.ndarray,
    labels: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    shift: np.ndarray,
    totals: np.ndarray,
    deltas: np.ndarray,
    max_iter: int,
    threshold: float,
    iteration: int,
    update: int,
    changed: bool,
    sums: np.ndarray,
) -> tuple[int, int, int, bool, np.ndarray]:
    """scikit-learn's Lloyd iterations from ``iteration`` (see :func:`run_start`), in one
    thread; returns ``(stop, iteration, update, changed, sums)``: ``stop`` is
    :data:`STRICT`, :data:`CONVERGED` (``iteration``: the number of iterations run) or
    :data:`RELOCATE` (an empty cluster in ``sums`` at ``iteration``: relocate it, then
    call again with ``sums`` to go on from the M-step, ``changed`` as returned, ``update``
    :data:`ALL_ROWS`). Pass an empty ``sums`` to start an iteration with its E-step."""
    n_blocks = deltas.shape[0]
    max_x_norm = _maximum(x_norms)
    squared_shift = np.empty(centers.shape[0])
    # e_step's arguments typed as Python passes them (constants would be compiled as
    # literals: another specialization of e_step each, seconds of compile time)
    first_block, labels_only, relabel_first = np.int64(0), np.int64(LABELS_ONLY), np.bool_(False)
    resume = sums.shape[0] > 0
    while iteration < max_iter:
        if not resume:
            norms = squared_norms(centers)
            changed = e_step(
                X,
                weights,
                max_x_norm,
                centers,
                norms,
                labels,
                upper,
                lower,
                shift,
                iteration == 0,
                deltas,
                update,
                first_block,
                n_blocks,
            )
            sums = add_deltas(totals, deltas, update)
            update = MOVED_ROWS
            if _any_empty(sums):
                return RELOCATE, iteration, update, changed, sums
        resume = False
        m_step(centers, sums, shift)
        if iteration > 0 and not changed:
            return STRICT, iteration + 1, update, changed, sums
        iteration += 1
        for j in range(len(shift)):
            squared_shift[j] = shift[j] ** 2
        if numpy_sum(squared_shift) <= threshold:
            break
    norms = squared_norms(centers)  # relabel with the final centers
    e_step(
        X,
        weights,
        max_x_norm,
        centers,
        norms,
        labels,
        upper,
        lower,
        shift,
        relabel_first,
        deltas,
        labels_only,
        first_block,
        n_blocks,
    )
    return CONVERGED, iteration, update, changed, sums


@njit(cache=True, nogil=True)
def inertia(X: np.ndarray, weights: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's ``_inertia_dense``: weighted squared distances to the centers."""
    total = 0.0
    for i in range(X.shape[0]):
        total += _squared_distance(X, i, centers, labels[i]) * weights[i]
    return total


def relocate_empty_clusters(
    X: np.ndarray,
    weights: np.ndarray,
    centers_old: np.ndarray,
    sums: np.ndarray,
    labels: np.ndarray,
) -> None:
    """scikit-learn's ``_relocate_empty_clusters_dense`` (its numpy operations, in its
    order): each empty cluster takes one of the rows farthest from their centers.

    ``sums`` ``(k, n_features + 1)``: each cluster's weighted sum and weight (last column).
    """
    n_features = X.shape[1]
    weight_in = sums[:, n_features]
    empty = np.where(np.equal(weight_in, 0))[0].astype(np.int32)
    n_empty = empty.shape[0]
    if n_empty == 0:
        return
    distances = ((X - centers_old[labels]) ** 2).sum(axis=1)
    far = np.argpartition(distances, -n_empty)[: -n_empty - 1 : -1].astype(np.int32)
    if np.max(distances) == 0:
        return  # more clusters than distinct rows: nothing to relocate
    for new, row in zip(empty, far):
        weight = weights[row]
        old = labels[row]
        sums[old, :n_features] -= X[row] * weight
        sums[new, :n_features] = X[row] * weight
        weight_in[new] = weight
        weight_in[old] -= weight


@dataclass
class Start:
    """One start's result: labels, inertia, centers (of the centered rows), n_iter."""

    labels: np.ndarray
    inertia: float
    centers: np.ndarray
    n_iter: int


def run_start(
    X: np.ndarray,
    weights: np.ndarray,
    x_norms: np.ndarray,
    centers_init: np.ndarray,
    max_iter: int,
    threshold: float,
    pool: ThreadPoolExecutor | None = None,
    n_parts: int = 1,
    from_python: bool = False,
) -> Start:
    """scikit-learn's ``_kmeans_single_lloyd`` on centered rows ``X``, step by step; each
    E-step in ``n_parts`` parts of the rows, all but one in ``pool``'s threads (in one
    part: every iteration in one compiled call, :func:`lloyd`, unless ``from_python``)."""
    n = X.shape[0]
    k, n_features = centers_init.shape
    centers = np.array(centers_init, dtype=np.float64, order="C")
    labels = np.full(n, -1, dtype=np.int32)
    upper, lower = _work_array("upper", (n,), True), _work_array("lower", (n,), True)
    shift = np.zeros(k)
    n_blocks = -(-n // BLOCK_ROWS)
    totals, deltas = np.zeros((2, k, n_features + 1)), np.zeros((n_blocks, 2, k, n_features + 1))
    bounds = np.linspace(0, n_blocks, min(n_parts, n_blocks) + 1).round().astype(int)
    state = (X, weights, x_norms, centers, labels, upper, lower, shift, totals, deltas)
    if len(bounds) == 2 and compiled_norms_match(n_features) and not from_python:
        stop, iteration, update, changed = RELOCATE, 0, ALL_ROWS, False
        sums = np.empty((0, n_features + 1))
        while stop == RELOCATE:
            stop, iteration, update, changed, sums = lloyd(
                *state, max_iter, threshold, iteration, update, changed, sums
            )
            if stop == RELOCATE:
                relocate_empty_clusters(X, weights, centers, sums, labels)
                update = ALL_ROWS  # rows moved without their labels: sum afresh next time
        return Start(labels, float(inertia(X, weights, centers, labels)), centers, iteration)
    return _run_start_in_parts(state, max_iter, threshold, pool, bounds)


def _run_start_in_parts(
    state: tuple[np.ndarray, ...],
    max_iter: int,
    threshold: float,
    pool: ThreadPoolExecutor | None,
    bounds: np.ndarray,
) -> Start:
    """:func:`lloyd`'s steps driven from Python: each E-step's blocks ``bounds[p] ..
    bounds[p + 1] - 1`` in ``pool``'s threads, the first part in this one."""
    from sklearn.utils.extmath import row_norms

    X, weights, x_norms, centers, labels, upper, lower, shift, totals, deltas = state
    n_features = X.shape[1]
    max_x_norm = float(np.max(x_norms))

    def label_rows(first: bool, update: int) -> bool:
        """The E-step over every block, the parts after the first in ``pool``."""
        norms = row_norms(centers, squared=True)

        def part(first_block: int, end_block: int) -> bool:
            arrays = (X, weights, max_x_norm, centers, norms, labels, upper, lower)
            return bool(e_step(*arrays, shift, first, deltas, update, first_block, end_block))

        if pool is None or len(bounds) == 2:
            return part(0, int(bounds[-1]))
        others = [pool.submit(part, a, b) for a, b in itertools.pairwise(bounds[1:])]
        changed = part(0, bounds[1])
        results = [future.result() for future in others]  # every part done before going on
        return changed or any(results)

    update, strict = ALL_ROWS, False
    for iteration in range(max_iter):
        changed = label_rows(iteration == 0, update)
        sums = add_deltas(totals, deltas, update)
        update = MOVED_ROWS
        if not sums[:, n_features].all():
            relocate_empty_clusters(X, weights, centers, sums, labels)
            update = ALL_ROWS  # rows moved without their labels: sum afresh next time
        m_step(centers, sums, shift)
        if iteration > 0 and not changed:
            strict = True
            break
        if (shift**2).sum() <= threshold:
            break
    if not strict:  # relabel with the final centers
        label_rows(False, LABELS_ONLY)
    return Start(labels, float(inertia(X, weights, centers, labels)), centers, iteration + 1)


@functools.cache
def compiled_norms_match(n_features: int) -> bool:
    """Whether :func:`squared_norms` gives ``row_norms``'s values for rows of
    ``n_features`` (this numpy's ``einsum``): random rows of many magnitudes."""
    from sklearn.utils.extmath import row_norms

    rng = np.random.default_rng(0)
    rows = rng.standard_normal((512, n_features)) * 10.0 ** rng.integers(-4, 4, (512, n_features))
    return bool(np.array_equal(squared_norms(rows), row_norms(rows, squared=True)))


#: k-means++ sums the candidates' potentials over chunks of this many rows.
CHUNK_ROWS = 512


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _potential(closest: np.ndarray, distances: np.ndarray, weights: np.ndarray) -> float:
    """``np.minimum(closest, distances) @ weights``, summed in any order (vector
    instructions)."""
    total = 0.0
    for t in range(len(distances)):
        total += min(closest[t], distances[t]) * weights[t]
    return total


@njit(cache=True, nogil=True)
def _distances_to(
    columns: np.ndarray,
    x_norms: np.ndarray,
    start: int,
    center: np.ndarray,
    center_norm: float,
    out: np.ndarray,
) -> None:
    """``out``: scikit-learn's squared distances (``euclidean_distances``: ``max((-2 x.c +
    |c|²) + |x|², 0)``, ``x.c`` with fused multiply-adds in feature order) from ``center``
    to rows ``start .. start + len(out) - 1`` (``columns``: features x rows)."""
    n_features = columns.shape[0]
    stop = start + len(out)
    norms = x_norms[start:stop]
    if n_features == 3:  # colors: one pass (1-d contiguous slices: vector instructions)
        first, second, third = (
            columns[0][start:stop],
            columns[1][start:stop],
            columns[2][start:stop],
        )
        a, b, c = center[0], center[1], center[2]
        for t in range(len(out)):
            dot = _fma(third[t], c, _fma(second[t], b, first[t] * a))
            out[t] = max((-2.0 * dot + center_norm) + norms[t], 0.0)
        return
    column, value = columns[0][start:stop], center[0]
    for t in range(len(out)):
        out[t] = column[t] * value
    for f in range(1, n_features):
        column, value = columns[f][start:stop], center[f]
        for t in range(len(out)):
            out[t] = _fma(column[t], value, out[t])
    for t in range(len(out)):
        out[t] = max((-2.0 * out[t] + center_norm) + norms[t], 0.0)


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _color_pair_potentials(
    columns: np.ndarray,
    x_norms: np.ndarray,
    closest: np.ndarray,
    weights: np.ndarray,
    start: int,
    stop: int,
    candidates: np.ndarray,
    candidate_norms: np.ndarray,
    j: int,
    other: int,
) -> tuple[float, float]:
    """Candidates ``j`` and ``other``'s shares of their potentials from rows ``start ..
    stop - 1`` of three features (each row read once for both): :func:`_distances_to`'s
    formula, its terms and the sums in any order (to rounding: BLAS's differ too)."""
    first, second, third = columns[0][start:stop], columns[1][start:stop], columns[2][start:stop]
    row_norms, nearest, row_weights = x_norms[start:stop], closest[start:stop], weights[start:stop]
    a, b, c, norm = candidates[j, 0], candidates[j, 1], candidates[j, 2], candidate_norms[j]
    a2, b2, c2 = candidates[other, 0], candidates[other, 1], candidates[other, 2]
    norm2 = candidate_norms[other]
    total, total2 = 0.0, 0.0
    # from 0 over slices: vector instructions (not so from start over the whole arrays,
    # where numba allows negative indices)
    for t in range(stop - start):
        x, y, z, row_norm, near, weight = (
            first[t],
            second[t],
            third[t],
            row_norms[t],
            nearest[t],
            row_weights[t],
        )
        distance = max((-2.0 * _fma(z, c, _fma(y, b, x * a)) + norm) + row_norm, 0.0)
        distance2 = max((-2.0 * _fma(z, c2, _fma(y, b2, x * a2)) + norm2) + row_norm, 0.0)
        total += min(near, distance) * weight
        total2 += min(near, distance2) * weight
    return total, total2


#: k-means++ sums the potentials of candidates of three features over this many rows at a
#: time (their columns' chunks stay in cache from candidate to candidate).
COLOR_CHUNK_ROWS = 4096


@njit(cache=True, nogil=True)
def _candidate_potentials(
    candidates: np.ndarray,
    candidate_norms: np.ndarray,
    columns: np.ndarray,
    x_norms: np.ndarray,
    weights: np.ndarray,
    closest: np.ndarray,
) -> np.ndarray:
    """Each candidate's potential: the weighted sum of every row's squared distance to its
    nearest center if the candidate were added, ``np.minimum(closest,
    euclidean_distances(candidates, X, squared=True)) @ weights`` with scikit-learn's
    distances (:func:`_distances_to`), summed in another order (as BLAS's is its own).
    Colors: two candidates a pass (:func:`_color_pair_potentials`, 2-3x faster)."""
    n, m = columns.shape[1], candidates.shape[0]
    potentials = np.zeros(m)
    if columns.shape[0] == 3:
        for start in range(0, n, COLOR_CHUNK_ROWS):
            stop = min(n, start + COLOR_CHUNK_ROWS)
            for j in range(0, m, 2):
                other = min(j + 1, m - 1)  # (an odd one out: paired with itself)
                pair = _color_pair_potentials(
                    columns,
                    x_norms,
                    closest,
                    weights,
                    start,
                    stop,
                    candidates,
                    candidate_norms,
                    j,
                    other,
                )
                potentials[j] += pair[0]
                if other != j:
                    potentials[other] += pair[1]
        return potentials
    distances = np.empty(CHUNK_ROWS)
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        chunk_closest, chunk_weights = closest[start:stop], weights[start:stop]
        for j in range(m):
            out = distances[: stop - start]
            _distances_to(columns, x_norms, start, candidates[j], candidate_norms[j], out)
            potentials[j] += _potential(chunk_closest, out, chunk_weights)
    return potentials


@njit(cache=True, nogil=True)
def _add_center(
    center: np.ndarray,
    center_norm: float,
    columns: np.ndarray,
    x_norms: np.ndarray,
    weights: np.ndarray,
    closest: np.ndarray,
) -> np.ndarray:
    """Lower ``closest`` to the distances to a new ``center`` (as in
    :func:`_candidate_potentials`); returns ``np.cumsum(weights * closest)``."""
    n = columns.shape[1]
    distances = np.empty(CHUNK_ROWS)
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        out, chunk_closest = distances[: stop - start], closest[start:stop]
        _distances_to(columns, x_norms, start, center, center_norm, out)
        for t in range(stop - start):
            chunk_closest[t] = min(chunk_closest[t], out[t])
    return _weighted_cumsum(weights, closest)


@njit(cache=True, nogil=True)
def _weighted_cumsum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.cumsum(weights * values)``: the same products, summed in the same order."""
    sums = np.empty(len(values))
    total = 0.0
    for i in range(len(values)):
        total += weights[i] * values[i]
        sums[i] = total
    return sums


@njit(cache=True, nogil=True)
def _first_distances(products: np.ndarray, center_norm: float, x_norms: np.ndarray) -> None:
    """``products`` (``x.c`` of every row) become ``euclidean_distances``'s squared
    distances: ``max((-2 x.c + |c|²) + |x|², 0)``."""
    for i in range(len(products)):
        products[i] = max((-2.0 * products[i] + center_norm) + x_norms[i], 0.0)


@njit(cache=True, nogil=True)
def _search_left(sorted_values: np.ndarray, value: float) -> int:
    """``np.searchsorted(sorted_values, value)`` (side "left"; NaN sorts last, as in
    numpy)."""
    low, high = 0, len(sorted_values)
    while low < high:
        middle = low + (high - low) // 2
        item = sorted_values[middle]
        if item < value or (value != value and item == item):
            low = middle + 1
        else:
            high = middle
    return low


@njit(cache=True, nogil=True)
def _later_centers(
    X: np.ndarray,
    columns: np.ndarray,
    x_norms: np.ndarray,
    weights: np.ndarray,
    closest: np.ndarray,
    current_pot: float,
    uniforms: np.ndarray,
) -> np.ndarray:
    """The rows chosen as centers 1 .. k - 1 by scikit-learn's ``_kmeans_plusplus`` loop,
    from ``closest`` (the squared distances to the first center) and its potential."""
    n, n_features = X.shape
    n_trials = uniforms.shape[1]
    chosen = np.empty(uniforms.shape[0], dtype=np.int64)
    candidate_ids = np.empty(n_trials, dtype=np.int64)
    candidates, norms = np.empty((n_trials, n_features)), np.empty(n_trials)
    running = _weighted_cumsum(weights, closest)
    for c in range(uniforms.shape[0]):
        for trial in range(n_trials):  # np.searchsorted(running, uniforms[c] * pot), clipped
            row = min(_search_left(running, uniforms[c, trial] * current_pot), n - 1)
            candidate_ids[trial] = row
            norms[trial] = x_norms[row]  # row_norms of a row: the same as in x_norms
            for f in range(n_features):
                candidates[trial, f] = X[row, f]
        potentials = _candidate_potentials(candidates, norms, columns, x_norms, weights, closest)
        best = 0  # np.argmin: the first least, or the first NaN
        for trial in range(1, n_trials):
            value, least = potentials[trial], potentials[best]
            if value < least or (value != value and least == least):
                best = trial
        current_pot = potentials[best]
        running = _add_center(candidates[best], norms[best], columns, x_norms, weights, closest)
        chosen[c] = candidate_ids[best]
    return chosen


def first_row_cdf(weights: np.ndarray, reuse: bool = False) -> np.ndarray:
    """What ``RandomState.choice(n, p=weights / weights.sum())`` searches (its ``cdf``):
    made once for every start (see :func:`draw_kmeans_plusplus`); ``reuse``: in this
    thread's kept work array (see :func:`centered_rows`)."""
    cdf = np.divide(weights, weights.sum(), out=_work_array("cdf", weights.shape, reuse))
    np.cumsum(cdf, out=cdf)
    cdf /= cdf[-1]
    return cdf


def draw_kmeans_plusplus(
    n_samples: int,
    n_clusters: int,
    weights: np.ndarray,
    random_state: np.random.RandomState,
    cdf: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """What scikit-learn's ``_kmeans_plusplus`` draws from ``random_state``, in its order:
    the first center's row, then the uniforms that pick each later center's candidates
    (``(n_clusters - 1, n_local_trials)``). The draws do not depend on the distances, so
    starts can be drawn one after the other and computed in parallel.

    ``cdf``: :func:`first_row_cdf` of ``weights``, if made; the first row is then
    ``RandomState.choice``'s (legacy, frozen) steps after checking ``p``: one
    ``random_sample`` searched in ``cdf`` from the right."""
    n_local_trials = 2 + int(np.log(n_clusters))
    if cdf is None:
        first = int(random_state.choice(n_samples, p=weights / weights.sum()))
    else:
        first = int(cdf.searchsorted(random_state.random_sample(), side="right"))
    uniforms = np.empty((n_clusters - 1, n_local_trials))
    for c in range(n_clusters - 1):
        uniforms[c] = random_state.uniform(size=n_local_trials)
    return first, uniforms


def kmeans_plusplus_from(
    X: np.ndarray,
    n_clusters: int,
    x_norms: np.ndarray,
    weights: np.ndarray,
    first_id: int,
    uniforms: np.ndarray,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """scikit-learn's ``_kmeans_plusplus`` from its draws (:func:`draw_kmeans_plusplus`):
    the same choices from the same distances; the candidates' potentials summed in one
    compiled pass (BLAS sums them in another order: they agree to rounding).
    ``columns``: ``X.T`` contiguous, if already made."""
    from sklearn.utils.extmath import row_norms

    centers = np.empty((n_clusters, X.shape[1]), dtype=X.dtype)
    centers[0] = X[first_id]
    first = centers[0, np.newaxis]  # euclidean_distances(first, X, squared=True)'s steps
    # BLAS's products (into this thread's kept array), then the same sums in one pass
    distances = np.matmul(first, X.T, out=_work_array("closest", (1, len(X)), True))
    closest = distances.reshape(-1)  # a view
    _first_distances(closest, float(row_norms(first, squared=True)[0]), x_norms)
    current_pot = float((distances @ weights)[0])  # (1, n) @ (n,): BLAS's gemv, as theirs
    if n_clusters > 1:
        columns = np.ascontiguousarray(X.T) if columns is None else columns
        chosen = _later_centers(X, columns, x_norms, weights, closest, current_pot, uniforms)
        centers[1:] = X[chosen]
    return centers


def kmeans_plusplus(
    X: np.ndarray,
    n_clusters: int,
    x_norms: np.ndarray,
    weights: np.ndarray,
    random_state: np.random.RandomState,
) -> np.ndarray:
    """scikit-learn's ``_kmeans_plusplus`` (see :func:`kmeans_plusplus_from`)."""
    draws = draw_kmeans_plusplus(X.shape[0], n_clusters, weights, random_state)
    return kmeans_plusplus_from(X, n_clusters, x_norms, weights, *draws)


def starting_centers(
    X: np.ndarray,
    n_clusters: int,
    init: Any,
    weights: np.ndarray,
    x_norms: np.ndarray,
    random_state: np.random.RandomState,
    columns: np.ndarray | None = None,
    cdf: np.ndarray | None = None,
) -> Callable[[], np.ndarray]:
    """``KMeans._init_centroids`` on centered rows (an array ``init`` already centered;
    ``x_norms``: ``row_norms(X, squared=True)``; ``columns``: ``X.T`` contiguous, if
    made; ``cdf``: :func:`first_row_cdf`, if made): draws from ``random_state`` now, as
    scikit-learn does, and returns what computes the centers from the draws (in any
    thread)."""
    if isinstance(init, str) and init == "k-means++":
        first, uniforms = draw_kmeans_plusplus(X.shape[0], n_clusters, weights, random_state, cdf)
        draws = (first, uniforms, columns)
        return lambda: kmeans_plusplus_from(X, n_clusters, x_norms, weights, *draws)
    if isinstance(init, str) and init == "random":
        seeds = random_state.choice(
            X.shape[0], size=n_clusters, replace=False, p=weights / weights.sum()
        )
        return lambda: X[seeds]
    centers = np.asarray(init, dtype=np.float64)
    return lambda: centers


def _valid_probabilities(weights: np.ndarray) -> bool:
    """Whether ``RandomState.choice`` takes ``weights / weights.sum()`` as ``p`` (else it
    raises its own error: let it)."""
    return bool(np.all(weights >= 0) and np.isfinite(weights.sum()) and weights.sum() > 0)


@njit(cache=True, nogil=True)
def same_clustering(first: np.ndarray, second: np.ndarray) -> bool:
    """scikit-learn's ``_is_same_clustering``: ``second`` is a function of ``first`` (one
    pass, labels from 0)."""
    size = 0  # the labels' largest + 1
    for i in range(len(first)):
        size = max(size, first[i] + 1, second[i] + 1)
    mapping = np.empty(size, dtype=np.int64)
    for label in range(size):
        mapping[label] = -1
    for i in range(len(first)):
        if mapping[first[i]] == -1:
            mapping[first[i]] = second[i]
        elif mapping[first[i]] != second[i]:
            return False
    return True


def tolerance(X: np.ndarray, tol: float) -> float:
    """scikit-learn's ``_tolerance``: ``tol`` times the mean column variance of ``X``."""
    return 0.0 if tol == 0 else float(np.mean(np.var(X, axis=0)) * tol)


@dataclass
class Fit:
    """What ``KMeans.fit`` leaves: ``labels_``, ``inertia_``, ``cluster_centers_``,
    ``n_iter_``."""

    labels: np.ndarray
    inertia: float
    centers: np.ndarray
    n_iter: int


def fit(
    X: np.ndarray,
    n_clusters: int,
    weights: np.ndarray | None = None,
    init: Any = "k-means++",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
    random_state: Any = None,
    n_threads: int | None = None,
    column_variance: float | None = None,
    column_mean: np.ndarray | None = None,
) -> Fit:
    """``KMeans(n_clusters, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
    random_state=random_state).fit(X, sample_weight=weights)``, compiled.

    The same centered rows, threshold and starting centers (drawn in the same order from
    the same ``RandomState``); starts run in up to ``n_threads`` threads (default: the
    CPUs this process may use). ``column_variance``: ``np.mean(np.var(X, axis=0))`` if
    already known (the threshold is ``tol`` times it); ``column_mean``: ``X.mean(axis=0)``
    if known.
    """
    from sklearn.utils import check_random_state

    if weights is None:
        weights = np.ones(len(X))
    weights = np.array(weights, dtype=np.float64)
    if column_variance is None:
        threshold = tolerance(np.asarray(X, dtype=np.float64), tol)
    else:
        threshold = column_variance * tol
    plusplus = isinstance(init, str) and init == "k-means++"
    X, mean, x_norms, columns = centered_rows(
        X, column_mean, plusplus and n_clusters > 1, reuse=True
    )
    if not isinstance(init, str):
        init = np.array(init, dtype=np.float64, order="C") - mean
        n_init = 1
    random_state = check_random_state(random_state)
    cdf = (
        first_row_cdf(weights, reuse=True) if plusplus and _valid_probabilities(weights) else None
    )
    makers = [  # every random draw first, in scikit-learn's order
        starting_centers(X, n_clusters, init, weights, x_norms, random_state, columns, cdf)
        for _ in range(n_init)
    ]
    with _one_blas_thread():  # BLAS threads spin after each call, taking the loops' CPUs
        starts = _run_starts(X, weights, x_norms, makers, max_iter, threshold, n_threads)
    best = starts[0]
    for start in starts[1:]:
        if start.inertia < best.inertia and not same_clustering(start.labels, best.labels):
            best = start
    return Fit(best.labels, best.inertia, best.centers + mean, best.n_iter)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """A context in which BLAS (k-means++'s few matrix products) uses one thread; fits in
    several threads at once share one limit, lifted when the last one ends."""
    global _BLAS_LIMIT, _BLAS_USERS, _BLAS_LIMITER
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            _BLAS_LIMIT = _blas_controller().limit(limits=1, user_api="blas")
            _BLAS_LIMITER = threading.current_thread()
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                _release_openblas(_BLAS_LIMITER)  # (else only that thread may restore)
                _BLAS_LIMIT.restore_original_limits()
                _release_openblas(threading.current_thread())


def _release_openblas(holder: threading.Thread | None) -> None:
    """threadpoolctl (3.8) lets one thread at a time limit OpenBLAS (the others' limits
    are ignored), the first to set one, until it leaves a ``with`` block of limits; ours
    are set and lifted outside one, the last fit to end lifting them, maybe in another
    thread. Free OpenBLAS from ``holder`` (the thread that set our limit) before lifting
    them, else the original limits would not come back, and from the lifting thread
    after: else no other thread could limit it again (a napari worker's thread would
    hold it for good), and a forked child would fail asking after the holder, a thread
    it does not have (``holder`` None: any other thread than this one)."""
    threadpoolctl = sys.modules.get("threadpoolctl")
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    state = getattr(controller, "_SHARED_STATE", None)
    if state is None:
        return
    with state.lock:
        held_by = state.controlling_thread
        if held_by is not None and (
            held_by is holder or (holder is None and held_by is not threading.current_thread())
        ):
            state.controlling_thread = None


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded thread pools, made once (15 ms: it inspects every
    loaded library; numpy's BLAS is loaded with numpy, before any fit)."""
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    return ThreadpoolController()


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMIT: Any = None
_BLAS_LIMITER: threading.Thread | None = None


def available_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run_starts(
    X: np.ndarray,
    weights: np.ndarray,
    x_norms: np.ndarray,
    makers: list[Callable[[], np.ndarray]],
    max_iter: int,
    threshold: float,
    n_threads: int | None,
) -> list[Start]:
    """Every start, its centers from its maker (:func:`starting_centers`).

    With several CPUs the starts (their k-means++ included) run in parallel threads, while
    their bounds fit in memory; fewer starts than CPUs share out the rows of each E-step.
    The result does not depend on how the work is shared.
    """
    n_threads = available_cpus() if n_threads is None else n_threads
    workers = min(len(makers), n_threads + 1)  # one more than CPUs: starts end at odd times
    state_bytes = X.shape[0] * 20 * workers  # labels and two bounds per running start
    in_parallel = workers > 1 and n_threads > 1 and state_bytes <= PARALLEL_STATE_BYTES
    n_parts = 1 if in_parallel or n_threads <= 1 else n_threads
    pool = _shared_pool(workers if in_parallel else n_threads)

    def run(make: Callable[[], np.ndarray]) -> Start:
        centers = make()
        return run_start(X, weights, x_norms, centers, max_iter, threshold, pool, n_parts)

    if not in_parallel:
        return [run(make) for make in makers]
    return list(pool.map(run, makers))


@functools.cache
def _shared_pool(n_workers: int) -> ThreadPoolExecutor:
    """Threads kept for every fit (starting ~3 threads costs ~0.4 ms, a tenth of a 512²
    fit's share). Their tasks never wait for other tasks of the pool, so fits in several
    threads at once only queue."""
    return ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="kmeans")


def _after_fork_in_child() -> None:
    """A forked child has only the thread that forked: none of the pool's, nor the one
    that may hold OpenBLAS's limits (see :func:`_release_openblas`)."""
    _shared_pool.cache_clear()
    _release_openblas(None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def warm_up() -> None:
    """Compiles the loops, or loads them from numba's disk cache (once per process)."""
    X = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [1.1, 1.0], [5.0, 5.0], [5.0, 5.1]])
    fit(X, 3, np.arange(1.0, 7.0), n_init=2, random_state=0, n_threads=1)
    far = np.array([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]])  # an empty cluster
    fit(X, 3, init=far, n_threads=1)
    run_start(X - X.mean(axis=0), np.ones(6), np.ones(6), X[:3], 5, 0.0, from_python=True)
    labels = np.zeros(6, dtype=np.int32)
    same_clustering(labels, labels)  # (fit calls it only when a later start is better)
