"""Read an array into a validated :class:`ImageData`: channels last, a mask of usable pixels.

Everything downstream (features, methods, results) works on ``ImageData`` and never has
to guess again what the axes mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

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
#: What every route says of a mask whose pixels inside all lack data.
NO_DATA_INSIDE = (
    "mask: none of the {n:,} pixels inside the mask has data (they are all NaN/inf or "
    "fully transparent); choose a mask over pixels with data."
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
        ``spatial`` shape; False where a pixel has no data (non-finite value, or alpha 0)
        or lies outside the caller's ``inside`` mask: every method clusters only these.
    channel_axis : int or None
        Axis of the input that held the channels (None for grey images).
    inside : ndarray of bool or None
        The caller's mask (``segment(..., mask=...)``): True inside, where pixels may be
        clustered; None for the whole image. Already part of ``mask``; kept to say what
        was asked and to carry it to the levels of a pyramid.
    n_inside : int or None
        How many pixels ``inside`` holds (None: no mask, or not counted).
    """

    pixels: ArrayT
    kind: str
    mask: ArrayT
    channel_axis: int | None
    inside: ArrayT | None = None
    n_inside: int | None = None

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
    image: npt.ArrayLike,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    mask: npt.ArrayLike | None = None,
) -> ImageData[np.ndarray]:
    """Validate ``image`` (and ``mask``) and put its channels last.

    Parameters
    ----------
    image : array_like
        2-D grey, 2-D RGB/RGBA (last axis 3 or 4), 3-D stack ``(z, y, x)``, or any of
        these with a channel axis named by ``channel_axis``.
    rgb : bool or None
        Whether the last axis holds RGB(A). None guesses like napari.
    channel_axis : int or None
        Axis holding channels of a multichannel image; every channel is a feature.
    mask : array_like or None
        Only the pixels inside are clustered (see :func:`check_mask`); the others are
        left out like pixels without data (label 0).

    Raises
    ------
    ValueError
        With a sentence saying what was wrong and what would work; also for float
        values beyond +-``MAX_ABS_VALUE`` (1e100), whose squares would overflow. A bad
        mask is a ValueError starting with "mask:".
    """
    array = np.asarray(image)
    pixels, kind, axis = arrange_channels(array, rgb, channel_axis)
    if mask is None:
        return ImageData(
            pixels=pixels, kind=kind, mask=_usable_pixels(pixels, kind), channel_axis=axis
        )
    inside = check_mask(mask, pixels.shape[:-1])
    usable = _usable_pixels(pixels, kind, inside)
    n_inside = int(np.count_nonzero(inside))
    return ImageData(pixels, kind, usable, axis, inside=inside, n_inside=n_inside)


def check_mask(mask: object, spatial_shape: tuple[int, ...]) -> np.ndarray:
    """The caller's mask as booleans: an array of the image's spatial shape (its shape
    without the channel axis), of booleans or integers (non-zero = inside: a labels
    image works as it is), with at least one pixel inside.

    Anything else is a ValueError starting with "mask:" that gives the shapes. A dask
    array is read whole (the image is in memory too).
    """
    try:
        array = np.asarray(mask)
    except (TypeError, ValueError):  # ragged lists and the like
        array = np.asarray(None)
    check_mask_type(array.dtype, array.shape, spatial_shape)
    inside = array if array.dtype == bool else array != 0
    if not np.any(inside):
        raise ValueError(no_pixel_inside(spatial_shape))
    return inside


def check_mask_type(
    dtype: npt.DTypeLike, shape: tuple[int, ...], spatial_shape: tuple[int, ...]
) -> None:
    """A mask's dtype (booleans or integers) and shape (the image's spatial shape)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biu":
        what = "no array" if dtype.kind == "O" else f"{dtype} values"
        hint = " (for a float mask, say which pixels are inside: mask > 0.5)"
        raise ValueError(
            f"mask: expected an array of booleans or integers (non-zero = inside) of the "
            f"image's spatial shape {tuple(spatial_shape)}, got {what} of shape "
            f"{tuple(shape)}{hint if dtype.kind == 'f' else ''}."
        )
    if tuple(shape) != tuple(spatial_shape):
        raise ValueError(
            f"mask: has shape {tuple(shape)}, but the image's spatial shape (its shape "
            f"without the channel axis) is {tuple(spatial_shape)}; give one value per "
            "pixel (for a stack, one mask per plane)."
        )


def mask_record(data: ImageData[Any]) -> dict[str, Any]:
    """``{"mask": {"pixels_inside": n, "pixels": total}}`` for a result's params when the
    image was read with a mask (``{}`` without one)."""
    if data.inside is None:
        return {}
    n_inside = data.n_inside
    if n_inside is None:  # (read as a pyramid level: counted now)
        n_inside = int(data.inside.sum())
    total = int(np.prod(data.spatial_shape, dtype=np.int64))
    return {"mask": {"pixels_inside": n_inside, "pixels": total}}


def no_pixel_inside(spatial_shape: tuple[int, ...]) -> str:
    return (
        f"mask: no pixel is inside (every value of the mask of shape "
        f"{tuple(spatial_shape)} is 0 or False); mark the pixels to cluster with True "
        "or a non-zero label, or leave mask out for the whole image."
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


def usable_mask(pixels: np.ndarray, kind: str, inside: np.ndarray | None = None) -> np.ndarray:
    """True where every channel is finite and, for RGBA, where alpha is not 0 (and, with
    the caller's ``inside`` mask, where it is True).

    Raises ValueError for usable values beyond +-``MAX_ABS_VALUE`` (see there); values
    outside ``inside`` are not looked at.
    """
    floating = np.issubdtype(pixels.dtype, np.floating)
    if floating:
        mask = np.isfinite(pixels).all(axis=-1)
    else:
        mask = np.ones(pixels.shape[:-1], dtype=bool)
    if kind == "rgba":
        mask &= pixels[..., 3] != 0
    if inside is not None:
        mask &= inside
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


def _usable_pixels(pixels: np.ndarray, kind: str, inside: np.ndarray | None = None) -> np.ndarray:
    mask = usable_mask(pixels, kind, inside)
    if not mask.any():
        if inside is not None and usable_mask(pixels, kind).any():
            raise ValueError(NO_DATA_INSIDE.format(n=int(inside.sum())))
        raise ValueError(NO_DATA)
    return mask
