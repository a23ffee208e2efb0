"""scikit-learn's Ward tree with connectivity (``sklearn.cluster.ward_tree``), compiled.

What scikit-learn computes
--------------------------
``ward_tree(X, connectivity=...)`` keeps a heap of triples ``(distance, i, j)``, one per
pair of neighbouring clusters (``i`` the larger node number), and merges the pair it pops
first, skipping pairs of which a node is already merged. Every pair of neighbouring live
clusters is pushed exactly once (when the younger of the two is made) and the moments of a
live cluster never change, so the pair merged at each step is the live neighbouring pair
with the smallest ``(distance, i, j)``; the triples are all distinct, so equal distances
are ordered by the node numbers. The distance is ``compute_ward_dist``'s, whose arithmetic
is symmetric in the two clusters (``x - y`` is exactly ``-(y - x)``).

How it is computed here
-----------------------
The same pair, with the same distance, is merged at every step; only the bookkeeping
differs. Each live cluster keeps the list of its live neighbours (sorted by node number)
with their distances, each computed once by the same formula in the same order, and its
*best pair*: the smallest ``(distance, i, j)`` among its own pairs. A tournament tree over
the live clusters' best pairs has the smallest pair of all at its top. When ``i`` and
``j`` merge into ``k``, k's neighbours are the union of theirs; each neighbour ``c``
replaces ``i`` and ``j`` in its list by ``k`` (appended: ``k`` is the largest number) and
keeps its best pair unless that pair was with ``i`` or ``j`` (then it is found again in its
list) or ``(d(k, c), k, c)`` is smaller. This replaces scikit-learn's heap of every pair
ever made (most of them stale when popped) by one entry per live cluster, and its lists
of dead nodes (followed to their roots) by lists of live ones.

Storage: a cluster's moments, best pair and list live in a *slot* (a merged cluster takes
over the slot of the child whose entry was on top), so memory scales with the pixels, not
the nodes, and neighbouring pixels' clusters stay near each other in memory: one float64
row per slot ``[m_1, m_2 ..., best distance, best partner, list start, list length]``.
Lists are segments of one pool of int64 rows ``[node | slot << 32, distance bits]``, each
behind a header row (owner, size); a list never grows (a neighbour of ``k`` lost ``i`` or
``j``), so dead segments are the only waste, dropped when the pool fills. Distances are
compared as their bit patterns (the same order for non-negative float64s). The loop's
memory reads are far apart, so it asks the CPU for the next neighbours' rows ahead of use.
The loop runs in slices of merges (:func:`merge_steps` yields the fraction done between
slices), so a caller can show progress and stop.
"""

from __future__ import annotations

import heapq

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

INDEX = np.int64
#: Node numbers (2n - 1 for n samples) must fit in 30 bits: at most this many samples.
MAX_SAMPLES = 2**29 - 1

SHIFT = np.int64(32)
LOW = np.int64(0xFFFFFFFF)
NO_PAIR = np.int64(2**62)  # larger than any pair: the start of a search for the smallest
INF_BITS = np.int64(0x7FF0000000000000)  # bits of float64 +inf
# columns of the slot rows after the moments (m_1, then m_2 for each feature)
BEST, PARTNER, START, LENGTH = 1, 2, 3, 4  # offsets from n_features
# columns of the tournament tree's rows
KEY, PAIR = 0, 1
# entries of ``counters``
NEXT_NODE, POOL_TOP = 0, 1


@intrinsic
def _bits(typingctx, value):
    """The bit pattern of a float64 as an int64 (same order for non-negative floats)."""
    signature = types.int64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return signature, codegen


@intrinsic
def _float(typingctx, bits):
    """The float64 whose bit pattern is an int64 (inverse of ``_bits``)."""
    signature = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return signature, codegen


@intrinsic
def _prefetch(typingctx, array, row):
    """Asks the CPU to fetch ``array[row]`` into its caches (the loop does not wait)."""
    signature = types.void(array, row)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        pointer = cgutils.get_item_pointer2(
            context,
            builder,
            data=array.data,
            shape=cgutils.unpack_tuple(builder, array.shape),
            strides=cgutils.unpack_tuple(builder, array.strides),
            layout=array_type.layout,
            inds=[context.cast(builder, args[1], sig.args[1], types.intp)]
            + [zero] * (array_type.ndim - 1),
            wraparound=False,
            boundscheck=False,
        )
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
            "llvm.prefetch.p0i8",
        )
        # read, keep in all cache levels, data
        constants = [ir.Constant(int32, value) for value in (0, 3, 1)]
        builder.call(function, [builder.bitcast(pointer, byte_pointer), *constants])
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, nogil=True, inline="always")
def _pair(a, b):
    """scikit-learn's tie-break (i, j), larger node number first, packed in one int64."""
    if a > b:
        return (np.int64(a) << SHIFT) | b
    return (np.int64(b) << SHIFT) | a


@njit(cache=True, nogil=True, inline="always")
def _less(key_a, pair_a, key_b, pair_b):
    return key_a < key_b or (key_a == key_b and pair_a < pair_b)


@njit(cache=True, nogil=True, inline="always")
def _ward_dist(rec, row, col, n_features):
    """``compute_ward_dist`` for one pair of slots: the same operations in the same order."""
    m_row, m_col = rec[row, 0], rec[col, 0]
    n = (m_row * m_col) / (m_row + m_col)
    pa = 0.0
    for f in range(1, n_features + 1):
        difference = rec[row, f] / m_row - rec[col, f] / m_col
        pa += difference * difference
    return pa * n


# --- the tournament tree of live clusters' best pairs. Level 0 has one row per slot: the
# slot's key [distance bits, entry pair]; each row of level l + 1 is the smallest of four
# rows of level l, so the top level's single row is the smallest pair of all. The entry
# pair is (i << 33) | (j << 1) | (1 if the entry is i's else 0), i > j: it orders as
# scikit-learn's (i, j) and names the node the entry belongs to. Levels are padded to
# whole groups of four (64 bytes, one cache line) with empty rows: (inf, NOBODY). A slot's
# path to the top depends on the slot only, so neighbouring slots share their lower rows.

NOBODY = np.int64(2**63 - 1)  # the entry pair of an empty row: larger than any pair


@njit(cache=True, nogil=True, inline="always")
def _entry_pair(owner, partner):
    if owner > partner:
        return (np.int64(owner) << 33) | (np.int64(partner) << 1) | 1
    return (np.int64(partner) << 33) | (np.int64(owner) << 1)


@njit(cache=True, nogil=True, inline="always")
def _owner(entry_pair):
    if entry_pair & 1:
        return entry_pair >> 33
    return (entry_pair >> 1) & 0xFFFFFFFF


def _tree_levels(n_slots):
    """Start row of each level (and the end of the last): levels padded to fours."""
    starts = [0]
    size = n_slots
    while True:
        padded = -(-size // 4) * 4
        starts.append(starts[-1] + padded)
        if size == 1:
            return np.array(starts, dtype=np.int64)
        size = -(-size // 4)


@njit(cache=True, nogil=True)
def _set_key(tree, levels, slot, key, pair):
    """Gives a slot the key (key, pair) and updates the rows above it that change."""
    tree[slot, KEY], tree[slot, PAIR] = key, pair
    index = slot
    for level in range(1, len(levels) - 1):
        group = levels[level - 1] + (index & ~3)
        best_key, best_pair = tree[group, KEY], tree[group, PAIR]
        for row in range(group + 1, group + 4):
            if _less(tree[row, KEY], tree[row, PAIR], best_key, best_pair):
                best_key, best_pair = tree[row, KEY], tree[row, PAIR]
        index >>= 2
        above = levels[level] + index
        if tree[above, KEY] == best_key and tree[above, PAIR] == best_pair:
            return
        tree[above, KEY], tree[above, PAIR] = best_key, best_pair


@njit(cache=True, nogil=True)
def _build_tree(tree, levels):
    """Fills the levels above the slots' rows."""
    for level in range(1, len(levels) - 1):
        for index in range(levels[level + 1] - levels[level]):
            group = levels[level - 1] + 4 * index
            best_key, best_pair = INF_BITS, NOBODY
            if group < levels[level]:
                best_key, best_pair = tree[group, KEY], tree[group, PAIR]
                for row in range(group + 1, group + 4):
                    if _less(tree[row, KEY], tree[row, PAIR], best_key, best_pair):
                        best_key, best_pair = tree[row, KEY], tree[row, PAIR]
            tree[levels[level] + index, KEY] = best_key
            tree[levels[level] + index, PAIR] = best_pair


# --- the pool of neighbour lists: int64 rows [node | slot << 32, distance bits], each list
# behind a header row [owner slot, rows]


@njit(cache=True, nogil=True, inline="always")
def _entry(node, slot):
    return (np.int64(slot) << SHIFT) | node


@njit(cache=True, nogil=True)
def _compact_pool(pool, top, rec, start, length):
    """Moves the live lists down over the dead ones (order kept); returns the new top."""
    read = 0
    write = 0
    while read < top:
        owner, extent = pool[read, 0], pool[read, 1]
        if np.int64(rec[owner, start]) == read + 1:  # the owner's current list
            size = np.int64(rec[owner, length])
            pool[write, 0], pool[write, 1] = owner, size
            for e in range(1, size + 1):
                pool[write + e, 0], pool[write + e, 1] = pool[read + e, 0], pool[read + e, 1]
            rec[owner, start] = write + 1
            write += 1 + size
        read += 1 + extent
    return write


@njit(cache=True, nogil=True)
def _reserve(pool, top, need, rec, start, length):
    """Room for ``need`` more pool rows: compacts, and grows the pool if still short.

    After a compaction at least a quarter of the live rows stay free, so that compactions
    cost O(1) per row written (lists never grow: on a grid the pool never needs to).
    """
    if top + need <= pool.shape[0]:
        return pool, top
    top = _compact_pool(pool, top, rec, start, length)
    if top + need + top // 4 > pool.shape[0]:
        bigger = np.empty(((top + need) * 3 // 2 + 64, 2), dtype=pool.dtype)
        bigger[:top] = pool[:top]
        return bigger, top
    return pool, top


# --- set-up: the first lists, their distances, best pairs and the tree


@njit(cache=True, nogil=True, inline="always")
def _grid_neighbours(index, z, y, x, shape, row_of, out):
    """Rows of the usable grid neighbours of position ``index`` = (z, y, x), ascending."""
    n_z, n_y, n_x = shape[0], shape[1], shape[2]
    plane = n_y * n_x
    count = 0
    if z > 0 and row_of[index - plane] >= 0:
        out[count] = row_of[index - plane]
        count += 1
    if y > 0 and row_of[index - n_x] >= 0:
        out[count] = row_of[index - n_x]
        count += 1
    if x > 0 and row_of[index - 1] >= 0:
        out[count] = row_of[index - 1]
        count += 1
    if x < n_x - 1 and row_of[index + 1] >= 0:
        out[count] = row_of[index + 1]
        count += 1
    if y < n_y - 1 and row_of[index + n_x] >= 0:
        out[count] = row_of[index + n_x]
        count += 1
    if z < n_z - 1 and row_of[index + plane] >= 0:
        out[count] = row_of[index + plane]
        count += 1
    return count


@njit(cache=True, nogil=True)
def _add_list(pool, top, rec, row, nodes, count):
    """The first list of ``row`` (leaves: node = slot) at ``top``; returns the new top."""
    n_features = rec.shape[1] - 5
    pool[top, 0], pool[top, 1] = row, count
    for e in range(count):
        pool[top + 1 + e, 0] = _entry(nodes[e], nodes[e])
    rec[row, n_features + START] = top + 1
    rec[row, n_features + LENGTH] = count
    return top + 1 + count


@njit(cache=True, nogil=True)
def _grid_rows(mask, shape):
    """Row of each usable grid position (-1 elsewhere), and the pool rows of the lists."""
    row_of = np.full(mask.shape[0], -1, dtype=np.int32)
    out = np.empty(6, dtype=np.int32)
    n_rows = 0
    for index in range(mask.shape[0]):
        if mask[index]:
            row_of[index] = n_rows
            n_rows += 1
    n_rows = 0
    index = 0
    for z in range(shape[0]):
        for y in range(shape[1]):
            for x in range(shape[2]):
                if mask[index]:
                    n_rows += 1 + _grid_neighbours(index, z, y, x, shape, row_of, out)
                index += 1
    return row_of, n_rows


@njit(cache=True, nogil=True)
def _grid_lists(mask, shape, row_of, rec, pool):
    """The first lists of a grid (see :func:`_grid_rows`); returns the pool's top."""
    out = np.empty(6, dtype=np.int32)
    top = 0
    index = 0
    for z in range(shape[0]):
        for y in range(shape[1]):
            for x in range(shape[2]):
                if mask[index]:
                    count = _grid_neighbours(index, z, y, x, shape, row_of, out)
                    top = _add_list(pool, top, rec, row_of[index], out, count)
                index += 1
    return top


@njit(cache=True, nogil=True)
def _graph_lists(indptr, indices, rec, pool):
    """The first lists of a symmetric graph in sorted CSR form (self loops are ignored)."""
    n_features = rec.shape[1] - 5
    top = 0
    for row in range(len(indptr) - 1):
        start = top + 1
        count = 0
        for p in range(indptr[row], indptr[row + 1]):
            if indices[p] != row:
                pool[start + count, 0] = _entry(indices[p], indices[p])
                count += 1
        pool[top, 0], pool[top, 1] = row, count
        rec[row, n_features + START] = start
        rec[row, n_features + LENGTH] = count
        top = start + count
    return top


@njit(cache=True, nogil=True)
def _finish_start(rec, pool, top, tree, levels):
    """Distances of every first pair, best pairs and the tree; returns the counters."""
    n_samples = rec.shape[0]
    n_features = rec.shape[1] - 5
    for row in range(n_samples):
        best_d, best_key, best_pair, partner = np.inf, INF_BITS, NO_PAIR, -1
        start = np.int64(rec[row, n_features + START])
        for e in range(start, start + np.int64(rec[row, n_features + LENGTH])):
            col = pool[e, 0] & LOW
            d = _ward_dist(rec, max(row, col), min(row, col), n_features)
            key, pair = _bits(d), _pair(row, col)
            pool[e, 1] = key
            if _less(key, pair, best_key, best_pair):
                best_d, best_key, best_pair, partner = d, key, pair, col
        rec[row, n_features + BEST] = best_d
        rec[row, n_features + PARTNER] = partner
        tree[row, KEY] = best_key
        tree[row, PAIR] = NOBODY if partner < 0 else _entry_pair(row, partner)
    tree[n_samples : levels[1]] = NOBODY
    tree[n_samples : levels[1], KEY] = INF_BITS
    _build_tree(tree, levels)
    return np.array([n_samples, top], dtype=np.int64)


# --- the merge loop


@njit(cache=True, nogil=True)
def _merge(stop, n_samples, rec, slot_of, pool, tree, levels, counters, children, new):
    """Merges until node ``stop`` exists (or no pair is left: counters[0] < stop)."""
    k, top = counters[NEXT_NODE], counters[POOL_TOP]
    n_features = rec.shape[1] - 5
    best_, partner_ = n_features + BEST, n_features + PARTNER
    start_, length_ = n_features + START, n_features + LENGTH
    while k < stop:
        top_pair = tree[levels[-2], PAIR]
        if top_pair == NOBODY:  # no pair left: the graph is not connected
            break
        i, j = top_pair >> 33, (top_pair >> 1) & 0xFFFFFFFF
        children[k - n_samples, 0] = j  # scikit-learn stores each pair reversed
        children[k - n_samples, 1] = i
        s_i, s_j = slot_of[i], slot_of[j]
        _prefetch(rec, s_i)
        _prefetch(rec, s_j)
        on_top = _owner(top_pair)  # k takes over the slot of the node on top
        s_k = s_i if on_top == i else s_j
        slot_of[i] = -1
        slot_of[j] = -1
        slot_of[k] = s_k
        _set_key(tree, levels, s_i + s_j - s_k, INF_BITS, NOBODY)  # the other slot: empty
        a, b = np.int64(rec[s_i, start_]), np.int64(rec[s_j, start_])
        a_end, b_end = a + np.int64(rec[s_i, length_]), b + np.int64(rec[s_j, length_])
        _prefetch(pool, a)
        _prefetch(pool, b)
        m_1 = rec[s_i, 0] + rec[s_j, 0]
        for f in range(1, n_features + 1):
            rec[s_k, f] = rec[s_i, f] + rec[s_j, f]
        rec[s_k, 0] = m_1
        # k's neighbours: the sorted union of i's and j's lists, without i and j
        if a_end - a + b_end - b > new.shape[0]:
            new = np.empty((2 * (a_end - a + b_end - b), 2), dtype=new.dtype)
        n_new = 0
        while a < a_end or b < b_end:
            if b == b_end or (a < a_end and (pool[a, 0] & LOW) < (pool[b, 0] & LOW)):
                entry = pool[a, 0]
                a += 1
            elif a == a_end or (pool[b, 0] & LOW) < (pool[a, 0] & LOW):
                entry = pool[b, 0]
                b += 1
            else:
                entry = pool[a, 0]
                a += 1
                b += 1
            node = entry & LOW
            if node != i and node != j:
                new[n_new, 0] = entry
                n_new += 1
        rec[s_i, start_] = -1  # both lists are dead
        rec[s_j, start_] = -1
        best_d, best_key, best_pair, best_partner = np.inf, INF_BITS, NO_PAIR, -1
        k_entry = _entry(k, s_k)
        # the neighbours' rows and lists are far apart in memory: ask for them ahead of use
        for q in range(n_new):
            _prefetch(rec, new[q, 0] >> SHIFT)
        for q in range(min(n_new, 2)):
            _prefetch(pool, np.int64(rec[new[q, 0] >> SHIFT, start_]))
        for q in range(n_new):
            if q + 2 < n_new:
                _prefetch(pool, np.int64(rec[new[q + 2, 0] >> SHIFT, start_]))
            col, slot = new[q, 0] & LOW, new[q, 0] >> SHIFT
            d = _ward_dist(rec, s_k, slot, n_features)
            key, pair = _bits(d), (np.int64(k) << SHIFT) | col
            new[q, 1] = key
            if _less(key, pair, best_key, best_pair):
                best_d, best_key, best_pair, best_partner = d, key, pair, col
            # col's list: i and j out, k in at the end (k is the largest node number)
            start = np.int64(rec[slot, start_])
            end = start + np.int64(rec[slot, length_])
            write = start
            for e in range(start, end):
                node = pool[e, 0] & LOW
                if node != i and node != j:
                    pool[write, 0], pool[write, 1] = pool[e, 0], pool[e, 1]
                    write += 1
            pool[write, 0], pool[write, 1] = k_entry, key
            rec[slot, length_] = write + 1 - start
            # col's best pair: found again if it was with i or j, else maybe (k, col)
            partner = np.int64(rec[slot, partner_])
            if partner in (i, j):
                c_key, c_pair, c_partner = INF_BITS, NO_PAIR, -1
                for e in range(start, write + 1):
                    e_key, e_pair = pool[e, 1], _pair(col, pool[e, 0] & LOW)
                    if _less(e_key, e_pair, c_key, c_pair):
                        c_key, c_pair, c_partner = e_key, e_pair, pool[e, 0] & LOW
                rec[slot, best_] = _float(c_key)
                rec[slot, partner_] = c_partner
                c_pair = NOBODY if c_partner < 0 else _entry_pair(col, c_partner)
                _set_key(tree, levels, slot, c_key, c_pair)
            elif _less(key, pair, _bits(rec[slot, best_]), _pair(col, partner)):
                rec[slot, best_] = d
                rec[slot, partner_] = k
                _set_key(tree, levels, slot, key, _entry_pair(col, k))
        # k's list and key
        pool, top = _reserve(pool, top, n_new + 1, rec, start_, length_)
        pool[top, 0], pool[top, 1] = s_k, n_new
        pool[top + 1 : top + 1 + n_new] = new[:n_new]
        rec[s_k, start_] = top + 1
        rec[s_k, length_] = n_new
        rec[s_k, best_] = best_d
        rec[s_k, partner_] = best_partner
        top += 1 + n_new
        k_pair = NOBODY if best_partner < 0 else _entry_pair(k, best_partner)
        _set_key(tree, levels, s_k, best_key, k_pair)
        k += 1
    counters[NEXT_NODE], counters[POOL_TOP] = k, top
    return pool, new


# --- Python side: set-up, slices, the cut


def symmetric_csr(connectivity):
    """``connectivity + connectivity.T`` as sorted CSR: the rows of scikit-learn's LIL."""
    from scipy import sparse

    graph = sparse.csr_matrix(connectivity)
    graph = (graph + graph.T).tocsr()
    graph.sum_duplicates()
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph.indptr.astype(INDEX), graph.indices.astype(np.int32)


@njit(cache=True, nogil=True)
def _new_arrays(X, n_pool_rows, n_tree_rows, n_nodes):
    """The loop's large arrays: slot rows with the first moments, pool, tree room, slots.

    numba's allocations, not numpy's: numpy advises Linux to back large arrays with huge
    pages, and making those (compacting memory) stalled their first use by up to a second
    at 4 Mpx here, while the loop's random reads were no faster on them.
    """
    n_samples, n_features = X.shape
    rec = np.empty((n_samples, n_features + 5))
    rec[:, 0] = 1.0
    rec[:, 1 : n_features + 1] = X
    pool = np.empty((n_pool_rows, 2), dtype=np.int64)
    room = np.empty((n_tree_rows + 3, 2), dtype=np.int64)
    slot_of = np.full(n_nodes, -1, dtype=np.int32)
    for slot in range(n_samples):
        slot_of[slot] = slot
    return rec, pool, room, slot_of


def _start(X, connectivity, n_nodes):
    """The loop's state for a sparse graph, or for the grid of a boolean mask."""
    n_samples = len(X)
    if isinstance(connectivity, np.ndarray):
        mask = connectivity
        if mask.dtype != np.bool_ or not 1 <= mask.ndim <= 3:
            raise ValueError("connectivity: a grid is given as a 1-D to 3-D boolean mask.")
        if int(np.count_nonzero(mask)) != n_samples:
            raise ValueError(
                f"connectivity: the mask has {np.count_nonzero(mask):,} usable pixels "
                f"but X has {n_samples:,} rows."
            )
        shape = np.array((1,) * (3 - mask.ndim) + mask.shape, dtype=np.int64)
        mask = np.ascontiguousarray(mask).ravel()
        row_of, n_rows = _grid_rows(mask, shape)
    else:
        if connectivity.shape != (n_samples, n_samples):
            raise ValueError(
                f"connectivity: a graph of {n_samples:,} samples must be {n_samples} x "
                f"{n_samples}, got {connectivity.shape[0]} x {connectivity.shape[1]}."
            )
        indptr, indices = symmetric_csr(connectivity)
        n_rows = n_samples + int(indptr[-1])
    levels = _tree_levels(n_samples)
    rec, pool, room, slot_of = _new_arrays(X, n_rows * 5 // 4 + 64, int(levels[-1]), n_nodes)
    if isinstance(connectivity, np.ndarray):
        top = _grid_lists(mask, shape, row_of, rec, pool)
        del row_of
    else:
        top = _graph_lists(indptr, indices, rec, pool)
        del indptr, indices
    shift = (-(room.ctypes.data // 16)) % 4  # the tree starts a 64-byte cache line
    tree = room[shift : shift + int(levels[-1])]
    counters = _finish_start(rec, pool, top, tree, levels)
    return rec, slot_of, pool, tree, levels, counters


def merge_steps(X, connectivity, n_clusters=None, slice_size=None):
    """Generator: yields the fraction of merges done; returns the merges as int32 children.

    ``children[m]`` are the two nodes merged into node ``n_samples + m`` (the smaller
    first), as ``ward_tree``'s ``children``. Stops at ``n_clusters`` clusters (None: one).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    n_samples = len(X)
    if n_samples > MAX_SAMPLES:
        raise ValueError(f"X: at most {MAX_SAMPLES:,} samples, got {n_samples:,}.")
    if not np.isfinite(X).all():
        raise ValueError("X: features must be finite (no NaN or infinity).")
    n_nodes = 2 * n_samples - (1 if n_clusters is None else n_clusters)
    n_merges = n_nodes - n_samples
    state = list(_start(X, connectivity, n_nodes))  # rec, slot_of, pool, tree, levels, ...
    counters = state[-1]
    children = np.empty((n_merges, 2), dtype=np.int32)
    new = np.empty((1024, 2), dtype=np.int64)  # k's list while it is made
    # 1 % of the merges per slice, at most 50,000 (well under 0.2 s here): Cancel stops quickly
    slice_size = slice_size or max(1000, min(n_merges // 100, 50_000))
    yield 0.0  # the set-up is done (about 0.2 s per million pixels)
    while counters[NEXT_NODE] < n_nodes:
        stop = min(n_nodes, counters[NEXT_NODE] + slice_size)
        state[2], new = _merge(stop, n_samples, *state, children, new)
        if counters[NEXT_NODE] < stop:
            raise ValueError(
                "connectivity: the graph has more than one connected component; join them "
                "first (scikit-learn would add edges between them)."
            )
        yield (counters[NEXT_NODE] - n_samples) / max(n_merges, 1)
    return children


def tree_steps(X, connectivity, n_clusters=None, slice_size=None):
    """Generator: yields the fraction of merges done; returns ``(children, parent)``.

    As ``sklearn.cluster.ward_tree(X, connectivity=connectivity, n_clusters=n_clusters)``
    for a connected graph (the returned arrays are equal). ``connectivity`` is a sparse
    graph of the rows of X, or a boolean mask (1-D to 3-D) whose usable pixels, in C order,
    are the rows: the same as ``grid_to_graph(*mask.shape, mask=mask)``, without building it.
    """
    children = yield from merge_steps(X, connectivity, n_clusters, slice_size)
    children = children.astype(INDEX)
    return children, parents_of(children, len(X))


def parents_of(children, n_samples):
    """scikit-learn's ``parent`` array: each node's parent (its own number at the top)."""
    n_nodes = n_samples + len(children)
    parent = np.arange(n_nodes, dtype=INDEX)
    parent[children[:, 0]] = np.arange(n_samples, n_nodes)
    parent[children[:, 1]] = np.arange(n_samples, n_nodes)
    return parent


def hc_cut(n_clusters, children, n_leaves):
    """``sklearn.cluster._agglomerative._hc_cut``: the same labels, numbered alike.

    The ``n_clusters`` nodes of the cut are found with the same heap operations on the
    same list (so their order, which numbers the labels, is the same); each leaf gets the
    position in that list of its ancestor there. scikit-learn collects each node's leaves
    with Python lists (about 1 s for 1 Mpx); this propagates the labels down the tree once.
    """
    if not 1 <= n_clusters <= n_leaves:
        raise ValueError(
            f"n_clusters: must be 1 to {n_leaves} (the tree's leaves), got {n_clusters}."
        )
    nodes = [-(int(max(children[-1])) + 1)]
    for _ in range(n_clusters - 1):
        these_children = children[-nodes[0] - n_leaves]
        heapq.heappush(nodes, -int(these_children[0]))
        heapq.heappushpop(nodes, -int(these_children[1]))
    cut = np.array([-node for node in nodes], dtype=np.int64)
    return _label_leaves(children, n_leaves, cut)


@njit(cache=True, nogil=True)
def _label_leaves(children, n_leaves, cut):
    """Label of each leaf: the position in ``cut`` of its ancestor there."""
    n_nodes = n_leaves + len(children)
    label = np.full(n_nodes, -1, dtype=np.int32)
    for position in range(len(cut)):
        label[cut[position]] = position
    for node in range(n_nodes - 1, n_leaves - 1, -1):
        if label[node] >= 0:
            label[children[node - n_leaves, 0]] = label[node]
            label[children[node - n_leaves, 1]] = label[node]
    return label[:n_leaves].astype(np.intp)


@njit(cache=True, nogil=True)
def _forest_labels(children, n_leaves):
    """Labels of a tree stopped early: its roots numbered in ascending node order.

    As ``AgglomerativeClustering`` labels a partial tree (``hc_get_heads`` of each leaf,
    then ``np.searchsorted(np.unique(heads), heads)``).
    """
    n_nodes = n_leaves + len(children)
    label = np.zeros(n_nodes, dtype=np.int32)  # 1 marks a child first
    for merge in range(len(children)):
        label[children[merge, 0]] = 1
        label[children[merge, 1]] = 1
    n_roots = 0
    for node in range(n_nodes):
        if label[node] == 0:
            label[node] = n_roots
            n_roots += 1
        else:
            label[node] = -1
    for node in range(n_nodes - 1, n_leaves - 1, -1):
        label[children[node - n_leaves, 0]] = label[node]
        label[children[node - n_leaves, 1]] = label[node]
    return label[:n_leaves].astype(np.intp)


def labels_steps(X, connectivity, n_clusters, slice_size=None):
    """Generator: yields fractions done; returns the labels of
    ``AgglomerativeClustering(n_clusters, linkage="ward", connectivity=...)``, numbered alike.

    ``connectivity``: a sparse graph, or a boolean mask of a grid (see :func:`tree_steps`).
    Like scikit-learn (``compute_full_tree="auto"``), a small ``n_clusters`` builds the
    whole tree and cuts it (:func:`hc_cut`), a large one stops merging at ``n_clusters``.
    """
    n_samples = len(X)
    full_tree = n_clusters < max(100, 0.02 * n_samples)  # scikit-learn's "auto"
    children = yield from merge_steps(
        X, connectivity, None if full_tree else n_clusters, slice_size
    )
    if full_tree:
        return hc_cut(n_clusters, children, n_samples)
    return _forest_labels(children, n_samples)


def labels(X, connectivity, n_clusters):
    """The labels of :func:`labels_steps`, without progress."""
    steps = labels_steps(X, connectivity, n_clusters)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def warm_up() -> None:
    """Compiles every kernel, or loads it from numba's disk cache (once per process).

    Runs the loop on tiny inputs (a grid, a sparse graph, both cuts). Call it in a
    background thread when a widget opens, so that a first run does not wait for it.
    """
    from scipy import sparse

    values = np.arange(12.0).reshape(12, 1) % 5
    labels(values, np.ones((3, 4), dtype=bool), 2)  # grid, whole tree and hc_cut
    chain = sparse.diags([np.ones(11)], [1], shape=(12, 12))
    labels(values, chain, 11)  # graph, tree stopped at 11 clusters


warm = warm_up  # the former name
