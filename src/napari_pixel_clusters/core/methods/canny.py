"""Canny edges (scikit-image), plane by plane for stacks: label 1 on edges, 0 elsewhere."""

from __future__ import annotations

import itertools

import numpy as np

from ..image import ImageData
from ..registry import Method, MethodOutput, Param


def grey_planes(data: ImageData) -> tuple[list[np.ndarray], float]:
    """The single-channel images Canny runs on, and the maximum of their value range.

    Thresholds are in the image's own units, as on a grey image of its dtype (150/200 on
    8-bit): RGB(A) images become grey with ``rgb2gray``, scaled to the input dtype's range
    (not rounded). Multichannel images give one plane per channel; an edge in any channel
    is an edge. Booleans and 64-bit integers (which scikit-image's canny refuses) become
    float; their automatic thresholds are relative to the image's largest magnitude (so
    that an image of negative values has positive thresholds).
    """
    pixels = data.pixels
    if read_as_float(pixels.dtype):
        as_float = ImageData(pixels.astype(np.float64), data.kind, data.mask, data.channel_axis)
        planes, _ = grey_planes(as_float)
        return planes, largest_magnitude(planes, data.mask) or 1.0
    if data.is_color:
        from skimage.color import rgb2gray

        grey = rgb2gray(pixels[..., :3])
        if np.issubdtype(pixels.dtype, np.integer):
            return [grey * float(np.iinfo(pixels.dtype).max)], float(np.iinfo(pixels.dtype).max)
        return [grey], 1.0
    planes = [pixels[..., c] for c in range(data.n_channels)]
    if np.issubdtype(pixels.dtype, np.integer):
        return planes, float(np.iinfo(pixels.dtype).max)
    return planes, 1.0


def read_as_float(dtype) -> bool:
    """Booleans and 64-bit integers, which scikit-image's canny refuses."""
    dtype = np.dtype(dtype)
    return dtype == bool or (dtype.itemsize == 8 and dtype.kind in "iu")


def largest_magnitude(planes: list, mask: np.ndarray) -> float:
    """The largest absolute usable value of the planes (0 when no pixel is usable)."""
    return float(max((np.max(np.abs(p[mask])) for p in planes if mask.any()), default=0.0))


def thresholds(params: dict, value_max: float) -> tuple[float | None, float | None]:
    """Explicit thresholds; empty ones are scikit-image's 10% and 20% of the value range."""
    low, high = params["low_threshold"], params["high_threshold"]
    if params["use_quantiles"]:
        return low, high
    return (0.1 * value_max if low is None else low, 0.2 * value_max if high is None else high)


def check_threshold_pair(params: dict, value_max: float) -> None:
    """A threshold given alone must still be on its side of the other one's default
    (otherwise scikit-image stops with its own message)."""
    low, high = thresholds(params, value_max)
    if params["use_quantiles"]:
        low, high = (0.1 if low is None else low), (0.2 if high is None else high)
        unit = "quantile"
    else:
        unit = f"of the value range 0..{value_max:g}"
    if low <= high:
        return
    if params["high_threshold"] is None:
        raise ValueError(
            f"low_threshold: must be at most high_threshold ({low:g} > {high:g}, the "
            f"default: 20% {unit}); give a larger high_threshold too, or a smaller "
            "low_threshold."
        )
    raise ValueError(
        f"high_threshold: must be at least low_threshold ({high:g} < {low:g}, the "
        f"default: 10% {unit}); give a smaller low_threshold too, or a larger "
        "high_threshold."
    )


def edges_2d(plane: np.ndarray, mask: np.ndarray, params: dict, value_max: float):
    complete = mask.all()
    if np.issubdtype(plane.dtype, np.floating) and not complete:
        plane = np.where(mask, plane, 0.0)
    if np.issubdtype(plane.dtype, np.integer):  # skimage reads integer thresholds in units
        low, high = params["low_threshold"], params["high_threshold"]
    else:
        low, high = thresholds(params, value_max)
    from skimage.feature import canny

    return canny(plane, sigma=params["sigma"], low_threshold=low, high_threshold=high,
                 use_quantiles=params["use_quantiles"], mask=None if complete else mask)


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
    planes, value_max = grey_planes(data)
    check_threshold_pair(params, value_max)
    indices = list(itertools.product(*map(range, leading)))
    for i, (plane, index) in enumerate(itertools.product(planes, indices)):
        yield "edges", i / (len(planes) * len(indices))
        edges[index] |= edges_2d(plane[index], data.mask[index], params, value_max)
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
