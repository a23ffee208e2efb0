"""Clustering the clusters again (core/recluster.py): a split is ``segment`` on that
cluster's pixels with the result's options, exactly; merging similar clusters groups
them as scipy's Ward linkage does on their centers repeated by their pixel counts; both
conserve pixels, leave every other pixel alone, give exact means and mean colors, and
are undone exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy.cluster.hierarchy import cut_tree, linkage
from skimage import color, data

import napari_pixel_clusters as npc
from conftest import same_partition
from napari_pixel_clusters.core.editing import EditHistory
from napari_pixel_clusters.core.recluster import (
    merge_similar,
    plan_merge_similar,
    plan_split,
    similar_groups,
    split_call,
    split_cluster,
)
from napari_pixel_clusters.core.result import hex_colors

PHOTO = np.ascontiguousarray(data.astronaut()[::4, ::4])
SMALL = np.ascontiguousarray(data.astronaut()[60:460:10, 60:460:10])  # 40 x 40
OPTIONS = {"color_space": "lab", "standardize": True, "random_state": 5}


@pytest.fixture(scope="module")
def lab_result():
    return npc.segment(PHOTO, "kmeans", 4, **OPTIONS)


def as_layer_table(seg) -> pd.DataFrame:
    """The table as a clusters layer holds it (label in ``index``, names)."""
    table = seg.table.rename(columns={"label": "index"})
    table.insert(1, "name", [f"cluster {label}" for label in table["index"]])
    return table


def exact_means(image, region) -> np.ndarray:
    """The mean of each channel over ``region``, correctly rounded from exact sums."""
    sums = image[region].astype(np.int64).sum(axis=0)
    return np.array([int(total) / int(region.sum()) for total in sums])


# ------------------------------------------------------------------------------ split
def test_split_is_segment_on_the_clusters_pixels_with_the_same_options(lab_result):
    seg = lab_result
    cluster = int(np.argmax(seg.pixel_counts)) + 1
    edit = plan_split(seg.labels, seg.table, PHOTO, cluster, 3, seg.params)
    split = seg.labels.copy()
    table = edit.apply_in_place(split)
    inside = seg.labels == cluster
    expected = npc.segment(PHOTO, "kmeans", 3, mask=inside, **OPTIONS)
    assert same_partition(split[inside], expected.labels[inside])
    # the largest part keeps the label, the others come after the largest label
    largest = int(np.argmax(expected.pixel_counts)) + 1
    np.testing.assert_array_equal(split[inside] == cluster, expected.labels[inside] == largest)
    assert sorted(np.unique(split[inside])) == [cluster, 5, 6]
    counts = np.bincount(split.ravel(), minlength=7)
    assert counts[5] >= counts[6]
    # every other pixel kept its label; no pixel was lost
    np.testing.assert_array_equal(split[~inside], seg.labels[~inside])
    assert counts.sum() == seg.labels.size and counts[0] == 0
    # the table: counts, exact means and mean colors of the parts; the rest unchanged
    rows = table.set_index("label")
    assert list(rows.index) == [1, 2, 3, 4, 5, 6]
    for label in (cluster, 5, 6):
        region = split == label
        assert rows.loc[label, "pixels"] == region.sum()
        means = rows.loc[label, ["mean_R", "mean_G", "mean_B"]].to_numpy(float)
        np.testing.assert_array_equal(means, exact_means(PHOTO, region))
        assert rows.loc[label, "color"] == hex_colors(means[None] / 255)[0]
    others = [label for label in (1, 2, 3, 4) if label != cluster]
    assert_frame_equal(rows.loc[others], seg.table.set_index("label").loc[others])
    assert table.dtypes.equals(seg.table.dtypes)
    assert edit.record == {"edit": "split", "cluster": cluster, "n_clusters": 3}
    assert edit.description == f"split of {cluster} into 3"


def test_split_undo_and_redo_restore_labels_and_table_exactly(lab_result):
    seg = lab_result
    labels, table = seg.labels.copy(), as_layer_table(seg)
    history = EditHistory()
    edit = plan_split(labels, table, PHOTO, 2, 2, seg.params)
    after = edit.apply_in_place(labels)
    history.record(edit)
    split = labels.copy()
    assert history.undo(labels) is edit
    np.testing.assert_array_equal(labels, seg.labels)
    assert_frame_equal(edit.table_before, table)
    history.redo(labels)
    np.testing.assert_array_equal(labels, split)
    # a layer's table: the new row is named after its label, fractions of the total
    new = after.set_index("index").loc[5]
    assert new["name"] == "cluster 5"
    assert new["fraction"] == round(new["pixels"] / seg.labels.size, 4)
    # the headless split gives the same
    again, again_table = split_cluster(seg.labels, table, PHOTO, 2, 2, seg.params)
    np.testing.assert_array_equal(again, split)
    assert_frame_equal(again_table, after)


def test_a_named_cluster_gives_its_parts_its_name():
    seg = npc.segment(SMALL, "kmeans", 3, random_state=0)
    table = as_layer_table(seg)
    table.loc[table["index"] == 2, "name"] = "skin"
    _, after = split_cluster(seg.labels, table, SMALL, 2, 3, seg.params)
    assert list(after["name"]) == ["cluster 1", "skin", "cluster 3", "skin (2)", "skin (3)"]


def test_each_method_splits_its_own_results_and_k_means_those_of_superpixels():
    gmm = npc.segment(SMALL, "gmm", 3, random_state=0, means_init=np.full((3, 3), 120.0))
    call = split_call(gmm.params)
    assert call.method == "gmm" and call.options["means_init"] is None  # tied to k=3
    inside = gmm.labels == 1
    labels, _ = split_cluster(gmm.labels, gmm.table, SMALL, 1, 2, gmm.params)
    expected = npc.segment(SMALL, "gmm", 2, mask=inside, random_state=0)
    assert same_partition(labels[inside], expected.labels[inside])
    # SLIC takes no k: its superpixels are split by k-means in its own color space (Lab)
    slic = npc.segment(SMALL, "slic", n_segments=9, compactness=10.0)
    call = split_call(slic.params)
    assert call.method == "kmeans" and call.options["color_space"] == "lab"
    cluster = int(np.argmax(slic.pixel_counts)) + 1
    inside = slic.labels == cluster
    labels, _ = split_cluster(slic.labels, slic.table, SMALL, cluster, 2, slic.params)
    expected = npc.segment(SMALL, "kmeans", 2, mask=inside, color_space="lab")
    assert same_partition(labels[inside], expected.labels[inside])
    # another method on request (a grey image's Ward result split by k-means)
    coins = data.coins()[::8, ::8]
    ward = npc.segment(coins, "ward", 3)
    edit = plan_split(ward.labels, ward.table, coins, 1, 2, ward.params, method="kmeans")
    assert edit.record["method"] == "kmeans"


def test_the_stain_vectors_of_the_result_are_reused():
    ihc = np.ascontiguousarray(data.immunohistochemistry()[::6, ::6])
    seg = npc.segment(ihc, "kmeans", 3, color_space="stains", stain_vectors="estimate")
    call = split_call(seg.params)
    assert call.options["stain_vectors"]["vectors"] == seg.params["stain_vectors"]["vectors"]
    inside = seg.labels == 1
    labels, _ = split_cluster(seg.labels, seg.table, ihc, 1, 2, seg.params)
    vectors = np.array(seg.params["stain_vectors"]["vectors"])
    expected = npc.segment(
        ihc, "kmeans", 2, mask=inside, color_space="stains", stain_vectors=vectors
    )
    assert same_partition(labels[inside], expected.labels[inside])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_clusters": 1}, "n_clusters: a split needs at least 2 parts"),
        ({"n_clusters": 2.0}, "n_clusters: expected a whole number"),
        ({"cluster": 9}, "cluster: no cluster 9 in the table"),
        ({"image": PHOTO[:50]}, "image: its pixels' shape"),
        ({"method": "slic"}, "method: 'slic' takes no number of clusters"),
    ],
)
def test_bad_splits_name_the_argument(lab_result, change, message):
    seg = lab_result
    arguments = {"image": PHOTO, "cluster": 1, "n_clusters": 2, "method": None} | change
    with pytest.raises(ValueError, match=message):
        plan_split(seg.labels, seg.table, params=seg.params, **arguments)


def test_edges_and_full_label_dtypes_are_refused():
    coins = data.coins()[::8, ::8]
    edges = npc.segment(coins, "canny")
    with pytest.raises(ValueError, match="params: a Canny edges result holds edges"):
        plan_split(edges.labels, edges.table, coins, 1, 2, edges.params)
    seg = npc.segment(SMALL, "kmeans", 2, random_state=0)
    labels = seg.labels.astype(np.uint8)
    labels[labels == 2] = 255
    table = seg.table.assign(label=[1, 255])
    with pytest.raises(ValueError, match="labels: uint8 labels cannot hold label 256"):
        plan_split(labels, table, SMALL, 1, 2, seg.params)


# ------------------------------------------------------------------------------ merge similar
def scipy_groups(centers, weights, k) -> list[list[int]]:
    """The groups of scipy's Ward linkage on every center repeated ``weights`` times,
    cut at ``k`` clusters, as sorted lists of center indices."""
    points = np.repeat(centers, weights, axis=0)
    owner = np.repeat(np.arange(len(centers)), weights)
    cut = cut_tree(linkage(points, "ward"), n_clusters=k).ravel()
    groups = {}
    for center in range(len(centers)):
        assert len(set(cut[owner == center])) == 1  # a center's copies stay together
        groups.setdefault(int(cut[owner == center][0]), []).append(center)
    return sorted(groups.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_similar_groups_are_scipys_ward_on_the_centers_repeated_by_weight(seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, 3)) * [1.0, 2.0, 0.5]
    weights = rng.integers(1, 9, 12)
    for k in range(1, 13):
        groups = [list(group) for group in similar_groups(centers, weights, k)]
        assert groups == scipy_groups(centers, weights, k), k


def test_weights_matter():
    centers = np.array([[0.0], [1.0], [2.2]])
    assert [list(g) for g in similar_groups(centers, [1, 1, 1], 2)] == [[0, 1], [2]]
    assert [list(g) for g in similar_groups(centers, [50, 1, 1], 2)] == [[0], [1, 2]]


def test_merge_similar_groups_the_mean_features_as_scipy_does():
    seg = npc.segment(SMALL, "kmeans", 6, color_space="lab", random_state=0)
    edit = plan_merge_similar(seg.labels, seg.table, SMALL, 3, seg.params)
    merged = seg.labels.copy()
    table = edit.apply_in_place(merged)
    # the centers: each cluster's mean L*a*b* (scikit-image's) of its pixels
    lab = color.rgb2lab(SMALL).reshape(-1, 3)
    flat = seg.labels.ravel()
    centers = np.array([lab[flat == c].mean(axis=0) for c in range(1, 7)])
    counts = np.bincount(flat)[1:]
    for group in scipy_groups(centers, counts, 3):
        labels = [g + 1 for g in group]
        region = np.isin(seg.labels, labels)
        assert (merged[region] == labels[0]).all()  # into the first of the group
        row = table.set_index("label").loc[labels[0]]
        assert row["pixels"] == region.sum()
        means = row[["mean_R", "mean_G", "mean_B"]].to_numpy(float)
        np.testing.assert_array_equal(means, exact_means(SMALL, region))
    assert len(table) == 3 and int(table["pixels"].sum()) == seg.labels.size
    assert edit.record == {"edit": "merge similar", "n_clusters": 3}
    again, again_table = merge_similar(seg.labels, seg.table, SMALL, 3, seg.params)
    np.testing.assert_array_equal(again, merged)
    assert_frame_equal(again_table, table)
    history = EditHistory()
    history.record(edit)
    history.undo(merged)
    np.testing.assert_array_equal(merged, seg.labels)


def test_merge_similar_with_standardized_spatial_features(lab_result):
    seg = npc.segment(SMALL, "kmeans", 5, spatial_weight=1.0, standardize=True, random_state=0)
    merged, table = merge_similar(seg.labels, seg.table, SMALL, 2, seg.params)
    assert len(table) == 2 and len(np.unique(merged)) == 2
    for label in table["label"]:  # each new cluster is a union of old ones
        assert len(np.unique(merged[np.isin(seg.labels, seg.labels[merged == label])])) == 1


def test_clusters_without_pixels_are_left_alone_and_k_counts_those_with_pixels(lab_result):
    seg = lab_result
    labels = seg.labels.copy()
    labels[labels == 4] = 3  # painted away
    table = seg.table
    with pytest.raises(ValueError, match=r"n_clusters: must be from 1 to 2 .* got 3"):
        plan_merge_similar(labels, table, PHOTO, 3, seg.params)
    edit = plan_merge_similar(labels, table, PHOTO, 1, seg.params)
    assert list(edit.table_after["label"]) == [1, 4]
    merged = labels.copy()
    edit.apply_in_place(merged)
    assert set(np.unique(merged)) == {1}
