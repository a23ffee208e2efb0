"""Clean-up of cluster labels: majority smoothing, hole filling and small-region removal.

The three options of every clustering method (``Method.takes_cleanup``) run after the fit
and before the table, in this order: ``smooth``, then ``fill_holes``, then ``min_region``
(each 0 = off). Label 0 (pixels outside a mask, or without data) never changes, is never
a region, never a neighbour and never votes. Regions are the connected pixels of one
label, and borders are counted, with face connectivity (4 neighbours in 2-D, 6 in 3-D).
Works on 2-D images and 3-D stacks (a stack of one plane is a 2-D image; images with
more spatial axes: each 3-D volume on its own).

``smooth`` (a radius in pixels)
    Majority filter: each labelled pixel takes the most common label among the labelled
    pixels within a disk (2-D) or ball (3-D) of that radius (scikit-image's
    ``filters.rank.majority`` with ``morphology.disk``/``ball``); on a tie, the lowest
    label. One pass.
``fill_holes`` (a size in pixels)
    A hole of a cluster is a connected set of pixels of other clusters enclosed by that
    cluster alone (touching neither the image border nor label-0 pixels) of at most
    ``fill_holes`` pixels; its pixels take the enclosing cluster's label. Holes that
    overlap or touch (nested holes, the ring of one being another's hole) are filled
    largest first (ties: the lower label); the others wait for the next pass. Passes
    repeat until no hole is left: where holes nest the outermost cluster wins, no hole
    of at most ``fill_holes`` pixels remains, and cleaning again changes nothing.
``min_region`` (a size in pixels)
    Regions smaller than ``min_region`` (small) are absorbed round by round: in each
    round every small region that touches at least one large region (``>= min_region``
    pixels) takes the label that has the longest border with it among the large regions
    it touches (border length in pixel faces, summed per label; ties: the lowest label).
    Small regions touching only small ones wait for the next round (the large regions
    grow into them). A connected area made only of small regions (no large neighbour:
    pure speckle, or an island of a mask) is seeded first: its largest region (ties: the
    one whose first pixel in C order comes first) counts as large. So no region below
    ``min_region`` remains, except where a connected usable area (labelled pixels
    between label 0 and the image border) is smaller than ``min_region`` as a whole: it
    becomes one region, of its largest region's label. Labels change only in regions
    below ``min_region``; large regions never lose pixels.

The result for a pixel depends only on what lies near it: smoothing on its disk; filling
and ``min_region`` on the connected set of small regions around it ("clump") and the
labels of the regions around that. The lazy route (:class:`CleaningLabeller`) uses this:
each chunk is cleaned in a window around it, widened until the window holds everything
its pixels depend on, so the lazy labels are identical to the in-memory ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .image import ImageData
from .lazy.chunks import Tally, add_totals, chunk_totals, empty_totals, finish_tally, over_chunks
from .registry import CLEANUP_NAMES, CLEANUP_PARAMS, LazyOutput, Steps

if TYPE_CHECKING:
    import dask.array as da

    from .field_check import FieldCheck
    from .registry import Labeller

#: Most distinct labels smoothed with scikit-image's rank filter (its histograms grow with
#: the largest label); more (e.g. many superpixels) use an equivalent compiled loop.
RANK_FILTER_LABELS = 1000


@dataclass(frozen=True)
class Cleanup:
    """The clean-up options (see the module docstring); all 0: nothing to do."""

    min_region: int = 0
    fill_holes: int = 0
    smooth: int = 0

    @classmethod
    def checked(cls, **options: Any) -> Cleanup:
        """From keyword options (missing ones off), each checked: ValueError naming it."""
        params = {p.name: p for p in CLEANUP_PARAMS}
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a clean-up option; use {', '.join(CLEANUP_NAMES)}."
            )
        return cls(**{name: params[name].check(value) for name, value in options.items()})

    @property
    def active(self) -> bool:
        return bool(self.min_region or self.fill_holes or self.smooth)

    def as_dict(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in CLEANUP_NAMES}

    @property
    def margin(self) -> int:
        """The first overlap tried around a chunk (widened where not enough)."""
        return (
            self.smooth
            + (self.fill_holes + 1 if self.fill_holes else 0)
            + (2 * self.min_region + 2 if self.min_region else 0)
        )

    def scaled(self, factor: float) -> Cleanup:
        """The options for labels ``factor`` times coarser (a pyramid level): radius /
        factor, sizes / factor**2 (at least 1 where on)."""

        def size(value: int) -> int:
            return max(1, round(value / factor**2)) if value else 0

        smooth = max(1, round(self.smooth / factor)) if self.smooth else 0
        return Cleanup(size(self.min_region), size(self.fill_holes), smooth)

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """The cleaned labels (a new array; ``labels`` is left as it is)."""
        labels = _checked_labels(labels)
        if labels.ndim > 3:  # each 3-D volume on its own
            out = np.empty_like(labels)
            for index in np.ndindex(labels.shape[:-3]):
                out[index] = self.apply(labels[index])
            return out
        if not self.active or labels.size == 0:
            return labels.copy()
        return _clean(labels, None, self)[0]


def clean_labels(
    labels: np.ndarray, min_region: int = 0, fill_holes: int = 0, smooth: int = 0
) -> np.ndarray:
    """Clean cluster labels: ``smooth``, then ``fill_holes``, then ``min_region``.

    Parameters
    ----------
    labels : ndarray of int
        Cluster labels (2-D, or 3-D for stacks; more axes: each 3-D volume on its own),
        0 where a pixel has no cluster. Not modified.
    min_region : int
        Regions (connected pixels of one label) smaller than this many pixels take the
        label they share the longest border with (see the module docstring); 0: off.
    fill_holes : int
        Holes of at most this many pixels inside one cluster take its label; 0: off.
    smooth : int
        Radius of a majority filter (each pixel takes the most common label around it;
        ties: the lowest label); 0: off.

    Returns
    -------
    ndarray
        The cleaned labels, same shape and dtype. Label 0 never changes.
    """
    return Cleanup.checked(min_region=min_region, fill_holes=fill_holes, smooth=smooth).apply(
        labels
    )


def warm_up() -> None:
    """Compile the clean-up's loops (about 10 s once per machine; then numba's disk cache
    loads them in about a second): what a first run with clean-up would wait for."""
    labels = np.indices((6, 7)).sum(axis=0) % 3 + 1
    clean_labels(labels, min_region=4, fill_holes=2, smooth=1)
    clean_labels(labels * (RANK_FILTER_LABELS + 1), smooth=1)  # the many-label loop


def _checked_labels(labels: Any) -> np.ndarray:
    array = np.asarray(labels)
    if array.dtype.kind not in "iu" or array.ndim < 2:
        raise ValueError(
            f"labels: expected an integer label image of 2 or more dimensions, got "
            f"{array.ndim}-D {array.dtype}."
        )
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise ValueError("labels: expected labels of 0 or more, got negative values.")
    return array


def check_cleanup_field(check: FieldCheck, value: Any, field: str = "cleanup") -> None:
    """A model file's ``cleanup``: an object of the clean-up options, each 0 or more."""
    record = check.mapping(value, field)
    unknown = sorted(set(record) - set(CLEANUP_NAMES))
    if unknown:
        check.fail(
            f"{field}.{unknown[0]}", f"unknown field (expected {', '.join(CLEANUP_NAMES)})."
        )
    for param in CLEANUP_PARAMS:
        if param.name in record:
            top = None if param.maximum is None else int(param.maximum)
            check.integer(record[param.name], f"{field}.{param.name}", 0, top)


# ---------------------------------------------------------------------- the three steps
def _clean(
    labels: np.ndarray, cut: np.ndarray | None, cleanup: Cleanup
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clean ``labels``; with ``cut`` (pixels not known: a window's surroundings, label 0
    there), also say which pixels are certain (the same as cleaning the whole image)."""
    if labels.ndim == 3 and labels.shape[0] == 1:  # a stack of one plane: a 2-D image
        flat, valid = _clean(labels[0], None if cut is None else cut[0], cleanup)
        return flat[np.newaxis], None if valid is None else valid[np.newaxis]
    out = labels
    if cleanup.smooth:
        out = _smooth(out, cleanup.smooth)
        cut = _smooth_uncertain(cut, labels.ndim, cleanup.smooth)
        out = _zero_where(out, cut)
    if cleanup.fill_holes:
        out, uncertain = _fill_holes(out, cleanup.fill_holes, cut)
        cut = _merge_uncertain(cut, uncertain)
        out = _zero_where(out, cut)
    if cleanup.min_region:
        out, uncertain = _absorb_small(out, cleanup.min_region, cut)
        cut = _merge_uncertain(cut, uncertain)
    if out is labels:
        out = labels.copy()
    return out, None if cut is None else ~cut


def _zero_where(labels: np.ndarray, cut: np.ndarray | None) -> np.ndarray:
    if cut is None or not cut.any():
        return labels
    return np.where(cut, 0, labels).astype(labels.dtype, copy=False)


def _merge_uncertain(cut: np.ndarray | None, uncertain: np.ndarray | None) -> np.ndarray | None:
    if cut is None or uncertain is None:
        return cut
    return cut | uncertain


def _footprint(ndim: int, radius: int) -> np.ndarray:
    from skimage.morphology import ball, disk

    return (disk if ndim == 2 else ball)(radius).astype(bool)


# ---------------------------------------------------------------------- smooth
def _smooth(labels: np.ndarray, radius: int) -> np.ndarray:
    """Majority filter over the labelled pixels (label 0 keeps 0 and never votes)."""
    footprint = _footprint(labels.ndim, radius)
    labelled = labels > 0
    if not labelled.any():
        return labels.copy()
    if labels.max() <= RANK_FILTER_LABELS:
        from skimage.filters.rank import majority

        voted = majority(labels.astype(np.uint16), footprint, mask=labelled)
        return np.where(labelled, voted, 0).astype(labels.dtype)
    return _majority_loop(labels, footprint)


def _majority_loop(labels: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """The same majority filter as a compiled loop (any number of labels)."""
    radius = footprint.shape[0] // 2
    padded = np.pad(labels.astype(np.int64), radius)
    center = (radius,) * labels.ndim
    offsets = np.ravel_multi_index(np.nonzero(footprint), padded.shape) - np.ravel_multi_index(
        center, padded.shape
    )
    where = np.zeros(padded.shape, dtype=bool)
    where[tuple(slice(radius, radius + side) for side in labels.shape)] = True
    positions = np.flatnonzero(where)
    from ._cleanup_loops import majority_at

    voted = majority_at(padded.ravel(), positions, offsets)
    return voted.reshape(labels.shape).astype(labels.dtype)


def _smooth_uncertain(cut: np.ndarray | None, ndim: int, radius: int) -> np.ndarray | None:
    """Pixels whose disk reaches an unknown pixel."""
    if cut is None or not cut.any():
        return cut
    from scipy import ndimage

    return ndimage.binary_dilation(cut, _footprint(ndim, radius))


# ---------------------------------------------------------------------- regions
@dataclass
class _Regions:
    """Connected regions of one label, their sizes, what they touch and their borders."""

    ids: np.ndarray  # region per pixel, 1..n in C order of first pixels (0: label 0 / cut)
    label: np.ndarray  # (n + 1,) the label of each region ([0] unused)
    size: np.ndarray  # (n + 1,) pixels
    indptr: np.ndarray  # adjacency (CSR): region r borders indices[indptr[r]:indptr[r+1]]
    indices: np.ndarray
    faces: np.ndarray  # pixel faces shared with each neighbour
    edge: np.ndarray  # (n + 1,) bool: touches the image border or a label-0 pixel
    cut: np.ndarray  # (n + 1,) bool: touches an unknown pixel

    @property
    def n(self) -> int:
        return len(self.label) - 1


def _regions(labels: np.ndarray, cut: np.ndarray | None) -> _Regions:
    from scipy import sparse
    from skimage.measure import label as connected

    from ._cleanup_loops import borders

    ids = connected(labels, background=0, connectivity=1).astype(np.intp, copy=False)
    n = int(ids.max(initial=0))
    flat = ids.ravel()
    size = np.bincount(flat, minlength=n + 1).astype(np.int64)
    size[0] = 0
    region_label = np.zeros(n + 1, dtype=np.int64)
    region_label[flat] = labels.ravel()
    volume = ids.reshape((1,) * (3 - ids.ndim) + ids.shape)  # 2-D: one plane
    unknown = np.zeros((1, 1, 1), bool) if cut is None else cut.reshape(volume.shape)
    row, col, edge, touches_cut = borders(volume, unknown, cut is not None, ids.ndim == 3, n)
    graph = sparse.csr_matrix(
        (np.ones(len(row), dtype=np.int64), (row, col)), shape=(n + 1, n + 1)
    )
    graph.sum_duplicates()
    graph.sort_indices()
    return _Regions(
        ids,
        region_label,
        size,
        graph.indptr.astype(np.int64),
        graph.indices.astype(np.int64),
        graph.data.astype(np.int64),
        edge,
        touches_cut,
    )


def _relabelled(regions: _Regions, new_label: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    new_label = new_label.copy()
    new_label[0] = 0
    return new_label[regions.ids].astype(dtype, copy=False)


def _uncertain_groups(regions: _Regions, members: np.ndarray) -> np.ndarray | None:
    """Pixels of the connected groups of ``members`` regions that touch an unknown pixel:
    what a window cannot know (None when no region touches one)."""
    if not regions.cut.any():
        return None
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.repeat(np.arange(regions.n + 1), np.diff(regions.indptr))
    inside = members[rows] & members[regions.indices]
    graph = csr_matrix(
        (np.ones(int(inside.sum())), (rows[inside], regions.indices[inside])),
        shape=(regions.n + 1,) * 2,
    )
    _, group = connected_components(graph, directed=False)
    bad_groups = np.unique(group[members & regions.cut])
    bad = members & np.isin(group, bad_groups)
    bad[0] = False
    return bad[regions.ids]


# ---------------------------------------------------------------------- fill holes
def _fill_holes(
    labels: np.ndarray, max_size: int, cut: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fill holes of at most ``max_size`` pixels until none is left; with ``cut``, also
    the pixels a window cannot be sure of."""
    regions = _regions(labels, cut)
    # every hole, in any pass, is made of pixels of these regions (regions only grow)
    candidates = (regions.size <= max_size) & ~regions.edge
    candidates[0] = False
    uncertain = _uncertain_groups(regions, candidates)
    out = labels
    while True:
        holes = _hole_labels(regions, max_size)
        if holes is None:
            return out, uncertain
        out = _relabelled(regions, holes, labels.dtype)
        regions = _regions(out, cut)


def _hole_labels(regions: _Regions, max_size: int) -> np.ndarray | None:
    """New label of every region after one filling pass, or None if there is no hole."""
    candidates = (regions.size <= max_size) & ~regions.edge & ~regions.cut
    candidates[0] = False
    if not candidates.any():
        return None
    from ._cleanup_loops import fill_pass

    new_label, found = fill_pass(
        regions.label,
        regions.size,
        candidates,
        regions.indptr,
        regions.indices,
        max_size,
    )
    return new_label if found else None


# ---------------------------------------------------------------------- min_region
def _absorb_small(
    labels: np.ndarray, min_size: int, cut: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Absorb regions smaller than ``min_size`` (see the module docstring); with ``cut``,
    also the pixels a window cannot be sure of."""
    regions = _regions(labels, cut)
    small = regions.size < min_size
    small[0] = False
    if not small.any():
        return labels, None
    uncertain = _uncertain_groups(regions, small)
    from ._cleanup_loops import absorb_rounds

    new_label = absorb_rounds(
        regions.label, regions.size, regions.indptr, regions.indices, regions.faces, min_size
    )
    return _relabelled(regions, new_label, labels.dtype), uncertain


# ---------------------------------------------------------------------- windows
def _clean_volumes(
    labels: np.ndarray, cut: np.ndarray | None, cleanup: Cleanup
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`_clean` of each 3-D volume (images with more than three spatial axes)."""
    if labels.ndim <= 3:
        return _clean(labels, cut, cleanup)
    out = np.empty_like(labels)
    valid = None if cut is None else np.empty(labels.shape, dtype=bool)
    for index in np.ndindex(labels.shape[:-3]):
        out[index], part = _clean(labels[index], None if cut is None else cut[index], cleanup)
        if valid is not None and part is not None:
            valid[index] = part
    return out, valid


def clean_window(
    read: Any, shape: Sequence[int], core: Sequence[tuple[int, int]], cleanup: Cleanup
) -> np.ndarray:
    """The cleaned labels of the box ``core`` (``(start, stop)`` per axis) of an image of
    ``shape``, identical to cleaning the whole image: cleaned in a window around it,
    widened (doubled) until every pixel of the core is certain, at most to the whole
    image. ``read(slices)`` returns the uncleaned labels of a window."""
    spatial = len(shape)
    planes = max(spatial - 3, 0)  # axes beyond a 3-D volume: each volume on its own
    margin = max(cleanup.margin, 1)
    while True:
        low = [
            start if axis < planes else max(0, start - margin)
            for axis, (start, _) in enumerate(core)
        ]
        high = [
            stop if axis < planes else min(side, stop + margin)
            for axis, ((_, stop), side) in enumerate(zip(core, shape))
        ]
        window = np.asarray(read(tuple(slice(a, b) for a, b in zip(low, high))))
        whole = all(
            (a == 0 and b == side) or axis < planes
            for axis, (a, b, side) in enumerate(zip(low, high, shape))
        )
        inner = tuple(slice(start - a, stop - a) for (start, stop), a in zip(core, low))
        if whole:
            return _clean_volumes(window, None, cleanup)[0][inner]
        pad = [
            (0, 0) if axis < planes else (int(a > 0), int(b < side))
            for axis, (a, b, side) in enumerate(zip(low, high, shape))
        ]
        padded = np.pad(window, pad)
        cut = np.pad(np.zeros(window.shape, dtype=bool), pad, constant_values=True)
        out, valid = _clean_volumes(padded, cut, cleanup)
        inner = tuple(
            slice(s.start + before, s.stop + before) for s, (before, _) in zip(inner, pad)
        )
        assert valid is not None
        if valid[inner].all():
            return out[inner]
        margin *= 2


# ---------------------------------------------------------------------- lazy images
class CleaningLabeller:
    """Labels a lazy image like its ``inner`` labeller, then cleaned (:class:`Cleanup`)
    chunk by chunk, identical to cleaning the whole image (see :func:`clean_window`);
    ``lookup`` renumbers the cleaned labels (e.g. without clusters the clean-up emptied).

    Pyramid levels other than the full-size one are not the same image: there each
    chunk is cleaned with a fixed overlap, with sizes and radius scaled to the level (an
    overview at that zoom).
    """

    def __init__(self, inner: Labeller, cleanup: Cleanup, lookup: np.ndarray | None = None):
        self.inner, self.cleanup, self.lookup = inner, cleanup, lookup

    def array(self, data: ImageData[da.Array], scale: tuple[float, ...] | None = None) -> da.Array:
        import dask.array as da

        raw = self.inner.array(data, scale)
        if scale is None or all(s == 1 for s in scale):
            cleaned = da.map_blocks(
                _clean_block, _WindowReader(raw), self.cleanup, chunks=raw.chunks, dtype=np.int32
            )
        else:
            factor = float(np.mean(scale[-2:]))
            coarse = self.cleanup.scaled(factor)
            depth = {
                axis: (0 if axis < raw.ndim - 3 else min(coarse.margin, min(raw.chunks[axis])))
                for axis in range(raw.ndim)
            }
            cleaned = raw.map_overlap(
                _overview_block, depth=depth, boundary="none", dtype=np.int32, cleanup=coarse
            )
        if self.lookup is None:
            return cleaned
        return cleaned.map_blocks(_looked_up, self.lookup, dtype=np.int32)


class _WindowReader:
    """Reads windows of lazy labels inside a task (a plain object: dask passes it as it
    is, and computes the window when asked)."""

    def __init__(self, labels: da.Array):
        self.labels = labels

    def __call__(self, slices: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self.labels[slices].compute(scheduler="synchronous"))

    def __dask_tokenize__(self) -> str:
        return f"window-reader-{self.labels.name}"


def _clean_block(
    reader: _WindowReader, cleanup: Cleanup, block_info: dict[Any, dict[str, Any]]
) -> np.ndarray:
    info = block_info[None]
    core = [tuple(location) for location in info["array-location"]]
    return clean_window(reader, info["shape"], core, cleanup).astype(np.int32, copy=False)


def _overview_block(labels: np.ndarray, cleanup: Cleanup) -> np.ndarray:
    return cleanup.apply(labels).astype(np.int32, copy=False)


def _looked_up(labels: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    return lookup[labels].astype(np.int32, copy=False)


def lazy_cleanup_steps(
    data: ImageData[da.Array], output: LazyOutput, cleanup: Cleanup
) -> Steps[tuple[LazyOutput, int]]:
    """Clean a lazy method's output: one pass over the chunks (yields ``("clean-up",
    fraction)``) counts the cleaned labels exactly (and the pixels that changed);
    clusters the clean-up emptied are dropped and the others renumbered 1..k in order,
    as in memory. Returns the new output and the number of changed pixels."""
    n = len(output.components)
    raw = output.labeller.array(data)
    cleaned = CleaningLabeller(output.labeller, cleanup).array(data)
    totals = empty_totals(n + 1, data.n_channels, data.pixels.dtype)
    changed = [0]

    def add(_: int, part: tuple[list[Any], int]) -> None:
        add_totals(totals, part[0])
        changed[0] += part[1]

    yield from over_chunks(
        "clean-up", [data.pixels, raw, cleaned, data.mask], _chunk_count, add, data.kind, n + 1
    )
    tally: Tally = finish_tally(*totals)
    present = np.flatnonzero(tally.counts)
    lookup = None
    if len(present) < n:
        lookup = np.zeros(n + 1, dtype=np.int32)
        lookup[present + 1] = np.arange(1, len(present) + 1)
    labeller = CleaningLabeller(output.labeller, cleanup, lookup)
    cleaned_output = LazyOutput(
        labeller,
        tally.take(present),
        np.asarray(output.components)[present],
        output.score,
        output.details,
        output.model,
    )
    return cleaned_output, changed[0]


def _chunk_count(
    pixels: np.ndarray,
    raw: np.ndarray,
    cleaned: np.ndarray,
    mask: np.ndarray,
    position: int,
    origin: tuple[int, ...],
    kind: str,
    size: int,
) -> tuple[list[Any], int]:
    block = ImageData(pixels, kind, mask, None)
    return chunk_totals(block, cleaned.ravel(), size), int(np.count_nonzero(raw != cleaned))
