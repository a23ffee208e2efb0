"""``segment``: the one entry point the widgets, the command line and scripts call."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from .cleanup import Cleanup, lazy_cleanup_steps
from .image import ImageData, mask_record, read_image
from .lazy import LazySegmentation, is_lazy, is_multiscale, read_lazy_image
from .methods import get_method
from .model import Model
from .provenance import package_versions, plain
from .registry import N_CLUSTERS, Method, Steps, check_options, cleanup_options, drain
from .result import Segmentation, compact_labels

if TYPE_CHECKING:
    import dask.array as da


@overload
def segment(
    image: da.Array | Sequence[da.Array],
    method: str = ...,
    n_clusters: int | None = ...,
    *,
    rgb: bool | None = ...,
    channel_axis: int | None = ...,
    mask: Any = ...,
    **options: Any,
) -> LazySegmentation: ...


@overload
def segment(
    image: npt.ArrayLike,
    method: str = ...,
    n_clusters: int | None = ...,
    *,
    rgb: bool | None = ...,
    channel_axis: int | None = ...,
    mask: Any = ...,
    **options: Any,
) -> Segmentation[np.ndarray]: ...


def segment(
    image: Any,
    method: str = "kmeans",
    n_clusters: int | None = None,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    mask: Any = None,
    **options: Any,
) -> Segmentation[Any]:
    """Group the pixels of ``image`` into clusters, or find its edges.

    Parameters
    ----------
    image : array_like
        2-D grey, 2-D RGB/RGBA, 3-D stack (z, y, x), or multichannel with
        ``channel_axis``; any integer or float dtype. Non-finite pixels (and fully
        transparent RGBA pixels) get label 0. Float values beyond +-1e100 are refused
        (a ValueError starting "image:"): their squares would overflow float64. Means of
        integer pixels are exact, even at the limits of uint64 and int64. Dask and zarr
        arrays, and pyramids (a
        list of levels, full size first), are read chunk by chunk and give lazy results
        (``labels`` as a dask array; ``labels_pyramid()`` for a pyramid).
    method : str
        The name of a method of ``METHODS`` (default ``"kmeans"``): see
        there for each one's parameters, defaults and limits.
    n_clusters : int
        Number of clusters; required by every method that takes one
        (``METHODS[method].needs_n_clusters``), refused by the others.
    rgb : bool or None
        Whether the last axis holds RGB(A); None guesses like napari.
    channel_axis : int or None
        Axis of a multichannel image that holds the channels (each channel a feature).
    mask : array_like or None
        Only these pixels are segmented: an array of the image's spatial shape (its
        shape without the channel axis) of booleans or integers, non-zero inside (a
        labels image works as it is). Pixels outside get label 0 and take no part in
        the fit, the table or the scores, as pixels without data; Ward's pixel grid is
        restricted to it, Canny's thresholds are relative to the largest value inside.
        For a dask image it may be a dask array (rechunked to the image's chunks) or a
        numpy array; for a pyramid it is the full-size level's. ``params["mask"]``
        records ``{"pixels_inside", "pixels"}``. A bad mask is a ValueError starting
        with "mask:".
    **options
        The feature options the method takes (``METHODS[method].takes_features``, from
        ``FEATURE_PARAMS``: ``color_space`` "rgb", "lab", "hsv", "hed", "hdab" or
        "stains" (stain concentrations) for RGB images, None for the method's default;
        ``stain_vectors`` with "stains" only: "estimate" (Macenko, background below
        ``stain_background`` optical density, default 0.15, left out) or 2-3 rows of
        RGB optical densities, optionally named (a dict); the vectors used are in
        ``params["stain_vectors"]`` and the model; ``spatial_weight``;
        ``standardize``), ``random_state`` if it uses one, and its own parameters
        (``METHODS[method].params``). Clustering methods (``takes_cleanup``) also take
        the clean-up options of ``CLEANUP_PARAMS``, applied after the fit and before the
        table in this order: ``smooth`` (majority filter radius), ``fill_holes`` (holes
        of at most this many pixels take the enclosing cluster's label) and
        ``min_region`` (smaller regions take the label of their longest border): see
        :mod:`.cleanup`. All 0 (off) by default; ``params`` records them and
        ``cleanup_changed_pixels``.

    Returns
    -------
    Segmentation
        ``labels``, ``n_clusters``, ``palette``, ``table``, ``score``, ``params``,
        ``quantized()``, ``contours()``.

    Raises
    ------
    ValueError
        If the image or a parameter cannot be used; the message names the argument.

    Examples
    --------
    >>> from skimage import data
    >>> seg = segment(data.astronaut(), "kmeans", n_clusters=4, color_space="lab")
    >>> seg.labels.shape, seg.n_clusters
    ((512, 512), 4)
    """
    return drain(
        segment_steps(
            image, method, n_clusters, rgb=rgb, channel_axis=channel_axis, mask=mask, **options
        )
    )


@overload
def segment_steps(
    image: da.Array | Sequence[da.Array],
    method: str = ...,
    n_clusters: int | None = ...,
    *,
    rgb: bool | None = ...,
    channel_axis: int | None = ...,
    mask: Any = ...,
    **options: Any,
) -> Steps[LazySegmentation]: ...


@overload
def segment_steps(
    image: npt.ArrayLike,
    method: str = ...,
    n_clusters: int | None = ...,
    *,
    rgb: bool | None = ...,
    channel_axis: int | None = ...,
    mask: Any = ...,
    **options: Any,
) -> Steps[Segmentation[np.ndarray]]: ...


def segment_steps(
    image: Any,
    method: str = "kmeans",
    n_clusters: int | None = None,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    mask: Any = None,
    **options: Any,
) -> Steps[Segmentation[Any]]:
    """:func:`segment` as a generator: yields ``(stage, fraction)``, returns the result.

    Everything is validated before the first yield, so bad input raises at once. Closing
    the generator between steps abandons the run (how the napari widget cancels).
    """
    if is_multiscale(image):  # a pyramid: fitted on the full-size level, lazily
        result = yield from _lazy_steps(
            image[0],
            get_method(method),
            n_clusters,
            rgb,
            channel_axis,
            options,
            levels=image,
            mask=mask,
        )
        result.levels = list(image)
        return result
    if is_lazy(image):  # larger than memory: chunk by chunk, labels as a dask array
        return (
            yield from _lazy_steps(
                image, get_method(method), n_clusters, rgb, channel_axis, options, mask=mask
            )
        )
    return (
        yield from _in_memory_steps(
            image, get_method(method), n_clusters, rgb, channel_axis, options, mask=mask
        )
    )


def _in_memory_steps(
    image: npt.ArrayLike,
    method: Method,
    n_clusters: int | None,
    rgb: bool | None,
    channel_axis: int | None,
    options: dict[str, Any],
    mask: Any = None,
) -> Steps[Segmentation[np.ndarray]]:
    image_data = read_image(image, rgb=rgb, channel_axis=channel_axis, mask=mask)
    k = _check_n_clusters(method, n_clusters)
    feature_options, params = check_options(method, options)
    cleanup = Cleanup(**cleanup_options(method, options))
    started = time.perf_counter()
    yield "features", 0.0
    output = yield from method.run(image_data, k, feature_options, params)
    labels, changed = output.labels, 0
    if cleanup.active:  # before the table: counts and means are of the cleaned labels
        yield "clean-up", 0.0
        labels = cleanup.apply(output.labels)
        changed = int(np.count_nonzero(labels != output.labels))
    known = None if changed or output.cluster_sums is None else output.cluster_sums.counts
    labels, kept = compact_labels(labels, known)  # counted from the sums when known
    sums = None if changed or output.cluster_sums is None else output.cluster_sums.take(kept - 1)
    seconds = time.perf_counter() - started
    return Segmentation(
        labels=labels,
        image=image_data,
        score=output.score,
        params=_provenance(
            method,
            image_data,
            k,
            feature_options,
            params | _cleanup_record(method, cleanup, changed),
            output.details,
            kept,
            seconds,
        ),
        fitted=output.model,
        known_sums=sums,
        make_model=_model_maker(method),
    )


def _lazy_steps(
    image: Any,
    method: Method,
    n_clusters: int | None,
    rgb: bool | None,
    channel_axis: int | None,
    options: dict[str, Any],
    levels: Sequence[Any] = (),
    mask: Any = None,
) -> Steps[LazySegmentation]:
    """A dask image (``levels``: the pyramid it is the full-size level of, if any;
    ``mask``: the caller's, at full size)."""
    if method.lazy_run is None:
        raise ValueError(
            f"method: {method.name!r} needs the whole image in memory and cannot segment "
            "an image larger than memory (a dask or zarr array, or a pyramid); load it "
            "(or a part of it) with numpy.asarray first, or use another method."
        )
    data = read_lazy_image(image, rgb=rgb, channel_axis=channel_axis, mask=mask)
    k = _check_n_clusters(method, n_clusters)
    feature_options, params = check_options(method, options)
    cleanup = Cleanup(**cleanup_options(method, options))
    started = time.perf_counter()
    output = yield from method.lazy_run(data, k, feature_options, params, levels)
    changed = 0
    if cleanup.active:  # a counting pass over the cleaned chunks: an exact table
        output, changed = yield from lazy_cleanup_steps(data, output, cleanup)
    kept = output.components + 1
    seconds = time.perf_counter() - started
    provenance = _provenance(
        method,
        data,
        k,
        feature_options,
        params | _cleanup_record(method, cleanup, changed),
        output.details,
        kept,
        seconds,
    )
    provenance["image"] |= {"lazy": True, "chunks": [list(c) for c in data.pixels.chunks]}
    return LazySegmentation(
        labels=output.labeller.array(data),
        image=data,
        score=output.score,
        params=provenance,
        fitted=output.model,
        tally=output.tally,
        labeller=output.labeller,
        make_model=_model_maker(method),
    )


def _cleanup_record(method: Method, cleanup: Cleanup, changed: int) -> dict[str, int]:
    """The clean-up options (0: off) and how many pixels they changed, for the methods
    that take them."""
    if not method.takes_cleanup:
        return {}
    return cleanup.as_dict() | {"cleanup_changed_pixels": changed}


def _model_maker(method: Method) -> Callable[[Segmentation[Any]], Model] | None:
    """What makes a result's model: methods with a predictor have one."""
    return Model.from_segmentation if method.predictor is not None else None


def _check_n_clusters(method: Method, n_clusters: object) -> int | None:
    if not method.needs_n_clusters:
        if n_clusters is not None:
            finds = (
                "finds edges" if method.output == "edges" else "chooses how many clusters it finds"
            )
            raise ValueError(
                f"n_clusters: method {method.name!r} {finds} and takes no number of "
                "clusters; leave n_clusters out."
            )
        return None
    if n_clusters is None:
        raise ValueError(
            f"n_clusters: method {method.name!r} needs the number of clusters, e.g. n_clusters=5."
        )
    return N_CLUSTERS.check(n_clusters)


def _provenance(
    method: Method,
    image_data: ImageData[Any],
    k: int | None,
    feature_options: dict[str, Any],
    params: dict[str, Any],
    details: dict[str, Any],
    kept: np.ndarray,
    seconds: float,
) -> dict[str, Any]:
    used = {p.name: feature_options[p.name] for p in method.feature_params()}
    if method.uses_random_state:
        used["random_state"] = feature_options["random_state"]
    return {
        "method": method.name,
        "n_clusters_requested": k,
        "n_clusters_found": len(kept),
        "cluster_components": [int(c) - 1 for c in kept],  # label i+1 <- component
        **used,
        **{name: plain(value) for name, value in params.items()},
        **{name: plain(value) for name, value in details.items()},
        "image": plain(
            {
                "shape": list(image_data.pixels.shape),
                "dtype": str(image_data.pixels.dtype),
                "kind": image_data.kind,
                "channel_axis": image_data.channel_axis,
            }
        ),
        **mask_record(image_data),
        "seconds": round(seconds, 4),
        "versions": package_versions(),
    }
