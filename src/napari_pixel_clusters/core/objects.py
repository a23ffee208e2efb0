"""Objects: the connected regions of chosen clusters as instance labels, with measurements.

``seg.objects(...)`` (:func:`label_objects` on a result) labels each connected region of
each chosen cluster as its own object (1..n, 0 for everything else; two touching regions
of different clusters stay two objects) with :func:`skimage.measure.label`, and measures them as
:func:`skimage.measure.regionprops_table` does (the same numbers, tested), with whole-image
array operations instead of one Python object per region: thousands of objects cost
tenths of a second and leave no garbage for Python's collector to pause on (a worker
thread of the napari GUI would freeze the interface meanwhile). The table has one row
per object:

``label``, ``cluster``, ``cluster_name``
    The object, the cluster it belongs to, and that cluster's name (the ``name`` column of
    the cluster table when it has one, else ``"cluster <n>"``).
``pixels``
    Its number of pixels (voxels in stacks).
``area`` (2-D) or ``volume`` (3-D and more)
    ``pixels`` times the product of ``scale``, in physical units.
``centroid_y``, ``centroid_x`` (``centroid_z`` first in stacks)
    In physical units: the pixel centroid times ``scale`` (pixel centers at whole numbers).
``perimeter``
    2-D only (the column is absent for stacks), scikit-image's perimeter times the pixel
    size; NaN when ``scale`` differs between the two axes (scikit-image measures
    perimeters with isotropic pixels only).
``mean_<channel>``
    The mean of the object's pixels per channel, named as in the cluster table
    (``mean_intensity`` for grey images, ``mean_R``, ``mean_G``, ``mean_B`` for RGB).
``bbox_min_y``, ``bbox_min_x``, ``bbox_max_y``, ``bbox_max_x``
    The bounding box in pixel indices (min inclusive, max exclusive, as slices take them).

:func:`label_objects` does the same from any cluster labels (e.g. a clusters layer edited
by hand) with or without the image (without it, no ``mean_`` columns), and
:func:`object_counts` counts the objects of every cluster at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .editing import check_clusters, check_labels, label_column
from .image import ImageData


@dataclass
class Objects:
    """Instance labels and their measurements (see the module's documentation).

    Attributes
    ----------
    labels : ndarray of int32
        The image's spatial shape; objects 1..n, 0 for background.
    table : pandas.DataFrame
        One row per object, in label order.
    params : dict
        How they were made: ``clusters``, ``connectivity`` and ``scale`` as used.
    """

    labels: np.ndarray
    table: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def to_csv(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write :attr:`table` as CSV to ``path``; an existing file is a ``ValueError``
        (starting with ``path:``) unless ``overwrite=True``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise ValueError(
                f"path: {path} exists already; choose another file or pass overwrite=True."
            )
        self.table.to_csv(path, index=False)
        return path


def label_objects(
    labels: np.ndarray,
    clusters: int | Iterable[int],
    table: pd.DataFrame,
    connectivity: int | None = None,
    scale: float | Sequence[float] = 1.0,
    image: ImageData[np.ndarray] | None = None,
) -> Objects:
    """The connected regions of ``clusters`` in cluster ``labels`` as :class:`Objects`.

    ``table`` is a cluster table (``label`` or ``index`` column, optional ``name``: a
    Labels layer's features will do) that says which clusters exist and names them;
    ``image`` (pixels of ``labels``' shape, channels last) gives the ``mean_`` columns,
    none without it. ``connectivity``: neighbours that connect, as in
    :func:`skimage.measure.label`: 1 (edges only, 4 in 2-D) up to the number of spatial
    axes (also corners, 8 in 2-D; the default). ``scale``: pixel size along each spatial
    axis (one number for all), positive.
    """
    labels = check_labels(labels)
    chosen = check_clusters(clusters, table)
    ndim = labels.ndim
    connectivity = check_connectivity(connectivity, ndim)
    spacing = check_scale(scale, ndim)
    if image is not None and image.spatial_shape != labels.shape:
        raise ValueError(
            f"image: its shape {image.spatial_shape} differs from the labels' {labels.shape}."
        )
    from skimage.measure import label as connected_components  # heavy: only when used

    kept = np.where(np.isin(labels, chosen), labels, 0)
    objects = connected_components(kept, background=0, connectivity=connectivity)
    objects = objects.astype(np.int32, copy=False)
    params = {"clusters": chosen, "connectivity": connectivity, "scale": spacing.tolist()}
    return Objects(objects, measure(objects, labels, table, spacing, image), params)


def object_counts(labels: np.ndarray, connectivity: int | None = None) -> np.ndarray:
    """How many objects (connected regions) each cluster of ``labels`` has: ``counts[c]``
    for cluster ``c`` (``counts[0]`` is 0), with ``connectivity`` as in
    :func:`make_objects`. One labelling pass over the whole image."""
    labels = check_labels(labels)
    connectivity = check_connectivity(connectivity, labels.ndim)
    size = int(labels.max(initial=0)) + 1
    if not labels.size:
        return np.zeros(size, dtype=np.int64)
    from skimage.measure import label as connected_components  # heavy: only when used

    # regions of different values are different components: one pass labels them all
    regions = connected_components(labels, background=0, connectivity=connectivity)
    cluster_of = np.zeros(int(regions.max()) + 1, dtype=np.int64)
    cluster_of[regions.ravel()] = labels.ravel()
    counts = np.bincount(cluster_of[1:], minlength=size)
    counts[0] = 0
    return counts


def check_connectivity(connectivity: int | None, ndim: int) -> int:
    if connectivity is None:
        return ndim
    if (
        isinstance(connectivity, (bool, np.bool_))
        or not isinstance(connectivity, (int, np.integer))
        or not 1 <= connectivity <= ndim
    ):
        raise ValueError(
            f"connectivity: must be a whole number from 1 to {ndim} (the number of spatial "
            f"axes), got {connectivity!r}."
        )
    return int(connectivity)


def check_scale(scale: float | Sequence[float], ndim: int) -> np.ndarray:
    try:
        spacing = np.broadcast_to(np.asarray(scale, dtype=float), (ndim,)).copy()
    except (TypeError, ValueError):
        raise ValueError(
            f"scale: must be one number or {ndim} numbers (one per spatial axis), got {scale!r}."
        ) from None
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise ValueError(f"scale: must be positive finite numbers, got {scale!r}.")
    return spacing


def axis_names(ndim: int) -> list[str]:
    """``y``, ``x`` (``z`` before them in stacks; ``axis<i>`` beyond three axes)."""
    return ["z", "y", "x"][-ndim:] if ndim <= 3 else [f"axis{i}" for i in range(ndim)]


def measure(
    objects: np.ndarray,
    clusters: np.ndarray,
    table: pd.DataFrame,
    spacing: np.ndarray,
    image: ImageData[np.ndarray] | None = None,
) -> pd.DataFrame:
    """The objects' table (see the module's documentation): ``objects`` are the instance
    labels, ``clusters`` the cluster labels they were made from."""
    ndim = objects.ndim
    flat = objects.ravel()
    size = int(objects.max(initial=0)) + 1
    counts = np.bincount(flat, minlength=size)
    found = np.flatnonzero(counts[1:]) + 1  # the labels present, in order
    pixels = counts[found]
    cluster_of = np.zeros(size, dtype=np.int64)
    cluster_of[flat] = clusters.ravel()
    cluster = cluster_of[found]
    axes = axis_names(ndim)
    out = pd.DataFrame(
        {
            "label": found.astype(np.int32),
            "cluster": cluster,
            "cluster_name": cluster_names(cluster, table),
            "pixels": pixels,
            "area" if ndim == 2 else "volume": pixels * float(np.prod(spacing)),
        }
    )
    for i, axis in enumerate(axes):
        shape = [1] * ndim
        shape[i] = objects.shape[i]
        index = np.broadcast_to(np.arange(objects.shape[i]).reshape(shape), objects.shape)
        sums = np.bincount(flat, weights=index.ravel(), minlength=size)[found]
        out[f"centroid_{axis}"] = sums / pixels * spacing[i]
    if ndim == 2:
        isotropic = spacing[0] == spacing[1]
        out["perimeter"] = perimeters(objects, size)[found] * spacing[0] if isotropic else np.nan
    if image is not None:
        values = image.pixels.reshape(-1, image.n_channels)
        for c, name in enumerate(image.channel_names):
            sums = np.bincount(flat, weights=values[:, c], minlength=size)[found]
            out[f"mean_{name}"] = sums / pixels
    low, high = bounding_boxes(objects, found)
    for i, axis in enumerate(axes):
        out[f"bbox_min_{axis}"] = low[:, i]
    for i, axis in enumerate(axes):
        out[f"bbox_max_{axis}"] = high[:, i]
    return out


def bounding_boxes(objects: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, ndim) first and past-the-last index of each label in ``found`` along each axis."""
    from scipy import ndimage

    boxes = ndimage.find_objects(objects)
    low = np.array([[s.start for s in boxes[label - 1]] for label in found], dtype=np.int64)
    high = np.array([[s.stop for s in boxes[label - 1]] for label in found], dtype=np.int64)
    shape = (len(found), objects.ndim)
    return low.reshape(shape), high.reshape(shape)


#: Weights of scikit-image's perimeter (Benkrid and Crookes) by the code of a border
#: pixel: 1 + 2 x its border neighbours across an edge + 10 x those across a corner.
PERIMETER_WEIGHTS = np.zeros(50)
PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2.0)
PERIMETER_WEIGHTS[[13, 23]] = (1.0 + np.sqrt(2.0)) / 2.0


def perimeters(objects: np.ndarray, size: int) -> np.ndarray:
    """The perimeter of every label of a 2-D label image (index = label), as
    :func:`skimage.measure.perimeter` (neighborhood 4) gives it for each label alone,
    which ``regionprops`` uses: a label's border pixels are those with a 4-neighbour of
    another label (or outside the image); each is weighted by how its border neighbours of
    the same label lie."""
    padded = np.pad(objects, 1)
    inner = padded[1:-1, 1:-1]
    edges = ((0, 1), (2, 1), (1, 0), (1, 2))
    corners = ((0, 0), (0, 2), (2, 0), (2, 2))
    rows, cols = objects.shape

    def around(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
        return array[dy : dy + rows, dx : dx + cols]

    border = inner > 0
    border &= np.logical_or.reduce([around(padded, dy, dx) != inner for dy, dx in edges])
    border_labels = np.pad(np.where(border, inner, 0), 1)
    code = np.ones(objects.shape, dtype=np.uint8)
    for step, offsets in ((2, edges), (10, corners)):
        for dy, dx in offsets:
            code += step * (around(border_labels, dy, dx) == inner).astype(np.uint8)
    return np.bincount(
        inner[border], weights=PERIMETER_WEIGHTS[code[border]], minlength=size
    ).astype(float)


def cluster_names(cluster: np.ndarray, table: pd.DataFrame) -> list[str]:
    """Each cluster's name from ``table``'s ``name`` column, else ``"cluster <n>"``."""
    if "name" not in table.columns:
        return [f"cluster {n}" for n in cluster]
    labels = table[label_column(table)].astype(int)
    names = dict(zip(labels, table["name"].astype(str), strict=True))
    return [names.get(int(n), f"cluster {n}") for n in cluster]
