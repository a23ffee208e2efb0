"""Lazy images: channels last and a lazy mask, read one chunk at a time."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..image import (
    ImageData,
    arrange_channels,
    check_mask_type,
    no_pixel_inside,
    usable_mask,
)

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
    image: Any, rgb: bool | None = None, channel_axis: int | None = None, mask: Any = None
) -> ImageData[da.Array]:
    """:func:`~..image.read_image` for a lazy array: pixels and mask stay dask arrays.

    ``mask`` (the pixels to cluster, as for ``read_image``) may be a dask or zarr array,
    rechunked to the image's chunks, or a numpy array, cut into the image's chunks; its
    pixels inside are counted once here (one pass over a lazy mask).
    """
    pixels, kind, axis = arrange_channels(as_dask(image), rgb, channel_axis)
    pixels = pixels.rechunk({pixels.ndim - 1: -1})
    if mask is None:
        usable = pixels.map_blocks(usable_mask, kind, drop_axis=pixels.ndim - 1, dtype=bool)
        return ImageData(pixels=pixels, kind=kind, mask=usable, channel_axis=axis)
    inside, n_inside = lazy_inside(mask, pixels)
    return with_inside(pixels, kind, axis, inside, n_inside)


def lazy_inside(mask: Any, pixels: da.Array) -> tuple[da.Array, int]:
    """The caller's mask as a boolean dask array in the chunks of ``pixels`` (channels
    last), and how many pixels it holds; a bad mask is a ValueError starting "mask:"."""
    import dask.array as da

    spatial_shape, spatial_chunks = pixels.shape[:-1], pixels.chunks[:-1]
    if is_lazy(mask):
        lazy = as_dask(mask)
        check_mask_type(lazy.dtype, lazy.shape, spatial_shape)
        inside = (lazy if lazy.dtype == bool else lazy != 0).rechunk(spatial_chunks)
        n_inside = int(inside.sum().compute())
    else:
        try:
            array = np.asarray(mask)
        except (TypeError, ValueError):  # ragged lists and the like
            array = np.asarray(None)
        check_mask_type(array.dtype, array.shape, spatial_shape)
        array = array if array.dtype == bool else array != 0
        n_inside = int(np.count_nonzero(array))
        inside = da.from_array(array, chunks=spatial_chunks)
    if n_inside == 0:
        raise ValueError(no_pixel_inside(spatial_shape))
    return inside, n_inside


def with_inside(
    pixels: da.Array, kind: str, axis: int | None, inside: da.Array, n_inside: int | None
) -> ImageData[da.Array]:
    """A lazy image whose usable pixels are those with data inside ``inside``."""
    import dask.array as da

    usable = da.map_blocks(
        _usable_inside, pixels, inside[..., None], kind, drop_axis=pixels.ndim - 1, dtype=bool
    )
    return ImageData(pixels, kind, usable, axis, inside=inside, n_inside=n_inside)


def _usable_inside(pixels: np.ndarray, inside: np.ndarray, kind: str) -> np.ndarray:
    return usable_mask(pixels, kind, inside[..., 0])


def read_level(level: Any, like: ImageData[da.Array]) -> ImageData[da.Array]:
    """A pyramid level of the image ``like`` was read from, read the same way (with the
    caller's mask, if any, sampled at the level's pixels: see :func:`level_inside`)."""
    data = read_lazy_image(
        level,
        rgb=like.is_color,
        channel_axis=like.channel_axis if like.kind == "multichannel" else None,
    )
    if like.inside is None:
        return data
    inside = level_inside(like.inside, data.spatial_shape).rechunk(data.pixels.chunks[:-1])
    return with_inside(data.pixels, data.kind, data.channel_axis, inside, None)


def level_inside(inside: da.Array, level_shape: tuple[int, ...]) -> da.Array:
    """A full-size mask at a smaller level's pixels: each takes the full-size pixel at
    its center (nearest neighbour, as napari shows a labels pyramid)."""
    for axis, (full, part) in enumerate(zip(inside.shape, level_shape)):
        if full != part:
            index = np.minimum(((np.arange(part) + 0.5) * full / part).astype(np.intp), full - 1)
            inside = inside[(slice(None),) * axis + (index,)]
    return inside


def level_scale(data: ImageData[da.Array], level: ImageData[da.Array]) -> tuple[float, ...]:
    """Full-resolution pixels per pixel of ``level``, per spatial axis."""
    return tuple(full / part for full, part in zip(data.spatial_shape, level.spatial_shape))
