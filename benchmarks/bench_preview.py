"""Live preview latency in the Pixel clusters widget, against segmenting from scratch.

    xvfb-run -a python benchmarks/bench_preview.py [--changes 10] [--methods kmeans gmm]

Opens a real viewer with the astronaut (512² RGB), opens Pixel clusters and turns
"preview" on. For each method, changes k (5 <-> 6, ...) and the color space (rgb <-> lab)
``--changes`` times each, one change at a time as a person clicks (``--pause`` seconds
apart), and measures the latency from the change (the control's value set) to the preview
layer updated in place (its data, colors and table replaced on the GUI thread), and to the
next heartbeat after it (the canvas has had its turn to draw). Then ``--bursts`` bursts of
five changes 40 ms apart (a spin box's arrow held): latency from the last change of each.
A QTimer heartbeat every 10 ms runs on the GUI thread the whole time; the longest gap
between beats while previews run is the longest time the interface was frozen. After
each change, the obvious alternative with the same settings, in the same process (so
under the same load): ``segment`` from scratch on the full image (the compute alone, no
layer made; it runs on the GUI thread, outside the freeze windows). Also: the longest full
(generation-2) garbage collection on the GUI thread in each change's window (0: none; one
stops the GUI thread for the whole heap), and the freeze when preview is turned off (the
layer removed: napari runs a full ``gc.collect()`` on every layer removal).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from skimage import data, transform

import napari_pixel_clusters as npc

INTERVAL_MS = 10
TIMEOUT_S = 60.0


def pump(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


class Heartbeat:
    """Beats of a 10 ms QTimer on the GUI thread: the longest gap in a time window."""

    def __init__(self):
        self.beats: list[float] = []
        self.timer = QTimer()
        self.timer.timeout.connect(lambda: self.beats.append(time.perf_counter()))
        self.timer.start(INTERVAL_MS)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest gap between beats from the last beat before ``start`` (a freeze that
        began with a call made at ``start`` counts whole) to ``end``."""
        before = [b for b in self.beats if b < start][-1:]
        times = np.array(before + [b for b in self.beats if start <= b <= end])
        return float(np.diff(times).max(initial=0)) if len(times) > 1 else 0.0

    def next_beat(self, after: float) -> float:
        while not self.beats or self.beats[-1] <= after:
            QApplication.processEvents()
            time.sleep(0.0005)
        return next(b for b in self.beats if b > after)


class FullCollections:
    """Python's full (generation 2) garbage collections on the GUI thread: (start, seconds).
    One stops every thread for the whole heap (a few hundred thousand objects with napari
    loaded); napari runs one (``gc.collect()``) whenever a layer is removed."""

    def __init__(self):
        self.collections: list[tuple[float, float]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections.append((self._started, time.perf_counter() - self._started))

    def longest(self, start: float, end: float) -> float:
        return max((s for t, s in self.collections if start <= t <= end), default=0.0)


class Recorder:
    """When the preview layer was updated, how long it took on the GUI thread, and how
    long the worker took."""

    def __init__(self, preview):
        self.updates: list[tuple[float, float, float]] = []  # (done, gui seconds, worker s)
        self.preview = preview
        show = preview._show

        def timed_show(contents):
            started = time.perf_counter()
            show(contents)
            done = time.perf_counter()
            self.updates.append((done, done - started, contents.seconds))

        preview._show = timed_show

    def wait_for_update(self, count: int) -> tuple[float, float, float]:
        deadline = time.perf_counter() + TIMEOUT_S
        while len(self.updates) <= count:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no preview update; status: {self.preview._status_text!r}")
            QApplication.processEvents()
            time.sleep(0.0005)
        return self.updates[count]


def changes_of(widget, what: str, n: int):
    """n (control, value) pairs alternating between two values of k or color space."""
    if what == "k":
        return [(widget._n_clusters, 6 if i % 2 == 0 else 5) for i in range(n)]
    space = widget._feature_widgets["color_space"]
    return [(space, "lab" if i % 2 == 0 else "rgb") for i in range(n)]


def measure_changes(
    widget, recorder, beat, full_gc, image, what: str, n: int, pause: float
) -> dict:
    latencies, drawn, gui, worker, freeze, scratch, collected = [], [], [], [], [], [], []
    for control, value in changes_of(widget, what, n):
        count = len(recorder.updates)
        beat.next_beat(time.perf_counter())  # a beat after the last from-scratch run
        changed = time.perf_counter()
        control.value = value
        done, gui_s, worker_s = recorder.wait_for_update(count)
        latencies.append(done - changed)
        drawn.append(beat.next_beat(done) - changed)
        gui.append(gui_s)
        worker.append(worker_s)
        pump(pause)
        freeze.append(beat.longest_gap(changed, time.perf_counter()))
        collected.append(full_gc.longest(changed, time.perf_counter()))
        scratch.append(from_scratch(widget, image))
    return {
        "collected": collected,
        "latency": latencies,
        "drawn": drawn,
        "gui": gui,
        "worker": worker,
        "freeze": freeze,
        "scratch": scratch,
    }


def measure_bursts(widget, recorder, bursts: int, pause: float) -> list[float]:
    latencies = []
    for burst in range(bursts):
        values = [4, 5, 6, 7, 8] if burst % 2 == 0 else [7, 6, 5, 4, 3]
        count = len(recorder.updates)
        for value in values:
            widget._n_clusters.value = value
            last = time.perf_counter()
            pump(0.04)
        while widget._preview.busy:
            QApplication.processEvents()
            time.sleep(0.0005)
        assert len(recorder.updates) == count + 1, "one update per burst"
        latencies.append(recorder.updates[-1][0] - last)
        pump(pause)
    return latencies


def from_scratch(widget, image) -> float:
    """Seconds of ``segment`` on the full image with the widget's current settings."""
    method = widget.method
    k = widget._n_clusters.value if method.needs_n_clusters else None
    started = time.perf_counter()
    npc.segment(image, method.name, k, rgb=True, **widget._options())
    return time.perf_counter() - started


def ms(values) -> str:
    return f"{1000 * statistics.median(values):.0f} / {1000 * max(values):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--methods", nargs="+", default=["kmeans", "gmm"])
    parser.add_argument("--changes", type=int, default=10, help="changes of k, and of color")
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.4, help="seconds between changes")
    args = parser.parse_args()

    image = data.astronaut()
    if args.size != image.shape[0]:
        image = transform.resize(
            image, (args.size, args.size), order=1, preserve_range=True
        ).astype(np.uint8)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1440, 900)
    viewer.add_image(image, name="astronaut", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    pump(0.5)
    beat = Heartbeat()
    full_gc = FullCollections()
    recorder = Recorder(widget._preview)
    load = os.getloadavg()[0]
    rows = []
    for method in args.methods:
        widget._preview.toggle.value = False
        widget._method.value = method
        widget._n_clusters.value = 5
        widget._feature_widgets["color_space"].value = "rgb"
        npc.segment(image[:64, :64], method, 3, rgb=True)  # compiled kernels: not timed
        pump(0.3)
        started = time.perf_counter()
        widget._preview.toggle.value = True  # the layer is made: not part of the numbers
        recorder.wait_for_update(len(recorder.updates))
        first = time.perf_counter() - started
        first_gap = beat.longest_gap(started, beat.next_beat(time.perf_counter()))
        pump(args.pause)
        for what in ("k", "color space"):
            result = measure_changes(
                widget, recorder, beat, full_gc, image, what, args.changes, args.pause
            )
            widget._feature_widgets["color_space"].value = "rgb"
            widget._n_clusters.value = 5
            while widget._preview.busy:
                pump(0.01)
            pump(args.pause)
            rows.append((method, what, result))
        started = time.perf_counter()
        bursts = measure_bursts(widget, recorder, args.bursts, args.pause)
        gap = beat.longest_gap(started, time.perf_counter())
        off = time.perf_counter()
        widget._preview.toggle.value = False  # the layer removed
        pump(args.pause)
        off_gap = beat.longest_gap(off, time.perf_counter())
        print(
            f"{method}: first preview (layer made) {first:.2f} s, longest freeze then "
            f"{1000 * first_gap:.0f} ms; bursts of 5 changes 40 ms apart, last change -> "
            f"layer: {ms(bursts)} ms (median / max), longest freeze {1000 * gap:.0f} ms; "
            f"preview off (layer removed) froze {1000 * off_gap:.0f} ms, of which napari's "
            f"gc.collect() {1000 * full_gc.longest(off, time.perf_counter()):.0f} ms"
        )
    print(
        f"\n{args.size}² RGB astronaut, load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; ms, median / max of {args.changes} changes"
    )
    print(
        "| method | change | change -> layer updated | -> next beat (drawn) | worker | "
        "layer update (GUI thread) | longest freeze | full garbage collection | "
        "segment from scratch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for method, what, result in rows:
        print(
            f"| {method} | {what} | {ms(result['latency'])} | {ms(result['drawn'])} | "
            f"{ms(result['worker'])} | {ms(result['gui'])} | {ms(result['freeze'])} | "
            f"{ms(result['collected'])} | "
            f"{ms(result['scratch'])} |"
        )
    viewer.close()


if __name__ == "__main__":
    main()
