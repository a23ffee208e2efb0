"""What every dock widget of the plugin shares: an image choice that follows the selected
layer, a Run button that becomes Cancel, a progress bar, a status line, and a worker
whose expected failures become one plain notification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.layers import Image, Labels
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QDockWidget, QMainWindow

from ..core.lazy import as_dask, is_lazy
from .layers import METADATA_KEY

if TYPE_CHECKING:
    import napari

STAGE_TEXT = {
    "features": "computing features",
    "fit": "fitting",
    "predict": "labelling pixels",
    "edges": "finding edges",
    "layers": "building layers",
    "plane": "labelling planes",
    "done": "done",
}


@dataclass
class Failure:
    """A run that stopped on bad input or lack of memory: a message for the user."""

    message: str


def notify_error(message: str) -> None:
    """One napari error notification (tests replace this to read the messages)."""
    show_error(message)


def clusters_layers(viewer) -> list:
    """(name, layer) of every clusters Labels layer made by this plugin."""
    return [(layer.name, layer) for layer in viewer.layers
            if isinstance(layer, Labels)
            and layer.metadata.get(METADATA_KEY, {}).get("output") == "clusters"]


def clusters_layer_choice(viewer) -> ComboBox:
    """A choice of clusters layers that follows the viewer's layers and selection."""
    choice = ComboBox(name="layer", label="clusters",
                      choices=lambda widget: clusters_layers(viewer),
                      tooltip="A clusters layer made by Pixel clusters.")

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


class RunPanel(Container):
    """Base of the dock widgets: subclasses add their controls and implement ``run()``."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = viewer
        self._worker = None
        self._cancelled = False
        self._image = ComboBox(name="image", label="image", choices=self._image_layers,
                               tooltip="The image layer to use (follows the selected layer).")
        self._run_button = PushButton(name="run", text="Run")
        self._progress = ProgressBar(name="progress", label="", min=0, max=100, value=0,
                                     visible=False)
        self._status = Label(name="status", label=" ", value="")
        self._run_button.changed.connect(self._run_or_cancel)
        viewer.layers.selection.events.active.connect(self._follow_active_layer)
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._image.reset_choices)
        self.native.destroyed.connect(self._cancel_quietly)

    def _finish_layout(self):
        """Call at the end of a subclass's ``__init__``, after adding its controls."""
        self.extend([self._run_button, self._progress, self._status])
        self._follow_active_layer()

    # ------------------------------------------------------------------ the image
    def _image_layers(self, widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers
                if isinstance(layer, Image)]

    def _follow_active_layer(self, event=None):
        active = self._viewer.layers.selection.active
        if isinstance(active, Image) and self._worker is None:
            self._image.reset_choices()
            self._image.value = active

    def _chosen_image(self) -> Image:
        layer = self._image.value
        if layer is None:
            raise ValueError("Open an image first: there is no image layer to use.")
        return layer

    # ------------------------------------------------------------------ running
    def run(self):  # pragma: no cover - every subclass implements it
        raise NotImplementedError

    def _run_or_cancel(self, event=None):
        if self._worker is not None:
            self.cancel()
        else:
            self.run()

    def _launch(self, worker, on_result):
        """Wire ``worker`` to the progress bar and ``on_result``, disable inputs, start."""
        worker.yielded.connect(self._show_progress)
        worker.returned.connect(lambda result: self._deliver(result, on_result))
        worker.finished.connect(self._finish)
        self._worker, self._cancelled = worker, False
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
            self._status.value = "failed: nothing was changed"
            notify_error(result.message)
            return
        on_result(result)

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
            self._progress.visible = False
            if self._cancelled:
                self._status.value = "cancelled: nothing was changed"
        except RuntimeError:  # the widget was closed during the run
            pass
        self._worker = None

    def _show_progress(self, step):
        stage, fraction = step
        try:
            self._progress.value = int(100 * fraction)
            self._status.value = STAGE_TEXT.get(stage, stage)
        except RuntimeError:  # the viewer was closed: stop at the next step
            self._cancel_quietly()

    def _was_closed(self) -> bool:
        """True once the user closed the widget: napari un-parents it from the window."""
        try:
            top = self.native.window()
            return not isinstance(top, (QMainWindow, QDockWidget)) and not top.isVisible()
        except RuntimeError:  # its Qt side is already deleted (the viewer was closed)
            return True


def guarded_steps(steps):
    """Run a generator of steps in a worker; expected errors come back as a Failure.

    Anything else is a bug, and napari reports it with its traceback.
    """
    try:
        return (yield from steps)
    except MemoryError:
        return Failure("Not enough memory for this run; use a smaller image or downscale.")
    except ValueError as error:
        return Failure(str(error))


def large_image_levels(layer) -> list | None:
    """The levels (dask arrays) of a multiscale or dask image, read chunk by chunk; None
    for an image in memory."""
    if not (layer.multiscale or is_lazy(layer.data)):
        return None
    return [as_dask(level) for level in (layer.data if layer.multiscale else [layer.data])]
