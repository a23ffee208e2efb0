"""Ward clustering on the pixel grid: only neighbouring pixels or regions may merge.

As in scikit-learn's coins example, pixels are clustered with Ward's linkage under
``grid_to_graph`` connectivity: the result is ``AgglomerativeClustering(linkage="ward")``'s,
label for label, computed by a compiled copy of scikit-learn's merge loop
(:mod:`._ward_tree`, about 10x faster and 3x less memory, with progress and cancel). Up to
``AUTO_MAX_PIXELS`` pixels are clustered at full resolution; a larger image (or any image
with ``downscale`` < 1) is shrunk (anti-aliased) first and the labels are enlarged back.

Missing pixels, and pixels outside a mask (``segment(..., mask=...)``: the grid is
restricted to the pixels inside, as ``grid_to_graph(..., mask=mask)``), can split the
usable ones into separate parts (a grid graph with several connected components, e.g. a
mask of two islands). scikit-learn then joins *every pair* of parts by their two most
similar pixels, wherever they are: the number of joins grows with the square of the number
of parts (with half the pixels missing at random, 80x80 has about 400 parts and took
about a minute; 200x200 has about 2,700: an estimated 40 minutes or more). Here the parts
are joined across the gaps between them instead (see :func:`gap_bridges`): at most as
many joins as the grid has neighbour pairs, and regions stay spatially coherent. A
connected grid is passed to scikit-learn unchanged, so the result is exactly
scikit-learn's.

Ward's merge tree needs every pixel at once, so it is not defined chunk by chunk: on a
lazy image (:func:`lazy_run`) it clusters block averages of ``factor`` x ``factor`` pixels
(only usable pixels count), read chunk by chunk, and every full-resolution pixel takes the
label of its block.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..features import build_features, rgb_to_unit_range, stain_options
from ..image import ImageData
from ..lazy.chunks import GridLabeller, block_average_steps, nearest_filled, tally_steps
from ..registry import LazyOutput, Method, MethodOutput, Param, Steps

if TYPE_CHECKING:
    import dask.array as da
    from scipy import sparse

#: With ``downscale=None`` the image is shrunk to at most this many pixels (2048², about
#: 12 s here).
AUTO_MAX_PIXELS = 2048 * 2048
#: Measured here (benchmarks/bench_ward.py, 2 busy cores): Ward on the pixel grid needs
#: about this much memory and time per clustered pixel (0.25-4 Mpx, 2-D and 3-D).
BYTES_PER_PIXEL = 400  # measured through segment: 230 B at 1 and 4 Mpx on a connected
#                        grid, about 400 B where gaps split it (a sparse graph joins parts)
SECONDS_PER_PIXEL = 3.0e-6  # measured 2.0-2.8 µs per pixel at 0.26-4 Mpx
SLOW_SECONDS = 60.0


def available_memory() -> int | None:
    """Bytes of memory free for new work, or None where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_size(n_pixels: int, downscale: float, spatial_shape: tuple[int, ...]) -> None:
    """Refuse a run that would run out of memory; warn about one that would be slow."""
    need = n_pixels * BYTES_PER_PIXEL
    free = available_memory()
    fits = (0.8 * free / BYTES_PER_PIXEL) if free else None
    if free is not None and fits is not None and n_pixels > fits:  # (free: narrows its type)
        largest = downscale * (fits / n_pixels) ** 0.5
        raise ValueError(
            f"downscale: Ward on {n_pixels:,} pixels needs about {need / 2**30:.1f} GiB of "
            f"memory but only {free / 2**30:.1f} GiB is free; use downscale={largest:.3f} "
            "or less."
        )
    seconds = n_pixels * SECONDS_PER_PIXEL
    if seconds > SLOW_SECONDS:
        warnings.warn(
            f"Ward on {n_pixels:,} pixels will take about {seconds / 60:.0f} minutes; "
            f"downscale={auto_downscale(spatial_shape)} would take about 10 seconds.",
            UserWarning,
            stacklevel=4,
        )


def auto_downscale(spatial_shape: tuple[int, ...]) -> float:
    """Largest fraction <= 1 of y and x that leaves at most ``AUTO_MAX_PIXELS`` pixels."""
    n_pixels = float(np.prod(spatial_shape))
    fraction = (AUTO_MAX_PIXELS / n_pixels) ** 0.5
    return float(min(1.0, round(fraction, 3)))


def shrunk_shape(spatial_shape: tuple[int, ...], downscale: float) -> tuple[int, ...]:
    """y and x shrink by ``downscale``; planes of a stack are all kept."""
    *planes, height, width = spatial_shape
    return (*planes, *(max(1, round(s * downscale)) for s in (height, width)))


def shrink(data: ImageData[np.ndarray], downscale: float) -> ImageData[np.ndarray]:
    """The image at ``downscale`` of its size (anti-aliased); unusable pixels stay unusable."""
    if downscale == 1.0:
        return data
    small_shape = shrunk_shape(data.spatial_shape, downscale)
    values = data.pixels.astype(np.float64)
    if data.is_color:  # float RGB is read as 0..1: keep that meaning after resizing
        values = rgb_to_unit_range(data.pixels)
    weight = data.mask.astype(np.float64)
    values = np.where(data.mask[..., None], values, 0.0)

    def shrink_array(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        from skimage.transform import resize

        return resize(array, shape, order=1, anti_aliasing=True, preserve_range=True)

    # average of the usable pixels only: pixels without data do not leak into their neighbours
    small_weight = shrink_array(weight, small_shape)
    small = shrink_array(values, (*small_shape, data.n_channels))
    small /= np.maximum(small_weight, 1e-12)[..., None]
    small_mask = small_weight > 0.5
    if not small_mask.any():
        raise ValueError(
            f"downscale: at downscale={downscale} no pixel of the shrunk image has data; "
            "use a larger downscale."
        )
    return ImageData(pixels=small, kind=data.kind, mask=small_mask, channel_axis=data.channel_axis)


def enlarge(labels: np.ndarray, data: ImageData[np.ndarray]) -> np.ndarray:
    """Labels at clustering size -> full size; usable pixels all get their nearest label."""
    from scipy import ndimage
    from skimage.transform import resize

    full = resize(
        labels, data.spatial_shape, order=0, preserve_range=True, anti_aliasing=False
    ).astype(np.int32)
    holes = data.mask & (full == 0)
    if holes.any():
        nearest = ndimage.distance_transform_edt(
            full == 0, return_distances=False, return_indices=True
        )
        full[holes] = full[tuple(index[holes] for index in nearest)]
    full[~data.mask] = 0
    return full


def grid_connectivity(mask: np.ndarray) -> tuple[np.ndarray | sparse.spmatrix, int, int]:
    """What the merge loop connects -> (connectivity, separate parts, bridges across gaps).

    A mask whose usable pixels form one connected grid is passed as it is (the loop builds
    the grid's neighbour lists itself, the same as ``grid_to_graph(..., mask=mask)``'s,
    without a sparse graph: about 150 B per pixel less); otherwise :func:`pixel_graph`.
    """
    from scipy import ndimage

    _, n_parts = ndimage.label(mask)  # face neighbours, as grid_to_graph connects them
    if n_parts == 1:
        return mask, 1, 0
    return pixel_graph(mask)


def pixel_graph(mask: np.ndarray) -> tuple[sparse.spmatrix, int, int]:
    """Connectivity of the usable pixels -> (graph, separate parts, bridges across gaps).

    Rows are the usable pixels in C order (as ``grid_to_graph(..., mask=mask)``). When the
    grid graph is connected it is returned as it is; otherwise the parts are joined by
    :func:`gap_bridges`, which always leaves a single connected graph.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    from sklearn.feature_extraction.image import grid_to_graph

    graph = grid_to_graph(*mask.shape, mask=mask)
    n_parts, part_of_row = connected_components(graph, directed=False)
    if n_parts == 1:
        return graph, 1, 0
    pairs = gap_bridges(mask, part_of_row)
    bridges = sparse.coo_matrix(
        (np.ones(len(pairs), dtype=graph.dtype), pairs.T), shape=graph.shape
    )
    return (graph + bridges + bridges.T).tocoo(), n_parts, len(pairs)


def gap_bridges(mask: np.ndarray, part_of_row: np.ndarray) -> np.ndarray:
    """Pairs of usable pixels (rows) that join separate parts across missing pixels.

    Every pixel of the grid, missing or not, is given to its nearest usable pixel (exact
    Euclidean distance; a Voronoi diagram of the usable pixels). Wherever two neighbouring
    grid pixels are given to usable pixels of different parts, those two usable pixels
    are joined. Parts that face each other across a gap are thereby joined along it, and
    the parts all end up connected because the full grid is. Returns ``(n, 2)`` row
    indices, each pair once, smaller row first.
    """
    from scipy import ndimage

    row_of_pixel = np.full(mask.shape, -1, dtype=np.intp)
    row_of_pixel[mask] = np.arange(int(mask.sum()))
    nearest = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    nearest_row = row_of_pixel[tuple(nearest)]
    pairs_by_axis = []
    for axis in range(mask.ndim):
        first = np.delete(nearest_row, -1, axis=axis).ravel()
        second = np.delete(nearest_row, 0, axis=axis).ravel()
        across = part_of_row[first] != part_of_row[second]
        pairs_by_axis.append(np.stack([first[across], second[across]], axis=1))
    pairs = np.sort(np.concatenate(pairs_by_axis), axis=1)
    return np.unique(pairs, axis=0)


def warm_up() -> None:
    """Compile the merge loop's kernels (about 10 s, once per machine) or load them from
    numba's disk cache (0.3 s)."""
    from . import _ward_tree

    _ward_tree.warm_up()


def fit_steps(
    merging: Generator[float, None, np.ndarray], start: float, end: float
) -> Steps[np.ndarray]:
    """Re-yields the merge loop's fractions as ("fit", fraction) steps; returns its labels."""
    while True:
        try:
            done = next(merging)
        except StopIteration as finished:
            return finished.value
        yield "fit", start + (end - start) * done


def run(
    data: ImageData[np.ndarray],
    n_clusters: int | None,
    feature_options: dict[str, Any],
    params: dict[str, Any],
) -> Steps[MethodOutput]:
    assert n_clusters is not None  # Ward needs one: segment checked it
    if len(data.spatial_shape) > 3:
        raise ValueError(
            f"image: Ward's pixel grid connects neighbours in 2-D and 3-D images, but this "
            f"image has {len(data.spatial_shape)} spatial axes {data.spatial_shape}; "
            "segment one 3-D volume or plane at a time."
        )
    downscale = params["downscale"] or auto_downscale(data.spatial_shape)
    small = shrink(data, downscale)
    feature_set = build_features(
        small,
        color_space=feature_options["color_space"],
        spatial_weight=feature_options["spatial_weight"],
        standardize=feature_options["standardize"],
        compress=False,
        **stain_options(feature_options),
    )
    n_pixels = len(feature_set.X)
    if n_clusters > n_pixels:
        raise ValueError(
            f"n_clusters: {n_clusters} clusters were asked for, but at downscale="
            f"{downscale} the image has only {n_pixels} usable pixels; use fewer clusters "
            "or a larger downscale."
        )
    check_size(n_pixels, downscale, data.spatial_shape)
    labels_small = np.zeros(small.spatial_shape, dtype=np.int32)
    yield "fit", 0.05
    connectivity, n_parts, n_bridges = grid_connectivity(small.mask)
    yield "fit", 0.1
    if n_pixels == 1:
        row_labels = np.zeros(1, dtype=np.int32)
    else:
        from . import _ward_tree

        _ward_tree.warm_up()  # compiled on first use (in the worker) unless warmed already
        merging = _ward_tree.labels_steps(feature_set.X, connectivity, n_clusters)
        row_labels = yield from fit_steps(merging, start=0.1, end=0.9)
    labels_small[small.mask] = row_labels + 1
    yield "predict", 0.95
    return MethodOutput(
        labels=enlarge(labels_small, data),
        score={"pixels_clustered": int(n_pixels)},
        details={
            "downscale": downscale,
            "clustered_shape": list(small.spatial_shape),
            "separate_parts": n_parts,
            "bridges_across_gaps": n_bridges,
            "compression": feature_set.compression,
            "features": feature_set.names,
            **feature_set.standardization,
        },
    )


def lazy_run(
    data: ImageData[da.Array],
    n_clusters: int | None,
    feature_options: dict[str, Any],
    params: dict[str, Any],
    levels: Sequence[Any] = (),
) -> Steps[LazyOutput]:
    """Ward on block averages of a lazy image (or of the pyramid level nearest their size);
    every pixel takes its block's label."""
    factor = block_factor(data.spatial_shape, params["downscale"])
    blocks = yield from block_average_steps(data, factor, levels)
    if not blocks.image.mask.any():
        raise ValueError(
            "downscale: no block of the shrunk image has data; use a larger downscale."
        )
    output = yield from run(blocks.image, n_clusters, feature_options, {"downscale": 1.0})
    labeller = GridLabeller(nearest_filled(output.labels), blocks.block, data.kind)
    found = np.unique(output.labels[output.labels > 0])
    tally = yield from tally_steps(data, labeller.array(data), len(found))
    which = f"level {blocks.level} of the pyramid" if blocks.level else "the image"
    side = max(blocks.block)
    details = output.details | {
        "downscale": round(1.0 / side, 6),
        "downscale_requested": params["downscale"],
        "lazy_level": f"Ward clustered {which} shrunk to block averages of {blocks.factor}x"
        f"{blocks.factor} pixels (shape {list(blocks.image.spatial_shape)}, about "
        f"{side:.0f}x smaller than full size); every pixel takes its block's label",
    }
    return LazyOutput(labeller, tally, found - 1, output.score, details, output.model)


def block_factor(spatial_shape: tuple[int, ...], downscale: float | None) -> int:
    """Block side for ``downscale`` (empty: about ``AUTO_MAX_PIXELS`` pixels clustered)."""
    if downscale is None:
        plane = spatial_shape[-2] * spatial_shape[-1]
        planes = int(np.prod(spatial_shape[:-2], dtype=np.int64))
        return max(1, math.ceil(math.sqrt(plane * planes / AUTO_MAX_PIXELS)))
    return max(1, round(1.0 / downscale))


METHOD = Method(
    name="ward",
    title="Ward (pixel grid)",
    summary="Merges neighbouring pixels into k regions of similar color "
    "(scikit-learn's coins example); regions are always connected.",
    params=(
        Param(
            "downscale",
            float,
            None,
            "Fraction of the image size at which to cluster (like the coins example's "
            "0.2); labels come back at full size. Empty: full size up to "
            f"{AUTO_MAX_PIXELS:,} pixels (2048², about 12 s), else shrunk to that many.",
            minimum=0.001,
            maximum=1.0,
            allow_none=True,
        ),
    ),
    run=run,
    lazy_run=lazy_run,
    uses_random_state=False,  # the merge tree has no random start
    warm_up=warm_up,
    large_image_note=(
        "Large image: Ward is not defined chunk by chunk, so it\nclusters a downscaled "
        "level (block averages; 'downscale'\nsets the level) and enlarges the labels."
    ),
)
