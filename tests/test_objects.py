"""Objects: connected regions of chosen clusters with measurements, checked against
scikit-image's own label and regionprops_table on the same mask."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from skimage import data, measure

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.objects import Objects, label_objects, object_counts


@pytest.fixture(scope="module")
def coins_seg():
    return npc.segment(data.coins()[::4, ::4], "kmeans", 3, random_state=0)


@pytest.fixture(scope="module")
def ihc_seg():
    image = np.ascontiguousarray(data.immunohistochemistry()[::8, ::8])
    return npc.segment(image, "kmeans", 3, random_state=0)


def oracle(seg, clusters, connectivity, intensity):
    kept = np.where(np.isin(seg.labels, clusters), seg.labels, 0)
    labels = measure.label(kept, background=0, connectivity=connectivity)
    properties = ["label", "area", "centroid", "bbox", "intensity_mean"]
    if labels.ndim == 2:
        properties.append("perimeter")
    props = measure.regionprops_table(labels, intensity_image=intensity, properties=properties)
    return labels, props


@pytest.mark.parametrize("connectivity", [1, 2])
def test_grey_objects_match_skimage(coins_seg, connectivity):
    clusters = [2, 3]
    objects = coins_seg.objects(clusters, connectivity=connectivity)
    labels, props = oracle(coins_seg, clusters, connectivity, coins_seg.image.pixels[..., 0])
    assert objects.labels.dtype == np.int32
    np.testing.assert_array_equal(objects.labels, labels)
    table = objects.table
    assert len(table) == labels.max() > 10
    np.testing.assert_array_equal(table["label"], props["label"])
    np.testing.assert_array_equal(table["area"], props["area"])
    np.testing.assert_array_equal(table["pixels"], props["area"])
    np.testing.assert_allclose(table["centroid_y"], props["centroid-0"])
    np.testing.assert_allclose(table["centroid_x"], props["centroid-1"])
    np.testing.assert_allclose(table["perimeter"], props["perimeter"])
    np.testing.assert_allclose(table["mean_intensity"], props["intensity_mean"])
    bbox = table[["bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x"]].to_numpy()
    np.testing.assert_array_equal(bbox, np.stack([props[f"bbox-{i}"] for i in range(4)], 1))
    # each object lies inside one chosen cluster, the one the table names
    for row in table.itertuples():
        assert set(np.unique(coins_seg.labels[objects.labels == row.label])) == {row.cluster}
    assert set(table["cluster"]) == set(clusters)
    assert list(table["cluster_name"]) == [f"cluster {c}" for c in table["cluster"]]
    # touching regions of different clusters stay separate objects
    assert (objects.labels > 0).sum() == np.isin(coins_seg.labels, clusters).sum()


def test_rgb_objects_match_skimage(ihc_seg):
    objects = ihc_seg.objects([1, 3])
    labels, props = oracle(ihc_seg, [1, 3], 2, ihc_seg.image.pixels)
    np.testing.assert_array_equal(objects.labels, labels)
    table = objects.table
    for c, channel in enumerate("RGB"):
        np.testing.assert_allclose(table[f"mean_{channel}"], props[f"intensity_mean-{c}"])
    np.testing.assert_array_equal(table["area"], props["area"])
    # object means weighted by size give back the cluster means of the result
    for cluster in (1, 3):
        rows = table[table["cluster"] == cluster]
        for channel in "RGB":
            weighted = (rows[f"mean_{channel}"] * rows["pixels"]).sum() / rows["pixels"].sum()
            expected = ihc_seg.table.set_index("label").loc[cluster, f"mean_{channel}"]
            assert weighted == pytest.approx(expected)


def test_physical_units(coins_seg):
    plain = coins_seg.objects([3]).table
    scaled = coins_seg.objects([3], scale=(0.5, 2.0)).table
    np.testing.assert_allclose(scaled["area"], plain["pixels"] * 1.0)
    np.testing.assert_allclose(scaled["centroid_y"], plain["centroid_y"] * 0.5)
    np.testing.assert_allclose(scaled["centroid_x"], plain["centroid_x"] * 2.0)
    assert scaled["perimeter"].isna().all()  # anisotropic pixels: no perimeter
    square = coins_seg.objects([3], scale=0.25).table
    np.testing.assert_allclose(square["area"], plain["pixels"] * 0.0625)
    np.testing.assert_allclose(square["perimeter"], plain["perimeter"] * 0.25)
    np.testing.assert_array_equal(square["bbox_max_x"], plain["bbox_max_x"])  # pixel indices


def test_stack_gives_volumes():
    stack = np.zeros((4, 10, 10), dtype=np.uint8)
    stack[1:3, 2:5, 2:5] = 200  # 18 voxels
    stack[0:4, 7:9, 6:9] = 200  # 24 voxels, apart from the first
    stack[3, 0, 0] = 100
    seg = npc.segment(stack, "kmeans", 3, random_state=0)
    bright = int(seg.table.loc[seg.table["mean_intensity"].idxmax(), "label"])
    objects = seg.objects([bright], connectivity=1, scale=(2.0, 0.5, 0.5))
    table = objects.table
    assert "volume" in table and "area" not in table and "perimeter" not in table
    assert sorted(table["pixels"]) == [18, 24]
    assert sorted(table["volume"]) == [18 * 0.5, 24 * 0.5]
    first = table[table["pixels"] == 18].iloc[0]
    assert (first["centroid_z"], first["centroid_y"], first["centroid_x"]) == (3.0, 1.5, 1.5)
    assert (first["bbox_min_z"], first["bbox_max_z"]) == (1, 3)
    labels, _ = oracle(seg, [bright], 1, stack)
    np.testing.assert_array_equal(objects.labels, labels)


def test_names_from_the_table(coins_seg):
    table = coins_seg.table.assign(name=["background", "dark", "coins"])
    objects = coins_seg.objects([2, 3], table=table)
    expected = {2: "dark", 3: "coins"}
    assert list(objects.table["cluster_name"]) == [expected[c] for c in objects.table["cluster"]]


@pytest.mark.parametrize(
    ("arguments", "start"),
    [
        ({"clusters": []}, "clusters: "),
        ({"clusters": [7]}, "clusters: "),
        ({"clusters": [1, 1]}, "clusters: "),
        ({"clusters": "a"}, "clusters: "),
        ({"clusters": [1], "connectivity": 0}, "connectivity: "),
        ({"clusters": [1], "connectivity": 3}, "connectivity: "),
        ({"clusters": [1], "connectivity": 1.5}, "connectivity: "),
        ({"clusters": [1], "scale": 0}, "scale: "),
        ({"clusters": [1], "scale": (1, 2, 3)}, "scale: "),
        ({"clusters": [1], "scale": "x"}, "scale: "),
    ],
)
def test_bad_arguments(coins_seg, arguments, start):
    with pytest.raises(ValueError, match=f"^{start}"):
        coins_seg.objects(**arguments)


def test_lazy_results_are_refused():
    image = da.from_array(data.coins()[::4, ::4], chunks=32)
    seg = npc.segment(image, "kmeans", 3, random_state=0)
    assert seg.is_lazy
    with pytest.raises(ValueError, match=r"^objects need the labels in memory; "):
        seg.objects([1])


def test_csv_round_trip_and_no_overwrite(coins_seg, tmp_path):
    objects = coins_seg.objects([3], scale=0.5)
    path = tmp_path / "objects.csv"
    assert objects.to_csv(path) == path
    back = pd.read_csv(path)
    pd.testing.assert_frame_equal(back, objects.table, check_dtype=False)
    path.write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match=f"^path: .*{path.name}.* exists already"):
        objects.to_csv(path)
    assert path.read_text(encoding="utf-8") == "mine"
    objects.to_csv(path, overwrite=True)
    pd.testing.assert_frame_equal(pd.read_csv(path), objects.table, check_dtype=False)


def test_deterministic_and_input_untouched(coins_seg):
    before = coins_seg.labels.copy()
    first = coins_seg.objects([1, 3], connectivity=1)
    second = coins_seg.objects([1, 3], connectivity=1)
    assert isinstance(first, Objects)
    np.testing.assert_array_equal(first.labels, second.labels)
    pd.testing.assert_frame_equal(first.table, second.table)
    np.testing.assert_array_equal(coins_seg.labels, before)


@pytest.mark.parametrize("connectivity", [1, 2])
def test_object_counts_match_skimage_per_cluster(coins_seg, connectivity):
    counts = object_counts(coins_seg.labels, connectivity)
    assert counts[0] == 0 and len(counts) == coins_seg.n_clusters + 1
    for cluster in range(1, coins_seg.n_clusters + 1):
        mask = coins_seg.labels == cluster
        assert counts[cluster] == measure.label(mask, connectivity=connectivity).max()
    # and the objects of every cluster are as many
    objects = coins_seg.objects(range(1, coins_seg.n_clusters + 1), connectivity=connectivity)
    assert len(objects.table) == counts.sum()
    np.testing.assert_array_equal(
        objects.table["cluster"].value_counts().sort_index().to_numpy(), counts[1:]
    )


def test_object_counts_of_a_stack_and_of_nothing():
    stack = np.zeros((3, 6, 6), dtype=np.int32)
    stack[0, 0, 0] = stack[1, 1, 1] = 1  # touch by a corner only (full connectivity: one)
    stack[2, 4:, 4:] = 2
    np.testing.assert_array_equal(object_counts(stack, 1), [0, 2, 1])
    np.testing.assert_array_equal(object_counts(stack), [0, 1, 1])
    np.testing.assert_array_equal(object_counts(np.zeros((4, 4), np.int32)), [0])
    with pytest.raises(ValueError, match=r"^connectivity: "):
        object_counts(stack, 4)
    with pytest.raises(ValueError, match=r"^labels: "):
        object_counts(stack.astype(float))


def test_label_objects_from_edited_labels_and_a_layer_table(coins_seg):
    """What the Cluster table does: labels edited by hand, the layer's features (``index``
    column) and no image: the same objects, no mean columns, the names of the table."""
    labels = coins_seg.labels.copy()
    labels[:10, :10] = 3  # painted
    features = coins_seg.table.rename(columns={"label": "index"}).assign(
        name=["background", "dark", "coins"]
    )
    objects = label_objects(labels, [3], features, connectivity=1, scale=(2.0, 2.0))
    expected = measure.label(np.where(labels == 3, 3, 0), connectivity=1)
    np.testing.assert_array_equal(objects.labels, expected)
    assert not [c for c in objects.table.columns if c.startswith("mean_")]
    assert set(objects.table["cluster_name"]) == {"coins"}
    props = measure.regionprops_table(expected, properties=["area", "centroid"])
    np.testing.assert_allclose(objects.table["area"], props["area"] * 4.0)
    np.testing.assert_allclose(objects.table["centroid_x"], props["centroid-1"] * 2.0)
    assert objects.params == {"clusters": [3], "connectivity": 1, "scale": [2.0, 2.0]}
    with pytest.raises(ValueError, match=r"^image: "):
        label_objects(labels, [3], features, image=read_image(coins_seg.image.pixels[:5, :, 0]))


def test_measurements_equal_regionprops_on_touching_ragged_objects():
    """Whole-image measurements against regionprops_table on objects that touch each other
    and the image's edges, with holes and one-pixel objects (perimeter codes of every kind)."""
    rng = np.random.default_rng(3)
    noise = rng.random((60, 70))
    clusters = (noise > 0.35).astype(np.int32) + (noise > 0.7)  # two touching clusters
    table = pd.DataFrame({"label": [1, 2]})
    image = read_image(rng.integers(0, 255, (60, 70, 3), dtype=np.uint8))
    objects = label_objects(clusters, [1, 2], table, connectivity=1, image=image)
    props = measure.regionprops_table(
        objects.labels,
        intensity_image=image.pixels,
        properties=["label", "area", "centroid", "bbox", "perimeter", "intensity_mean"],
    )
    out = objects.table
    assert len(out) == objects.labels.max() > 100
    np.testing.assert_array_equal(out["label"], props["label"])
    np.testing.assert_array_equal(out["pixels"], props["area"])
    np.testing.assert_allclose(out["perimeter"], props["perimeter"], rtol=1e-12)
    np.testing.assert_allclose(out["centroid_y"], props["centroid-0"], rtol=1e-12)
    np.testing.assert_allclose(out["centroid_x"], props["centroid-1"], rtol=1e-12)
    for c, channel in enumerate("RGB"):
        np.testing.assert_allclose(out[f"mean_{channel}"], props[f"intensity_mean-{c}"])
    bbox = out[["bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x"]].to_numpy()
    np.testing.assert_array_equal(bbox, np.stack([props[f"bbox-{i}"] for i in range(4)], 1))
