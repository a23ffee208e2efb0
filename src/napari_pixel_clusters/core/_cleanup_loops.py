"""The compiled loops of :mod:`.cleanup` (numba; imported when a clean-up runs, so that
importing the package stays quick): the many-label majority filter, borders between
regions, one pass of hole filling and the rounds of ``min_region``."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def majority_at(flat: np.ndarray, positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.zeros(len(positions), dtype=np.int64)
    votes = np.empty(len(offsets), dtype=np.int64)
    for i in range(len(positions)):
        p = positions[i]
        if flat[p] == 0:
            continue
        n = 0
        for offset in offsets:
            value = flat[p + offset]
            if value > 0:
                votes[n] = value
                n += 1
        ordered = np.sort(votes[:n])
        best, best_count, run = ordered[0], 0, 0
        for j in range(n):
            run = run + 1 if j > 0 and ordered[j] == ordered[j - 1] else 1
            if run > best_count:  # strictly more: the lowest label keeps a tie
                best, best_count = ordered[j], run
        out[i] = best
    return out


@njit(cache=True, nogil=True)
def borders(
    ids: np.ndarray, unknown: np.ndarray, has_unknown: bool, planes_touch: bool, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Face neighbours of 3-D region ``ids`` (both directions, one pair per face), and
    per region whether it touches the border or a label-0 pixel (``edge``; the first
    axis only if ``planes_touch``) or an ``unknown`` pixel."""
    depth, height, width = ids.shape
    edge = np.zeros(n + 1, dtype=np.bool_)
    cut = np.zeros(n + 1, dtype=np.bool_)
    count = 0
    for z in range(depth):
        for y in range(height):
            for x in range(width):
                a = ids[z, y, x]
                if x + 1 < width and a != ids[z, y, x + 1]:
                    count += 1
                if y + 1 < height and a != ids[z, y + 1, x]:
                    count += 1
                if z + 1 < depth and a != ids[z + 1, y, x]:
                    count += 1
    rows = np.empty(2 * count, dtype=np.int64)
    cols = np.empty(2 * count, dtype=np.int64)
    m = 0
    for z in range(depth):
        for y in range(height):
            for x in range(width):
                a = ids[z, y, x]
                if a > 0:
                    on_border = (y == 0 or y == height - 1 or x == 0 or x == width - 1) or (
                        planes_touch and (z == 0 or z == depth - 1)
                    )
                    if on_border:
                        edge[a] = True
                for dz, dy, dx in ((0, 0, 1), (0, 1, 0), (1, 0, 0)):
                    zz, yy, xx = z + dz, y + dy, x + dx
                    if zz >= depth or yy >= height or xx >= width:
                        continue
                    b = ids[zz, yy, xx]
                    if a == b:
                        continue
                    if a > 0 and b > 0:
                        rows[m], cols[m] = a, b
                        rows[m + 1], cols[m + 1] = b, a
                        m += 2
                    elif a > 0:
                        if has_unknown and unknown[zz, yy, xx]:
                            cut[a] = True
                        else:
                            edge[a] = True
                    elif b > 0:
                        if has_unknown and unknown[z, y, x]:
                            cut[b] = True
                        else:
                            edge[b] = True
    return rows[:m], cols[:m], edge, cut


@njit(cache=True, nogil=True)
def fill_pass(
    label: np.ndarray,
    size: np.ndarray,
    candidate: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    max_size: int,
) -> tuple[np.ndarray, bool]:
    """Find every hole (a connected set of candidate regions of other labels than c,
    whose neighbours outside it are all c, of at most max_size pixels) and fill those
    that neither overlap nor touch a hole that comes first (larger; ties: of the lower
    label): that one is filled instead, the others wait for the next pass."""
    n = len(label)
    # (region, enclosing label) pairs to start from: candidates and their neighbours' labels
    starts_r = []
    starts_c = []
    for r in range(1, n):
        if not candidate[r]:
            continue
        for j in range(indptr[r], indptr[r + 1]):
            c = label[indices[j]]
            seen = False
            for k in range(indptr[r], j):
                if label[indices[k]] == c:
                    seen = True
                    break
            if not seen:
                starts_r.append(r)
                starts_c.append(c)
    order = np.argsort(np.array(starts_c, dtype=np.int64), kind="mergesort")
    stamp = np.full(n, -1, dtype=np.int64)  # the enclosing label a region was explored for
    mark = np.zeros(n, dtype=np.int64)  # the search a region was reached in
    stack = np.empty(n, dtype=np.int64)
    members = []  # the regions of every hole, one after the other
    ends = []  # where each hole's regions end in members
    hole_label = []
    hole_size = []
    search = 0
    for i in order:
        r, c = starts_r[i], starts_c[i]
        if stamp[r] == c:
            continue
        search += 1
        stamp[r], mark[r] = c, search
        stack[0] = r
        count, done, total, ok = 1, 0, size[r], True
        while done < count and ok:
            x = stack[done]
            done += 1
            for j in range(indptr[x], indptr[x + 1]):
                y = indices[j]
                if label[y] == c or mark[y] == search:
                    continue
                if stamp[y] == c or not candidate[y]:
                    ok = False
                    break
                total += size[y]
                if total > max_size:
                    ok = False
                    break
                stamp[y], mark[y] = c, search
                stack[count] = y
                count += 1
        if not ok:
            for k in range(done, count):  # the rest of a component that is no hole
                stamp[stack[k]] = c
            continue
        for k in range(count):
            members.append(stack[k])
        ends.append(len(members))
        hole_label.append(c)
        hole_size.append(total)
    new_label = label.copy()
    if len(ends) == 0:
        return new_label, False
    # rank: larger first, then the lower label (two holes of one label never touch)
    top = np.int64(label.max()) + 1
    rank = np.array(hole_size, dtype=np.int64) * top + (top - np.array(hole_label, dtype=np.int64))
    ranked_in = np.full(n, -1, dtype=np.int64)  # best rank of a hole holding the region
    ranked_near = np.full(n, -1, dtype=np.int64)  # best rank of a hole it encloses
    for h in range(len(ends)):
        for k in range(0 if h == 0 else ends[h - 1], ends[h]):
            x = members[k]
            ranked_in[x] = max(ranked_in[x], rank[h])
            for j in range(indptr[x], indptr[x + 1]):
                y = indices[j]
                if label[y] == hole_label[h]:
                    ranked_near[y] = max(ranked_near[y], rank[h])
    for h in range(len(ends)):
        first = True
        for k in range(0 if h == 0 else ends[h - 1], ends[h]):
            x = members[k]
            if ranked_in[x] > rank[h] or ranked_near[x] > rank[h]:
                first = False
            for j in range(indptr[x], indptr[x + 1]):
                y = indices[j]
                if label[y] == hole_label[h] and ranked_in[y] > rank[h]:
                    first = False
        if first:
            for k in range(0 if h == 0 else ends[h - 1], ends[h]):
                new_label[members[k]] = hole_label[h]
    return new_label, True


@njit(cache=True, nogil=True)
def absorb_rounds(
    label: np.ndarray,
    size: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    faces: np.ndarray,
    min_size: int,
) -> np.ndarray:
    n = len(label)
    label = label.copy()
    large = size >= min_size
    large[0] = False
    # seeds: the largest region (then the first in C order) of each connected set of
    # small regions that touches no large one
    seen = np.zeros(n, dtype=np.bool_)
    queue = np.empty(n, dtype=np.int64)
    seeds = []
    for r in range(1, n):
        if large[r] or seen[r]:
            continue
        seen[r] = True
        queue[0] = r
        count, done, best, has_large = 1, 0, r, False
        while done < count:
            x = queue[done]
            done += 1
            if size[x] > size[best] or (size[x] == size[best] and x < best):
                best = x
            for j in range(indptr[x], indptr[x + 1]):
                y = indices[j]
                if large[y]:
                    has_large = True
                elif not seen[y]:
                    seen[y] = True
                    queue[count] = y
                    count += 1
        if not has_large:
            seeds.append(best)
    for s in seeds:
        large[s] = True
    # rounds: every small region touching a large one takes the label of its longest
    # border with large regions; regions of that label next to it join the large ones
    queued = np.zeros(n, dtype=np.bool_)
    frontier = []
    for r in range(1, n):
        if not large[r]:
            for j in range(indptr[r], indptr[r + 1]):
                if large[indices[j]]:
                    frontier.append(r)
                    queued[r] = True
                    break
    max_degree = 0
    for r in range(n - 1):
        max_degree = max(max_degree, indptr[r + 1] - indptr[r])
    seen_labels = np.empty(max(max_degree, 1), dtype=np.int64)
    counts = np.empty(max(max_degree, 1), dtype=np.int64)
    while len(frontier) > 0:
        chosen = np.empty(len(frontier), dtype=np.int64)
        for i in range(len(frontier)):
            r = frontier[i]
            m = 0
            for j in range(indptr[r], indptr[r + 1]):
                y = indices[j]
                if not large[y]:
                    continue
                k = 0
                while k < m and seen_labels[k] != label[y]:
                    k += 1
                if k == m:
                    seen_labels[m], counts[m] = label[y], 0
                    m += 1
                counts[k] += faces[j]
            best = 0
            for k in range(1, m):
                if counts[k] > counts[best] or (
                    counts[k] == counts[best] and seen_labels[k] < seen_labels[best]
                ):
                    best = k
            chosen[i] = seen_labels[best]
        for i in range(len(frontier)):
            label[frontier[i]] = chosen[i]
            large[frontier[i]] = True
        grown = []
        for r in frontier:
            for j in range(indptr[r], indptr[r + 1]):
                y = indices[j]
                if not large[y] and label[y] == label[r]:
                    large[y] = True
                    grown.append(y)
        following = []
        for group in (frontier, grown):
            for r in group:
                for j in range(indptr[r], indptr[r + 1]):
                    y = indices[j]
                    if not large[y] and not queued[y]:
                        queued[y] = True
                        following.append(y)
        frontier = following
    return label
