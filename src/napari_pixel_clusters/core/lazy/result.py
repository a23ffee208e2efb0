"""What lazy routes return: labels and quantized images as dask arrays, an exact table."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..image import ImageData, usable_mask
from ..means import ClusterSums
from ..result import Segmentation, display_colors
from .image import level_scale, over_chunks, read_level


@dataclass
class Tally:
    """Per-cluster pixel counts and value sums, and each channel's lowest/highest value."""

    sums: ClusterSums  # (k,) counts and (k, C) sums, exact for integer images
    low: np.ndarray  # (C,)
    high: np.ndarray  # (C,)

    @property
    def counts(self) -> np.ndarray:
        return self.sums.counts.astype(np.int64)

    @property
    def palette(self) -> np.ndarray:
        return self.sums.means()

    def take(self, index) -> Tally:
        return Tally(self.sums.take(index), self.low, self.high)


def tally_steps(data: ImageData, labels, n_clusters: int):
    """Count every label chunk by chunk (yields ``("counting", fraction)``) -> Tally.

    ``labels`` is a lazy labels array of ``data`` (same chunks), e.g. ``labeller.array``.
    """
    totals = empty_totals(n_clusters + 1, data.n_channels, data.pixels.dtype)
    yield from over_chunks(
        "counting",
        [data.pixels, labels],
        _chunk_tally,
        lambda _, part: add_totals(totals, part),
        data.kind,
        n_clusters + 1,
    )
    return finish_tally(*totals)


def _chunk_tally(pixels, labels, position, origin, kind, size):
    block = ImageData(pixels, kind, usable_mask(pixels, kind), None)
    return chunk_totals(block, labels.ravel(), size)


def empty_totals(size: int, n_channels: int, dtype) -> list:
    """[sums, low, high] before anything is counted."""
    return [
        ClusterSums.empty(size, n_channels, dtype),
        np.full(n_channels, np.inf),
        np.full(n_channels, -np.inf),
    ]


def chunk_totals(block: ImageData, labels, size: int) -> list:
    """[sums, low, high] of one chunk: ``labels`` flat, one per pixel, below ``size``
    (0 where a pixel has no data)."""
    totals = empty_totals(size, block.n_channels, block.pixels.dtype)
    values = block.pixels.reshape(-1, block.n_channels)
    usable = block.mask.ravel()
    if not usable.any():
        return totals
    labels = np.where(usable, labels, 0)
    totals[0] = ClusterSums.of(labels, values, size)
    totals[1][:] = values[usable].min(axis=0)
    totals[2][:] = values[usable].max(axis=0)
    return totals


def add_totals(totals: list, part: list) -> None:
    totals[0] = totals[0] + part[0]
    np.minimum(totals[1], part[1], out=totals[1])
    np.maximum(totals[2], part[2], out=totals[2])


def finish_tally(sums: ClusterSums, low, high) -> Tally:
    """Totals with label 0 (no cluster) -> Tally of labels 1..k."""
    return Tally(sums.take(slice(1, None)), low, high)


def drop_empty(tally: Tally, n_found: int) -> Tally:
    """The first ``n_found`` clusters, and any later one that has pixels (trailing empty
    clusters dropped)."""
    keep = max(n_found, int(np.flatnonzero(tally.counts).max(initial=-1)) + 1)
    return tally.take(slice(0, keep))


class LazySegmentation(Segmentation):
    """A :class:`Segmentation` whose ``labels`` and ``quantized()`` are dask arrays.

    ``labeller.array(data, scale)`` labels a lazy image (this one, or a pyramid level
    ``scale`` times smaller); the table comes from an exact count over every chunk.
    """

    is_lazy = True

    def __init__(self, *, tally: Tally, labeller, **fields):
        super().__init__(known_sums=tally.sums, **fields)
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
        extremes = _in_dtype(
            np.stack([self._tally.low, self._tally.high]), self.image.pixels.dtype
        )
        display = ImageData(
            extremes[:, None, :], self.image.kind, np.ones((2, 1), dtype=bool), None
        )
        return display_colors(self.palette, display)

    def quantized(self, labels=None, data: ImageData | None = None):
        """The image with each pixel its cluster's mean color, as a dask array.

        Pixels without data keep their values. ``labels`` and ``data`` default to this
        result's; give a pyramid level's with :meth:`quantized_of`.
        """
        import dask.array as da

        labels = self.labels if labels is None else labels
        data = self.image if data is None else data
        dtype = data.pixels.dtype
        colors = np.zeros((self.n_clusters + 1, data.n_channels), dtype=dtype)
        colors[1:] = self.cluster_sums.as_dtype(dtype, self._tally.low, self._tally.high)
        labels = labels.rechunk(data.pixels.chunks[:-1])
        out = da.map_blocks(
            _quantize_chunk,
            labels[..., None],
            data.pixels,
            colors,
            dtype=dtype,
            chunks=data.pixels.chunks,
        )
        if data.kind == "grey":
            return out[..., 0]
        if data.kind == "multichannel":
            return da.moveaxis(out, -1, data.channel_axis)
        return out

    def contours(self, min_area: int = 20):
        from ..contours import check_min_area, region_contours

        min_area = check_min_area(min_area)  # before the labels are computed

        return region_contours(np.asarray(self.labels), min_area)


def _in_dtype(values: np.ndarray, dtype) -> np.ndarray:
    """Float ``values`` cast to ``dtype`` without wrapping (clipped just inside the range
    of an integer dtype whose maximum float64 cannot hold, such as 2**64 - 1)."""
    if np.dtype(dtype).kind not in "iu":
        return values.astype(dtype)
    info = np.iinfo(dtype)
    top = float(info.max)
    if top > info.max:  # rounded up: the largest float64 below it fits
        top = np.nextafter(top, 0.0)
    return np.clip(values, float(info.min), top).astype(dtype)


def _quantize_chunk(labels, pixels, colors):
    out = colors[labels[..., 0]]
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
        return data.pixels.map_blocks(
            _label_block, self, scale, dtype=np.int32, drop_axis=data.pixels.ndim - 1
        )


def _label_block(pixels, labeller, scale, block_info=None):
    origin = tuple(start for start, _ in block_info[0]["array-location"][:-1])
    return labeller.chunk(pixels, origin, scale).astype(np.int32, copy=False)
