"""What lazy routes return: labels and quantized images as dask arrays, an exact table."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..image import ImageData, usable_mask
from ..result import Segmentation, _cast_like, display_colors
from .image import level_scale, over_chunks, read_level


@dataclass
class Tally:
    """Per-cluster pixel counts and mean values, and each channel's lowest/highest value."""

    counts: np.ndarray  # (k,)
    palette: np.ndarray  # (k, C)
    low: np.ndarray  # (C,)
    high: np.ndarray  # (C,)


def tally_steps(data: ImageData, labels, n_clusters: int):
    """Count every label chunk by chunk (yields ``("counting", fraction)``) -> Tally.

    ``labels`` is a lazy labels array of ``data`` (same chunks), e.g. ``labeller.array``.
    """
    totals = empty_totals(n_clusters + 1, data.n_channels)
    yield from over_chunks("counting", [data.pixels, labels], _chunk_tally,
                           lambda _, part: add_totals(totals, part), data.kind,
                           n_clusters + 1)
    return finish_tally(*totals)


def _chunk_tally(pixels, labels, position, origin, kind, size):
    block = ImageData(pixels, kind, usable_mask(pixels, kind), None)
    return chunk_totals(block, labels.ravel(), size)


def empty_totals(size: int, n_channels: int) -> list:
    """[counts, sums, low, high] before anything is counted."""
    return [np.zeros(size), np.zeros((size, n_channels)), np.full(n_channels, np.inf),
            np.full(n_channels, -np.inf)]


def chunk_totals(block: ImageData, labels, size: int) -> list:
    """[counts, sums, low, high] of one chunk: ``labels`` flat, one per pixel, below size."""
    totals = empty_totals(size, block.n_channels)
    values = block.pixels.reshape(-1, block.n_channels)
    usable = block.mask.ravel()
    if not usable.any():
        return totals
    counts, sums, low, high = totals
    counts += np.bincount(labels, minlength=size)[:size]
    for c in range(block.n_channels):
        column = np.where(usable, values[:, c], 0).astype(np.float64)
        sums[:, c] += np.bincount(labels, weights=column, minlength=size)[:size]
        low[c] = values[usable, c].min()
        high[c] = values[usable, c].max()
    return totals


def add_totals(totals: list, part: list) -> None:
    totals[0] += part[0]
    totals[1] += part[1]
    np.minimum(totals[2], part[2], out=totals[2])
    np.maximum(totals[3], part[3], out=totals[3])


def finish_tally(counts, sums, low, high) -> Tally:
    """Totals with label 0 (no cluster) -> Tally of labels 1..k."""
    return Tally(counts=counts[1:].astype(np.int64),
                 palette=sums[1:] / np.maximum(counts[1:], 1)[:, None], low=low, high=high)


def drop_empty(tally: Tally, n_found: int) -> Tally:
    """The first ``n_found`` clusters, and any later one that has pixels (trailing empty
    clusters dropped)."""
    keep = max(n_found, int(np.flatnonzero(tally.counts).max(initial=-1)) + 1)
    return Tally(tally.counts[:keep], tally.palette[:keep], tally.low, tally.high)


class LazySegmentation(Segmentation):
    """A :class:`Segmentation` whose ``labels`` and ``quantized()`` are dask arrays.

    ``labeller.array(data, scale)`` labels a lazy image (this one, or a pyramid level
    ``scale`` times smaller); the table comes from an exact count over every chunk.
    """

    def __init__(self, *, tally: Tally, labeller, **fields):
        super().__init__(known_palette=tally.palette, **fields)
        self._tally = tally
        self._labeller = labeller
        self.levels = []  # the pyramid it was made from, when given one

    def labels_pyramid(self) -> list:
        """Labels of every level of the pyramid given to ``segment`` (full size first)."""
        return [self.labels, *(self.labels_of(level) for level in self.levels[1:])]

    def quantized_pyramid(self) -> list:
        """:meth:`quantized` of every level of the pyramid given to ``segment``."""
        return [self.quantized(), *(self.quantized_of(level) for level in self.levels[1:])]

    def labels_of(self, level):
        """Labels of another level of the same image (a pyramid level), as a dask array."""
        data = read_level(level, self.image)
        return self._labeller.array(data, level_scale(self.image, data))

    def quantized_of(self, level):
        """:meth:`quantized` of a pyramid level."""
        data = read_level(level, self.image)
        return self.quantized(self._labeller.array(data, level_scale(self.image, data)), data)

    @property
    def n_clusters(self) -> int:
        return len(self._tally.counts)

    @cached_property
    def pixel_counts(self) -> np.ndarray:
        return self._tally.counts

    @property
    def colors(self) -> np.ndarray:
        extremes = np.stack([self._tally.low, self._tally.high]).astype(self.image.pixels.dtype)
        display = ImageData(extremes[:, None, :], self.image.kind,
                            np.ones((2, 1), dtype=bool), None)
        return display_colors(self.palette, display)

    def quantized(self, labels=None, data: ImageData | None = None):
        """The image with each pixel its cluster's mean colour, as a dask array.

        Pixels without data keep their values. ``labels`` and ``data`` default to this
        result's; give a pyramid level's with :meth:`quantized_of`.
        """
        import dask.array as da

        labels = self.labels if labels is None else labels
        data = self.image if data is None else data
        dtype = data.pixels.dtype
        colours = np.zeros((self.n_clusters + 1, data.n_channels), dtype=dtype)
        colours[1:] = _cast_like(self.palette, dtype)
        labels = labels.rechunk(data.pixels.chunks[:-1])
        out = da.map_blocks(_quantize_chunk, labels[..., None], data.pixels, colours,
                            dtype=dtype, chunks=data.pixels.chunks)
        if data.kind == "grey":
            return out[..., 0]
        if data.kind == "multichannel":
            return da.moveaxis(out, -1, data.channel_axis)
        return out

    def contours(self, min_area: int = 20):
        from ..contours import region_contours

        return region_contours(np.asarray(self.labels), min_area)


def _quantize_chunk(labels, pixels, colours):
    out = colours[labels[..., 0]]
    unlabelled = labels[..., 0] == 0
    out[unlabelled] = pixels[unlabelled]
    return out


class ChunkLabeller:
    """Labels a chunk from its own pixels and position (no neighbours needed).

    Subclasses implement ``chunk(pixels, origin, scale)``; instances are small and
    picklable, so dask workers anywhere can label chunks.
    """

    def chunk(self, pixels: np.ndarray, origin, scale) -> np.ndarray:
        raise NotImplementedError

    def array(self, data: ImageData, scale=None):
        scale = scale or (1.0,) * len(data.spatial_shape)
        return data.pixels.map_blocks(_label_block, self, scale, dtype=np.int32,
                                      drop_axis=data.pixels.ndim - 1)


def _label_block(pixels, labeller, scale, block_info=None):
    origin = tuple(start for start, _ in block_info[0]["array-location"][:-1])
    return labeller.chunk(pixels, origin, scale).astype(np.int32, copy=False)
