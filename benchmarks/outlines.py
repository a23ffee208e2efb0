"""How long outlines take: tracing (``Segmentation.contours``) and napari's Shapes layer.

    python benchmarks/outlines.py [--sizes 512 2048] [--repeat 3]

For the astronaut (resized to each size) clustered by k-means (k=8), at the widget's
default minimum area (0.05 % of the image), times

- ``notebook``: ``skimage.measure.find_contours`` of each cluster's mask on the whole
  image, as a user would write it in a notebook (every outline, holes too, no filtering);
- ``former``: the tracer before issue 12 (``regionprops``, each region filled and traced in
  its box, ``approximate_polygon`` per polygon);
- ``contours()``: ours (regions labelled once, only those of ``min_area`` traced, one
  vectorised Douglas-Peucker pass for all polygons; within 0.5 px of ``former``'s);
- ``Shapes``: creating napari's Shapes layer from our polygons, with the pure-Python
  triangulation and with the fastest installed backend (bermuda when installed).

Best of ``--repeat`` runs; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage
from skimage import data, measure, transform

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.contours import region_contours


def notebook_contours(labels: np.ndarray) -> list:
    outlines = []
    for label in range(1, int(labels.max()) + 1):
        outlines += measure.find_contours(np.pad(labels == label, 1).astype(np.uint8), 0.5)
    return outlines


def former_contours(labels: np.ndarray, min_area: int) -> list:
    outlines = []
    for region in measure.regionprops(measure.label(labels, background=0, connectivity=1)):
        if region.area < min_area:
            continue
        filled = ndimage.binary_fill_holes(region.image)
        outline = measure.find_contours(np.pad(filled, 1).astype(np.uint8), 0.5)[0]
        outline = outline + (region.bbox[0] - 1, region.bbox[1] - 1)
        outlines.append(measure.approximate_polygon(outline, tolerance=0.5))
    return outlines


def best_of(repeat: int, function, *args):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def shapes_seconds(polygons: list, backend: str, repeat: int) -> float:
    from napari.layers import Shapes
    from napari.utils.triangulation_backend import TriangulationBackend, set_backend

    set_backend(TriangulationBackend(backend))
    seconds, _ = best_of(
        repeat,
        lambda: Shapes(polygons, shape_type="polygon", face_color="transparent", edge_width=2),
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=8)
    args = parser.parse_args()
    try:
        import bermuda  # noqa: F401

        fastest = "bermuda"
    except ImportError:
        fastest = "none installed"

    print(
        "| image | regions | polygons (min area) | vertices | notebook | former | "
        "contours() | Shapes, pure Python | Shapes, fastest (" + fastest + ") |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        photo = data.astronaut()
        if size != photo.shape[0]:
            photo = transform.resize(photo, (size, size), order=1, preserve_range=True).astype(
                np.uint8
            )
        seg = npc.segment(photo, "kmeans", args.clusters, random_state=0)
        min_area = max(1, int(0.0005 * size * size))
        regions = int(measure.label(seg.labels, background=0, connectivity=1).max())
        notebook, _ = best_of(1 if size > 1024 else args.repeat, notebook_contours, seg.labels)
        former, _ = best_of(
            1 if size > 1024 else args.repeat, former_contours, seg.labels, min_area
        )
        ours, contours = best_of(args.repeat, region_contours, seg.labels, min_area)
        polygons = [c.vertices for c in contours]
        pure = shapes_seconds(polygons, "pure_python", 1)
        fast = shapes_seconds(polygons, "fastest_available", args.repeat)
        print(
            f"| astronaut {size}², k-means k={args.clusters} | {regions} | "
            f"{len(contours)} ({min_area} px) | {sum(map(len, polygons))} | "
            f"{notebook:.2f} s | {former:.2f} s | {ours:.3f} s | {pure:.2f} s | "
            f"{fast:.3f} s |"
        )


if __name__ == "__main__":
    main()
