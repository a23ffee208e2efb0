"""k-means: the compiled loop on distinct colors against scikit-learn, and the lazy histogram.

    python benchmarks/bench_kmeans.py                  # everything (several minutes)
    python benchmarks/bench_kmeans.py --only 512       # the cases whose name contains 512
    python benchmarks/bench_kmeans.py --lazy-side 10240

Cases (each in its own forked process, as in bench_vs_reference.py: wall-clock seconds, the
fastest of five runs when one takes under 1 s, of three under 5 s, for both programs; peak =
resident memory above the process's size when the case started):

- k-means k=8 RGB at 512², 2048², 4096² (the astronaut enlarged bilinearly, so the large
  sizes have many distinct colors): ``npc.segment(image, "kmeans", 8, n_init=3,
  random_state=0)`` against ``KMeans(8, n_init=3, random_state=0).fit(pixels)``, and
  against what segment ran before the compiled loop (scikit-learn's ``KMeans`` on the
  same distinct colors weighted by their counts: "identical" says whether the labels
  are). "same init": both programs from the same starting centers (k-means++ centers of
  a pixel sample moved off the color lattice, so that no pixel is exactly as far from two
  centers), on every pixel for scikit-learn.
- a sweep over k=2..10 at 2048² (``npc.sweep``) against a scikit-learn loop (``KMeans``
  per k and the silhouette of a 5,000-pixel sample), n_init 1 and 3.
- lazy: the astronaut tiled into a dask array of 512² chunks (``--lazy-side``, default
  20,480²: 1.26 GB of pixels never in memory whole); histogram + fit time and the peak
  resident memory of a fresh interpreter (imports included), and the pixels per second.
- where segment's time goes at each size (distinct colors and features, fit; timed apart);
- first use: compiling the loops into an empty numba cache, then loading them from it
  (each in a fresh interpreter).

Labels are compared after numbering (ours are 1..k, scikit-learn's 0..k-1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
from bench_vs_reference import Run, measure, photo, pixels
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.metrics import silhouette_score

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.features import build_features
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.methods.kmeans import sklearn_equivalent_tol, warm_up

K = 8
#: Runs shorter than these many seconds are repeated in their process (up to these many
#: runs in all) and the fastest counts, for both programs alike: the machine's noise is
#: tens of percent from run to run, and the first run in a forked process also pays for
#: copying the parent's pages it touches (0.08 s of a 0.04 s k-means at 512²).
REPEATS = ((1.0, 5), (5.0, 3))


def runs_for(first_seconds: float) -> int:
    """How many runs make a case whose first run took ``first_seconds``."""
    return next((runs for below, runs in REPEATS if first_seconds < below), 1)


def timed(fn: Callable[[], dict]) -> Run:
    """:func:`measure` ``fn`` (its own process and peak memory); the fastest of five runs
    when one takes under a second, of three under five seconds (:data:`REPEATS`)."""

    def best() -> dict:
        times = []
        while True:
            started = time.perf_counter()
            output = fn()
            times.append(time.perf_counter() - started)
            if len(times) >= runs_for(times[0]):
                return {**output, "seconds": np.array(min(times))}

    run = measure(best)
    return Run(float(run.output["seconds"]), run.peak_bytes, run.output)


def kmeans_rows(size: int) -> list[tuple[str, str, float, float, str]]:
    """(case, reference, our seconds, reference seconds, agreement) for one size."""
    image = photo(size)

    def ours(**options):
        seg = npc.segment(image, "kmeans", K, random_state=0, **options)
        return {"labels": seg.labels.ravel() - 1, "inertia": seg.score["inertia"]}

    def on_pixels(**options):
        model = KMeans(K, random_state=0, **options).fit(pixels(image, "rgb"))
        return {"labels": model.labels_, "inertia": model.inertia_}

    def on_rows():  # what segment ran before: KMeans on the distinct colors
        feature_set = build_features(read_image(image))
        model = KMeans(
            K, n_init=3, random_state=0, tol=sklearn_equivalent_tol(1e-4, feature_set)
        ).fit(feature_set.X, sample_weight=feature_set.weights)
        return {"labels": feature_set.to_pixels(model.labels_), "inertia": model.inertia_}

    sample = pixels(image, "rgb")[:: max(1, size * size // 50_000)]
    init = kmeans_plusplus(sample, K, random_state=0)[0] + 1e-3  # off the color lattice

    fast = timed(lambda: ours(n_init=3))
    reference = timed(lambda: on_pixels(n_init=3))
    before = timed(on_rows)
    fast_init = timed(lambda: ours(init=init, n_init=1))
    reference_init = timed(lambda: on_pixels(init=init, n_init=1))
    name = f"k-means k=8 RGB {size}²"
    return [
        (
            f"{name} (k-means++, n_init=3)",
            "KMeans on the pixels",
            fast.seconds,
            reference.seconds,
            _inertia(fast.output, reference.output)
            + f"; peak {fast.peak_bytes / 1e6:.0f} MB vs {reference.peak_bytes / 1e6:.0f} MB",
        ),
        (
            f"{name} (k-means++, n_init=3)",
            "KMeans on the distinct colors (before)",
            fast.seconds,
            before.seconds,
            _identical(fast.output, before.output),
        ),
        (
            f"{name} (same init)",
            "KMeans on the pixels",
            fast_init.seconds,
            reference_init.seconds,
            _identical(fast_init.output, reference_init.output),
        ),
    ]


def _identical(a: dict, b: dict) -> str:
    equal = np.array_equal(a["labels"], b["labels"])
    ratio = float(a["inertia"] / b["inertia"] - 1)
    share = np.mean(a["labels"] == b["labels"])
    return f"labels identical: {equal} ({share:.4%}), inertia {ratio:+.1e}"


def _inertia(a: dict, b: dict) -> str:
    return f"inertia {float(a['inertia'] / b['inertia'] - 1):+.1e} (other k-means++ draws)"


def sweep_rows(size: int) -> list[tuple[str, str, float, float, str]]:
    image = photo(size)
    ks = range(2, 11)
    rows = []
    for n_init in (1, 3):

        def ours(n_init=n_init):
            result = npc.sweep(image, "kmeans", ks, n_init=n_init, random_state=0)
            return {"inertia": result.table["inertia"].to_numpy()}

        def reference(n_init=n_init):
            X = pixels(image, "rgb")
            sample = np.random.default_rng(0).choice(len(X), 5_000, replace=False)
            inertia = []
            for k in ks:
                model = KMeans(k, n_init=n_init, random_state=0).fit(X)
                silhouette_score(X[sample], model.labels_[sample])
                inertia.append(model.inertia_)
            return {"inertia": np.array(inertia)}

        fast, slow = timed(ours), timed(reference)
        ratio = fast.output["inertia"] / slow.output["inertia"] - 1
        rows.append(
            (
                f"sweep k=2..10 RGB {size}² (n_init={n_init})",
                "KMeans loop on the pixels",
                fast.seconds,
                slow.seconds,
                f"inertia per k within {np.abs(ratio).max():.1%}",
            )
        )
    return rows


def breakdown(size: int) -> str:
    """Where ``segment``'s time goes: the distinct colors and their features, the fit (three
    k-means++ starts); the rest is labels per pixel and the table. The fastest of three
    runs each, timed apart (so the parts need not add up to segment's fastest run)."""
    from napari_pixel_clusters.core.methods import _kmeans_lloyd

    image = photo(size)

    def parts() -> dict:
        timings: dict[str, list[float]] = {"features": [], "fit": [], "segment": []}
        for _ in range(3):
            started = time.perf_counter()
            feature_set = build_features(read_image(image))
            timings["features"].append(time.perf_counter() - started)
            tol = sklearn_equivalent_tol(1e-4, feature_set)
            started = time.perf_counter()
            fit = _kmeans_lloyd.fit(
                feature_set.X, K, feature_set.weights, n_init=3, random_state=0, tol=tol
            )
            timings["fit"].append(time.perf_counter() - started)
            started = time.perf_counter()
            npc.segment(image, "kmeans", K, n_init=3, random_state=0)
            timings["segment"].append(time.perf_counter() - started)
        best = {key: np.array(min(values)) for key, values in timings.items()}
        return best | {"rows": np.array(len(feature_set.X)), "n_iter": np.array(fit.n_iter)}

    out = measure(parts).output
    return (  # (each part's fastest run apart: they need not add up to segment's fastest)
        f"{size}²: segment {1e3 * float(out['segment']):.0f} ms; apart, distinct colors and "
        f"features {1e3 * float(out['features']):.0f} ms ({int(out['rows']):,} colors), fit "
        f"{1e3 * float(out['fit']):.0f} ms (3 starts; the best one {int(out['n_iter'])} "
        "iterations)"
    )


# --------------------------------------------------------------------------- lazy, compile
LAZY_CHILD = """
import json, sys, time
import dask.array as da
import numpy as np
from skimage import data
import napari_pixel_clusters as npc
from napari_pixel_clusters.core.methods.kmeans import warm_up

def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024 / 1e6

warm_up()
side = int(sys.argv[1])
tile = data.astronaut()
image = da.tile(da.from_array(tile, chunks=(512, 512, 3)), (side // 512, side // 512, 1))
started = time.perf_counter()
seg = npc.segment(image, "kmeans", 8, color_space="lab", random_state=0)
seconds = time.perf_counter() - started
first = seg.labels[:512, :512].compute()
alone = npc.segment(tile, "kmeans", 8, color_space="lab", random_state=0).labels
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "pixels": side * side,
                  "chunks": image.npartitions, "compression": seg.params["compression"],
                  "tile_equal": bool(np.array_equal(first, alone))}))
"""

COMPILE_CHILD = """
import time
import numba, sklearn.metrics, sklearn.utils.extmath  # imported before: not timed
from napari_pixel_clusters.core.methods.kmeans import warm_up
started = time.perf_counter()
warm_up()
print(time.perf_counter() - started)
"""


def lazy_row(side: int) -> tuple[str, str, float, float, str]:
    output = subprocess.run(
        [sys.executable, "-c", LAZY_CHILD, str(side)], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    rate = result["pixels"] / result["seconds"] / 1e6
    return (
        f"lazy k-means k=8 Lab {side}² ({result['chunks']} chunks of 512²)",
        "histogram + fit",
        result["seconds"],
        float("nan"),
        f"{rate:.0f} Mpx/s; peak {result['peak_mb']:.0f} MB (whole process); "
        f"first chunk equals the tile alone: {result['tile_equal']}",
    )


def compile_times() -> tuple[float, float]:
    """Seconds to compile the loops into an empty cache, and to load them from it."""
    with tempfile.TemporaryDirectory() as cache:
        environment = dict(os.environ, NUMBA_CACHE_DIR=cache)
        times = []
        for _ in range(2):
            output = subprocess.run(
                [sys.executable, "-c", COMPILE_CHILD],
                capture_output=True,
                text=True,
                check=True,
                env=environment,
            ).stdout
            times.append(float(output.split()[-1]))
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--lazy-side", type=int, default=20480, help="side of the lazy image")
    parser.add_argument("--sizes", default="512,2048,4096", help="k=8 image sides")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    warm_up()  # compiled (or loaded) once here: the forked cases inherit it
    print(f"napari-pixel-clusters {npc.__version__}, {os.cpu_count()} cores")
    print(f"loops loaded in {time.perf_counter() - started:.2f} s")
    groups = [
        (f"k-means k=8 RGB {s}²", lambda s=int(s): kmeans_rows(s)) for s in args.sizes.split(",")
    ]
    groups += [
        ("sweep k=2..10 RGB 2048²", lambda: sweep_rows(2048)),
        (f"lazy k-means {args.lazy_side}²", lambda: [lazy_row(args.lazy_side)]),
    ]
    print("| case | against | ours (s) | reference (s) | speed-up | agreement |")
    print("|---|---|---|---|---|---|")
    for group, make_rows in groups:
        if args.only.lower() not in group.lower():
            continue
        for name, against, ours, reference, agreement in make_rows():
            speed = f"{reference / ours:.1f}×" if np.isfinite(reference) else ""
            reference_text = f"{reference:.2f}" if np.isfinite(reference) else ""
            ours_text = f"{ours:.3f}" if ours < 0.1 else f"{ours:.2f}"
            print(
                f"| {name} | {against} | {ours_text} | {reference_text} | {speed} | {agreement} |",
                flush=True,
            )
    if not args.only or "breakdown" in args.only:
        print()
        for size in args.sizes.split(","):
            print(breakdown(int(size)), flush=True)
    if not args.only or "compile" in args.only:
        compiled, loaded = compile_times()
        print(f"\nfirst use: compile {compiled:.1f} s (empty cache), load {loaded:.2f} s")


if __name__ == "__main__":
    main()
