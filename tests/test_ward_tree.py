"""The compiled Ward merge loop (core/methods/_ward_tree.py) against scikit-learn's own:
the same trees, the same cut, the same labels numbered alike, on grids given as masks and
on sparse graphs, including inputs full of exactly equal distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import AgglomerativeClustering, ward_tree
from sklearn.cluster._agglomerative import _hc_cut
from sklearn.feature_extraction.image import grid_to_graph
from sklearn.neighbors import kneighbors_graph

from conftest import collect_steps
from napari_pixel_clusters.core.methods import _ward_tree


def smooth_values(shape, n_features=3, seed=0):
    """Smooth random features (regions plus noise), one row per grid position."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    values = rng.random((*shape, n_features))
    values = ndimage.gaussian_filter(values, (2,) * len(shape) + (0,))
    values += 0.02 * rng.random(values.shape)
    return values.reshape(-1, n_features)


def flat_patches(shape, patch, levels=3, seed=0):
    """Flat square patches in a few levels: most distances are exactly equal (0 or alike)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, levels, [s // patch for s in shape]).astype(float)
    for axis in range(len(shape)):
        coarse = np.repeat(coarse, patch, axis=axis)
    return coarse.reshape(-1, 1)


def holes(shape, seed=0):
    """A mask with scattered single missing pixels: the usable ones stay connected."""
    rng = np.random.default_rng(seed)
    mask = np.ones(shape, dtype=bool)
    mask[rng.random(shape) < 0.08] = False
    mask[tuple(slice(0, None, 2) for _ in shape)] = True  # keep a connected lattice
    assert connected_components(grid_to_graph(*shape, mask=mask))[0] == 1
    return mask


def our_tree(X, connectivity, n_clusters=None, slice_size=None):
    return collect_steps(_ward_tree.tree_steps(X, connectivity, n_clusters, slice_size))[1]


CASES = {
    "2-D RGB": (lambda: smooth_values((24, 31)), (24, 31)),
    "2-D flat patches": (lambda: flat_patches((32, 32), 4), (32, 32)),
    "2-D constant": (lambda: np.zeros((20 * 20, 1)), (20, 20)),
    "3-D grey": (lambda: smooth_values((6, 10, 9), 1), (6, 10, 9)),
    "3-D flat patches": (lambda: flat_patches((8, 8, 8), 2, 2, 1), (8, 8, 8)),
    "1-D": (lambda: smooth_values((300,), 2), (300,)),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("n_clusters", [None, 7])
def test_the_tree_of_a_grid_mask_is_scikit_learns_tree(case, n_clusters):
    make, shape = CASES[case]
    X = make()
    graph = grid_to_graph(*shape) if len(shape) > 1 else grid_to_graph(*shape, 1)
    children, _, _, parents = ward_tree(X, connectivity=graph, n_clusters=n_clusters)
    for connectivity in (np.ones(shape, dtype=bool), graph):
        ours, our_parents = our_tree(X, connectivity, n_clusters, slice_size=37)
        assert np.array_equal(ours, children)
        assert np.array_equal(our_parents, parents)


@pytest.mark.parametrize("shape", [(30, 26), (7, 12, 11)])
def test_a_mask_with_holes_is_grid_to_graph_with_that_mask(shape):
    mask = holes(shape, seed=len(shape))
    X = smooth_values(shape, 2, seed=3)[mask.ravel()]
    graph = grid_to_graph(*shape, mask=mask)
    children = ward_tree(X, connectivity=graph)[0]
    assert np.array_equal(our_tree(X, mask)[0], children)
    assert np.array_equal(our_tree(X, graph)[0], children)


def test_any_connected_graph_gives_scikit_learns_tree():
    rng = np.random.default_rng(5)
    points = rng.random((400, 2))
    graph = kneighbors_graph(points, 6, include_self=False)  # not symmetric: joined both ways
    assert connected_components(graph, directed=False)[0] == 1
    X = rng.random((400, 4))
    for n_clusters in (None, 30):
        children, _, _, parents = ward_tree(X, connectivity=graph, n_clusters=n_clusters)
        ours, our_parents = our_tree(X, graph, n_clusters)
        assert np.array_equal(ours, children)
        assert np.array_equal(our_parents, parents)


@pytest.mark.parametrize("n_clusters", [2, 27, 99, 150])
@pytest.mark.parametrize("case", ["2-D RGB", "2-D flat patches", "3-D grey"])
def test_labels_are_agglomerative_clusterings_numbered_alike(case, n_clusters):
    """27 and 99: the whole tree, cut; 150 (over 100 and 2 % of the pixels): a stopped tree."""
    make, shape = CASES[case]
    X = make()
    model = AgglomerativeClustering(n_clusters, linkage="ward", connectivity=grid_to_graph(*shape))
    expected = model.fit(X).labels_
    ours = _ward_tree.labels(X, np.ones(shape, dtype=bool), n_clusters)
    assert ours.dtype == expected.dtype
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize("seed", range(4))
def test_our_cut_is_scikit_learns_hc_cut(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 25)), int(rng.integers(5, 25)))
    X = rng.random((shape[0] * shape[1], 2))
    if seed % 2:
        X = np.round(X, 1)  # many ties
    children = ward_tree(X, connectivity=grid_to_graph(*shape))[0]
    n_leaves = len(X)
    for n_clusters in (1, 2, 3, 10, 27, n_leaves // 2, n_leaves - 1, n_leaves):
        expected = _hc_cut(n_clusters, children, n_leaves)
        assert np.array_equal(_ward_tree.hc_cut(n_clusters, children, n_leaves), expected)
        assert np.array_equal(
            _ward_tree.hc_cut(n_clusters, children.astype(np.int32), n_leaves), expected
        )


def test_a_graph_in_several_parts_is_refused():
    mask = np.ones((6, 6), dtype=bool)
    mask[:, 3] = False
    X = np.arange(30.0)[:, None]
    with pytest.raises(ValueError, match=r"^connectivity: the graph has more than one"):
        _ward_tree.labels(X, mask, 2)
    with pytest.raises(ValueError, match=r"^connectivity: the graph has more than one"):
        _ward_tree.labels(X, grid_to_graph(6, 6, mask=mask), 2)


def test_bad_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^connectivity: the mask has 12 usable pixels"):
        _ward_tree.labels(np.zeros((10, 1)), np.ones((3, 4), dtype=bool), 2)
    with pytest.raises(ValueError, match=r"^connectivity: a grid is given as"):
        _ward_tree.labels(np.zeros((12, 1)), np.ones((3, 4), dtype=np.uint8), 2)
    with pytest.raises(ValueError, match=r"^connectivity: a graph of 10 samples"):
        _ward_tree.labels(np.zeros((10, 1)), grid_to_graph(3, 4), 2)
    X = np.zeros((12, 1))
    X[3] = np.nan
    with pytest.raises(ValueError, match=r"^X: features must be finite"):
        _ward_tree.labels(X, np.ones((3, 4), dtype=bool), 2)


def test_the_inputs_are_left_unchanged():
    X = smooth_values((12, 13))
    mask = np.ones((12, 13), dtype=bool)
    graph = grid_to_graph(12, 13)
    before = X.copy(), mask.copy(), graph.copy()
    _ward_tree.labels(X, mask, 5)
    _ward_tree.labels(X, graph, 5)
    assert np.array_equal(X, before[0]) and np.array_equal(mask, before[1])
    assert (graph != before[2]).nnz == 0


def test_merges_come_in_slices_with_rising_fractions():
    X = smooth_values((20, 20))
    steps, children = collect_steps(_ward_tree.merge_steps(X, np.ones((20, 20), bool), None, 50))
    assert len(steps) == 9  # set-up, then 399 merges in slices of 50
    assert steps[0] == 0.0
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert children.dtype == np.int32 and children.shape == (399, 2)


def test_the_pool_of_lists_compacts_and_grows_without_losing_a_list():
    """Lists behind headers: dead lists are dropped, live ones keep their entries."""
    n_features = 1
    rec = np.zeros((3, n_features + 5))
    start, length = n_features + _ward_tree.START, n_features + _ward_tree.LENGTH
    pool = np.zeros((12, 2), dtype=np.int64)
    top = 0
    for slot, entries in enumerate([[7, 8], [9], [4, 5, 6]]):
        pool[top] = slot, len(entries)
        pool[top + 1 : top + 1 + len(entries), 0] = entries
        pool[top + 1 : top + 1 + len(entries), 1] = np.array(entries) * 10
        rec[slot, start], rec[slot, length] = top + 1, len(entries)
        top += 1 + len(entries)
    rec[1, start] = -1  # slot 1's list is dead
    pool, top = _ward_tree._reserve(pool, top, 3, rec, start, length)  # fits: no change
    assert (len(pool), top) == (12, 9)
    pool, top = _ward_tree._reserve(pool, top, 5, rec, start, length)  # compacts, then grows
    assert top == 7 and len(pool) >= top + 5
    for slot, entries in [(0, [7, 8]), (2, [4, 5, 6])]:
        first = int(rec[slot, start])
        assert list(pool[first : first + int(rec[slot, length]), 0]) == entries
        assert list(pool[first : first + len(entries), 1]) == [10 * e for e in entries]


def test_after_warm_up_no_run_compiles_anything():
    from numba.core.registry import CPUDispatcher

    _ward_tree.warm_up()
    kernels = {
        name: value for name, value in vars(_ward_tree).items() if isinstance(value, CPUDispatcher)
    }
    called_from_python = [
        "_new_arrays",
        "_grid_rows",
        "_grid_lists",
        "_graph_lists",
        "_finish_start",
        "_merge",
        "_label_leaves",
    ]
    assert all(kernels[name].signatures for name in called_from_python + ["_forest_labels"])
    compiled = {name: list(kernel.signatures) for name, kernel in kernels.items()}
    X = smooth_values((9, 8, 7))
    _ward_tree.labels(X, np.ones((9, 8, 7), dtype=bool), 3)
    _ward_tree.labels(X[:, :1], grid_to_graph(9, 8, 7), 150)  # a stopped tree
    assert {name: list(kernel.signatures) for name, kernel in kernels.items()} == compiled
