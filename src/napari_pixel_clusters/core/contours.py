"""Polygons around the connected regions of each cluster (for a napari Shapes layer).

Fast path: the regions of a plane are labelled once (all clusters at a time), their areas
counted with one ``bincount``; only regions of at least ``min_area`` pixels are traced,
each in its own bounding box (padded by one pixel), and all outlines are simplified
together by a Douglas-Peucker pass vectorised over every polygon at once (the vertices
``skimage.measure.approximate_polygon``, which loops in Python, keeps: see
:func:`simplify_polygons`).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from .registry import Param


class Contour(NamedTuple):
    label: int
    area: int
    vertices: np.ndarray  # (n, ndim) pixel coordinates, plane index first for stacks


MIN_AREA = Param(
    "min_area", int, 20, "Regions smaller than this many pixels are left out.", minimum=0
)
#: Outlines keep every vertex farther than this (in pixels) from the simplified polygon.
SIMPLIFY_TOLERANCE = 0.5


def check_min_area(min_area: object) -> int:
    """``min_area`` as a plain int of at least 0, or ValueError naming it."""
    return MIN_AREA.check(min_area)


def region_contours(labels: np.ndarray, min_area: int) -> list[Contour]:
    """Outer outline of every connected region (same label) of at least ``min_area`` px.

    Regions are 4-connected; holes inside a region are not traced (its outer boundary
    only). Polygons are simplified to within ``SIMPLIFY_TOLERANCE`` px and open (the
    first vertex is not repeated). ``min_area`` must be a whole number of at least 0
    (ValueError otherwise).
    """
    min_area = check_min_area(min_area)
    contours = []
    for index in itertools.product(*map(range, labels.shape[:-2])):
        for label, area, outline in plane_contours(labels[index], min_area):
            prefix = np.broadcast_to(np.asarray(index, float), (len(outline), len(index)))
            contours.append(Contour(label, area, np.hstack([prefix, outline])))
    return contours


def plane_contours(
    plane: np.ndarray, min_area: int, tolerance: float = SIMPLIFY_TOLERANCE
) -> list[tuple[int, int, np.ndarray]]:
    """(label, area, (n, 2) vertices) of each region of a 2-D label plane, in the order of
    the regions' first pixels (row by row)."""
    from scipy import ndimage
    from skimage import measure

    regions = measure.label(plane, background=0, connectivity=1)
    areas = np.bincount(regions.ravel())
    kept = np.flatnonzero(areas >= max(min_area, 1))
    kept = kept[kept > 0]
    boxes = ndimage.find_objects(regions)
    found = []
    for region in kept:
        box = boxes[region - 1]
        inside = regions[box] == region
        outline = _outer_boundary(inside) + (box[0].start - 1, box[1].start - 1)
        first = tuple(np.argwhere(inside)[0] + (box[0].start, box[1].start))
        found.append((int(plane[first]), int(areas[region]), outline))
    simplified = simplify_polygons([outline for _, _, outline in found], tolerance)
    return [(label, area, _open(outline)) for (label, area, _), outline in zip(found, simplified)]


def _outer_boundary(inside: np.ndarray) -> np.ndarray:
    """The closed outer outline (first vertex repeated last) of one region in its box,
    in box coordinates plus one (the box is padded by one pixel)."""
    from scipy import ndimage
    from skimage import measure

    padded = np.pad(inside, 1)
    # holes filled: everything but the background 4-connected to the padding (one
    # labelling pass; binary_fill_holes dilates again and again)
    background, _ = ndimage.label(~padded)
    filled = background != background[0, 0]
    outlines = measure.find_contours(filled.astype(np.uint8), 0.5)
    return max(outlines, key=len)


def _open(outline: np.ndarray) -> np.ndarray:
    """A closed polygon without its repeated last vertex (tiny ones are kept whole)."""
    return outline[:-1] if len(outline) > 3 else outline


def simplify_polygons(chains: list[np.ndarray], tolerance: float) -> list[np.ndarray]:
    """Douglas-Peucker simplification of many (n, 2) chains at once.

    Every segment of every chain that needs splitting is split in one vectorised step,
    with the distances and the first-farthest rule of
    ``skimage.measure.approximate_polygon(chain, tolerance)``, on the chain without the
    points strictly inside straight runs. Those are never the first farthest point in
    exact arithmetic (the distance to a segment is convex along a run); where rounding
    makes skimage pick one, the end of its run is kept instead, as far from the result.
    So: skimage's vertices for chains without straight runs, and always every point of a
    chain within ``tolerance`` of its simplified chain.
    """
    if tolerance <= 0 or not chains:
        return list(chains)
    coords = np.concatenate(chains).astype(float)
    lengths = np.array([len(chain) for chain in chains])
    # pixel outlines are mostly straight runs: their inner points go first
    kept_points = ~_inside_straight_runs(coords, lengths)
    coords = coords[kept_points]
    owner = np.repeat(np.arange(len(chains)), lengths)[kept_points]
    lengths = np.bincount(owner, minlength=len(chains))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    keep = np.zeros(len(coords), bool)
    keep[starts] = keep[ends - 1] = True
    first, last = starts, ends - 1
    while len(first):
        inner = last - first - 1
        split = inner > 0
        first, last, inner = first[split], last[split], inner[split]
        if not len(first):
            break
        farthest, distance = _farthest_points(coords, first, last, inner)
        split = distance > tolerance
        keep[farthest[split]] = True
        first, last = (
            np.concatenate([first[split], farthest[split]]),
            np.concatenate([farthest[split], last[split]]),
        )
    return [coords[start:end][keep[start:end]] for start, end in zip(starts, ends)]


def _inside_straight_runs(coords: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """True for each point that lies exactly on the straight line between its neighbours
    in its chain and between them (never the first or last point of a chain)."""
    ends = np.cumsum(lengths)
    middle = np.ones(len(coords), bool)
    middle[ends - lengths] = middle[ends - 1] = False
    index = np.flatnonzero(middle)
    before, after = coords[index] - coords[index - 1], coords[index + 1] - coords[index]
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    inside = np.zeros(len(coords), bool)
    inside[index] = (cross == 0) & ((before * after).sum(axis=1) > 0)
    return inside


def _farthest_points(
    coords: np.ndarray, first: np.ndarray, last: np.ndarray, inner: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each segment (first, last): index of its first farthest inner point and that
    distance (perpendicular when the point projects inside the segment, else the distance
    to the nearer end), computed as ``approximate_polygon`` does."""
    segment = np.repeat(np.arange(len(first)), inner)
    offsets = np.concatenate([[0], np.cumsum(inner)[:-1]])
    point = first[segment] + 1 + np.arange(len(segment)) - offsets[segment]
    r0, c0 = coords[first, 0][segment], coords[first, 1][segment]
    r1, c1 = coords[last, 0][segment], coords[last, 1][segment]
    dr, dc = r1 - r0, c1 - c0
    angle = -np.arctan2(dr, dc)
    offset = c0 * np.sin(angle) + r0 * np.cos(angle)
    r, c = coords[point, 0], coords[point, 1]
    dr0, dc0, dr1, dc1 = r - r0, c - c0, r - r1, c - c1
    perpendicular = (dr0 * dr + dc0 * dc > 0) & (-dr1 * dr - dc1 * dc > 0)
    distance = np.where(
        perpendicular,
        np.abs(r * np.cos(angle) + c * np.sin(angle) - offset),
        np.minimum(np.sqrt(dc0**2 + dr0**2), np.sqrt(dc1**2 + dr1**2)),
    )
    largest = np.maximum.reduceat(distance, offsets)
    at_largest = np.flatnonzero(distance == largest[segment])
    _, first_at = np.unique(segment[at_largest], return_index=True)
    return point[at_largest[first_at]], largest
