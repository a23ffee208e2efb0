"""``segment`` for dask arrays: one route per method, results as lazy arrays."""

from __future__ import annotations

import time

from ..methods import get_method
from ..registry import check_options
from .edges import canny_steps
from .image import read_lazy_image
from .points import point_steps
from .result import LazySegmentation
from .ward import ward_steps


def lazy_segment_steps(
    image, method, n_clusters, rgb=None, channel_axis=None, levels=(), **options
):
    """:func:`~..segment.segment_steps` for a dask array (see the package docstring);
    ``levels`` are the pyramid ``image`` is the full-size level of, if any."""
    from ..segment import _check_n_clusters, _provenance

    spec = get_method(method)
    data = read_lazy_image(image, rgb=rgb, channel_axis=channel_axis)
    k = _check_n_clusters(spec, n_clusters)
    features, params = check_options(spec, options)
    started = time.perf_counter()
    if spec.name == "canny":
        route = canny_steps(data, params)
    elif spec.name == "ward":
        route = ward_steps(data, k, features, params, levels)
    else:
        route = point_steps(data, spec, k, features, params)
    output, labeller, tally, found = yield from route
    provenance = _provenance(
        spec, data, k, features, params, output, found + 1, time.perf_counter() - started
    )
    provenance["image"] |= {"lazy": True, "chunks": [list(c) for c in data.pixels.chunks]}
    return LazySegmentation(
        labels=labeller.array(data),
        image=data,
        score=output.score,
        params=provenance,
        fitted=output.model,
        tally=tally,
        labeller=labeller,
    )
