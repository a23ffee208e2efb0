"""k-means on an image larger than comfortable memory, lazily (dask), with peak memory.

    python benchmarks/bench_lazy.py [--side 20480] [--chunk 512]

The image is the astronaut tiled to side x side RGB (a dask array: never in memory as a
whole; 20480² is 1.26 GB of pixels). The script fits k-means (k=8, Lab) from the
chunk-by-chunk colour histogram, then computes every chunk of the labels (summing them,
so nothing is kept), and prints the time of each pass and the process's peak resident
memory. For comparison it also prints the in-memory path on one 4096² tile-set.
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import numpy as np
from skimage import data

import napari_pixel_clusters as npc


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20480)
    parser.add_argument("--chunk", type=int, default=512)
    args = parser.parse_args()

    tile = da.from_array(data.astronaut(), chunks=(args.chunk, args.chunk, 3))
    repeats = args.side // 512
    image = da.tile(tile, (repeats, repeats, 1))
    print(f"lazy image {image.shape} {image.dtype}, {image.nbytes / 2**30:.2f} GiB, "
          f"{image.npartitions} chunks; resident before: {peak_rss_mb():.0f} MB")
    started = time.perf_counter()
    seg = npc.segment(image, "kmeans", 8, color_space="lab", random_state=0)
    fitted = time.perf_counter()
    total = int(seg.labels.sum().compute())
    labelled = time.perf_counter()
    print(f"histogram + fit: {fitted - started:.1f} s; labelling every chunk: "
          f"{labelled - fitted:.1f} s; {seg.params['compression']}")
    print(f"sum of labels {total:,}; peak resident memory {peak_rss_mb():.0f} MB")
    small = np.asarray(image[:4096, :4096])
    started = time.perf_counter()
    in_memory = npc.segment(small, "kmeans", 8, color_space="lab", random_state=0)
    print(f"in memory, 4096² of the same image: {time.perf_counter() - started:.1f} s; "
          f"labels equal to the lazy ones there: "
          f"{np.array_equal(in_memory.labels, seg.labels[:4096, :4096].compute())}")


if __name__ == "__main__":
    main()
