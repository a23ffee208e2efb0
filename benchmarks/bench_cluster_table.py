"""How long the Cluster table's edits hold napari's GUI thread.

    xvfb-run -a python benchmarks/bench_cluster_table.py [--size 2048] [--method gmm --posteriors]

Opens a real viewer with a size x size RGB image (the astronaut resized), makes a result
with Pixel clusters (outlines included; ``--posteriors``: the probabilities and uncertainty
layers too), opens the Cluster table and times each edit as a person makes it: Rename,
Merge (two selected clusters), Undo, Redo, Split (the largest cluster into 2), Undo, Redo,
Merge similar (down to 2), Undo. A QTimer beats every 5 ms on the GUI thread meanwhile:
"longest freeze" is the longest time between two beats from the click until the edit is
shown (a worker's result applied) plus 200 ms for the redraw; "total" is click to shown.
Undo and Redo of Merge, Split and Merge similar run in a worker too (``widget.busy``).
Under Xvfb the canvas is drawn in software: a frame of a 2048² image holds the GUI
thread ~50-110 ms by itself (more on a loaded machine), part of every freeze here.
"""

from __future__ import annotations

import argparse
import time

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from skimage import data, transform

INTERVAL_MS = 5
SETTLE_S = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--method", default="kmeans", choices=["kmeans", "gmm"])
    parser.add_argument("--clusters", type=int, default=6)
    parser.add_argument("--posteriors", action="store_true")
    args = parser.parse_args()

    image = data.astronaut()
    if args.size != image.shape[0]:
        image = transform.resize(
            image, (args.size, args.size), order=1, preserve_range=True
        ).astype(np.uint8)
    viewer = napari.Viewer()
    viewer.add_image(image, name="photo", rgb=True)
    _, run = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    run._method.value = args.method
    run._n_clusters.value = args.clusters
    run._outputs["outlines"].value = True
    if args.posteriors:
        run._outputs["probabilities"].value = True
        run._outputs["uncertainty"].value = True
    run._run_button.native.click()
    wait(lambda: run._worker is None)
    pump(0.5)
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Cluster table")
    pump(0.5)
    largest = int(np.argmax(widget.features["pixels"]))
    steps = [
        ("Rename", lambda: widget.rename(widget._row_labels()[0], "renamed")),
        ("Merge", lambda: (widget.select_rows([1, 2]), widget.merge_selected())),
        ("Undo", widget.undo),
        ("Redo", widget.redo),
        ("Split", lambda: (widget.select_rows([largest]), widget.split_selected(2))),
        ("Undo", widget.undo),
        ("Redo", widget.redo),
        ("Merge similar", lambda: widget.merge_similar(2)),
        ("Undo", widget.undo),
    ]
    what = f"{args.method} k={args.clusters} on {args.size}² RGB"
    print(f"{what}{' with probabilities and uncertainty' if args.posteriors else ''}")
    for name, action in steps:
        freeze, total = timed(action, widget)
        print(f"  {name:14s} longest GUI freeze {freeze:7.0f} ms   total {total:7.0f} ms")
    widget._counts_timer.stop()  # closing while objects are counted aborted Python
    wait(lambda: widget._counts_worker is None)
    viewer.close()


def busy(widget) -> bool:
    return getattr(widget, "_edit_worker", None) is not None


def timed(action, widget) -> tuple[float, float]:
    beats: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start(INTERVAL_MS)
    started = time.perf_counter()
    action()
    wait(lambda: not busy(widget))
    done = time.perf_counter()
    pump(SETTLE_S)
    timer.stop()
    times = np.array([started, *beats])
    return float(np.diff(times).max(initial=0) * 1000), (done - started) * 1000


def wait(condition) -> None:
    while not condition():
        QApplication.processEvents()
        time.sleep(0.001)


def pump(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


if __name__ == "__main__":
    main()
