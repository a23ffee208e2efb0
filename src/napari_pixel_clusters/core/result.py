"""The result of a segmentation: labels, palette, cluster table, scores and provenance."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic

import numpy as np
import pandas as pd

from .contours import Contour, region_contours
from .image import ArrayT, ImageData
from .means import ClusterSums
from .objects import Objects, label_objects
from .probabilities import probabilities, uncertainty

if TYPE_CHECKING:  # core/model.py imports this module: no import back at run time
    from .labelling import Labelling
    from .model import Model

#: Pixels per chunk when summing the pixels of each cluster (bounds temporary memory).
PALETTE_CHUNK = 2**20


def compact_labels(
    labels: np.ndarray, counts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Renumber labels to 1..k without gaps (0 stays 0), keeping their order.

    ``counts``: the pixels of each label 1..len(counts), when known (no pass over the
    labels to count them). Returns the new labels and, for each new label, the old one
    it came from.
    """
    if counts is None:
        present = np.flatnonzero(np.bincount(labels.ravel()))
    else:
        present = np.flatnonzero(counts) + 1
    present = present[present > 0]
    if len(present) == 0 or present[-1] == len(present):
        return labels, present
    lookup = np.zeros(labels.max() + 1, dtype=labels.dtype)
    lookup[present] = np.arange(1, len(present) + 1, dtype=labels.dtype)
    return lookup[labels], present


def display_colors(palette: np.ndarray, data: ImageData[Any]) -> np.ndarray:
    """Cluster colors as RGB in [0, 1], for hex codes and label colormaps."""
    if len(palette) == 0:
        return np.zeros((0, 3))
    if data.is_color:
        rgb = palette[:, :3] / _value_range(data.pixels[..., :3])
    else:
        values = data.pixels[data.mask]
        low, high = values.min(axis=0).astype(float), values.max(axis=0).astype(float)
        span = np.where(high > low, high - low, 1.0)
        scaled = (palette - low) / span
        rgb = (
            np.repeat(scaled, 3, axis=1)
            if scaled.shape[1] == 1
            else np.pad(scaled[:, :3], ((0, 0), (0, max(0, 3 - scaled.shape[1]))))
        )
    return np.clip(rgb, 0.0, 1.0)


def _value_range(pixels: np.ndarray) -> float:
    if np.issubdtype(pixels.dtype, np.integer):
        return float(np.iinfo(pixels.dtype).max)
    finite_max = np.nanmax(np.where(np.isfinite(pixels), pixels, np.nan))
    return 1.0 if finite_max <= 1.0 else float(finite_max)


def hex_colors(rgb: np.ndarray) -> list[str]:
    return ["#{:02x}{:02x}{:02x}".format(*tuple(round(255 * c) for c in row)) for row in rgb]


@dataclass
class Segmentation(Generic[ArrayT]):
    """What :func:`segment` returns.

    Attributes
    ----------
    labels : ndarray of int32
        The image's spatial shape; clusters are 1..k, 0 where a pixel has no data (a dask
        array for images larger than memory: :class:`~.lazy.result.LazySegmentation`).
    score : dict
        Quality measures of the method (``inertia``; ``bic``, ``aic``, ``log_likelihood``).
    params : dict
        Every parameter used, the route taken and package versions.
    fitted : dict
        What the method fitted (k-means centers, mixture parameters) in feature space.
    model : Model or None
        The fitted method with its whole feature pipeline: ``seg.model.predict(other)``;
        None for methods without a predictor (see ``Method.predictor``).
    """

    #: True for results of images larger than memory (labels as a dask array)
    is_lazy: ClassVar[bool] = False

    labels: ArrayT
    image: ImageData[ArrayT] = field(repr=False)
    score: dict[str, Any]
    params: dict[str, Any]
    fitted: dict[str, Any] = field(default_factory=dict, repr=False)
    known_sums: ClusterSums | None = field(default=None, repr=False)
    #: makes :attr:`model` from this result when it is first asked for (``segment`` gives
    #: ``Model.from_segmentation`` for methods with a predictor)
    make_model: Callable[[Segmentation[Any]], Model] | None = field(default=None, repr=False)

    @cached_property
    def model(self) -> Model | None:
        """A :class:`~.model.Model` that labels other images the same way (methods with a
        predictor, ``Method.predictor``), or None."""
        return self.make_model(self) if self.make_model is not None and self.fitted else None

    @property
    def method(self) -> str:
        return self.params["method"]

    @property
    def n_clusters(self) -> int:
        """Number of clusters actually found (labels run 1..n_clusters)."""
        return int(self.labels.max()) if self.labels.size else 0

    @cached_property
    def pixel_counts(self) -> np.ndarray:
        """(k,) int64 pixels of each cluster (from ``known_sums`` when given)."""
        if self.known_sums is not None and len(self.known_sums.counts) == self.n_clusters:
            return self.known_sums.counts.astype(np.int64)
        return np.bincount(self.labels.ravel(), minlength=self.n_clusters + 1)[1:]

    @cached_property
    def cluster_sums(self) -> ClusterSums:
        """Pixel count and value sums of each cluster (exact for integer images)."""
        if self.known_sums is not None:
            return self.known_sums
        flat = self.labels.ravel()
        pixels = self.image.pixels.reshape(-1, self.image.n_channels)
        size = self.n_clusters + 1
        total = ClusterSums.empty(size, self.image.n_channels, pixels.dtype)
        for start in range(0, len(flat), PALETTE_CHUNK):
            chunk = slice(start, start + PALETTE_CHUNK)
            total = total + ClusterSums.of(flat[chunk], pixels[chunk], size)
        return total.take(slice(1, None))

    @cached_property
    def palette(self) -> np.ndarray:
        """(k, C) mean value of each cluster's pixels, in the image's own units (float64;
        correctly rounded from exact sums for integer images)."""
        return self.cluster_sums.means()

    @property
    def colors(self) -> np.ndarray:
        """(k, 3) display colors in [0, 1] (mean color; grey levels for grey images)."""
        return display_colors(self.palette, self.image)

    @property
    def table(self) -> pd.DataFrame:
        """One row per cluster: label, pixels, fraction, mean of each channel, hex color."""
        counts = self.pixel_counts
        table = pd.DataFrame(
            {
                "label": np.arange(1, self.n_clusters + 1),
                "pixels": counts,
                "fraction": counts / max(int(counts.sum()), 1),
            }
        )
        for c, name in enumerate(self.image.channel_names):
            table[f"mean_{name}"] = self.palette[:, c]
        table["color"] = hex_colors(self.colors)
        return table

    def quantized(self) -> ArrayT:
        """The input image with each pixel replaced by its cluster's mean color.

        Same shape and dtype as the input; pixels without data keep their values. Integer
        means are exact, rounded half to even (a cluster of identical values keeps them,
        even 2**64 - 1); float means never leave the image's range.
        """
        pixels = self.image.pixels
        colors = np.zeros((self.n_clusters + 1, pixels.shape[-1]), dtype=pixels.dtype)
        colors[1:] = self.cluster_sums.as_dtype(pixels.dtype, *_value_range_of(self.image))
        out = colors[self.labels]
        unlabelled = self.labels == 0
        if unlabelled.any():
            out[unlabelled] = pixels[unlabelled]
        if self.image.kind == "grey":
            return out[..., 0]
        if self.image.kind == "multichannel":
            assert self.image.channel_axis is not None  # a multichannel image names its axis
            return np.moveaxis(out, -1, self.image.channel_axis)
        return out

    def probabilities(self) -> ArrayT:
        """Posterior probability of each cluster at every pixel (methods whose model gives
        them, such as the Gaussian mixture).

        Returns
        -------
        ndarray of float32, shape ``(*spatial, k)``
            Column ``i`` is label ``i + 1`` (``k`` is the model's number of components:
            ``n_clusters``, plus any component that won no pixel, last); each pixel's
            values sum to 1, and pixels without data (label 0) are 0 everywhere. These
            are the fit's posteriors, before any clean-up (smooth, fill_holes,
            min_region) changed labels. Computed once per distinct feature row and mapped
            back to the pixels. A lazy result gives a dask array (chunks of the image,
            the cluster axis one chunk).

        Raises
        ------
        ValueError
            Starting ``method:`` when the method gives no probabilities (k-means, Ward,
            Canny, ...).
        """
        in_memory: Any = self  # a lazy result has its own (dask arrays)
        return in_memory._probabilities()

    def uncertainty(self, kind: str = "margin") -> ArrayT:
        """How uncertain each pixel's cluster is, from :meth:`probabilities`: float32 of
        the spatial shape in 0..1 (0 for pixels without data).

        ``kind`` ``"margin"``: 1 - the largest posterior; ``"entropy"``: the posteriors'
        entropy divided by log(k) (1: all clusters equally likely). Lazy results give a
        dask array."""
        in_memory: Any = self  # a lazy result has its own (dask arrays)
        return in_memory._uncertainty(kind)

    def _probabilities(self: Segmentation[np.ndarray]) -> np.ndarray:
        return probabilities(self._probability_labelling(), self.image)

    def _uncertainty(self: Segmentation[np.ndarray], kind: str) -> np.ndarray:
        return uncertainty(self._probability_labelling(), self.image, kind)

    def _probability_labelling(self) -> Labelling:
        """The model's labelling, when its method gives probabilities (else ValueError)."""
        model = self.model
        if model is None:
            raise ValueError(
                f"method: {self.method!r} gives no probabilities: it fits no model that "
                "scores each pixel's clusters; use a method whose model gives posterior "
                "probabilities, such as the Gaussian mixture ('gmm')."
            )
        return model.probability_labelling()

    def to_python(
        self,
        image: str | os.PathLike[str] | None = None,
        mask: str | os.PathLike[str] | None = None,
    ) -> str:
        """A short script that makes this result again: it reads the image (``image``: a
        file path, or the name of a variable that holds it; default a variable
        ``image`` a comment asks for), calls :func:`~.segment.segment` with every
        parameter of :attr:`params` (recorded stain vectors, not an estimate again) and
        leaves the labels in ``labels``. A run with a mask needs ``mask`` the same way.
        See :func:`~.reproduce.python_script`."""
        from .reproduce import python_script

        return python_script(self.params, image=image, mask=mask)

    def contours(self: Segmentation[np.ndarray], min_area: int = 20) -> list[Contour]:
        """Outline polygons of every connected region of each cluster.

        Parameters
        ----------
        min_area : int
            Regions smaller than this many pixels are left out.

        Returns
        -------
        list of Contour
            ``(label, area, vertices)``; vertices are ``(n, ndim)`` pixel coordinates in
            (row, column) order, with the plane index first for stacks.
        """
        return region_contours(self.labels, min_area)

    def objects(
        self: Segmentation[np.ndarray],
        clusters: int | Iterable[int],
        connectivity: int | None = None,
        scale: float | Sequence[float] = 1.0,
        table: pd.DataFrame | None = None,
    ) -> Objects:
        """The connected regions of ``clusters`` as instance labels (int32, 0 background,
        1..n) with a measurement table (area or volume and centroid in the units of
        ``scale``, perimeter in 2-D, mean of each channel, bounding box): see
        :func:`~.objects.label_objects`; ``table``: the cluster table that names the
        clusters (e.g. one edited in the Cluster table), default :attr:`table`. Results in
        memory only."""
        if self.is_lazy:
            raise ValueError(
                "objects need the labels in memory; compute the result first "
                "(np.asarray(seg.labels)) or segment an image in memory."
            )
        return label_objects(
            self.labels,
            clusters,
            self.table if table is None else table,
            connectivity,
            scale,
            self.image,
        )


def _value_range_of(data: ImageData[Any]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Lowest and highest usable value per channel of a float image; (None, None) for
    integer images (their means are exact and stay in range anyway)."""
    if not np.issubdtype(data.pixels.dtype, np.floating):
        return None, None
    values = data.pixels[data.mask]
    return values.min(axis=0), values.max(axis=0)
