"""Live preview in Pixel clusters: while "preview" is on, every change of a setting
segments the current plane of the chosen image again and shows it in ONE Labels layer,
``<image> preview``, updated in place.

- **When.** Every change (the widget's controls, the plane on screen, the data of the
  image or of the "only inside" layer) restarts a single-shot timer of
  :data:`PREVIEW_DELAY_MS`; a run starts when it fires, so a burst of changes (typing a
  number, dragging a slider) gives one run. A change made while nothing is pending or
  running (the last change longer ago than the delay) starts at once instead: one click
  of k waits for no timer.
- **Cancelling.** Each change takes the next sequence number; the run it starts carries
  it. A change asks the running preview to quit (it stops at its next step) and a result
  whose number is not the newest is dropped, so a late result never replaces a newer one.
- **What.** The current plane only, in memory. A plane of more than
  :data:`PREVIEW_MAX_PIXELS` pixels (and any image read chunk by chunk: the coarsest
  pyramid level that is large enough, then every n-th pixel) is previewed on a
  decimated view, placed with the image's scale so that it overlays the image; the layer's
  name and the status line say so ("preview at 1/4 resolution"). Run still segments the
  whole image (or plane) and makes the final layers.
- **Where the work runs.** Reading the pixels, the mask, the fit and the layer's table and
  colors are made in a worker thread; the GUI thread only checks the choices and replaces
  the layer's data, colors and table.
- **Errors** (bad choices, k above the number of distinct colors, ...) go to the status
  line only: no notification, one per change would be a stream.

The preview layer carries the plugin's tag with ``output`` "preview": it is not a
clusters result (Cluster table, Run numbers and "replace previous result" ignore it),
and the "only inside" list marks it as the plugin's. It is removed when preview is turned
off or the widget closes; removing it by hand turns preview off.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox
from napari.layers import Labels
from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer

from ..core import segment_steps
from ..core.lazy import as_dask
from ..core.registry import Method
from ._panel import (
    STATUS_REASON_LENGTH,
    Failure,
    _QuietWorker,
    failure_of,
    guarded_steps,
    large_image_levels,
)
from .layers import (
    CLUSTERS_OPACITY,
    METADATA_KEY,
    cluster_features,
    narrowed_labels,
    random_colormap,
    recolor_clusters,
    table_colormap,
    with_color_texture,
)
from .masks import MaskPlan, plan_mask

#: A change starts a preview this long after the last change of a burst.
PREVIEW_DELAY_MS = 150
#: Planes with more pixels are previewed on a decimated view (512² = 262,144).
PREVIEW_MAX_PIXELS = 512 * 512
#: The ``output`` of the preview layer's tag.
PREVIEW_OUTPUT = "preview"


# ---------------------------------------------------------------------- what to preview
@dataclass
class PreviewRequest:
    """The widget's choices, read on the GUI thread (the widget's ``_preview_request``)."""

    layer: Any  # the image layer
    method: Method
    n_clusters: int | None
    options: dict[str, Any]
    mask_layer: Any = None  # "only inside": a Labels or Shapes layer, or None
    plane: tuple[int, ...] = ()  # index of the plane on screen (leading axes of a stack)
    random_colors: bool = False

    def key(self) -> tuple:
        """What the preview depends on: equal keys give the same preview."""
        return (
            id(self.layer),
            id(self.layer.data),
            self.method.name,
            self.n_clusters,
            repr(sorted(self.options.items())),
            id(self.mask_layer),
            self.plane,
        )


@dataclass
class PreviewView:
    """The pixels a preview segments: one plane, maybe decimated (every ``step``-th
    pixel of the full-size image along y and x), and where it sits in the world."""

    data: Any  # (h, w) or (h, w, channels); a dask array for an image read lazily
    rgb: bool
    plane: tuple[int, ...]
    step: tuple[float, float] = (1.0, 1.0)
    scale: tuple[float, float] = (1.0, 1.0)
    translate: tuple[float, float] = (0.0, 0.0)

    @property
    def reduction(self) -> float:
        """How many times coarser than the image (1: full resolution)."""
        return float(max(self.step))

    @property
    def resolution(self) -> str:
        """ "" at full resolution, else e.g. "1/4 resolution"."""
        if self.reduction <= 1:
            return ""
        return f"1/{self.reduction:.3g} resolution"

    def sample_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the full-size image the preview's pixels are."""
        height, width = self.data.shape[:2]
        rows = np.round(np.arange(height) * self.step[0]).astype(np.int64)
        cols = np.round(np.arange(width) * self.step[1]).astype(np.int64)
        return rows, cols


def _spatial(shape: tuple[int, ...], rgb: bool) -> tuple[int, ...]:
    return tuple(shape[:-1] if rgb else shape)


def preview_view(layer, plane: tuple[int, ...], max_pixels: int = PREVIEW_MAX_PIXELS):
    """The plane ``plane`` of the image layer as the preview segments it: in memory as it
    is up to ``max_pixels`` pixels, else every n-th pixel of it; for an image read chunk
    by chunk, the finest pyramid level with at most ``max_pixels`` per plane (else the
    coarsest, decimated). Only slices: nothing is read here (cheap on the GUI thread)."""
    rgb = bool(layer.rgb)
    levels = large_image_levels(layer) or [np.asarray(layer.data)]
    full = _spatial(levels[0].shape, rgb)
    small = [
        i
        for i, level in enumerate(levels)
        if math.prod(_spatial(level.shape, rgb)[-2:]) <= max_pixels
    ]
    level = levels[small[0] if small else len(levels) - 1]
    shape = _spatial(level.shape, rgb)
    factors = [f / s for f, s in zip(full, shape)]
    index = tuple(
        min(int(i / f), side - 1) for i, f, side in zip(plane, factors, shape[: len(plane)])
    )
    data = level[index] if index else level
    stride = max(1, math.ceil(math.sqrt(math.prod(shape[-2:]) / max_pixels)))
    data = data[::stride, ::stride]
    step = (factors[-2] * stride, factors[-1] * stride)
    scale = tuple(float(s) for s in layer.scale[-2:])
    return PreviewView(
        data=data,
        rgb=rgb,
        plane=tuple(plane),
        step=step,
        scale=(scale[0] * step[0], scale[1] * step[1]),
        translate=tuple(float(t) for t in layer.translate[-2:]),
    )


def preview_mask(plan: MaskPlan | None, view: PreviewView) -> np.ndarray | None:
    """In the worker: the "only inside" mask at the preview's pixels (None: none). At
    full resolution exactly what a run of that plane reads."""
    if plan is None:
        return None
    rows, cols = view.sample_points()
    if plan.labels is None:  # shapes: the polygons in the preview's pixel grid
        scaled = []
        for polygon in plan.polygons:
            polygon = np.array(polygon, dtype=float)
            polygon[:, -2] /= view.step[0]
            polygon[:, -1] /= view.step[1]
            scaled.append(polygon)
        grid = (*plan.grid_shape[:-2], len(rows), len(cols))
        mask = MaskPlan(plan.name, grid, polygons=scaled).read(view.plane)
        return mask.reshape(len(rows), len(cols))
    return _sampled_labels(plan, view.plane, rows, cols)


def _sampled_labels(plan: MaskPlan, plane: tuple[int, ...], rows, cols) -> np.ndarray:
    """Non-zero labels of a Labels plan at the full-size pixels (rows x cols) of
    ``plane``; the labels lie on the image's last axes at ``plan.offset``."""
    labels, offset = plan.labels, plan.offset
    out = np.zeros((len(rows), len(cols)), dtype=bool)
    lead = labels.ndim - 2  # label axes before y and x: axes of the plane index
    first = len(plan.grid_shape) - labels.ndim  # the image axis of the labels' first
    index = []
    for axis in range(lead):
        i = plane[first + axis] - offset[axis] if first + axis < len(plane) else 0
        if not 0 <= i < labels.shape[axis]:
            return out
        index.append(i)
    r, c = rows - offset[-2], cols - offset[-1]
    r_in = (r >= 0) & (r < labels.shape[-2])
    c_in = (c >= 0) & (c < labels.shape[-1])
    if not (r_in.any() and c_in.any()):
        return out
    sheet = labels[tuple(index)] if index else labels
    if not isinstance(sheet, np.ndarray):
        sheet = as_dask(sheet)
    picked = np.asarray(sheet[r[r_in]][:, c[c_in]])
    out[np.ix_(r_in, c_in)] = picked != 0
    return out


# ---------------------------------------------------------------------- in the worker
@dataclass
class PreviewJob:
    """One preview run: its sequence number, what to segment and how."""

    seq: int
    request: PreviewRequest
    view: PreviewView
    mask_plan: MaskPlan | None = None
    build_layer: bool = False  # no preview layer yet: make the napari layer in the worker


@dataclass
class PreviewContents:
    """What the preview layer shows: made in the worker, set on the GUI thread."""

    labels: np.ndarray
    features: Any
    colormap: Any
    opacity: float
    name: str
    scale: tuple[float, float]
    translate: tuple[float, float]
    metadata: dict
    status: str
    seconds: float = 0.0  # reading, mask and segment in the worker
    layer: Labels | None = field(default=None, repr=False)

    def layer_kwargs(self) -> dict:
        return {
            "name": self.name,
            "features": self.features,
            "colormap": self.colormap,
            "opacity": self.opacity,
            "scale": self.scale,
            "translate": self.translate,
            "metadata": self.metadata,
        }


def preview_steps(job: PreviewJob):
    """In the worker: read the view (a lazy image's chunks) and its mask, segment it
    (each step a point where a newer change stops it), make the layer's contents."""
    started = time.perf_counter()
    yield "read", 0.0
    view, request = job.view, job.request
    image = np.asarray(view.data)
    mask = preview_mask(job.mask_plan, view)
    seg = yield from segment_steps(
        image,
        request.method.name,
        request.n_clusters,
        rgb=view.rgb,
        mask=mask,
        **request.options,
    )
    contents = preview_contents(seg, job, time.perf_counter() - started)
    if job.build_layer:
        contents.layer = Labels(contents.labels, **contents.layer_kwargs())
    return contents


def _walk_preview(job: PreviewJob):
    """In the worker: ``(sequence number, contents or Failure)``."""
    outcome = yield from guarded_steps(preview_steps(job))
    return job.seq, outcome


def preview_contents(seg, job: PreviewJob, seconds: float) -> PreviewContents:
    """The preview layer's data, table, colors, name, placement and tag, and the status."""
    request, view = job.request, job.view
    method = request.method
    features = cluster_features(seg)
    edges = method.output != "clusters"
    colormap = (
        random_colormap() if request.random_colors and not edges else table_colormap(features)
    )
    at = f" at {view.resolution}" if view.resolution else ""
    labelled = int(np.sum(seg.pixel_counts)) if seg.n_clusters else 0
    if not labelled:
        found = f"nothing found. {method.empty_hint}".strip()
    elif edges:
        found = f"{labelled:,} edge pixels"
    else:
        found = f"{seg.n_clusters} clusters"
    name = f"{request.layer.name} preview" + (f" ({view.resolution})" if at else "")
    tag = {
        "output": PREVIEW_OUTPUT,
        "labels": method.output,  # "clusters" or "edges"
        "source_layer": request.layer.name,
        "plane": list(view.plane),
        "method": seg.method,
        "params": seg.params,
        "step": list(view.step),
        "random_colors": bool(request.random_colors and not edges),
    }
    labels = narrowed_labels(np.asarray(seg.labels))
    return PreviewContents(
        labels=labels,
        features=features,
        colormap=with_color_texture(colormap, labels.dtype),
        opacity=1.0 if edges else CLUSTERS_OPACITY,
        name=name,
        scale=view.scale,
        translate=view.translate,
        metadata={METADATA_KEY: tag},
        status=f"preview{at}: {method.title}, {found} ({seconds:.2f} s)",
        seconds=seconds,
    )


def failure_status(failure: Failure) -> str:
    """A failed preview in the status line: ``preview failed: <reason>``."""
    text = (failure.reason or failure.message).strip()
    reason = text.splitlines()[0] if text else "error"
    if len(reason) > STATUS_REASON_LENGTH:
        reason = reason[: STATUS_REASON_LENGTH - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"
    return f"preview failed: {reason}"


# ---------------------------------------------------------------------- on the GUI thread
def replace_contents(layer: Labels, contents: PreviewContents) -> None:
    """Put new contents into the preview layer: what changed only, the data last."""
    if tuple(layer.scale) != contents.scale:
        layer.scale = contents.scale
    if tuple(layer.translate) != contents.translate:
        layer.translate = contents.translate
    kind = layer.metadata.get(METADATA_KEY, {}).get("labels")
    if kind != contents.metadata[METADATA_KEY]["labels"]:
        layer.opacity = contents.opacity  # else the user's opacity stays
    layer.metadata = contents.metadata
    layer.features = contents.features
    layer.colormap = contents.colormap
    write_labels(layer, contents.labels)
    if layer.name != contents.name:
        layer.name = contents.name


def write_labels(layer: Labels, labels: np.ndarray) -> None:
    """New labels of the same size and type are copied into the layer's own array (a
    fraction of a millisecond): setting ``layer.data`` makes napari's viewer recompute its
    dimensions and vispy rebuild the layer's color table, 15-25 ms on the GUI thread. Only
    inside :func:`one_refresh`, which then shows them; other labels replace the data."""
    data = layer.data
    if (
        isinstance(data, np.ndarray)
        and data.shape == labels.shape
        and data.dtype == labels.dtype
        and data.flags.writeable
    ):
        np.copyto(data, labels)
    else:
        layer.data = labels


@contextlib.contextmanager
def one_refresh(layer: Labels, extent: bool = True):
    """Refresh the layer (slice, texture, thumbnail) once at the end instead of at every
    setter: a new colormap and new data each refresh it, which doubles the GUI thread's
    work. ``extent=False`` when the layer's size and place stay: its extent is not
    recomputed (which makes the viewer update its dimensions and every layer's
    transform). napari's ``Layer._block_refresh`` is private: without it, every setter
    refreshes as before, and once more at the end."""
    block = getattr(layer, "_block_refresh", contextlib.nullcontext)
    try:
        with block():
            yield
    finally:
        layer.refresh(extent=extent)


# ---------------------------------------------------------------------- the controller
class LivePreview:
    """The "preview" toggle and everything it does (see the module's docstring).

    ``read_request()`` gives the widget's choices (a ``ValueError`` when they cannot be
    used), ``show_status(text)`` writes the status line, ``run_going()`` says whether a
    Run is going: previews wait for it (call :meth:`run_finished` when it is over).
    """

    def __init__(
        self,
        viewer,
        read_request: Callable[[], PreviewRequest],
        show_status: Callable[[str], None],
        run_going: Callable[[], bool],
        delay_ms: int = PREVIEW_DELAY_MS,
        max_pixels: int = PREVIEW_MAX_PIXELS,
    ):
        self._viewer = viewer
        self._read_request = read_request
        self._show_status = show_status
        self._run_going = run_going
        self.max_pixels = max_pixels
        self.toggle = CheckBox(
            name="preview",
            value=False,
            text="preview",
            tooltip="Segment the plane on screen again at every change of a setting and "
            "show it in one layer '<image> preview' (large planes at a lower "
            "resolution, said in its name). Run still makes the final layers.",
        )
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._start)
        self.delay = delay_ms / 1000
        self._enabled = False
        self._wanted = 0  # sequence number of the newest change
        self._wanted_key: tuple | None = None
        self._last_change = -math.inf
        self._pending = False  # a run waits for the widget's Run to finish
        self._workers: list = []  # running previews (the newest last)
        self._layer: Labels | None = None
        self._removing = False
        self._status_text = ""  # what the preview last wrote in the status line
        self._watched_layers: list = []  # the image and the mask layer, followed
        self._watched: list = []  # their data events
        self._closed = False
        #: called on the GUI thread after each update of the layer (benchmarks, tests)
        self.updated: list[Callable[[PreviewContents], None]] = []
        self.toggle.changed.connect(self._toggled)
        viewer.dims.events.current_step.connect(self.changed)
        viewer.layers.events.removed.connect(self._layer_removed)

    # ------------------------------------------------------------------ state
    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def layer(self) -> Labels | None:
        """The preview layer, while it is in the viewer."""
        if self._layer is not None and self._layer in self._viewer.layers:
            return self._layer
        return None

    @property
    def busy(self) -> bool:
        """True while a change waits for its preview (timer, run or worker)."""
        return self._timer.isActive() or self._pending or bool(self._workers)

    def _toggled(self, on: bool):
        if on:
            self._enabled = True
            self.changed(force=True)
        else:
            self.stop()

    # ------------------------------------------------------------------ changes
    def changed(self, *args, force: bool = False):
        """A setting, the plane or the data changed: preview again (unless nothing the
        preview depends on changed)."""
        if not self._enabled:
            return
        try:
            key = self._read_request().key()
        except Exception:  # the run says why (status line)
            key = None
        if not force and key is not None and key == self._wanted_key:
            return
        self._wanted_key = key
        self._wanted += 1
        for worker in self._workers:
            worker.quit()  # stops at its next step; its result would be stale anyway
        now = time.perf_counter()
        idle = not self.busy and now - self._last_change > self.delay
        self._last_change = now
        if idle:
            self._timer.stop()
            self._start()
        else:
            self._timer.start()

    def _data_changed(self, *args):
        self.changed(force=True)

    def run_finished(self):
        """The widget's Run is over: start the preview that waited for it."""
        if self._pending and self._enabled:
            self._pending = False
            self._start()

    # ------------------------------------------------------------------ running
    def _start(self):
        if not self._enabled:
            return
        if self._run_going():
            self._pending = True
            return
        self._pending = False
        try:
            request = self._read_request()
            job = PreviewJob(
                seq=self._wanted,
                request=request,
                view=preview_view(request.layer, request.plane, self.max_pixels),
                mask_plan=plan_mask(request.mask_layer, request.layer),
                build_layer=self.layer is None,
            )
        except Exception as error:  # bad choices: the status line says why
            self._status(failure_status(failure_of(error)))
            return
        self._watch(request.layer, request.mask_layer)
        worker = create_worker(_walk_preview, job, _worker_class=_QuietWorker, _ignore_errors=True)
        worker.returned.connect(self._arrived)
        worker.finished.connect(lambda worker=worker: self._finished(worker))
        self._workers.append(worker)
        worker.start()

    def _finished(self, worker):
        with contextlib.suppress(ValueError):
            self._workers.remove(worker)

    def _arrived(self, result):
        seq, outcome = result
        if not self._enabled or seq != self._wanted:
            return  # stale: a newer change is on its way, or preview is off
        if isinstance(outcome, Failure):
            self._status(failure_status(outcome))
            return
        self._show(outcome)
        for callback in self.updated:
            callback(outcome)

    def _show(self, contents: PreviewContents):
        """Put the contents into the preview layer (made now if there is none)."""
        layer = self.layer
        if layer is None:
            layer = contents.layer or Labels(contents.labels, **contents.layer_kwargs())
            selected = self._viewer.layers.selection.active
            self._layer = layer  # napari gives plugins a proxy of it: keep our own
            self._viewer.add_layer(layer)
            if selected is not None and selected in self._viewer.layers:
                self._viewer.layers.selection.active = selected
        else:
            moved = (
                layer.data.shape != contents.labels.shape
                or tuple(layer.scale) != contents.scale
                or tuple(layer.translate) != contents.translate
            )
            with one_refresh(layer, extent=moved):
                replace_contents(layer, contents)
        self._status(contents.status)

    def _status(self, text: str):
        if self._run_going():
            return  # the run's progress owns the status line meanwhile
        self._status_text = text
        with contextlib.suppress(RuntimeError):  # the widget was closed
            self._show_status(text)

    def recolor(self, random_colors: bool):
        """Show the preview's clusters in napari's random colors or in their own (edges
        keep their one color)."""
        layer = self.layer
        if layer is not None and layer.metadata[METADATA_KEY].get("labels") == "clusters":
            recolor_clusters(layer, random_colors)

    # ------------------------------------------------------------------ watching data
    def _watch(self, image, mask_layer):
        """Follow the data of the image and of the mask layer (drawing a new shape
        previews again)."""
        wanted = [layer for layer in (image, mask_layer) if layer is not None]
        if len(wanted) == len(self._watched_layers) and all(
            a is b for a, b in zip(wanted, self._watched_layers)
        ):
            return
        self._unwatch()
        self._watched_layers = wanted
        for layer in wanted:
            for name in ("data", "paint"):  # not set_data: it follows every refresh
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitter.connect(self._data_changed)
                    self._watched.append(emitter)

    def _unwatch(self):
        for emitter in self._watched:
            emitter.disconnect(self._data_changed)
        self._watched, self._watched_layers = [], []

    # ------------------------------------------------------------------ stopping
    def stop(self):
        """Preview off: nothing pending, running previews dropped, the layer removed."""
        self._enabled = False
        self._pending = False
        self._wanted += 1
        self._wanted_key = None
        self._timer.stop()
        for worker in self._workers:
            worker.quit()
        self._unwatch()
        layer, self._layer = self.layer, None
        if layer is not None:
            self._removing = True
            try:
                self._viewer.layers.remove(layer)
            finally:
                self._removing = False
        if self._status_text:
            with contextlib.suppress(RuntimeError):
                self._show_status("")
            self._status_text = ""
        with contextlib.suppress(RuntimeError):
            if self.toggle.value:
                self.toggle.value = False

    def close(self, *args):
        """The widget closed: stop and stop following the viewer (once)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # the viewer is closed already
            self.stop()
        self._viewer.dims.events.current_step.disconnect(self.changed)
        self._viewer.layers.events.removed.disconnect(self._layer_removed)

    def _layer_removed(self, event):
        # ==: the event may hold napari's proxy of the layer (equal to it, not it)
        if self._removing or self._layer is None or event.value != self._layer:
            return
        self._layer = None
        with contextlib.suppress(RuntimeError):
            self.toggle.value = False  # removed by hand: preview off


__all__ = ["PREVIEW_DELAY_MS", "PREVIEW_MAX_PIXELS", "LivePreview", "PreviewRequest"]
