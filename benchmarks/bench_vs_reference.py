"""Time napari-pixel-clusters against scikit-learn / scikit-image on the same pixels.

    python benchmarks/bench_vs_reference.py            # the main cases (a few minutes)
    python benchmarks/bench_vs_reference.py --full     # every case (about half an hour)
    python benchmarks/bench_vs_reference.py --only kmeans

Each case runs in its own forked process so that its peak memory (resident set above the
process's size when the case started) is its own. Times are wall-clock seconds of one run;
the ratio is reference time / our time, measured in the same run on the same machine.
"Agreement" compares the results: identical labels (up to renaming for Ward), or the
difference in the quality score (k-means inertia: ours / reference - 1, lower is better;
GMM mean log-likelihood per pixel: ours - reference, higher is better).

"same init" k-means cases start both from the same k-means++ centers, which are pixel
colors: in RGB a few pixels then lie exactly as far from two centers, and which one wins
is decided by rounding, differently in the two programs (0.01 % of the pixels at 512²;
start from centers off the color lattice and the labels are identical).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from skimage import color, data, feature, transform
from sklearn.cluster import AgglomerativeClustering, KMeans, kmeans_plusplus
from sklearn.feature_extraction.image import grid_to_graph
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture

import napari_pixel_clusters as npc


# --------------------------------------------------------------------------- images
def photo(size: int) -> np.ndarray:
    """The astronaut photo enlarged (bilinear) to size x size, uint8 RGB."""
    image = data.astronaut()
    if size != 512:
        image = transform.resize(image, (size, size), order=1, preserve_range=True)
    return np.ascontiguousarray(image.astype(np.uint8))


def grey16(size: int) -> np.ndarray:
    """The camera image enlarged (bilinear) to size x size as 16-bit."""
    image = transform.resize(
        data.camera().astype(float) * 257, (size, size), order=1, preserve_range=True
    )
    return image.astype(np.uint16)


def coins_grey(size: int) -> np.ndarray:
    return transform.resize(data.coins(), (size, size), order=1, anti_aliasing=True)


def pixels(image: np.ndarray, space: str) -> np.ndarray:
    """What a notebook clusters: (N, 3) float pixels in [0, 1], or in L*a*b*."""
    unit = image.reshape(-1, 3) / 255.0
    return color.rgb2lab(unit) if space == "lab" else unit


# --------------------------------------------------------------------------- measuring
@dataclass
class Run:
    seconds: float
    peak_bytes: int
    output: dict


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _child(fn, path, queue):
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the peak resident size
    except OSError:
        pass
    warnings.simplefilter("ignore")  # convergence notes of deliberately short references
    baseline = _status("VmRSS")
    started = time.perf_counter()
    output = fn()
    seconds = time.perf_counter() - started
    peak = _status("VmHWM") - baseline
    np.savez(path, **output)
    queue.put((seconds, peak))


def measure(fn: Callable[[], dict]) -> Run:
    """Run ``fn`` in a forked child; return its time, peak memory and saved outputs."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "out.npz")
        process = context.Process(target=_child, args=(fn, path, queue))
        process.start()
        seconds, peak = queue.get()
        process.join()
        with np.load(path) as saved:
            output = {key: saved[key] for key in saved.files}
    return Run(seconds, peak, output)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1).shape[1]
    return pairs == len(np.unique(a)) == len(np.unique(b))


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    name: str
    n_pixels: int
    ours: Callable[[], dict]
    reference: Callable[[], dict]
    agreement: Callable[[dict, dict], str]


def kmeans_cases(size: int, space: str, same_init: bool) -> Case:
    image = photo(size)
    init = None
    if same_init:
        sample = pixels(image, space)[:: max(1, size * size // 50_000)]
        init, _ = kmeans_plusplus(sample, 8, random_state=0)
    options = dict(init=init, n_init=1) if same_init else dict(n_init=1)

    def ours():
        seg = npc.segment(image, "kmeans", 8, color_space=space, random_state=0, **options)
        return {"labels": seg.labels.ravel() - 1, "inertia": seg.score["inertia"]}

    def reference():
        model = KMeans(8, random_state=0, **options).fit(pixels(image, space))
        return {"labels": model.labels_, "inertia": model.inertia_}

    def agreement(a, b):
        equal = np.mean(a["labels"] == b["labels"])
        ratio = float(a["inertia"] / b["inertia"] - 1)
        return f"labels equal {equal:.2%}, inertia {ratio:+.1e}"

    label = "same init" if same_init else "k-means++"
    return Case(
        f"k-means k=8 {space.upper()} {size}² ({label})", size * size, ours, reference, agreement
    )


def kmeans_grey16_case(size: int) -> Case:
    image = grey16(size)
    init = np.linspace(2_000, 60_000, 8)[:, None]

    def ours():
        seg = npc.segment(image, "kmeans", 8, init=init)
        return {"labels": seg.labels.ravel() - 1, "inertia": seg.score["inertia"]}

    def reference():
        model = KMeans(8, init=init, n_init=1).fit(image.reshape(-1, 1).astype(float))
        return {"labels": model.labels_, "inertia": model.inertia_}

    return Case(
        f"k-means k=8 16-bit grey {size}² (same init)",
        size * size,
        ours,
        reference,
        lambda a, b: f"labels equal {np.mean(a['labels'] == b['labels']):.2%}",
    )


def gmm_case(size: int, k: int, covariance_type: str) -> Case:
    image = photo(size)

    def ours():
        seg = npc.segment(image, "gmm", k, covariance_type=covariance_type, random_state=0)
        return {"log_likelihood": seg.score["log_likelihood"]}

    def reference():
        X = pixels(image, "rgb")
        model = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
        return {"log_likelihood": model.score(X)}

    def agreement(a, b):
        return f"log-likelihood {float(a['log_likelihood'] - b['log_likelihood']):+.4f} nats/px"

    return Case(
        f"GMM k={k} {covariance_type} RGB {size}²", size * size, ours, reference, agreement
    )


def gmm_same_start_case(size: int, k: int) -> Case:
    image = photo(size)

    def starting_parameters():
        X_sample = pixels(image, "rgb")[:: max(1, size * size // 20_000)]
        start = GaussianMixture(k, max_iter=1, random_state=0).fit(X_sample)
        return dict(
            weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
        )

    # computed in a child process too: OpenMP used in this process would hang later forks
    inits = measure(starting_parameters).output

    def ours():
        seg = npc.segment(image, "gmm", k, **inits)
        return {"labels": seg.labels.ravel() - 1, "ll": seg.score["log_likelihood"]}

    def reference():
        X = pixels(image, "rgb")
        model = GaussianMixture(k, **inits)
        labels = model.fit_predict(X)
        return {"labels": labels, "ll": model.score(X)}

    def agreement(a, b):
        return (
            f"labels equal {np.mean(a['labels'] == b['labels']):.2%}, "
            f"log-likelihood {float(a['ll'] - b['ll']):+.1e}"
        )

    return Case(
        f"GMM k={k} full RGB {size}² (same start)", size * size, ours, reference, agreement
    )


def ward_case(size: int) -> Case:
    image = coins_grey(size)

    def ours():
        return {"labels": npc.segment(image, "ward", 27, downscale=1.0).labels}

    def reference():
        model = AgglomerativeClustering(
            27, linkage="ward", connectivity=grid_to_graph(*image.shape)
        )
        return {"labels": model.fit(image.reshape(-1, 1)).labels_.reshape(image.shape)}

    return Case(
        f"Ward k=27 grid {size}²",
        size * size,
        ours,
        reference,
        lambda a, b: f"same partition: {same_partition(a['labels'], b['labels'])}",
    )


def canny_case(size: int) -> Case:
    image = coins_grey(size)

    def ours():
        return {"labels": npc.segment(image, "canny", sigma=2.0).labels}

    def reference():
        # our automatic thresholds: 10 % and 20 % of the image's largest value (scikit-image's
        # defaults are 10 % and 20 % of the dtype's range, 1.0 for floats): given explicitly
        top = float(np.abs(image).max())
        edges = feature.canny(image, sigma=2.0, low_threshold=0.1 * top, high_threshold=0.2 * top)
        return {"labels": edges.astype(np.int32)}

    return Case(
        f"Canny sigma=2 {size}²",
        size * size,
        ours,
        reference,
        lambda a, b: f"identical: {np.array_equal(a['labels'], b['labels'])}",
    )


def sweep_case(size: int) -> Case:
    """Choosing k: 9 k-means fits and their silhouettes, as a notebook loops over k."""
    image = photo(size)
    ks = range(2, 11)

    def ours():
        result = npc.sweep(image, "kmeans", ks, n_init=1, random_state=0)
        return {"inertia": result.table["inertia"].to_numpy()}

    def reference():
        X = pixels(image, "rgb")
        sample = np.random.default_rng(0).choice(len(X), 5_000, replace=False)
        inertia = []
        for k in ks:
            model = KMeans(k, n_init=1, random_state=0).fit(X)
            silhouette_score(X[sample], model.labels_[sample])
            inertia.append(model.inertia_)
        return {"inertia": np.array(inertia)}

    def agreement(a, b):
        ratio = a["inertia"] / b["inertia"] - 1
        return f"inertia per k within {np.abs(ratio).max():.1%}"

    return Case(f"sweep k=2..10 k-means RGB {size}²", size * size, ours, reference, agreement)


def all_cases(full: bool) -> list[Callable[[], Case]]:
    sizes = (512, 2048, 4096)
    cases = [
        lambda s=s, sp=sp, same=same: kmeans_cases(s, sp, same)
        for s in sizes
        for sp in ("rgb", "lab")
        for same in (False, True)
    ]
    cases.append(lambda: kmeans_grey16_case(2048))
    gmm_sizes = (512, 2048) if full else (512,)
    cases += [
        lambda s=s, k=k, c=c: gmm_case(s, k, c)
        for s in gmm_sizes
        for k in (4, 8)
        for c in ("full", "tied", "diag", "spherical")
    ]
    if not full:
        cases.append(lambda: gmm_case(2048, 8, "full"))
    cases.append(lambda: gmm_same_start_case(512, 8))
    if full:
        cases.append(lambda: gmm_same_start_case(2048, 8))
    cases += [lambda s=s: ward_case(s) for s in ((256, 512, 1024) if full else (256,))]
    cases.append(lambda: canny_case(2048))
    cases.append(lambda: sweep_case(2048))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="every case, including the slow references (GMM and Ward at large sizes)",
    )
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()

    print(f"napari-pixel-clusters {npc.__version__}, {os.cpu_count()} cores")
    print(
        "| case | pixels | ours (s) | reference (s) | speed-up | ours peak (MB) "
        "| reference peak (MB) | agreement |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for make_case in all_cases(args.full):
        case = make_case()
        if args.only.lower() not in case.name.lower():
            continue
        ours, reference = measure(case.ours), measure(case.reference)
        print(
            f"| {case.name} | {case.n_pixels / 1e6:.2f} M | {ours.seconds:.2f} "
            f"| {reference.seconds:.2f} | {reference.seconds / ours.seconds:.1f}× "
            f"| {ours.peak_bytes / 2**20:.0f} | {reference.peak_bytes / 2**20:.0f} "
            f"| {case.agreement(ours.output, reference.output)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
