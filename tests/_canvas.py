"""What the canvas shows at given pixels of a 2-D layer: screenshots read at pixel centers."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def screen_positions(viewer, mask: np.ndarray, screenshot: np.ndarray):
    """Screen (row, column) of the center of every pixel of ``mask`` (2-D data, no scale)."""
    rows, cols = np.nonzero(mask)
    height, width = screenshot.shape[:2]
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    cy, cx = camera.center[-2:]
    zoom = camera.zoom
    r = np.rint((rows - cy) * zoom + height / 2).astype(int)
    c = np.rint((cols - cx) * zoom + width / 2).astype(int)
    inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
    return r[inside], c[inside], rows[inside], cols[inside]


def interior(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """Pixels of ``mask`` at least ``margin`` pixels from its border (and the outlines
    drawn along it)."""
    return ndimage.binary_erosion(mask, iterations=margin)


def shown(viewer, mask: np.ndarray) -> np.ndarray:
    """(n, 3) RGB the canvas shows at the pixels of ``mask`` (0..255, float; NaN where a
    pixel is out of the canvas), in the order of ``np.nonzero(mask)``."""
    shot = viewer.screenshot(canvas_only=True, flash=False)
    r, c, rows, cols = screen_positions(viewer, mask, shot)
    colors = np.full((*mask.shape, 3), np.nan)
    colors[rows, cols] = shot[r, c, :3]
    return colors[mask]


def source_colors(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, 3) RGB of an RGB uint8 ``image`` at the pixels of ``mask``, in the same order."""
    return image[mask].astype(float)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Median over pixels of the largest channel difference (outline strokes ignored;
    pixels out of the canvas skipped)."""
    largest = np.abs(a - b).max(axis=1)
    assert np.isfinite(largest).sum() > 20, "too few of these pixels are on the canvas"
    return float(np.nanmedian(largest))
