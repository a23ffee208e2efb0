"""Editing clusters headless (core/editing.py): merge, recount, rename, recolor, outlines,
and undo/redo that restore labels and table exactly."""

from __future__ import annotations

from fractions import Fraction

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from skimage import data
from skimage.draw import disk

import napari_pixel_clusters as npc
from napari_pixel_clusters.core.contours import region_contours
from napari_pixel_clusters.core.editing import (
    DEFAULT_DEPTH,
    Edit,
    EditHistory,
    LabelsChange,
    Outlines,
    check_color,
    merge_clusters,
    painting_record,
    plan_merge,
    quantized_colors,
    recolor_clusters,
    recolor_record,
    recount,
    rename_cluster,
    rename_record,
    retrace_outlines,
    table_edit,
)
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.result import Segmentation

CHANNELS = ["mean_R", "mean_G", "mean_B"]


@pytest.fixture(scope="module")
def photo_result():
    image = np.ascontiguousarray(data.astronaut()[::4, ::4])
    seg = npc.segment(image, method="kmeans", n_clusters=4, random_state=0)
    return image, seg


def result_of(labels, image) -> Segmentation:
    """A Segmentation of ``labels`` on ``image``: table, quantized and contours computed
    from scratch, the oracle for edits."""
    return Segmentation(labels=labels, image=read_image(image), score={}, params={})


def as_layer_table(table: pd.DataFrame) -> pd.DataFrame:
    """A table as a clusters layer holds it: label in ``index``, names, fractions rounded."""
    table = table.rename(columns={"label": "index"})
    table.insert(1, "name", [f"cluster {label}" for label in table["index"]])
    table["fraction"] = table["fraction"].round(4)
    return table


# ----------------------------------------------------------------------------- merge
def test_merge_equals_means_computed_again_from_the_merged_labels(photo_result):
    image, seg = photo_result
    labels, table = seg.labels.copy(), seg.table
    labels_before, table_before = labels.copy(), table.copy()
    merged_labels, merged = merge_clusters(labels, table, [1, 3], dtype=image.dtype)
    # inputs untouched
    np.testing.assert_array_equal(labels, labels_before)
    assert_frame_equal(table, table_before)
    # labels: 3 became 1, nothing else moved
    np.testing.assert_array_equal(merged_labels == 1, np.isin(labels, [1, 3]))
    np.testing.assert_array_equal(
        merged_labels[~np.isin(labels, [1, 3])], labels[~np.isin(labels, [1, 3])]
    )
    # table: the table of a result made from the merged labels, rows 1, 2, 4; exact means
    oracle = result_of(merged_labels, image).table.set_index("label").loc[[1, 2, 4]]
    got = merged.set_index("label")
    assert list(got.index) == [1, 2, 4]
    np.testing.assert_array_equal(got["pixels"], oracle["pixels"])
    np.testing.assert_array_equal(got[CHANNELS].to_numpy(), oracle[CHANNELS].to_numpy())
    np.testing.assert_allclose(got["fraction"], oracle["fraction"], atol=5e-5)
    assert got.loc[1, "color"] == table.set_index("label").loc[1, "color"]  # target's color
    assert list(merged.columns) == list(table.columns)
    assert (merged.dtypes == table.dtypes).all()


def test_merge_from_the_pixels_equals_merge_from_the_table(photo_result):
    image, seg = photo_result
    from_table = merge_clusters(seg.labels, seg.table, [2, 4, 1], dtype=image.dtype)
    from_pixels = merge_clusters(seg.labels, seg.table, [2, 4, 1], image=image)
    np.testing.assert_array_equal(from_table[0], from_pixels[0])
    assert_frame_equal(from_table[1], from_pixels[1])
    assert set(np.unique(from_table[0])) == {2, 3}


def test_integer_means_are_exact_where_weighting_the_float_means_is_not():
    # 15 uint16 pixels in 3 clusters whose float-weighted mean is one ulp off
    values = [6858, 20645, 35653, 55258, 45833, 60817, 20079, 2779]
    values += [59867, 44596, 34122, 22040, 55920, 34436, 6071]
    image = np.array([values], dtype=np.uint16)
    labels = np.array([[1] + [2] * 7 + [3] * 7], dtype=np.int32)
    table = as_layer_table(result_of(labels, image).table)
    merged_labels, merged = merge_clusters(labels, table, [1, 2, 3], dtype=np.uint16)
    exact = Fraction(sum(values), len(values))
    assert merged["mean_intensity"][0] == float(exact)
    weighted = (table["mean_intensity"] * table["pixels"]).sum() / table["pixels"].sum()
    assert weighted != float(exact)  # what the widget used to compute
    # the quantized color is the exact mean rounded half to even, as a new result's
    oracle = result_of(merged_labels, image).quantized()
    assert quantized_colors(merged, [1], np.uint16)[0, 0] == round(exact) == oracle[0, 0]
    # without the dtype, the float weighted mean
    _, unknown = merge_clusters(labels, table, [1, 2, 3])
    assert unknown["mean_intensity"][0] == pytest.approx(float(exact), rel=1e-15)


def test_merge_of_float_images_weights_means_by_pixels():
    rng = np.random.default_rng(0)
    image = rng.random((20, 30)).astype(np.float32)
    labels = rng.integers(1, 5, (20, 30)).astype(np.int32)
    table = as_layer_table(result_of(labels, image).table)
    _, merged = merge_clusters(labels, table, [4, 2], dtype=image.dtype)
    region = np.isin(labels, [2, 4])
    assert merged.set_index("index").loc[4, "mean_intensity"] == pytest.approx(
        image[region].astype(float).mean(), rel=1e-12
    )
    assert merged.set_index("index").loc[4, "pixels"] == region.sum()
    _, from_pixels = merge_clusters(labels, table, [4, 2], image=image)
    assert from_pixels["mean_intensity"].to_numpy() == pytest.approx(
        merged["mean_intensity"].to_numpy(), rel=1e-12
    )


def test_quantized_colors_are_those_of_a_new_result(photo_result):
    image, seg = photo_result
    merged_labels, merged = merge_clusters(seg.labels, seg.table, [1, 3], dtype=image.dtype)
    oracle = result_of(merged_labels, image).quantized()
    colors = quantized_colors(merged, [1, 2, 4], image.dtype)
    for label, color in zip([1, 2, 4], colors):
        np.testing.assert_array_equal(np.unique(oracle[merged_labels == label], axis=0), [color])
    # and before merging, those of the run
    before = quantized_colors(seg.table, [1, 2, 3, 4], image.dtype)
    quantized = seg.quantized()
    for label, color in zip([1, 2, 3, 4], before):
        np.testing.assert_array_equal(quantized[seg.labels == label][0], color)


def test_plan_merge_changes_nothing_until_applied(photo_result):
    _, seg = photo_result
    labels = seg.labels.copy()
    edit = plan_merge(labels, seg.table, [4, 1])
    np.testing.assert_array_equal(labels, seg.labels)
    assert edit.labels.n_pixels == (seg.labels == 1).sum()
    assert edit.labels.labels_before() == {1} and edit.labels.labels_after() == {4}
    assert edit.changed_clusters() == [1, 4]
    table = edit.apply_in_place(labels)
    assert set(np.unique(labels)) == {2, 3, 4}
    assert list(table["label"]) == [2, 3, 4]
    assert edit.record == {"edit": "merge", "clusters": [4, 1]}  # how a script replays it


def test_records_say_what_an_edit_did_in_plain_values():
    assert rename_record(np.int64(2), "nuclei") == {
        "edit": "rename",
        "cluster": 2,
        "name": "nuclei",
    }
    assert recolor_record([1, np.int32(3)], "#F0A") == {
        "edit": "recolor",
        "clusters": [1, 3],
        "color": "#ff00aa",
    }
    assert painting_record(2) == {"edit": "painting", "strokes": 2}
    assert table_edit("rename", TABLE, TABLE, record=rename_record(1, "a")).record["name"] == "a"


def test_an_edit_reshaped_restores_the_same_pixels_of_labels_of_another_shape(photo_result):
    _, seg = photo_result
    edit = plan_merge(seg.labels, seg.table, [2, 3])
    layer = seg.labels[np.newaxis, np.newaxis].copy()  # a plane of a 4-D image's layer
    reshaped = edit.reshaped(layer.shape)
    assert reshaped.labels.shape == layer.shape and edit.labels.shape == seg.labels.shape
    reshaped.apply_in_place(layer)
    merged, _ = merge_clusters(seg.labels, seg.table, [2, 3])
    np.testing.assert_array_equal(layer[0, 0], merged)
    reshaped.labels.undo_in_place(layer)
    np.testing.assert_array_equal(layer[0, 0], seg.labels)
    assert edit.reshaped(seg.labels.shape) is edit
    with pytest.raises(ValueError, match=r"^shape: \(3, 3\) does not hold"):
        edit.reshaped((3, 3))


# ----------------------------------------------------------------------------- recount
def test_recount_after_painting(photo_result):
    image, seg = photo_result
    table = as_layer_table(seg.table)
    painted = seg.labels.copy()
    painted[disk((60, 60), 12, shape=painted.shape)] = 2  # a brush stroke
    counted = recount(table, painted)
    counts = np.bincount(painted.ravel(), minlength=5)[1:]
    np.testing.assert_array_equal(counted["pixels"], counts)
    np.testing.assert_allclose(counted["fraction"], (counts / counts.sum()).round(4))
    assert_frame_equal(counted[CHANNELS], table[CHANNELS])  # means untouched without image
    assert_frame_equal(table, as_layer_table(seg.table))  # input untouched
    # with the image, the means of the painted clusters, exactly
    with_means = recount(table, painted, image=image)
    oracle = result_of(painted, image).table
    np.testing.assert_array_equal(with_means[CHANNELS].to_numpy(), oracle[CHANNELS].to_numpy())
    assert list(with_means["name"]) == list(table["name"])


def test_recount_keeps_clusters_painted_away_and_ignores_labels_not_in_the_table():
    labels = np.array([[1, 1, 2], [2, 7, 7]], dtype=np.uint16)
    table = pd.DataFrame(
        {
            "index": [1, 2, 3],
            "pixels": [3, 3, 0],
            "fraction": [0.5, 0.5, 0.0],
            "mean_a": [1.0, 2, 3],
        }
    )
    counted = recount(table, labels, image=np.arange(6.0).reshape(2, 3))
    assert list(counted["pixels"]) == [2, 2, 0]
    assert list(counted["fraction"]) == [0.5, 0.5, 0.0]
    assert list(counted["mean_a"]) == [0.5, 2.5, 3.0]  # cluster 3 keeps its mean


# ----------------------------------------------------------------------------- rename, recolor
def test_rename_and_recolor_give_new_tables(photo_result):
    _, seg = photo_result
    table = as_layer_table(seg.table)
    original = table.copy()
    renamed = rename_cluster(table, 2, "stroma")
    assert list(renamed["name"]) == ["cluster 1", "stroma", "cluster 3", "cluster 4"]
    recolored = recolor_clusters(renamed, [1, 3], "#00FF00")
    assert list(recolored["color"][[0, 2]]) == ["#00ff00", "#00ff00"]
    assert recolored["color"][1] == table["color"][1]
    assert_frame_equal(table, original)
    assert check_color("#AbC") == "#aabbcc"
    assert check_color((0, 1, 0)) == "#00ff00"
    assert check_color([1.0, 0.5, 0.0, 1.0]) == "#ff8000"


# ----------------------------------------------------------------------------- undo, redo
def test_undo_and_redo_restore_labels_and_table_exactly(photo_result):
    image, seg = photo_result
    labels = seg.labels.copy()
    table = as_layer_table(seg.table)
    history = EditHistory()
    states = [(labels.copy(), table.copy())]

    def record(edit):
        nonlocal table
        table = edit.apply_in_place(labels)
        history.record(edit)
        states.append((labels.copy(), table.copy()))

    record(plan_merge(labels, table, [1, 3], dtype=image.dtype))
    record(table_edit("rename", table, rename_cluster(table, 2, "stroma")))
    painted = labels.copy()
    painted[disk((40, 80), 10, shape=labels.shape)] = 4
    record(
        table_edit(
            "paint", table, recount(table, painted), labels=LabelsChange.between(labels, painted)
        )
    )
    record(table_edit("recolor", table, recolor_clusters(table, [4], "#123456")))
    record(plan_merge(labels, table, [4, 2], dtype=image.dtype))
    assert len(history) == 5 and history.can_undo and not history.can_redo

    for expected_labels, expected_table in reversed(states[:-1]):  # undo everything
        edit = history.undo(labels)
        np.testing.assert_array_equal(labels, expected_labels)
        assert_frame_equal(edit.table_before, expected_table)
    assert history.undo(labels) is None and not history.can_undo
    np.testing.assert_array_equal(labels, seg.labels)
    for expected_labels, expected_table in states[1:]:  # and redo everything
        edit = history.redo(labels)
        np.testing.assert_array_equal(labels, expected_labels)
        assert_frame_equal(edit.table_after, expected_table)
    assert history.redo(labels) is None
    # a new edit after an undo forgets what was undone
    history.undo(labels)
    history.record(table_edit("rename", table, rename_cluster(table, 1, "skin")))
    assert not history.can_redo


def test_undo_and_redo_with_labels_computed_elsewhere(photo_result):
    """A worker computes the labels before or after an edit (LabelsChange.undone, redone,
    from the labels, not modified); the history copies them in place: the same labels."""
    image, seg = photo_result
    labels = seg.labels.copy()
    table = as_layer_table(seg.table)
    edit = plan_merge(labels, table, [1, 3], dtype=image.dtype)
    original = labels.copy()
    after = edit.labels.redone(labels)
    np.testing.assert_array_equal(labels, original)  # not modified
    history = EditHistory()
    array = labels  # the layer's array: changed in place, never replaced
    edit.apply_in_place(labels, result=after)
    history.record(edit)
    assert labels is array
    np.testing.assert_array_equal(labels, np.where(np.isin(original, [1, 3]), 1, original))
    before = edit.labels.undone(labels)
    assert history.undo(labels, result=before) is edit
    np.testing.assert_array_equal(labels, original)
    assert history.redo(labels, result=edit.labels.redone(labels)) is edit
    np.testing.assert_array_equal(labels, after)
    with pytest.raises(ValueError, match=r"^result: must be a labels array of shape"):
        history.undo(labels, result=after[:2])


def test_labels_change_keeps_only_the_changed_pixels():
    labels = np.zeros((512, 512), dtype=np.int32)
    labels[:, :256] = 1
    labels[:, 256:] = 2
    labels[100:110, 100:110] = 3
    small = LabelsChange.relabel(labels, [3], 1)  # 100 pixels: their indices
    assert not small.packed and small.n_pixels == 100
    assert small.nbytes <= 100 * 4 + 64  # uint32 indices, one value before and after
    large = LabelsChange.relabel(labels, [2, 3], 1)  # half the image: a bit mask
    assert large.packed and large.n_pixels == 512 * 256 + 100
    assert large.nbytes <= labels.size // 8 + (512 * 256 + 100) + 64  # mask + 1-byte codes
    assert large.nbytes < labels.nbytes / 6  # int32 labels: 4 bytes a pixel
    merged = labels.copy()
    large.redo_in_place(merged)
    assert set(np.unique(merged)) == {1}
    large.undo_in_place(merged)
    np.testing.assert_array_equal(merged, labels)
    # any two arrays, also not contiguous ones
    other = labels.copy()
    other[::7, ::5] = 9
    change = LabelsChange.between(labels, other)
    view = np.asfortranarray(labels)
    change.redo_in_place(view)
    np.testing.assert_array_equal(view, other)
    change.undo_in_place(view)
    np.testing.assert_array_equal(view, labels)


def test_history_depth_and_memory_are_bounded():
    labels = np.zeros((64, 64), dtype=np.int32)
    table = pd.DataFrame({"index": [1], "pixels": [0]})
    history = EditHistory(depth=3)
    for i in range(5):
        history.record(table_edit(f"edit {i}", table, table))
    assert len(history) == 3 and history.forgotten == 2
    assert [history.undo().description for _ in range(3)] == ["edit 4", "edit 3", "edit 2"]
    small = EditHistory(max_bytes=1)  # the newest edit is always kept
    for value in (1, 2):
        after = labels.copy()
        after[:10] = value
        small.record(table_edit("paint", table, table, labels=LabelsChange.between(labels, after)))
    assert len(small) == 1 and small.forgotten == 1
    assert EditHistory().depth == DEFAULT_DEPTH


# ----------------------------------------------------------------------------- outlines
def test_outlines_traced_again_after_a_merge_and_restored_on_undo(photo_result):
    image, seg = photo_result
    contours = seg.contours(min_area=5)
    table = as_layer_table(seg.table)
    outlines = Outlines(
        [c.vertices for c in contours],
        pd.DataFrame(
            {
                "label": [c.label for c in contours],
                "name": [f"cluster {c.label}" for c in contours],
                "area": [c.area for c in contours],
            }
        ),
    )
    merged_labels, merged = merge_clusters(seg.labels, table, [1, 3], dtype=image.dtype)
    change = retrace_outlines(outlines, merged_labels, [1, 3], merged, min_area=5)
    after = change.apply(outlines)
    assert len(after.polygons) == len(after.table)
    assert 3 not in set(after.table["label"])
    # the same outlines as tracing the merged labels from scratch
    fresh = region_contours(merged_labels, 5)

    def key(label, polygon):
        return (int(label), tuple(np.asarray(polygon).round(6).ravel()))

    assert sorted(
        key(label, p) for label, p in zip(after.table["label"], after.polygons)
    ) == sorted(key(c.label, c.vertices) for c in fresh)
    assert set(after.table.loc[after.table["label"] == 1, "name"]) == {"cluster 1"}
    before = change.revert(after)
    # the same polygons and rows as before the merge (the restored ones last)
    assert outline_rows(before) == outline_rows(outlines)
    assert len(before.polygons) == len(outlines.polygons) == len(before.table)
    kept = ~outlines.table["label"].isin([1, 3]).to_numpy()
    assert_frame_equal(  # the other clusters' outlines keep their order
        before.table.iloc[: kept.sum()], outlines.table[kept].reset_index(drop=True)
    )
    assert outline_rows(change.apply(before)) == outline_rows(after)  # redo, from the reorder
    assert change.nbytes > 0
    with pytest.raises(ValueError, match=r"^outlines: the \d+ polygons of clusters 1, 3 are not"):
        gone = int(np.flatnonzero(after.table["label"] == 1)[0])  # one deleted since
        change.revert(
            Outlines(after.polygons[:gone] + after.polygons[gone + 1 :], after.table.drop(gone))
        )
    # an outline of another cluster drawn or deleted by hand does not matter
    other = int(outlines.table.loc[kept, "label"].iloc[0])
    drawn = Outlines(
        [*after.polygons, np.array([[0.0, 0.0], [0.0, 4.0], [4.0, 4.0]])],
        pd.concat(
            [after.table, pd.DataFrame({"label": [other], "name": ["hand"], "area": [8]})],
            ignore_index=True,
        ),
    )
    hand = (other, (3, 2), np.array([[0.0, 0.0], [0.0, 4.0], [4.0, 4.0]]).tobytes(), "hand", 8)
    assert outline_rows(change.revert(drawn)) == sorted([*outline_rows(outlines), hand])
    # ... but one drawn with a touched cluster's label is a change since the edit
    drawn.table.loc[len(drawn.table) - 1, "label"] = 1
    with pytest.raises(ValueError, match="they changed since"):
        change.revert(drawn)


def outline_rows(outlines: Outlines) -> list[tuple]:
    """Each outline as (label, shape, vertex bytes, name, area), sorted: the set of
    polygons and rows, whatever their order."""
    return sorted(
        (
            int(row.label),
            np.asarray(polygon).shape,
            np.ascontiguousarray(polygon, dtype=float).tobytes(),
            str(row.name),
            int(row.area),
        )
        for polygon, row in zip(outlines.polygons, outlines.table.itertuples(index=False))
    )


# ----------------------------------------------------------------------------- bad input
LABELS = np.array([[1, 1, 2], [2, 3, 3]], dtype=np.int32)
TABLE = pd.DataFrame(
    {
        "index": [1, 2, 3],
        "name": ["a", "b", "c"],
        "pixels": [2, 2, 2],
        "fraction": [0.3333] * 3,
        "mean_intensity": [1.0, 2.0, 3.0],
        "color": ["#000000", "#808080", "#ffffff"],
    }
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plan_merge(LABELS.astype(float), TABLE, [1, 2]), "labels: must hold integers"),
        (lambda: plan_merge(LABELS.tolist(), TABLE, [1, 2]), "labels: must be a numpy array"),
        (
            lambda: plan_merge(da.from_array(LABELS), TABLE, [1, 2]),
            "labels: must be a numpy array in memory",
        ),
        (lambda: plan_merge(-LABELS, TABLE, [1, 2]), "labels: must not be negative"),
        (lambda: plan_merge(LABELS, TABLE.to_dict(), [1, 2]), "table: must be a pandas DataFrame"),
        (
            lambda: plan_merge(LABELS, TABLE.drop(columns="index"), [1, 2]),
            "table: needs a column of label values",
        ),
        (
            lambda: plan_merge(LABELS, TABLE.drop(columns="pixels"), [1, 2]),
            "table: needs a 'pixels' column",
        ),
        (
            lambda: plan_merge(LABELS, pd.concat([TABLE, TABLE]), [1, 2]),
            "table: label 1 is listed twice",
        ),
        (lambda: plan_merge(LABELS, TABLE, [1]), "clusters: need at least 2 clusters"),
        (lambda: plan_merge(LABELS, TABLE, [1, 9]), "clusters: no cluster 9 in the table"),
        (lambda: plan_merge(LABELS, TABLE, [1, 1]), "clusters: cluster 1 is given twice"),
        (lambda: plan_merge(LABELS, TABLE, [1, "b"]), "clusters: must be cluster labels"),
        (lambda: plan_merge(LABELS, TABLE, [1, 2.5]), "clusters: must be cluster labels"),
        (
            lambda: plan_merge(LABELS, TABLE, [1, 2], image=np.zeros((3, 3))),
            "image: shape (3, 3) does not fit",
        ),
        (
            lambda: plan_merge(LABELS, TABLE, [1, 2], image=np.zeros((2, 3, 2))),
            "image: has 2 channels",
        ),
        (lambda: recount(TABLE, LABELS, image="pixels"), "image: must be a numpy array"),
        (lambda: rename_cluster(TABLE, 7, "x"), "cluster: no cluster 7"),
        (lambda: rename_cluster(TABLE, 1, 5), "name: must be text"),
        (lambda: recolor_clusters(TABLE, [1], "green"), "color: must be a hex color"),
        (lambda: recolor_clusters(TABLE, [1], (0, 2, 0)), "color: must be a hex color or 3"),
        (
            lambda: recolor_clusters(TABLE.drop(columns="color"), [1], "#fff"),
            "table: needs a 'color' column",
        ),
        (lambda: EditHistory(depth=0), "depth: must be a whole number of at least 1"),
        (lambda: EditHistory(max_bytes=-1), "max_bytes: must be a whole number"),
        (lambda: EditHistory().record("merge"), "edit: must be an Edit"),
        (lambda: LabelsChange.between(LABELS, LABELS[:1]), "after: shape (1, 3) differs"),
        (
            lambda: LabelsChange.relabel(LABELS, [2], 1).undo_in_place(LABELS[:1].copy()),
            "labels: shape (1, 3) is not the shape",
        ),
        (
            lambda: Outlines([np.zeros((3, 2))], pd.DataFrame({"label": []})),
            "outlines: 1 polygons but 0",
        ),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value).startswith(message), str(error.value)


def test_undo_of_a_labels_edit_needs_the_labels():
    history = EditHistory()
    labels = LABELS.copy()
    edit = plan_merge(labels, TABLE, [1, 2])
    edit.apply_in_place(labels)
    history.record(edit)
    with pytest.raises(ValueError, match=r"^labels: the merge of 2 into 1 changed labels"):
        history.undo()
    assert history.can_undo  # nothing was undone
    assert isinstance(history.undo(labels), Edit)
    np.testing.assert_array_equal(labels, LABELS)
