"""Lazy images: channels last and a lazy mask, read one chunk at a time."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..image import ImageData, arrange_channels, usable_mask

if TYPE_CHECKING:
    import dask.array as da


def is_lazy(image: object) -> bool:
    """True for dask arrays and chunked arrays on disk (zarr and the like): what napari
    holds for large images. They are read chunk by chunk, never whole."""
    if isinstance(image, np.ndarray):
        return False
    return _is_dask(image) or _chunk_shape(image) is not None


def is_multiscale(image: object) -> bool:
    """True for a list of arrays that shrink level by level (a pyramid, as napari holds)."""
    if not isinstance(image, Sequence) or isinstance(image, str) or len(image) < 2:
        return False
    if not all(hasattr(level, "shape") and hasattr(level, "dtype") for level in image):
        return False
    shapes = [level.shape for level in image]
    if not all(len(s) == len(shapes[0]) >= 2 for s in shapes):
        return False
    return all(
        all(a >= b for a, b in zip(big, small)) and big != small
        for big, small in itertools.pairwise(shapes)
    )  # each level smaller


def as_dask(image: Any) -> da.Array:
    """A dask array of ``image`` (a dask array itself, or chunked like the array on disk)."""
    import dask.array as da

    if _is_dask(image):
        return image
    chunks = _chunk_shape(image)
    return da.from_array(image, chunks=chunks if chunks is not None else "auto")


def _is_dask(image: object) -> bool:
    return hasattr(image, "dask") and hasattr(image, "chunks") and hasattr(image, "blocks")


def _chunk_shape(image: object) -> tuple[int, ...] | None:
    chunks = getattr(image, "chunks", None)
    if not (hasattr(image, "shape") and hasattr(image, "dtype") and isinstance(chunks, tuple)):
        return None
    if len(chunks) != len(image.shape) or not all(
        isinstance(c, (int, np.integer)) for c in chunks
    ):
        return None
    return chunks


def read_lazy_image(
    image: Any, rgb: bool | None = None, channel_axis: int | None = None
) -> ImageData[da.Array]:
    """:func:`~..image.read_image` for a lazy array: pixels and mask stay dask arrays."""
    pixels, kind, axis = arrange_channels(as_dask(image), rgb, channel_axis)
    pixels = pixels.rechunk({pixels.ndim - 1: -1})
    mask = pixels.map_blocks(usable_mask, kind, drop_axis=pixels.ndim - 1, dtype=bool)
    return ImageData(pixels=pixels, kind=kind, mask=mask, channel_axis=axis)


def read_level(level: Any, like: ImageData[da.Array]) -> ImageData[da.Array]:
    """A pyramid level of the image ``like`` was read from, read the same way."""
    return read_lazy_image(
        level,
        rgb=like.is_color,
        channel_axis=like.channel_axis if like.kind == "multichannel" else None,
    )


def level_scale(data: ImageData[da.Array], level: ImageData[da.Array]) -> tuple[float, ...]:
    """Full-resolution pixels per pixel of ``level``, per spatial axis."""
    return tuple(full / part for full, part in zip(data.spatial_shape, level.spatial_shape))
