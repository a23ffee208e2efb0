"""Canny edges (scikit-image), plane by plane for stacks: label 1 on edges, 0 elsewhere.

On a lazy image each chunk is processed with overlap and hysteresis is joined across
chunks (:mod:`._canny_lazy`), so the edges are identical to the in-memory ones.

With a mask (``segment(..., mask=...)``, or pixels without data) scikit-image's canny gets
it as its own ``mask``: values outside do not blur into the pixels inside, edges outside
are 0, and the automatic thresholds are 10% and 20% of the largest value *inside* (the
outside, e.g. a bright slide background, does not raise them).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..image import ImageData
from ..registry import Method, MethodOutput, Param, Steps
from ._canny_lazy import lazy_run
from ._canny_planes import (
    check_threshold_pair,
    check_thresholds,
    edges_2d,
    grey_planes,
    thresholds,
)


def run(
    data: ImageData[np.ndarray],
    n_clusters: int | None,
    feature_options: dict[str, Any],
    params: dict[str, Any],
) -> Steps[MethodOutput]:
    check_thresholds(params)
    edges = np.zeros(data.spatial_shape, dtype=bool)
    leading = data.spatial_shape[:-2]
    planes, value_max = grey_planes(data)
    check_threshold_pair(params, value_max)
    indices = list(itertools.product(*map(range, leading)))
    for i, (plane, index) in enumerate(itertools.product(planes, indices)):
        yield "edges", i / (len(planes) * len(indices))
        edges[index] |= edges_2d(plane[index], data.mask[index], params, value_max)
    labels = edges.view(np.uint8).astype(np.int32)
    if not data.mask.all():
        labels[~data.mask] = 0
    low, high = thresholds(params, value_max)
    used = (
        {"low_threshold_used": float(low), "high_threshold_used": float(high)}
        if not params["use_quantiles"] and low is not None and high is not None  # (always)
        else {}
    )
    return MethodOutput(
        labels=labels,
        score={"edge_fraction": float(labels.sum() / data.mask.sum())},
        details={**used, "planes": int(np.prod(leading, dtype=int))},
    )


METHOD = Method(
    name="canny",
    title="Canny edges",
    summary="Thin edge lines where intensity changes sharply (scikit-image canny).",
    params=(
        Param(
            "sigma",
            float,
            1.0,
            "Blur (standard deviation, pixels) before finding edges.",
            minimum=0.0,
            maximum=100.0,
        ),
        Param(
            "low_threshold",
            float,
            None,
            "Weaker edges above this are kept when connected to strong ones (image units; "
            "empty: 10% of the image's largest value, inside the mask if one is given).",
            minimum=0.0,
            allow_none=True,
        ),
        Param(
            "high_threshold",
            float,
            None,
            "Edges above this are strong (image units; empty: 20% of the image's largest value, "
            "inside the mask if one is given).",
            minimum=0.0,
            allow_none=True,
        ),
        Param(
            "use_quantiles",
            bool,
            False,
            "Read the thresholds as quantiles (0-1) of the edge strength.",
            advanced=True,
        ),
    ),
    run=run,
    lazy_run=lazy_run,
    needs_n_clusters=False,
    output="edges",
    large_image_note=(
        "Large image: edges per chunk with overlap, joined\nacross chunks: identical "
        "to the whole image's.\nThresholds must be in image units (no quantiles)."
    ),
    takes_features=(),  # edges of the grey levels: no color space, position or scaling
    uses_random_state=False,
    empty_hint="Lower the thresholds (or leave them 'auto': 10% and 20% of the image's "
    "largest value), or lower sigma.",
)
