"""Ward on a lazy image: clustered on a downscaled level, labels enlarged lazily.

Ward's merge tree needs every pixel at once, so it is not defined chunk by chunk. The
image is shrunk chunk by chunk to block averages of ``factor`` x ``factor`` pixels (only
usable pixels count), clustered in memory, and every full-resolution pixel takes the
label of its block.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..features import rgb_to_unit_range
from ..image import ImageData, usable_mask
from ..methods import ward
from .image import level_scale, over_chunks, read_level
from .result import ChunkLabeller, tally_steps


def ward_steps(data: ImageData, k: int, features: dict, params: dict, levels=()):
    """Returns ``(MethodOutput, labeller, tally, found)``; labels are 1..k.

    With pyramid ``levels`` (full size first), the coarsest level that is still at least
    as fine as the clustering size is shrunk instead of the full-size image: far fewer
    chunks to read.
    """
    factor = block_factor(data.spatial_shape, params["downscale"])
    source, level_number, scale = data, 0, (1.0,) * len(data.spatial_shape)
    for number, level in enumerate(levels[1:], start=1):
        candidate = read_level(level, data)
        candidate_scale = level_scale(data, candidate)
        if candidate_scale[:-2] == scale[:-2] and max(candidate_scale[-2:]) <= factor:
            source, level_number, scale = candidate, number, candidate_scale
    level_factor = max(1, round(factor / max(scale[-2:])))
    source = _aligned(source, level_factor)
    small = yield from _shrink_steps(source, level_factor)
    output = yield from ward.run(small, k, features, {"downscale": 1.0})
    block = tuple(level_factor * s for s in scale[-2:])  # full-size pixels per block side
    labeller = GridLabeller(_nearest_filled(output.labels), block, data.kind)
    found = np.unique(output.labels[output.labels > 0])
    tally = yield from tally_steps(data, labeller.array(data), len(found))
    which = f"level {level_number} of the pyramid" if level_number else "the image"
    output.details |= {
        "downscale": round(1.0 / max(block), 6),
        "downscale_requested": params["downscale"],
        "lazy_level": f"Ward clustered {which} shrunk to block averages of {level_factor}x"
        f"{level_factor} pixels (shape {list(small.spatial_shape)}, about "
        f"{max(block):.0f}x smaller than full size); every pixel takes its "
        "block's label",
    }
    return output, labeller, tally, found - 1


def block_factor(spatial_shape, downscale: float | None) -> int:
    """Block side for ``downscale`` (empty: about ward.AUTO_MAX_PIXELS pixels clustered)."""
    if downscale is None:
        plane = spatial_shape[-2] * spatial_shape[-1]
        planes = int(np.prod(spatial_shape[:-2], dtype=np.int64))
        return max(1, math.ceil(math.sqrt(plane * planes / ward.AUTO_MAX_PIXELS)))
    return max(1, round(1.0 / downscale))


def _aligned(data: ImageData, factor: int) -> ImageData:
    """Chunks of y and x rechunked to multiples of ``factor`` (blocks never straddle)."""
    y, x = data.pixels.ndim - 3, data.pixels.ndim - 2
    sides = {axis: factor * max(1, round(data.pixels.chunks[axis][0] / factor)) for axis in (y, x)}
    pixels = data.pixels.rechunk(sides)
    return ImageData(pixels, data.kind, None, data.channel_axis)


def _shrink_steps(data: ImageData, factor: int):
    """Block averages of the usable pixels, chunk by chunk -> an in-memory ImageData."""
    shape = tuple(data.spatial_shape[:-2]) + tuple(
        math.ceil(side / factor) for side in data.spatial_shape[-2:]
    )
    sums = np.zeros((*shape, data.n_channels))
    weights = np.zeros(shape)
    sizes = np.zeros(shape)

    def place(position, part):
        target, part_sums, part_weights, part_sizes = part
        sums[target], weights[target], sizes[target] = part_sums, part_weights, part_sizes

    yield from over_chunks("shrinking", [data.pixels], _chunk_block_sums, place, data.kind, factor)
    mask = weights / sizes > 0.5
    if not weights.any():
        raise ValueError(
            "image: no pixel has data (all are NaN/inf or fully transparent); "
            "nothing can be clustered."
        )
    if not mask.any():
        raise ValueError(
            "downscale: no block of the shrunk image has data; use a larger downscale."
        )
    pixels = sums / np.maximum(weights, 1e-12)[..., None]
    return ImageData(pixels=pixels, kind=data.kind, mask=mask, channel_axis=data.channel_axis)


def _chunk_block_sums(pixels, position, origin, kind, factor):
    """Where the chunk's blocks go in the shrunk image, their sums, usable and all pixels."""
    mask = usable_mask(pixels, kind)
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


def _nearest_filled(labels: np.ndarray) -> np.ndarray:
    """Blocks without data take the label of the nearest block with one."""
    holes = labels == 0
    if not holes.any():
        return labels
    nearest = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
    return labels[tuple(nearest)]


class GridLabeller(ChunkLabeller):
    """Every pixel takes the label of its block (``block`` full-size pixels in y and x)."""

    def __init__(self, block_labels: np.ndarray, block: tuple[float, float], kind: str):
        self.block_labels, self.block, self.kind = block_labels, block, kind

    def chunk(self, pixels, origin, scale):
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
