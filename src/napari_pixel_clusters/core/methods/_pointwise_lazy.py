"""k-means and Gaussian mixtures of lazy images: fitted on a histogram or a sample.

Integer images clustered on their values: the distinct values and their counts are
summed chunk by chunk and the method is fitted on them, exactly as in memory; each chunk
is labelled by looking its values up. Otherwise (float values, spatial features, more
distinct values than fit in memory) the method is fitted on a reproducible sample drawn
chunk by chunk and the fitted model labels each chunk.

The steps after the features are the in-memory ones (:mod:`._pointwise`): the same
checks, the same fit, the same output; a :class:`~..labelling.Labelling`, as a saved
model's, labels the chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ..features import (
    FeatureSet,
    build_features,
    channel_ranges,
    check_color_space,
    pack_keys,
    stain_options,
    unpack_keys,
)
from ..image import NO_DATA, ImageData
from ..labelling import FittedLabeller, Labelling, feature_pipeline, label_of_component
from ..lazy.chunks import ChunkLabeller, Tally, drop_empty, over_chunks, tally_steps
from ..registry import LazyOutput, Predictor, RowFit, Steps
from ._pointwise import FitRows, check_rows, fit_summary, row_sums

if TYPE_CHECKING:
    import dask.array as da

#: ``(keys, lows, spans)``: the packed distinct values of a histogram (see pack_keys).
Lookup: TypeAlias = tuple[np.ndarray, list[int], list[int]]
#: ``(keys, counts, lows, spans, number of chunks)`` of :func:`_histogram_steps`.
Histogram: TypeAlias = tuple[np.ndarray, np.ndarray, list[int], list[int], int]

#: Per-chunk histograms are merged in batches of this many chunks (one sort per batch).
MERGE_EVERY = 16
#: Beyond this many distinct values the histogram is abandoned for a sample.
MAX_HISTOGRAM_ROWS = 20_000_000
#: Lookup tables with at most this many possible values are dense (uint8 RGB: 2**24).
DENSE_MAX_KEYS = 2**25
#: Pixels drawn (over all chunks) to fit on when values cannot be counted exactly.
SAMPLE_PIXELS = 200_000


def lazy_run_on_rows(
    fit_rows: FitRows, predictor: Predictor
) -> Callable[
    [ImageData[da.Array], int | None, dict[str, Any], dict[str, Any], Sequence[Any]],
    Steps[LazyOutput],
]:
    """A method's ``lazy_run`` from its ``fit_rows`` and its predictor: the same fit as
    :func:`~._pointwise.run_on_rows`, on the rows :func:`lazy_feature_steps` gathers."""

    def lazy_run(
        data: ImageData[da.Array],
        n_clusters: int | None,
        feature_options: dict[str, Any],
        params: dict[str, Any],
        levels: Sequence[Any] = (),
    ) -> Steps[LazyOutput]:
        assert n_clusters is not None  # these methods need one: segment checked it
        feature_set, lookup = yield from lazy_feature_steps(data, feature_options)
        rows = "distinct pixel values" if lookup is not None else "sampled pixels"
        check_rows(n_clusters, feature_set, rows)
        fit = yield from fit_rows(feature_set, n_clusters, params, feature_options["random_state"])
        yield "predict", 1.0
        found = np.unique(fit.labels)  # label i + 1 is component found[i]
        labelling = _fitted_labelling(predictor, feature_options, feature_set, fit, found)
        labeller: ChunkLabeller
        if lookup is not None:
            labeller, tally = _looked_up(data, feature_set, fit, found, labelling, lookup)
        else:
            labeller, tally = yield from _predicted_steps(data, n_clusters, found, labelling)
        return LazyOutput(labeller, tally, found, **fit_summary(fit, feature_set))

    return lazy_run


def _fitted_labelling(
    predictor: Predictor,
    feature_options: dict[str, Any],
    feature_set: FeatureSet,
    fit: RowFit,
    found: np.ndarray,
) -> Labelling:
    """What labels pixels as the fit did, clusters numbered like the labels."""
    return Labelling(
        predictor,
        feature_pipeline(feature_options, feature_set.names, feature_set.standardization),
        {
            key: value if isinstance(value, str) else np.asarray(value)
            for key, value in fit.model.items()
        },
        label_of_component(len(fit.model[predictor.components_key]), found),
    )


def lazy_feature_steps(
    data: ImageData[da.Array], feature_options: dict[str, Any]
) -> Steps[tuple[FeatureSet, Lookup | None]]:
    """The rows to fit on: distinct values and counts (exact) or a sample of pixels.

    Returns ``(FeatureSet, lookup)``; ``lookup`` is ``(keys, lows, spans)`` of the
    distinct values, or None for a sample (its rows are pixels, with their positions).
    """
    check_color_space(data, feature_options["color_space"])
    histogram = None
    if feature_options["spatial_weight"] == 0 and _countable(data):
        histogram = yield from _histogram_steps(data)
    if histogram is None:
        return (yield from _sample_feature_steps(data, feature_options)), None
    keys, counts, lows, spans, n_blocks = histogram
    if len(keys) == 0:
        raise ValueError(NO_DATA)
    rows = unpack_keys(keys, lows, spans, data.pixels.dtype)
    feature_set = build_features(
        _as_image(rows, data.kind),
        color_space=feature_options["color_space"],
        standardize=feature_options["standardize"],
        counts=counts,
        **stain_options(feature_options),
    )
    feature_set.compression = (
        f"lazy: distinct values: {len(rows):,} rows for "
        f"{int(counts.sum()):,} pixels in {n_blocks} chunks"
    )
    return feature_set, (keys, lows, spans)


def _as_image(values: np.ndarray, kind: str) -> ImageData[np.ndarray]:
    """Pixel values ``(n, C)`` as an image of n x 1 usable pixels."""
    return ImageData(values[:, None, :], kind, np.ones((len(values), 1), bool), None)


def _countable(data: ImageData[da.Array]) -> bool:
    """Integer values can be counted (when their range allows, see _histogram_steps)."""
    dtype = data.pixels.dtype
    return np.issubdtype(dtype, np.integer) or dtype.kind == "b"


# ---------------------------------------------------------------------- histogram route
def _key_ranges(data: ImageData[da.Array]) -> tuple[list[int], list[int]]:
    if data.pixels.dtype in (np.uint8, np.uint16, np.bool_):
        return channel_ranges(np.zeros((1, data.n_channels), data.pixels.dtype))
    import dask

    axes = tuple(range(data.pixels.ndim - 1))  # both in one pass over the chunks
    lowest, highest = dask.compute(data.pixels.min(axis=axes), data.pixels.max(axis=axes))
    lows, highs = [int(v) for v in lowest], [int(v) for v in highest]
    return lows, [high - low + 1 for low, high in zip(lows, highs)]


def _merge(histograms: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Merge (keys, counts) pairs into one sorted histogram."""
    merged, inverse = np.unique(np.concatenate([k for k, _ in histograms]), return_inverse=True)
    return merged, np.bincount(inverse, weights=np.concatenate([c for _, c in histograms]))


class _TooManyValues(Exception):
    pass


def _histogram_steps(data: ImageData[da.Array]) -> Steps[Histogram | None]:
    """Distinct values and counts over all chunks, or None when there are too many.

    When the values' range is small (at most DENSE_MAX_KEYS possible values: 8-bit RGB,
    16-bit grey) every possible value has a counter (:func:`_dense_histogram_steps`);
    otherwise each chunk's values are sorted and merged (``np.unique``).
    """
    lows, spans = _key_ranges(data)
    n_keys = int(np.prod(spans, dtype=object))
    if n_keys >= 2**62:
        return None
    if n_keys <= DENSE_MAX_KEYS:
        return (yield from _dense_histogram_steps(data, lows, spans, n_keys))
    histograms = [
        (
            np.zeros(0, np.uint32 if np.prod(spans, dtype=object) <= 2**32 else np.int64),
            np.zeros(0),
        )
    ]

    def add(position: int, histogram: tuple[np.ndarray, np.ndarray]) -> None:
        histograms.append(histogram)
        if len(histograms) > MERGE_EVERY:
            histograms[:] = [_merge(histograms)]
            if len(histograms[0][0]) > MAX_HISTOGRAM_ROWS:
                raise _TooManyValues

    try:
        yield from over_chunks(
            "histogram", [data.pixels, data.mask], _chunk_histogram, add, data.kind, lows, spans
        )
    except _TooManyValues:
        return None
    keys, counts = _merge(histograms)
    return keys.astype(np.int64), counts, lows, spans, data.pixels.npartitions


def _dense_histogram_steps(
    data: ImageData[da.Array], lows: list[int], spans: list[int], n_keys: int
) -> Steps[Histogram | None]:
    """:func:`_histogram_steps` with one counter per possible value: each chunk's values
    are packed into keys (in parallel, by dask) and counted in order, without sorting.

    The same histogram as sorting and merging, and the same point of giving up (more than
    MAX_HISTOGRAM_ROWS distinct values after a multiple of MERGE_EVERY chunks).
    """
    from ..lazy._counting import KeyCounts

    counts = KeyCounts(n_keys)
    n_chunks = 0

    def add(position: int, keys: np.ndarray) -> None:
        nonlocal n_chunks
        counts.add(keys)
        n_chunks += 1
        if n_chunks % MERGE_EVERY == 0 and counts.n_distinct > MAX_HISTOGRAM_ROWS:
            raise _TooManyValues

    try:
        yield from over_chunks(
            "histogram", [data.pixels, data.mask], _chunk_keys, add, data.kind, lows, spans
        )
    except _TooManyValues:
        return None
    keys, totals = counts.histogram()
    return keys, totals, lows, spans, data.pixels.npartitions


def _chunk_keys(
    pixels: np.ndarray,
    usable: np.ndarray,
    position: int,
    origin: tuple[int, ...],
    kind: str,
    lows: list[int],
    spans: list[int],
) -> np.ndarray:
    """The packed values of a chunk's usable pixels (32-bit where they fit)."""
    flat = pixels.reshape(-1, pixels.shape[-1])
    mask = usable.ravel()
    values = flat if mask.all() else flat[mask]
    keys = pack_keys(values, lows, spans)
    if np.prod(spans, dtype=object) <= 2**32:  # half the memory, sorted in half the time
        keys = keys.astype(np.uint32)
    return keys


def _chunk_histogram(
    pixels: np.ndarray,
    usable: np.ndarray,
    position: int,
    origin: tuple[int, ...],
    kind: str,
    lows: list[int],
    spans: list[int],
) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(
        _chunk_keys(pixels, usable, position, origin, kind, lows, spans), return_counts=True
    )


def _looked_up(
    data: ImageData[da.Array],
    feature_set: FeatureSet,
    fit: RowFit,
    found: np.ndarray,
    labelling: Labelling,
    lookup: Lookup,
) -> tuple[LookupLabeller, Tally]:
    """Fitted on the distinct values: chunks are labelled by looking their values up,
    and the table comes from the counts (no second pass over the chunks)."""
    keys, lows, spans = lookup
    labeller = LookupLabeller(
        keys,
        labelling.label_of_component[fit.labels],
        lows,
        spans,
        data.kind,
        fallback=FittedLabeller(labelling, data.kind),
    )
    rows = feature_set.raw
    sums = row_sums(feature_set, fit.labels, len(labelling.label_of_component))
    assert rows is not None and sums is not None  # fitted on distinct values: raw rows
    tally = Tally(
        sums=sums.take(found),
        low=rows.min(axis=0).astype(np.float64),
        high=rows.max(axis=0).astype(np.float64),
    )
    return labeller, tally


class LookupLabeller(ChunkLabeller):
    """Labels by looking each pixel's value up in the fitted table of distinct values.

    Values the fit never saw (none at full resolution; averaged pyramid levels hold new
    ones) are labelled by the fitted ``fallback`` model, as ``Model.predict`` would. When
    the values' range is small (8-bit RGB, 16-bit grey) the table is dense, one label per
    possible value, built once per process: one memory read per pixel instead of a binary
    search, so chunks come on screen faster.
    """

    def __init__(
        self,
        keys: np.ndarray,
        row_labels: np.ndarray,
        lows: list[int],
        spans: list[int],
        kind: str,
        fallback: FittedLabeller | None = None,
    ):
        self.keys, self.row_labels, self.lows, self.spans = keys, row_labels, lows, spans
        self.kind, self.fallback = kind, fallback
        self.n_keys = int(np.prod(spans, dtype=object))

    def chunk(
        self, pixels: np.ndarray, origin: tuple[int, ...], scale: tuple[float, ...]
    ) -> np.ndarray:
        values = pixels.reshape(-1, pixels.shape[-1])
        inside = self._inside(values)
        in_range = (
            values
            if inside is None
            else np.where(inside[:, None], values, np.asarray(self.lows, values.dtype))
        )
        packed = pack_keys(in_range, self.lows, self.spans)
        if self.n_keys <= DENSE_MAX_KEYS:
            labels = self._dense_table()[packed].astype(np.int32)
        else:
            positions = np.minimum(np.searchsorted(self.keys, packed), len(self.keys) - 1)
            labels = np.where(self.keys[positions] == packed, self.row_labels[positions], 0)
        if inside is not None:
            labels[~inside] = 0
        usable = values[:, 3] != 0 if self.kind == "rgba" else None
        if usable is not None:
            labels[~usable] = 0
        unseen = labels == 0 if usable is None else (labels == 0) & usable
        if self.fallback is not None and unseen.any():
            labels[unseen] = self.fallback.values(values[unseen])
        return labels.reshape(pixels.shape[:-1])

    def _inside(self, values: np.ndarray) -> np.ndarray | None:
        """Which values lie in the table's ranges; None when every value of the dtype does."""
        full = channel_ranges(np.zeros((1, values.shape[1]), values.dtype))
        if values.dtype in (np.uint8, np.uint16, np.bool_) and full == (self.lows, self.spans):
            return None
        lows = np.asarray(self.lows)
        return np.all((values >= lows) & (values < lows + np.asarray(self.spans)), axis=1)

    def _dense_table(self) -> np.ndarray:
        table = self.__dict__.get("_table")
        if table is None:
            dtype = np.uint8 if self.row_labels.max(initial=0) < 256 else np.int32
            table = np.zeros(self.n_keys, dtype=dtype)
            table[self.keys] = self.row_labels
            self._table = table
        return table

    def __getstate__(
        self,
    ) -> dict[str, Any]:  # the dense table is rebuilt where it is used, not shipped
        state = dict(self.__dict__)
        state.pop("_table", None)
        return state


# ---------------------------------------------------------------------- sample route
def _sample_steps(
    data: ImageData[da.Array], random_state: int | None
) -> Steps[tuple[np.ndarray, np.ndarray]]:
    """About SAMPLE_PIXELS usable pixels drawn evenly from every chunk, reproducibly.

    Returns their values ``(n, C)`` and positions ``(n, ndim)``.
    """
    share = min(1.0, SAMPLE_PIXELS / float(np.prod(data.spatial_shape)))
    values: list[np.ndarray] = []
    positions: list[np.ndarray] = []

    def add(position: int, sample: tuple[np.ndarray, np.ndarray]) -> None:
        values.append(sample[0])
        positions.append(sample[1])

    yield from over_chunks(
        "sampling", [data.pixels, data.mask], _chunk_sample, add, data.kind, share, random_state
    )
    return np.concatenate(values), np.concatenate(positions)


def _chunk_sample(
    pixels: np.ndarray,
    mask: np.ndarray,
    position: int,
    origin: tuple[int, ...],
    kind: str,
    share: float,
    random_state: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(None if random_state is None else [int(random_state), position])
    usable = np.flatnonzero(mask)
    chosen = np.sort(rng.choice(usable, rng.binomial(len(usable), share), replace=False))
    where = np.stack(np.unravel_index(chosen, pixels.shape[:-1]), axis=1)
    return pixels.reshape(-1, pixels.shape[-1])[chosen], where + np.asarray(origin)


def _sample_feature_steps(
    data: ImageData[da.Array], feature_options: dict[str, Any]
) -> Steps[FeatureSet]:
    values, positions = yield from _sample_steps(data, feature_options["random_state"])
    if len(values) == 0:
        raise ValueError(NO_DATA)
    feature_set = build_features(
        _as_image(values, data.kind),
        color_space=feature_options["color_space"],
        spatial_weight=feature_options["spatial_weight"],
        standardize=feature_options["standardize"],
        coordinates=positions,
        **stain_options(feature_options),
    )
    feature_set.compression = (
        f"lazy: fitted on a sample of {len(values):,} pixels drawn "
        f"from every chunk; {feature_set.compression}"
    )
    return feature_set


def _predicted_steps(
    data: ImageData[da.Array], n_clusters: int, found: np.ndarray, labelling: Labelling
) -> Steps[tuple[FittedLabeller, Tally]]:
    """Fitted on a sample: the fitted labelling labels every chunk, then every label is
    counted (one more pass over the chunks)."""
    labeller = FittedLabeller(labelling, data.kind)
    tally = yield from tally_steps(data, labeller.array(data), n_clusters)
    return labeller, drop_empty(tally, len(found))
