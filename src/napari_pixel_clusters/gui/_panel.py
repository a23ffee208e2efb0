"""What every dock widget of the plugin shares: an image choice that follows the selected
layer (source images first; the plugin's own results are marked and never followed), a
Run button that becomes Cancel, a progress bar (busy while a step cannot report
progress), a status line, and a worker whose every failure becomes one notification and
a "failed" status, adding nothing.

Subclasses implement ``_start()``: read the choices, take the first step of the work
(which validates them) and hand the rest to ``_launch``. ``run()`` wraps it: an error
before the thread, in the thread, or while adding the result on the GUI thread is
reported once, the same way; the result of an image whose data changed (or that was
removed) during the run is dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.layers import Image, Labels
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QDockWidget, QFrame, QMainWindow, QSizePolicy

from ..core.lazy import as_dask, is_lazy
from .docking import keep_window_on_screen
from .layers import METADATA_KEY
from .session import prepare_session

if TYPE_CHECKING:
    import napari

STAGE_TEXT = {
    "mask": "reading the mask",
    "features": "computing features",
    "fit": "fitting",
    "predict": "labelling pixels",
    "edges": "finding edges",
    "layers": "building layers",
    "plane": "labelling planes",
    "scores": "scoring the sample",
    "done": "done",
}


LOG = logging.getLogger("napari_pixel_clusters")
NOT_ENOUGH_MEMORY = "Not enough memory for this run; use a smaller image or downscale."
#: The status line shows at most this many characters of the reason a run failed.
STATUS_REASON_LENGTH = 70


@dataclass
class Failure:
    """A run that stopped: the notification's message and a short reason for the status."""

    message: str
    reason: str = ""

    @property
    def status(self) -> str:
        text = (self.reason or self.message).strip()
        reason = text.splitlines()[0] if text else "error"
        if len(reason) > STATUS_REASON_LENGTH:
            reason = reason[: STATUS_REASON_LENGTH - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"
        return f"failed: {reason}"


def failure_of(error: BaseException) -> Failure:
    """What the user is told about ``error``.

    ValueError (bad input) and MemoryError are expected: their message is enough. Anything
    else is a bug: the notification names the exception's type and the traceback goes to
    the log (stderr unless logging is configured), never to a traceback dialog.
    """
    if isinstance(error, MemoryError):
        return Failure(NOT_ENOUGH_MEMORY, "not enough memory")
    if isinstance(error, ValueError):
        return Failure(str(error))
    kind = type(error).__name__
    LOG.error(
        "Pixel clusters: unexpected %s in a run",
        kind,
        exc_info=(type(error), error, error.__traceback__),
    )
    return Failure(
        f"Unexpected error ({kind}: {error}); nothing was changed. This is a bug "
        "in napari-pixel-clusters: its traceback is in the terminal (log).",
        f"unexpected {kind}",
    )


def notify_error(message: str) -> None:
    """One napari error notification (tests replace this to read the messages)."""
    show_error(message)


def clusters_layers(viewer) -> list:
    """(name, layer) of every clusters Labels layer made by this plugin."""
    return [
        (layer.name, layer)
        for layer in viewer.layers
        if isinstance(layer, Labels)
        and layer.metadata.get(METADATA_KEY, {}).get("output") == "clusters"
    ]


def clusters_layer_choice(viewer) -> ComboBox:
    """A choice of clusters layers that follows the viewer's layers and selection."""
    choice = ComboBox(
        name="layer",
        label="clusters",
        choices=lambda widget: clusters_layers(viewer),
        tooltip="A clusters layer made by Pixel clusters.",
    )

    def follow_active(event=None):
        active = viewer.layers.selection.active
        choice.reset_choices()
        if active is not None and active in [layer for _, layer in clusters_layers(viewer)]:
            choice.value = active

    for event in ("inserted", "removed", "reordered"):
        getattr(viewer.layers.events, event).connect(choice.reset_choices)
    viewer.layers.selection.events.active.connect(follow_active)
    follow_active()
    return choice


def is_result(layer) -> bool:
    """True for layers this plugin made (they carry its metadata)."""
    return METADATA_KEY in getattr(layer, "metadata", {})


#: A scrolling panel is never squeezed below this (the first rows stay in view).
SCROLLING_MIN_HEIGHT = 200
#: How the image list marks the plugin's own results (listed after the source images).
RESULT_MARK = " (result)"


class RunPanel(Container):
    """Base of the dock widgets: subclasses add their controls and implement ``run()``.

    With ``scrollable=True`` the controls sit in a scroll area: the dock can be shorter
    than the controls (a small screen, other docks below) and scrolls.
    """

    def __init__(self, viewer: napari.viewer.Viewer, scrollable: bool = False):
        super().__init__(labels=True, scrollable=scrollable)
        keep_window_on_screen(self.native)
        prepare_session()  # once per session: fast label colors, kernels warmed
        if scrollable:
            scroll = self.root_native_widget
            scroll._magic_widget = self
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setMinimumHeight(SCROLLING_MIN_HEIGHT)
        self._viewer = viewer
        self._worker = None
        self._cancelled = False
        self._run_image = None  # the image layer being read by the running worker
        self._run_image_data = None  # its data when the run started
        self._run_image_changed = False
        self._image = ComboBox(
            name="image",
            label="image",
            choices=self._image_layers,
            tooltip="The image layer to use (follows the selected layer).",
        )
        self._run_button = PushButton(name="run", text="Run")
        self._progress = ProgressBar(
            name="progress", label="", min=0, max=100, value=0, visible=False
        )
        self._status = Label(name="status", label=" ", value="")
        self._status.native.setWordWrap(True)
        self._status.native.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
        )
        # room for a status wrapped on two lines (a scroll area does not grow the row)
        lines = self._status.native.fontMetrics().lineSpacing()
        self._status.native.setMinimumHeight(2 * lines + 4)
        self._run_button.changed.connect(self._run_or_cancel)
        viewer.layers.selection.events.active.connect(self._follow_active_layer)
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._image.reset_choices)
        self.native.destroyed.connect(self._cancel_quietly)

    def _finish_layout(self):
        """Call at the end of a subclass's ``__init__``, after adding its controls."""
        self.extend([self._run_button, self._progress, self._status])
        if self.root_native_widget is not self._widget._mgui_get_native_widget():
            self._widget._mgui_get_native_widget().layout().addStretch(1)  # rows at the top
        self._follow_active_layer()

    # ------------------------------------------------------------------ the image
    @property
    def native(self):
        """The widget napari docks: the scroll area around the controls if scrollable."""
        return self.root_native_widget

    def _image_layers(self, widget=None):
        """Source images first, then the plugin's results (marked)."""
        images = [layer for layer in self._viewer.layers if isinstance(layer, Image)]
        return [(layer.name, layer) for layer in images if not is_result(layer)] + [
            (layer.name + RESULT_MARK, layer) for layer in images if is_result(layer)
        ]

    def _follow_active_layer(self, event=None):
        """Choose the selected image, unless it is one of our results (a quantized image
        is not what one means to cluster next): then the choice stays."""
        active = self._viewer.layers.selection.active
        self._image.reset_choices()
        if isinstance(active, Image) and not is_result(active) and self._worker is None:
            self._image.value = active

    def _chosen_image(self) -> Image:
        layer = self._image.value
        if layer is None:
            raise ValueError("Open an image first: there is no image layer to use.")
        return layer

    # ------------------------------------------------------------------ running
    def run(self):
        """Read the choices and start the run; the worker, or None if it did not start.

        Every error (bad choices, lack of memory, a bug) becomes one notification.
        """
        if self._worker is not None:
            notify_error("A run is going: wait for it to finish, or press Cancel.")
            return None
        try:
            return self._start()
        except Exception as error:  # every error is shown, none escapes
            self._fail(failure_of(error))
            return None

    def _start(self):  # pragma: no cover - every subclass implements it
        """Validate the choices, take the first step and return ``self._launch(...)``."""
        raise NotImplementedError

    def _run_or_cancel(self, event=None):
        if self._worker is not None:
            self.cancel()
        else:
            self.run()

    def _launch(self, first_step, steps: Generator, source: Image, on_result: Callable):
        """Walk ``steps`` (after ``first_step``, taken already) in a worker: progress bar,
        inputs disabled, Cancel; its result goes to ``on_result`` on the GUI thread, unless
        the run failed or ``source`` changed meanwhile."""
        worker = create_worker(
            _walk, first_step, steps, _worker_class=_QuietWorker, _ignore_errors=True
        )
        worker.errored.connect(self._errored)
        worker.yielded.connect(self._show_progress)
        worker.returned.connect(lambda result: self._deliver(result, on_result))
        worker.finished.connect(self._finish)
        self._worker, self._cancelled = worker, False
        self._watch_run_image(source)
        for widget in self:
            if widget not in (self._run_button, self._progress, self._status):
                widget.enabled = False
        self._run_button.text = "Cancel"
        self._progress.value, self._progress.visible = 0, True
        self._status.value = "starting"
        worker.start()
        return worker

    def _deliver(self, result, on_result):
        if self._cancelled or self._was_closed():
            return
        if isinstance(result, Failure):
            self._fail(result)
            return
        changed = self._run_image_change()
        if changed:
            self._fail(Failure(changed, "the image changed during the run"))
            return
        before = list(self._viewer.layers)
        try:
            on_result(result)
        except Exception as error:  # no half-added result, one notification
            self._restore_layers(before)
            self._fail(failure_of(error))

    def _errored(self, error):
        """An error that escaped the steps' guard (the worker's own): reported the same."""
        if not (self._cancelled or self._was_closed()):
            self._fail(failure_of(error))

    def _fail(self, failure: Failure):
        """One notification; the status line says the run failed and why."""
        with contextlib.suppress(RuntimeError):  # the widget was closed
            self._status.value = failure.status
        notify_error(failure.message)

    def _restore_layers(self, before: list):
        """The viewer's layers as they were in ``before`` (a result half added is removed,
        layers it replaced come back)."""
        layers = self._viewer.layers
        for layer in [layer for layer in layers if layer not in before]:
            layers.remove(layer)
        for index, layer in enumerate(before):
            if layer not in layers:
                layers.insert(index, layer)

    # ------------------------------------------------------------------ the source
    def _watch_run_image(self, source: Image):
        self._run_image, self._run_image_data = source, source.data
        self._run_image_changed = False
        source.events.data.connect(self._run_image_data_set)

    def _run_image_data_set(self, event=None):
        self._run_image_changed = True

    def _unwatch_run_image(self):
        if self._run_image is not None:
            self._run_image.events.data.disconnect(self._run_image_data_set)
        self._run_image = self._run_image_data = None

    def _run_image_change(self) -> str:
        """Why the run's result no longer fits its image ('' when it does)."""
        layer = self._run_image
        if layer is None:
            return ""
        if layer not in self._viewer.layers:
            return f"'{layer.name}' was removed during the run; nothing was added."
        if self._run_image_changed or layer.data is not self._run_image_data:
            return (
                f"'{layer.name}': its data changed while the run was going; nothing "
                "was added. Run again."
            )
        return ""

    def cancel(self):
        """Stop the running worker at its next step; nothing will be added."""
        if self._worker is not None:
            self._cancelled = True
            self._status.value = "cancelling..."
            self._worker.quit()

    def _cancel_quietly(self, *args):
        if self._worker is not None:
            self._cancelled = True
            self._worker.quit()

    def _finish(self, *args):
        try:
            for widget in self:
                widget.enabled = True
            self._run_button.text = "Run"
            self._progress.max = 100
            self._progress.value, self._progress.visible = 0, False
            if self._cancelled:
                self._status.value = "cancelled: nothing was changed"
        except RuntimeError:  # the widget was closed during the run
            pass
        self._unwatch_run_image()
        self._worker = None

    def _show_progress(self, step):
        stage, fraction = step
        try:
            busy = self._busy_text(step)
            if busy:  # no progress until the next step: a busy (indeterminate) bar
                self._progress.max = 0
                self._status.value = busy
                return
            self._progress.max = 100
            self._progress.value = int(100 * fraction)
            self._status.value = STAGE_TEXT.get(stage, stage)
        except RuntimeError:  # the viewer was closed: stop at the next step
            self._cancel_quietly()

    def _busy_text(self, step) -> str | None:
        """What is being done after ``step`` when it reports no progress (subclasses)."""
        return None

    def _was_closed(self) -> bool:
        """True once the user closed the widget: napari un-parents it from the window."""
        try:
            top = self.native.window()
            return not isinstance(top, (QMainWindow, QDockWidget)) and not top.isVisible()
        except RuntimeError:  # its Qt side is already deleted (the viewer was closed)
            return True


class _QuietWorker(GeneratorWorker):
    """napari's generator worker without its own error dialog (with a traceback): the
    panel reports an error that escapes the steps' guard itself, once."""

    def _relay_error(self, exc):
        pass


def _walk(first_step, steps):
    """In the worker: the first step (taken on the GUI thread), then the rest, each a
    cancel point; returns their result, or a Failure."""
    yield first_step
    return (yield from guarded_steps(steps))


def guarded_steps(steps):
    """Walk a generator of steps; any error comes back as a Failure (see ``failure_of``)."""
    try:
        return (yield from steps)
    except Exception as error:  # reported to the user, never re-raised
        return failure_of(error)


def large_image_levels(layer) -> list | None:
    """The levels (dask arrays) of a multiscale or dask image, read chunk by chunk; None
    for an image in memory."""
    if not (layer.multiscale or is_lazy(layer.data)):
        return None
    return [as_dask(level) for level in (layer.data if layer.multiscale else [layer.data])]
