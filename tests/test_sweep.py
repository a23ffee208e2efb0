"""Choosing k: the sweep's scores against scikit-learn, and its suggestion on known data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

import napari_pixel_clusters as npc

PALETTE = np.array([[230, 40, 40], [40, 200, 60], [40, 60, 220], [240, 230, 50],
                    [200, 60, 220], [30, 210, 220]], float)


def blob_image(n_colours: int, seed: int = 0) -> np.ndarray:
    """An RGB image of n well-separated colour regions (vertical bands) plus noise."""
    rng = np.random.default_rng(seed)
    bands = np.repeat(np.arange(n_colours), 120 // n_colours + 1)[:120]
    image = PALETTE[:n_colours][np.tile(bands, (80, 1))]
    image += rng.normal(0, 12, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
@pytest.mark.parametrize("n_colours", [2, 3, 4, 5, 6])
def test_suggested_k_is_the_number_of_colour_blobs(method, n_colours):
    result = npc.sweep(blob_image(n_colours), method, range(2, 9), random_state=0,
                       sample_size=2000)
    assert result.suggested_k == n_colours, result.table
    assert f"k={n_colours}" in result.rule


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
            npc.segment(image, "kmeans", k, random_state=0).score["inertia"])
        assert row["silhouette"] == pytest.approx(silhouette_score(X[sample], labels[sample]))
        assert row["calinski_harabasz"] == pytest.approx(
            calinski_harabasz_score(X[sample], labels[sample]))
        assert row["davies_bouldin"] == pytest.approx(
            davies_bouldin_score(X[sample], labels[sample]))
    reference = KMeans(4, n_init=3, random_state=0).fit(X)
    assert result.table.set_index("k").loc[4, "inertia"] <= reference.inertia_ * 1.005


def test_gmm_sweep_reports_information_criteria():
    result = npc.sweep(blob_image(3), "gmm", [2, 3, 4], covariance_type="diag")
    assert {"bic", "aic", "log_likelihood", "silhouette", "seconds"} <= set(result.table)
    assert result.table["bic"].idxmin() == 1 and result.suggested_k == 3
    assert "lowest BIC" in result.rule


def test_sweep_steps_yield_one_step_per_k():
    steps = npc.sweep_steps(blob_image(2), "kmeans", [2, 3, 4])
    names = []
    while True:
        try:
            names.append(next(steps)[0])
        except StopIteration as stop:
            assert isinstance(stop.value, npc.Sweep)
            break
    assert names == ["k=2", "k=3", "k=4", "done"]


@pytest.mark.parametrize("kwargs, argument", [
    (dict(method="ward"), "method"),
    (dict(k_values=[3]), "k_values"),
    (dict(k_values=[0, 2]), "k_values"),
    (dict(k_values="many"), "k_values"),
    (dict(k_values=[2, 500]), "k_values"),
    (dict(sample_size=3), "sample_size"),
    (dict(init=np.zeros((3, 3))), "init"),
])
def test_bad_sweep_arguments(kwargs, argument):
    with pytest.raises(ValueError) as error:
        npc.sweep(blob_image(2)[:10, :10], **kwargs)
    assert str(error.value).startswith(f"{argument}:"), str(error.value)
