"""``segment``: the one entry point the widgets, the command line and scripts call."""

from __future__ import annotations

import platform
import time
from importlib import metadata

import numpy as np

from .image import read_image
from .methods import get_method
from .registry import N_CLUSTERS, check_options, drain
from .result import Segmentation, compact_labels

PACKAGES = ("napari-pixel-clusters", "numpy", "scikit-learn", "scikit-image", "scipy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def segment(
    image,
    method: str = "kmeans",
    n_clusters: int | None = None,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    **options,
) -> Segmentation:
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
    method : {"kmeans", "gmm", "ward", "canny"}
        See ``METHODS`` for each one's parameters, defaults and limits.
    n_clusters : int
        Number of clusters; required by every method but ``"canny"``.
    rgb : bool or None
        Whether the last axis holds RGB(A); None guesses like napari.
    channel_axis : int or None
        Axis of a multichannel image that holds the channels (each channel a feature).
    **options
        ``color_space`` ("rgb", "lab", "hsv"; RGB images only), ``spatial_weight``,
        ``standardize``, ``random_state``, and the method's own parameters
        (e.g. ``n_init`` for k-means, ``covariance_type`` for GMM, ``downscale`` for
        Ward, ``sigma`` for Canny).

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
        segment_steps(image, method, n_clusters, rgb=rgb, channel_axis=channel_axis, **options)
    )


def segment_steps(
    image,
    method: str = "kmeans",
    n_clusters: int | None = None,
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    **options,
):
    """:func:`segment` as a generator: yields ``(stage, fraction)``, returns the result.

    Everything is validated before the first yield, so bad input raises at once. Closing
    the generator between steps abandons the run (how the napari widget cancels).
    """
    from .lazy import is_lazy, is_multiscale, lazy_segment_steps

    if is_multiscale(image):  # a pyramid: fitted on the full-size level, lazily
        result = yield from lazy_segment_steps(
            image[0],
            method,
            n_clusters,
            rgb=rgb,
            channel_axis=channel_axis,
            levels=image,
            **options,
        )
        result.levels = list(image)
        return result
    if is_lazy(image):  # larger than memory: chunk by chunk, labels as a dask array
        return (
            yield from lazy_segment_steps(
                image, method, n_clusters, rgb=rgb, channel_axis=channel_axis, **options
            )
        )
    spec = get_method(method)
    image_data = read_image(image, rgb=rgb, channel_axis=channel_axis)
    k = _check_n_clusters(spec, n_clusters)
    features, params = check_options(spec, options)
    started = time.perf_counter()
    yield "features", 0.0
    output = yield from spec.run(image_data, k, features, params)
    labels, kept = compact_labels(output.labels)
    return Segmentation(
        labels=labels,
        image=image_data,
        score=output.score,
        params=_provenance(
            spec, image_data, k, features, params, output, kept, time.perf_counter() - started
        ),
        fitted=output.model,
        known_sums=None if output.cluster_sums is None else output.cluster_sums.take(kept - 1),
    )


def _check_n_clusters(spec, n_clusters):
    if not spec.needs_n_clusters:
        if n_clusters is not None:
            raise ValueError(
                f"n_clusters: method {spec.name!r} finds edges and takes no number of "
                "clusters; leave n_clusters out."
            )
        return None
    if n_clusters is None:
        raise ValueError(
            f"n_clusters: method {spec.name!r} needs the number of clusters, e.g. n_clusters=5."
        )
    return N_CLUSTERS.check(n_clusters)


def _provenance(spec, image_data, k, features, params, output, kept, seconds) -> dict:
    used = dict(features) if spec.uses_features else {}
    if not spec.uses_random_state:
        used.pop("random_state", None)
    return {
        "method": spec.name,
        "n_clusters_requested": k,
        "n_clusters_found": len(kept),
        "cluster_components": [int(c) - 1 for c in kept],  # label i+1 <- component
        **used,
        **{name: _plain(value) for name, value in params.items()},
        **{name: _plain(value) for name, value in output.details.items()},
        "image": _plain(
            {
                "shape": list(image_data.pixels.shape),
                "dtype": str(image_data.pixels.dtype),
                "kind": image_data.kind,
                "channel_axis": image_data.channel_axis,
            }
        ),
        "seconds": round(seconds, 4),
        "versions": package_versions(),
    }


def _plain(value):
    """Arrays -> lists, numpy scalars -> Python numbers, so that params can be stored as
    JSON (layer metadata, files)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
