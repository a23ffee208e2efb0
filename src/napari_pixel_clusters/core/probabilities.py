"""Posterior probabilities of the clusters, and how uncertain each pixel's label is.

A fitted point-wise method whose predictor declares ``probabilities_rows`` (see
:class:`~.registry.Predictor`; the Gaussian mixture) gives, for every feature row, the
posterior probability of each of its components. Here those are computed once per
*distinct* feature row (as labels are) and mapped back to the pixels, with the columns in
the result's label order: column ``i`` is label ``i + 1``. Pixels without data (label 0)
get 0 in every column, and an uncertainty of 0.

Lazy images get dask arrays, computed chunk by chunk (chunks of the image; the cluster
axis one chunk).

Edited clusters (the Cluster table's Merge, Merge similar and Split): the posteriors
follow the edit, computed from the old ones, not fitted again.

- :func:`merge_posteriors`: clusters ``a, b, ...`` merged into ``a`` have the posterior
  ``p_a + p_b + ...`` (exact for a mixture: the merged cluster is the union of its
  components); their other columns are removed.
- :func:`split_posteriors`: cluster ``c`` split into parts ``j`` has, for part ``j``,
  ``p_c * q_j``, where ``q_j`` is the split model's posterior of part ``j`` at that
  pixel's features (the split model is fitted on ``c``'s pixels and evaluated on every
  pixel: ``c``'s component is replaced by a mixture of its parts, as a hierarchical
  mixture would). A split model without posteriors (k-means) gives ``q_j`` = 1 for the
  part its labelling puts the pixel's features in, 0 for the others (evaluated on every
  pixel too), so ``p_c`` goes whole to one part. Either way each pixel's posteriors still
  sum to what they did (1 with data, 0 without).
- :func:`uncertainty_of_posteriors`: the uncertainty of such an array with the same
  measure (margin or entropy); pixels whose posteriors are all 0 (no data) get 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


# ---------------------------------------------------------------------- edited clusters
def _check_columns(posteriors: np.ndarray, columns: Sequence[int], axis: int) -> list[int]:
    """``columns`` as ints, one per entry of ``posteriors``' cluster ``axis``."""
    columns = [int(c) for c in columns]
    if posteriors.ndim == 0 or not -posteriors.ndim <= axis < posteriors.ndim:
        raise ValueError(f"axis: {axis} is not an axis of posteriors of shape {posteriors.shape}.")
    if len(columns) != posteriors.shape[axis] or len(set(columns)) != len(columns):
        raise ValueError(
            f"columns: expected {posteriors.shape[axis]} distinct labels (one per cluster "
            f"of axis {axis}), got {columns}."
        )
    return columns


def merge_posteriors(
    posteriors: np.ndarray, columns: Sequence[int], clusters: Sequence[int], axis: int = -1
) -> tuple[np.ndarray, list[int]]:
    """The posteriors after ``clusters[1:]`` are merged into ``clusters[0]``.

    Parameters
    ----------
    posteriors : ndarray
        Posterior of each cluster along ``axis`` (e.g. ``(*spatial, k)``).
    columns : sequence of int
        The label of each entry along ``axis``.
    clusters : sequence of int
        Two or more labels of ``columns``; the first gets the sum of their posteriors.
    axis : int
        The cluster axis.

    Returns
    -------
    (ndarray, list of int)
        A new array (same dtype) with the first cluster's entry the sum and the others'
        removed, and its labels. ``posteriors`` is not modified.
    """
    columns = _check_columns(posteriors, columns, axis)
    clusters = [int(c) for c in clusters]
    missing = [c for c in clusters if c not in columns]
    if len(clusters) < 2 or missing or len(set(clusters)) != len(clusters):
        raise ValueError(
            f"clusters: expected two or more distinct labels of {columns}, got {clusters}."
        )
    positions = [columns.index(c) for c in clusters]
    kept = [i for i, c in enumerate(columns) if c not in clusters[1:]]
    out = np.take(posteriors, kept, axis=axis)
    target = kept.index(positions[0])
    total = np.take(posteriors, positions, axis=axis).sum(axis=axis, dtype=np.float64)
    index: list[Any] = [slice(None)] * posteriors.ndim
    index[axis] = target
    out[tuple(index)] = total
    return out, [columns[i] for i in kept]


def split_posteriors(
    posteriors: np.ndarray,
    columns: Sequence[int],
    cluster: int,
    part_posteriors: np.ndarray,
    part_labels: Sequence[int],
    axis: int = -1,
) -> tuple[np.ndarray, list[int]]:
    """The posteriors after ``cluster`` is split into parts labelled ``part_labels``.

    Parameters
    ----------
    posteriors : ndarray
        Posterior of each cluster along ``axis``; ``columns`` its labels.
    cluster : int
        The label split (one of ``columns``).
    part_posteriors : ndarray
        ``q``: the split model's posterior of each part along the same ``axis`` (same
        shape as ``posteriors`` but ``len(part_labels)`` along it), summing to 1 at each
        pixel (pixels where they sum to 0 give each part an equal share).
    part_labels : sequence of int
        The label of each part: the first is ``cluster`` (it keeps its entry), the others
        are new labels, appended in this order.

    Returns
    -------
    (ndarray, list of int)
        A new array: part ``j`` has ``p_cluster * q_j``; its labels.
    """
    columns = _check_columns(posteriors, columns, axis)
    part_labels = [int(c) for c in part_labels]
    new = part_labels[1:]
    if (
        int(cluster) not in columns
        or not part_labels
        or part_labels[0] != int(cluster)
        or set(new) & set(columns)
        or len(set(new)) != len(new)
    ):
        raise ValueError(
            f"part_labels: expected {cluster} (a label of {columns}) then new labels, "
            f"got {part_labels}."
        )
    expected = list(posteriors.shape)
    expected[axis] = len(part_labels)
    if list(part_posteriors.shape) != expected:
        raise ValueError(
            f"part_posteriors: expected shape {tuple(expected)} (one entry per part along "
            f"axis {axis}), got {part_posteriors.shape}."
        )
    q = np.moveaxis(part_posteriors, axis, 0).astype(np.float64)
    sums = q.sum(axis=0)
    q = np.where(sums > 0, q / np.where(sums > 0, sums, 1), 1.0 / len(part_labels))
    p = np.moveaxis(np.take(posteriors, [columns.index(int(cluster))], axis=axis), axis, 0)[0]
    parts = np.moveaxis((p * q).astype(posteriors.dtype), 0, axis)
    position = columns.index(int(cluster))
    index: list[Any] = [slice(None)] * posteriors.ndim
    index[axis] = slice(0, 1)
    first = parts[tuple(index)]
    index[axis] = slice(1, None)
    before = np.take(posteriors, range(position), axis=axis)
    after = np.take(posteriors, range(position + 1, len(columns)), axis=axis)
    out = np.concatenate([before, first, after, parts[tuple(index)]], axis=axis)
    return out, [*columns, *new]


def uncertainty_of_posteriors(
    posteriors: np.ndarray, kind: str, axis: int = -1, rows_per_block: int = 1 << 20
) -> np.ndarray:
    """float32 uncertainty (:func:`uncertainty_of_rows`) of every pixel of ``posteriors``
    (clusters along ``axis``): the array without that axis; 0 where every posterior is 0
    (pixels without data). Computed ``rows_per_block`` pixels at a time."""
    kind = check_uncertainty_kind(kind)
    moved = np.moveaxis(posteriors, axis, 0)
    columns = moved.reshape(moved.shape[0], -1)  # a view for either end's axis
    out = np.zeros(columns.shape[1], dtype=np.float32)
    for start in range(0, columns.shape[1], rows_per_block):
        block = columns[:, start : start + rows_per_block].T
        values = uncertainty_of_rows(block, kind)
        out[start : start + len(block)] = np.where(block.any(axis=1), values, 0.0)
    return out.reshape(moved.shape[1:])
