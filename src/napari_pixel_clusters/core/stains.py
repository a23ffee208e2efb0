"""Stain vectors for color deconvolution: given by the user, or estimated (Macenko).

Brightfield stains absorb light: the optical density (OD) of a pixel, ``-log10`` of its
transmitted share per channel, is the sum of each stain's concentration times that
stain's OD vector (Ruifrok & Johnston 2001). :class:`StainVectors` holds three unit OD
vectors, one row per stain (a residual third row when two stains are given), and turns
RGB values into concentrations with ``skimage.color.separate_stains(rgb,
inv(vectors))``, as ``rgb2hed`` does with its own matrix.

:func:`estimate_stain_vectors` is Macenko et al. 2009 ("A method for normalizing
histology slides for quantitative analysis", ISBI), computed on weighted rows (distinct
colors and their pixel counts), so that it is exact on the distinct-value route and the
same on a lazy image's histogram as in memory.

Optical density here is scikit-image's: ``-log10(max(rgb, 1e-6))`` with RGB in [0, 1]
(``separate_stains`` uses the same logarithm divided by 6, which changes no direction).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The value of ``stain_vectors`` that estimates them from the image (Macenko).
ESTIMATE = "estimate"
#: Macenko's beta: pixels whose OD is below this in every channel are background.
DEFAULT_BACKGROUND = 0.15
#: Macenko's alpha (percent): the robust extreme angles are these percentiles.
ALPHA_PERCENT = 1.0
#: An estimate needs at least this many tissue pixels (OD at least the background).
MIN_TISSUE_PIXELS = 50
#: The smallest transmitted share (skimage's: keeps the logarithm finite).
MIN_RGB = 1e-6
#: Stain rows may have OD components down to this (rounding in published vectors); a
#: clearly negative component would be a stain that adds light.
MIN_COMPONENT = -0.05
#: Two estimated stains closer than this (degrees) are one stain seen twice (a slide
#: with one stain, or noise around one color): the estimate is refused. Real stain pairs
#: are 20-40 degrees apart (hematoxylin-eosin, hematoxylin-DAB).
MIN_STAIN_ANGLE = 5.0
#: Matrices whose condition number exceeds this are refused as (nearly) singular.
MAX_CONDITION = 1e6
#: Names a stain cannot take: the position features' names.
RESERVED_NAMES = ("z", "y", "x")
#: A stain vectors file is at most this large (a few rows of numbers and names).
MAX_FILE_BYTES = 1 << 16


@dataclass(frozen=True, eq=False)
class StainVectors:
    """Three unit OD vectors (rows, in RGB order), their names, and whether they were
    estimated from the image."""

    names: tuple[str, str, str]
    vectors: np.ndarray  # (3, 3) float64, unit rows
    estimated: bool = False

    def concentrations(self, rgb: np.ndarray) -> np.ndarray:
        """(..., 3) float RGB in [0, 1] -> each stain's concentration (skimage's units)."""
        from skimage.color import separate_stains

        return separate_stains(rgb, np.linalg.inv(self.vectors))

    def record(self) -> dict[str, Any]:
        """As ``params["stain_vectors"]`` and model files keep them (plain JSON)."""
        return {
            "names": list(self.names),
            "vectors": self.vectors.tolist(),
            "estimated": self.estimated,
        }


def check_stain_vectors(value: Any) -> Any:
    """``stain_vectors`` checked: None, ``"estimate"``, or the record (see
    :meth:`StainVectors.record`) of the vectors given, or raise ``ValueError`` starting
    ``"stain_vectors:"``.

    Accepted: a 3x3 or 2x3 array-like (one row per stain, RGB optical densities); a
    dict ``{"stain name": [r, g, b], ...}`` of 2 or 3 stains (in that order); a dict
    ``{"names": [...], "vectors": [[...], ...]}`` (a recorded ``params["stain_vectors"]``).
    """
    if value is None or (isinstance(value, str) and value == ESTIMATE):
        return value
    return parse_stain_vectors(value).record()


def parse_stain_vectors(value: Any) -> StainVectors:
    """:class:`StainVectors` from any form :func:`check_stain_vectors` accepts but
    ``"estimate"``; rows normalised to unit length, a residual third row added to two."""
    if isinstance(value, str):
        raise ValueError(
            f"stain_vectors: expected {ESTIMATE!r}, a 3x3 or 2x3 table of optical densities "
            f"or a dict of stain names and vectors, got the text {value[:60]!r}."
        )
    names: list[str] | None = None
    if isinstance(value, dict):
        if "vectors" in value and set(value) <= {"names", "vectors", "estimated"}:
            names, rows = value.get("names"), value["vectors"]
            if names is not None:
                names = _check_names(names)
        else:
            names, rows = _check_names(list(value)), list(value.values())
    else:
        rows = value
    matrix = _as_matrix(rows)
    if names is not None and len(names) not in (len(matrix), 3):
        raise ValueError(
            f"stain_vectors: {len(names)} names for {len(matrix)} vectors; give one name "
            "per vector."
        )
    return from_rows(matrix, names)


def from_rows(
    matrix: np.ndarray, names: Sequence[str] | None = None, estimated: bool = False
) -> StainVectors:
    """:class:`StainVectors` of a checked (2 or 3, 3) matrix: unit rows, a residual.

    Rows of length 1 (to 1e-12) are kept as they are: recorded vectors passed back are
    used bit for bit."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = np.where(np.abs(norms - 1.0) <= 1e-12, matrix, matrix / norms)
    if len(unit) == 2:
        unit = np.vstack([unit, residual(unit[0], unit[1])])
    condition = np.linalg.cond(unit)
    if not np.isfinite(condition) or condition > MAX_CONDITION:
        raise ValueError(
            "stain_vectors: the vectors are linearly dependent (one is a mix of the others, "
            "or two are parallel), so no concentrations can be told apart; give vectors of "
            "different directions."
        )
    default = ["stain 1", "stain 2", "residual" if len(matrix) == 2 else "stain 3"]
    chosen = list(names) if names is not None else default
    if len(chosen) == 2:
        chosen.append("residual")
    if len(set(chosen)) != 3:
        raise ValueError(f"stain_vectors: the names must differ, got {chosen}.")
    return StainVectors((chosen[0], chosen[1], chosen[2]), unit, estimated)


def residual(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The third row of two stains: their normalised cross product (as QuPath and
    scikit-image's hematoxylin + DAB matrix complete two stains)."""
    cross = np.cross(first, second)
    norm = float(np.linalg.norm(cross))
    if norm < 1e-9:
        raise ValueError(
            "stain_vectors: the two stain vectors are parallel, so the stains cannot be "
            "told apart; give vectors of different directions."
        )
    return cross / norm


def _check_names(names: Any) -> list[str]:
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"stain_vectors: the names must be texts, got {names!r:.80}.")
    cleaned = [name.strip() for name in names]
    if not 2 <= len(cleaned) <= 3:
        raise ValueError(f"stain_vectors: expected 2 or 3 stains, got {len(cleaned)}.")
    bad = [name for name in cleaned if not name or len(name) > 60 or name in RESERVED_NAMES]
    if bad:
        raise ValueError(
            f"stain_vectors: {bad[0]!r} cannot name a stain (names are 1 to 60 characters, "
            f"not {', '.join(RESERVED_NAMES)}: those name positions)."
        )
    return cleaned


def _as_matrix(rows: Any) -> np.ndarray:
    """A (2 or 3, 3) finite float64 matrix of stain rows, or ValueError."""
    matrix = None
    try:
        if not np.iscomplexobj(rows) and not isinstance(rows, (str, bytes)):
            matrix = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        matrix = None
    if matrix is None:
        raise ValueError(
            "stain_vectors: expected a 3x3 or 2x3 table of numbers (one row of red, green "
            f"and blue optical densities per stain), got {rows!r:.80}."
        )
    if matrix.ndim != 2 or matrix.shape[1] != 3 or matrix.shape[0] not in (2, 3):
        raise ValueError(
            "stain_vectors: expected shape (3, 3) or (2, 3) (one row of red, green and "
            f"blue optical densities per stain), got shape {matrix.shape}."
        )
    if not np.isfinite(matrix).all():
        raise ValueError("stain_vectors: every value must be a finite number (no NaN or inf).")
    norms = np.linalg.norm(matrix, axis=1)
    if (norms == 0).any() or not np.isfinite(norms).all():
        row = int(np.flatnonzero((norms == 0) | ~np.isfinite(norms))[0]) + 1
        raise ValueError(
            f"stain_vectors: row {row} has no direction (all zeros, or too large); every "
            "stain needs a nonzero vector."
        )
    stains = matrix[:2] / norms[:2, None]  # a third row may be a residual: any sign
    if (stains < MIN_COMPONENT).any():
        row = int(np.flatnonzero((stains < MIN_COMPONENT).any(axis=1))[0]) + 1
        raise ValueError(
            f"stain_vectors: row {row} has a negative optical density "
            f"({matrix[row - 1].tolist()}); a stain absorbs light, so its components are "
            f"0 or more (down to {MIN_COMPONENT} of its length, for rounding). A third "
            "row may be a residual of any sign."
        )
    return matrix


# ------------------------------------------------------------------------- estimate
def optical_density(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) float RGB in [0, 1] -> optical density ``-log10(max(rgb, 1e-6))``."""
    return -np.log10(np.maximum(rgb, MIN_RGB))


def estimate_stain_vectors(
    rgb: np.ndarray,
    weights: np.ndarray | None = None,
    background: float = DEFAULT_BACKGROUND,
) -> StainVectors:
    """Macenko's two stain vectors of the colors ``rgb`` ``(N, 3)`` in [0, 1], each
    counted ``weights`` times (pixel counts of distinct colors; None: once each).

    1. Optical densities; rows whose OD is below ``background`` in every channel
       (bright in red, green and blue) are background and dropped. (Dropping rows below
       it in *any* channel, as some implementations do, would drop every pure eosin
       pixel: eosin's red OD is 0.07 per unit of stain; it cost 10 degrees on eosin.)
    2. The plane of the two largest eigenvectors of the tissue ODs' (weighted)
       covariance; the first oriented along the mean OD.
    3. The angle of every tissue OD in that plane; the robust extremes are its weighted
       1st and 99th percentiles (inverted CDF: exactly a pixel's angle, the same
       whether rows are pixels or distinct colors with their counts).
    4. The unit vectors at those angles are the stains: signs made positive (slightly
       negative components set to 0), the one with the larger red OD first
       (hematoxylin-like before eosin or DAB), the residual third.
    """
    od = optical_density(rgb)
    counts = np.ones(len(od)) if weights is None else np.asarray(weights, dtype=np.float64)
    tissue = (od >= background).any(axis=1) & (counts > 0)
    n_tissue = float(counts[tissue].sum())
    if n_tissue < MIN_TISSUE_PIXELS:
        raise ValueError(
            f"stain_background: only {n_tissue:,.0f} of {counts.sum():,.0f} pixels have an "
            f"optical density of at least {background} in some channel (tissue); "
            f"estimating stain vectors needs at least {MIN_TISSUE_PIXELS}. Lower "
            "stain_background, or give the stain vectors."
        )
    od, counts = od[tissue], counts[tissue]
    plane = _principal_plane(od, counts)
    projected = od @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = weighted_percentiles(angles, counts, (ALPHA_PERCENT, 100.0 - ALPHA_PERCENT))
    if high - low < 1e-6:
        raise ValueError(
            "stain_vectors: the tissue pixels show a single color direction, so two stains "
            "cannot be estimated; give the stain vectors, or use color space 'rgb' or 'lab'."
        )
    stains = [_positive(plane @ np.array([math.cos(a), math.sin(a)])) for a in (low, high)]
    stains.sort(key=lambda v: -v[0])  # larger red OD first: hematoxylin-like
    apart = math.degrees(math.acos(min(1.0, float(stains[0] @ stains[1]))))
    if apart < MIN_STAIN_ANGLE:
        raise ValueError(
            f"stain_vectors: the two stains estimated are only {apart:.1f} degrees apart "
            f"(at least {MIN_STAIN_ANGLE:g} are needed): the tissue shows one stain, so "
            "two cannot be separated; give the stain vectors, or use color space 'rgb' "
            "or 'lab'."
        )
    return from_rows(np.array(stains), None, estimated=True)


def _principal_plane(od: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(3, 2): the two largest eigenvectors of the weighted covariance, the first
    oriented along the mean OD (so the angles stay clear of the wrap at +-pi)."""
    mean = np.average(od, axis=0, weights=counts)
    centered = od - mean
    covariance = (centered * counts[:, None]).T @ centered / counts.sum()
    _, vectors = np.linalg.eigh(covariance)
    plane = vectors[:, [2, 1]]
    if plane[:, 0] @ mean < 0:
        plane[:, 0] *= -1
    if plane[:, 1].sum() < 0:  # either sign gives the same stains; this one is fixed
        plane[:, 1] *= -1
    return plane


def _positive(vector: np.ndarray) -> np.ndarray:
    """A stain's direction with positive optical densities, unit length."""
    vector = -vector if vector.sum() < 0 else vector
    vector = np.maximum(vector, 0.0)
    return vector / np.linalg.norm(vector)


def weighted_percentiles(
    values: np.ndarray, weights: np.ndarray, percents: Sequence[float]
) -> list[float]:
    """Percentiles of ``values`` each counted ``weights`` times (inverted CDF: the
    smallest value whose cumulative weight reaches the share; numpy's
    ``percentile(..., method="inverted_cdf")`` for unit weights)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    total = cumulative[-1]
    picks = np.searchsorted(cumulative, [p / 100.0 * total for p in percents], side="left")
    return [float(values[order[min(i, len(order) - 1)]]) for i in picks]


# ------------------------------------------------------------------------- options
def resolve_stain_vectors(
    stain_vectors: Any,
    rgb: np.ndarray,
    weights: np.ndarray | None,
    background: float,
    fixed: dict[str, Any] | None = None,
) -> StainVectors:
    """The vectors a feature set uses: those of ``fixed`` (a fitted model's, never
    estimated again), else estimated from ``rgb`` (and ``weights``) for ``"estimate"``,
    else the ones given."""
    if fixed and fixed.get("stain_vectors") is not None:
        recorded = fixed["stain_vectors"]
        vectors = parse_stain_vectors(recorded)
        return StainVectors(vectors.names, vectors.vectors, bool(recorded.get("estimated")))
    if stain_vectors is None:
        raise ValueError(
            "stain_vectors: color_space 'stains' needs stain vectors: 'estimate' (from the "
            "image, Macenko's method), a 3x3 or 2x3 table of optical densities, or a dict "
            "of stain names and vectors."
        )
    if isinstance(stain_vectors, str) and stain_vectors == ESTIMATE:
        return estimate_stain_vectors(rgb, weights, background)
    return parse_stain_vectors(stain_vectors)


def check_stain_options(options: dict[str, Any]) -> None:
    """``stain_vectors`` with color space "stains" only (and needed there);
    ``stain_background`` with ``stain_vectors="estimate"`` only (checked options)."""
    color_space = options.get("color_space")
    vectors = options.get("stain_vectors")
    if color_space == "stains" and vectors is None:
        resolve_stain_vectors(None, np.zeros((0, 3)), None, DEFAULT_BACKGROUND)
    if color_space != "stains" and vectors is not None:
        raise ValueError(
            f"stain_vectors: used with color_space='stains' only, but color_space is "
            f"{color_space!r}; set color_space='stains' or leave stain_vectors out."
        )
    background = options.get("stain_background", DEFAULT_BACKGROUND)
    if background != DEFAULT_BACKGROUND and not (isinstance(vectors, str) and vectors == ESTIMATE):
        raise ValueError(
            f"stain_background: used only to estimate stain vectors "
            f"(stain_vectors='estimate'), but stain_vectors is {_short(vectors)}; leave "
            "stain_background out."
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_stain_vectors(path: str | Path) -> dict[str, Any]:
    """The record of the stain vectors in a JSON file: a list of 2 or 3 rows of 3
    numbers, ``{"names": [...], "vectors": [[...], ...]}``, or ``{"stain name": [r, g,
    b], ...}``. Any problem is a ``ValueError`` starting ``"stain vectors file: <path>:"``."""
    prefix = f"stain vectors file: {path}:"
    try:
        if not os.path.isfile(path):  # a FIFO or device could block: never opened
            raise ValueError(f"{prefix} not a regular file (missing, a folder or a device).")
        with open(path, "rb") as handle:
            text = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ValueError(f"{prefix} cannot read it ({error.strerror or error}).") from None
    if len(text) > MAX_FILE_BYTES:
        raise ValueError(f"{prefix} larger than {MAX_FILE_BYTES // 1024} kB; not a stain file.")
    try:
        content = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{prefix} not valid JSON ({error}).") from None
    try:
        record = parse_stain_vectors(content).record()
    except ValueError as error:
        raise ValueError(f"{prefix} {str(error).removeprefix('stain_vectors: ')}") from None
    return record
