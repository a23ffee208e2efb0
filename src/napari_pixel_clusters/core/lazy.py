"""Images larger than memory (dask arrays): exact k-means and Gaussian mixtures, lazily.

A colour histogram is a sum over chunks. The distinct values of an integer image and
their pixel counts are accumulated chunk by chunk (one chunk in memory at a time, one
progress step each), the method is fitted on them exactly as for an image in memory, and
the labels come back as a dask array: each chunk is labelled on demand by looking its
pixels' values up in the fitted table.

So far: k-means and Gaussian mixtures of integer grey or RGB images, on colour features
(no spatial weight). Other cases raise a ValueError that says so.
"""

from __future__ import annotations

import time
from functools import cached_property

import numpy as np

from .features import (
    FeatureSet,
    _standardize,
    channel_ranges,
    colour_coordinates,
    pack_keys,
    unpack_keys,
)
from .image import ImageData, guess_rgb
from .methods import get_method
from .methods._pointwise import row_palette
from .registry import N_CLUSTERS, check_options
from .result import Segmentation, display_colors


def is_lazy(image) -> bool:
    """True for dask arrays (what napari holds for large images)."""
    return hasattr(image, "dask") and hasattr(image, "chunks") and hasattr(image, "blocks")


def _channels_last(image, rgb):
    is_rgb = guess_rgb(image.shape) if rgb is None else bool(rgb)
    if is_rgb and image.shape[-1] == 4:
        raise ValueError("image: lazy RGBA images are not supported yet; drop the alpha "
                         "channel (image[..., :3]) or compute the image first.")
    pixels = image if is_rgb else image[..., None]
    if pixels.ndim < 3:
        raise ValueError(f"image: needs at least two spatial axes, got shape {image.shape}.")
    return pixels.rechunk({pixels.ndim - 1: -1}), ("rgb" if is_rgb else "grey")


def _check_supported(spec, features, image, channel_axis):
    if spec.fit_rows is None:
        raise ValueError(
            f"method: {spec.name!r} is not available for lazy (dask) images yet; use "
            "'kmeans' or 'gmm', or compute a smaller level first (np.asarray(level)).")
    if features["spatial_weight"] > 0:
        raise ValueError("spatial_weight: lazy images are clustered on their values only "
                         "so far; use spatial_weight=0.")
    if channel_axis is not None:
        raise ValueError("channel_axis: lazy multichannel images are not supported yet.")
    if not (np.issubdtype(image.dtype, np.integer) or image.dtype == bool):
        raise ValueError(f"image: lazy images of dtype {image.dtype} are not supported yet; "
                         "integer images (8/16-bit) are.")


def _ranges(pixels):
    if pixels.dtype in (np.uint8, np.uint16, np.bool_):
        return channel_ranges(np.zeros((1, pixels.shape[-1]), pixels.dtype))
    lows = [int(v) for v in pixels.min(axis=tuple(range(pixels.ndim - 1))).compute()]
    highs = [int(v) for v in pixels.max(axis=tuple(range(pixels.ndim - 1))).compute()]
    return lows, [high - low + 1 for low, high in zip(lows, highs)]


#: Per-chunk histograms are merged in batches of this many chunks (one sort per batch).
MERGE_EVERY = 16


def _merge(histograms):
    """Merge (keys, counts) pairs into one sorted histogram."""
    merged, inverse = np.unique(np.concatenate([k for k, _ in histograms]),
                                return_inverse=True)
    return merged, np.bincount(inverse, weights=np.concatenate([c for _, c in histograms]))


def lazy_segment_steps(image, method, n_clusters, rgb=None, channel_axis=None, **options):
    """:func:`segment` for a dask array: yields ``("histogram", fraction)`` per chunk."""
    spec = get_method(method)
    k = N_CLUSTERS.check(n_clusters) if n_clusters is not None else None
    if k is None:
        raise ValueError(f"n_clusters: method {method!r} needs the number of clusters.")
    features, params = check_options(spec, options)
    _check_supported(spec, features, image, channel_axis)
    pixels, kind = _channels_last(image, rgb)
    color_space = features["color_space"] or ("rgb" if kind == "rgb" else None)
    if kind == "grey" and features["color_space"] is not None:
        raise ValueError("color_space: applies to RGB images; this image is grey.")
    started = time.perf_counter()
    lows, spans = _ranges(pixels)
    histograms = [(np.zeros(0, np.int64), np.zeros(0))]
    blocks = list(np.ndindex(pixels.numblocks[:-1]))
    for i, index in enumerate(blocks):
        yield "histogram", i / len(blocks)
        block = np.asarray(pixels.blocks[index + (0,)]).reshape(-1, pixels.shape[-1])
        histograms.append(np.unique(pack_keys(block, lows, spans), return_counts=True))
        if len(histograms) > MERGE_EVERY:
            histograms = [_merge(histograms)]
    keys, counts = _merge(histograms)
    rows = unpack_keys(keys, lows, spans, pixels.dtype)
    if color_space is None:
        X, names = rows.astype(np.float64), ["intensity"]
    else:
        X, names = colour_coordinates(rows, color_space)
    standardization = {}
    if features["standardize"]:
        X, standardization = _standardize(X, counts, {})
    feature_set = FeatureSet(X, counts, None, rows, names,
                             f"lazy: distinct values: {len(rows):,} rows for "
                             f"{int(counts.sum()):,} pixels in {len(blocks)} chunks",
                             standardization)
    if k > len(X):
        raise ValueError(f"n_clusters: {k} clusters were asked for, but the image has only "
                         f"{len(X)} distinct pixel values; use n_clusters of at most {len(X)}.")
    fit = yield from spec.fit_rows(feature_set, k, params, features["random_state"])
    yield "predict", 1.0
    found = np.unique(fit.labels)
    label_of_component = np.zeros(k, dtype=np.int32)
    label_of_component[found] = np.arange(1, len(found) + 1, dtype=np.int32)
    row_labels = label_of_component[fit.labels]
    lookup = (keys, row_labels, lows, spans)
    labels = _label_array(pixels, lookup)
    data = ImageData(pixels=pixels, kind=kind, mask=None, channel_axis=None)
    palette = row_palette(feature_set, fit.labels, k)[found]
    pixel_counts = np.bincount(fit.labels, weights=counts, minlength=k)[found]
    params = {
        "method": spec.name, "n_clusters_requested": k, "n_clusters_found": len(found),
        "cluster_components": [int(c) for c in found], **features,
        "color_space": color_space if kind == "rgb" else None, **params,
        "compression": feature_set.compression, "features": names, **fit.details,
        **standardization,
        "image": {"shape": list(image.shape), "dtype": str(image.dtype), "kind": kind,
                  "chunks": [list(c) for c in image.chunks], "lazy": True},
        "seconds": round(time.perf_counter() - started, 4),
    }
    from .segment import package_versions

    params["versions"] = package_versions()
    return LazySegmentation(labels=labels, image=data, score=fit.score, params=params,
                            fitted=fit.model, known_palette=palette,
                            known_counts=pixel_counts.astype(np.int64), value_rows=rows,
                            lookup=lookup)


def _label_array(pixels, lookup):
    return pixels.map_blocks(_label_chunk, *lookup, dtype=np.int32, drop_axis=pixels.ndim - 1)


def _label_chunk(chunk, keys, row_labels, lows, spans):
    values = chunk.reshape(-1, chunk.shape[-1])
    positions = np.searchsorted(keys, pack_keys(values, lows, spans))
    return row_labels[positions].reshape(chunk.shape[:-1])


def _label_known_chunk(chunk, keys, row_labels, lows, spans):
    """Like :func:`_label_chunk`, but values outside the fitted table get label 0."""
    values = chunk.reshape(-1, chunk.shape[-1])
    in_range = np.all((values >= np.asarray(lows)) & (values < np.asarray(lows) + spans), 1)
    packed = pack_keys(np.where(in_range[:, None], values, np.asarray(lows)), lows, spans)
    positions = np.minimum(np.searchsorted(keys, packed), len(keys) - 1)
    known = in_range & (keys[positions] == packed)
    return np.where(known, row_labels[positions], 0).astype(np.int32).reshape(chunk.shape[:-1])


class LazySegmentation(Segmentation):
    """A :class:`Segmentation` whose ``labels`` and ``quantized()`` are dask arrays."""

    def __init__(self, *, known_counts, value_rows, lookup, **fields):
        super().__init__(**fields)
        self._known_counts = known_counts
        self._value_rows = value_rows
        self._lookup = lookup

    def labels_of(self, level):
        """Labels of another level of the same image (a pyramid level), as a dask array.

        Values the fit never saw get label 0 (they cannot occur in levels made by
        subsampling; averaged levels can hold new values)."""
        import dask.array as da

        pixels, _ = _channels_last(da.asarray(level), self.image.kind == "rgb")
        keys, row_labels, lows, spans = self._lookup
        return pixels.map_blocks(_label_known_chunk, keys, row_labels, lows, spans,
                                 dtype=np.int32, drop_axis=pixels.ndim - 1)

    @property
    def n_clusters(self) -> int:
        return len(self._known_counts)

    @cached_property
    def pixel_counts(self) -> np.ndarray:
        return self._known_counts

    @property
    def colors(self) -> np.ndarray:
        if self.image.kind == "rgb":
            rows = self._value_rows
            return display_colors(self.palette, ImageData(rows[None], "rgb", None, None))
        low, high = self._value_rows.min(), self._value_rows.max()
        grey = (self.palette[:, 0] - low) / (high - low if high > low else 1)
        return np.repeat(np.clip(grey, 0, 1)[:, None], 3, axis=1)

    def quantized(self, labels=None):
        """The image with each pixel its cluster's mean colour, as a dask array (of
        ``labels``, e.g. a pyramid level from :meth:`labels_of`; default the result's)."""
        labels = self.labels if labels is None else labels
        dtype = self.image.pixels.dtype
        colours = np.zeros((self.n_clusters + 1, self.image.n_channels), dtype=dtype)
        info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
        colours[1:] = (np.clip(np.rint(self.palette), info.min, info.max) if info
                       else self.palette).astype(dtype)
        if self.image.kind == "grey":
            return labels.map_blocks(lambda b: colours[b, 0], dtype=dtype)
        return labels.map_blocks(lambda b: colours[b], dtype=dtype, new_axis=labels.ndim,
                                 chunks=(*labels.chunks, (colours.shape[1],)))

    def contours(self, min_area: int = 20):
        from .contours import region_contours

        return region_contours(np.asarray(self.labels), min_area)
