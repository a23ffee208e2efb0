"""Read an array into a validated :class:`ImageData`: channels last, a mask of usable pixels.

Everything downstream (features, methods, results) works on ``ImageData`` and never has
to guess again what the axes mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import dask.array as da

#: Same rule as napari's ``guess_rgb``: a last axis of 3 or 4 and viewed sides over 30 px.
RGB_MIN_SIDE = 30
#: Largest magnitude of a pixel value that can be clustered. Squared distances, variances
#: and sums over up to 10**12 pixels of values up to 1e100 stay far below float64's
#: limit (1.8e308); beyond it they would overflow to inf and NaN. Only float64 (and
#: longer) images can hold such values: float32 stops at 3.4e38, uint64 at 1.8e19.
MAX_ABS_VALUE = 1e100
#: What every route says of an image without a usable pixel.
NO_DATA = (
    "image: no pixel has data (all are NaN/inf or fully transparent); nothing can be clustered."
)
#: What an :class:`ImageData` holds its pixels in: numpy in memory, dask for images larger
#: than memory (:func:`~.lazy.image.read_lazy_image`).
ArrayT = TypeVar("ArrayT", np.ndarray, "da.Array")


@dataclass(frozen=True)
class ImageData(Generic[ArrayT]):
    """An image with its channels on the last axis.

    Attributes
    ----------
    pixels : ndarray (or dask array)
        ``(*spatial, C)``; the input's own dtype and values (a view where possible).
    kind : str
        ``"grey"``, ``"rgb"``, ``"rgba"`` or ``"multichannel"``.
    mask : ndarray of bool
        ``spatial`` shape; False where a pixel has no data (non-finite value, or alpha 0).
    channel_axis : int or None
        Axis of the input that held the channels (None for grey images).
    """

    pixels: ArrayT
    kind: str
    mask: ArrayT
    channel_axis: int | None

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.pixels.shape[:-1]

    @property
    def n_channels(self) -> int:
        return self.pixels.shape[-1]

    @property
    def is_color(self) -> bool:
        return self.kind in ("rgb", "rgba")

    @property
    def color_channels(self) -> ArrayT:
        """The channels that are features: RGB for RGBA images, all others otherwise."""
        return self.pixels[..., :3] if self.kind == "rgba" else self.pixels

    @property
    def channel_names(self) -> list[str]:
        if self.kind == "grey":
            return ["intensity"]
        if self.is_color:
            return list("RGBA"[: self.n_channels])
        return [f"ch{i}" for i in range(self.n_channels)]


def guess_rgb(shape: tuple[int, ...]) -> bool:
    """Guess whether an array of this shape is RGB(A), the way napari does."""
    return (
        len(shape) > 2
        and shape[-1] in (3, 4)
        and all(side > RGB_MIN_SIDE for side in shape[-3:-1])
    )


def read_image(
    image: npt.ArrayLike, rgb: bool | None = None, channel_axis: int | None = None
) -> ImageData[np.ndarray]:
    """Validate ``image`` and put its channels last.

    Parameters
    ----------
    image : array_like
        2-D grey, 2-D RGB/RGBA (last axis 3 or 4), 3-D stack ``(z, y, x)``, or any of
        these with a channel axis named by ``channel_axis``.
    rgb : bool or None
        Whether the last axis holds RGB(A). None guesses like napari.
    channel_axis : int or None
        Axis holding channels of a multichannel image; every channel is a feature.

    Raises
    ------
    ValueError
        With a sentence saying what was wrong and what would work; also for float
        values beyond +-``MAX_ABS_VALUE`` (1e100), whose squares would overflow.
    """
    array = np.asarray(image)
    pixels, kind, axis = arrange_channels(array, rgb, channel_axis)
    return ImageData(
        pixels=pixels, kind=kind, mask=_usable_pixels(pixels, kind), channel_axis=axis
    )


def arrange_channels(
    array: ArrayT, rgb: bool | None, channel_axis: int | None
) -> tuple[ArrayT, str, int | None]:
    """Check an array (numpy or dask) and put its channels last: ``(pixels, kind, axis)``."""
    _check_dtype(array)
    rgb = check_rgb(rgb)
    channel_axis = check_channel_axis(channel_axis)
    if channel_axis is not None and rgb:
        raise ValueError(
            "image: give either rgb=True or channel_axis, not both; an RGB image "
            "already has its channels on the last axis."
        )
    if channel_axis is not None:
        pixels, kind, axis = _split_channels(array, channel_axis)
    else:
        is_rgb = guess_rgb(array.shape) if rgb is None else bool(rgb)
        if is_rgb and (array.ndim < 3 or array.shape[-1] not in (3, 4)):
            raise ValueError(
                f"image: rgb=True needs a last axis of length 3 or 4, but the image has "
                f"shape {array.shape}."
            )
        if is_rgb:
            pixels, kind, axis = array, ("rgb" if array.shape[-1] == 3 else "rgba"), array.ndim - 1
        else:
            pixels, kind, axis = array[..., np.newaxis], "grey", None
    _check_spatial_shape(pixels.shape[:-1], array.shape)
    return pixels, kind, axis


def check_rgb(rgb: object) -> bool | None:
    """``rgb`` as a plain bool (or None); anything else, such as ``"no"``, is refused."""
    if rgb is None or isinstance(rgb, (bool, np.bool_)):
        return None if rgb is None else bool(rgb)
    raise ValueError(
        f"rgb: expected True, False or None (guess like napari), got {rgb!r} "
        f"({type(rgb).__name__})."
    )


def check_channel_axis(channel_axis: object) -> int | None:
    """``channel_axis`` as a plain int (or None); floats, strings and bools are refused."""
    if channel_axis is None:
        return None
    if isinstance(channel_axis, (int, np.integer)) and not isinstance(
        channel_axis, (bool, np.bool_)
    ):
        return int(channel_axis)
    raise ValueError(
        f"channel_axis: expected a whole number (the axis that holds the channels, e.g. "
        f"0) or None, got {channel_axis!r} ({type(channel_axis).__name__})."
    )


def _check_dtype(array: np.ndarray | da.Array) -> None:
    if (
        array.dtype == bool
        or np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        return
    raise ValueError(
        f"image: pixels of dtype {array.dtype} cannot be clustered; give an array of "
        "integers or floats (for complex data, pass np.abs(image) or image.real)."
    )


def _split_channels(array: ArrayT, channel_axis: int) -> tuple[ArrayT, str, int]:
    if not -array.ndim <= channel_axis < array.ndim:
        raise ValueError(
            f"channel_axis: {channel_axis} is out of range for an image with "
            f"{array.ndim} axes (shape {array.shape}); use a value from "
            f"{-array.ndim} to {array.ndim - 1}, or None for a single-channel image."
        )
    axis = channel_axis % array.ndim
    # numpy hands a dask array to dask.array.moveaxis (NEP 18), which numpy's stubs do not know
    moved = np.moveaxis(array, axis, -1)  # type: ignore[type-var]
    return moved, "multichannel", axis


def _check_spatial_shape(spatial: tuple[int, ...], original: tuple[int, ...]) -> None:
    if len(spatial) < 2:
        raise ValueError(
            f"image: needs at least two spatial axes (y, x) but has shape {original}; "
            "give a 2-D image, a 3-D stack (z, y, x), or say which axis holds channels."
        )
    if 0 in spatial:
        raise ValueError(f"image: has no pixels (shape {original}).")


def usable_mask(pixels: np.ndarray, kind: str) -> np.ndarray:
    """True where every channel is finite and, for RGBA, where alpha is not 0.

    Raises ValueError for usable values beyond +-``MAX_ABS_VALUE`` (see there).
    """
    floating = np.issubdtype(pixels.dtype, np.floating)
    if floating:
        mask = np.isfinite(pixels).all(axis=-1)
    else:
        mask = np.ones(pixels.shape[:-1], dtype=bool)
    if kind == "rgba":
        mask &= pixels[..., 3] != 0
    if floating and pixels.dtype.itemsize >= 8:
        check_magnitude(pixels, mask)
    return mask


def check_magnitude(pixels: np.ndarray, mask: np.ndarray) -> None:
    """Refuse usable values beyond +-``MAX_ABS_VALUE``: their means and distances would
    overflow to inf or NaN."""
    if pixels.size == 0:
        return
    where = mask[..., np.newaxis]
    largest = max(
        -float(np.min(pixels, where=where, initial=np.inf)),
        float(np.max(pixels, where=where, initial=-np.inf)),
    )
    if largest > MAX_ABS_VALUE:
        example = (
            f", e.g. image * 1e-{int(np.ceil(np.log10(largest))) - 50}"
            if np.isfinite(largest)
            else ""
        )
        raise ValueError(
            f"image: values up to {largest:.3g} in magnitude are too large to cluster: "
            f"means and distances of values beyond +-{MAX_ABS_VALUE:.0e} overflow "
            f"float64. Scale the image first{example}."
        )


def _usable_pixels(pixels: np.ndarray, kind: str) -> np.ndarray:
    mask = usable_mask(pixels, kind)
    if not mask.any():
        raise ValueError(NO_DATA)
    return mask
