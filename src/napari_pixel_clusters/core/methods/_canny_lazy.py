"""Canny edges of a lazy image, identical to the in-memory result.

Everything in Canny but the last step is local: blur, gradients, non-maximum suppression
and the two thresholds of a pixel depend on pixels at most ``4 sigma + 3`` away. Each
chunk computes them with that much overlap (``map_overlap``), as two masks: above the low
threshold, above the high one. The last step, hysteresis, keeps every connected run of
low pixels that holds a high one, and a run can cross any number of chunks. So runs are
labelled inside each chunk, joined with the runs they touch in neighbouring chunks (a
graph of a few numbers per chunk), and the edge pixels of each chunk are looked up from
the joined runs on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..image import NO_DATA, ImageData
from ..lazy.chunks import (
    Tally,
    block_indices,
    chunk_totals,
    drop_empty,
    over_chunks,
    tally_steps,
)
from ..means import ClusterSums
from ..registry import LazyOutput, Steps
from ._canny_planes import (
    canny_planes,
    check_threshold_pair,
    check_thresholds,
    edges_2d,
    largest_magnitude,
    thresholds,
)

if TYPE_CHECKING:
    import dask.array as da

LOW, HIGH = 1, 2  # bits of the threshold masks


def lazy_run(
    data: ImageData[da.Array],
    n_clusters: int | None,
    feature_options: dict[str, Any],
    params: dict[str, Any],
    levels: Sequence[Any] = (),
) -> Steps[LazyOutput]:
    """Canny's ``lazy_run``: label 1 on edges (see the module's docstring)."""
    check_thresholds(params)
    if params["use_quantiles"]:
        raise ValueError(
            "use_quantiles: quantiles of the edge strength need the whole "
            "image at once; for a lazy (dask) image give low_threshold and "
            "high_threshold in image units."
        )
    given = params["low_threshold"] is not None and params["high_threshold"] is not None
    value_max = 1.0 if given else (yield from _value_max_steps(data))  # given: not needed
    check_threshold_pair(params, value_max)
    low, high = thresholds(params, value_max)
    assert low is not None and high is not None  # in image units (quantiles refused above)
    settings = EdgeSettings(params["sigma"], low, high, value_max, data.kind, _n_planes(data))
    bits = settings.threshold_bits(data, scale=1.0)
    if bits.chunks != data.pixels.chunks:  # chunks merged (narrower than the overlap)
        pixels, mask = data.pixels.rechunk(bits.chunks), data.mask.rechunk(bits.chunks[:-1])
        inside = None if data.inside is None else data.inside.rechunk(bits.chunks[:-1])
        data = ImageData(pixels, data.kind, mask, data.channel_axis, inside, data.n_inside)
    runs = yield from _join_runs_steps(data, bits, settings)
    if runs.n_usable == 0:
        raise ValueError(NO_DATA)
    labeller = CannyLabeller(settings, bits, runs.lookups)
    tally = runs.tally
    if settings.n_planes > 1:  # an edge in any channel: count the union afterwards
        tally = drop_empty((yield from tally_steps(data, labeller.array(data), 1)), 0)
    details = {
        "low_threshold_used": float(low),
        "high_threshold_used": float(high),
        "planes": int(np.prod(data.spatial_shape[:-2], dtype=int)),
        "lazy_edges": f"chunks overlap by {settings.depth} pixels; hysteresis "
        f"joined {runs.n_runs:,} runs across {runs.lookups.size} chunks",
    }
    edge_share = float(tally.counts.sum() / max(runs.n_usable, 1))
    score = {"edge_fraction": edge_share}
    return LazyOutput(labeller, tally, np.arange(len(tally.counts)), score, details)


def _n_planes(data: ImageData[da.Array]) -> int:
    return 1 if data.is_color else data.n_channels


def _value_max_steps(data: ImageData[da.Array]) -> Steps[float]:
    """The largest magnitude, as :func:`grey_planes` finds it for the whole image (the
    automatic thresholds are relative to it): one pass over the chunks."""
    largest: list[float] = []
    yield from over_chunks(
        "edges",
        [data.pixels, data.mask],
        _chunk_largest,
        lambda _, value: largest.append(value),
        data.kind,
    )
    return max(largest, default=0.0) or 1.0


def _chunk_largest(
    pixels: np.ndarray, mask: np.ndarray, position: int, origin: tuple[int, ...], kind: str
) -> float:
    block = ImageData(pixels, kind, mask, None)
    return largest_magnitude(canny_planes(block), block.mask)


class EdgeSettings:
    """What every chunk needs to compute its threshold masks (small, picklable)."""

    def __init__(
        self, sigma: float, low: float, high: float, value_max: float, kind: str, n_planes: int
    ):
        self.sigma, self.low, self.high = sigma, low, high
        self.value_max, self.kind, self.n_planes = value_max, kind, n_planes

    @property
    def depth(self) -> int:
        return int(4.0 * self.sigma + 0.5) + 3  # Gaussian radius, Sobel, suppression, mask

    def threshold_bits(self, data: ImageData[da.Array], scale: float) -> da.Array:
        """(*spatial, C) uint8 dask array: LOW | HIGH bits of plane p in channel p.

        An axis no longer than the overlap (or in one chunk) is taken whole, without
        overlap: what a chunk needs of its neighbours is then all in the chunk.
        """
        import dask.array as da

        pixels, mask = data.pixels, data.mask[..., None]  # usable pixels: channels axis 1
        ndim = pixels.ndim
        depth = dict.fromkeys(range(ndim), 0)
        for axis in (ndim - 3, ndim - 2):
            if pixels.shape[axis] <= self.depth or pixels.numblocks[axis] == 1:
                pixels, mask = pixels.rechunk({axis: -1}), mask.rechunk({axis: -1})
            else:
                depth[axis] = self.depth
        return da.map_overlap(
            _threshold_chunk,
            pixels,
            mask,
            depth=depth,
            boundary="none",
            dtype=np.uint8,
            settings=self,
            scale=scale,
        )

    def chunk_bits(self, pixels: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
        """LOW | HIGH bits of one chunk (with its overlap); ``mask``: its usable pixels."""
        block = ImageData(pixels, self.kind, mask, None)
        out = np.zeros(pixels.shape, dtype=np.uint8)
        planes = canny_planes(block)
        sigma = self.sigma / scale
        for p, plane in enumerate(planes):
            for index in np.ndindex(block.spatial_shape[:-2]):
                mask = block.mask[index]
                if not mask.any():
                    continue
                for bit, threshold in ((LOW, self.low), (HIGH, self.high)):
                    params = {
                        "sigma": sigma,
                        "low_threshold": threshold,
                        "high_threshold": threshold,
                        "use_quantiles": False,
                    }
                    above = edges_2d(plane[index], mask, params, self.value_max)
                    out[index + (Ellipsis, p)] |= above.astype(np.uint8) * bit
        return out


def _threshold_chunk(
    pixels: np.ndarray, mask: np.ndarray, settings: EdgeSettings, scale: float
) -> np.ndarray:
    return settings.chunk_bits(pixels, mask[..., 0], scale)


def in_plane_structure(ndim_spatial: int) -> np.ndarray:
    """8-connectivity in y and x only, for arrays (plane, *leading, y, x)."""
    structure = np.zeros((3,) * (ndim_spatial + 1), dtype=bool)
    structure[(1,) * (ndim_spatial - 1)] = True
    return structure


def local_runs(bits: np.ndarray, n_planes: int) -> tuple[np.ndarray, int]:
    """Runs of low pixels in one chunk: labels (plane, *spatial) and how many."""
    from scipy import ndimage

    planes = np.moveaxis(bits[..., :n_planes], -1, 0)
    return ndimage.label(planes & LOW, in_plane_structure(bits.ndim - 1))


class JoinedRuns:
    def __init__(self, lookups: np.ndarray, tally: Tally, n_runs: int, n_usable: int):
        self.lookups, self.tally, self.n_runs, self.n_usable = lookups, tally, n_runs, n_usable


def _join_runs_steps(
    data: ImageData[da.Array], bits: da.Array, settings: EdgeSettings
) -> Steps[JoinedRuns]:
    """Label runs per chunk, join them across chunks, keep the strong ones."""
    blocks = block_indices(data)
    pieces: list[RunsPiece] = []
    low, high = np.full(data.n_channels, np.inf), np.full(data.n_channels, -np.inf)

    def add(position: int, piece: RunsPiece) -> None:
        pieces.append(piece)
        np.minimum(low, piece.low, out=low)
        np.maximum(high, piece.high, out=high)

    yield from over_chunks(
        "edges", [bits, data.pixels, data.mask], _chunk_runs, add, settings.n_planes, data.kind
    )
    yield "edges", 1.0
    offsets = np.cumsum([0] + [len(piece.has_high) for piece in pieces])
    n_runs = int(offsets[-1])
    keep = _strong_runs(
        n_runs,
        np.concatenate([p.has_high for p in pieces]),
        _touching_runs(
            blocks,
            dict(zip(blocks, offsets)),
            {index: p.faces for index, p in zip(blocks, pieces)},
            data.pixels.numblocks[:-1],
        ),
    )
    lookups = np.empty(data.pixels.numblocks[:-1], dtype=object)
    for index, start, stop in zip(blocks, offsets, offsets[1:]):
        lookups[index] = np.concatenate([[False], keep[start:stop]])
    runs = ClusterSums(
        np.concatenate([p.sums.counts for p in pieces]),
        np.concatenate([p.sums.sums for p in pieces]),
    )
    edges = runs.take(keep).total()  # every kept run is label 1
    tally = Tally(edges, low, high)
    if tally.counts[0] == 0:
        tally = tally.take(slice(0, 0))
    return JoinedRuns(lookups, tally, n_runs, sum(p.n_usable for p in pieces))


class RunsPiece:
    """What one chunk tells about its runs: their labels on its four sides, which hold a
    high pixel, their sizes and value sums (plane 0), and its usable pixels."""

    def __init__(
        self,
        faces: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        has_high: np.ndarray,
        totals: list[Any],
        n_usable: int,
    ):
        self.faces, self.has_high, self.n_usable = faces, has_high, n_usable
        self.sums = totals[0].take(slice(1, None))  # of runs 1..count
        self.low, self.high = totals[1], totals[2]


def _chunk_runs(
    bits: np.ndarray,
    pixels: np.ndarray,
    mask: np.ndarray,
    position: int,
    origin: tuple[int, ...],
    n_planes: int,
    kind: str,
) -> RunsPiece:
    runs, count = local_runs(bits, n_planes)
    has_high = np.zeros(count + 1, dtype=bool)
    has_high[runs[np.moveaxis(bits[..., :n_planes], -1, 0) & HIGH > 0]] = True
    block = ImageData(pixels, kind, mask, None)
    totals = chunk_totals(block, runs[0].ravel(), count + 1)
    faces = (runs[..., 0, :], runs[..., -1, :], runs[..., :, 0], runs[..., :, -1])
    return RunsPiece(faces, has_high[1:], totals, int(block.mask.sum()))


def _touching_runs(
    blocks: list[tuple[int, ...]],
    offsets: dict[tuple[int, ...], int],
    faces: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    numblocks: tuple[int, ...],
) -> np.ndarray:
    """(run, run) pairs that touch across the side or corner of neighbouring chunks."""
    pairs: list[np.ndarray] = []
    for index in blocks:
        *lead, i, j = index
        _top_face, bottom, _left, right = faces[index]
        here = offsets[index]

        def neighbour(
            di: int, dj: int, lead: list[int] = lead, i: int = i, j: int = j
        ) -> tuple[tuple[np.ndarray, ...] | None, int]:
            other = (*lead, i + di, j + dj)
            inside = 0 <= other[-2] < numblocks[-2] and 0 <= other[-1] < numblocks[-1]
            return (faces[other], offsets[other]) if inside else (None, 0)

        other_faces, there = neighbour(0, 1)
        if other_faces is not None:
            pairs += _pairs_along(right, other_faces[2], here, there)
        other_faces, there = neighbour(1, 0)
        if other_faces is not None:
            pairs += _pairs_along(bottom, other_faces[0], here, there)
        for dj, mine, theirs in ((1, -1, 0), (-1, 0, -1)):  # corners below right / left
            other_faces, there = neighbour(1, dj)
            if other_faces is not None:
                pairs += _pairs(bottom[..., mine], other_faces[0][..., theirs], here, there)
    if not pairs:
        return np.zeros((2, 0), dtype=np.int64)
    return np.concatenate(pairs, axis=1)


def _pairs_along(a: np.ndarray, b: np.ndarray, offset_a: int, offset_b: int) -> list[np.ndarray]:
    """8-connected pairs between two facing rows of run labels (last axis along them)."""
    n = a.shape[-1]
    found: list[np.ndarray] = []
    for shift in (-1, 0, 1):
        mine = a[..., max(0, -shift) : n + min(0, -shift)]
        theirs = b[..., max(0, shift) : n + min(0, shift)]
        found += _pairs(mine, theirs, offset_a, offset_b)
    return found


def _pairs(a: np.ndarray, b: np.ndarray, offset_a: int, offset_b: int) -> list[np.ndarray]:
    both = (a > 0) & (b > 0)
    if not both.any():
        return []
    return [np.stack([a[both] + offset_a - 1, b[both] + offset_b - 1]).astype(np.int64)]


def _strong_runs(n_runs: int, has_high: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Runs joined (through touching pairs) with a run that holds a high pixel."""
    if n_runs == 0:
        return np.zeros(0, dtype=bool)
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    graph = sparse.coo_matrix(
        (np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(n_runs, n_runs)
    )
    _, component = connected_components(graph, directed=False)
    strong_component = np.zeros(component.max() + 1, dtype=bool)
    strong_component[component[has_high]] = True
    return strong_component[component]


class CannyLabeller:
    """Edges of the full image from the joined runs; other levels get an overview.

    Pyramid levels are not the same image: there each chunk (with its overlap) gets
    Canny on its own, with sigma scaled to the level, as a picture at that zoom.
    """

    def __init__(self, settings: EdgeSettings, bits: da.Array, lookups: np.ndarray):
        self.settings, self.bits, self.lookups = settings, bits, lookups

    def array(self, data: ImageData[da.Array], scale: tuple[float, ...] | None = None) -> da.Array:
        import dask.array as da

        spatial = "".join(chr(ord("a") + i) for i in range(len(data.spatial_shape)))
        if scale is None or all(s == 1 for s in scale):
            lookups = da.from_array(self.lookups, chunks=1)
            return da.blockwise(
                _edges_chunk,
                spatial,
                self.bits,
                spatial + "z",
                lookups,
                spatial,
                self.settings.n_planes,
                None,
                concatenate=True,
                align_arrays=False,
                dtype=np.int32,
            )
        level_scale = float(np.mean(scale[-2:]))
        bits = self.settings.threshold_bits(data, level_scale)
        return da.map_blocks(
            _local_edges_chunk,
            bits,
            self.settings.n_planes,
            dtype=np.int32,
            drop_axis=bits.ndim - 1,
        )


def _edges_chunk(bits: np.ndarray, lookup: np.ndarray, n_planes: int) -> np.ndarray:
    runs, _ = local_runs(bits, n_planes)
    return lookup.item()[runs].any(axis=0).astype(np.int32)


def _local_edges_chunk(bits: np.ndarray, n_planes: int) -> np.ndarray:
    runs, count = local_runs(bits, n_planes)
    has_high = np.zeros(count + 1, dtype=bool)
    has_high[runs[np.moveaxis(bits[..., :n_planes], -1, 0) & HIGH > 0]] = True
    has_high[0] = False
    return has_high[runs].any(axis=0).astype(np.int32)
