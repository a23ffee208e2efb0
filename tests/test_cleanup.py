"""Clean-up of cluster labels (core/cleanup.py; the options in core/registry.py, their use
in segment, models, the widget and the CLI): the rules on hand-made arrays with known
answers, against a slow pixel-by-pixel reading of the rules, invariants on real k-means
results, 2-D and 3-D, and the lazy route identical to the in-memory one."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage
from skimage import data
from skimage.filters.rank import majority
from skimage.measure import label as connected
from skimage.morphology import ball, disk

import napari_pixel_clusters as npc
from napari_pixel_clusters.core import cleanup as cleanup_module
from napari_pixel_clusters.core.cleanup import Cleanup, clean_labels
from napari_pixel_clusters.core.registry import CLEANUP_NAMES, drain


# ------------------------------------------------------------------ the rules, by reading
def _faces(ndim):
    return ndimage.generate_binary_structure(ndim, 1)


def _on_border(mask):
    return any(np.take(mask, side, axis=a).any() for a in range(mask.ndim) for side in (0, -1))


def reference_smooth(labels, radius):
    """Each labelled pixel: the most common label among labelled pixels in its disk/ball,
    ties the lowest."""
    footprint = (disk if labels.ndim == 2 else ball)(radius).astype(bool)
    offsets = np.argwhere(footprint) - radius
    out = labels.copy()
    for p in zip(*np.nonzero(labels)):
        votes = {}
        for offset in offsets:
            q = tuple(np.add(p, offset))
            if all(0 <= q[i] < labels.shape[i] for i in range(labels.ndim)) and labels[q]:
                votes[labels[q]] = votes.get(labels[q], 0) + 1
        most = max(votes.values())
        out[p] = min(label for label, n in votes.items() if n == most)
    return out


def reference_fill(labels, max_size):
    """Passes until no hole: a hole of c is a connected set of other clusters' pixels not
    touching the border or label 0 (so enclosed by c alone), at most max_size pixels;
    holes that overlap or touch: the larger (ties: the lower label) is filled, the other
    waits for the next pass."""
    structure = _faces(labels.ndim)
    labels = labels.copy()
    while True:
        holes = []  # (size, -label, pixels, label)
        for c in np.unique(labels[labels > 0]):
            parts, n = ndimage.label((labels > 0) & (labels != c), structure)
            for i in range(1, n + 1):
                part = parts == i
                ring = ndimage.binary_dilation(part, structure) & ~part
                if part.sum() <= max_size and not _on_border(part) and (labels[ring] > 0).all():
                    holes.append((part.sum(), -c, part, c))
        if not holes:
            return labels
        new = labels.copy()
        for size, minus_c, part, c in holes:
            touching = ndimage.binary_dilation(part, structure)
            first = all(
                (size, minus_c) > (other[0], other[1]) or other[2] is part
                for other in holes
                if (touching & other[2]).any()
            )
            if first:
                new[part] = c
        labels = new


def reference_min_region(labels, min_size):
    """Seed each connected set of small regions without a large neighbour (its largest
    region, ties the first in C order), then rounds: every small region touching a large
    one takes the label of its longest border (pixel faces) with large regions."""
    labels = labels.copy()
    structure = _faces(labels.ndim)
    regions = connected(labels, background=0, connectivity=1)
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    small = (regions > 0) & (sizes[regions] < min_size)
    seeds = np.zeros(labels.shape, bool)
    clumps, n = ndimage.label(small, structure)
    for i in range(1, n + 1):
        clump = clumps == i
        ring = ndimage.binary_dilation(clump, structure) & ~clump
        if ((regions > 0) & ~small)[ring].any():
            continue
        inside = np.unique(regions[clump])
        first = {r: np.flatnonzero(regions.ravel() == r)[0] for r in inside}
        seeds |= regions == min(inside, key=lambda r: (-sizes[r], first[r]))
    while True:
        regions = connected(labels, background=0, connectivity=1)
        sizes = np.bincount(regions.ravel())
        seeded = np.zeros(len(sizes), bool)
        seeded[np.unique(regions[seeds])] = True
        large = (sizes >= min_size) | seeded
        large[0] = False
        new = labels.copy()
        for r in np.flatnonzero(~large[1:]) + 1:
            region = regions == r
            border = {}
            for axis in range(labels.ndim):
                for shift in (1, -1):
                    neighbour = np.roll(labels, shift, axis)
                    neighbour_large = np.roll(large[regions], shift, axis)
                    wrapped = np.zeros(labels.shape, bool)
                    index = [slice(None)] * labels.ndim
                    index[axis] = 0 if shift == 1 else -1
                    wrapped[tuple(index)] = True
                    for label in neighbour[region & neighbour_large & ~wrapped]:
                        border[label] = border.get(label, 0) + 1
            if border:
                longest = max(border.values())
                new[region] = min(label for label, n in border.items() if n == longest)
        if np.array_equal(new, labels):
            return labels
        labels = new


def reference_clean(labels, min_region=0, fill_holes=0, smooth=0):
    out = labels.copy()
    if smooth:
        out = reference_smooth(out, smooth)
    if fill_holes:
        out = reference_fill(out, fill_holes)
    if min_region:
        out = reference_min_region(out, min_region)
    return out


def blobs(shape, k, seed, sigma=1.0, holes=False):
    """Random label blobs (smoothed noise cut in k levels), optionally with label-0 areas."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape), sigma)
    labels = np.digitize(field, np.quantile(field, np.linspace(0, 1, k + 1)[1:-1])) + 1
    if holes:
        labels[ndimage.gaussian_filter(rng.random(shape), 2) < np.quantile(field, 0.3)] = 0
    return labels.astype(np.int32)


# ------------------------------------------------------------------ hand-made arrays
def test_min_region_takes_the_longest_border_with_large_regions():
    labels = np.array(
        [
            [1, 1, 1, 1, 2, 2, 2, 2],
            [1, 1, 1, 1, 2, 2, 2, 2],
            [1, 1, 3, 3, 3, 2, 2, 2],  # region 3: 3 faces with 1, 5 with 2
            [1, 1, 2, 2, 2, 2, 2, 2],
        ]
    )
    out = clean_labels(labels, min_region=4)
    assert (out[2, 2:5] == 2).all()
    assert (out[labels != 3] == labels[labels != 3]).all()


def test_min_region_tie_goes_to_the_lowest_label():
    labels = np.array(
        [
            [2, 2, 2, 2, 2],
            [2, 2, 2, 2, 2],
            [2, 2, 4, 1, 1],  # 4 touches 2 (two faces: above, left) and 1 (two faces)
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
        ]
    )
    assert clean_labels(labels, min_region=2)[2, 2] == 1
    swapped = np.where(labels == 1, 3, labels)  # now 2 is the lower one
    assert clean_labels(swapped, min_region=2)[2, 2] == 2


def test_min_region_works_round_by_round_through_a_clump():
    """A clump of small regions: those touching the large region are absorbed first, the
    large region grows into the rest, round after round."""
    labels = np.ones((5, 9), int)
    labels[1:4, 1:8] = [
        [2, 3, 2, 3, 2, 3, 2],
        [3, 2, 3, 2, 3, 2, 3],
        [2, 3, 2, 3, 2, 3, 2],
    ]
    labels[2, 4] = 4  # the center needs two rounds
    out = clean_labels(labels, min_region=2)
    assert (out == 1).all()
    # a checkerboard inside a large 5 on the left and a large 6 on the right
    labels = np.array([[5, 5, 5, 2, 3, 2, 3, 6, 6, 6]] * 3)
    out = clean_labels(labels, min_region=4)
    # round 1: the 2 next to the 5s takes 5, the 3 next to the 6s takes 6; round 2: the
    # middle 3 borders the new 5 only among large regions, the middle 2 the new 6 only
    np.testing.assert_array_equal(out, [[5, 5, 5, 5, 5, 6, 6, 6, 6, 6]] * 3)


def test_min_region_decides_a_round_at_once_and_regions_joined_keep_their_label():
    labels = np.array([[1, 1, 1, 1, 2, 1, 3, 3, 3, 3]])
    out = clean_labels(labels, min_region=4)  # at once: 2 -> 1 (left), the lone 1 -> 3
    np.testing.assert_array_equal(out, [[1, 1, 1, 1, 1, 3, 3, 3, 3, 3]])
    labels = np.array([[1, 1, 1, 1, 2, 1, 3]])
    # round 1: 2 -> 1, and the lone 1 is now part of the large 1 (keeps its label);
    # round 2: 3 borders only it
    np.testing.assert_array_equal(clean_labels(labels, min_region=4), np.ones((1, 7)))


def test_an_area_of_only_small_regions_is_seeded_from_its_largest_region():
    speckle = np.array(
        [
            [1, 2, 1, 2],
            [3, 3, 2, 1],
            [1, 2, 1, 2],
        ]
    )
    out = clean_labels(speckle, min_region=100)
    assert (out == 3).all()  # the only two-pixel region; the area is one region now
    tie = np.array([[1, 2, 1, 2, 1]])  # all one pixel: the first in C order seeds
    assert (clean_labels(tie, min_region=10) == 1).all()
    # an island of a mask (label 0 around) smaller than min_region: one region, of its
    # largest region's label, below min_region (the only case)
    masked = np.zeros((6, 8), int)
    masked[1:3, 1:4] = [[2, 2, 1], [2, 1, 3]]
    masked[4:6, 5:8] = 4  # another island: one region already
    out = clean_labels(masked, min_region=50)
    assert (out[1:3, 1:4] == 2).all() and (out[4:6, 5:8] == 4).all()
    assert (out[masked == 0] == 0).all()


def test_label_zero_is_no_neighbour_never_changes_and_never_votes():
    labels = np.array(
        [
            [1, 1, 1, 0, 0, 0],
            [1, 1, 2, 0, 0, 0],  # 2 touches 0 on three sides and 1 on one
            [1, 1, 1, 0, 0, 0],
        ]
    )
    out = clean_labels(labels, min_region=2, smooth=1)
    assert out[1, 2] == 1
    assert (out[labels == 0] == 0).all()
    hole_next_to_zero = np.array(
        [
            [1, 1, 1, 1],
            [1, 2, 0, 1],
            [1, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(clean_labels(hole_next_to_zero, fill_holes=5), hole_next_to_zero)


def test_fill_holes_fills_only_holes_enclosed_by_one_cluster():
    labels = np.ones((7, 9), int)
    labels[1:3, 1:3] = 2  # a hole of 4 pixels
    labels[4, 6] = 3  # a hole of 1 pixel
    labels[0, 5] = 3  # touches the border: no hole
    labels[4:7, 0:3] = 4  # touches the border: no hole
    labels[5, 1] = 2  # inside 4 (which touches the border): a hole of 4 all the same
    out = clean_labels(labels, fill_holes=4)
    expected = labels.copy()
    expected[1:3, 1:3] = 1
    expected[4, 6] = 1
    expected[5, 1] = 4
    np.testing.assert_array_equal(out, expected)
    out = clean_labels(labels, fill_holes=3)  # the 4-pixel hole stays
    assert (out[1:3, 1:3] == 2).all() and out[4, 6] == 1
    two_enclosers = np.array(
        [
            [1, 1, 2, 2],
            [1, 3, 2, 2],
            [1, 1, 2, 2],
        ]
    )  # 3 is enclosed by 1 and 2 together: no hole
    np.testing.assert_array_equal(clean_labels(two_enclosers, fill_holes=5), two_enclosers)


def test_nested_holes_the_outermost_cluster_wins_and_no_hole_is_left():
    labels = np.ones((9, 9), int)
    labels[2:7, 2:7] = 2  # a ring of 2 (24 pixels) ...
    labels[4, 4] = 3  # ... around a 3
    assert (clean_labels(labels, fill_holes=25) == 1).all()
    inner_only = clean_labels(labels, fill_holes=24)  # the 25-pixel hole of 1 stays
    assert (inner_only[2:7, 2:7] == 2).all()
    labels[4, 4] = 1  # a 1 (a hole of 2) inside the ring of 2 (a 24-pixel hole of 1)
    assert (clean_labels(labels, fill_holes=24) == 1).all()  # the larger, outer one
    checkerboard = np.ones((8, 8), int)
    checkerboard[1:7, 1:7] = np.indices((6, 6)).sum(axis=0) % 2 + 2
    out = clean_labels(checkerboard, fill_holes=1)  # every inner pixel is a hole of the
    assert (out[2:6, 2:6] == 2).all()  # other label: the holes of 2 (lower) come first
    np.testing.assert_array_equal(clean_labels(out, fill_holes=1), out)
    # the pixel inside holes of two clusters: the largest hole's wins
    labels = np.full((7, 7), 5)
    labels[1:6, 1:6] = 4
    labels[2:5, 2:5] = 6
    labels[3, 3] = 7
    out = clean_labels(labels, fill_holes=25)  # holes of 5 (25), 4 (9) and 6 (1)
    assert (out == 5).all()
    assert (clean_labels(labels, fill_holes=9)[1:6, 1:6] == 4).all()
    assert (clean_labels(labels, fill_holes=8)[2:5, 2:5] == 6).all()


def test_smooth_is_a_majority_filter_with_the_lowest_label_on_ties():
    labels = np.array(
        [
            [2, 5, 2],
            [5, 3, 5],
            [2, 5, 2],
        ]
    )
    # radius 1: the pixel and its 4 face neighbours (inside the image). Center: 3 and
    # four 5s -> 5; corners: 2, 5, 5 -> 5; edges: 5, 2, 2, 3 -> 2
    np.testing.assert_array_equal(
        clean_labels(labels, smooth=1), [[5, 2, 5], [2, 5, 2], [5, 2, 5]]
    )
    tie = np.array([[1, 2, 3, 3]])
    # (0,0): 1, 2 -> 1; (0,1): 1, 2, 3 -> 1; (0,2): 2, 3, 3 -> 3; (0,3): 3, 3 -> 3
    np.testing.assert_array_equal(clean_labels(tie, smooth=1), [[1, 1, 3, 3]])
    rng = np.random.default_rng(0)
    for shape, footprint in (((40, 50), disk(2)), ((8, 12, 14), ball(2))):
        labels = rng.integers(1, 6, shape)
        np.testing.assert_array_equal(
            clean_labels(labels, smooth=2), majority(labels.astype(np.uint8), footprint)
        )


def test_smooth_of_many_labels_equals_the_rank_filter():
    """More labels than the rank filter takes: the compiled loop, the same rule."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (30, 40)) * 1000 + rng.integers(0, 3, (30, 40))
    labels[rng.random(labels.shape) < 0.1] = 0
    assert labels.max() > cleanup_module.RANK_FILTER_LABELS
    np.testing.assert_array_equal(clean_labels(labels, smooth=2), reference_smooth(labels, 2))
    small = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)  # 0 stays 0
    np.testing.assert_array_equal(
        np.unique(labels)[clean_labels(small, smooth=2)], clean_labels(labels, smooth=2)
    )


@pytest.mark.parametrize("shape", [(14, 15), (5, 7, 8)])
def test_the_three_options_follow_their_rules_on_random_labels(shape):
    """Against the slow pixel-by-pixel reading of the rules: speckle, blobs, label 0."""
    rng = np.random.default_rng(len(shape))
    for trial in range(40):
        if trial % 5 == 1:  # checkerboards: holes everywhere, touching each other
            labels = (np.indices(shape).sum(axis=0) % 2 + 1).astype(np.int32)
            labels[rng.random(shape) < 0.2] = 3
        elif trial % 2:
            labels = rng.integers(1, int(rng.integers(2, 5)) + 1, shape).astype(np.int32)
        else:
            labels = blobs(shape, int(rng.integers(2, 5)), trial, 0.7, holes=trial % 4 == 0)
        if trial % 3 == 0:
            labels[rng.random(shape) < 0.08] = 0
        options = {
            "min_region": int(rng.integers(0, 12)),
            "fill_holes": int(rng.integers(0, 12)),
            "smooth": int(rng.integers(0, 2)),
        }
        np.testing.assert_array_equal(
            clean_labels(labels, **options), reference_clean(labels, **options), str(options)
        )


# ------------------------------------------------------------------ invariants
@pytest.fixture(scope="module")
def kmeans_results():
    astronaut = npc.segment(data.astronaut()[::2, ::2], "kmeans", 6, random_state=0).labels
    coins = npc.segment(data.coins()[::2, ::2], "kmeans", 4, random_state=0).labels
    return {"astronaut": astronaut, "coins": coins}


@pytest.mark.parametrize("min_region", [2, 20, 200])
def test_min_region_invariants_on_kmeans_results(kmeans_results, min_region):
    for name, labels in kmeans_results.items():
        before = labels.copy()
        out = clean_labels(labels, min_region=min_region)
        np.testing.assert_array_equal(labels, before)  # the input is not modified
        regions = connected(out, background=0, connectivity=1)
        assert np.bincount(regions.ravel())[1:].min() >= min_region, name
        old = connected(labels, background=0, connectivity=1)
        old_sizes = np.bincount(old.ravel())
        small = old_sizes[old] < min_region
        changed = out != labels
        assert not (changed & ~small).any(), name  # only small regions change
        assert changed.any()
        for r in np.flatnonzero(old_sizes >= min_region)[1:]:  # large regions keep pixels
            assert (out[old == r] == labels[old == r]).all()
        assert out.dtype == labels.dtype
        np.testing.assert_array_equal(clean_labels(out, min_region=min_region), out)


@pytest.mark.parametrize("fill_holes", [1, 10, 100])
def test_fill_holes_invariants_on_kmeans_results(kmeans_results, fill_holes):
    for name, labels in kmeans_results.items():
        out = clean_labels(labels, fill_holes=fill_holes)
        again = clean_labels(out, fill_holes=fill_holes)
        np.testing.assert_array_equal(again, out, name)  # no hole is left: idempotent
        # pixels change only inside holes: regions no larger than fill_holes
        old = connected(labels, background=0, connectivity=1)
        sizes = np.bincount(old.ravel())
        assert not ((out != labels) & (sizes[old] > fill_holes)).any()
        assert (out != labels).any()


def test_smooth_on_kmeans_results_matches_skimage(kmeans_results):
    for labels in kmeans_results.values():
        for radius in (1, 3):
            expected = majority(labels.astype(np.uint16), disk(radius), mask=labels > 0)
            np.testing.assert_array_equal(clean_labels(labels, smooth=radius), expected)


def test_all_three_on_a_3d_stack_with_label_zero():
    labels = blobs((12, 30, 34), 4, 7, 0.8, holes=True)
    before = labels.copy()
    out = clean_labels(labels, min_region=40, fill_holes=15, smooth=1)
    np.testing.assert_array_equal(labels, before)
    assert (out[labels == 0] == 0).all() and (out[labels > 0] > 0).all()
    regions = connected(out, background=0, connectivity=1)  # 6-connected
    sizes = np.bincount(regions.ravel())
    areas = connected(labels > 0, connectivity=1)  # usable areas
    area_sizes = np.bincount(areas.ravel())
    for r in np.flatnonzero(sizes[1:] < 40) + 1:  # only in areas smaller than min_region
        [area] = np.unique(areas[regions == r])
        assert area_sizes[area] < 40
    np.testing.assert_array_equal(out, reference_clean(labels, 40, 15, 1))


def test_a_stack_of_one_plane_is_cleaned_as_a_2d_image():
    """(The widget's "current plane" is such a stack.) Its first and last plane are not a
    border that keeps holes from being holes."""
    labels = blobs((30, 34), 4, 11, 0.8)
    options = {"min_region": 20, "fill_holes": 10, "smooth": 1}
    expected = clean_labels(labels, **options)
    assert (expected != clean_labels(labels, min_region=20, smooth=1)).any()  # holes filled
    np.testing.assert_array_equal(clean_labels(labels[None], **options), expected[None])

    class Given:
        def array(self, data, scale=None):
            return da.from_array(labels[None], chunks=(1, 8, 8))

    lazy = cleanup_module.CleaningLabeller(Given(), Cleanup(**options)).array(None)
    np.testing.assert_array_equal(lazy.compute(), expected[None])


def test_more_spatial_axes_clean_each_volume():
    labels = blobs((2, 3, 10, 12), 3, 3, 0.7)
    out = clean_labels(labels, min_region=6)
    for index in np.ndindex(2):
        np.testing.assert_array_equal(out[index], clean_labels(labels[index], min_region=6))


def test_bad_options_and_labels_are_refused_by_name():
    labels = np.ones((4, 4), int)
    for name, value, message in (
        ("min_region", -1, "min_region: must be at least 0"),
        ("fill_holes", 2.5, "fill_holes: expected int"),
        ("smooth", True, "smooth: expected int"),
    ):
        with pytest.raises(ValueError, match=f"^{message}"):
            clean_labels(labels, **{name: value})
    with pytest.raises(ValueError, match=r"^labels: expected an integer label image"):
        clean_labels(np.ones(5, int), min_region=2)
    with pytest.raises(ValueError, match=r"^labels: expected labels of 0 or more"):
        clean_labels(-labels, min_region=2)
    with pytest.raises(ValueError, match=r"^labels: expected an integer"):
        clean_labels(labels.astype(float), smooth=1)


# ------------------------------------------------------------------ segment
@pytest.mark.parametrize(
    "method, k, options",
    [
        ("kmeans", 5, {}),
        ("gmm", 4, {}),
        ("ward", 4, {"downscale": 0.5}),
        ("slic", None, {"n_segments": 60}),
    ],
)
def test_segment_with_cleanup_has_an_exact_table(method, k, options):
    image = data.astronaut()[::4, ::4]
    plain = npc.segment(image, method, k, random_state=0, **options)
    seg = npc.segment(
        image, method, k, random_state=0, min_region=30, fill_holes=8, smooth=1, **options
    )
    expected = clean_labels(_raw_labels(plain), min_region=30, fill_holes=8, smooth=1)
    np.testing.assert_array_equal(seg.labels, npc_compact(expected))
    counts = np.bincount(seg.labels.ravel(), minlength=seg.n_clusters + 1)[1:]
    np.testing.assert_array_equal(seg.table["pixels"], counts)
    assert (counts > 0).all()
    pixels = image.reshape(-1, 3)
    for label in range(1, seg.n_clusters + 1):
        np.testing.assert_allclose(
            seg.palette[label - 1], pixels[seg.labels.ravel() == label].mean(axis=0)
        )
    recorded = {name: seg.params[name] for name in CLEANUP_NAMES}
    assert recorded == {"min_region": 30, "fill_holes": 8, "smooth": 1}
    assert seg.params["cleanup_changed_pixels"] == int((expected != _raw_labels(plain)).sum())
    assert seg.params["n_clusters_found"] == seg.n_clusters
    assert {plain.params[name] for name in CLEANUP_NAMES} == {0}  # recorded when off too
    assert plain.params["cleanup_changed_pixels"] == 0


def _raw_labels(seg):
    """A result's labels as its method numbered them (label = component + 1)."""
    components = np.asarray(seg.params["cluster_components"])
    return np.concatenate([[0], components + 1])[seg.labels]


def npc_compact(labels):
    from napari_pixel_clusters.core.result import compact_labels

    return compact_labels(labels)[0]


def test_clusters_emptied_by_cleanup_leave_the_table_and_components_stay_right():
    image = np.zeros((40, 40), np.uint8)
    image[:, 20:] = 200
    image[10:12, 5:7] = 100  # a cluster of 4 pixels only
    seg = npc.segment(image, "kmeans", 3, random_state=0, min_region=10)
    plain = npc.segment(image, "kmeans", 3, random_state=0)
    assert plain.n_clusters == 3 and seg.n_clusters == 2
    assert list(seg.table["pixels"]) == [800, 800]
    gone = plain.labels[10, 5]
    assert seg.params["cluster_components"] == [
        c for label, c in enumerate(plain.params["cluster_components"], 1) if label != gone
    ]
    np.testing.assert_array_equal(seg.model.predict(image).labels, seg.labels)


def test_canny_refuses_cleanup_by_name():
    for name in CLEANUP_NAMES:
        with pytest.raises(ValueError, match=f"^{name}: method 'canny' finds edges"):
            npc.segment(data.coins()[::8, ::8], "canny", **{name: 3})
    edges = npc.segment(data.coins()[::8, ::8], "canny", min_region=0)  # off: accepted
    assert "min_region" not in edges.params
    assert not npc.METHODS["canny"].takes_cleanup
    assert {m.name for m in npc.METHODS.values() if m.takes_cleanup} >= {
        "kmeans",
        "gmm",
        "ward",
        "slic",
    }
    with pytest.raises(ValueError, match=r"^min_region: must be at least 0"):
        npc.segment(data.coins()[::8, ::8], "kmeans", 3, min_region=-5)


def test_the_cleanup_stage_is_reported():
    steps = npc.segment_steps(data.coins()[::8, ::8], "kmeans", 3, smooth=1)
    stages = []
    try:
        while True:
            stages.append(next(steps)[0])
    except StopIteration:
        pass
    assert "clean-up" in stages


# ------------------------------------------------------------------ models
def test_a_model_reproduces_the_cleaned_labels(tmp_path):
    image = data.astronaut()[::4, ::4]
    options = {"min_region": 25, "fill_holes": 6, "smooth": 1}
    for method in ("kmeans", "gmm"):
        seg = npc.segment(image, method, 5, random_state=0, **options)
        assert seg.model.cleanup == {"smooth": 1, "fill_holes": 6, "min_region": 25}
        predicted = seg.model.predict(image)
        np.testing.assert_array_equal(predicted.labels, seg.labels)
        assert {predicted.params[name] for name in CLEANUP_NAMES} == {25, 6, 1}
        path = npc.save_model(seg, tmp_path / f"{method}.json")
        loaded = npc.load_model(path)
        np.testing.assert_array_equal(loaded.predict(image).labels, seg.labels)
        lazy = loaded.predict(da.from_array(image, chunks=(24, 24, 3)))
        np.testing.assert_array_equal(lazy.labels.compute(), seg.labels)
        np.testing.assert_array_equal(lazy.table["pixels"], seg.table["pixels"])
    plain = npc.segment(image, "kmeans", 5, random_state=0)
    assert "cleanup" not in plain.model.to_dict()  # old files: unchanged, and they load
    np.testing.assert_array_equal(plain.model.predict(image).labels, plain.labels)


def test_a_model_cleans_a_stack_per_plane_in_2d():
    stack = np.stack([data.coins()[::6, ::6], data.coins()[1::6, 1::6]])
    seg = npc.segment(stack, "kmeans", 3, random_state=0, min_region=15)
    np.testing.assert_array_equal(seg.model.predict(stack).labels, seg.labels)
    per_plane = drain(seg.model.predict_steps(stack, per_plane=True))
    for index in range(2):  # each plane as a 2-D image: cleaned in 2-D
        plane = seg.model.predict(stack[index]).labels
        np.testing.assert_array_equal(per_plane.labels[index], plane)
        regions = connected(plane, background=0, connectivity=1)
        assert np.bincount(regions.ravel())[1:].min() >= 15


def test_a_tampered_cleanup_field_is_refused_by_name(tmp_path):
    import json

    seg = npc.segment(data.coins()[::8, ::8], "kmeans", 3, min_region=5)
    path = npc.save_model(seg, tmp_path / "m.json")
    content = json.loads(path.read_text())
    for field, value, message in (
        ("min_region", -2, "cleanup.min_region: expected a whole number"),
        ("smooth", 1.5, "cleanup.smooth: expected a whole number"),
        ("speckle", 3, "cleanup.speckle: unknown field"),
    ):
        bad = json.loads(json.dumps(content))
        bad["cleanup"][field] = value
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=f"^model file: .*: {message}"):
            npc.load_model(path)
    content["cleanup"] = [5]
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"^model file: .*: cleanup: "):
        npc.load_model(path)


# ------------------------------------------------------------------ lazy
@pytest.fixture
def windows(monkeypatch):
    """The sizes of every window the lazy route cleaned."""
    sizes = []
    original = cleanup_module._clean_volumes

    def recording(labels, cut, cleanup):
        sizes.append(labels.shape)
        return original(labels, cut, cleanup)

    monkeypatch.setattr(cleanup_module, "_clean_volumes", recording)
    return sizes


def checker_band(shape):
    """Two flat areas with a checkerboard band between them (four values: k-means with
    k=4 gives one-pixel regions there, in clumps far wider than a chunk)."""
    image = np.full(shape, 40, np.uint8)
    image[..., shape[-1] // 2 :] = 210
    band = slice(shape[-1] // 5, 4 * shape[-1] // 5)
    checker = np.indices(shape).sum(axis=0) % 2 == 0
    image[..., band] = np.where(checker, 0, 255)[..., band]
    return image


@pytest.mark.parametrize(
    "options", [{"min_region": 8, "smooth": 1}, {"fill_holes": 4, "min_region": 3}]
)
def test_lazy_cleanup_is_identical_to_in_memory_in_2d(windows, options):
    """Chunks far smaller than the speckle clumps: windows are widened, and the labels,
    the table and the counts are those of the image in memory."""
    image = checker_band((40, 140))
    memory = npc.segment(image, "kmeans", 4, random_state=0, **options)
    lazy = npc.segment(da.from_array(image, chunks=16), "kmeans", 4, random_state=0, **options)
    np.testing.assert_array_equal(lazy.labels.compute(), memory.labels)
    assert lazy.table.equals(memory.table)
    for name in (*CLEANUP_NAMES, "cleanup_changed_pixels", "cluster_components"):
        assert lazy.params[name] == memory.params[name], name
    first = 16 + 2 * Cleanup(**options).margin + 2
    assert max(max(shape) for shape in windows) > first  # some window was widened
    assert memory.params["cleanup_changed_pixels"] > 1000


def test_lazy_cleanup_is_identical_to_in_memory_in_3d_and_with_a_mask():
    stack = checker_band((6, 24, 70))
    options = {"min_region": 10, "fill_holes": 2, "smooth": 1}
    memory = npc.segment(stack, "kmeans", 4, random_state=0, **options)
    lazy = npc.segment(
        da.from_array(stack, chunks=(3, 12, 12)), "kmeans", 4, random_state=0, **options
    )
    np.testing.assert_array_equal(lazy.labels.compute(), memory.labels)
    assert lazy.table.equals(memory.table)
    assert memory.params["cleanup_changed_pixels"] > 1000
    mask = np.zeros(stack.shape[1:], bool)
    mask[2:22, 4:66] = True
    mask[10:12, :] = False  # two islands
    image = stack[2]
    memory = npc.segment(image, "kmeans", 4, random_state=0, mask=mask, **options)
    lazy = npc.segment(
        da.from_array(image, chunks=10), "kmeans", 4, random_state=0, mask=mask, **options
    )
    np.testing.assert_array_equal(lazy.labels.compute(), memory.labels)
    assert (memory.labels[~mask] == 0).all()
    assert lazy.table.equals(memory.table)


def test_pure_speckle_lazily_widens_to_the_whole_image():
    """No region reaches min_region: the seed is the whole image's largest region, so
    every chunk needs the whole image; still the same labels."""
    rng = np.random.default_rng(3)
    labels = rng.integers(1, 4, (30, 34)).astype(np.int32)
    labels[7, 8:11] = 2  # the largest region (3 pixels or more)
    expected = clean_labels(labels, min_region=1000)
    assert len(np.unique(expected)) == 1

    class Given:  # a labeller that gives these labels
        def array(self, data, scale=None):
            return da.from_array(labels, chunks=8)

    lazy = cleanup_module.CleaningLabeller(Given(), Cleanup(min_region=1000)).array(None)
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_pyramid_levels_get_an_overview_cleaned_at_their_scale():
    image = data.coins()[::2, ::2]
    levels = [da.from_array(image, chunks=32), da.from_array(image[::2, ::2], chunks=32)]
    seg = npc.segment(levels, "kmeans", 3, random_state=0, min_region=40)
    full, coarse = seg.labels_pyramid()
    memory = npc.segment(image, "kmeans", 3, random_state=0, min_region=40)
    np.testing.assert_array_equal(full.compute(), memory.labels)
    assert coarse.shape == image[::2, ::2].shape
    plain = npc.segment(levels, "kmeans", 3, random_state=0).labels_pyramid()[1].compute()

    def small_regions(labels):  # below min_region / 4, the level's share of 40 pixels
        sizes = np.bincount(connected(labels, background=0, connectivity=1).ravel())[1:]
        return int((sizes < 10).sum())

    assert small_regions(coarse.compute()) < small_regions(plain) / 10


# ------------------------------------------------------------------ command line
def test_the_command_line_takes_the_cleanup_options(tmp_path):
    import json

    from skimage import io

    from napari_pixel_clusters.cli import main

    io.imsave(tmp_path / "coins.png", data.coins()[::4, ::4])
    code = main(
        [
            "segment",
            str(tmp_path / "coins.png"),
            "-k",
            "3",
            "--min-region",
            "20",
            "--smooth",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    folder = tmp_path / "out" / "coins"
    params = json.loads((folder / "params.json").read_text())["params"]
    assert (params["min_region"], params["smooth"], params["fill_holes"]) == (20, 1, 0)
    expected = npc.segment(data.coins()[::4, ::4], "kmeans", 3, min_region=20, smooth=1)
    assert params["cleanup_changed_pixels"] == expected.params["cleanup_changed_pixels"]


def test_warm_up_compiles_every_loop():
    from napari_pixel_clusters.core import _cleanup_loops

    cleanup_module.warm_up()
    for loop in ("borders", "fill_pass", "absorb_rounds", "majority_at"):
        assert getattr(_cleanup_loops, loop).signatures, loop


def test_a_sweep_refuses_cleanup_by_name():
    """Its scores are of the fits, before any clean-up: an option would change nothing."""
    image = data.coins()[::8, ::8]
    for name in CLEANUP_NAMES:
        with pytest.raises(ValueError, match=f"^{name}: a sweep scores the fits"):
            npc.sweep(image, "kmeans", [2, 3], **{name: 4})
    assert len(npc.sweep(image, "kmeans", [2, 3], min_region=0).table) == 2  # off: fine
