"""Polygons around the connected regions of each cluster (for a napari Shapes layer)."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from .registry import Param


class Contour(NamedTuple):
    label: int
    area: int
    vertices: np.ndarray  # (n, ndim) pixel coordinates, plane index first for stacks


MIN_AREA = Param("min_area", int, 20, "Regions smaller than this many pixels are left out.",
                 minimum=0)


def check_min_area(min_area) -> int:
    """``min_area`` as a plain int of at least 0, or ValueError naming it."""
    return MIN_AREA.check(min_area)


def region_contours(labels: np.ndarray, min_area: int) -> list[Contour]:
    """Outer outline of every connected region (same label) of at least ``min_area`` px.

    ``min_area`` must be a whole number of at least 0 (ValueError otherwise).
    """
    min_area = check_min_area(min_area)
    contours = []
    for index in itertools.product(*map(range, labels.shape[:-2])):
        for label, area, outline in _plane_contours(labels[index], min_area):
            prefix = np.broadcast_to(np.asarray(index, float), (len(outline), len(index)))
            contours.append(Contour(label, area, np.hstack([prefix, outline])))
    return contours


def _plane_contours(plane: np.ndarray, min_area: int):
    from scipy import ndimage
    from skimage import measure

    regions = measure.label(plane, background=0, connectivity=1)
    for region in measure.regionprops(regions):
        if region.area < min_area:
            continue
        top, left = region.bbox[0], region.bbox[1]
        filled = ndimage.binary_fill_holes(region.image)  # the outer boundary only
        outline = measure.find_contours(np.pad(filled, 1).astype(np.uint8), 0.5)[0]
        outline = outline + (top - 1, left - 1)
        outline = measure.approximate_polygon(outline, tolerance=0.5)
        label = int(plane[tuple(region.coords[0])])
        yield label, int(region.area), outline[:-1] if len(outline) > 3 else outline
