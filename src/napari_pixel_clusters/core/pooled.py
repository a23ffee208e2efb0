"""One model for many images: :func:`segment_many` fits once on all their pixels.

The fit is exact, not on a sample: integer images clustered on their values are reduced
to their distinct values and pixel counts one image at a time, the histograms are summed
(the union of the distinct values, counts added), and the features are built once on the
union (:func:`~.features.build_features` with ``counts``), exactly as ``segment`` builds
them for one image holding every pixel of all of them. Float images, and spatial
features (each image's own pixel positions), are fitted on all their usable pixels
together (compressed to distinct values where ``segment`` would). Every image is then
labelled with the fitted rows' clusters (as ``segment`` labels its image: the fit's own
labels), so every image shares one numbering, one set of colors and one :class:`Model`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .cleanup import Cleanup
from .features import (
    FeatureSet,
    build_features,
    channel_ranges,
    distinct_rows,
    pack_keys,
    stain_options,
    unpack_keys,
    usable_values,
)
from .image import ImageData, read_image
from .labelling import feature_pipeline, label_of_component
from .lazy import is_lazy, is_multiscale
from .means import ClusterSums
from .methods import METHODS, get_method
from .methods._pointwise import check_rows, fit_summary
from .model import Model
from .model_check import word_list
from .provenance import package_versions
from .registry import N_CLUSTERS, Method, Steps, check_options, cleanup_options, drain
from .result import Segmentation, display_colors, hex_colors
from .segment import _cleanup_record, _provenance


@dataclass
class PooledImageSegmentation(Segmentation[np.ndarray]):
    """One image's result of :func:`segment_many`: the shared numbering, so its table
    lists every cluster of the pooled fit (0 pixels, and NaN means, for clusters this
    image has none of) in the shared colors; its ``model`` is the shared model."""

    #: (k, 3) display colors of the clusters of all images together
    shared_colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)

    @property
    def n_clusters(self) -> int:
        return len(self.shared_colors)

    @property
    def colors(self) -> np.ndarray:
        return self.shared_colors

    @cached_property
    def palette(self) -> np.ndarray:
        means = self.cluster_sums.means()
        means[self.cluster_sums.counts == 0] = np.nan
        return means


@dataclass
class PooledSegmentation:
    """What :func:`segment_many` returns: one result per image, fitted as one.

    Attributes
    ----------
    results : list of Segmentation
        One per image, in the order given: ``labels`` (the same cluster numbering in
        every image), ``table`` (this image's pixel counts and means), ``score`` (the
        one fit's), ``params`` (with ``"pooled": {"images", "index", "pixels"}``),
        ``quantized()``, ``contours()``, ``probabilities()``, and the shared ``model``.
    model : Model
        The one fitted model: ``model.predict(other_image)`` labels further images
        with the same numbering; ``save_model(pooled.model, path)`` saves it.
    score : dict
        The fit's scores (inertia; bic, aic, log_likelihood), over all images' pixels.
    params : dict
        Every parameter used, the shapes of the images and package versions.
    """

    results: list[Segmentation[np.ndarray]]
    model: Model
    score: dict[str, Any]
    params: dict[str, Any]
    colors: np.ndarray = field(repr=False)
    channel_names: list[str] = field(repr=False)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> Segmentation[np.ndarray]:
        return self.results[index]

    @property
    def n_clusters(self) -> int:
        return len(self.colors)

    @property
    def cluster_sums(self) -> ClusterSums:
        """Pixel count and value sums of each cluster over all images."""
        total = self.results[0].cluster_sums
        for result in self.results[1:]:
            total = total + result.cluster_sums
        return total

    @property
    def table(self) -> pd.DataFrame:
        """The pooled table: one row per cluster over all images (label, pixels,
        fraction, mean of each channel, color); each image's own is in ``results``."""
        sums = self.cluster_sums
        counts = sums.counts.astype(np.int64)
        table = pd.DataFrame(
            {
                "label": np.arange(1, self.n_clusters + 1),
                "pixels": counts,
                "fraction": counts / max(int(counts.sum()), 1),
            }
        )
        means = sums.means()
        for c, name in enumerate(self.channel_names):
            table[f"mean_{name}"] = means[:, c]
        table["color"] = hex_colors(self.colors)
        return table

    def tables(self) -> pd.DataFrame:
        """Every image's table, one under the other, with its ``image`` (0-based) first."""
        return pd.concat(
            [result.table.assign(image=i) for i, result in enumerate(self.results)],
            ignore_index=True,
        )[["image", *self.results[0].table.columns]]


def pooling_methods() -> list[Method]:
    """The methods :func:`segment_many` can use: those that fit feature rows
    (``fit_rows``) and label new pixels (``predictor``)."""
    return [m for m in METHODS.values() if m.fit_rows is not None and m.predictor is not None]


def segment_many(
    images: Sequence[Any],
    method: str = "kmeans",
    n_clusters: int | None = None,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    masks: Sequence[Any] | None = None,
    **options: Any,
) -> PooledSegmentation:
    """Fit one model on the pixels of all ``images`` and label each with it.

    The same as :func:`~.segment.segment` on one image holding every pixel of all of
    them (exactly: distinct values' counts are summed over the images), then every image
    labelled with the same cluster numbering. Images may differ in size; they must be of
    the same kind (grey, RGB, RGBA, multichannel), channels and dtype.

    Parameters
    ----------
    images : list of array_like
        Images in memory (numpy arrays), read as ``segment`` reads one (``rgb``,
        ``channel_axis`` apply to all).
    method : str
        A method that fits feature rows and labels new pixels ("kmeans", "gmm");
        others are a ValueError starting with "method:".
    n_clusters : int
        Number of clusters of the one fit.
    masks : list of (array_like or None), optional
        One per image (None: the whole image), as ``segment``'s ``mask``.
    **options
        As for ``segment``: feature options, ``random_state``, the method's parameters
        and the clean-up options (applied to each image's labels; the model keeps them).
        With ``spatial_weight`` > 0 the positions are each image's own (the images
        then need the same number of axes).

    Returns
    -------
    PooledSegmentation
        ``results`` (one :class:`Segmentation` per image), ``model``, ``table`` (all
        images together), ``score``, ``params``.

    Raises
    ------
    ValueError
        Starting with the argument's name: "images:" for an empty list, an image that
        cannot be read, is not in memory, or differs in kind, channels or dtype from the
        first; "masks:", "method:", "n_clusters:" and the options as for ``segment``.

    Examples
    --------
    >>> from skimage import data
    >>> photo = data.astronaut()
    >>> pooled = segment_many([photo[:256], photo[256:]], "kmeans", 4, random_state=0)
    >>> [r.labels.shape for r in pooled.results], pooled.n_clusters
    ([(256, 512), (256, 512)], 4)
    """
    return drain(
        segment_many_steps(
            images, method, n_clusters, rgb=rgb, channel_axis=channel_axis, masks=masks, **options
        )
    )


def segment_many_steps(
    images: Sequence[Any],
    method: str = "kmeans",
    n_clusters: int | None = None,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    masks: Sequence[Any] | None = None,
    **options: Any,
) -> Steps[PooledSegmentation]:
    """:func:`segment_many` as a generator of ``(stage, fraction)`` steps.

    Everything is validated (every image read) before the first yield; closing the
    generator between steps abandons the run."""
    chosen = _check_method(method)
    k = _check_n_clusters(chosen, n_clusters)
    feature_options, params = check_options(chosen, options)
    cleanup = Cleanup(**cleanup_options(chosen, options))
    datas = _read_images(images, masks, rgb, channel_axis, feature_options["spatial_weight"])
    started = time.perf_counter()
    yield "features", 0.0
    pool = _pool(datas, feature_options)
    check_rows(k, pool.feature_set, pool.rows_are)
    fit_rows, predictor = chosen.fit_rows, chosen.predictor
    assert fit_rows is not None and predictor is not None  # _check_method checked them
    fit = yield from fit_rows(pool.feature_set, k, params, feature_options["random_state"])
    found = np.unique(fit.labels)  # label i + 1 is component found[i] (as segment numbers)
    n_components = len(fit.model[predictor.components_key])
    label_of = label_of_component(n_components, found)
    row_labels = label_of[fit.labels]
    summary = fit_summary(fit, pool.feature_set)
    labelled: list[tuple[np.ndarray, ClusterSums | None, int]] = []
    for i, data in enumerate(datas):
        yield "labels", i / len(datas)
        labelled.append(_labels_of(pool, i, data, row_labels, len(found), cleanup))
    seconds = time.perf_counter() - started
    colors = _shared_colors(datas, labelled, len(found))
    model = _model(chosen, datas[0], feature_options, pool.feature_set, fit.model, found, colors)
    if cleanup.active:
        model.cleanup = cleanup.as_dict()
    n_pixels = int(sum(int((labels > 0).sum()) for labels, _, _ in labelled))
    results: list[Segmentation[np.ndarray]] = []
    for i, (data, (labels, sums, changed)) in enumerate(zip(datas, labelled)):
        provenance = _provenance(
            chosen,
            data,
            k,
            feature_options,
            params | _cleanup_record(chosen, cleanup, changed),
            summary["details"],
            found + 1,
            seconds,
        )
        provenance["pooled"] = {"images": len(datas), "index": i, "pixels": n_pixels}
        result = PooledImageSegmentation(
            labels=labels,
            image=data,
            score=dict(fit.score),
            params=provenance,
            fitted=fit.model,
            known_sums=sums,
            shared_colors=colors,
        )
        result.__dict__["model"] = model  # the shared model (cached_property slot)
        results.append(result)
    shared = {key: value for key, value in results[0].params.items() if key != "mask"}
    shared["image"] = [result.params["image"] for result in results]
    shared["pooled"] = {"images": len(datas), "pixels": n_pixels}
    return PooledSegmentation(
        results, model, dict(fit.score), shared, colors, datas[0].channel_names
    )


# ---------------------------------------------------------------------- checks
def _check_method(name: str) -> Method:
    method = get_method(name)
    if method.fit_rows is None or method.predictor is None:
        usable = [f"{m.title} ({m.name!r})" for m in pooling_methods()]
        raise ValueError(
            f"method: {method.name!r} cannot fit one model on several images (it fits no "
            f"model that labels new pixels); use {word_list(usable, 'or')}."
        )
    return method


def _check_n_clusters(method: Method, n_clusters: object) -> int:
    if n_clusters is None:
        raise ValueError(
            f"n_clusters: method {method.name!r} needs the number of clusters, e.g. n_clusters=5."
        )
    return int(N_CLUSTERS.check(n_clusters))


def _read_images(
    images: object,
    masks: object,
    rgb: bool | None,
    channel_axis: int | None,
    spatial_weight: float,
) -> list[ImageData[np.ndarray]]:
    """Every image read (with its mask), all of one kind, channels and dtype."""
    if isinstance(images, (np.ndarray, str, bytes)) or not isinstance(images, Sequence):
        raise ValueError(
            f"images: expected a list of images (arrays), got {type(images).__name__}; "
            "for one image use segment()."
        )
    n = len(images)
    if n == 0:
        raise ValueError("images: the list is empty; give at least one image.")
    if masks is not None and (
        isinstance(masks, (np.ndarray, str, bytes))
        or not isinstance(masks, Sequence)
        or len(masks) != n
    ):
        raise ValueError(
            f"masks: expected a list of {n} masks (one per image, None for a whole "
            f"image), got {_described(masks)}."
        )
    datas = [
        _read_one(image, None if masks is None else masks[i], i, n, rgb, channel_axis)
        for i, image in enumerate(images)
    ]
    first = datas[0]
    for i, data in enumerate(datas[1:], start=2):
        kind, first_kind = image_kind(data), image_kind(first)
        if kind != first_kind:
            raise ValueError(
                f"images: image {i} is {kind}, but image 1 is {first_kind}; one model is "
                "fitted on images of one kind: give images with the same channels and "
                "dtype (convert them first)."
            )
        if spatial_weight > 0 and len(data.spatial_shape) != len(first.spatial_shape):
            raise ValueError(
                f"images: image {i} has {len(data.spatial_shape)} spatial axes and image 1 "
                f"{len(first.spatial_shape)}; with spatial_weight > 0 the positions are "
                "features, so give images with the same number of axes."
            )
    return datas


def _described(value: object) -> str:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return f"{len(value)}"
    return type(value).__name__


def _read_one(
    image: Any,
    mask: Any,
    i: int,
    n: int,
    rgb: bool | None,
    channel_axis: int | None,
) -> ImageData[np.ndarray]:
    """Image ``i`` (0-based) of ``n``; its errors name it ("images: image 2 of 3: ...")."""
    if is_multiscale(image) or is_lazy(image):
        raise ValueError(
            f"images: image {i + 1} of {n} is larger than memory (a dask or zarr array, "
            "or a pyramid); segment_many fits on images in memory: load it with "
            "numpy.asarray, or label it with the fitted model (pooled.model.predict)."
        )
    try:
        return read_image(image, rgb=rgb, channel_axis=channel_axis, mask=mask)
    except ValueError as error:
        text = str(error)
        for name in ("image", "mask"):
            if text.startswith(f"{name}: "):
                rest = text[len(name) + 2 :]
                raise ValueError(f"{name}s: {name} {i + 1} of {n}: {rest}") from None
        raise


def image_kind(data: ImageData[Any]) -> str:
    """What images pooled together share, in words: kind, channels and dtype."""
    return f"{data.kind} ({data.n_channels} channel(s) of {data.pixels.dtype})"


# ---------------------------------------------------------------------- pooling
@dataclass
class _Pool:
    """The rows fitted on and where each image's pixels are among them.

    ``pixel_rows[i]``: the row of each usable pixel of image ``i`` (C order);
    ``distinct[i]``: image ``i``'s distinct values as (rows of the union, values,
    counts), for its cluster sums without touching its pixels (None: summed from the
    pixels)."""

    feature_set: FeatureSet
    pixel_rows: list[np.ndarray]
    distinct: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None
    rows_are: str


def _pool(datas: list[ImageData[np.ndarray]], feature_options: dict[str, Any]) -> _Pool:
    dtype = datas[0].pixels.dtype
    counted = np.issubdtype(dtype, np.integer) or dtype == np.bool_
    if counted and feature_options["spatial_weight"] == 0:
        return _summed_histograms(datas, feature_options)
    return _all_pixels(datas, feature_options)


def _as_image(values: np.ndarray, kind: str) -> ImageData[np.ndarray]:
    """Pixel values ``(n, C)`` as an image of n x 1 usable pixels."""
    return ImageData(values[:, None, :], kind, np.ones((len(values), 1), bool), None)


def _summed_histograms(
    datas: list[ImageData[np.ndarray]], feature_options: dict[str, Any]
) -> _Pool:
    """Each image's distinct values and counts, summed over the images (exact)."""
    parts = [distinct_rows(usable_values(data)) for data in datas]
    every = np.concatenate([rows for rows, _, _ in parts])
    union, where = _union_rows(every)
    counts = np.bincount(
        where, weights=np.concatenate([c for _, c, _ in parts]), minlength=len(union)
    )
    feature_set = build_features(
        _as_image(union, datas[0].kind),
        color_space=feature_options["color_space"],
        standardize=feature_options["standardize"],
        counts=counts,
        **stain_options(feature_options),
    )
    feature_set.compression = (
        f"pooled: distinct values of {len(datas)} images summed: {len(union):,} rows for "
        f"{int(counts.sum()):,} pixels"
    )
    ends = np.cumsum([len(rows) for rows, _, _ in parts])
    positions = np.split(where, ends[:-1])
    return _Pool(
        feature_set,
        [position[inverse] for position, (_, _, inverse) in zip(positions, parts)],
        [(position, rows, c) for position, (rows, c, _) in zip(positions, parts)],
        "distinct pixel values",
    )


def _union_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct rows of integer ``rows`` and the union row of each."""
    lows, spans = channel_ranges(rows)
    if int(np.prod(spans, dtype=object)) < 2**62:
        keys, where = np.unique(pack_keys(rows, lows, spans), return_inverse=True)
        return unpack_keys(keys, lows, spans, rows.dtype), where.reshape(-1)
    union, where = np.unique(rows, axis=0, return_inverse=True)
    return union, where.reshape(-1)


def _all_pixels(datas: list[ImageData[np.ndarray]], feature_options: dict[str, Any]) -> _Pool:
    """Every usable pixel of every image (compressed as ``segment`` would), with each
    image's own positions for spatial features."""
    values = np.concatenate([usable_values(data) for data in datas])
    spatial = feature_options["spatial_weight"] > 0
    coordinates = (
        np.concatenate([np.stack(np.nonzero(data.mask), axis=1) for data in datas])
        if spatial
        else None
    )
    feature_set = build_features(
        _as_image(values, datas[0].kind),
        color_space=feature_options["color_space"],
        spatial_weight=feature_options["spatial_weight"],
        standardize=feature_options["standardize"],
        coordinates=coordinates,
        **stain_options(feature_options),
    )
    feature_set.compression = f"pooled: {len(datas)} images; {feature_set.compression}"
    rows = feature_set.inverse if feature_set.inverse is not None else np.arange(len(values))
    ends = np.cumsum([int(data.mask.sum()) for data in datas])
    compressed = feature_set.weights is not None
    return _Pool(
        feature_set,
        np.split(rows, ends[:-1]),
        None,
        "distinct pixel values" if compressed else "usable pixels",
    )


def _labels_of(
    pool: _Pool,
    i: int,
    data: ImageData[np.ndarray],
    row_labels: np.ndarray,
    k: int,
    cleanup: Cleanup,
) -> tuple[np.ndarray, ClusterSums | None, int]:
    """Image ``i``'s labels, its cluster sums (None: from the pixels) and the pixels the
    clean-up changed."""
    labels = np.zeros(data.spatial_shape, dtype=np.int32)
    labels[data.mask] = row_labels[pool.pixel_rows[i]]
    sums = None
    if pool.distinct is not None:
        rows, values, counts = pool.distinct[i]
        sums = ClusterSums.of(row_labels[rows], values, k + 1, counts).take(slice(1, None))
    if not cleanup.active:
        return labels, sums, 0
    cleaned = cleanup.apply(labels)
    changed = int(np.count_nonzero(cleaned != labels))
    return cleaned, sums if changed == 0 else None, changed


def _shared_colors(
    datas: list[ImageData[np.ndarray]],
    labelled: list[tuple[np.ndarray, ClusterSums | None, int]],
    k: int,
) -> np.ndarray:
    """(k, 3) display colors of the clusters' means over all images, scaled to the
    values of all images (as one image holding them all would be)."""
    total = ClusterSums.empty(k, datas[0].n_channels, datas[0].pixels.dtype)
    for data, (labels, sums, _) in zip(datas, labelled):
        if sums is None:
            pixels = data.pixels.reshape(-1, data.n_channels)
            sums = ClusterSums.of(labels.ravel(), pixels, k + 1).take(slice(1, None))
        total = total + sums
    values = [usable_values(data) for data in datas]
    extremes = np.stack(
        [
            np.min([v.min(axis=0) for v in values], axis=0),
            np.max([v.max(axis=0) for v in values], axis=0),
        ]
    ).astype(datas[0].pixels.dtype)
    display = ImageData(extremes[:, None, :], datas[0].kind, np.ones((2, 1), bool), None)
    return display_colors(total.means(), display)


def _model(
    method: Method,
    first: ImageData[np.ndarray],
    feature_options: dict[str, Any],
    feature_set: FeatureSet,
    fitted: dict[str, Any],
    found: np.ndarray,
    colors: np.ndarray,
) -> Model:
    """The one model: the fit with its feature pipeline and the shared numbering."""
    model = Model(
        method=method.name,
        image={
            "kind": first.kind,
            "n_channels": first.n_channels,
            "dtype": str(first.pixels.dtype),
        },
        pipeline=feature_pipeline(feature_options, feature_set.names, feature_set.standardization),
        parameters={
            key: value if isinstance(value, str) else np.asarray(value).tolist()
            for key, value in fitted.items()
        },
        clusters=[
            {
                "label": label,
                "component": int(component),
                "name": f"cluster {label}",
                "color": color,
            }
            for label, component, color in zip(range(1, len(found) + 1), found, hex_colors(colors))
        ],
        provenance={
            "versions": package_versions(),
            "source_image": {"pooled": True, "compression": feature_set.compression},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    model.check()
    return model
