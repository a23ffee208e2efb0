"""Lazy images: channels last and a lazy mask, read one chunk at a time."""

from __future__ import annotations

import numpy as np

from ..image import ImageData, arrange_channels, usable_mask


def is_lazy(image) -> bool:
    """True for dask arrays (what napari holds for large images)."""
    return hasattr(image, "dask") and hasattr(image, "chunks") and hasattr(image, "blocks")


def read_lazy_image(image, rgb: bool | None = None, channel_axis: int | None = None) -> ImageData:
    """:func:`~..image.read_image` for a dask array: pixels and mask stay dask arrays."""
    import dask.array as da

    pixels, kind, axis = arrange_channels(da.asarray(image), rgb, channel_axis)
    pixels = pixels.rechunk({pixels.ndim - 1: -1})
    mask = pixels.map_blocks(usable_mask, kind, drop_axis=pixels.ndim - 1, dtype=bool)
    return ImageData(pixels=pixels, kind=kind, mask=mask, channel_axis=axis)


def read_level(level, like: ImageData) -> ImageData:
    """A pyramid level of the image ``like`` was read from, read the same way."""
    return read_lazy_image(level, rgb=like.is_color,
                           channel_axis=like.channel_axis if like.kind == "multichannel" else None)


def block_indices(data: ImageData) -> list[tuple[int, ...]]:
    """Index of every chunk over the spatial axes, in C order."""
    return list(np.ndindex(data.pixels.numblocks[:-1]))


def block_origin(data: ImageData, index: tuple[int, ...]) -> tuple[int, ...]:
    """Position of the chunk's first pixel in the image."""
    return tuple(int(sum(chunks[:i])) for chunks, i in zip(data.pixels.chunks, index))


def load_block(data: ImageData, index: tuple[int, ...]) -> ImageData:
    """One chunk in memory, with its mask."""
    pixels = np.asarray(data.pixels.blocks[index + (0,)])
    return ImageData(pixels=pixels, kind=data.kind, mask=usable_mask(pixels, data.kind),
                     channel_axis=data.channel_axis)


def level_scale(data: ImageData, level: ImageData) -> tuple[float, ...]:
    """Full-resolution pixels per pixel of ``level``, per spatial axis."""
    return tuple(full / part for full, part in zip(data.spatial_shape, level.spatial_shape))
