"""Objects: the connected regions of chosen clusters as instance labels, with measurements.

:func:`make_objects` (``seg.objects(...)``) labels each connected region of each chosen
cluster as its own object (1..n, 0 for everything else; two touching regions of different
clusters stay two objects) with :func:`skimage.measure.label`, and measures them with
:func:`skimage.measure.regionprops_table`. The table has one row per object:

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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .editing import check_clusters, label_column

if TYPE_CHECKING:  # core/result.py imports this module: no import back at run time
    from .result import Segmentation


@dataclass
class Objects:
    """Instance labels and their measurements (see the module's documentation).

    Attributes
    ----------
    labels : ndarray of int32
        The image's spatial shape; objects 1..n, 0 for background.
    table : pandas.DataFrame
        One row per object, in label order.
    """

    labels: np.ndarray
    table: pd.DataFrame

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


def make_objects(
    seg: Segmentation[Any],
    clusters: int | Iterable[int],
    connectivity: int | None = None,
    scale: float | Sequence[float] = 1.0,
    table: pd.DataFrame | None = None,
) -> Objects:
    """The connected regions of ``clusters`` in ``seg`` as :class:`Objects`.

    Parameters
    ----------
    seg : Segmentation
        A result in memory (lazy results are refused).
    clusters : int or iterable of int
        Labels of the clusters whose regions become objects (at least one).
    connectivity : int or None
        Neighbours that connect, as in :func:`skimage.measure.label`: 1 (edges only, 4 in
        2-D) up to the number of spatial axes (also corners, 8 in 2-D; the default).
    scale : float or sequence of float
        Pixel size along each spatial axis (one number for all), positive.
    table : pandas.DataFrame or None
        The cluster table that names the clusters (``name`` column) and says which exist,
        e.g. one edited in the Cluster table; default ``seg.table``.
    """
    if seg.is_lazy:
        raise ValueError(
            "objects need the labels in memory; compute the result first "
            "(np.asarray(seg.labels)) or segment an image in memory."
        )
    table = seg.table if table is None else table
    chosen = check_clusters(clusters, table)
    ndim = seg.labels.ndim
    connectivity = check_connectivity(connectivity, ndim)
    spacing = check_scale(scale, ndim)
    from skimage.measure import label as connected_components  # heavy: only when used

    kept = np.where(np.isin(seg.labels, chosen), seg.labels, 0)
    labels = connected_components(kept, background=0, connectivity=connectivity).astype(np.int32)
    return Objects(labels, measure(labels, seg, table, spacing))


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
    labels: np.ndarray, seg: Segmentation[Any], table: pd.DataFrame, spacing: np.ndarray
) -> pd.DataFrame:
    """The objects' table (see the module's documentation)."""
    from skimage.measure import regionprops_table  # heavy: only when used

    ndim = labels.ndim
    props = ["label", "area", "centroid", "bbox", "intensity_mean"]
    if ndim == 2:
        props.append("perimeter")
    found = regionprops_table(labels, intensity_image=seg.image.pixels, properties=props)
    cluster_of = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    cluster_of[labels.ravel()] = seg.labels.ravel()
    cluster = cluster_of[found["label"]]
    axes = axis_names(ndim)
    pixels = found["area"].astype(np.int64)
    out = pd.DataFrame(
        {
            "label": found["label"].astype(np.int32),
            "cluster": cluster,
            "cluster_name": cluster_names(cluster, table),
            "pixels": pixels,
            "area" if ndim == 2 else "volume": pixels * float(np.prod(spacing)),
        }
    )
    for i, axis in enumerate(axes):
        out[f"centroid_{axis}"] = found[f"centroid-{i}"] * spacing[i]
    if ndim == 2:
        isotropic = spacing[0] == spacing[1]
        out["perimeter"] = found["perimeter"] * spacing[0] if isotropic else np.nan
    for c, name in enumerate(seg.image.channel_names):
        out[f"mean_{name}"] = found[f"intensity_mean-{c}"]
    for i, axis in enumerate(axes):
        out[f"bbox_min_{axis}"] = found[f"bbox-{i}"]
    for i, axis in enumerate(axes):
        out[f"bbox_max_{axis}"] = found[f"bbox-{ndim + i}"]
    return out


def cluster_names(cluster: np.ndarray, table: pd.DataFrame) -> list[str]:
    """Each cluster's name from ``table``'s ``name`` column, else ``"cluster <n>"``."""
    if "name" not in table.columns:
        return [f"cluster {n}" for n in cluster]
    labels = table[label_column(table)].astype(int)
    names = dict(zip(labels, table["name"].astype(str), strict=True))
    return [names.get(int(n), f"cluster {n}") for n in cluster]
