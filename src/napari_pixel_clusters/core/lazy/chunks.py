"""What every lazy route is made of: work chunk by chunk, count labels, label chunks.

A method's ``lazy_run`` (see :class:`~..registry.Method`) reads a dask image only through
these:

- :func:`over_chunks` runs a function on every chunk, a batch of chunks at a time (one
  ``(stage, fraction)`` step per batch, where a caller may stop);
- :func:`tally_steps` counts the pixels and sums the values of every label (a
  :class:`Tally`: the cluster table, exact for integer images);
- a :class:`ChunkLabeller` labels any chunk on demand, so the labels are a dask array;
- :func:`block_average_steps` and :class:`GridLabeller` let a method that needs every
  pixel at once cluster a downscaled copy and label each pixel by its block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from ..features import rgb_to_unit_range
from ..image import NO_DATA, ImageData, usable_mask
from ..means import ClusterSums
from .image import level_scale, read_level

if TYPE_CHECKING:
    import dask.array as da

T = TypeVar("T")
#: The registry's ``Steps`` (``(stage, fraction)`` progress, then a result), spelled out
#: here: the registry imports this module's types.
_Steps = Generator[tuple[str, float], None, T]

#: Chunks handed to dask at once: processed in parallel (dask's threads, or the workers
#: of a ``dask.distributed`` Client); a caller may stop between batches.
CHUNK_BATCH = 16


def over_chunks(
    stage: str,
    arrays: Sequence[da.Array],
    func: Callable[..., T],
    consume: Callable[[int, T], None],
    *args: Any,
) -> _Steps[None]:
    """Run ``func(chunk, ..., position, origin, *args)`` on every chunk, batch by batch.

    ``arrays`` share their chunks over the spatial axes (the first sets the order);
    ``position`` is the chunk's number in C order and ``origin`` its first pixel. Yields
    ``(stage, fraction)`` before each batch; ``consume(position, result)`` receives the
    results in order, so only a batch of results is held at a time.
    """
    import dask

    first = arrays[0]
    spatial_ndim = first.ndim - 1
    blocks = list(np.ndindex(first.numblocks[:spatial_ndim]))
    delayed = [array.to_delayed() for array in arrays]  # once: slicing each block costs more
    for start in range(0, len(blocks), CHUNK_BATCH):
        yield stage, start / len(blocks)
        tasks = []
        for position, index in enumerate(blocks[start : start + CHUNK_BATCH], start=start):
            chunks = [
                blocks_of[index + (0,) * (array.ndim - spatial_ndim)]
                for array, blocks_of in zip(arrays, delayed)
            ]
            origin = tuple(int(sum(c[:i])) for c, i in zip(first.chunks, index))
            tasks.append(dask.delayed(func)(*chunks, position, origin, *args))
        for position, result in enumerate(dask.compute(*tasks), start=start):
            consume(position, result)


def block_indices(data: ImageData[da.Array]) -> list[tuple[int, ...]]:
    """Index of every chunk over the spatial axes, in C order."""
    return list(np.ndindex(data.pixels.numblocks[:-1]))


# ---------------------------------------------------------------------- counting
@dataclass
class Tally:
    """Per-cluster pixel counts and value sums, and each channel's lowest/highest value."""

    sums: ClusterSums  # (k,) counts and (k, C) sums, exact for integer images
    low: np.ndarray  # (C,)
    high: np.ndarray  # (C,)

    @property
    def counts(self) -> np.ndarray:
        return self.sums.counts.astype(np.int64)

    def take(self, index: slice | npt.NDArray[np.integer | np.bool_]) -> Tally:
        return Tally(self.sums.take(index), self.low, self.high)


def tally_steps(data: ImageData[da.Array], labels: da.Array, n_clusters: int) -> _Steps[Tally]:
    """Count every label chunk by chunk (yields ``("counting", fraction)``) -> Tally.

    ``labels`` is a lazy labels array of ``data`` (same chunks), e.g. ``labeller.array``.
    """
    totals = empty_totals(n_clusters + 1, data.n_channels, data.pixels.dtype)
    yield from over_chunks(
        "counting",
        [data.pixels, labels, data.mask],
        _chunk_tally,
        lambda _, part: add_totals(totals, part),
        data.kind,
        n_clusters + 1,
    )
    return finish_tally(*totals)


def _chunk_tally(
    pixels: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    position: int,
    origin: tuple[int, ...],
    kind: str,
    size: int,
) -> list[Any]:
    block = ImageData(pixels, kind, mask, None)
    return chunk_totals(block, labels.ravel(), size)


def empty_totals(size: int, n_channels: int, dtype: npt.DTypeLike) -> list[Any]:
    """[sums, low, high] before anything is counted."""
    return [
        ClusterSums.empty(size, n_channels, dtype),
        np.full(n_channels, np.inf),
        np.full(n_channels, -np.inf),
    ]


def chunk_totals(block: ImageData[np.ndarray], labels: np.ndarray, size: int) -> list[Any]:
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


def add_totals(totals: list[Any], part: list[Any]) -> None:
    totals[0] = totals[0] + part[0]
    np.minimum(totals[1], part[1], out=totals[1])
    np.maximum(totals[2], part[2], out=totals[2])


def finish_tally(sums: ClusterSums, low: np.ndarray, high: np.ndarray) -> Tally:
    """Totals with label 0 (no cluster) -> Tally of labels 1..k."""
    return Tally(sums.take(slice(1, None)), low, high)


def drop_empty(tally: Tally, n_found: int) -> Tally:
    """The first ``n_found`` clusters, and any later one that has pixels (trailing empty
    clusters dropped)."""
    keep = max(n_found, int(np.flatnonzero(tally.counts).max(initial=-1)) + 1)
    return tally.take(slice(0, keep))


# ---------------------------------------------------------------------- labelling
class ChunkLabeller:
    """Labels a chunk from its own pixels and position (no neighbours needed).

    Subclasses implement ``chunk(pixels, origin, scale)``; instances are small and
    picklable, so dask workers anywhere can label chunks.
    """

    def chunk(
        self, pixels: np.ndarray, origin: tuple[int, ...], scale: tuple[float, ...]
    ) -> np.ndarray:
        raise NotImplementedError

    def array(self, data: ImageData[da.Array], scale: tuple[float, ...] | None = None) -> da.Array:
        """Labels of ``data`` (0 outside the caller's mask ``data.inside``, if any)."""
        import dask.array as da

        scale = scale or (1.0,) * len(data.spatial_shape)
        drop = data.pixels.ndim - 1
        if data.inside is None:
            return da.map_blocks(
                _label_block, data.pixels, self, scale, dtype=np.int32, drop_axis=drop
            )
        return da.map_blocks(
            _label_inside_block,
            data.pixels,
            data.inside[..., None],
            self,
            scale,
            dtype=np.int32,
            drop_axis=drop,
        )


def _label_block(
    pixels: np.ndarray,
    labeller: ChunkLabeller,
    scale: tuple[float, ...],
    block_info: dict[int, dict[str, Any]],  # given by dask.array.map_blocks
) -> np.ndarray:
    origin = tuple(start for start, _ in block_info[0]["array-location"][:-1])
    return labeller.chunk(pixels, origin, scale).astype(np.int32, copy=False)


def _label_inside_block(
    pixels: np.ndarray,
    inside: np.ndarray,
    labeller: ChunkLabeller,
    scale: tuple[float, ...],
    block_info: dict[int, dict[str, Any]],
) -> np.ndarray:
    """:func:`_label_block`, 0 outside the caller's mask (``inside``, channels axis 1)."""
    return np.where(inside[..., 0], _label_block(pixels, labeller, scale, block_info), 0)


# ---------------------------------------------------------------------- block averages
@dataclass
class BlockAverages:
    """A lazy image shrunk to the averages of its usable pixels over blocks of y and x.

    ``image`` is in memory, one pixel per block (its mask: blocks more than half usable);
    ``block`` is a block's side in full-size pixels (y, x); ``level`` the pyramid level
    that was shrunk (0: the image itself) and ``factor`` a block's side in its pixels.
    """

    image: ImageData[np.ndarray]
    block: tuple[float, float]
    level: int
    factor: int


def block_average_steps(
    data: ImageData[da.Array], factor: int, levels: Sequence[Any] = ()
) -> _Steps[BlockAverages]:
    """Shrink ``data`` chunk by chunk to averages over ``factor`` x ``factor`` blocks.

    With pyramid ``levels`` (full size first), the coarsest level that is still at least
    as fine as the blocks is shrunk instead: far fewer chunks to read. Yields
    ``("shrinking", fraction)``; returns :class:`BlockAverages`.
    """
    source, level_number, scale = data, 0, (1.0,) * len(data.spatial_shape)
    for number, level in enumerate(levels[1:], start=1):
        candidate = read_level(level, data)
        candidate_scale = level_scale(data, candidate)
        if candidate_scale[:-2] == scale[:-2] and max(candidate_scale[-2:]) <= factor:
            source, level_number, scale = candidate, number, candidate_scale
    level_factor = max(1, round(factor / max(scale[-2:])))
    small = yield from _shrink_steps(_aligned(source, level_factor), level_factor)
    block = (level_factor * scale[-2], level_factor * scale[-1])
    return BlockAverages(small, block, level_number, level_factor)


def _aligned(data: ImageData[da.Array], factor: int) -> ImageData[da.Array]:
    """Chunks of y and x rechunked to multiples of ``factor`` (blocks never straddle)."""
    y, x = data.pixels.ndim - 3, data.pixels.ndim - 2
    sides = {axis: factor * max(1, round(data.pixels.chunks[axis][0] / factor)) for axis in (y, x)}
    pixels, mask = data.pixels.rechunk(sides), data.mask.rechunk(sides)
    return ImageData(pixels, data.kind, mask, data.channel_axis)


def _shrink_steps(data: ImageData[da.Array], factor: int) -> _Steps[ImageData[np.ndarray]]:
    """Block averages of the usable pixels, chunk by chunk -> an in-memory ImageData."""
    shape = tuple(data.spatial_shape[:-2]) + tuple(
        math.ceil(side / factor) for side in data.spatial_shape[-2:]
    )
    sums = np.zeros((*shape, data.n_channels))
    weights = np.zeros(shape)
    sizes = np.zeros(shape)

    def place(
        position: int, part: tuple[tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray]
    ) -> None:
        target, part_sums, part_weights, part_sizes = part
        sums[target], weights[target], sizes[target] = part_sums, part_weights, part_sizes

    yield from over_chunks(
        "shrinking", [data.pixels, data.mask], _chunk_block_sums, place, data.kind, factor
    )
    if not weights.any():
        raise ValueError(NO_DATA)
    pixels = sums / np.maximum(weights, 1e-12)[..., None]
    mask = weights / sizes > 0.5
    return ImageData(pixels=pixels, kind=data.kind, mask=mask, channel_axis=data.channel_axis)


def _chunk_block_sums(
    pixels: np.ndarray,
    mask: np.ndarray,
    position: int,
    origin: tuple[int, ...],
    kind: str,
    factor: int,
) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Where the chunk's blocks go in the shrunk image, their sums, usable and all pixels."""
    values = rgb_to_unit_range(pixels) if kind in ("rgb", "rgba") else pixels
    values = np.where(mask[..., None], values, 0.0)
    spatial = mask.shape
    target = tuple(slice(o, o + s) for o, s in zip(origin[:-2], spatial[:-2]))
    target += tuple(
        slice(o // factor, o // factor + math.ceil(s / factor))
        for o, s in zip(origin[-2:], spatial[-2:])
    )
    y_axis = mask.ndim - 2
    return (
        target,
        _block_sums(values, factor, y_axis),
        _block_sums(mask.astype(float), factor, y_axis),
        _block_sums(np.ones(spatial), factor, y_axis),
    )


def _block_sums(array: np.ndarray, factor: int, y_axis: int) -> np.ndarray:
    """Sums over factor x factor blocks of axes ``y_axis`` and ``y_axis + 1``."""
    for axis in (y_axis, y_axis + 1):
        array = np.add.reduceat(array, np.arange(0, array.shape[axis], factor), axis=axis)
    return array


def nearest_filled(labels: np.ndarray) -> np.ndarray:
    """Blocks without data take the label of the nearest block with one."""
    from scipy import ndimage

    holes = labels == 0
    if not holes.any():
        return labels
    nearest = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
    return labels[tuple(nearest)]


class GridLabeller(ChunkLabeller):
    """Every pixel takes the label of its block (``block`` full-size pixels in y and x)."""

    def __init__(self, block_labels: np.ndarray, block: tuple[float, float], kind: str):
        self.block_labels, self.block, self.kind = block_labels, block, kind

    def chunk(
        self, pixels: np.ndarray, origin: tuple[int, ...], scale: tuple[float, ...]
    ) -> np.ndarray:
        spatial = pixels.shape[:-1]
        n_planes_axes = len(spatial) - 2
        indices = []
        for axis, (start, size, step) in enumerate(zip(origin, spatial, scale)):
            full = (start + np.arange(size)) * step
            if axis < n_planes_axes:
                index = np.rint(full)
            else:  # a small margin keeps exact block edges from rounding down a block
                index = np.floor(full / self.block[axis - n_planes_axes] + 1e-9)
            top = self.block_labels.shape[axis] - 1
            indices.append(np.clip(index, 0, top).astype(np.intp))
        labels = self.block_labels[np.ix_(*indices)]
        return np.where(usable_mask(pixels, self.kind), labels, 0)
