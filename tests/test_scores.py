"""core/scores.py: the sample scores of many labellings at once against scikit-learn's
silhouette_score, calinski_harabasz_score and davies_bouldin_score, one labelling at a time.

scikit-learn computes Euclidean distances as sqrt(|x|² + |y|² - 2 x.y): two copies of the
same row come out about 1e-8 x |x| apart instead of 0 (only the diagonal is set to 0).
Ours are exact, so on samples with repeated rows the reference is scikit-learn's
silhouette on the exact distances (``metric="precomputed"``) and its default differs only
by that rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from napari_pixel_clusters.core import scores as scores_module
from napari_pixel_clusters.core.scores import score_steps, scores


def sklearn_scores(X, labels, exact_distances=False):
    if not 2 <= len(np.unique(labels)) <= len(X) - 1:
        return dict.fromkeys(("silhouette", "calinski_harabasz", "davies_bouldin"), np.nan)
    silhouette = (
        silhouette_score(cdist(X, X), labels, metric="precomputed")
        if exact_distances
        else silhouette_score(X, labels)
    )
    return {
        "silhouette": silhouette,
        "calinski_harabasz": calinski_harabasz_score(X, labels),
        "davies_bouldin": davies_bouldin_score(X, labels),
    }


def assert_scores_equal(ours, reference, rel=1e-9, abs=0.0):
    assert ours.keys() == reference.keys()
    for name, value in reference.items():
        if np.isnan(value):
            assert np.isnan(ours[name]), name
        else:
            assert ours[name] == pytest.approx(value, rel=rel, abs=abs), name


@pytest.mark.parametrize("seed", range(6))
def test_distinct_rows_give_scikit_learns_scores(seed):
    rng = np.random.default_rng(seed)
    n, n_features = int(rng.integers(20, 400)), int(rng.integers(1, 6))
    X = rng.random((n, n_features)) * [1, 100, 1e-3][seed % 3]
    labellings = [rng.integers(0, k, n) for k in (2, 3, 5, 9, n // 2)]
    for ours, labels in zip(scores(X, labellings), labellings, strict=True):
        assert_scores_equal(ours, sklearn_scores(X, labels))


@pytest.mark.parametrize("seed", range(6))
def test_weighted_rows_score_as_the_sample_with_repeated_rows(seed):
    rng = np.random.default_rng(seed)
    n, n_features = int(rng.integers(20, 300)), int(rng.integers(1, 5))
    X = rng.random((n, n_features))
    weights = rng.integers(1, 6, n)
    labellings = [rng.integers(0, k, n) for k in (2, 3, 7, n // 2)]
    repeated = np.repeat(X, weights, axis=0)
    for ours, labels in zip(scores(X, labellings, weights), labellings, strict=True):
        labels = np.repeat(labels, weights)
        assert_scores_equal(ours, sklearn_scores(repeated, labels, exact_distances=True))
        # scikit-learn's own distances between copies: rounding of about 1e-8
        assert_scores_equal(ours, sklearn_scores(repeated, labels), rel=0, abs=1e-7)


def test_image_like_rows_with_copies_give_scikit_learns_default_scores():
    """Colors in steps of 1/255 (as features of 8-bit images), clustered by k-means:
    scikit-learn's rounding of the copies' distances stays below 1e-9 of the scores."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (300, 3)) / 255
    weights = rng.integers(1, 20, 300)
    labellings = [
        KMeans(k, n_init=1, random_state=0).fit(X, sample_weight=weights).labels_
        for k in range(2, 11)
    ]
    repeated = np.repeat(X, weights, axis=0)
    for ours, labels in zip(scores(X, labellings, weights), labellings, strict=True):
        assert_scores_equal(ours, sklearn_scores(repeated, np.repeat(labels, weights)))


def test_clusters_of_one_point_and_k_up_to_the_sample_size():
    """A point alone in its cluster has silhouette 0; k = n - 1 is scored, k = n and
    k = 1 are not (scikit-learn refuses them: NaN)."""
    rng = np.random.default_rng(0)
    X = rng.random((12, 2))
    labellings = [
        np.r_[np.zeros(11, int), 1],  # one point alone
        np.r_[np.arange(10), 0, 1],  # n - 2 clusters, most of one point
        np.r_[np.arange(11), 0],  # n - 1 clusters
        np.arange(12),  # n clusters: undefined
        np.zeros(12, int),  # one cluster: undefined
        np.r_[np.full(6, 7), np.full(6, -3)],  # any label values
    ]
    results = scores(X, labellings)
    for ours, labels in zip(results, labellings, strict=True):
        assert_scores_equal(ours, sklearn_scores(X, labels))
    assert np.isnan(results[3]["silhouette"]) and np.isnan(results[4]["davies_bouldin"])
    # with weights: a row standing for two points is not alone in its cluster
    weights = np.r_[np.ones(11, int), 2]
    repeated = np.repeat(X, weights, axis=0)
    for ours, labels in zip(scores(X, labellings, weights), labellings, strict=True):
        expected = sklearn_scores(repeated, np.repeat(labels, weights), exact_distances=True)
        assert_scores_equal(ours, expected)


def test_ties_and_identical_points():
    """Points on a grid (equal distances to two clusters), and every point of a cluster
    identical (a = 0)."""
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [4.0], [4.0], [8.0]])
    labellings = [
        np.array([0, 0, 1, 2, 2, 2, 2, 3]),  # point 2 equally far from clusters 0 and 2
        np.array([0, 0, 0, 1, 1, 1, 1, 1]),
        np.array([0, 1, 0, 1, 0, 1, 0, 1]),  # interleaved: negative silhouettes
        np.array([0, 0, 0, 0, 1, 1, 1, 2]),  # cluster 1 all at 4.0
    ]
    for ours, labels in zip(scores(X, labellings), labellings, strict=True):
        assert_scores_equal(ours, sklearn_scores(X, labels))


def test_blocks_give_the_same_scores_and_one_step_each(monkeypatch):
    rng = np.random.default_rng(5)
    X = rng.random((500, 3))
    weights = rng.integers(1, 4, 500)
    labellings = [rng.integers(0, k, 500) for k in (2, 4, 8)]
    whole = scores(X, labellings, weights)
    monkeypatch.setattr(scores_module, "BLOCK_BYTES", 8 * 500 * 64)  # 64 rows a block
    steps = score_steps(X, labellings, weights)
    fractions = []
    while True:
        try:
            stage, fraction = next(steps)
        except StopIteration as stop:
            blocked = stop.value
            break
        assert stage == "scores"
        fractions.append(fraction)
    # the share of the pairs scored (a block against the rows from it on)
    ends = [min(64 * (i + 1), 500) for i in range(8)]
    assert fractions == pytest.approx([1 - ((500 - end) / 500) ** 2 for end in ends])
    for a, b in zip(blocked, whole, strict=True):
        assert_scores_equal(a, b, rel=1e-12)


def test_bad_rows_or_weights():
    with pytest.raises(ValueError, match=r"^X: "):
        scores(np.zeros(5), [np.zeros(5, int)])
    with pytest.raises(ValueError, match=r"^X: "):
        scores(np.zeros((5, 2)), [np.zeros(5, int)], weights=np.ones(4))
