"""Edit the clusters of a result: merge, recount, rename, recolor; undo and redo them.

Headless (numpy and pandas): the Cluster table widget only calls these. A *cluster table*
has one row per cluster: its label value in ``index`` (a napari Labels layer's features)
or ``label`` (:attr:`Segmentation.table`), ``pixels``, ``fraction``, the mean of each
channel in ``mean_<channel>`` columns, and optionally ``name`` and ``color``.

Nothing here modifies its inputs, except the methods named ``*_in_place``, which say so.
An edit is planned first (:func:`plan_merge` returns an :class:`Edit`: the labels'
changed pixels and the table before and after), then applied to the labels in place
(fast on big images) and recorded in an :class:`EditHistory`, whose ``undo`` and
``redo`` restore labels and table exactly. An edit keeps only the pixels it changed
(as flat indices or a bit mask, whichever is smaller, and their old values as small
codes), and the history keeps at most ``depth`` edits and ``max_bytes`` bytes.

Means stay exact for integer images, as :mod:`.means` computes them: the table's means
are correctly rounded ``sum / count``, so each cluster's exact integer sum is
``round(mean * count)`` while it is below 2**51 (any 8- or 16-bit image up to 2**35
pixels per cluster); merged means are then the correctly rounded mean of the exact
sums, equal to those computed again from the merged labels on the pixels. Beyond that
(or for float images) the pixel-weighted mean of the table's means is used, or the
pixels themselves when ``image`` is given.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .contours import check_min_area, region_contours
from .image import ImageData
from .means import ClusterSums

#: Label columns a cluster table may have: napari's features (``index``), seg.table.
LABEL_COLUMNS = ("index", "label")
#: Integer sums below this are recovered exactly from a correctly rounded float64 mean.
RECOVERABLE_SUM = 2**51
#: Fractions in the table are rounded to this many decimals (as the layers show them).
FRACTION_DECIMALS = 4
#: Pixels summed at a time when means are computed from an image (bounds temporaries).
SUM_CHUNK = 2**20
#: Labels up to this value are counted with one ``bincount``; larger ones with ``unique``.
BINCOUNT_LIMIT = 2**24
#: An :class:`EditHistory` keeps at most this many edits...
DEFAULT_DEPTH = 50
#: ... and at most this many bytes of changed pixels and tables (the newest edit always).
DEFAULT_MAX_BYTES = 256 * 2**20


# --------------------------------------------------------------------------- checks
def check_labels(labels: object) -> np.ndarray:
    """``labels`` as it is (a numpy array of non-negative integers), or ValueError."""
    if not isinstance(labels, np.ndarray):
        raise ValueError(
            f"labels: must be a numpy array in memory, got {type(labels).__name__} "
            "(a result larger than memory cannot be edited)."
        )
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels: must hold integers, got dtype {labels.dtype}.")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError("labels: must not be negative (0 is no cluster).")
    return labels


def label_column(table: object) -> str:
    """The name of ``table``'s label column (``index`` or ``label``), or ValueError."""
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table: must be a pandas DataFrame, got {type(table).__name__}.")
    for column in LABEL_COLUMNS:
        if column in table.columns:
            return column
    raise ValueError(
        "table: needs a column of label values ('index', as in a Labels layer's features, "
        f"or 'label'), has {list(table.columns)}."
    )


def check_table(table: pd.DataFrame, needs: Sequence[str] = ("pixels",)) -> str:
    """Check a cluster table (one row per label, the ``needs`` columns); returns its label
    column's name."""
    column = label_column(table)
    missing = [name for name in needs if name not in table.columns]
    if missing:
        raise ValueError(f"table: needs a {missing[0]!r} column, has {list(table.columns)}.")
    duplicated = table[column][table[column].duplicated()]
    if len(duplicated):
        raise ValueError(f"table: label {int(duplicated.iloc[0])} is listed twice.")
    return column


def table_labels(table: pd.DataFrame) -> list[int]:
    """The cluster labels of ``table``, in its order."""
    return [int(label) for label in table[label_column(table)]]


def check_clusters(
    clusters: int | np.integer | Iterable[int | np.integer],
    table: pd.DataFrame,
    at_least: int = 1,
    name: str = "clusters",
) -> list[int]:
    """``clusters`` as a list of distinct labels of ``table`` (at least ``at_least``)."""
    if isinstance(clusters, (int, np.integer)):
        clusters = [clusters]
    try:
        chosen = [_whole_number(label) for label in clusters]
    except TypeError:
        raise ValueError(
            f"{name}: must be cluster labels (whole numbers), got {clusters!r}."
        ) from None
    if len(chosen) < at_least:
        raise ValueError(
            f"{name}: need at least {at_least} clusters, got {len(chosen)} ({chosen})."
        )
    known = table_labels(table)
    for label in chosen:
        if chosen.count(label) > 1:
            raise ValueError(f"{name}: cluster {label} is given twice.")
        if label not in known:
            raise ValueError(f"{name}: no cluster {label} in the table (it has {known}).")
    return chosen


def _whole_number(value: object) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise TypeError


def mean_columns(table: pd.DataFrame) -> list[str]:
    """The ``mean_<channel>`` columns of a cluster table, in order."""
    return [column for column in table.columns if str(column).startswith("mean_")]


def _check_image(
    image: np.ndarray | ImageData[np.ndarray], labels: np.ndarray, table: pd.DataFrame
) -> np.ndarray:
    """Pixel values as ``(*labels.shape, C)`` (channels last, as ``ImageData.pixels``)."""
    pixels = image.pixels if isinstance(image, ImageData) else image
    if not isinstance(pixels, np.ndarray):
        raise ValueError(f"image: must be a numpy array or ImageData, got {type(image).__name__}.")
    if pixels.shape == labels.shape:
        pixels = pixels[..., np.newaxis]
    if pixels.shape[:-1] != labels.shape:
        raise ValueError(
            f"image: shape {pixels.shape} does not fit the labels' shape {labels.shape} "
            "(the same shape, or one more axis of channels last)."
        )
    if pixels.dtype.kind not in "biuf":
        raise ValueError(f"image: must hold numbers, got dtype {pixels.dtype}.")
    n_means = len(mean_columns(table))
    if pixels.shape[-1] != n_means:
        raise ValueError(
            f"image: has {pixels.shape[-1]} channels, the table {n_means} mean columns."
        )
    return pixels


def check_color(color: str | Sequence[float] | np.ndarray, name: str = "color") -> str:
    """A color as lowercase ``#rrggbb``: from ``#rrggbb``, ``#rgb`` or an RGB(A) sequence
    of numbers in [0, 1]; ValueError otherwise."""
    if isinstance(color, str):
        text = color.strip().lower()
        digits = text[1:]
        if text.startswith("#") and len(digits) in (3, 6) and _is_hex(digits):
            return "#" + (digits if len(digits) == 6 else "".join(2 * c for c in digits))
        raise ValueError(f"{name}: must be a hex color like '#1f77b4', got {color!r}.")
    try:
        values = np.asarray(color, dtype=float).ravel()
    except (TypeError, ValueError):
        values = np.array([])
    if len(values) not in (3, 4) or not np.all((values >= 0) & (values <= 1)):
        raise ValueError(
            f"{name}: must be a hex color or 3 or 4 numbers in [0, 1], got {color!r}."
        )
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * v) for v in values[:3]))


def _is_hex(digits: str) -> bool:
    return all(c in "0123456789abcdef" for c in digits)


# --------------------------------------------------------------------------- sums
def table_sums(
    table: pd.DataFrame, clusters: Sequence[int], dtype: npt.DTypeLike | None = None
) -> ClusterSums:
    """Pixel count and value sums of ``clusters`` from ``table`` (means times counts).

    For an integer (or boolean) image ``dtype`` the sums are the exact integers behind the
    table's correctly rounded means, while every ``|sum|`` is below ``RECOVERABLE_SUM``;
    otherwise (float images, ``dtype`` None, larger sums) float64 products.
    """
    column = check_table(table)
    rows = table.set_index(column).loc[list(clusters)]
    counts = rows["pixels"].to_numpy(dtype=np.float64)
    means = rows[mean_columns(table)].to_numpy(dtype=np.float64)
    products = means * counts[:, None]
    if dtype is None or np.dtype(dtype).kind not in "biu":
        return ClusterSums(counts, products)
    if not np.all(np.isfinite(products)) or np.any(np.abs(products) >= RECOVERABLE_SUM):
        return ClusterSums(counts, products)
    exact = np.empty(means.shape, dtype=object)
    for index, (mean, count) in enumerate(zip(means.ravel(), counts.repeat(means.shape[1]))):
        exact.flat[index] = round(Fraction(float(mean)) * int(count))
    return ClusterSums(counts, exact)


def pixel_sums(labels: np.ndarray, pixels: np.ndarray, clusters: Sequence[int]) -> ClusterSums:
    """Pixel count and value sums (exact for integer images) of ``clusters`` in ``labels``,
    over the ``(*labels.shape, C)`` ``pixels``; pixels without data (NaN, inf) left out."""
    wanted = np.asarray(clusters, dtype=np.int64)
    flat_labels = labels.reshape(-1)
    flat_pixels = pixels.reshape(-1, pixels.shape[-1])
    size = len(wanted) + 1
    total = ClusterSums.empty(size, flat_pixels.shape[1], flat_pixels.dtype)
    order = np.argsort(wanted)
    for start in range(0, len(flat_labels), SUM_CHUNK):
        chunk = slice(start, start + SUM_CHUNK)
        values = flat_pixels[chunk]
        # each cluster's position in ``clusters`` plus one; 0 for other labels
        found = np.searchsorted(wanted[order], flat_labels[chunk])
        found = np.minimum(found, len(wanted) - 1)
        hit = wanted[order][found] == flat_labels[chunk]
        if values.dtype.kind == "f":
            hit &= np.isfinite(values).all(axis=1)
        rows = np.where(hit, order[found] + 1, 0)
        total = total + ClusterSums.of(rows, values, size)
    return total.take(slice(1, None))


def quantized_colors(
    table: pd.DataFrame, clusters: Sequence[int], dtype: npt.DTypeLike
) -> np.ndarray:
    """``(len(clusters), C)`` colors of ``clusters`` in a quantized image of ``dtype``: their
    means rounded half to even (exactly, for integer images), as
    :meth:`Segmentation.quantized` paints them."""
    return table_sums(table, clusters, dtype).as_dtype(dtype)


# --------------------------------------------------------------------------- changes
@dataclass(frozen=True, eq=False)
class LabelsChange:
    """The pixels of a labels array that an edit changed, with their values before and
    after. Only those pixels are kept: their flat indices or a bit mask of the array
    (whichever is smaller), and values as codes into the few distinct values.

    Make one with :meth:`between` (two arrays) or :meth:`relabel` (pixels given one value).
    """

    shape: tuple[int, ...]
    where: np.ndarray  # flat indices (uint32 or int64), or np.packbits of a flat mask
    packed: bool
    before: _Values
    after: _Values

    @classmethod
    def between(cls, before: np.ndarray, after: np.ndarray) -> LabelsChange:
        """The change that turns ``before`` into ``after`` (arrays of the same shape)."""
        before, after = check_labels(before), check_labels(after)
        if after.shape != before.shape:
            raise ValueError(
                f"after: shape {after.shape} differs from before's shape {before.shape}."
            )
        changed = np.flatnonzero(before.reshape(-1) != after.reshape(-1))
        return cls._of(
            before.shape, changed, before.reshape(-1)[changed], after.reshape(-1)[changed]
        )

    @classmethod
    def relabel(cls, labels: np.ndarray, old: Iterable[int], new: int) -> LabelsChange:
        """The change that gives every pixel labelled one of ``old`` the label ``new``."""
        labels = check_labels(labels)
        old = np.unique(np.asarray([o for o in old if o != new], dtype=labels.dtype))
        flat = labels.reshape(-1)
        changed = np.flatnonzero(np.isin(flat, old))
        values = flat[changed]
        before = _Values.of(values, palette=old)
        after = _Values.one(new, labels.dtype, len(changed))
        return cls._make(labels.shape, changed, before, after)

    @classmethod
    def _of(
        cls,
        shape: tuple[int, ...],
        changed: np.ndarray,
        before_values: np.ndarray,
        after_values: np.ndarray,
    ) -> LabelsChange:
        return cls._make(shape, changed, _Values.of(before_values), _Values.of(after_values))

    @classmethod
    def _make(
        cls, shape: tuple[int, ...], changed: np.ndarray, before: _Values, after: _Values
    ) -> LabelsChange:
        size = int(np.prod(shape))
        index_dtype = np.uint32 if size < 2**32 else np.int64
        if len(changed) * np.dtype(index_dtype).itemsize > (size + 7) // 8:
            mask = np.zeros(size, dtype=bool)
            mask[changed] = True
            return cls(tuple(shape), np.packbits(mask), True, before, after)
        return cls(tuple(shape), changed.astype(index_dtype), False, before, after)

    @property
    def n_pixels(self) -> int:
        """Number of pixels changed."""
        return self.before.size

    @property
    def nbytes(self) -> int:
        """Memory this change keeps, in bytes."""
        return self.where.nbytes + self.before.nbytes + self.after.nbytes

    def indices(self) -> np.ndarray:
        """Flat indices of the changed pixels, in increasing order."""
        if self.packed:
            size = int(np.prod(self.shape))
            return np.flatnonzero(np.unpackbits(self.where, count=size))
        return self.where.astype(np.intp)

    def labels_before(self) -> set[int]:
        """Labels the changed pixels had before."""
        return {int(v) for v in self.before.palette}

    def labels_after(self) -> set[int]:
        """Labels the changed pixels have after."""
        return {int(v) for v in self.after.palette}

    def undo_in_place(self, labels: np.ndarray) -> None:
        """Give the changed pixels of ``labels`` (modified in place) their old values."""
        self._write(labels, self.before)

    def redo_in_place(self, labels: np.ndarray) -> None:
        """Give the changed pixels of ``labels`` (modified in place) their new values."""
        self._write(labels, self.after)

    def undone(self, labels: np.ndarray) -> np.ndarray:
        """A copy of ``labels`` (not modified) with the changed pixels' old values."""
        result = check_labels(labels).copy()
        self.undo_in_place(result)
        return result

    def redone(self, labels: np.ndarray) -> np.ndarray:
        """A copy of ``labels`` (not modified) with the changed pixels' new values."""
        result = check_labels(labels).copy()
        self.redo_in_place(result)
        return result

    def _write(self, labels: np.ndarray, values: _Values) -> None:
        labels = check_labels(labels)
        if labels.shape != self.shape:
            raise ValueError(
                f"labels: shape {labels.shape} is not the shape {self.shape} this change "
                "was recorded on."
            )
        indices = self.indices()
        if labels.flags.c_contiguous:
            labels.reshape(-1)[indices] = values.values()
        else:
            labels[np.unravel_index(indices, labels.shape)] = values.values()


@dataclass(frozen=True, eq=False)
class _Values:
    """Values of the changed pixels: their distinct values and one small code per pixel
    (no codes when they are all the same)."""

    palette: np.ndarray
    codes: np.ndarray | None
    size: int

    @classmethod
    def of(cls, values: np.ndarray, palette: np.ndarray | None = None) -> _Values:
        if palette is None:
            palette, codes = np.unique(values, return_inverse=True)
        else:  # values all in the sorted ``palette``: only the codes to find
            codes = np.searchsorted(palette, values)
        if len(palette) <= 1:
            return cls(np.asarray(palette), None, len(values))
        code_dtype = np.min_scalar_type(len(palette) - 1)
        return cls(np.asarray(palette), codes.astype(code_dtype).ravel(), len(values))

    @classmethod
    def one(cls, value: int, dtype: npt.DTypeLike, size: int) -> _Values:
        return cls(np.array([value], dtype=dtype), None, size)

    @property
    def nbytes(self) -> int:
        return self.palette.nbytes + (0 if self.codes is None else self.codes.nbytes)

    def values(self) -> np.ndarray | np.generic | int:
        """Each changed pixel's value (a scalar when they are all the same)."""
        if self.codes is None:
            return self.palette[0] if len(self.palette) else 0
        return self.palette[self.codes]


@dataclass(frozen=True, eq=False)
class Outlines:
    """Outline polygons (``(n, ndim)`` vertices) and their table (``label``, ``name``,
    ``area``), one row per polygon, as an outlines Shapes layer holds them."""

    polygons: list[np.ndarray]
    table: pd.DataFrame

    def __post_init__(self) -> None:
        if len(self.polygons) != len(self.table):
            raise ValueError(
                f"outlines: {len(self.polygons)} polygons but {len(self.table)} table rows."
            )


@dataclass(frozen=True, eq=False)
class OutlinesChange:
    """The outlines of the ``clusters`` an edit touched: their polygons and rows before it
    (``removed``) and after it (``added``), found by cluster label, not by position.

    :meth:`apply` takes the outlines of those clusters away (they must be exactly
    ``removed``) and adds ``added`` at the end; :meth:`revert` the other way round. The
    other outlines keep their order. The set of polygons and rows before and after is
    exact; their order is not kept across an undo (the restored outlines come last, as a
    napari Shapes layer can only append them). :meth:`swap` says which positions go and
    what comes, for a layer changed in place. Outlines of those clusters changed since
    (a polygon deleted or drawn with one of their labels) are a ValueError.
    """

    clusters: tuple[int, ...]
    removed: Outlines
    added: Outlines

    @property
    def nbytes(self) -> int:
        polygons = [*self.removed.polygons, *self.added.polygons]
        tables = (self.removed.table, self.added.table)
        return sum(np.asarray(p).nbytes for p in polygons) + sum(
            int(t.memory_usage(deep=True).sum()) for t in tables
        )

    def swap(self, outlines: Outlines, undo: bool = False) -> tuple[np.ndarray, Outlines]:
        """(positions in ``outlines`` of the polygons that go, the outlines that come at
        the end) to turn the outlines before the edit into those after it, or (``undo``)
        after into before; ValueError when the touched clusters' outlines are not those
        the edit left."""
        gone, new = (self.added, self.removed) if undo else (self.removed, self.added)
        labels = np.asarray(outlines.table["label"]) if "label" in outlines.table else None
        if labels is None:
            labels = np.zeros(len(outlines.polygons), dtype=np.int64)
        positions = np.flatnonzero(np.isin(labels, self.clusters))
        found = Counter(_polygon_key(labels[i], outlines.polygons[i]) for i in positions)
        expected = Counter(
            _polygon_key(label, polygon)
            for label, polygon in zip(gone.table["label"], gone.polygons)
        )
        if found != expected:
            which = ", ".join(map(str, self.clusters))
            raise ValueError(
                f"outlines: the {len(positions)} polygons of clusters {which} are not the "
                f"{len(gone.polygons)} there were {'after' if undo else 'before'} the edit "
                "(they changed since)."
            )
        return positions, new

    def apply(self, outlines: Outlines) -> Outlines:
        """The outlines after the edit (from those before it)."""
        return self._swapped(outlines, undo=False)

    def revert(self, outlines: Outlines) -> Outlines:
        """The outlines before the edit (from those after it)."""
        return self._swapped(outlines, undo=True)

    def _swapped(self, outlines: Outlines, undo: bool) -> Outlines:
        positions, new = self.swap(outlines, undo)
        kept = np.ones(len(outlines.polygons), dtype=bool)
        kept[positions] = False
        return _joined(
            [p for p, keep in zip(outlines.polygons, kept) if keep] + list(new.polygons),
            [outlines.table[kept], new.table],
        )


def _polygon_key(
    label: int | np.integer, polygon: np.ndarray
) -> tuple[int, tuple[int, ...], bytes]:
    """A polygon as a hashable value: its label, shape and float64 vertices' bytes."""
    vertices = np.ascontiguousarray(polygon, dtype=np.float64)
    return int(label), vertices.shape, vertices.tobytes()


def _joined(polygons: list[np.ndarray], tables: list[pd.DataFrame]) -> Outlines:
    tables = [table for table in tables if len(table)] or tables[:1]
    return Outlines(polygons, pd.concat(tables, ignore_index=True))


def retrace_outlines(
    outlines: Outlines,
    labels: np.ndarray,
    clusters: Sequence[int],
    table: pd.DataFrame,
    min_area: int,
) -> OutlinesChange:
    """The outlines of ``clusters`` traced again on ``labels`` (e.g. after a merge): their
    old polygons removed, one polygon per region of at least ``min_area`` pixels added,
    named after ``table``'s ``name`` column (as :func:`region_contours` traces them)."""
    labels = check_labels(labels)
    min_area = check_min_area(min_area)
    if not isinstance(outlines, Outlines):
        raise ValueError(f"outlines: must be Outlines, got {type(outlines).__name__}.")
    clusters = [int(label) for label in clusters]
    names = dict(zip(table_labels(table), table["name"])) if "name" in table.columns else {}
    outline_labels = outlines.table["label"].to_numpy()
    positions = np.flatnonzero(np.isin(outline_labels, clusters))
    traced = region_contours(np.where(np.isin(labels, clusters), labels, 0), min_area)
    added_table = pd.DataFrame(
        {
            "label": np.array([c.label for c in traced], dtype=outline_labels.dtype),
            "name": [names.get(c.label, f"cluster {c.label}") for c in traced],
            "area": np.array([c.area for c in traced], dtype=np.int64),
        }
    )
    removed_table = outlines.table.iloc[positions].reset_index(drop=True)
    return OutlinesChange(
        tuple(clusters),
        Outlines([outlines.polygons[i] for i in positions], removed_table),
        Outlines([c.vertices for c in traced], added_table),
    )


# --------------------------------------------------------------------------- edits
@dataclass(frozen=True, eq=False)
class Edit:
    """One edit of a result: what it did to the labels (None: nothing) and the cluster
    table before and after it. ``extra`` is kept for the caller (e.g. a GUI's changes to
    other layers) and handed back by :meth:`EditHistory.undo` and ``redo``; ``record``
    says what was done in plain values, for a script that replays it."""

    description: str
    table_before: pd.DataFrame
    table_after: pd.DataFrame
    labels: LabelsChange | None = None
    extra: Any = field(default=None, repr=False)
    #: what the edit did, as plain values (``{"edit": "merge", "clusters": [1, 3]}``):
    #: how a script replays it (see :mod:`.reproduce`); None for edits without one
    record: dict[str, Any] | None = None

    @property
    def nbytes(self) -> int:
        """Memory kept for this edit (changed pixels, both tables, outlines changes)."""
        tables = sum(
            int(t.memory_usage(deep=True).sum()) for t in (self.table_before, self.table_after)
        )
        extra = int(getattr(self.extra, "nbytes", 0))  # e.g. outlines changes kept with it
        return tables + (0 if self.labels is None else self.labels.nbytes) + extra

    def apply_in_place(self, labels: np.ndarray, result: np.ndarray | None = None) -> pd.DataFrame:
        """Apply the edit: ``labels`` is changed in place (or becomes a copy of ``result``,
        the labels after the edit computed elsewhere, e.g. in a worker with
        :meth:`LabelsChange.redone`); returns the table after it."""
        if self.labels is not None:
            if result is None:
                self.labels.redo_in_place(labels)
            else:
                _copy_result(labels, result)
        return self.table_after.copy()

    def reshaped(self, shape: Sequence[int]) -> Edit:
        """The same edit of labels of another ``shape`` with as many pixels, in the same
        order (e.g. a plane's labels with leading axes of length 1, as a layer holds them)."""
        if self.labels is None or tuple(shape) == self.labels.shape:
            return self
        if int(np.prod(shape)) != int(np.prod(self.labels.shape)):
            raise ValueError(
                f"shape: {tuple(shape)} does not hold the {int(np.prod(self.labels.shape))} "
                f"pixels of the labels this edit was planned on ({self.labels.shape})."
            )
        return replace(self, labels=replace(self.labels, shape=tuple(int(n) for n in shape)))

    def changed_clusters(self) -> list[int]:
        """Labels whose pixels or table rows the edit changed, sorted."""
        changed = set()
        if self.labels is not None:
            changed |= self.labels.labels_before() | self.labels.labels_after()
        before, after = self.table_before, self.table_after
        column = label_column(before)
        rows_before = before.set_index(column)
        rows_after = after.set_index(label_column(after))
        for label in set(rows_before.index) ^ set(rows_after.index):
            changed.add(int(label))
        for label in set(rows_before.index) & set(rows_after.index):
            if not rows_before.loc[label].equals(rows_after.loc[label]):
                changed.add(int(label))
        return sorted(changed)


def plan_merge(
    labels: np.ndarray,
    table: pd.DataFrame,
    clusters: Sequence[int],
    dtype: npt.DTypeLike | None = None,
    image: np.ndarray | ImageData[np.ndarray] | None = None,
) -> Edit:
    """What merging ``clusters`` into the first of them changes; nothing is modified.

    Parameters
    ----------
    labels : ndarray of int
        The result's labels (0: no cluster).
    table : DataFrame
        Its cluster table (see the module's docstring).
    clusters : sequence of int
        Two or more labels of the table; the others are merged into the first, which
        keeps its name and color.
    dtype : dtype, optional
        The image's dtype: integer images get exact means (see the module's docstring).
    image : ndarray or ImageData, optional
        The pixels (``labels``' shape, channels last): means are then summed from them.

    Returns
    -------
    Edit
        ``labels``: the merged-away pixels given the first label; ``table_after``: one row
        for the merged clusters with their pixels added, the fraction of them, and the
        pixel-weighted means; the merged-away rows gone.
    """
    labels = check_labels(labels)
    column = check_table(table)
    clusters = check_clusters(clusters, table, at_least=2)
    target, others = clusters[0], clusters[1:]
    means = mean_columns(table)
    if image is not None:
        pixels = _check_image(image, labels, table)
        merged = pixel_sums(labels, pixels, clusters).total()
        dtype = pixels.dtype
    else:
        merged = table_sums(table, clusters, dtype).total()
    after = table.set_index(column)
    pixels_total = int(after["pixels"].sum())
    merged_pixels = int(after.loc[clusters, "pixels"].sum())
    if means and merged.counts[0] > 0:
        after.loc[target, means] = merged.means()[0]
    after.loc[target, "pixels"] = merged_pixels
    if "fraction" in after.columns:
        after.loc[target, "fraction"] = _fraction(merged_pixels, pixels_total)
    after = after.drop(index=others).reset_index()[list(table.columns)]
    after = after.astype(table.dtypes.to_dict())
    change = LabelsChange.relabel(labels, others, target)
    description = f"merge of {', '.join(map(str, others))} into {target}"
    return Edit(
        description,
        table.copy(),
        after,
        change if change.n_pixels else None,
        record={"edit": "merge", "clusters": clusters},
    )


def merge_clusters(
    labels: np.ndarray,
    table: pd.DataFrame,
    clusters: Sequence[int],
    dtype: npt.DTypeLike | None = None,
    image: np.ndarray | ImageData[np.ndarray] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """New labels and table with ``clusters`` merged into the first of them (see
    :func:`plan_merge`); ``labels`` and ``table`` are not modified."""
    edit = plan_merge(labels, table, clusters, dtype=dtype, image=image)
    merged = labels.copy()
    return merged, edit.apply_in_place(merged)


def recount(
    table: pd.DataFrame,
    labels: np.ndarray,
    image: np.ndarray | ImageData[np.ndarray] | None = None,
) -> pd.DataFrame:
    """A new table with each cluster's ``pixels`` counted in ``labels`` (e.g. after
    painting) and ``fraction`` of the table's total; with ``image`` (pixels of
    ``labels``' shape, channels last) the means too, exactly for integer images (a
    cluster left without pixels keeps its means). Labels missing from the table are not
    added."""
    labels = check_labels(labels)
    check_table(table)
    clusters = table_labels(table)
    counts = _counts(labels, clusters)
    out = table.copy()
    dtype = table["pixels"].dtype  # a numpy dtype, or pandas' own (then left int64)
    out["pixels"] = counts.astype(dtype, copy=False) if isinstance(dtype, np.dtype) else counts
    if "fraction" in out.columns:
        out["fraction"] = (counts / max(int(counts.sum()), 1)).round(FRACTION_DECIMALS)
    if image is not None:
        pixels = _check_image(image, labels, table)
        sums = pixel_sums(labels, pixels, clusters)
        filled = sums.counts > 0
        means = mean_columns(table)
        if means and filled.any():
            out.loc[out.index[filled], means] = sums.means()[filled]
    return out


def _counts(labels: np.ndarray, clusters: list[int]) -> np.ndarray:
    """Pixels of each of ``clusters`` in ``labels`` (int64)."""
    wanted = np.asarray(clusters, dtype=np.int64)
    if not labels.size or not len(wanted):
        return np.zeros(len(wanted), dtype=np.int64)
    top = int(labels.max())
    if top <= BINCOUNT_LIMIT:
        flat = labels.reshape(-1)
        if flat.dtype.kind == "u" and flat.dtype.itemsize >= 8:
            flat = flat.astype(np.int64)
        counts = np.bincount(flat, minlength=max(top, int(wanted.max(initial=0))) + 1)
        return counts[wanted].astype(np.int64)
    values, counts = np.unique(labels, return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist()))
    return np.array([found.get(int(label), 0) for label in wanted], dtype=np.int64)


def _fraction(pixels: int, total: int) -> float:
    return round(pixels / max(total, 1), FRACTION_DECIMALS)


def rename_cluster(table: pd.DataFrame, cluster: int, name: str) -> pd.DataFrame:
    """A new table in which cluster ``cluster`` is called ``name``."""
    column = check_table(table, needs=())
    (cluster,) = check_clusters([cluster], table, name="cluster")
    if not isinstance(name, str):
        raise ValueError(f"name: must be text, got {type(name).__name__}.")
    out = table.copy()
    if "name" not in out.columns:
        out["name"] = [f"cluster {label}" for label in out[column]]
    out.loc[out[column] == cluster, "name"] = name
    return out


def recolor_clusters(
    table: pd.DataFrame, clusters: Sequence[int], color: str | Sequence[float] | np.ndarray
) -> pd.DataFrame:
    """A new table in which ``clusters`` have the ``color`` (hex ``#rrggbb`` or RGB in
    [0, 1]; stored as lowercase ``#rrggbb``)."""
    column = check_table(table, needs=())
    clusters = check_clusters(clusters, table)
    color = check_color(color)
    out = table.copy()
    if "color" not in out.columns:
        raise ValueError(f"table: needs a 'color' column, has {list(table.columns)}.")
    out.loc[out[column].isin(clusters), "color"] = color
    return out


def table_edit(description: str, before: pd.DataFrame, after: pd.DataFrame, **kwargs: Any) -> Edit:
    """An :class:`Edit` of the table only (rename, recolor, recount), copies kept;
    ``kwargs``: ``extra``, ``record``."""
    return Edit(description, before.copy(), after.copy(), **kwargs)


def rename_record(cluster: int, name: str) -> dict[str, Any]:
    """The ``Edit.record`` of naming ``cluster`` ``name`` (:func:`rename_cluster`)."""
    return {"edit": "rename", "cluster": int(cluster), "name": str(name)}


def recolor_record(clusters: Sequence[int], color: str) -> dict[str, Any]:
    """The ``Edit.record`` of giving ``clusters`` the ``color`` (:func:`recolor_clusters`)."""
    return {"edit": "recolor", "clusters": [int(c) for c in clusters], "color": check_color(color)}


def painting_record(strokes: int) -> dict[str, Any]:
    """The ``Edit.record`` of paint strokes: no script can replay them."""
    return {"edit": "painting", "strokes": int(strokes)}


# --------------------------------------------------------------------------- history
class EditHistory:
    """Undo and redo stacks of :class:`Edit` objects, headless.

    :meth:`record` an edit once it is applied (the redo stack is cleared); :meth:`undo`
    and :meth:`redo` move the newest edit across and restore the labels (given, in place)
    exactly; the caller then uses the edit's ``table_before`` or ``table_after``. The
    oldest edits are forgotten beyond ``depth`` edits or ``max_bytes`` bytes (the newest
    edit is always kept); ``forgotten`` counts them.
    """

    def __init__(self, depth: int = DEFAULT_DEPTH, max_bytes: int = DEFAULT_MAX_BYTES):
        if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth: must be a whole number of at least 1, got {depth!r}.")
        if not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
            raise ValueError(f"max_bytes: must be a whole number of bytes, got {max_bytes!r}.")
        self.depth = int(depth)
        self.max_bytes = int(max_bytes)
        self._undo: deque[Edit] = deque()
        self._redo: deque[Edit] = deque()
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self._undo)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def nbytes(self) -> int:
        """Memory kept by every edit that can be undone or redone."""
        return sum(edit.nbytes for edit in (*self._undo, *self._redo))

    def peek_undo(self) -> Edit | None:
        """The edit :meth:`undo` would undo (None when there is none)."""
        return self._undo[-1] if self._undo else None

    def peek_redo(self) -> Edit | None:
        """The edit :meth:`redo` would redo (None when there is none)."""
        return self._redo[-1] if self._redo else None

    def record(self, edit: Edit) -> None:
        """Remember an applied ``edit`` as the newest; nothing is left to redo."""
        if not isinstance(edit, Edit):
            raise ValueError(f"edit: must be an Edit, got {type(edit).__name__}.")
        self._redo.clear()
        self._undo.append(edit)
        self._trim()

    def undo(
        self, labels: np.ndarray | None = None, result: np.ndarray | None = None
    ) -> Edit | None:
        """Undo the newest edit: its changed pixels of ``labels`` get their old values (in
        place), or ``labels`` becomes a copy of ``result``, the labels as they are before
        the edit computed elsewhere (e.g. in a worker, with :meth:`LabelsChange.undone`).
        Returns the edit (use its ``table_before``), or None when there is none."""
        return self._move(self._undo, self._redo, labels, result, LabelsChange.undo_in_place)

    def redo(
        self, labels: np.ndarray | None = None, result: np.ndarray | None = None
    ) -> Edit | None:
        """Redo the newest undone edit: its changed pixels of ``labels`` get their new
        values (in place), or ``labels`` becomes a copy of ``result`` (see :meth:`undo`).
        Returns the edit (use its ``table_after``), or None."""
        return self._move(self._redo, self._undo, labels, result, LabelsChange.redo_in_place)

    def clear(self) -> None:
        """Forget every edit."""
        self._undo.clear()
        self._redo.clear()

    def forget_redo(self) -> None:
        """Forget the undone edits (the labels changed some other way since)."""
        self._redo.clear()

    def _move(
        self,
        source: deque[Edit],
        target: deque[Edit],
        labels: np.ndarray | None,
        result: np.ndarray | None,
        write: Callable[[LabelsChange, np.ndarray], None],
    ) -> Edit | None:
        if not source:
            return None
        edit = source[-1]
        if edit.labels is not None:
            if labels is None:
                raise ValueError(
                    f"labels: the {edit.description} changed labels; pass the labels array "
                    "to restore."
                )
            if result is None:
                write(edit.labels, labels)
            else:
                _copy_result(labels, result)
        target.append(source.pop())
        return edit

    def _trim(self) -> None:
        while len(self._undo) > self.depth:
            self._undo.popleft()
            self.forgotten += 1
        while len(self._undo) > 1 and self.nbytes > self.max_bytes:
            self._undo.popleft()
            self.forgotten += 1


def _copy_result(labels: np.ndarray, result: np.ndarray) -> None:
    """Copy ``result`` (labels computed elsewhere) into ``labels`` in place."""
    labels = check_labels(labels)
    if not isinstance(result, np.ndarray) or result.shape != labels.shape:
        raise ValueError(
            f"result: must be a labels array of shape {labels.shape}, got "
            f"{getattr(result, 'shape', type(result).__name__)}."
        )
    np.copyto(labels, result, casting="same_kind")


def with_extra(edit: Edit, extra: Any) -> Edit:
    """``edit`` with ``extra`` attached (edits are immutable)."""
    return replace(edit, extra=extra)
