"""Outline polygons: the fast tracer finds the same regions and areas as tracing each
region on its own (the former implementation), polygons within the simplification
tolerance of the former ones and of the exact outlines skimage traces in a notebook;
``Segmentation.contours`` outlines each region (the plane index first in a stack)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage
from skimage import data, draw, measure

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.contours import (
    SIMPLIFY_TOLERANCE,
    region_contours,
    simplify_polygons,
)


def former_contours(labels, min_area):
    """The former implementation: regionprops, each region filled and traced in its box,
    simplified by skimage's approximate_polygon."""
    found = []
    for index in itertools.product(*map(range, labels.shape[:-2])):
        plane = labels[index]
        for region in measure.regionprops(measure.label(plane, background=0, connectivity=1)):
            if region.area < min_area:
                continue
            filled = ndimage.binary_fill_holes(region.image)
            outline = measure.find_contours(np.pad(filled, 1).astype(np.uint8), 0.5)[0]
            outline = outline + (region.bbox[0] - 1, region.bbox[1] - 1)
            outline = measure.approximate_polygon(outline, tolerance=0.5)
            outline = outline[:-1] if len(outline) > 3 else outline
            prefix = np.broadcast_to(np.asarray(index, float), (len(outline), len(index)))
            found.append(
                (
                    int(plane[tuple(region.coords[0])]),
                    int(region.area),
                    np.hstack([prefix, outline]),
                )
            )
    return found


def blobs_labels(shape=(96, 96), k=5, seed=0):
    """A label image with regions of many sizes, holes and thin parts."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.random(shape), 3)
    edges = np.quantile(noise, np.linspace(0, 1, k + 1)[1:-1])
    return (np.digitize(noise, edges) + 1).astype(np.int32)


def assert_within_tolerance(vertices, former):
    """Each polygon's vertices within the tolerance of the other polygon's edges."""
    closed = np.vstack([vertices, vertices[:1]])
    former_closed = np.vstack([former, former[:1]])
    assert distance_to_polyline(former, closed).max() <= SIMPLIFY_TOLERANCE + 1e-9
    assert distance_to_polyline(vertices, former_closed).max() <= SIMPLIFY_TOLERANCE + 1e-9


@pytest.mark.parametrize("min_area", [0, 1, 20, 200])
def test_same_regions_and_areas_as_the_former_tracer_and_vertices_within_tolerance(min_area):
    labels = blobs_labels()
    labels[40:44, 40:44] = 0  # pixels without data are no region
    fast = region_contours(labels, min_area)
    former = former_contours(labels, min_area)
    assert [(c.label, c.area) for c in fast] == [(label, area) for label, area, _ in former]
    for contour, (_, _, vertices) in zip(fast, former):
        assert_within_tolerance(contour.vertices, vertices)
    count = sum(len(c.vertices) for c in fast)
    assert count <= 1.05 * sum(len(vertices) for _, _, vertices in former)  # as simple


def test_a_stack_is_traced_plane_by_plane_with_the_plane_index_first():
    stack = np.stack([blobs_labels(seed=1), blobs_labels(seed=2)])
    fast = region_contours(stack, 10)
    former = former_contours(stack, 10)
    assert len(fast) == len(former) > 10
    for contour, (label, area, vertices) in zip(fast, former):
        assert (contour.label, contour.area) == (label, area)
        assert_within_tolerance(contour.vertices[:, 1:], vertices[:, 1:])
        np.testing.assert_array_equal(contour.vertices[:, 0], vertices[0, 0])
    assert {c.vertices[0, 0] for c in fast} == {0.0, 1.0}


def test_regions_and_areas_match_connected_components_and_min_area_is_inclusive():
    labels = blobs_labels(k=4, seed=3)
    components = measure.label(labels, background=0, connectivity=1)
    areas = np.bincount(components.ravel())[1:]
    threshold = int(np.sort(areas)[len(areas) // 2])  # the median region's area
    found = region_contours(labels, threshold)
    assert sorted(c.area for c in found) == sorted(a for a in areas if a >= threshold)
    assert any(c.area == threshold for c in found)  # a region of exactly min_area stays
    assert len(region_contours(labels, 0)) == len(areas)  # 0: every region


def test_vertices_lie_on_the_outlines_skimage_traces_on_the_whole_image():
    """As in a notebook: find_contours of each cluster's mask on the whole image. Every
    simplified vertex is a point of one of that cluster's exact outlines."""
    labels = npc.segment(data.astronaut()[::4, ::4], "kmeans", 4, random_state=0).labels
    found = region_contours(labels, 30)
    assert len(found) > 5
    for label in np.unique([c.label for c in found]):
        mask = np.pad(labels == label, 1).astype(float)
        exact = np.concatenate(measure.find_contours(mask, 0.5)) - 1
        for contour in (c for c in found if c.label == label):
            gaps = np.linalg.norm(contour.vertices[:, None] - exact[None], axis=-1)
            assert gaps.min(axis=1).max() < 1e-9


def distance_to_polyline(points, polyline):
    """Distance of each point to the nearest segment of ``polyline``."""
    start, end = polyline[:-1], polyline[1:]
    direction = end - start
    length2 = np.maximum((direction**2).sum(axis=1), 1e-12)
    t = np.clip(((points[:, None] - start[None]) * direction[None]).sum(-1) / length2, 0, 1)
    nearest = start[None] + t[..., None] * direction[None]
    return np.linalg.norm(points[:, None] - nearest, axis=-1).min(axis=1)


def test_the_outer_outline_only_and_within_the_tolerance_of_the_exact_one():
    blob = np.zeros((40, 40), np.int32)
    blob[5:30, 5:30] = 1
    blob[12:18, 12:18] = 0  # a hole: not traced
    blob[20:22, 30:38] = 1  # a thin arm
    blob[0:3, 36:40] = 2  # another cluster
    (contour, corner) = sorted(region_contours(blob, 1), key=lambda c: c.label)
    assert (contour.label, contour.area) == (1, int((blob == 1).sum()))
    assert (corner.label, corner.area) == (2, 12)
    exact = measure.find_contours(
        np.pad(ndimage.binary_fill_holes(blob == 1), 1).astype(float), 0.5
    )
    assert len(exact) == 1
    closed = np.vstack([contour.vertices, contour.vertices[:1]])
    assert distance_to_polyline(exact[0] - 1, closed).max() <= SIMPLIFY_TOLERANCE + 1e-9
    assert len(contour.vertices) < len(exact[0]) / 3  # straight runs became single edges


def test_simplify_polygons_gives_approximate_polygon_s_vertices_for_every_chain():
    rng = np.random.default_rng(5)
    chains = [np.cumsum(rng.normal(size=(n, 2)), axis=0) for n in (2, 3, 5, 40, 300)]
    chains.append(np.vstack([chains[-1], chains[-1][:1]]))  # closed
    for tolerance in (0.3, 0.5, 2.0):
        fast = simplify_polygons(chains, tolerance)
        for chain, simplified in zip(chains, fast):
            np.testing.assert_array_equal(
                simplified, measure.approximate_polygon(chain, tolerance)
            )
    assert simplify_polygons([], 0.5) == []


def test_straight_runs_on_a_pixel_grid_keep_their_ends():
    square = np.array(
        [
            [0, 0],
            [0, 1],
            [0, 2],
            [0, 3],
            [1, 3],
            [2, 3],
            [3, 3],
            [3, 2],
            [3, 1],
            [3, 0],
            [2, 0],
            [1, 0],
            [0, 0],
        ],
        float,
    )
    (simplified,) = simplify_polygons([square], 0.5)
    np.testing.assert_array_equal(simplified, [[0, 0], [0, 3], [3, 3], [3, 0], [0, 0]])
    staircase = np.array([[0, 0], [0, 0.5], [0.5, 1], [1, 1], [1, 1.5], [1.5, 2]])
    (simplified,) = simplify_polygons([staircase], 0.5)
    np.testing.assert_array_equal(simplified, measure.approximate_polygon(staircase, 0.5))


def test_bad_min_area_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"^min_area"):
        region_contours(blobs_labels(), -1)


def test_contours_outline_each_region():
    labels = np.zeros((60, 80), np.int32)
    labels[draw.disk((20, 20), 10)] = 1
    labels[draw.rectangle((35, 40), (54, 69))] = 2
    labels[50:52, 5:7] = 1  # 4 pixels: below min_area
    seg = npc.segment(labels.astype(np.uint8), "kmeans", 3, random_state=0)
    contours = seg.contours(min_area=10)
    assert len(contours) == 3  # background, disk, rectangle
    disk = next(c for c in contours if c.area < 400)
    rows, cols = disk.vertices[:, 0], disk.vertices[:, 1]
    assert rows.min() == pytest.approx(10, abs=1) and rows.max() == pytest.approx(30, abs=1)
    assert cols.min() == pytest.approx(10, abs=1) and cols.max() == pytest.approx(30, abs=1)
    assert seg.labels[20, 20] == disk.label
    assert len(seg.contours(min_area=0)) == 4  # now with the small square


def test_contours_of_a_stack_carry_the_plane_index():
    stack = np.zeros((2, 30, 30), np.uint8)
    stack[1, 5:15, 5:15] = 9
    contours = npc.segment(stack, "kmeans", 2, random_state=0).contours(min_area=5)
    square = next(c for c in contours if c.area == 100)
    assert np.all(square.vertices[:, 0] == 1)
    assert square.vertices.shape[1] == 3


def test_outline_of_a_region_with_holes_is_its_outer_boundary():
    from napari_pixel_clusters.core.contours import region_contours

    labels = np.ones((14, 14), np.int32)
    labels[2, 2:12] = 2
    for column in range(2, 12, 2):
        labels[2:12, column] = 2
    outer = next(c for c in region_contours(labels, 1) if c.label == 1)
    assert outer.vertices[:, 0].min() <= 0 and outer.vertices[:, 0].max() >= 13
    assert outer.vertices[:, 1].min() <= 0 and outer.vertices[:, 1].max() >= 13
