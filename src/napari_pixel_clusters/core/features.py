"""Image -> feature matrix: color spaces, standardisation, spatial coordinates.

Features that depend only on a pixel's value are computed once per *distinct* value: the
rows of :class:`FeatureSet` are then the distinct values, ``weights`` are their pixel
counts and ``inverse`` maps every usable pixel back to its row. A method fitted on the
weighted rows optimises the same objective as on all pixels, at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .image import ImageData
from .stains import DEFAULT_BACKGROUND, StainVectors, resolve_stain_vectors

#: Stain color spaces of brightfield RGB images: color deconvolution (Ruifrok & Johnston
#: 2001, ``skimage.color.separate_stains``) of the optical densities into the concentration
#: of each stain. Name -> (scikit-image's matrix from RGB optical density, stain names).
STAIN_SPACES: dict[str, tuple[str, tuple[str, str, str]]] = {
    "hed": ("hed_from_rgb", ("hematoxylin", "eosin", "DAB")),
    "hdab": ("hdx_from_rgb", ("hematoxylin", "DAB", "residual")),
}
#: The stain color space whose vectors the user gives or estimates (``stain_vectors``).
USER_STAINS = "stains"
COLOR_SPACES = ("rgb", "lab", "hsv", *STAIN_SPACES, USER_STAINS)
#: Packed integer keys are counted with one ``np.bincount`` (O(N), but it allocates one
#: counter per possible key) when there are at most this many possible keys, and at most
#: BINCOUNT_KEYS_PER_PIXEL per pixel; otherwise ``np.unique`` sorts them (O(N log N)).
BINCOUNT_MAX_KEYS = 2**25
BINCOUNT_KEYS_PER_PIXEL = 16
#: Integer rows are found with a bitset of every possible key (:func:`_bitset_rows`) when
#: their keys take at most ``bitset_max_bits(n_rows)`` bits: 2**26 keys (an 8 MB bitset)
#: for any image, up to BITSET_KEYS_PER_ROW keys per row, never more than 2**32 (512 MB).
BITSET_MIN_BITS = 26
BITSET_KEYS_PER_ROW = 32
BITSET_MAX_BITS = 32
#: Column means and variances of at least this many rows are computed by compiled loops.
COMPILED_STATISTICS_MIN_ROWS = 4096
#: Float images are compressed only when a sample shows at most this share of distinct values.
FLOAT_DISTINCT_SHARE = 0.5
FLOAT_SAMPLE_SIZE = 10_000


@dataclass
class FeatureSet:
    """Feature vectors to cluster, and how they map back to the image's pixels.

    Attributes
    ----------
    X : ndarray, (M, F) float64
        One row per distinct value (compressed) or per usable pixel.
    weights : ndarray (M,) or None
        Pixel count of each row; None when every row is one pixel.
    inverse : ndarray (n_usable,) or None
        Row of ``X`` for each usable pixel, in C order; None when rows are pixels.
    raw : ndarray (M, C) or None
        The distinct pixel values (all channels, image units) behind the rows.
    names : list of str
        Feature names, e.g. ``["L", "a", "b", "y", "x"]``.
    compression : str
        Which route was taken and why (recorded in ``Segmentation.params``).
    """

    X: np.ndarray
    weights: np.ndarray | None
    inverse: np.ndarray | None
    raw: np.ndarray | None
    names: list[str]
    compression: str
    standardization: dict[str, Any] = field(default_factory=dict)

    @property
    def n_pixels(self) -> int:
        return len(self.X) if self.weights is None else int(self.weights.sum())

    def pixel_weights(self) -> np.ndarray:
        return np.ones(len(self.X)) if self.weights is None else self.weights

    def to_pixels(self, row_values: np.ndarray) -> np.ndarray:
        """Values per row -> values per usable pixel."""
        if self.inverse is None:
            return row_values
        if row_values.dtype == self.inverse.dtype == np.int32 and row_values.ndim == 1:
            from . import _distinct_loops  # labels: a compiled lookup, on every core

            return _distinct_loops.take(row_values, self.inverse)
        return row_values[self.inverse]


def check_color_space(data: ImageData[Any], color_space: str | None) -> str | None:
    """Return the color space to use (None = raw channels), or raise ValueError."""
    if color_space is None:
        return "rgb" if data.is_color else None
    if color_space not in COLOR_SPACES:
        raise ValueError(
            f"color_space: unknown color space {color_space!r}; use one of "
            f"{', '.join(map(repr, COLOR_SPACES))} (or None)."
        )
    if not data.is_color:
        raw_values = "intensity" if data.kind == "grey" else "channels"
        raise ValueError(
            f"color_space: {color_space!r} applies to RGB images, but this image is "
            f"{data.kind} and is clustered on its raw {raw_values}; "
            "leave color_space as None (or pass rgb=True if the last axis holds RGB)."
        )
    return color_space


def usable_values(data: ImageData[np.ndarray]) -> np.ndarray:
    """``(n_usable, C)`` pixel values, all channels; a view when every pixel is usable."""
    flat = data.pixels.reshape(-1, data.n_channels)
    return flat if data.mask.all() else flat[data.mask.ravel()]


def build_features(
    data: ImageData[np.ndarray],
    color_space: str | None = None,
    spatial_weight: float = 0.0,
    standardize: bool = False,
    compress: bool = True,
    fixed: dict[str, Any] | None = None,
    coordinates: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    stain_vectors: Any = None,
    stain_background: float = DEFAULT_BACKGROUND,
) -> FeatureSet:
    """Feature vectors for the usable pixels of ``data`` (see :class:`FeatureSet`).

    ``fixed`` holds scaling constants of an earlier image (``FeatureSet.standardization``
    of a fitted model): they are applied instead of being measured on this image.
    ``coordinates`` ``(n_usable, ndim)`` are the usable pixels' positions when ``data`` is
    a piece of a larger image (a chunk, or a sample of pixels); default their indices.
    ``counts`` ``(n_usable,)`` say that the pixels of ``data`` are already the distinct
    values of a larger image (a lazy image's histogram), each standing for that many
    pixels: they are the rows, weighted by their counts.
    ``stain_vectors`` and ``stain_background`` are the stain options of color space
    "stains" (see :func:`~.stains.resolve_stain_vectors`): the vectors used (a fitted
    model's from ``fixed``, or estimated on the weighted rows) are kept in
    ``standardization["stain_vectors"]``.
    """
    fixed = fixed or {}
    color_space = check_color_space(data, color_space)
    values = usable_values(data)
    weights = inverse = raw = None
    if counts is not None:
        raw, weights = values, counts
        compression = f"distinct values: {len(raw):,} rows given with their counts"
    else:
        compression = _compression_route(values, spatial_weight, compress)
        if compression.startswith("distinct"):
            raw, weights, inverse = distinct_rows(values)
            values = raw
            compression = f"distinct values: {len(raw):,} rows for {len(inverse):,} pixels"
    stains = None
    if color_space == USER_STAINS:
        stains = resolve_stain_vectors(
            stain_vectors, rgb_to_unit_range(values[:, :3]), weights, stain_background, fixed
        )
    X, names = _value_features(
        values[:, : data.color_channels.shape[-1]], data, color_space, stains
    )
    standardization: dict[str, Any] = {}
    if standardize:
        X, standardization = _standardize(X, weights, fixed)
    if stains is not None:
        standardization["stain_vectors"] = stains.record()
    if spatial_weight > 0:
        if coordinates is None:
            coordinates = np.stack(np.nonzero(data.mask), axis=1)
        X, names, spatial = _append_coordinates(
            X, names, coordinates, spatial_weight, weights, fixed
        )
        standardization |= spatial
    return FeatureSet(X, weights, inverse, raw, names, compression, standardization)


def _compression_route(values: np.ndarray, spatial_weight: float, compress: bool) -> str:
    if not compress:
        return "none: this method clusters the pixel grid"
    if spatial_weight > 0:
        return "none: spatial features make every pixel distinct"
    if np.issubdtype(values.dtype, np.floating):
        rng = np.random.default_rng(0)
        sample = values[rng.integers(0, len(values), min(len(values), FLOAT_SAMPLE_SIZE))]
        share = len(np.unique(sample, axis=0)) / len(sample)
        if share > FLOAT_DISTINCT_SHARE:
            return f"none: float pixels are mostly distinct ({share:.0%} of a sample)"
    return "distinct values"


def distinct_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of an ``(N, C)`` array with their counts and the inverse index.

    Integer values are packed into one integer key per pixel; when the key range is small
    enough for one bit per possible key (uint8 RGB, uint16 grey, and any integer image whose
    channels span few values) the rows are found without sorting, in two compiled passes
    (:mod:`._distinct_loops`); otherwise the keys are sorted (``np.unique``). Either way
    the result is ``np.unique(values, axis=0, return_inverse=True, return_counts=True)``'s.

    Returns
    -------
    rows : (M, C) ndarray, same dtype as ``values``
    counts : (M,) float64
    inverse : (N,) int32 (or int64 beyond 2**31 rows), ``rows[inverse] == values``
    """
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        compiled = _bitset_rows(values)
        if compiled is not None:
            return compiled
        packed = _pack_integer_rows(values)
        if packed is not None:
            return packed
    rows, inverse, counts = np.unique(values, axis=0, return_inverse=True, return_counts=True)
    return rows, counts.astype(np.float64), _small_index(inverse.reshape(-1), len(rows))


def channel_ranges(values: np.ndarray) -> tuple[list[int], list[int]]:
    """Lowest value and number of possible values per channel (dtype range for 8/16 bit)."""
    if values.dtype in (np.uint8, np.uint16, np.bool_):
        n = 2 if values.dtype == np.bool_ else int(np.iinfo(values.dtype).max) + 1
        return [0] * values.shape[1], [n] * values.shape[1]
    lows = [int(values[:, c].min()) for c in range(values.shape[1])]
    highs = [int(values[:, c].max()) for c in range(values.shape[1])]
    return lows, [high - low + 1 for low, high in zip(lows, highs)]


def pack_keys(values: np.ndarray, lows: Sequence[int], spans: Sequence[int]) -> np.ndarray:
    """One int64 key per row of integers: the row's index in the grid of possible values."""
    keys = np.zeros(len(values), dtype=np.int64)
    for channel, (low, span) in enumerate(zip(lows, spans)):
        keys *= span
        column = values[:, channel]
        if column.dtype == np.uint64:  # subtract first: values above 2**63 fit no int64
            column = (column - np.uint64(low)).astype(np.int64)
        elif low or not np.can_cast(column.dtype, np.int64):
            column = column.astype(np.int64) - low
        keys += column
    return keys


def unpack_keys(
    keys: np.ndarray, lows: Sequence[int], spans: Sequence[int], dtype: npt.DTypeLike
) -> np.ndarray:
    """The rows of integers that :func:`pack_keys` packed into ``keys``."""
    rows = np.empty((len(keys), len(spans)), dtype=np.int64)
    remaining = keys.astype(np.int64)
    for channel in range(len(spans) - 1, -1, -1):
        remaining, rows[:, channel] = np.divmod(remaining, spans[channel])
    if np.dtype(dtype) == np.uint64:  # add in uint64: the values may exceed int64
        return rows.astype(np.uint64) + np.asarray(lows, dtype=np.uint64)
    rows += np.asarray(lows, dtype=np.int64)
    return rows.astype(dtype)


def _bitset_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`distinct_rows` of integers whose keys fit a bitset (see
    :func:`bitset_max_keys`): each channel takes as many bits of the key as its values
    need (8 per channel for uint8; the range present when the dtype's is too large).
    None when they do not fit."""
    if len(values) == 0:
        return None
    original_bool = values.dtype == bool
    if original_bool:
        values = values.view(np.uint8)
        lows, spans = [0] * values.shape[1], [2] * values.shape[1]
    else:
        lows, spans = channel_ranges(values)
    widths = [(span - 1).bit_length() for span in spans]
    if sum(widths) > bitset_max_bits(len(values)) and values.dtype in (np.uint8, np.uint16):
        lows = [int(values[:, c].min()) for c in range(values.shape[1])]
        spans = [int(values[:, c].max()) - low + 1 for c, low in enumerate(lows)]
        widths = [(span - 1).bit_length() for span in spans]
    if sum(widths) > bitset_max_bits(len(values)):
        return None
    from . import _distinct_loops

    if values.dtype in (np.uint8, np.uint16):
        packed = np.ascontiguousarray(values)
        key_lows, key_widths = lows, widths
    else:  # one int64 key column: the packing of every other dtype, exactly
        packed = pack_keys(values, lows, [1 << width for width in widths])[:, None]
        key_lows, key_widths = [0], [sum(widths)]
    rows, counts, inverse = _distinct_loops.distinct_keyed_rows(
        packed, np.asarray(key_lows, dtype=np.int64), np.asarray(key_widths, dtype=np.uint64)
    )
    if values.dtype not in (np.uint8, np.uint16):  # the keys, in one column
        rows = unpack_keys(rows[:, 0], lows, [1 << width for width in widths], values.dtype)
    return rows.view(bool) if original_bool else rows, counts, inverse


def bitset_max_bits(n_rows: int) -> int:
    """Key bits of the largest bitset worth its memory for ``n_rows`` rows: 2**26 keys
    (8 MB) or BITSET_KEYS_PER_ROW per row, at most 2**BITSET_MAX_BITS keys."""
    per_row = (BITSET_KEYS_PER_ROW * n_rows).bit_length() - 1
    return min(BITSET_MAX_BITS, max(BITSET_MIN_BITS, per_row))


def _pack_integer_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    lows, spans = channel_ranges(values)
    n_keys = int(np.prod(spans, dtype=object))
    if n_keys >= 2**62:
        return None
    keys = pack_keys(values, lows, spans)
    present: np.ndarray
    inverse: np.ndarray
    counts: np.ndarray
    if n_keys <= min(BINCOUNT_MAX_KEYS, BINCOUNT_KEYS_PER_PIXEL * len(values) + 2**16):
        counts_by_key = np.bincount(keys, minlength=n_keys)
        present = np.flatnonzero(counts_by_key)
        counts = counts_by_key[present].astype(np.float64)
        del counts_by_key
        row_of_key = np.zeros(n_keys, dtype=_index_dtype(len(present)))
        row_of_key[present] = np.arange(len(present), dtype=row_of_key.dtype)
        inverse = row_of_key[keys]
    else:
        present, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        inverse, counts = _small_index(inverse, len(present)), counts.astype(np.float64)
    del keys
    return unpack_keys(present, lows, spans, values.dtype), counts, inverse


def _index_dtype(n_rows: int) -> type[np.int32 | np.int64]:
    return np.int32 if n_rows < 2**31 else np.int64


def _small_index(inverse: np.ndarray, n_rows: int) -> np.ndarray:
    return inverse.astype(_index_dtype(n_rows), copy=False)


def rgb_to_unit_range(values: np.ndarray) -> np.ndarray:
    """RGB values in the image's units -> float64 in [0, 1] (skimage's img_as_float rule)."""
    if np.issubdtype(values.dtype, np.integer):
        return values / float(np.iinfo(values.dtype).max)
    return values.astype(np.float64)


def _value_features(
    values: np.ndarray,
    data: ImageData[np.ndarray],
    color_space: str | None,
    stains: StainVectors | None = None,
) -> tuple[np.ndarray, list[str]]:
    if color_space is None:
        return values.astype(np.float64), data.channel_names[: values.shape[1]]
    return color_coordinates(values, color_space, stains)


def color_coordinates(
    rgb_values: np.ndarray, color_space: str, stains: StainVectors | None = None
) -> tuple[np.ndarray, list[str]]:
    """(N, 3) RGB values in the image's units -> coordinates in ``color_space``, names."""
    return unit_rgb_coordinates(rgb_to_unit_range(rgb_values), color_space, stains)


def unit_rgb_coordinates(
    rgb: np.ndarray, color_space: str, stains: StainVectors | None = None
) -> tuple[np.ndarray, list[str]]:
    """(..., 3) float RGB in [0, 1] -> coordinates in ``color_space`` (same shape), names.

    Stain spaces give each stain's concentration, as ``skimage.color.rgb2hed`` does;
    "stains" with the vectors ``stains`` (``separate_stains(rgb, inv(vectors))``).
    """
    if color_space == USER_STAINS:
        if stains is None:
            raise ValueError("stain_vectors: color_space 'stains' needs stain vectors.")
        return stains.concentrations(rgb), list(stains.names)
    if color_space == "rgb":
        return rgb, ["R", "G", "B"]
    from skimage import color

    if color_space == "lab":
        return color.rgb2lab(rgb), ["L", "a", "b"]
    if color_space == "hsv":
        return color.rgb2hsv(rgb), ["H", "S", "V"]
    matrix_name, stain_names = STAIN_SPACES[color_space]
    return color.separate_stains(rgb, getattr(color, matrix_name)), list(stain_names)


def stain_options(feature_options: dict[str, Any]) -> dict[str, Any]:
    """The stain options of checked ``feature_options``, as keywords of
    :func:`build_features` (their defaults where absent)."""
    return {
        "stain_vectors": feature_options.get("stain_vectors"),
        "stain_background": feature_options.get("stain_background", DEFAULT_BACKGROUND),
    }


def image_stain_vectors(
    data: ImageData[np.ndarray], color_space: str | None, feature_options: dict[str, Any]
) -> StainVectors | None:
    """The stain vectors of color space "stains" for the usable pixels of ``data`` (None
    for other color spaces), estimated on its distinct values and their counts exactly
    as :func:`build_features` does: for methods that convert the whole image at once."""
    if color_space != USER_STAINS:
        return None
    rows, counts, _ = distinct_rows(usable_values(data)[:, :3])
    options = stain_options(feature_options)
    return resolve_stain_vectors(
        options["stain_vectors"], rgb_to_unit_range(rows), counts, options["stain_background"]
    )


def weighted_mean_var(X: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance, each row counted ``weights`` times.

    The same bits as ``np.average`` of the rows and of their squared deviations; compiled
    for many rows of two or more float64 columns in C order (where numpy sums the rows
    one after the other).
    """
    if _sums_row_after_row(X, weights):
        from . import _distinct_loops

        if weights is None:  # numpy divides by the number of rows
            return _distinct_loops.column_mean_var(X, np.empty(0), float(len(X)))
        total = float(np.sum(weights[:, None], axis=0)[0])  # as np.average sums them
        if total == 0:
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        return _distinct_loops.column_mean_var(X, weights, total)
    mean = np.average(X, axis=0, weights=weights)
    var = np.average((X - mean) ** 2, axis=0, weights=weights)
    return mean, var


def column_variance(X: np.ndarray) -> np.ndarray:
    """``np.var(X, axis=0)``, the same bits (compiled like :func:`weighted_mean_var`)."""
    if _sums_row_after_row(X, None):
        return weighted_mean_var(X, None)[1]
    return np.var(X, axis=0)


def _sums_row_after_row(X: np.ndarray, weights: np.ndarray | None) -> bool:
    """Whether numpy sums the columns of ``X`` row after row (C order, two or more columns)
    and there are enough rows for the compiled loops to pay."""
    return (
        X.ndim == 2
        and X.shape[1] >= 2
        and len(X) >= COMPILED_STATISTICS_MIN_ROWS
        and X.dtype == np.float64
        and X.flags.c_contiguous
        and (weights is None or (weights.dtype == np.float64 and weights.shape == (len(X),)))
    )


def _standardize(
    X: np.ndarray, weights: np.ndarray | None, fixed: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    if "mean" in fixed:
        mean, scale = np.asarray(fixed["mean"]), np.asarray(fixed["scale"])
    else:
        mean, var = weighted_mean_var(X, weights)
        scale = np.sqrt(var)
        scale[scale == 0] = 1.0
    return (X - mean) / scale, {"mean": mean.tolist(), "scale": scale.tolist()}


def _append_coordinates(
    X: np.ndarray,
    names: list[str],
    coordinates: npt.ArrayLike,
    spatial_weight: float,
    weights: np.ndarray | None,
    fixed: dict[str, Any],
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Append pixel coordinates scaled to ``spatial_weight`` times the features' spread.

    With ``spatial_weight=1`` position and value have the same mean variance per feature,
    so they count equally; larger values favour compact regions. Returns the constants
    used (center and scale of the coordinates) so that a model can reuse them.
    """
    coords = np.asarray(coordinates, dtype=np.float64)
    if "coordinate_mean" in fixed:
        center, factor = np.asarray(fixed["coordinate_mean"]), fixed["coordinate_scale"]
    else:
        center = coords.mean(axis=0)
        value_spread = np.sqrt(np.mean(weighted_mean_var(X, weights)[1]))
        coord_spread = np.sqrt(np.mean((coords - center).var(axis=0)))
        factor = (
            spatial_weight * (value_spread if value_spread > 0 else 1.0) / coord_spread
            if coord_spread > 0
            else 1.0
        )
    coords = (coords - center) * factor
    axis_names = (
        ["z", "y", "x"][-coords.shape[1] :]
        if coords.shape[1] <= 3
        else [f"axis{i}" for i in range(coords.shape[1])]
    )
    constants = {"coordinate_mean": center.tolist(), "coordinate_scale": float(factor)}
    return np.hstack([X, coords]), names + axis_names, constants
