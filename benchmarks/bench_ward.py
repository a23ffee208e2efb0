"""Ward on the full pixel grid: our compiled merge loop against scikit-learn.

    python benchmarks/bench_ward.py           # 128²-512² RGB, coins, a 3-D volume (a few minutes)
    python benchmarks/bench_ward.py --full    # adds 1024² and 2048² (scikit-learn 1024²: ~3 min)
    python benchmarks/bench_ward.py --sizes 1024 --no-reference

Each run is a forked process, so its peak memory (resident set above the process's size
when the run started, features and graph included) is its own. Both sides cluster the
same features (RGB scaled to 0..1) on the same ``grid_to_graph`` connectivity with k=27;
"same" says whether the label images are equal (numbered alike). The compile time of the
loop is measured first in a process with an empty numba cache directory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
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


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def ours(image: np.ndarray, k: int) -> np.ndarray:
    import napari_pixel_clusters as npc

    return npc.segment(image, "ward", k, downscale=1.0).labels


def scikit_learns(image: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph

    spatial = image.shape[:2] if image.shape[-1] == 3 else image.shape  # RGB or grey/volume
    values = image.reshape(int(np.prod(spatial)), -1).astype(np.float64)
    if image.dtype == np.uint8:
        values /= 255.0
    model = AgglomerativeClustering(k, linkage="ward", connectivity=grid_to_graph(*spatial))
    return 1 + model.fit(values).labels_.reshape(spatial)


def _timed(function, image, k, queue):
    from napari_pixel_clusters.core.methods import _ward_tree

    _ward_tree.warm()  # compiled code loaded from the cache: not part of the timing
    start_memory = rss()
    started = time.perf_counter()
    labels = function(image, k)
    seconds = time.perf_counter() - started
    queue.put((seconds, peak_rss() - start_memory, labels))


def measure(function, image, k):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_timed, args=(function, image, k, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def _compile(queue):
    started = time.perf_counter()
    from napari_pixel_clusters.core.methods import _ward_tree

    _ward_tree.warm()
    queue.put(time.perf_counter() - started)


def compile_times() -> tuple[float, float]:
    """(first use with an empty cache, later use with the cache) in fresh processes."""
    times = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            context = multiprocessing.get_context("spawn")
            os.environ["NUMBA_CACHE_DIR"] = cache
            queue = context.Queue()
            process = context.Process(target=_compile, args=(queue,))
            process.start()
            times.append(queue.get())
            process.join()
        del os.environ["NUMBA_CACHE_DIR"]
    return times[0], times[1]


def report(name, image, k, reference: bool) -> None:
    n_pixels = int(np.prod(image.shape[:2] if image.shape[-1] == 3 else image.shape))
    seconds, memory, labels = measure(ours, image, k)
    line = (
        f"{name:>14}  ours {seconds:7.2f} s {memory / 2**20:7.0f} MB "
        f"({1e6 * seconds / n_pixels:5.1f} µs and {memory / n_pixels:5.0f} B per pixel)"
    )
    if reference:
        ref_seconds, ref_memory, expected = measure(scikit_learns, image, k)
        line += (
            f"  scikit-learn {ref_seconds:7.2f} s {ref_memory / 2**20:7.0f} MB"
            f"  ratio {ref_seconds / seconds:5.1f}x  same: {np.array_equal(labels, expected)}"
        )
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also 1024² and 2048²")
    parser.add_argument("--sizes", type=int, nargs="*", help="only these square sizes")
    parser.add_argument("--no-reference", action="store_true", help="skip scikit-learn")
    args = parser.parse_args()
    first, later = compile_times()
    print(f"compile: first use {first:.1f} s (empty cache), later {later:.2f} s (cached)")
    sizes = args.sizes or ((128, 256, 512, 1024, 2048) if args.full else (128, 256, 512))
    for size in sizes:
        reference = not args.no_reference and size <= (1024 if args.full else 512)
        report(f"RGB {size}²", photo(size), 27, reference)
    if not args.sizes:
        report("coins 303x384", smoothed_coins(), 27, not args.no_reference)
        report("volume 32x64²", volume(), 27, not args.no_reference)


if __name__ == "__main__":
    main()
