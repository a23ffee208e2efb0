"""Canny edges (scikit-image), plane by plane for stacks: label 1 on edges, 0 elsewhere."""

from __future__ import annotations

import itertools

import numpy as np
from skimage.color import rgb2gray
from skimage.feature import canny

from ..image import ImageData
from ..registry import Method, MethodOutput, Param


def grey_planes(data: ImageData) -> list[np.ndarray]:
    """The single-channel images Canny runs on, in the image's own units.

    RGB(A) images become grey with ``rgb2gray`` and are brought back to the input dtype,
    so thresholds mean the same as on a grey image of that dtype (150/200 on 8-bit).
    Multichannel images give one plane per channel; an edge in any channel is an edge.
    """
    if data.is_color:
        grey = rgb2gray(data.pixels[..., :3])
        if np.issubdtype(data.pixels.dtype, np.integer):
            grey = np.rint(grey * np.iinfo(data.pixels.dtype).max).astype(data.pixels.dtype)
        return [grey]
    return [data.pixels[..., c] for c in range(data.n_channels)]


def edges_2d(plane: np.ndarray, mask: np.ndarray, params: dict) -> np.ndarray:
    complete = mask.all()
    if plane.dtype == bool:
        plane = plane.astype(np.float64)
    if np.issubdtype(plane.dtype, np.floating) and not complete:
        plane = np.where(mask, plane, 0.0)
    return canny(
        plane, sigma=params["sigma"], low_threshold=params["low_threshold"],
        high_threshold=params["high_threshold"], use_quantiles=params["use_quantiles"],
        mask=None if complete else mask,
    )


def check_thresholds(params: dict) -> None:
    low, high = params["low_threshold"], params["high_threshold"]
    if low is not None and high is not None and high < low:
        raise ValueError(
            f"high_threshold: must not be below low_threshold ({high} < {low})."
        )
    if params["use_quantiles"] and any(t is not None and t > 1 for t in (low, high)):
        raise ValueError(
            "low_threshold/high_threshold: with use_quantiles=True they are quantiles "
            "between 0 and 1."
        )


def run(data, n_clusters, features, params) -> MethodOutput:
    check_thresholds(params)
    edges = np.zeros(data.spatial_shape, dtype=bool)
    leading = data.spatial_shape[:-2]
    planes = grey_planes(data)
    indices = list(itertools.product(*map(range, leading)))
    for i, (plane, index) in enumerate(itertools.product(planes, indices)):
        yield "edges", i / (len(planes) * len(indices))
        edges[index] |= edges_2d(plane[index], data.mask[index], params)
    labels = edges.view(np.uint8).astype(np.int32)
    if not data.mask.all():
        labels[~data.mask] = 0
    return MethodOutput(
        labels=labels,
        score={"edge_fraction": float(labels.sum() / data.mask.sum())},
        details={"planes": int(np.prod(leading, dtype=int))},
    )


METHOD = Method(
    name="canny",
    title="Canny edges",
    summary="Thin edge lines where intensity changes sharply (scikit-image canny).",
    params=(
        Param("sigma", float, 1.0, "Blur (standard deviation, pixels) before finding edges.",
              minimum=0.0, maximum=100.0),
        Param("low_threshold", float, None,
              "Weaker edges above this are kept when connected to strong ones (image units; "
              "empty: 10% of the dtype's maximum).", minimum=0.0, allow_none=True),
        Param("high_threshold", float, None,
              "Edges above this are strong (image units; empty: 20% of the dtype's "
              "maximum).", minimum=0.0, allow_none=True),
        Param("use_quantiles", bool, False,
              "Read the thresholds as quantiles (0-1) of the edge strength."),
    ),
    run=run,
    needs_n_clusters=False,
    uses_features=False,
    uses_random_state=False,
)
