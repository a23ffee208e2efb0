"""Only inside: a Labels or Shapes layer as the mask of a run, in the image's pixel grid.

A Labels layer masks its non-zero pixels; a Shapes layer the pixels inside any of its
polygons, rectangles and ellipses (paths and lines enclose no pixels: they are left
out, as napari's ``Shapes.to_masks`` would only trace them). Both are mapped into the
image layer's data grid through the layers' world transforms:

- a Labels layer must lie on the image's grid: the same pixel size and orientation, shifted
  by whole pixels (the same layer extent, or e.g. a clusters layer of one plane of a
  stack); a mask with fewer axes than the image (a 2-D Labels layer over a stack) holds
  for every plane, as napari shows it. Anything else cannot be used pixel for pixel: a
  ``ValueError`` starting "only inside:" says why, and the widget shows it as one
  notification before anything runs;
- a Shapes layer's vertices are mapped into the image's data coordinates (any scale,
  translation or rotation) and rasterized there, as ``skimage.draw.polygon2mask`` (what
  napari's ``to_masks`` uses) does: pixels whose centers lie inside.

:func:`plan_mask` runs on the GUI thread and only checks and copies small things (the
layers' transforms, the shapes' vertices); :meth:`MaskPlan.read` makes the mask array (all
pixels of a large Labels layer, the rasterized shapes) and is called in the worker. For
images larger than memory the mask stays lazy: a dask array in the image's chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Labels, Shapes

from ..core.lazy import as_dask

WHOLE_IMAGE = "whole image"
#: Shapes that enclose pixels (paths and lines do not)
AREA_SHAPES = ("polygon", "rectangle", "ellipse")
#: Points on an ellipse's outline, as napari draws (and masks) it
ELLIPSE_SEGMENTS = 100
#: How far (in pixels) a Labels layer's grid may be from the image's and still match
GRID_TOLERANCE = 1e-3


# ---------------------------------------------------------------------- the choice
def mask_layers(viewer, result_mark: str = " (result)") -> list:
    """``(name, layer)`` of every Labels and Shapes layer: the plugin's own results last,
    marked (a clusters layer of an earlier run is a fine mask)."""
    from ._panel import is_result

    layers = [layer for layer in viewer.layers if isinstance(layer, (Labels, Shapes))]
    return [(layer.name, layer) for layer in layers if not is_result(layer)] + [
        (layer.name + result_mark, layer) for layer in layers if is_result(layer)
    ]


class _LayerOrNone(ComboBox):
    """A ComboBox whose None choice ("whole image") is a choice like the others: choosing
    it emits ``changed`` too (magicgui's emits nothing for None unless ``nullable``, which
    would add an empty entry)."""

    def _on_value_change(self, value=None) -> None:
        self.changed.emit(value)


def mask_choice(viewer) -> ComboBox:
    """The "only inside" control: "whole image" (None) or a Labels or Shapes layer; its
    list follows the viewer's layers (added, removed, moved, renamed)."""
    choice = _LayerOrNone(
        name="only_inside",
        label="only inside",
        choices=lambda widget: [(WHOLE_IMAGE, None), *mask_layers(viewer)],
        value=None,
        tooltip="Segment only the pixels inside a mask: a Labels layer (its non-zero "
        "pixels) or a Shapes layer (inside its polygons, rectangles and ellipses; paths "
        "and lines enclose nothing). Pixels outside get label 0 and take no part in the "
        "fit, the table or the scores.",
    )

    def follow_names(event=None):
        for layer in viewer.layers:
            layer.events.name.connect(choice.reset_choices)
        choice.reset_choices()

    for event in ("inserted", "removed", "reordered"):
        getattr(viewer.layers.events, event).connect(follow_names)
    follow_names()
    return choice


def layer_name(layer) -> str | None:
    """The name a result records for the mask it was made with (None: whole image)."""
    return None if layer is None else layer.name


# ---------------------------------------------------------------------- planning
@dataclass
class MaskPlan:
    """What :meth:`read` needs to make the mask of one run (small: made on the GUI thread).

    ``grid_shape`` is the image's spatial shape. A Labels plan holds the layer's
    ``labels`` array (not read yet) placed at ``offset`` on the image's last axes; a
    Shapes plan holds ``polygons``: each an ``(n, d)`` array of vertices in the image's
    data coordinates on its last ``d`` axes (d >= 2).
    """

    name: str
    grid_shape: tuple[int, ...]
    labels: Any = None
    offset: tuple[int, ...] = ()
    polygons: list[np.ndarray] = field(default_factory=list)

    def read(self, plane: tuple[int, ...] = ()) -> np.ndarray:
        """The mask (bool) over the image, or over one ``plane`` of a stack (the index of
        its leading axes) with a leading axis of length 1, as the widget segments it."""
        window = tuple(slice(i, i + 1) for i in plane) + tuple(
            slice(0, side) for side in self.grid_shape[len(plane) :]
        )
        mask = self.window(window)
        return mask.reshape((1, *self.grid_shape[-2:])) if plane else mask

    def lazy(self, chunks: tuple[tuple[int, ...], ...]) -> Any:
        """The mask as a dask array of the image's spatial ``chunks`` (images larger than
        memory): a Labels layer on the image's grid as it is, shapes rasterized per chunk."""
        import dask.array as da

        if self.labels is not None:
            trailing = self.grid_shape[len(self.grid_shape) - self.labels.ndim :]
            if any(self.offset) or tuple(self.labels.shape) != trailing:
                raise ValueError(
                    f"only inside: '{self.name}' covers only part of this large image (shape "
                    f"{tuple(self.labels.shape)} at {self.offset}, the image "
                    f"{self.grid_shape}); for an image read chunk by chunk the Labels layer "
                    "must have the image's own shape and place."
                )
            inside = as_dask(self.labels) != 0
            return da.broadcast_to(inside, self.grid_shape).rechunk(chunks)
        blank = da.zeros(self.grid_shape, dtype=bool, chunks=chunks)
        return blank.map_blocks(_shapes_block, self, dtype=bool)

    def window(self, window: tuple[slice, ...]) -> np.ndarray:
        """The mask over a box of the image grid (one slice per axis)."""
        if self.labels is not None:
            return _labels_window(self.labels, self.offset, window)
        return _shapes_window(self.polygons, window)


def _shapes_block(block: np.ndarray, plan: MaskPlan, block_info: dict) -> np.ndarray:
    location = block_info[0]["array-location"]
    return plan.window(tuple(slice(start, stop) for start, stop in location))


def plan_mask(mask_layer, image_layer) -> MaskPlan | None:
    """Check that ``mask_layer`` (Labels, Shapes or None) can mask ``image_layer`` and
    plan how to read it; a ``ValueError`` starting "only inside:" says why not."""
    if mask_layer is None:
        return None
    grid = spatial_shape(image_layer)
    if isinstance(mask_layer, Labels):
        return _plan_labels(mask_layer, image_layer, grid)
    if isinstance(mask_layer, Shapes):
        return _plan_shapes(mask_layer, image_layer, grid)
    raise ValueError(
        f"only inside: '{mask_layer.name}' is a {type(mask_layer).__name__} layer; choose a "
        "Labels or a Shapes layer."
    )


def spatial_shape(image_layer) -> tuple[int, ...]:
    """The image layer's data shape without its RGB axis (full size for a pyramid)."""
    data = image_layer.data[0] if image_layer.multiscale else image_layer.data
    return tuple(data.shape[:-1] if image_layer.rgb else data.shape)


def _to_image_grid(layer, image_layer, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)``: data coordinates p of ``layer`` (``ndim`` axes) -> the image layer's
    data coordinates ``b + A @ p`` (all its axes; those before the layer's last
    ``ndim`` are meaningless when the layer has fewer axes), through the world."""

    def to_image(point: np.ndarray) -> np.ndarray:
        world = np.asarray(layer.data_to_world(point), dtype=float)
        return np.asarray(image_layer.world_to_data(world), dtype=float)

    origin = to_image(np.zeros(ndim))
    columns = [to_image(np.eye(ndim)[axis]) - origin for axis in range(ndim)]
    return np.stack(columns, axis=1), origin


def _plan_labels(layer, image_layer, grid: tuple[int, ...]) -> MaskPlan:
    labels = layer.data[0] if layer.multiscale else layer.data
    n, nd = labels.ndim, len(grid)
    where = f"'{layer.name}' (shape {tuple(labels.shape)})"
    image = f"the image '{image_layer.name}' (shape {grid})"
    if n > nd:
        raise ValueError(
            f"only inside: {where} has more axes than {image}; choose a Labels layer drawn "
            "over this image."
        )
    A, b = _to_image_grid(layer, image_layer, n)
    A, b = A[nd - n :], b[nd - n :]  # the image axes the labels lie on
    offset = np.round(b)
    on_grid = np.allclose(A, np.eye(n), atol=GRID_TOLERANCE) and np.allclose(
        b, offset, atol=GRID_TOLERANCE
    )
    if not on_grid:
        raise ValueError(
            f"only inside: {where} does not lie on the pixel grid of {image}: their scale, "
            "translation or rotation differ by other than whole pixels, so its pixels are "
            "not the image's. Use a Labels layer made over this image (with the image "
            "selected, the new labels layer button), or a Shapes layer."
        )
    offset_ints = tuple(int(o) for o in offset)
    trailing = grid[nd - n :]
    if any(
        o >= side or o + size <= 0 for o, size, side in zip(offset_ints, labels.shape, trailing)
    ):
        raise ValueError(f"only inside: {where} lies outside {image}; nothing would be inside.")
    return MaskPlan(layer.name, grid, labels=labels, offset=offset_ints)


def _plan_shapes(layer, image_layer, grid: tuple[int, ...]) -> MaskPlan:
    nd = len(grid)
    kept = [
        np.asarray(vertices, dtype=float)
        for vertices, kind in zip(layer.data, layer.shape_type)
        if kind in AREA_SHAPES
    ]
    kinds = [kind for kind in layer.shape_type if kind in AREA_SHAPES]
    if not kept:
        raise ValueError(
            f"only inside: the Shapes layer '{layer.name}' has no polygon, rectangle or "
            "ellipse (paths and lines enclose no pixels); draw one around the pixels to "
            "segment."
        )
    A, b = _to_image_grid(layer, image_layer, layer.ndim)
    d = min(layer.ndim, nd)  # the image axes the shapes give coordinates on
    A, b = A[nd - d :], b[nd - d :]
    polygons = []
    for vertices, kind in zip(kept, kinds):
        mapped = vertices @ A.T + b
        polygons.append(_ellipse_outline(mapped) if kind == "ellipse" else mapped)
    return MaskPlan(layer.name, grid, polygons=polygons)


def _ellipse_outline(corners: np.ndarray) -> np.ndarray:
    """An ellipse given by the four corners of its box -> its outline, as napari's
    ``triangulate_ellipse`` draws it (the axes from consecutive corners)."""
    center = corners.mean(axis=0)
    axis1 = (corners[1] - corners[0]) / 2
    axis2 = (corners[2] - corners[1]) / 2
    theta = np.linspace(0, 2 * np.pi, ELLIPSE_SEGMENTS)[:-1]  # the last is the first
    return center + np.outer(np.cos(theta), axis1) + np.outer(np.sin(theta), axis2)


# ---------------------------------------------------------------------- reading
def _labels_window(labels: Any, offset: tuple[int, ...], window: tuple[slice, ...]) -> np.ndarray:
    """Non-zero labels over a box of the image grid: the labels lie on its last axes at
    ``offset``; axes before theirs take the same mask on every plane."""
    out = np.zeros(tuple(w.stop - w.start for w in window), dtype=bool)
    lead = len(window) - labels.ndim
    source, target = [], [slice(None)] * lead
    for axis, (o, size) in enumerate(zip(offset, labels.shape)):
        box = window[lead + axis]
        low, high = max(box.start, o), min(box.stop, o + size)
        if low >= high:
            return out
        source.append(slice(low - o, high - o))
        target.append(slice(low - box.start, high - box.start))
    out[tuple(target)] = np.asarray(labels[tuple(source)]) != 0
    return out


def _shapes_window(polygons: list[np.ndarray], window: tuple[slice, ...]) -> np.ndarray:
    """Pixels of a box of the image grid inside any polygon (their centers inside, as
    ``skimage.draw.polygon2mask``); a polygon with coordinates on axes before y and x
    (drawn on a plane of a stack) covers those planes only, else every plane."""
    from skimage.draw import polygon2mask

    out = np.zeros(tuple(w.stop - w.start for w in window), dtype=bool)
    top, left = window[-2].start, window[-1].start
    plane_shape = out.shape[-2:]
    for polygon in polygons:
        target = [slice(None)] * (len(window) - 2)
        lead = len(window) - polygon.shape[1]  # axes the polygon has no coordinate on
        for axis in range(lead, len(window) - 2):
            values = np.round(polygon[:, axis - lead])
            low = max(int(values.min()), window[axis].start)
            high = min(int(values.max()) + 1, window[axis].stop)
            if low >= high:
                break
            target[axis] = slice(low - window[axis].start, high - window[axis].start)
        else:
            plane = polygon2mask(plane_shape, polygon[:, -2:] - (top, left))
            out[(*target, Ellipsis)] |= plane
    return out


def read_mask(plan: MaskPlan | None, plane: tuple[int, ...], chunks=None) -> Any:
    """In the worker: the mask array of a run (None without a plan); lazy with the image's
    spatial ``chunks`` (an image read chunk by chunk)."""
    if plan is None:
        return None
    return plan.lazy(chunks) if chunks is not None else plan.read(plane)


def spatial_chunks(levels: list | None, rgb: bool) -> tuple | None:
    """The spatial chunks of a large image's full-size level (None: an image in memory)."""
    if not levels:
        return None
    chunks = levels[0].chunks
    return chunks[:-1] if rgb else chunks


def masked_steps(plan: MaskPlan, steps_with, plane: tuple[int, ...] = (), chunks=None):
    """In the worker: read the mask (a ``("mask", 0.0)`` step first), then walk
    ``steps_with(mask)`` (``segment_steps`` or ``sweep_steps`` with the mask); the
    result's params record the mask layer's name with what the run counted inside."""
    yield "mask", 0.0
    mask = read_mask(plan, plane, chunks)
    result = yield from steps_with(mask)
    record = result.params.get("mask")
    if isinstance(record, dict):
        record["layer"] = plan.name
    return result
