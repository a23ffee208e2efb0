"""Ward on the full pixel grid: our compiled merge loop against scikit-learn.

    python benchmarks/bench_ward.py             # 128²-512² RGB, coins, a 3-D volume
    python benchmarks/bench_ward.py --full      # adds 1024² and 2048² (scikit-learn 1024²: ~3 min)
    python benchmarks/bench_ward.py --sizes 1024 2048 --no-reference --repeat 3

Each run is a forked process, so its peak memory (resident set above the process's size
when the run started: features, graph and labels included) is its own. Three ways to get
the same labels, k=27, on the same features (RGB scaled to 0..1, as the package builds them):

* ``segment``: ``npc.segment(image, "ward", 27, downscale=1.0)``, the whole package route;
* ``loop``: the package's features, then ``_ward_tree.labels`` given the grid as a mask
  (neighbour lists built directly, no sparse graph);
* ``scikit-learn``: ``AgglomerativeClustering(linkage="ward", connectivity=grid_to_graph(...))``.

Times are medians of ``--repeat`` runs, wall clock and CPU (this process's own CPU time:
less sensitive to other work on a shared machine). "same" says whether the label images
equal scikit-learn's, numbered alike. First, the compile time of the loop's kernels
(``warm_up()`` in a fresh process with an empty numba cache) and the time to load them
from the cache in a later process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import tempfile
import time

import numpy as np
from skimage import data, filters, transform


def photo(size: int) -> np.ndarray:
    """The astronaut photo resized (bilinear) to size x size, uint8 RGB."""
    image = data.astronaut()
    if size != 512:
        image = transform.resize(image, (size, size), order=1, preserve_range=True)
    return np.ascontiguousarray(image.astype(np.uint8))


def smoothed_coins() -> np.ndarray:
    """scikit-learn's coins example input: Gaussian-smoothed coins, 303 x 384."""
    return filters.gaussian(data.coins(), sigma=2)


def volume() -> np.ndarray:
    """A smooth random grey volume, 32 x 64 x 64 (z, y, x)."""
    rng = np.random.default_rng(0)
    return filters.gaussian(rng.random((32, 64, 64)), sigma=3)


def spatial_shape(image: np.ndarray) -> tuple[int, ...]:
    return image.shape[:2] if image.shape[-1] == 3 else image.shape  # RGB, or grey / volume


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def segment(image: np.ndarray, k: int) -> np.ndarray:
    import napari_pixel_clusters as npc

    return npc.segment(image, "ward", k, downscale=1.0).labels


def loop(image: np.ndarray, k: int) -> np.ndarray:
    from napari_pixel_clusters.core.features import build_features
    from napari_pixel_clusters.core.image import read_image
    from napari_pixel_clusters.core.methods import _ward_tree

    image_data = read_image(image)
    features = build_features(image_data, compress=False)
    labels = np.zeros(image_data.spatial_shape, dtype=np.int32)
    labels[image_data.mask] = 1 + _ward_tree.labels(features.X, image_data.mask, k)
    return labels


def scikit_learns(image: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph

    spatial = spatial_shape(image)
    values = image.reshape(int(np.prod(spatial)), -1).astype(np.float64)
    if image.dtype == np.uint8:
        values /= 255.0
    model = AgglomerativeClustering(k, linkage="ward", connectivity=grid_to_graph(*spatial))
    return 1 + model.fit(values).labels_.reshape(spatial)


def _timed(function, image, k, queue):
    from napari_pixel_clusters.core.methods import _ward_tree

    _ward_tree.warm_up()  # compiled code loaded from the cache: not part of the timing
    function(image[tuple(slice(0, 6) for _ in spatial_shape(image))], 2)  # imports, too
    start_memory = rss()
    started, cpu_started = time.perf_counter(), time.process_time()
    labels = function(image, k)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    queue.put((seconds, cpu, peak_rss() - start_memory, labels))


def measure(function, image, k, repeat):
    """Median wall seconds, CPU seconds and peak bytes of ``repeat`` forked runs; labels."""
    runs = []
    for _ in range(repeat):
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=_timed, args=(function, image, k, queue))
        process.start()
        runs.append(queue.get())
        process.join()
    wall, cpu, memory = (statistics.median(run[i] for run in runs) for i in range(3))
    return wall, cpu, memory, runs[-1][3]


def _warm_up(queue):
    started = time.perf_counter()
    from napari_pixel_clusters.core.methods import _ward_tree

    imported = time.perf_counter()
    _ward_tree.warm_up()
    queue.put((imported - started, time.perf_counter() - imported))


def compile_times() -> list[tuple[float, float]]:
    """(import, warm_up) seconds: first with an empty cache, then twice with the cache."""
    times = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache
        for _ in range(3):
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            process = context.Process(target=_warm_up, args=(queue,))
            process.start()
            times.append(queue.get())
            process.join()
        del os.environ["NUMBA_CACHE_DIR"]
    return times


def row(name, seconds, cpu, memory, n_pixels) -> str:
    return (
        f"{name} {seconds:6.2f} s (cpu {cpu:6.2f}) {memory / 2**20:6.0f} MB "
        f"[{1e6 * seconds / n_pixels:4.1f} µs {memory / n_pixels:4.0f} B /px]"
    )


def report(name, image, k, reference: bool, repeat: int) -> None:
    n_pixels = int(np.prod(spatial_shape(image)))
    print(f"{name} ({n_pixels:,} pixels)", flush=True)
    ours = {}
    for route, function in (("segment", segment), ("loop", loop)):
        *numbers, ours[route] = measure(function, image, k, repeat)
        print("   " + row(f"{route:>12}", *numbers, n_pixels), flush=True)
        if route == "segment":
            route_seconds = numbers[0]
    if reference:
        ref_seconds, *ref_numbers, expected = measure(scikit_learns, image, k, 1)
        same = {route: np.array_equal(labels, expected) for route, labels in ours.items()}
        print(
            "   " + row("scikit-learn", ref_seconds, *ref_numbers, n_pixels) + f"  ratio "
            f"{ref_seconds / route_seconds:4.1f}x (segment)  same labels: {same}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also 1024² and 2048²")
    parser.add_argument("--sizes", type=int, nargs="*", help="only these square sizes")
    parser.add_argument("--no-reference", action="store_true", help="skip scikit-learn")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile times")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (median)")
    args = parser.parse_args()
    if not args.no_compile:
        (first_import, first), *later = compile_times()
        print(
            f"compile: import {first_import:.2f} s, warm_up() {first:.1f} s with an empty "
            f"cache; later processes: import {later[-1][0]:.2f} s, warm_up() "
            f"{later[-1][1]:.2f} s (cached)",
            flush=True,
        )
    sizes = args.sizes or ((128, 256, 512, 1024, 2048) if args.full else (128, 256, 512))
    for size in sizes:
        reference = not args.no_reference and size <= (1024 if args.full else 512)
        report(f"RGB {size}²", photo(size), 27, reference, args.repeat)
    if not args.sizes:
        report("coins 303x384", smoothed_coins(), 27, not args.no_reference, args.repeat)
        report("volume 32x64²", volume(), 27, not args.no_reference, args.repeat)


if __name__ == "__main__":
    main()
