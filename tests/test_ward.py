"""Ward (core/methods/ward.py; the compiled merge loop itself: test_ward_tree.py).

Masks with missing pixels: scikit-learn's result on a connected grid, and a spatial,
linear-time join of the parts when missing pixels split the grid; the merge loop against
scikit-learn; the memory and time guards and the automatic downscale; lazy images clustered
on a downscaled level. The notebook's Ward workflows are in test_reference_workflows.py."""

from __future__ import annotations

import time
import warnings

import dask.array as da
import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from skimage import data
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.image import grid_to_graph

import napari_pixel_clusters as npc
from conftest import collect_steps, same_partition
from napari_pixel_clusters.core.methods import ward


def half_missing(shape, seed):
    """Random values with half the pixels NaN at random."""
    rng = np.random.default_rng(seed)
    image = rng.random(shape)
    image[rng.random(shape) < 0.5] = np.nan
    return image


def edge_set(graph) -> set[tuple[int, int]]:
    graph = graph.tocoo()
    return {(min(a, b), max(a, b)) for a, b in zip(graph.row, graph.col) if a != b}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_connected_mask_with_holes_gives_scikit_learns_result(seed):
    image = np.random.default_rng(seed).random((14, 14))
    image[::2, ::2] = np.nan  # isolated holes: the usable pixels stay one connected grid
    mask = np.isfinite(image)
    expected = np.zeros(image.shape, dtype=int)
    expected[mask] = (
        1
        + AgglomerativeClustering(4, linkage="ward", connectivity=grid_to_graph(14, 14, mask=mask))
        .fit(image[mask][:, None])
        .labels_
    )
    seg = npc.segment(image, "ward", 4, downscale=1.0)
    assert same_partition(seg.labels, expected)
    assert (seg.params["separate_parts"], seg.params["bridges_across_gaps"]) == (1, 0)


def test_a_connected_grid_is_passed_to_scikit_learn_unchanged():
    mask = np.ones((5, 6), dtype=bool)
    mask[2, 3] = False
    graph, n_parts, n_bridges = ward.pixel_graph(mask)
    assert (n_parts, n_bridges) == (1, 0)
    assert edge_set(graph) == edge_set(grid_to_graph(5, 6, mask=mask))


def test_parts_facing_each_other_across_a_gap_are_joined_straight_across():
    mask = np.ones((3, 6), dtype=bool)
    mask[:, 2:4] = False  # columns 0-1 | gap | columns 4-5
    graph, n_parts, n_bridges = ward.pixel_graph(mask)
    row = {pixel: i for i, pixel in enumerate(zip(*np.nonzero(mask)))}
    bridges = {(row[(r, 1)], row[(r, 4)]) for r in range(3)}
    assert (n_parts, n_bridges) == (2, 3)
    assert edge_set(graph) == edge_set(grid_to_graph(3, 6, mask=mask)) | bridges


def nearest_usable(mask: np.ndarray) -> list[set[int]]:
    """Brute force: for every grid pixel, the rows of its nearest usable pixels (ties all)."""
    usable = np.argwhere(mask)
    grid = np.indices(mask.shape).reshape(mask.ndim, -1).T
    distances = ((grid[:, None, :] - usable[None, :, :]) ** 2).sum(axis=2)
    return [set(np.flatnonzero(d == d.min())) for d in distances]


@pytest.mark.parametrize("shape, seed", [((12, 12), 0), ((12, 12), 1), ((3, 7, 7), 2)])
def test_bridges_join_parts_whose_nearest_pixel_zones_touch(shape, seed):
    mask = np.isfinite(half_missing(shape, seed))
    graph, n_parts, n_bridges = ward.pixel_graph(mask)
    grid = edge_set(grid_to_graph(*shape, mask=mask))
    _, part = connected_components(grid_to_graph(*shape, mask=mask), directed=False)
    bridges = edge_set(graph) - grid
    assert n_parts > 1 and len(bridges) == n_bridges > 0
    assert connected_components(graph, directed=False)[0] == 1  # one graph, as Ward needs
    assert all(part[a] != part[b] for a, b in bridges)  # only between separate parts
    nearest = nearest_usable(mask)
    flat = np.arange(mask.size).reshape(shape)
    possible, certain = set(), set()  # joins of touching zones (all ties; no tie)
    for axis in range(mask.ndim):
        for u, v in zip(np.delete(flat, -1, axis).ravel(), np.delete(flat, 0, axis).ravel()):
            joins = {
                (min(a, b), max(a, b))
                for a in nearest[u]
                for b in nearest[v]
                if part[a] != part[b]
            }
            possible |= joins
            if len(nearest[u]) == len(nearest[v]) == 1:
                certain |= joins
    assert certain <= bridges <= possible


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_fragmented_mask_gives_regions_connected_through_the_bridges(seed):
    image = half_missing((12, 12), seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warned when it completed the graph
        seg = npc.segment(image, "ward", 5, downscale=1.0)
    mask = np.isfinite(image)
    graph, n_parts, n_bridges = ward.pixel_graph(mask)
    assert seg.params["separate_parts"] == n_parts > 1
    assert seg.params["bridges_across_gaps"] == n_bridges
    expected = np.zeros(image.shape, dtype=int)
    expected[mask] = (
        1
        + AgglomerativeClustering(5, linkage="ward", connectivity=graph)
        .fit(image[mask][:, None])
        .labels_
    )
    assert same_partition(seg.labels, expected)
    assert np.all(seg.labels[~mask] == 0) and np.all(seg.labels[mask] > 0)
    rows = seg.labels[mask]
    for label in range(1, 6):
        inside = np.flatnonzero(rows == label)
        region = graph.tocsr()[inside][:, inside]
        assert connected_components(region, directed=False)[0] == 1


def test_a_fragmented_mask_still_separates_clearly_different_halves():
    image = half_missing((30, 30), 3)
    image[:, 15:] += 10.0
    labels = npc.segment(image, "ward", 2, downscale=1.0).labels
    assert same_partition(
        labels, np.where(np.isfinite(image), 1 + (np.arange(30) >= 15)[None, :], 0)
    )


def test_a_fragmented_mask_takes_time_in_proportion_to_its_pixels():
    """Was 53 s at 80 x 80 (scikit-learn joined each of 413 parts to every other)."""
    image = half_missing((80, 80), 0)
    started = time.perf_counter()
    seg = npc.segment(image, "ward", 5, downscale=1.0)
    assert time.perf_counter() - started < 5.0
    assert seg.params["separate_parts"] > 300
    assert seg.params["bridges_across_gaps"] < 2 * image.size


def test_the_graph_and_the_fit_each_have_a_stop_point_before_and_after(monkeypatch):
    events = []
    build_graph = ward.pixel_graph
    monkeypatch.setattr(
        ward, "pixel_graph", lambda mask: (events.append("graph"), build_graph(mask))[1]
    )
    steps = npc.segment_steps(half_missing((12, 12), 0), "ward", 3, downscale=1.0)
    for step in steps:
        events.append(step)
        if step == ("fit", 0.1):
            steps.close()  # a cancelled run stops before Ward's merge tree is built
            break
    assert events[-3:] == [("fit", 0.05), "graph", ("fit", 0.1)]
    steps = npc.segment_steps(half_missing((12, 12), 0), "ward", 3, downscale=1.0)
    stages, result = collect_steps(steps)
    first = stages.index(("fit", 0.05))
    assert stages[first + 1] == ("fit", 0.1)
    merging = [fraction for _, fraction in stages[first + 2 : -1]]
    assert merging and merging == sorted(merging) and merging[-1] == pytest.approx(0.9)
    assert stages[-1] == ("predict", 0.95)
    assert result.n_clusters == 3


def test_lazy_ward_on_a_fragmented_mask_matches_in_memory():
    image = half_missing((40, 40), 4)
    lazy = npc.segment(da.from_array(image, chunks=16), "ward", 4, downscale=1.0)
    in_memory = npc.segment(image, "ward", 4, downscale=1.0)
    assert same_partition(lazy.labels.compute(), in_memory.labels)
    assert lazy.params["separate_parts"] == in_memory.params["separate_parts"] > 1


# --- the compiled merge loop (core/methods/_ward_tree.py) against scikit-learn -------------


def scikit_learns_ward(image, n_clusters, mask=None, **features):
    """scikit-learn's Ward on the features our Ward clusters (full resolution)."""
    from napari_pixel_clusters.core.features import build_features
    from napari_pixel_clusters.core.image import read_image

    data = read_image(image)
    feature_set = build_features(data, compress=False, **features)
    mask = data.mask if mask is None else mask
    graph = grid_to_graph(*data.spatial_shape, mask=mask)
    model = AgglomerativeClustering(n_clusters, linkage="ward", connectivity=graph)
    expected = np.zeros(data.spatial_shape, dtype=int)
    expected[mask] = 1 + model.fit(feature_set.X).labels_
    return expected, feature_set.X, graph


def flat_patches(shape=(64, 64), patch=8, seed=0):
    """RGB uint8 of flat 8x8 patches in three levels: many exactly equal distances."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 3, (shape[0] // patch, shape[1] // patch, 3)) * 100
    return np.kron(levels, np.ones((patch, patch, 1))).astype(np.uint8)


def photo_like(shape, seed=0):
    """Smooth random RGB uint8 image (regions plus noise)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random((*shape, 3)), (4,) * len(shape) + (0,))
    noisy = (smooth - smooth.min()) / np.ptp(smooth) + 0.05 * rng.random((*shape, 3))
    return (255 * noisy / noisy.max()).astype(np.uint8)


@pytest.mark.parametrize("case", ["rgb", "lab", "grey", "spatial", "flat patches"])
@pytest.mark.parametrize("n_clusters", [6, 150])
def test_ward_is_scikit_learns_partition(case, n_clusters):
    image = flat_patches() if case == "flat patches" else photo_like((64, 64))
    features = {"lab": {"color_space": "lab"}, "spatial": {"spatial_weight": 0.5}}.get(case, {})
    if case == "grey":
        image = image[..., 0]
    expected, _, _ = scikit_learns_ward(image, n_clusters, **features)
    seg = npc.segment(image, "ward", n_clusters, downscale=1.0, **features)
    assert same_partition(seg.labels, expected)
    assert np.array_equal(seg.labels, expected)  # numbered alike too


def test_ward_with_a_mask_and_in_3d_is_scikit_learns_partition():
    image = photo_like((64, 64)).astype(float)
    image[10:20, 10:30] = np.nan  # a hole: the usable pixels stay connected
    expected, _, _ = scikit_learns_ward(image, 8, mask=np.isfinite(image[..., 0]))
    assert np.array_equal(npc.segment(image, "ward", 8, downscale=1.0).labels, expected)
    volume = photo_like((8, 16, 16))[..., 0]
    expected, _, _ = scikit_learns_ward(volume, 5)
    assert np.array_equal(npc.segment(volume, "ward", 5, downscale=1.0).labels, expected)


@pytest.mark.parametrize("image", [photo_like((32, 48), 1), flat_patches((32, 32), 4, 2)])
def test_the_merge_tree_is_scikit_learns_tree(image):
    from sklearn.cluster import ward_tree

    from napari_pixel_clusters.core.methods import _ward_tree

    _, X, graph = scikit_learns_ward(image, 2)
    for n_clusters in (None, 40):
        children, _, _, parents = ward_tree(X, connectivity=graph, n_clusters=n_clusters)
        ours, our_parents = collect_steps(_ward_tree.tree_steps(X, graph, n_clusters, 50))[1]
        assert np.array_equal(ours, children)
        assert np.array_equal(our_parents, parents)


def test_a_cancelled_merge_stops_between_slices():
    image = photo_like((96, 96))
    steps = npc.segment_steps(image, "ward", 5, downscale=1.0)
    merging = []
    for _stage, fraction in steps:
        if 0.1 < fraction < 0.9:
            merging.append(fraction)
            started = time.perf_counter()
            steps.close()
            break
    assert len(merging) == 1 and time.perf_counter() - started < 0.2


def test_auto_downscale_is_full_resolution_up_to_about_10_seconds_of_merging():
    assert ward.auto_downscale((2048, 2048)) == 1.0  # 4 Mpx: about 12 s here
    fraction = ward.auto_downscale((4000, 6000))
    clustered = np.prod(ward.shrunk_shape((4000, 6000), fraction))
    assert 0.95 * ward.AUTO_MAX_PIXELS <= clustered <= 1.01 * ward.AUTO_MAX_PIXELS
    assert ward.AUTO_MAX_PIXELS * ward.SECONDS_PER_PIXEL <= 15.0


def test_the_memory_guard_uses_the_compiled_loops_bytes_per_pixel(monkeypatch):
    monkeypatch.setattr(ward, "available_memory", lambda: 2**30)  # 1 GiB free
    ward.check_size(2_000_000, 1.0, (1000, 2000))  # about 0.75 GiB: fits (was 1.7 GiB)
    with pytest.raises(ValueError, match=r"^downscale: Ward on 3,000,000 pixels"):
        ward.check_size(3_000_000, 1.0, (1000, 3000))


def test_a_connected_grid_goes_to_the_loop_as_a_mask_and_a_split_one_as_a_graph():
    holes = np.ones((20, 30), dtype=bool)
    holes[5, 5] = holes[10, 20] = False  # still one piece
    connectivity, parts, bridges = ward.grid_connectivity(holes)
    assert connectivity is holes and (parts, bridges) == (1, 0)
    split = holes.copy()
    split[:, 15] = False  # a missing column cuts it in two
    connectivity, parts, bridges = ward.grid_connectivity(split)
    assert connectivity.shape == (split.sum(), split.sum()) and parts == 2 and bridges > 0


# --- lazy images: Ward on a downscaled level -------------------------------------------------
def block_means(image, factor):
    """Means over factor x factor blocks (partial blocks at the far edges included)."""
    sums = image.astype(float)
    counts = np.ones(image.shape)
    for axis in (0, 1):
        starts = np.arange(0, image.shape[axis], factor)
        sums = np.add.reduceat(sums, starts, axis=axis)
        counts = np.add.reduceat(counts, starts, axis=axis)
    return sums / counts


def test_lazy_ward_clusters_a_downscaled_level_and_says_so():
    coins = data.coins()
    result = npc.segment(da.from_array(coins, chunks=64), "ward", 3, downscale=0.25)
    expected = npc.segment(block_means(coins, 4), "ward", 3, downscale=1.0)
    enlarged = np.kron(expected.labels, np.ones((4, 4), dtype=int))[:303, :384]
    assert isinstance(result.labels, da.Array)
    np.testing.assert_array_equal(result.labels.compute(), enlarged)
    assert result.params["downscale"] == 0.25
    assert "4x smaller" in result.params["lazy_level"]
    counts = np.bincount(enlarged.ravel())[1:]
    np.testing.assert_array_equal(result.table["pixels"], counts)


def test_lazy_ward_default_level_clusters_about_40000_pixels(monkeypatch):
    from napari_pixel_clusters.core.methods import ward

    monkeypatch.setattr(ward, "AUTO_MAX_PIXELS", 40_000)  # the real limit: 1 Mpx (issue 14)
    image = np.tile(data.coins(), (2, 2))
    result = npc.segment(da.from_array(image, chunks=128), "ward", 4)
    assert result.params["clustered_shape"] == [152, 192]  # 4x smaller: 29,184 pixels
    assert result.labels.compute().min() == 1 and result.n_clusters == 4


def test_lazy_ward_shrinks_the_pyramid_level_nearest_its_size():
    coins = data.coins()[:296, :376]  # divisible by 8
    levels = [da.from_array(coins[::step, ::step], chunks=64) for step in (1, 2, 4)]
    result = npc.segment(levels, "ward", 3, downscale=0.125)
    level_2 = coins[::4, ::4]  # 4x smaller, then blocks of 2x2: 8x in all
    expected = npc.segment(block_means(level_2, 2), "ward", 3, downscale=1.0).labels
    np.testing.assert_array_equal(
        result.labels.compute(), np.kron(expected, np.ones((8, 8), dtype=int))
    )
    assert "level 2 of the pyramid" in result.params["lazy_level"]
    assert result.params["downscale"] == 0.125


# --- memory and time guards, downscaling -----------------------------------------------------
def test_ward_refuses_a_run_that_would_not_fit_in_memory(monkeypatch):
    from napari_pixel_clusters.core.methods import ward

    monkeypatch.setattr(ward, "available_memory", lambda: 50 * 2**20)
    with pytest.raises(ValueError, match=r"^downscale: .* use downscale=0\.\d+"):
        npc.segment(data.coins(), "ward", n_clusters=5, downscale=1.0)


def test_ward_warns_before_a_slow_run(monkeypatch):
    from napari_pixel_clusters.core.methods import ward

    monkeypatch.setattr(ward, "SECONDS_PER_PIXEL", 1.0)
    with pytest.warns(UserWarning, match="will take about"):
        npc.segment(np.zeros((20, 20)), "ward", n_clusters=2, downscale=1.0)


def test_ward_default_downscale_keeps_runs_small(monkeypatch):
    from napari_pixel_clusters.core.methods import ward

    monkeypatch.setattr(ward, "AUTO_MAX_PIXELS", 40_000)  # the real limit: 1 Mpx (issue 14)
    seg = npc.segment(data.astronaut(), "ward", n_clusters=8)
    assert 0.3 < seg.params["downscale"] < 0.5
    height, width = seg.params["clustered_shape"]
    assert height * width <= 40_000 * 1.01


def test_ward_downscale_does_not_leak_missing_pixels_into_values():
    image = np.full((120, 120), 200.0)
    image[:, :60] = 100.0
    image[::6, :] = np.nan
    seg = npc.segment(image, "ward", 2, downscale=0.25)
    np.testing.assert_allclose(np.sort(seg.palette.ravel()), [100.0, 200.0])
    assert np.all(seg.labels[1, :60] != seg.labels[1, 60:].max())


def test_ward_keeps_every_plane_of_a_short_stack():
    coins = data.coins()
    stack = np.stack([coins, coins[::-1], coins[:, ::-1]])
    seg = npc.segment(stack, "ward", 3)
    assert seg.params["clustered_shape"][0] == 3
    assert not np.array_equal(seg.labels[0], seg.labels[1])
