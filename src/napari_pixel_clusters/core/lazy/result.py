"""The result of a lazy route: labels and quantized images as dask arrays, an exact table."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..contours import check_min_area, region_contours
from ..image import ImageData
from ..probabilities import check_uncertainty_kind, lazy_probabilities, lazy_uncertainty
from ..result import Segmentation, display_colors
from .chunks import Tally
from .image import level_scale, read_level

if TYPE_CHECKING:
    import dask.array as da

    from ..contours import Contour
    from ..registry import Labeller


class LazySegmentation(Segmentation["da.Array"]):
    """A :class:`Segmentation` whose ``labels`` and ``quantized()`` are dask arrays.

    ``labeller.array(data, scale)`` labels a lazy image (this one, or a pyramid level
    ``scale`` times smaller); the table comes from an exact count over every chunk.
    """

    is_lazy = True

    def __init__(self, *, tally: Tally, labeller: Labeller, **fields: Any):
        super().__init__(known_sums=tally.sums, **fields)
        self._tally = tally
        self._labeller = labeller
        self.levels: Sequence[Any] = []  # the pyramid it was made from, when given one

    def labels_pyramid(self) -> list[da.Array]:
        """Labels of every level of the pyramid given to ``segment`` (full size first)."""
        return [self.labels, *(self.labels_of(level) for level in self.levels[1:])]

    def quantized_pyramid(self) -> list[da.Array]:
        """:meth:`quantized` of every level of the pyramid given to ``segment``."""
        return [self.quantized(), *(self.quantized_of(level) for level in self.levels[1:])]

    def labels_of(self, level: Any) -> da.Array:
        """Labels of another level of the same image (a pyramid level), as a dask array."""
        data = read_level(level, self.image)
        return self._labeller.array(data, level_scale(self.image, data))

    def quantized_of(self, level: Any) -> da.Array:
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

    def quantized(
        self, labels: da.Array | None = None, data: ImageData[da.Array] | None = None
    ) -> da.Array:
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

    def probabilities(self) -> da.Array:
        """:meth:`Segmentation.probabilities` as a dask array: ``(*spatial, k)`` float32,
        in the image's chunks (the cluster axis one chunk), computed chunk by chunk."""
        return lazy_probabilities(self._probability_labelling(), self.image)

    def uncertainty(self, kind: str = "margin") -> da.Array:
        """:meth:`Segmentation.uncertainty` as a dask array, chunk by chunk."""
        kind = check_uncertainty_kind(kind)
        return lazy_uncertainty(self._probability_labelling(), self.image, kind)

    def contours(self, min_area: int = 20) -> list[Contour]:
        min_area = check_min_area(min_area)  # before the labels are computed
        return region_contours(np.asarray(self.labels), min_area)


def _in_dtype(values: np.ndarray, dtype: npt.DTypeLike) -> np.ndarray:
    """Float ``values`` cast to ``dtype`` without wrapping (clipped just inside the range
    of an integer dtype whose maximum float64 cannot hold, such as 2**64 - 1)."""
    if np.dtype(dtype).kind not in "iu":
        return values.astype(dtype)
    info = np.iinfo(dtype)
    top = float(info.max)
    if top > info.max:  # rounded up: the largest float64 below it fits
        top = np.nextafter(top, 0.0)
    return np.clip(values, float(info.min), top).astype(dtype)


def _quantize_chunk(labels: np.ndarray, pixels: np.ndarray, colors: np.ndarray) -> np.ndarray:
    out = colors[labels[..., 0]]
    unlabelled = labels[..., 0] == 0
    out[unlabelled] = pixels[unlabelled]
    return out
