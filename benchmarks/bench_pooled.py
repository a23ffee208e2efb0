"""Time one model for many images, and posterior probabilities, against scikit-learn.

    python benchmarks/bench_pooled.py        # 8 photos of 512², k-means k=8 (a minute or two)
    python benchmarks/bench_pooled.py --images 4 --size 256

Pooled fit: ``npc.segment_many`` on 8 RGB photos (fit on their summed distinct-value
histograms, then every image labelled) against the obvious alternative, concatenating every
pixel and running scikit-learn's ``KMeans`` (same k, ``n_init``, ``tol``, ``max_iter``;
k-means++ starts, drawn differently), in the same run. "Agreement" is the inertia per pixel,
ours / scikit-learn's - 1 (lower is better).

Probabilities: ``seg.probabilities()`` of a GMM result (computed once per distinct color
and mapped back to the pixels) against scikit-learn's ``GaussianMixture.predict_proba`` on
every pixel's features with the same fitted parameters; the largest difference between
the two is printed.

Times are wall-clock seconds of one run (the best of ``--repeat`` for the short ones).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from skimage import data, transform
from sklearn.cluster import KMeans
from sklearn.datasets import load_sample_image
from sklearn.mixture import GaussianMixture

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.features import build_features

PHOTOS: list[Callable[[], np.ndarray]] = [
    data.astronaut,
    data.chelsea,
    data.coffee,
    data.immunohistochemistry,
    data.rocket,
    lambda: load_sample_image("china.jpg"),
    lambda: load_sample_image("flower.jpg"),
    data.cat,
]


def photos(n: int, size: int) -> list[np.ndarray]:
    """``n`` different RGB photos resized (bilinear) to size x size, uint8."""
    out = []
    for i in range(n):
        image = PHOTOS[i % len(PHOTOS)]()
        if i >= len(PHOTOS):  # more images than photos: mirrored copies
            image = image[:, ::-1]
        resized = transform.resize(image, (size, size), order=1, preserve_range=True)
        out.append(np.ascontiguousarray(resized.astype(np.uint8)))
    return out


def timed(function: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, result = np.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def pooled_fit(images: list[np.ndarray], k: int, n_init: int) -> None:
    options = {"color_space": "rgb", "n_init": n_init, "random_state": 0}
    npc.segment_many([images[0][:64, :64]], "kmeans", k, **options)  # compiled loops warm
    ours, pooled = timed(lambda: npc.segment_many(images, "kmeans", k, **options))
    started = time.perf_counter()
    pixels = np.concatenate([image.reshape(-1, 3) for image in images]) / 255.0
    reference = KMeans(k, n_init=n_init, random_state=0).fit(pixels)
    theirs = time.perf_counter() - started
    n_pixels = len(pixels)
    agreement = pooled.score["inertia"] / reference.inertia_ - 1
    print(
        f"| pooled k-means, {len(images)} x {images[0].shape[0]}² RGB ({n_pixels:,} pixels), "
        f"k={k}, n_init={n_init} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.1f}x "
        f"| inertia {agreement:+.1e} |"
    )
    print(f"  ({pooled.params['compression']})")


def probabilities(image: np.ndarray, k: int, repeat: int) -> None:
    seg = npc.segment(image, "gmm", k, color_space="lab", random_state=0)
    ours, posteriors = timed(seg.probabilities, repeat)
    ours_uncertainty, _ = timed(seg.uncertainty, repeat)
    fitted = seg.fitted
    mixture = GaussianMixture(k, covariance_type=fitted["covariance_type"])
    mixture.weights_ = np.asarray(fitted["weights"])
    mixture.means_ = np.asarray(fitted["means"])
    mixture.precisions_cholesky_ = np.asarray(fitted["precisions_cholesky"])

    def reference() -> np.ndarray:
        features = build_features(seg.image, "lab", compress=False).X
        return mixture.predict_proba(features)

    theirs, expected = timed(reference, repeat)
    label_of = seg.model.labelling.label_of_component
    difference = np.abs(posteriors.reshape(-1, k)[:, label_of - 1] - expected).max()
    side = image.shape[0]
    print(
        f"| GMM probabilities, {side}² RGB, k={k} (Lab) | {ours:.3f} | {theirs:.3f} | "
        f"{theirs / ours:.1f}x | max difference {difference:.1e} |"
    )
    print(f"| GMM uncertainty (margin), {side}² RGB, k={k} | {ours_uncertainty:.3f} | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--n-init", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    images = photos(args.images, args.size)
    print("| case | ours (s) | scikit-learn (s) | ratio | agreement |")
    print("|---|---|---|---|---|")
    pooled_fit(images, args.k, args.n_init)
    probabilities(images[0], 5, args.repeat)


if __name__ == "__main__":
    main()
