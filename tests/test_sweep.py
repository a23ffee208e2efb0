"""Choosing k: the sweep's scores against scikit-learn, and its suggestion on known data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage import data
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

import napari_pixel_clusters as npc
from conftest import blob_image
from napari_pixel_clusters.core.features import build_features, stain_options
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.methods import get_method
from napari_pixel_clusters.core.registry import check_options, drain
from napari_pixel_clusters.core.sweep import _sample_rows, elbow_k

ASTRONAUT = np.ascontiguousarray(data.astronaut()[::4, ::4])
SCORES = ["silhouette", "calinski_harabasz", "davies_bouldin"]


def sklearn_sweep_table(image, method, ks, sample_size, **options):
    """The sweep's table as it was computed before core/scores.py: per k, the fit on the
    features and scikit-learn's three functions on the sample's rows and labels."""
    fit_method = get_method(method)
    feature_options, params = check_options(fit_method, {"random_state": 0, **options})
    feature_set = build_features(
        read_image(image),
        color_space=feature_options["color_space"],
        spatial_weight=feature_options["spatial_weight"],
        standardize=feature_options["standardize"],
        **stain_options(feature_options),
    )
    sample = _sample_rows(feature_set, sample_size, 0)
    rows = []
    for k in ks:
        fit = drain(fit_method.fit_rows(feature_set, k, params, 0))
        X, labels = feature_set.X[sample], fit.labels[sample]
        fit_scores = ("inertia", "bic", "aic", "log_likelihood")
        row = {"k": k, **{n: v for n, v in fit.score.items() if n in fit_scores}}
        if 2 <= len(np.unique(labels)) < len(labels):
            row |= {
                "silhouette": silhouette_score(X, labels),
                "calinski_harabasz": calinski_harabasz_score(X, labels),
                "davies_bouldin": davies_bouldin_score(X, labels),
            }
        else:
            row |= dict.fromkeys(SCORES, np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def blocky_grey(levels, repeats, outlier=None):
    """A grey image of equally spaced levels (ties between clusters), each ``repeats``
    pixels, plus an optional single pixel of value ``outlier``."""
    values = np.repeat(np.asarray(levels, np.uint8), repeats)
    if outlier is not None:
        values = np.r_[values, np.uint8(outlier)]
    return values.reshape(1, -1)


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
@pytest.mark.parametrize("n_colors", [2, 3, 4, 5, 6])
def test_suggested_k_is_the_number_of_color_blobs(method, n_colors):
    result = npc.sweep(blob_image(n_colors), method, range(2, 9), random_state=0, sample_size=2000)
    assert result.suggested_k == n_colors, result.table
    assert f"k={n_colors}" in result.rule


def test_sweep_scores_match_sklearn_on_the_same_sample():
    image = blob_image(4)
    result = npc.sweep(image, "kmeans", [3, 4, 5], random_state=0, sample_size=1500)
    X = image.reshape(-1, 3) / 255.0
    rng = np.random.default_rng(0)
    sample = rng.choice(len(X), size=1500, replace=False)
    for _, row in result.table.iterrows():
        k = int(row["k"])
        labels = npc.segment(image, "kmeans", k, random_state=0).labels.ravel()
        assert row["inertia"] == pytest.approx(
            npc.segment(image, "kmeans", k, random_state=0).score["inertia"]
        )
        assert row["silhouette"] == pytest.approx(silhouette_score(X[sample], labels[sample]))
        assert row["calinski_harabasz"] == pytest.approx(
            calinski_harabasz_score(X[sample], labels[sample])
        )
        assert row["davies_bouldin"] == pytest.approx(
            davies_bouldin_score(X[sample], labels[sample])
        )
    reference = KMeans(4, n_init=3, random_state=0).fit(X)
    assert result.table.set_index("k").loc[4, "inertia"] <= reference.inertia_ * 1.005


@pytest.mark.parametrize(
    "case, image, method, ks, sample_size",
    [
        ("RGB photo", ASTRONAUT, "kmeans", range(2, 11), 5000),
        ("RGB photo, mixture", ASTRONAUT[::2, ::2], "gmm", range(2, 6), 1000),
        (
            "grey",
            np.ascontiguousarray(data.camera()[::8, ::8]),
            "kmeans",
            range(2, 9),
            1000,
        ),
        # every pixel sampled: the outlier is a cluster of one sample point from k=4
        (
            "one-point cluster",
            blocky_grey([0, 40, 80], 20, outlier=255),
            "kmeans",
            range(2, 5),
            61,
        ),
        # equally spaced levels, in equal numbers: ties between clusters
        ("ties", blocky_grey([0, 50, 100, 150, 200, 250], 7), "kmeans", range(2, 7), 42),
        # k up to the sample size: 10 sample points of 12 pixels, all different
        ("k near the sample size", blocky_grey(range(0, 240, 20), 1), "kmeans", range(2, 13), 10),
    ],
)
def test_sweep_table_is_scikit_learns_on_the_same_sample(case, image, method, ks, sample_size):
    """The table (scores, fits, column order, suggestion) is what scikit-learn's score
    functions give per k on the same sample, as before the scores were computed for
    every k at once."""
    result = npc.sweep(image, method, ks, random_state=0, sample_size=sample_size)
    expected = sklearn_sweep_table(image, method, ks, sample_size)
    table = result.table
    assert list(table) == [*expected, "seconds"]
    assert list(table["k"]) == list(ks)
    for name in set(expected) - set(SCORES):  # the fits themselves
        np.testing.assert_array_equal(table[name], expected[name], err_msg=name)
    for name in SCORES:
        np.testing.assert_allclose(table[name], expected[name], rtol=1e-9, err_msg=name)
    if case == "one-point cluster":  # a cluster of one sample point (silhouette 0 there)
        assert not table["silhouette"].isna().any()
    if case == "k near the sample size":  # as many clusters as sample points: undefined
        assert table["silhouette"].isna().any() and not table["silhouette"].isna().all()


def test_gmm_sweep_reports_information_criteria():
    result = npc.sweep(blob_image(3), "gmm", [2, 3, 4], covariance_type="diag")
    assert {"bic", "aic", "log_likelihood", "silhouette", "seconds"} <= set(result.table)
    assert result.table["bic"].idxmin() == 1 and result.suggested_k == 3
    assert "lowest BIC" in result.rule


def test_sweep_steps_yield_one_step_per_k_then_the_scores():
    steps = npc.sweep_steps(blob_image(2), "kmeans", [2, 3, 4])
    names, fractions = [], []
    while True:
        try:
            name, fraction = next(steps)
        except StopIteration as stop:
            assert isinstance(stop.value, npc.Sweep)
            break
        names.append(name)
        fractions.append(fraction)
    n_scores = names.count("scores")
    # the sample's distances in blocks of BLOCK_BYTES: several blocks, one step each
    assert n_scores >= 2
    assert names == ["k=2", "k=3", "k=4"] + ["scores"] * n_scores + ["done"]
    assert fractions[:3] == [0, 0.25, 0.5] and fractions[-2:] == [1, 1]
    assert np.all(np.diff(fractions[:-1]) > 0)


def test_a_sweep_closed_while_scoring_stops_there():
    """Cancel between the silhouette's blocks: the generator closes without finishing."""
    steps = npc.sweep_steps(blob_image(2), "kmeans", [2, 3])
    while next(steps)[0] != "scores":
        pass
    steps.close()
    with pytest.raises(StopIteration):
        next(steps)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(method="ward"), "method"),
        (dict(k_values=[3]), "k_values"),
        (dict(k_values=[0, 2]), "k_values"),
        (dict(k_values="many"), "k_values"),
        (dict(k_values=[2, 500]), "k_values"),
        (dict(sample_size=3), "sample_size"),
        (dict(init=np.zeros((3, 3))), "init"),
    ],
)
def test_bad_sweep_arguments(kwargs, argument):
    with pytest.raises(ValueError) as error:
        npc.sweep(blob_image(2)[:10, :10], **kwargs)
    assert str(error.value).startswith(f"{argument}:"), str(error.value)


def knee_curve(knee: int, ks) -> np.ndarray:
    """Inertia-like curve: falls steeply (convex) down to ``knee``, then slowly and linearly."""
    ks = np.asarray(ks, float)
    steep = 10 + 90 * (np.clip(knee - ks, 0, None) / max(knee - 1, 1)) ** 1.5
    return np.where(ks <= knee, steep, 10 - 0.5 * (ks - knee))


@pytest.mark.parametrize("knee", range(2, 10))
def test_elbow_of_synthetic_curves_wherever_the_knee_lies(knee):
    ks = np.arange(1, 11)
    curve = knee_curve(knee, ks)
    assert elbow_k(ks, curve) == knee
    assert elbow_k(ks, curve * 1e6) == knee  # scale does not matter
    noisy = curve * np.random.default_rng(knee).uniform(0.98, 1.02, len(ks))
    assert elbow_k(ks, noisy) == knee
    if knee > 2:  # the same curve seen from k=2
        assert elbow_k(ks[1:], curve[1:]) == knee


def test_elbow_of_curves_with_exact_fits_bumps_or_no_elbow():
    ks = [1, 2, 3, 4, 5, 6]
    assert elbow_k(ks, [90, 50, 20, 0, 0, 0]) == 4  # exact fit from k=4 (inertia 0)
    assert elbow_k(ks, [100, 60, 30, 5, 6, 4]) == 4  # a worse fit at k=5 is ironed out
    assert elbow_k(ks, [60, 50, 40, 30, 20, 10]) is None  # straight (in absolute terms):
    assert elbow_k(ks, np.exp(-np.arange(6.0))) is None  # straight in proportion
    assert elbow_k(ks, [100, 99, 97, 90, 70, 10]) is None  # still bending down
    assert elbow_k(ks, [5, 5, 5, 5, 5, 5]) is None
    for args, argument in [
        (([3, 2], [1, 2]), "ks"),
        (([1, 2, 3], [1, 2]), "values"),
        (([1, 2, 3], [3, np.nan, 1]), "values"),
    ]:
        with pytest.raises(ValueError, match=f"^{argument}: "):
            elbow_k(*args)


def test_four_blobs_have_elbow_four_and_suggested_k_four():
    result = npc.sweep(blob_image(4), "kmeans", range(2, 11), random_state=0, sample_size=1000)
    assert result.elbow_k == 4 and result.suggested_k == 4 and not result.at_range_edge
    assert result.rule.startswith("k=4 is the elbow"), result.rule


def test_suggested_k_is_the_marked_elbow_when_the_silhouette_prefers_another():
    """Regression: astronaut, k-means 2-10, suggested k=2 (best silhouette) while the same
    sentence named the elbow at k=4."""
    result = npc.sweep(
        data.astronaut()[::4, ::4], "kmeans", range(2, 11), random_state=0, sample_size=1000
    )
    best_silhouette = int(result.table.loc[result.table["silhouette"].idxmax(), "k"])
    assert best_silhouette != result.elbow_k  # the case where the two disagree
    assert result.suggested_k == result.elbow_k is not None
    assert result.rule.startswith(f"k={result.elbow_k} is the elbow")
    assert f"highest at k={best_silhouette}" in result.rule
    assert "wider range" not in result.rule


@pytest.mark.parametrize(
    "method, n_colors, k_values, edge",
    [
        ("gmm", 6, range(2, 5), "k=4 is the largest k tried; try a wider range."),
        ("kmeans", 6, range(2, 5), "k=4 is the largest k tried; try a wider range."),
        ("gmm", 2, range(3, 6), "k=3 is the smallest k tried; try a wider range."),
    ],
)
def test_a_suggestion_at_the_edge_of_the_range_says_to_widen_it(method, n_colors, k_values, edge):
    result = npc.sweep(blob_image(n_colors), method, k_values, random_state=0, sample_size=1000)
    assert result.rule.endswith(edge), result.rule
    assert result.at_range_edge
    if method == "kmeans":  # six colors seen up to k=4: no elbow yet, so no elbow marked
        assert result.elbow_k is None and "no elbow between k=2 and k=4" in result.rule
