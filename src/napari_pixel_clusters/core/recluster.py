"""Cluster the clusters of a result again: split one into parts, merge similar ones.

Over-cluster, then merge; or split what a first run lumped together. Both are edits in
the sense of :mod:`.editing`: they are planned as an :class:`~.editing.Edit` (the changed
pixels, the table before and after), applied to the labels in place and undone exactly
through an :class:`~.editing.EditHistory`.

:func:`plan_split` re-clusters the pixels of one cluster, and only those, into
``n_clusters`` parts with the features the result was made with: it is
:func:`~.segment.segment` with ``mask=labels == cluster`` and the options of the
result's ``params`` (color space, standardize, spatial weight, stain vectors as
recorded, clean-up, random state), by the result's own method when it takes a number of
clusters (k-means, Gaussian mixture, Ward), else by k-means (superpixels). Starting
values tied to the first run's k (a mixture's ``means_init``) are left out. The largest
part keeps the cluster's label and name, the others get new labels after the largest
label there is (largest first); every part gets its exact mean and its mean color.

:func:`plan_merge_similar` merges clusters whose centers are close, down to
``n_clusters`` clusters: the center of a cluster is the mean of its pixels' features
(those of the result: e.g. L*a*b* and standardized), and the centers are joined by Ward
linkage weighted by the clusters' pixel counts (each merge is the one that adds least to
the total within-cluster sum of squares, as scikit-learn's and scipy's Ward on all those
pixels' centers would: :func:`similar_groups`). Each group is then merged into its first
cluster (in the table's order) with :func:`~.editing.plan_merge`, so means stay exact.
Clusters without pixels are left as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .editing import (
    FRACTION_DECIMALS,
    Edit,
    LabelsChange,
    check_clusters,
    check_labels,
    check_table,
    mean_columns,
    plan_merge,
    table_labels,
)
from .features import build_features
from .image import ImageData, arrange_channels, read_image
from .methods import METHODS, get_method
from .registry import Method
from .reproduce import SegmentCall, segment_call
from .result import Segmentation, display_colors, hex_colors
from .segment import segment


# --------------------------------------------------------------------------- split
def plan_split(
    labels: np.ndarray,
    table: pd.DataFrame,
    image: npt.ArrayLike,
    cluster: int,
    n_clusters: int,
    params: dict[str, Any],
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    method: str | None = None,
) -> Edit:
    """What splitting ``cluster`` into ``n_clusters`` parts changes; nothing is modified.
    (:func:`plan_split_parts` gives the parts' fit too.)

    Parameters
    ----------
    labels : ndarray of int
        The result's labels (0: no cluster).
    table : DataFrame
        Its cluster table (see :mod:`.editing`).
    image : array_like
        The image the result was made from, read as ``params`` records (``rgb``,
        ``channel_axis`` when given instead); its spatial shape is the labels'.
    cluster : int
        The label of the cluster to split.
    n_clusters : int
        How many parts (at least 2); fewer come out when its pixels hold fewer colors,
        or a clean-up joins parts.
    params : dict
        The result's params (``Segmentation.params``, a clusters layer's): the method,
        the features and every option (see :func:`~.reproduce.segment_call`).
    method : str, optional
        The method that splits (one that takes a number of clusters); default: the
        result's own if it takes one, else k-means.

    Returns
    -------
    Edit
        ``labels``: the parts' new labels; ``table_after``: the cluster's row for its
        largest part, a row per other part (after the others), each with its pixels,
        fraction, exact means and mean color. ``record``: ``{"edit": "split", ...}``.
    """
    return plan_split_parts(
        labels,
        table,
        image,
        cluster,
        n_clusters,
        params,
        rgb=rgb,
        channel_axis=channel_axis,
        method=method,
    ).edit


@dataclass(frozen=True, eq=False)
class SplitPlan:
    """A planned split (:func:`plan_split_parts`): the edit, the fit of the cluster's
    pixels (its labels 1..n are the parts) and the label each part gets (``part_labels[i]``
    for the fit's label ``i + 1``; the largest part keeps the cluster's)."""

    edit: Edit
    parts: Segmentation[np.ndarray]
    part_labels: list[int]
    call: SegmentCall
    cluster: int

    @property
    def labels_by_size(self) -> list[int]:
        """The parts' labels, largest part first: the cluster's, then the new ones (they
        were given in order of size)."""
        return sorted(self.part_labels, key=lambda label: (label != self.cluster, label))


def plan_split_parts(
    labels: np.ndarray,
    table: pd.DataFrame,
    image: npt.ArrayLike,
    cluster: int,
    n_clusters: int,
    params: dict[str, Any],
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    method: str | None = None,
) -> SplitPlan:
    """:func:`plan_split`, with the fit of the cluster's pixels and the parts' labels."""
    labels = check_labels(labels)
    column = check_table(table)
    (cluster,) = check_clusters([cluster], table, name="cluster")
    if not isinstance(n_clusters, (int, np.integer)) or isinstance(n_clusters, bool):
        raise ValueError(f"n_clusters: expected a whole number of parts, got {n_clusters!r}.")
    if n_clusters < 2:
        raise ValueError(f"n_clusters: a split needs at least 2 parts, got {n_clusters}.")
    call = split_call(params, method, rgb, channel_axis)
    _check_shape(image, labels, call)
    inside = labels == cluster
    if not inside.any():
        raise ValueError(f"cluster: cluster {cluster} has no pixels left to split.")
    parts = segment(
        image, call.method, int(n_clusters), mask=inside, **call.reading, **call.options
    )
    if parts.n_clusters < 2:
        raise ValueError(
            f"n_clusters: the pixels of cluster {cluster} came out as one cluster "
            f"({call.method}); nothing was split."
        )
    counts = parts.pixel_counts
    order = np.lexsort((np.arange(len(counts)), -counts))  # largest first, ties in order
    top = max(int(labels.max()), *table_labels(table))
    new = [top + i for i in range(1, len(order))]
    if labels.dtype.kind in "iu" and new[-1] > np.iinfo(labels.dtype).max:
        raise ValueError(
            f"labels: {labels.dtype} labels cannot hold label {new[-1]}; use labels of a "
            "wider dtype (e.g. labels.astype(np.int32))."
        )
    label_of_part = np.zeros(len(order) + 1, dtype=labels.dtype)
    label_of_part[order + 1] = [cluster, *new]
    split = labels.copy()
    split[inside] = label_of_part[parts.labels[inside]]
    colors = hex_colors(display_colors(parts.palette, _labelled_image(image, labels, call)))
    after = _split_table(table, column, cluster, new, order, counts, parts.palette, colors)
    description = f"split of {cluster} into {len(order)}"
    record: dict[str, Any] = {"edit": "split", "cluster": cluster, "n_clusters": int(n_clusters)}
    if method is not None:
        record["method"] = call.method
    change = LabelsChange.between(labels, split)
    edit = Edit(
        description, table.copy(), after, change if change.n_pixels else None, record=record
    )
    part_labels = [int(label) for label in label_of_part[1:]]
    return SplitPlan(edit, parts, part_labels, call, int(cluster))


def part_posteriors(plan: SplitPlan, image: npt.ArrayLike) -> np.ndarray:
    """``(*spatial, n)`` float32 posterior ``q_j`` of each part (columns in the order of
    :attr:`SplitPlan.labels_by_size`) at every pixel of ``image`` (the image split, read as
    the split read it): the split model's posteriors when its method gives them, else 1
    for the part whose cluster the split model gives the pixel (its labelling of every
    pixel), 0 for the others. Components of the split model that won no pixel are left
    out (each pixel's ``q`` is later divided by its sum: see
    :func:`~.probabilities.split_posteriors`). A ValueError starting ``method:`` when the
    split model cannot label other pixels."""
    model = plan.parts.model
    if model is None:
        raise ValueError(
            f"method: {plan.call.method!r} fits no model that labels other pixels; the "
            "posteriors of the parts cannot be computed."
        )
    reading = plan.call.reading
    predicted = model.predict(
        image, rgb=reading.get("rgb"), channel_axis=reading.get("channel_axis")
    )
    n = len(plan.part_labels)
    order = [plan.part_labels.index(label) for label in plan.labels_by_size]
    if model.predictor.probabilities_rows is not None:
        return np.ascontiguousarray(predicted.probabilities()[..., :n][..., order])
    fit_labels = np.asarray(predicted.labels)
    out = np.zeros((*fit_labels.shape, n), dtype=np.float32)
    for column, part in enumerate(order):
        out[..., column] = fit_labels == part + 1
    return out


def split_cluster(
    labels: np.ndarray,
    table: pd.DataFrame,
    image: npt.ArrayLike,
    cluster: int,
    n_clusters: int,
    params: dict[str, Any],
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
    method: str | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """New labels and table with ``cluster`` split into ``n_clusters`` parts (see
    :func:`plan_split`); ``labels`` and ``table`` are not modified."""
    edit = plan_split(
        labels,
        table,
        image,
        cluster,
        n_clusters,
        params,
        rgb=rgb,
        channel_axis=channel_axis,
        method=method,
    )
    out = labels.copy()
    return out, edit.apply_in_place(out)


def split_call(
    params: dict[str, Any],
    method: str | None = None,
    rgb: bool | None = None,
    channel_axis: int | None = None,
) -> SegmentCall:
    """The ``segment`` call that splits a cluster of the result of ``params``: its
    method (see :func:`plan_split`) and options, without starting values tied to k."""
    call = _read_as(segment_call(params), rgb, channel_axis)
    _check_clusters_result(call)
    chosen = _split_method(call, method)
    call = call.for_method(chosen.name)
    options = dict(call.options)
    for param in chosen.params:  # starting values of the first run's k components
        if param.allow_array and isinstance(options.get(param.name), (list, tuple, np.ndarray)):
            options[param.name] = param.default
    return replace(call, options=options)


def _split_method(call: SegmentCall, method: str | None) -> Method:
    if method is not None:
        chosen = get_method(method)
        if not (chosen.needs_n_clusters and chosen.output == "clusters"):
            raise ValueError(
                f"method: {chosen.name!r} takes no number of clusters and cannot split a "
                f"cluster into parts; use one of {', '.join(map(repr, _splitting()))}."
            )
        return chosen
    recorded = METHODS[call.method]
    return recorded if recorded in _splitting().values() else next(iter(_splitting().values()))


def _splitting() -> dict[str, Method]:
    """The methods that can split a cluster: they take a number of clusters and give
    clusters; the first (k-means) splits the results of the others."""
    return {
        name: m for name, m in METHODS.items() if m.needs_n_clusters and m.output == "clusters"
    }


def _read_as(call: SegmentCall, rgb: bool | None, channel_axis: int | None) -> SegmentCall:
    if rgb is None and channel_axis is None:
        return call
    return replace(call, rgb=rgb, channel_axis=channel_axis)


def _check_clusters_result(call: SegmentCall) -> None:
    method = METHODS[call.method]
    if method.output != "clusters":
        raise ValueError(
            f"params: a {method.title} result holds {method.output}, not clusters; only "
            "clusters can be split or merged by similarity."
        )


def _check_shape(image: npt.ArrayLike, labels: np.ndarray, call: SegmentCall) -> None:
    pixels, _, _ = arrange_channels(np.asarray(image), call.rgb, call.channel_axis)
    if pixels.shape[:-1] != labels.shape:
        raise ValueError(
            f"image: its pixels' shape {pixels.shape[:-1]} is not the labels' shape "
            f"{labels.shape}; give the image the result was made from."
        )


def _labelled_image(
    image: npt.ArrayLike, labels: np.ndarray, call: SegmentCall
) -> ImageData[np.ndarray]:
    """The image with the labelled pixels (labels above 0) as its usable pixels, as the
    result's own image data held them."""
    _check_shape(image, labels, call)
    return read_image(image, rgb=call.rgb, channel_axis=call.channel_axis, mask=labels > 0)


def _split_table(
    table: pd.DataFrame,
    column: str,
    cluster: int,
    new: list[int],
    order: np.ndarray,
    counts: np.ndarray,
    palette: np.ndarray,
    colors: list[str],
) -> pd.DataFrame:
    """The table after a split: ``cluster``'s row for part ``order[0]``, a copy of it for
    each other part (labels ``new``), with their pixels, fractions, means and colors."""
    rows = table.set_index(column)
    total = max(int(rows["pixels"].sum()), 1)
    means = mean_columns(table)
    base_name = str(rows.loc[cluster, "name"]) if "name" in rows.columns else ""
    for number, (label, part) in enumerate(zip([cluster, *new], order), start=1):
        if label != cluster:
            rows.loc[label] = rows.loc[cluster]
            if "name" in rows.columns:
                rows.loc[label, "name"] = (
                    f"cluster {label}"
                    if base_name == f"cluster {cluster}"
                    else f"{base_name} ({number})"
                )
        rows.loc[label, "pixels"] = int(counts[part])
        if "fraction" in rows.columns:
            rows.loc[label, "fraction"] = round(int(counts[part]) / total, FRACTION_DECIMALS)
        if means and len(means) == palette.shape[1]:
            rows.loc[label, means] = palette[part]
        if "color" in rows.columns:
            rows.loc[label, "color"] = colors[part]
    rows.index.name = column
    after = rows.reset_index()[list(table.columns)]
    return after.astype(table.dtypes.to_dict())


# --------------------------------------------------------------------------- merge similar
def plan_merge_similar(
    labels: np.ndarray,
    table: pd.DataFrame,
    image: npt.ArrayLike,
    n_clusters: int,
    params: dict[str, Any],
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
) -> Edit:
    """What merging similar clusters down to ``n_clusters`` changes; nothing is modified.

    The clusters' centers (mean features of their pixels, with the features of
    ``params``: :func:`cluster_centers`) are grouped by :func:`similar_groups`; each
    group is merged into its first cluster in the table's order (see
    :func:`~.editing.plan_merge`: it keeps its name and color, means stay exact).
    Clusters without pixels are left as they are. ``image``, ``params``, ``rgb`` and
    ``channel_axis`` as for :func:`plan_split`. ``record``: ``{"edit": "merge similar",
    "n_clusters": n}``. (:func:`plan_merge_similar_groups` gives the groups too.)
    """
    return plan_merge_similar_groups(
        labels, table, image, n_clusters, params, rgb=rgb, channel_axis=channel_axis
    )[0]


def plan_merge_similar_groups(
    labels: np.ndarray,
    table: pd.DataFrame,
    image: npt.ArrayLike,
    n_clusters: int,
    params: dict[str, Any],
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
) -> tuple[Edit, list[list[int]]]:
    """:func:`plan_merge_similar`, with the labels of each group merged (two or more;
    the first is the one the others are merged into)."""
    labels = check_labels(labels)
    check_table(table)
    call = _read_as(segment_call(params), rgb, channel_axis)
    _check_clusters_result(call)
    clusters = np.asarray(table_labels(table), dtype=np.int64)
    data = _labelled_image(image, labels, call)
    centers, counts = cluster_centers(labels, data, clusters, call)
    filled = counts > 0
    n_filled = int(filled.sum())
    if not isinstance(n_clusters, (int, np.integer)) or isinstance(n_clusters, bool):
        raise ValueError(f"n_clusters: expected a whole number of clusters, got {n_clusters!r}.")
    if not 1 <= n_clusters < n_filled:
        raise ValueError(
            f"n_clusters: must be from 1 to {n_filled - 1} (fewer than the {n_filled} "
            f"clusters with pixels), got {n_clusters}."
        )
    groups = similar_groups(centers[filled], counts[filled], int(n_clusters))
    present = clusters[filled]
    merged_labels, merged_table = labels.copy(), table
    merged: list[list[int]] = []
    for group in groups:
        if len(group) > 1:
            members = [int(label) for label in present[np.sort(group)]]
            merge = plan_merge(merged_labels, merged_table, members, dtype=data.pixels.dtype)
            merged_table = merge.apply_in_place(merged_labels)
            merged.append(members)
    change = LabelsChange.between(labels, merged_labels)
    edit = Edit(
        f"merge of similar clusters down to {n_clusters}",
        table.copy(),
        merged_table.copy(),
        change if change.n_pixels else None,
        record={"edit": "merge similar", "n_clusters": int(n_clusters)},
    )
    return edit, merged


def merge_similar(
    labels: np.ndarray,
    table: pd.DataFrame,
    image: npt.ArrayLike,
    n_clusters: int,
    params: dict[str, Any],
    *,
    rgb: bool | None = None,
    channel_axis: int | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """New labels and table with similar clusters merged down to ``n_clusters`` (see
    :func:`plan_merge_similar`); ``labels`` and ``table`` are not modified."""
    edit = plan_merge_similar(
        labels, table, image, n_clusters, params, rgb=rgb, channel_axis=channel_axis
    )
    out = labels.copy()
    return out, edit.apply_in_place(out)


def cluster_centers(
    labels: np.ndarray, data: ImageData[np.ndarray], clusters: np.ndarray, call: SegmentCall
) -> tuple[np.ndarray, np.ndarray]:
    """``(len(clusters), F)`` mean feature vector of each cluster's pixels and their
    ``(len(clusters),)`` pixel counts, with the features of ``call`` (color space, the
    method's own when empty; standardize; spatial weight; stain vectors) computed on the
    usable pixels of ``data``. A cluster without pixels has a center of zeros."""
    options = call.options
    color_space = options.get("color_space")
    if color_space is None and data.is_color:
        color_space = METHODS[call.method].default_color_space
    features = build_features(
        data,
        color_space=color_space,
        spatial_weight=options.get("spatial_weight", 0.0),
        standardize=options.get("standardize", False),
        stain_vectors=options.get("stain_vectors"),
        **(
            {"stain_background": options["stain_background"]}
            if "stain_background" in options
            else {}
        ),
    )
    pixel_labels = labels[data.mask]
    order = np.argsort(clusters)
    found = np.minimum(np.searchsorted(clusters[order], pixel_labels), len(clusters) - 1)
    known = clusters[order][found] == pixel_labels
    position = order[found][known]
    rows = np.flatnonzero(known) if features.inverse is None else features.inverse[known]
    counts = np.bincount(position, minlength=len(clusters)).astype(np.int64)
    centers = np.zeros((len(clusters), features.X.shape[1]))
    for f in range(features.X.shape[1]):
        sums = np.bincount(position, weights=features.X[rows, f], minlength=len(clusters))
        centers[:, f] = sums / np.maximum(counts, 1)
    return centers, counts


def similar_groups(
    centers: npt.ArrayLike, weights: npt.ArrayLike, n_groups: int
) -> list[np.ndarray]:
    """Indices of ``centers`` grouped into ``n_groups`` by Ward linkage, each center
    counted ``weights`` times (pixel counts): the groups scipy's
    ``linkage(points, "ward")`` cut at ``n_groups`` gives for points that repeat each
    center that many times. Groups are sorted by their first index."""
    centers = np.asarray(centers, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if centers.ndim != 2 or len(weights) != len(centers) or not len(centers):
        raise ValueError(
            f"centers: expected one row per weight, got shapes {centers.shape} and "
            f"{weights.shape}."
        )
    if not np.all(weights > 0):
        raise ValueError("weights: every center needs a positive weight (pixel count).")
    if not 1 <= n_groups <= len(centers):
        raise ValueError(f"n_groups: must be from 1 to {len(centers)}, got {n_groups}.")
    merges = ward_merges(centers, weights)
    merges.sort(key=lambda merge: merge[0])  # stable: a merge's parts come before it
    parent = list(range(len(centers)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _, first, second in merges[: len(centers) - n_groups]:
        parent[root(int(second[0]))] = root(int(first[0]))
    roots = np.array([root(i) for i in range(len(centers))])
    groups = [np.flatnonzero(roots == r) for r in dict.fromkeys(roots.tolist())]
    return sorted(groups, key=lambda group: int(group[0]))


def ward_merges(
    centers: np.ndarray, weights: np.ndarray
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Every merge of weighted Ward linkage: ``(height, members, members)``, the height
    in scipy's units (``sqrt(2 w_a w_b / (w_a + w_b)) * |c_a - c_b|``), in the order the
    nearest-neighbour chain finds them (O(n²) time, O(n) memory)."""
    centers = centers.copy()
    weights = weights.copy()
    members = [np.array([i]) for i in range(len(centers))]
    active = np.ones(len(centers), dtype=bool)
    merges: list[tuple[float, np.ndarray, np.ndarray]] = []
    chain: list[int] = []
    remaining = len(centers)
    while remaining > 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        cost = 2 * weights[a] * weights / (weights[a] + weights)
        distance = cost * ((centers - centers[a]) ** 2).sum(axis=1)
        distance[~active] = np.inf
        distance[a] = np.inf
        b = int(np.argmin(distance))
        if len(chain) > 1 and distance[chain[-2]] <= distance[b]:
            b = chain[-2]  # ties go back down the chain: it always ends
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            merges.append((math.sqrt(distance[b]), members[a], members[b]))
            total = weights[a] + weights[b]
            centers[a] = (weights[a] * centers[a] + weights[b] * centers[b]) / total
            weights[a] = total
            members[a] = np.concatenate([members[a], members[b]])
            active[b] = False
            remaining -= 1
        else:
            chain.append(b)
    return merges
