"""Posterior probabilities of the clusters, and how uncertain each pixel's label is.

A fitted point-wise method whose predictor declares ``probabilities_rows`` (see
:class:`~.registry.Predictor`; the Gaussian mixture) gives, for every feature row, the
posterior probability of each of its components. Here those are computed once per
*distinct* feature row (as labels are) and mapped back to the pixels, with the columns in
the result's label order: column ``i`` is label ``i + 1``. Pixels without data (label 0)
get 0 in every column, and an uncertainty of 0.

Lazy images get dask arrays, computed chunk by chunk (chunks of the image; the cluster
axis one chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .features import FeatureSet
from .image import ImageData, usable_mask

if TYPE_CHECKING:
    import dask.array as da

    from .labelling import Labelling

#: How :func:`uncertainty_of_rows` measures uncertainty: ``"margin"`` is 1 - the largest
#: posterior; ``"entropy"`` the posteriors' entropy divided by log(k) (both 0..1).
UNCERTAINTY_KINDS = ("margin", "entropy")

RowValues = Callable[[np.ndarray], np.ndarray]


def check_uncertainty_kind(kind: object) -> str:
    """``kind`` if it is one of :data:`UNCERTAINTY_KINDS`, else a ValueError naming it."""
    if not isinstance(kind, str) or kind not in UNCERTAINTY_KINDS:
        raise ValueError(
            f"kind: {kind!r} is not a measure of uncertainty; use 'margin' (1 - the "
            "largest posterior) or 'entropy' (the posteriors' entropy over log k)."
        )
    return kind


def uncertainty_of_rows(probabilities: np.ndarray, kind: str) -> np.ndarray:
    """(n,) uncertainty of (n, k) posteriors: ``"margin"`` 1 - max, ``"entropy"``
    ``-sum p log p / log k`` (0 for k = 1), both clipped to 0..1."""
    if probabilities.shape[1] == 0:
        return np.zeros(len(probabilities))
    if kind == "margin":
        values = 1.0 - probabilities.max(axis=1)
    else:
        k = probabilities.shape[1]
        if k == 1:
            return np.zeros(len(probabilities))
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
        values = -terms.sum(axis=1) / np.log(k)
    return np.clip(values, 0.0, 1.0)


def label_columns(labelling: Labelling, component_probabilities: np.ndarray) -> np.ndarray:
    """(n, k) component columns -> columns in label order (column i: label i + 1)."""
    out = np.empty_like(component_probabilities)
    out[:, labelling.label_of_component - 1] = component_probabilities
    return out


def _row_probabilities(labelling: Labelling, feature_set: FeatureSet) -> np.ndarray:
    rows = labelling.predictor.probabilities_rows
    assert rows is not None  # Model.probability_labelling checked it
    return label_columns(labelling, rows(labelling.parameters, feature_set))


def _pixel_values(
    labelling: Labelling,
    data: ImageData[np.ndarray],
    row_values: RowValues,
    n_columns: int | None,
    coordinates: np.ndarray | None = None,
) -> np.ndarray:
    """float32 values of every pixel (``(*spatial, n_columns)``, or ``spatial`` for
    None), from ``row_values`` of each distinct row's probabilities; 0 without data."""
    shape = data.spatial_shape + (() if n_columns is None else (n_columns,))
    out = np.zeros(shape, dtype=np.float32)
    if not data.mask.any():
        return out
    feature_set = labelling.features(data, coordinates)
    values = row_values(_row_probabilities(labelling, feature_set)).astype(np.float32)
    pixels = feature_set.to_pixels(values)
    if data.mask.all():
        out[...] = pixels.reshape(shape)
    else:
        out[data.mask] = pixels
    return out


def probabilities(labelling: Labelling, data: ImageData[np.ndarray]) -> np.ndarray:
    """(*spatial, k) float32 posterior of each cluster (label order); 0 without data."""
    return _pixel_values(labelling, data, _same, len(labelling.label_of_component))


def uncertainty(labelling: Labelling, data: ImageData[np.ndarray], kind: str) -> np.ndarray:
    """(*spatial) float32 uncertainty (see :func:`uncertainty_of_rows`); 0 without data."""
    kind = check_uncertainty_kind(kind)
    return _pixel_values(labelling, data, _Uncertainty(kind), None)


def _same(rows: np.ndarray) -> np.ndarray:
    return rows


class _Uncertainty:
    """Picklable ``row_values`` of an uncertainty kind (dask workers may be processes)."""

    def __init__(self, kind: str):
        self.kind = kind

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return uncertainty_of_rows(rows, self.kind)


# ---------------------------------------------------------------------- lazy images
def lazy_probabilities(labelling: Labelling, data: ImageData[da.Array]) -> da.Array:
    """:func:`probabilities` of a lazy image: a dask array in the image's chunks, the
    cluster axis one chunk."""
    k = len(labelling.label_of_component)
    chunks = (*data.pixels.chunks[:-1], (k,))
    return _lazy(labelling, data, _same, k, chunks)


def lazy_uncertainty(labelling: Labelling, data: ImageData[da.Array], kind: str) -> da.Array:
    """:func:`uncertainty` of a lazy image, chunk by chunk."""
    kind = check_uncertainty_kind(kind)
    return _lazy(labelling, data, _Uncertainty(kind), None, data.pixels.chunks[:-1])


def _lazy(
    labelling: Labelling,
    data: ImageData[da.Array],
    row_values: RowValues,
    n_columns: int | None,
    chunks: tuple[tuple[int, ...], ...],
) -> da.Array:
    import dask.array as da

    arrays: list[Any] = [data.pixels]
    if data.inside is not None:
        arrays.append(data.inside[..., None])
    options: dict[str, Any] = (
        {"chunks": chunks} if n_columns is not None else {"drop_axis": data.pixels.ndim - 1}
    )
    return da.map_blocks(
        _block_values,
        *arrays,
        labelling=labelling,
        kind=data.kind,
        row_values=row_values,
        n_columns=n_columns,
        dtype=np.float32,
        **options,
    )


def _block_values(
    pixels: np.ndarray,
    *inside: np.ndarray,
    labelling: Labelling,
    kind: str,
    row_values: RowValues,
    n_columns: int | None,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """The values of one chunk (positions offset to the chunk's, as labels are)."""
    assert block_info is not None  # given by dask.array.map_blocks
    origin = tuple(start for start, _ in block_info[0]["array-location"][:-1])
    mask = usable_mask(pixels, kind, inside[0][..., 0] if inside else None)
    block = ImageData(pixels, kind, mask, None)
    positions = None
    if labelling.pipeline["spatial_weight"] > 0:
        positions = np.stack(np.nonzero(mask), axis=1) + np.asarray(origin, dtype=np.intp)
    return _pixel_values(labelling, block, row_values, n_columns, positions)
