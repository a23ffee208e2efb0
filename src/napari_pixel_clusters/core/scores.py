"""Scores of one sample of feature rows under many labellings at once.

The silhouette, Calinski-Harabasz and Davies-Bouldin scores of a sweep, equal to
scikit-learn's ``silhouette_score``, ``calinski_harabasz_score`` and
``davies_bouldin_score`` on the same sample and labels, but computed for every k
together:

- The silhouette needs the distance between every two sample points. They are computed
  once for all labellings, a block of rows at a time against the rows from the block on
  (each pair once; at most ``BLOCK_BYTES`` of distances in memory): the block times the
  one-hot matrices of every labelling side by side gives, in one matrix product, each
  point's sum of distances to every cluster of every labelling (its transpose the same
  for the later rows).
- Calinski-Harabasz and Davies-Bouldin need only the cluster means (O(n k) each):
  scikit-learn's own functions, on the sample with its repeated rows.
- A sample drawn from the distinct rows of an image repeats rows: each distinct row is
  one point weighted by how many sample points it stands for (its label is the same
  for all of them), which changes no score.

Memory: one block of distances (``BLOCK_BYTES``, 16 MB), plus the weighted one-hot
matrices and each row's sums of distances to each cluster (twice distinct rows x the sum
of the numbers of clusters, float64: 4 MB for 5,000 rows and k=2..10; 100,000 rows and
k=2..20 would take 330 MB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .registry import Steps, drain

#: Bytes of pairwise distances held at once (a block of sample rows against all rows).
BLOCK_BYTES = 16 * 2**20
SCORE_NAMES = ("silhouette", "calinski_harabasz", "davies_bouldin")


@dataclass(frozen=True)
class _Labelling:
    """One labelling of the weighted rows: cluster codes 0..n_clusters-1 and sizes."""

    codes: np.ndarray  # (m,) intp
    sizes: np.ndarray  # (n_clusters,) float64: sample points per cluster

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)


def scores(
    X: np.ndarray, labellings: Sequence[np.ndarray], weights: np.ndarray | None = None
) -> list[dict[str, float]]:
    """:func:`score_steps` run to its end."""
    return drain(score_steps(X, labellings, weights))


def score_steps(
    X: np.ndarray, labellings: Sequence[np.ndarray], weights: np.ndarray | None = None
) -> Steps[list[dict[str, float]]]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of ``X`` under each labelling.

    Parameters
    ----------
    X : ndarray, (m, F)
        Sample rows (float64).
    labellings : sequence of (m,) integer arrays
        One label per row for each labelling.
    weights : (m,) array or None
        How many sample points each row stands for (whole numbers, at least 1): the
        scores are those of the sample with row ``i`` repeated ``weights[i]`` times.

    Yields ``("scores", fraction)`` after each block of the silhouette's distances.

    Returns
    -------
    list of dict
        One per labelling: ``silhouette``, ``calinski_harabasz`` and ``davies_bouldin``,
        as scikit-learn's functions give them on the repeated sample; NaN when they are
        undefined (fewer than 2 clusters, or as many clusters as sample points).
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    if X.ndim != 2 or w.shape != (len(X),):
        raise ValueError(
            f"X: expected rows (m, F) and one weight per row, got {X.shape} and {w.shape}."
        )
    n = float(w.sum())
    coded = [_code(np.asarray(labels), w) for labels in labellings]
    defined = [i for i, c in enumerate(coded) if 2 <= c.n_clusters <= n - 1]
    results = [dict.fromkeys(SCORE_NAMES, np.nan) for _ in coded]
    silhouettes = yield from _silhouette_steps(X, w, [coded[i] for i in defined])
    import sklearn  # here: importing the package (and its command line) stays light
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    repeated = np.repeat(X, w.astype(np.intp), axis=0)
    with sklearn.config_context(skip_parameter_validation=True):
        for i, silhouette in zip(defined, silhouettes, strict=True):
            labels = np.repeat(coded[i].codes, w.astype(np.intp))
            results[i] = {
                "silhouette": silhouette,
                "calinski_harabasz": float(calinski_harabasz_score(repeated, labels)),
                "davies_bouldin": float(davies_bouldin_score(repeated, labels)),
            }
    return results


def _code(labels: np.ndarray, w: np.ndarray) -> _Labelling:
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    return _Labelling(codes, np.bincount(codes, weights=w))


def _silhouette_steps(
    X: np.ndarray, w: np.ndarray, labellings: list[_Labelling]
) -> Steps[list[float]]:
    """Mean silhouette of each labelling (as ``sklearn.metrics.silhouette_samples``:
    a = mean distance to the rest of the own cluster, b = the smallest mean distance to
    another cluster, s = (b - a) / max(a, b), 0 for a point alone in its cluster)."""
    from scipy.spatial.distance import cdist  # here: importing the package stays light

    m = len(X)
    offsets = np.cumsum([0] + [c.n_clusters for c in labellings])
    one_hot = np.zeros((m, offsets[-1]))  # weighted: column = cluster of a labelling
    for c, offset in zip(labellings, offsets, strict=False):
        one_hot[np.arange(m), offset + c.codes] = w
    to_clusters = np.zeros_like(one_hot)  # each row's sum of distances to each cluster
    block = max(1, BLOCK_BYTES // (8 * max(m, 1)))
    for start in range(0, m, block):  # distances are symmetric: rows >= start only
        end = min(start + block, m)
        distances = cdist(X[start:end], X[start:])
        to_clusters[start:end] += distances @ one_hot[start:]
        to_clusters[end:] += distances[:, end - start :].T @ one_hot[start:end]
        yield "scores", 1 - ((m - end) / m) ** 2  # the share of the pairs done
    totals = [
        w @ _silhouette_samples(to_clusters[:, offset : offset + c.n_clusters], c.codes, c.sizes)
        for c, offset in zip(labellings, offsets, strict=False)
    ]
    return [float(total / w.sum()) for total in totals]


def _silhouette_samples(sums: np.ndarray, own: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Silhouette of rows given their sums of distances to each cluster (scikit-learn's
    arithmetic: its ``_silhouette_reduce`` and ``silhouette_samples``)."""
    index = (np.arange(len(own)), own)
    intra = sums[index]
    means = sums / sizes
    means[index] = np.inf
    inter = means.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        intra = intra / (sizes - 1)[own]
        samples = (inter - intra) / np.maximum(intra, inter)
    return np.nan_to_num(samples)  # alone in its cluster: 0/0, and s = 0
