"""k-means on an image larger than comfortable memory, lazily (dask -> zarr), with peak memory.

    python benchmarks/bench_lazy.py                     # lazy 20480², in memory 4096²
    python benchmarks/bench_lazy.py --side 10240 --in-memory-side 2048 --chunk 512
    python benchmarks/bench_lazy.py --quantized         # also write the quantized image

The image is skimage's astronaut (512² RGB) tiled to side x side, so sides must be
multiples of 512. Each path runs in its own subprocess, so that its peak resident memory
(VmHWM, interpreter and imports included) is its own:

- in memory: the tiled image as a numpy array, ``npc.segment(image, "kmeans", 8,
  color_space="lab", random_state=0)``; the time of that call.
- lazy: the tiled image as a dask array (never in memory as a whole; 20480² is 1.26 GB of
  pixels). The same call fits k-means on the chunk-by-chunk color histogram (timed:
  histogram + fit); then ``seg.labels.to_zarr`` computes every chunk of the labels and
  writes it to a zarr store (timed: labelling + zarr write). With ``--quantized`` the
  quantized image (``seg.quantized`` of the labels read back from the store) is written
  to a second store (timed separately).

The stores live in a temporary directory, deleted at the end. The parent process then
checks that the lazy labels in the store equal the in-memory labels on the first
min(side, in-memory side)² pixels (the tiled images have the same color histogram up to
a factor, so the fits agree), and prints a markdown table: time and peak memory of each
path, and peak memory per GB of pixels. GB and MB are 10⁹ and 10⁶ bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import dask.array as da
import numpy as np
import zarr
from skimage import data

import napari_pixel_clusters as npc

TILE = 512  # side of skimage's astronaut
K = 8
OPTIONS = {"color_space": "lab", "random_state": 0}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (VmHWM), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def store_mb(path: str) -> tuple[float, float]:
    """Size of a directory tree in MB: bytes of its files, and bytes allocated on disk."""
    size = allocated = 0
    for folder, _, files in os.walk(path):
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            size += stat.st_size
            allocated += stat.st_blocks * 512
    return size / 1e6, allocated / 1e6


def run_in_memory(side: int, workdir: str) -> dict:
    """Segment the tiled image as a numpy array; save its labels for the comparison."""
    repeats = side // TILE
    image = np.tile(data.astronaut(), (repeats, repeats, 1))
    baseline = peak_rss_mb()
    started = time.perf_counter()
    seg = npc.segment(image, "kmeans", K, **OPTIONS)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    np.save(os.path.join(workdir, "in_memory_labels.npy"), seg.labels)
    print(
        f"in memory {side}²: {seconds:.1f} s; {seg.params['compression']}; "
        f"peak resident memory {peak:.0f} MB (before segment: {baseline:.0f} MB)"
    )
    return {"seconds": seconds, "peak_mb": peak, "nbytes": image.nbytes}


def run_lazy(side: int, chunk: int, quantized: bool, workdir: str) -> dict:
    """Segment the tiled image as a dask array; write labels (and quantized) to zarr."""
    tile = da.from_array(data.astronaut(), chunks=(chunk, chunk, 3))
    image = da.tile(tile, (side // TILE, side // TILE, 1))
    baseline = peak_rss_mb()
    print(
        f"lazy {side}²: {image.shape} {image.dtype}, {image.nbytes / 1e9:.2f} GB, "
        f"{image.npartitions} chunks; resident before: {baseline:.0f} MB"
    )
    started = time.perf_counter()
    seg = npc.segment(image, "kmeans", K, **OPTIONS)
    fitted = time.perf_counter()
    labels_path = os.path.join(workdir, "labels.zarr")
    seg.labels.to_zarr(labels_path)
    written = time.perf_counter()
    result = {
        "fit_seconds": fitted - started,
        "write_seconds": written - fitted,
        "labels_mb": store_mb(labels_path),
        "nbytes": image.nbytes,
    }
    print(
        f"  histogram + fit: {result['fit_seconds']:.1f} s ({seg.params['compression']})"
        f"; labelling + zarr write: {result['write_seconds']:.1f} s"
    )
    if quantized:
        quantized_path = os.path.join(workdir, "quantized.zarr")
        seg.quantized(da.from_zarr(labels_path)).to_zarr(quantized_path)
        result["quantized_seconds"] = time.perf_counter() - written
        result["quantized_mb"] = store_mb(quantized_path)
        print(f"  quantized image + zarr write: {result['quantized_seconds']:.1f} s")
    result["peak_mb"] = peak_rss_mb()
    print(f"  peak resident memory {result['peak_mb']:.0f} MB")
    return result


def run_child(name: str, flags: list[str], workdir: str) -> dict:
    """Run this script on one path in a fresh interpreter; return its result."""
    command = [sys.executable, __file__, *flags, "--workdir", workdir]
    subprocess.run(command, check=True)
    with open(os.path.join(workdir, f"{name}.json")) as file:
        return json.load(file)


def labels_match(workdir: str, side: int) -> tuple[bool, int]:
    """Lazy labels in the zarr store == in-memory labels on the common top-left square."""
    in_memory = np.load(os.path.join(workdir, "in_memory_labels.npy"))
    n = min(side, in_memory.shape[0])
    stored = zarr.open_array(os.path.join(workdir, "labels.zarr"), mode="r")[:n, :n]
    return bool(np.array_equal(stored, in_memory[:n, :n])), n


def print_report(args, in_memory: dict, lazy: dict, match: tuple[bool, int]) -> None:
    lazy_seconds = lazy["fit_seconds"] + lazy["write_seconds"] + lazy.get("quantized_seconds", 0.0)
    rows = [
        (
            "in memory (numpy)",
            args.in_memory_side,
            in_memory["nbytes"],
            in_memory["seconds"],
            in_memory["peak_mb"],
        ),
        ("lazy (dask -> zarr)", args.side, lazy["nbytes"], lazy_seconds, lazy["peak_mb"]),
    ]
    size, allocated = lazy["labels_mb"]
    print(f"\nlabels zarr store: {size:.1f} MB of files ({allocated:.1f} MB allocated)")
    if "quantized_mb" in lazy:
        size, allocated = lazy["quantized_mb"]
        print(f"quantized zarr store: {size:.1f} MB of files ({allocated:.1f} MB allocated)")
    equal, n = match
    print(f"lazy labels (from the store) equal the in-memory ones on {n}²: {equal}\n")
    print("| path | image | pixels (GB) | time (s) | peak memory (MB) |")
    print("|---|---|---|---|---|")
    for path, side, nbytes, seconds, peak in rows:
        print(f"| {path} | {side}² RGB uint8 | {nbytes / 1e9:.3f} | {seconds:.1f} | {peak:.0f} |")
    ratios = "; ".join(f"{path} {peak / (nbytes / 1e9):.0f}" for path, _, nbytes, _, peak in rows)
    print(f"\npeak memory per GB of pixels (MB/GB): {ratios}")
    print(
        f"lazy time: histogram + fit {lazy['fit_seconds']:.1f} s, labelling + zarr write "
        f"{lazy['write_seconds']:.1f} s"
        + (
            f", quantized + zarr write {lazy['quantized_seconds']:.1f} s"
            if "quantized_seconds" in lazy
            else ""
        )
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20480, help="lazy image side")
    parser.add_argument("--in-memory-side", type=int, default=4096, help="in-memory image side")
    parser.add_argument("--chunk", type=int, default=512, help="dask chunk side (lazy)")
    parser.add_argument(
        "--quantized", action="store_true", help="also write the quantized image to zarr (lazy)"
    )
    # internal: run one path in this (child) process, results to --workdir
    parser.add_argument("--in-memory", type=int, metavar="SIDE", help=argparse.SUPPRESS)
    parser.add_argument("--lazy", type=int, metavar="SIDE", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for side in (args.side, args.in_memory_side, args.in_memory, args.lazy):
        if side is not None and (side <= 0 or side % TILE):
            parser.error(f"sides must be positive multiples of {TILE}, got {side}")
    return args


def main() -> None:
    args = parse_args()
    if args.in_memory is not None or args.lazy is not None:  # a child process
        if args.in_memory is not None:
            name, result = "in-memory", run_in_memory(args.in_memory, args.workdir)
        else:
            name, result = "lazy", run_lazy(args.lazy, args.chunk, args.quantized, args.workdir)
        with open(os.path.join(args.workdir, f"{name}.json"), "w") as file:
            json.dump(result, file)
        return
    with tempfile.TemporaryDirectory(prefix="bench_lazy_") as workdir:
        in_memory = run_child("in-memory", ["--in-memory", str(args.in_memory_side)], workdir)
        lazy_flags = ["--lazy", str(args.side), "--chunk", str(args.chunk)]
        lazy = run_child("lazy", lazy_flags + ["--quantized"] * args.quantized, workdir)
        print_report(args, in_memory, lazy, labels_match(workdir, args.side))


if __name__ == "__main__":
    main()
