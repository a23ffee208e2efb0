"""Image -> feature matrix: colour spaces, standardisation, spatial coordinates.

Features that depend only on a pixel's value are computed once per *distinct* value: the
rows of :class:`FeatureSet` are then the distinct values, ``weights`` are their pixel
counts and ``inverse`` maps every usable pixel back to its row. A method fitted on the
weighted rows optimises the same objective as on all pixels, at a fraction of the cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage import color

from .image import ImageData

COLOR_SPACES = ("rgb", "lab", "hsv")
#: Packed keys up to this many possible values are counted with one ``np.bincount``.
BINCOUNT_MAX_KEYS = 2**25
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
    names : list of str
        Feature names, e.g. ``["L", "a", "b", "y", "x"]``.
    compression : str
        Which route was taken and why (recorded in ``Segmentation.params``).
    """

    X: np.ndarray
    weights: np.ndarray | None
    inverse: np.ndarray | None
    names: list[str]
    compression: str
    standardization: dict = field(default_factory=dict)

    @property
    def n_pixels(self) -> int:
        return len(self.X) if self.weights is None else int(self.weights.sum())

    def pixel_weights(self) -> np.ndarray:
        return np.ones(len(self.X)) if self.weights is None else self.weights

    def to_pixels(self, row_values: np.ndarray) -> np.ndarray:
        """Values per row -> values per usable pixel."""
        return row_values if self.inverse is None else row_values[self.inverse]


def check_color_space(data: ImageData, color_space: str | None) -> str | None:
    """Return the colour space to use (None = raw channels), or raise ValueError."""
    if color_space is None:
        return "rgb" if data.is_color else None
    if color_space not in COLOR_SPACES:
        raise ValueError(
            f"color_space: unknown colour space {color_space!r}; use one of "
            f"{', '.join(map(repr, COLOR_SPACES))} (or None)."
        )
    if not data.is_color:
        raise ValueError(
            f"color_space: {color_space!r} applies to RGB images, but this image is "
            f"{data.kind} and is clustered on its raw {'intensity' if data.kind == 'grey' else 'channels'}; "
            "leave color_space as None (or pass rgb=True if the last axis holds RGB)."
        )
    return color_space


def build_features(
    data: ImageData,
    color_space: str | None = None,
    spatial_weight: float = 0.0,
    standardize: bool = False,
    compress: bool = True,
) -> FeatureSet:
    """Feature vectors for the usable pixels of ``data`` (see :class:`FeatureSet`)."""
    color_space = check_color_space(data, color_space)
    values = data.color_channels[data.mask]
    weights = inverse = None
    compression = _compression_route(values, spatial_weight, compress)
    if compression.startswith("distinct"):
        values, weights, inverse = distinct_rows(values)
        compression = f"distinct values: {len(values):,} rows for {len(inverse):,} pixels"
    X, names = _value_features(values, data, color_space)
    standardization = {}
    if standardize:
        X, standardization = _standardize(X, weights)
    if spatial_weight > 0:
        X, names = _append_coordinates(X, names, data.mask, spatial_weight, weights)
    return FeatureSet(X, weights, inverse, names, compression, standardization)


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


def distinct_rows(values: np.ndarray):
    """Distinct rows of an ``(N, C)`` array with their counts and the inverse index.

    Integer values are packed into one integer key per pixel; when the key range is small
    (uint8 RGB, uint16 grey) the counting is a single O(N) ``np.bincount``.

    Returns
    -------
    rows : (M, C) ndarray, same dtype as ``values``
    counts : (M,) float64
    inverse : (N,) intp, ``rows[inverse] == values``
    """
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        packed = _pack_integer_rows(values)
        if packed is not None:
            return packed
    rows, inverse, counts = np.unique(values, axis=0, return_inverse=True, return_counts=True)
    return rows, counts.astype(np.float64), inverse.reshape(-1)


def _pack_integer_rows(values: np.ndarray):
    lows = values.min(axis=0).astype(np.int64)
    spans = values.max(axis=0).astype(np.int64) - lows + 1
    n_keys = int(np.prod([int(s) for s in spans]))
    if n_keys >= 2**62:
        return None
    keys = np.zeros(len(values), dtype=np.int64)
    for channel, (low, span) in enumerate(zip(lows, spans)):
        keys *= span
        keys += values[:, channel].astype(np.int64) - low
    if n_keys <= BINCOUNT_MAX_KEYS:
        counts_by_key = np.bincount(keys, minlength=n_keys)
        present = np.flatnonzero(counts_by_key)
        row_of_key = np.zeros(n_keys, dtype=np.intp)
        row_of_key[present] = np.arange(len(present))
        inverse, counts = row_of_key[keys], counts_by_key[present]
    else:
        present, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    rows = np.empty((len(present), values.shape[1]), dtype=np.int64)
    remaining = present.astype(np.int64)
    for channel in range(values.shape[1] - 1, -1, -1):
        remaining, rows[:, channel] = np.divmod(remaining, spans[channel])
    rows += lows
    return rows.astype(values.dtype), counts.astype(np.float64), inverse.reshape(-1)


def rgb_to_unit_range(values: np.ndarray) -> np.ndarray:
    """RGB values in the image's units -> float64 in [0, 1] (skimage's img_as_float rule)."""
    if np.issubdtype(values.dtype, np.integer):
        return values / float(np.iinfo(values.dtype).max)
    return values.astype(np.float64)


def _value_features(values: np.ndarray, data: ImageData, color_space: str | None):
    if color_space is None:
        return values.astype(np.float64), data.channel_names[: values.shape[1]]
    rgb = rgb_to_unit_range(values)
    if color_space == "rgb":
        return rgb, ["R", "G", "B"]
    if color_space == "lab":
        return color.rgb2lab(rgb), ["L", "a", "b"]
    return color.rgb2hsv(rgb), ["H", "S", "V"]


def weighted_mean_var(X: np.ndarray, weights: np.ndarray | None):
    """Per-feature mean and variance, each row counted ``weights`` times."""
    mean = np.average(X, axis=0, weights=weights)
    var = np.average((X - mean) ** 2, axis=0, weights=weights)
    return mean, var


def _standardize(X: np.ndarray, weights: np.ndarray | None):
    mean, var = weighted_mean_var(X, weights)
    scale = np.sqrt(var)
    scale[scale == 0] = 1.0
    return (X - mean) / scale, {"mean": mean.tolist(), "scale": scale.tolist()}


def _append_coordinates(X, names, mask, spatial_weight, weights):
    """Append pixel coordinates scaled to ``spatial_weight`` times the features' spread.

    With ``spatial_weight=1`` position and value have the same mean variance per feature,
    so they count equally; larger values favour compact regions.
    """
    coords = np.stack(np.nonzero(mask), axis=1).astype(np.float64)
    coords -= coords.mean(axis=0)
    value_spread = np.sqrt(np.mean(weighted_mean_var(X, weights)[1]))
    coord_spread = np.sqrt(np.mean(coords.var(axis=0)))
    if coord_spread > 0:
        coords *= spatial_weight * (value_spread if value_spread > 0 else 1.0) / coord_spread
    axis_names = ["z", "y", "x"][-coords.shape[1]:] if coords.shape[1] <= 3 else [
        f"axis{i}" for i in range(coords.shape[1])
    ]
    return np.hstack([X, coords]), names + axis_names
