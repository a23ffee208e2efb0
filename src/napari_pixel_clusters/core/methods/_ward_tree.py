"""scikit-learn's Ward merge loop with connectivity (``sklearn.cluster.ward_tree``), compiled.

The loop reproduces ``ward_tree(X, connectivity=..., n_clusters=...)`` step by step:

* the same initial pairs (for each row of the symmetrised connectivity, in column order,
  the neighbours with a smaller index) and the same distance arithmetic, in the same order,
  as ``_hierarchical_fast.compute_ward_dist``;
* the same heap order: pop the smallest (distance, i, j) and skip pairs whose nodes are
  already merged. The triples are all distinct, so any correct min-heap over that
  lexicographic order pops them in the same order as ``heapq``;
* the same neighbour lists of a new node (the heads of the old nodes' neighbours, first
  those of ``i`` then those of ``j``, each once) and the same pushes.

Equal distances are therefore broken exactly as scikit-learn breaks them and the tree, and
the labels cut from it, are identical. Arrays replace the Python lists: neighbour lists are
linked lists in one growing pool, the heap is two growing arrays, and a union-find array
with path halving finds the heads (``parent`` itself is kept as scikit-learn's).

The loop runs in slices of merges (:func:`cluster` yields the fraction done between slices),
so a caller can show progress and stop.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INDEX = np.int64
#: Neighbour lists hold node numbers and links as int32 (half the memory): enough for
#: this many samples (a 2-D grid makes about 22 links per sample, a 3-D grid about 30).
MAX_SAMPLES = 2**31 // 64


# The heap is two arrays: distances (float64) and pairs (int64, i * 2**32 + j: node numbers
# are below 2**31, so comparing pairs compares (i, j) lexicographically). Comparisons read
# the pairs only on equal distances. It is a 4-ary heap (children of p: 4p+1 .. 4p+4): half
# the depth of a binary heap, and the four children's distances share one cache line.
# A neighbour list is a chain of links in one pool: rows (node, next link or -1).

SHIFT = np.int64(32)


@njit(cache=True, nogil=True)
def _less(distance, pair, a, b):
    if distance[a] != distance[b]:
        return distance[a] < distance[b]
    return pair[a] < pair[b]


@njit(cache=True, nogil=True)
def _swap(distance, pair, a, b):
    distance[a], distance[b] = distance[b], distance[a]
    pair[a], pair[b] = pair[b], pair[a]


@njit(cache=True, nogil=True)
def _sift_down(distance, pair, position, size):
    while True:
        smallest = position
        first = 4 * position + 1
        for child in range(first, min(first + 4, size)):
            if _less(distance, pair, child, smallest):
                smallest = child
        if smallest == position:
            return
        _swap(distance, pair, position, smallest)
        position = smallest


@njit(cache=True, nogil=True)
def _sift_up(distance, pair, position):
    while position > 0:
        up = (position - 1) // 4
        if not _less(distance, pair, position, up):
            return
        _swap(distance, pair, position, up)
        position = up


@njit(cache=True, nogil=True)
def _heapify(distance, pair, size):
    for position in range(size // 4, -1, -1):
        _sift_down(distance, pair, position, size)


@njit(cache=True, nogil=True)
def _drop_merged(distance, pair, size, used):
    """Removes the pairs of merged nodes (never popped as merges) and re-heapifies.

    The heap then holds only pairs that can still be popped; their order is unchanged.
    """
    kept = 0
    for position in range(size):
        if used[pair[position] >> SHIFT] and used[pair[position] & 0xFFFFFFFF]:
            distance[kept] = distance[position]
            pair[kept] = pair[position]
            kept += 1
    _heapify(distance, pair, kept)
    return kept


@njit(cache=True, nogil=True)
def _ward_dist(m_1, m_2, row, col):
    """``compute_ward_dist`` for one pair, same operations in the same order."""
    n = (m_1[row] * m_1[col]) / (m_1[row] + m_1[col])
    pa = 0.0
    for f in range(m_2.shape[1]):
        difference = m_2[row, f] / m_1[row] - m_2[col, f] / m_1[col]
        pa += difference * difference
    return pa * n


@njit(cache=True, nogil=True)
def _grow(array, size):
    capacity = max(array.shape[0] + array.shape[0] // 2, 16)
    bigger = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    bigger[:size] = array[:size]
    return bigger


@njit(cache=True, nogil=True)
def _append(links, n_links, head, tail, owner, node):
    """``A[owner].append(node)``; returns the new number of links."""
    links[n_links, 0] = node
    links[n_links, 1] = -1
    if tail[owner] == -1:
        head[owner] = n_links
    else:
        links[tail[owner], 1] = n_links
    tail[owner] = n_links
    return n_links + 1


@njit(cache=True, nogil=True)
def _start(X, indptr, indices, n_nodes):
    """Moments, neighbour lists and the heap of the first pairs (scikit-learn's set-up)."""
    n_samples, n_features = X.shape
    m_1 = np.zeros(n_nodes)
    m_1[:n_samples] = 1.0
    m_2 = np.zeros((n_nodes, n_features))
    m_2[:n_samples] = X
    n_pairs = 0
    for row in range(n_samples):
        for p in range(indptr[row], indptr[row + 1]):
            if indices[p] < row:
                n_pairs += 1
    distance = np.empty(n_pairs + 4 * n_samples + 16)
    pair = np.empty(distance.shape[0], dtype=np.int64)
    size = 0
    for row in range(n_samples):
        for p in range(indptr[row], indptr[row + 1]):
            col = indices[p]
            if col < row:
                distance[size] = _ward_dist(m_1, m_2, row, col)
                pair[size] = (np.int64(row) << SHIFT) | col
                size += 1
    _heapify(distance, pair, size)
    links = np.empty((indptr[n_samples] + 18 * n_samples + 16, 2), dtype=np.int32)
    head = np.full(n_nodes, -1, dtype=np.int32)
    tail = np.full(n_nodes, -1, dtype=np.int32)
    n_links = 0
    for row in range(n_samples):
        for p in range(indptr[row], indptr[row + 1]):
            n_links = _append(links, n_links, head, tail, row, indices[p])
    # next node, heap size, links used, heap size at which merged pairs are dropped
    counters = np.array([n_samples, size, n_links, 2 * size + 1024], dtype=np.int64)
    return m_1, m_2, distance, pair, links, head, tail, counters


@njit(cache=True, nogil=True)
def _merge(
    stop,
    n_samples,
    m_1,
    m_2,
    parent,
    root,
    used,
    visited,
    children,
    distance,
    pair,
    links,
    head,
    tail,
    counters,
    new_neighbours,
):
    """Merges until node ``stop`` exists (or the heap runs dry: counters[0] < stop)."""
    k, size, n_links, drop_at = counters[0], counters[1], counters[2], counters[3]
    while k < stop:
        if size > drop_at:
            size = _drop_merged(distance, pair, size, used)
            drop_at = 2 * size + 1024
        found = False
        while size > 0:
            i, j = pair[0] >> SHIFT, pair[0] & 0xFFFFFFFF
            size -= 1
            if size > 0:
                distance[0], pair[0] = distance[size], pair[size]
                _sift_down(distance, pair, 0, size)
            if used[i] and used[j]:
                found = True
                break
        if not found:
            break
        parent[i] = k
        parent[j] = k
        root[i] = k
        root[j] = k
        children[k - n_samples, 0] = j  # scikit-learn stores each pair reversed
        children[k - n_samples, 1] = i
        used[i] = False
        used[j] = False
        m_1[k] = m_1[i] + m_1[j]
        for f in range(m_2.shape[1]):
            m_2[k, f] = m_2[i, f] + m_2[j, f]
        # heads of i's neighbours, then j's, each once (scikit-learn's _get_parents)
        visited[k] = k
        n_new = 0
        for start in (i, j):
            link = head[start]
            while link != -1:
                node = links[link, 0]
                while root[node] != node:  # path halving; roots are parent's roots
                    root[node] = root[root[node]]
                    node = root[node]
                if visited[node] != k:
                    visited[node] = k
                    new_neighbours[n_new] = node
                    n_new += 1
                link = links[link, 1]
        while n_links + 2 * n_new > links.shape[0]:
            links = _grow(links, n_links)
        while size + n_new > distance.shape[0]:
            distance = _grow(distance, size)
            pair = _grow(pair, size)
        for q in range(n_new):
            col = new_neighbours[q]
            n_links = _append(links, n_links, head, tail, col, k)  # A[col].append(k)
            n_links = _append(links, n_links, head, tail, k, col)  # A[k]: the new neighbours
        for q in range(n_new):
            col = new_neighbours[q]
            distance[size] = _ward_dist(m_1, m_2, k, col)
            pair[size] = (np.int64(k) << SHIFT) | col
            _sift_up(distance, pair, size)
            size += 1
        k += 1
    counters[0], counters[1], counters[2], counters[3] = k, size, n_links, drop_at
    return distance, pair, links


def symmetric_csr(connectivity):
    """``connectivity + connectivity.T`` as sorted CSR: the rows of scikit-learn's LIL."""
    from scipy import sparse

    graph = sparse.csr_matrix(connectivity)
    graph = (graph + graph.T).tocsr()
    graph.sum_duplicates()
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph.indptr.astype(INDEX), graph.indices.astype(INDEX)


def tree_steps(X, connectivity, n_clusters=None, slice_size=None):
    """Generator: yields the fraction of merges done; returns ``(children, parent)``.

    As ``sklearn.cluster.ward_tree(X, connectivity=connectivity, n_clusters=n_clusters)``
    for a connected graph (the returned arrays are equal).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    n_samples = len(X)
    if n_samples > MAX_SAMPLES:
        raise ValueError(f"X: at most {MAX_SAMPLES:,} samples, got {n_samples:,}.")
    indptr, indices = symmetric_csr(connectivity)
    n_nodes = 2 * n_samples - (1 if n_clusters is None else n_clusters)
    m_1, m_2, distance, pair, links, head, tail, counters = _start(X, indptr, indices, n_nodes)
    parent = np.arange(n_nodes, dtype=np.int64)
    root = parent.astype(np.int32)
    used = np.ones(n_nodes, dtype=np.bool_)
    visited = np.full(n_nodes, -1, dtype=np.int32)
    children = np.empty((n_nodes - n_samples, 2), dtype=np.int64)
    new_neighbours = np.empty(n_nodes, dtype=np.int32)
    n_merges = n_nodes - n_samples
    # 1 % of the merges per slice, at most 20,000 (about 0.2 s here): Cancel stops quickly
    slice_size = slice_size or max(1000, min(n_merges // 100, 20_000))
    while counters[0] < n_nodes:
        stop = min(n_nodes, counters[0] + slice_size)
        distance, pair, links = _merge(
            stop,
            n_samples,
            m_1,
            m_2,
            parent,
            root,
            used,
            visited,
            children,
            distance,
            pair,
            links,
            head,
            tail,
            counters,
            new_neighbours,
        )
        if counters[0] < stop:
            raise ValueError(
                "connectivity: the graph has more than one connected component; join them "
                "first (scikit-learn would add edges between them)."
            )
        yield (counters[0] - n_samples) / max(n_merges, 1)
    return children, parent


def labels_steps(X, connectivity, n_clusters, slice_size=None):
    """Generator: yields fractions done; returns the labels of
    ``AgglomerativeClustering(n_clusters, linkage="ward", connectivity=...)``, numbered alike.
    """
    from sklearn.cluster._agglomerative import _hc_cut

    n_samples = len(X)
    full_tree = n_clusters < max(100, 0.02 * n_samples)  # scikit-learn's "auto"
    children, parent = yield from tree_steps(
        X, connectivity, None if full_tree else n_clusters, slice_size
    )
    if full_tree:
        return _hc_cut(n_clusters, children, n_samples)
    heads = parent.copy()  # hc_get_heads: each node's root (parents point to larger nodes)
    for node in range(len(heads) - 1, -1, -1):
        heads[node] = heads[heads[node]]
    heads = heads[:n_samples]
    return np.searchsorted(np.unique(heads), heads)


def labels(X, connectivity, n_clusters):
    """The labels of :func:`labels_steps`, without progress."""
    steps = labels_steps(X, connectivity, n_clusters)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def warm() -> None:
    """Compile the loop (once per machine: the compiled code is cached on disk)."""
    from scipy import sparse

    chain = sparse.diags([np.ones(3)], [1], shape=(4, 4))
    labels(np.arange(4.0)[:, None], chain, 2)
