"""Masks (``segment``/``sweep``/``Model.predict`` with ``mask=``): only the pixels inside
are clustered, fitted, counted and scored; every other pixel gets label 0.

Across the package: the image reading (core/image.py, core/lazy/image.py), every method of
the registry in memory and lazily, Ward's grid restricted to the mask, Canny's thresholds
and scikit-image's own canny mask, pyramids, sweeps and saved models. References:
scikit-learn's KMeans and AgglomerativeClustering fitted on the inside pixels, and
scikit-image's canny with the same mask."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
from skimage import data, feature
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.feature_extraction.image import grid_to_graph

import napari_pixel_clusters as npc
from conftest import same_partition
from napari_pixel_clusters.core.methods import ward
from napari_pixel_clusters.core.registry import drain

MAGENTA = np.array([255, 0, 255], np.uint8)


def options_of(method, k=3):
    """k for the methods that take one; SLIC kept small."""
    extra = {"n_segments": 20} if "n_segments" in method.defaults() else {}
    return ({"n_clusters": k} if method.needs_n_clusters else {}) | extra


def region_mask(shape):
    """A disk and a rectangle that do not touch: two islands."""
    yy, xx = np.indices(shape)
    disk = (yy - shape[0] * 0.3) ** 2 + (xx - shape[1] * 0.3) ** 2 < (shape[0] * 0.22) ** 2
    box = np.zeros(shape, bool)
    box[int(shape[0] * 0.6) : int(shape[0] * 0.9), int(shape[1] * 0.55) : int(shape[1] * 0.95)] = 1
    return disk | box


@pytest.fixture
def rgb():
    return np.ascontiguousarray(data.astronaut()[100:196:2, 150:246:2])  # 48 x 48


def inside_alone(image, mask):
    """The inside pixels as an image of their own (n x 1 x 3), in the same C order."""
    return image[mask][:, None, :]


# ------------------------------------------------------------------ k-means: the fit
def test_kmeans_with_a_mask_is_scikit_learns_kmeans_on_the_inside_pixels(rgb):
    mask = region_mask(rgb.shape[:2])
    inside = rgb[mask] / 255.0  # the features: RGB in 0..1
    init = inside[[0, len(inside) // 3, 2 * len(inside) // 3, -1]]
    reference = KMeans(4, init=init, n_init=1).fit(inside)
    seg = npc.segment(rgb, "kmeans", 4, mask=mask, init=init)
    np.testing.assert_array_equal(seg.labels[mask], reference.labels_ + 1)
    assert np.all(seg.labels[~mask] == 0)
    assert seg.score["n_iter"] == reference.n_iter_
    assert seg.score["inertia"] == pytest.approx(reference.inertia_, rel=1e-9)
    assert seg.params["mask"] == {"pixels_inside": int(mask.sum()), "pixels": mask.size}


def test_kmeans_with_a_mask_equals_kmeans_of_the_inside_pixels_alone_same_seed(rgb):
    mask = region_mask(rgb.shape[:2])
    seg = npc.segment(rgb, "kmeans", 5, mask=mask, random_state=3)
    alone = npc.segment(inside_alone(rgb, mask), "kmeans", 5, rgb=True, random_state=3)
    np.testing.assert_array_equal(seg.labels[mask], alone.labels[:, 0])
    np.testing.assert_array_equal(seg.palette, alone.palette)
    assert seg.score == alone.score


def test_masks_change_nothing_inside_when_the_outside_is_a_constant_far_color(rgb):
    mask = region_mask(rgb.shape[:2])
    image = np.where(mask[..., None], rgb, MAGENTA)  # a color no photo pixel is near
    without = npc.segment(image, "kmeans", 4, random_state=0).labels
    outside_label = np.unique(without[~mask])
    assert len(outside_label) == 1 and outside_label[0] not in without[mask]  # its own cluster
    seg = npc.segment(image, "kmeans", 4, mask=mask, random_state=0)
    alone = npc.segment(inside_alone(rgb, mask), "kmeans", 4, rgb=True, random_state=0)
    np.testing.assert_array_equal(seg.labels[mask], alone.labels[:, 0])
    assert np.all(seg.labels[~mask] == 0) and seg.n_clusters == 4
    assert not np.any(np.all(seg.palette == MAGENTA, axis=1))  # no cluster of the outside
    assert seg.table["pixels"].sum() == mask.sum()


# ------------------------------------------------------------------ every method
@pytest.mark.parametrize("name", sorted(npc.METHODS))
def test_every_method_labels_only_the_inside_and_counts_it(rgb, name):
    method = npc.METHODS[name]
    mask = region_mask(rgb.shape[:2])
    seg = npc.segment(rgb, name, mask=mask, **options_of(method))
    assert np.all(seg.labels[~mask] == 0)
    counts = seg.table["pixels"].sum() if len(seg.table) else 0
    assert counts == np.count_nonzero(seg.labels)
    if method.output == "clusters":  # every pixel inside has data: all labelled
        assert counts == mask.sum() and np.all(seg.labels[mask] > 0)
    assert seg.params["mask"] == {"pixels_inside": int(mask.sum()), "pixels": mask.size}


@pytest.mark.parametrize("name", sorted(npc.METHODS))
def test_an_integer_mask_is_its_non_zero_pixels(rgb, name):
    method = npc.METHODS[name]
    mask = region_mask(rgb.shape[:2])
    labels_image = np.where(mask, np.arange(mask.size).reshape(mask.shape) % 7 + 1, 0)
    as_bool = npc.segment(rgb, name, mask=mask, **options_of(method))
    as_labels = npc.segment(rgb, name, mask=labels_image.astype(np.uint16), **options_of(method))
    np.testing.assert_array_equal(as_bool.labels, as_labels.labels)


@pytest.mark.parametrize("name", sorted(n for n, m in npc.METHODS.items() if m.lazy_run))
@pytest.mark.parametrize("mask_kind", ["dask", "numpy"])
def test_lazy_with_a_mask_equals_in_memory_with_the_mask(rgb, name, mask_kind):
    method = npc.METHODS[name]
    mask = region_mask(rgb.shape[:2])
    given = da.from_array(mask, chunks=(10, 30)) if mask_kind == "dask" else mask
    lazy = npc.segment(
        da.from_array(rgb, chunks=(16, 20, 3)), name, mask=given, **options_of(method)
    )
    in_memory = npc.segment(rgb, name, mask=mask, **options_of(method))
    np.testing.assert_array_equal(lazy.labels.compute(), in_memory.labels)
    np.testing.assert_array_equal(lazy.table["pixels"], in_memory.table["pixels"])
    assert lazy.params["mask"] == in_memory.params["mask"]


def test_a_stack_with_a_mask_per_plane_and_a_plane_without_any(rgb):
    stack = np.stack([rgb[..., 0], rgb[..., 1], rgb[..., 2]])
    mask = np.stack(
        [region_mask(rgb.shape[:2]), np.zeros(rgb.shape[:2], bool), ~region_mask(rgb.shape[:2])]
    )
    for name, method in npc.METHODS.items():
        seg = npc.segment(stack, name, mask=mask, **options_of(method))
        assert np.all(seg.labels[~mask] == 0), name
        if method.output == "clusters":
            assert np.all(seg.labels[mask] > 0), name


# ------------------------------------------------------------------ Ward
def test_ward_with_a_two_island_mask_is_scikit_learns_with_the_grid_restricted_to_it():
    rng = np.random.default_rng(0)
    image = rng.random((24, 24))
    mask = np.zeros(image.shape, bool)
    mask[2:10, 2:12] = True  # island A
    mask[14:22, 10:22] = True  # island B, apart from A
    image[14:, :] += 10.0  # B's values far from A's: no cluster spans both islands
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn completes the split graph, and says so
        reference = AgglomerativeClustering(
            6, linkage="ward", connectivity=grid_to_graph(24, 24, mask=mask)
        ).fit(image[mask][:, None])
    expected = np.zeros(image.shape, int)
    expected[mask] = reference.labels_ + 1
    seg = npc.segment(image, "ward", 6, mask=mask, downscale=1.0)
    assert same_partition(seg.labels, expected)
    assert seg.params["separate_parts"] == 2


def test_ward_islands_of_like_values_join_across_the_gap_as_the_bridged_graph_says():
    image = np.random.default_rng(1).random((20, 20))
    mask = np.zeros(image.shape, bool)
    mask[1:9, 1:19] = mask[12:19, 3:15] = True
    graph, _, n_bridges = ward.pixel_graph(mask)
    reference = AgglomerativeClustering(5, linkage="ward", connectivity=graph).fit(
        image[mask][:, None]
    )
    expected = np.zeros(image.shape, int)
    expected[mask] = reference.labels_ + 1
    seg = npc.segment(image, "ward", 5, mask=mask, downscale=1.0)
    assert same_partition(seg.labels, expected)
    assert (seg.params["separate_parts"], seg.params["bridges_across_gaps"]) == (2, n_bridges)


# ------------------------------------------------------------------ Canny
@pytest.fixture
def coins():
    return data.coins()[40:160, 40:200]


def test_canny_with_a_mask_is_scikit_images_canny_with_that_mask(coins):
    mask = region_mask(coins.shape)
    seg = npc.segment(coins, "canny", mask=mask, sigma=1.5, low_threshold=20, high_threshold=50)
    expected = feature.canny(coins, sigma=1.5, low_threshold=20, high_threshold=50, mask=mask)
    np.testing.assert_array_equal(seg.labels, expected.astype(int))
    assert expected.any() and not np.any(seg.labels[~mask])


def test_canny_automatic_thresholds_are_relative_to_the_largest_value_inside(coins):
    mask = region_mask(coins.shape)
    image = np.where(mask, coins // 2, 255).astype(np.uint8)  # the outside far brighter
    seg = npc.segment(image, "canny", mask=mask, sigma=1.0)
    largest = float(image[mask].max())
    assert seg.params["low_threshold_used"] == pytest.approx(0.1 * largest)
    assert seg.params["high_threshold_used"] == pytest.approx(0.2 * largest)
    expected = feature.canny(
        image, sigma=1.0, low_threshold=0.1 * largest, high_threshold=0.2 * largest, mask=mask
    )
    np.testing.assert_array_equal(seg.labels, expected.astype(int))
    # and the outside does not matter at all: any other outside gives the same edges
    other = np.where(mask, image, 0).astype(np.uint8)
    np.testing.assert_array_equal(
        npc.segment(other, "canny", mask=mask, sigma=1.0).labels, seg.labels
    )


def test_lazy_canny_with_a_mask_is_identical_across_chunks(coins):
    mask = region_mask(coins.shape)
    lazy = npc.segment(da.from_array(coins, chunks=(50, 45)), "canny", mask=mask, sigma=1.0)
    np.testing.assert_array_equal(
        lazy.labels.compute(), npc.segment(coins, "canny", mask=mask, sigma=1.0).labels
    )


# ------------------------------------------------------------------ pyramids, sweeps, models
def test_a_pyramid_takes_a_full_size_mask_sampled_at_each_level(rgb):
    mask = region_mask(rgb.shape[:2])
    levels = [
        da.from_array(rgb, chunks=(16, 16, 3)),
        da.from_array(rgb[::2, ::2], chunks=(8, 8, 3)),
    ]
    seg = npc.segment(levels, "kmeans", 3, mask=mask, random_state=0)
    full, half = seg.labels_pyramid()
    expected = npc.segment(rgb, "kmeans", 3, mask=mask, random_state=0)
    np.testing.assert_array_equal(full.compute(), expected.labels)
    half_inside = mask[1::2, 1::2]  # each level pixel takes the full-size pixel at its center
    assert np.all(half.compute()[~half_inside] == 0) and np.all(half.compute()[half_inside] > 0)
    with pytest.raises(ValueError, match=r"^mask: has shape \(24, 24\)"):
        npc.segment(levels, "kmeans", 3, mask=mask[::2, ::2])


def test_a_sweep_with_a_mask_scores_the_inside_pixels_only(rgb):
    mask = region_mask(rgb.shape[:2])
    image = np.where(mask[..., None], rgb, MAGENTA)
    swept = npc.sweep(image, "kmeans", range(2, 6), mask=mask)
    alone = npc.sweep(inside_alone(rgb, mask), "kmeans", range(2, 6), rgb=True)
    cols = ["k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin"]
    np.testing.assert_allclose(swept.table[cols].to_numpy(), alone.table[cols].to_numpy())
    assert swept.params["mask"] == {"pixels_inside": int(mask.sum()), "pixels": mask.size}
    lazy = npc.sweep(da.from_array(image, chunks=(16, 16, 3)), "kmeans", range(2, 6), mask=mask)
    np.testing.assert_allclose(lazy.table["inertia"], swept.table["inertia"])


def test_a_model_labels_only_inside_a_mask(rgb):
    mask = region_mask(rgb.shape[:2])
    model = npc.segment(rgb, "kmeans", 4, random_state=0).model
    whole = model.predict(rgb)
    masked = model.predict(rgb, mask=mask)
    np.testing.assert_array_equal(masked.labels, np.where(mask, whole.labels, 0))
    assert masked.table["pixels"].sum() == mask.sum()
    assert masked.params["mask"]["pixels_inside"] == mask.sum()
    lazy = model.predict(da.from_array(rgb, chunks=(20, 20, 3)), mask=mask)
    np.testing.assert_array_equal(lazy.labels.compute(), masked.labels)
    stack = np.stack([rgb, rgb])
    planes = np.stack([mask, np.zeros_like(mask)])  # a plane without any pixel inside
    per_plane = drain(model.predict_steps(stack, per_plane=True, mask=planes))
    np.testing.assert_array_equal(per_plane.labels, np.stack([masked.labels, 0 * masked.labels]))


# ------------------------------------------------------------------ bad masks
@pytest.mark.parametrize(
    "mask, message",
    [
        (
            np.ones((48, 48)),
            r"^mask: expected an array of booleans or integers .*\(48, 48\), got "
            r"float64 values of shape \(48, 48\) \(for a float mask",
        ),
        (
            np.ones((48, 47), bool),
            r"^mask: has shape \(48, 47\), but the image's spatial shape"
            r" .* is \(48, 48\)",
        ),
        (np.ones((48, 48, 3), bool), r"^mask: has shape \(48, 48, 3\), .* is \(48, 48\)"),
        (np.zeros((48, 48), np.uint8), r"^mask: no pixel is inside .* \(48, 48\)"),
        ([[1, 2], [3]], r"^mask: expected an array .* got no array"),
        ("inside", r"^mask: expected an array .* got <U6 values of shape \(\)"),
    ],
)
@pytest.mark.parametrize("lazy", [False, True])
def test_bad_masks_are_refused_by_name_with_the_shapes(rgb, mask, message, lazy):
    image = da.from_array(rgb, chunks=(16, 16, 3)) if lazy else rgb
    with pytest.raises(ValueError, match=message):
        npc.segment(image, "kmeans", 3, mask=mask)
    with pytest.raises(ValueError, match=message):
        npc.sweep(image, "kmeans", range(2, 4), mask=mask)


def test_a_mask_over_pixels_without_data_says_so():
    image = np.random.default_rng(0).random((20, 20))
    image[:10] = np.nan
    mask = np.zeros(image.shape, bool)
    mask[:5] = True
    with pytest.raises(
        ValueError, match=r"^mask: none of the 100 pixels inside the mask has data"
    ):
        npc.segment(image, "kmeans", 2, mask=mask)


def test_a_dask_mask_of_an_image_in_memory_is_read_whole(rgb):
    mask = region_mask(rgb.shape[:2])
    seg = npc.segment(rgb, "kmeans", 3, mask=da.from_array(mask, chunks=7), random_state=0)
    np.testing.assert_array_equal(
        seg.labels, npc.segment(rgb, "kmeans", 3, mask=mask, random_state=0).labels
    )


def test_the_mask_and_the_image_are_left_unchanged(rgb):
    mask = region_mask(rgb.shape[:2]).astype(np.int32) * 5
    before_mask, before_image = mask.copy(), rgb.copy()
    npc.segment(rgb, "kmeans", 3, mask=mask)
    np.testing.assert_array_equal(mask, before_mask)
    np.testing.assert_array_equal(rgb, before_image)


def test_without_a_mask_params_have_no_mask_entry(rgb):
    assert "mask" not in npc.segment(rgb, "kmeans", 3).params
