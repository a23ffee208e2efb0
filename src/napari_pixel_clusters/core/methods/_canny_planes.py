"""Canny on single planes: the steps the in-memory and the lazy routes share.

Which planes an image gives (grey for RGB, one per channel), the thresholds in the image's
own units, and scikit-image's canny on one plane with a mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..image import ImageData


def grey_planes(data: ImageData[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """The single-channel images Canny runs on, and the largest magnitude of their values.

    Thresholds are in the image's own units, as on a grey image of its dtype (150/200 on
    8-bit): RGB(A) images become grey with ``rgb2gray``, scaled to the input dtype's range
    (not rounded). Multichannel images give one plane per channel; an edge in any channel
    is an edge. Booleans and 64-bit integers (which scikit-image's canny refuses) become
    float.

    The automatic thresholds are relative to the returned magnitude, the largest absolute
    usable value of the planes (1 for an image of zeros; only pixels with data inside the
    caller's mask count: ``data.mask``), not to the dtype's maximum: a
    16-bit fluorescence plane with values up to 4,000 has edges far below 10% of 65,535,
    and an image of negative values still has positive thresholds.
    """
    planes = canny_planes(data)
    return planes, value_scale(planes, data.mask)


def canny_planes(data: ImageData[np.ndarray]) -> list[np.ndarray]:
    """The single-channel images Canny runs on (see :func:`grey_planes`)."""
    pixels = data.pixels
    if read_as_float(pixels.dtype):
        as_float = ImageData(pixels.astype(np.float64), data.kind, data.mask, data.channel_axis)
        return canny_planes(as_float)
    if data.is_color:
        from skimage.color import rgb2gray

        grey = rgb2gray(pixels[..., :3])
        if np.issubdtype(pixels.dtype, np.integer):
            return [grey * float(np.iinfo(pixels.dtype).max)]
        return [grey]
    return [pixels[..., c] for c in range(data.n_channels)]


def value_scale(planes: list[np.ndarray], mask: np.ndarray) -> float:
    """What the automatic thresholds are fractions of: the largest magnitude (or 1)."""
    return largest_magnitude(planes, mask) or 1.0


def read_as_float(dtype: npt.DTypeLike) -> bool:
    """Booleans and 64-bit integers, which scikit-image's canny refuses."""
    dtype = np.dtype(dtype)
    return dtype.kind == "b" or (dtype.itemsize == 8 and dtype.kind in "iu")


def largest_magnitude(planes: list[np.ndarray], mask: np.ndarray) -> float:
    """The largest absolute usable value of the planes (0 when no pixel is usable).

    From each plane's minimum and maximum, as floats: ``abs`` of an int8 -128 would wrap.
    """
    if not mask.any():
        return 0.0
    complete = mask.all()
    largest = 0.0
    for plane in planes:
        values = plane if complete else plane[mask]
        largest = max(largest, abs(float(values.min())), abs(float(values.max())))
    return largest


def thresholds(params: dict[str, Any], value_max: float) -> tuple[float | None, float | None]:
    """Explicit thresholds; empty ones are 10% and 20% of ``value_max`` (the image's
    largest magnitude: scikit-image's fractions, of the values the image has). None
    only for quantiles not given (scikit-image's defaults)."""
    low, high = params["low_threshold"], params["high_threshold"]
    if params["use_quantiles"]:
        return low, high
    return (0.1 * value_max if low is None else low, 0.2 * value_max if high is None else high)


def check_threshold_pair(params: dict[str, Any], value_max: float) -> None:
    """A threshold given alone must still be on its side of the other one's default
    (otherwise scikit-image stops with its own message)."""
    given_low, given_high = thresholds(params, value_max)
    # None only for quantiles not given: scikit-image's default quantiles
    low = 0.1 if given_low is None else given_low
    high = 0.2 if given_high is None else given_high
    if params["use_quantiles"]:
        unit = "quantile"
    else:
        unit = f"of the image's largest value {value_max:g}"
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


def edges_2d(
    plane: np.ndarray, mask: np.ndarray, params: dict[str, Any], value_max: float
) -> np.ndarray:
    """scikit-image's canny with the thresholds in image units (it reads thresholds of
    integer images in their units, and of float images as they are)."""
    complete = mask.all()
    if np.issubdtype(plane.dtype, np.floating) and not complete:
        plane = np.where(mask, plane, 0.0)
    low, high = thresholds(params, value_max)
    from skimage.feature import canny

    return canny(
        plane,
        sigma=params["sigma"],
        low_threshold=low,
        high_threshold=high,
        use_quantiles=params["use_quantiles"],
        mask=None if complete else mask,
    )


def check_thresholds(params: dict[str, Any]) -> None:
    low, high = params["low_threshold"], params["high_threshold"]
    if low is not None and high is not None and high < low:
        raise ValueError(f"high_threshold: must not be below low_threshold ({high} < {low}).")
    if params["use_quantiles"] and any(t is not None and t > 1 for t in (low, high)):
        raise ValueError(
            "low_threshold/high_threshold: with use_quantiles=True they are quantiles "
            "between 0 and 1."
        )
