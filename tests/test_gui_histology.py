"""The brightfield histology flow, the way a person does it in napari: open the
immunohistochemistry sample, cluster it with k-means in the hematoxylin-DAB stain space
(k=3, standardized), name the DAB-rich cluster in the Cluster table, make objects of it,
and look at the window. Each step is checked against scikit-image on the same pixels."""

from __future__ import annotations

import numpy as np
from skimage import color, measure

from conftest import PLUGIN

STAINS = ["hematoxylin", "DAB", "residual"]


def mean_stains(image: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """The mean hematoxylin, DAB and residual concentration of each cluster (skimage)."""
    stains = color.separate_stains(image, color.hdx_from_rgb)
    return {int(c): stains[labels == c].mean(axis=0) for c in np.unique(labels[labels > 0])}


def test_ihc_nuclei_and_dab_objects_in_a_few_clicks(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)  # a shown window: its screenshot is checked
    viewer.window._qt_window.resize(1440, 900)
    viewer.open_sample(PLUGIN, "immunohistochemistry")
    image = viewer.layers["immunohistochemistry"].data
    assert image.shape == (512, 512, 3)

    # Pixel clusters: k-means, k=3, color space hdab, standardize on, Run
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    pixel_clusters._method.value = "kmeans"
    pixel_clusters._n_clusters.value = 3
    pixel_clusters._feature_widgets["color_space"].value = "hdab"
    pixel_clusters._feature_widgets["standardize"].value = True
    pixel_clusters._run_button.native.click()
    qtbot.waitUntil(lambda: pixel_clusters._worker is None, timeout=120_000)
    clusters = viewer.layers["immunohistochemistry k-means#1 clusters"]
    params = clusters.metadata["napari_pixel_clusters"]["params"]
    assert params["color_space"] == "hdab" and params["standardize"]
    assert params["features"] == STAINS  # clustered on the stains, named so
    features = clusters.features
    assert list(features["index"]) == [1, 2, 3] and list(features["name"]) == [
        "cluster 1",
        "cluster 2",
        "cluster 3",
    ]
    assert list(features["pixels"]) == [int((clusters.data == c).sum()) for c in (1, 2, 3)]

    # the DAB-rich cluster (highest mean DAB), the nuclei (highest hematoxylin) and the
    # background (least stain) are three different clusters
    stains = mean_stains(image, clusters.data)
    dab = max(stains, key=lambda c: stains[c][1])
    nuclei = max((c for c in stains if c != dab), key=lambda c: stains[c][0])
    background = ({1, 2, 3} - {dab, nuclei}).pop()
    assert stains[background][:2].sum() < min(stains[dab][:2].sum(), stains[nuclei][:2].sum())

    # Cluster table: name the clusters, select the DAB row, Make objects
    _, table = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster table")
    for label, name in ((dab, "DAB"), (nuclei, "nuclei"), (background, "background")):
        table.rename(label, name)
    row = list(clusters.features["index"]).index(dab)
    table.table.selectRow(row)
    assert table.selected_labels() == [dab]
    assert "the selected cluster (DAB)" in table._make_objects.tooltip
    qtbot.waitUntil(lambda: table.object_counts() is not None, timeout=30_000)
    table._make_objects.native.click()
    qtbot.waitUntil(lambda: table._objects_worker is None, timeout=60_000)
    objects = viewer.layers["immunohistochemistry k-means#1 clusters objects"]

    expected = measure.label(clusters.data == dab, connectivity=2)
    np.testing.assert_array_equal(objects.data, expected)
    props = measure.regionprops_table(
        expected,
        intensity_image=image,
        properties=["label", "area", "centroid", "intensity_mean", "perimeter"],
    )
    found = objects.features
    assert len(found) == expected.max() == table.object_counts()[dab] > 10
    assert set(found["cluster_name"]) == {"DAB"} and set(found["cluster"]) == {dab}
    np.testing.assert_array_equal(found["area"], props["area"])
    np.testing.assert_allclose(found["centroid_x"], props["centroid-1"])
    np.testing.assert_allclose(found["mean_R"], props["intensity_mean-0"])
    np.testing.assert_allclose(found["perimeter"], props["perimeter"])
    # DAB objects are brown: more red than blue in the mean, on average over their pixels
    weights = found["pixels"] / found["pixels"].sum()
    assert (weights * (found["mean_R"] - found["mean_B"])).sum() > 20
    assert table._status.value == f"{len(found)} objects from cluster DAB"

    # the whole window as a person sees it: not blank, the objects' colors on the canvas
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot.shape[0] >= 600 and shot.shape[1] >= 1000
    assert shot[..., :3].std() > 20 and len(np.unique(shot[..., :3].reshape(-1, 3), axis=0)) > 1000
