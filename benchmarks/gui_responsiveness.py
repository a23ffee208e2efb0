"""How responsive napari stays while the Pixel clusters widget works.

    xvfb-run -a python benchmarks/gui_responsiveness.py [--size 4096] [--method kmeans]

Opens a real viewer with a size x size RGB image (the astronaut enlarged), presses Run in
the widget, and runs a QTimer heartbeat every 10 ms on the GUI thread meanwhile. Prints
how late the latest heartbeat was: the longest time the user interface was frozen.
"""

from __future__ import annotations

import argparse
import time

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from skimage import data, transform

INTERVAL_MS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--method", default="kmeans", choices=["kmeans", "gmm"])
    parser.add_argument("--clusters", type=int, default=8)
    args = parser.parse_args()

    image = transform.resize(data.astronaut(), (args.size, args.size), order=1,
                             preserve_range=True).astype(np.uint8)
    viewer = napari.Viewer()
    viewer.add_image(image, name="photo", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    widget._method.value = args.method
    widget._n_clusters.value = args.clusters
    for _ in range(20):  # let the first paint happen before measuring
        QApplication.processEvents()
        time.sleep(0.01)

    beats = []
    timer = QTimer()
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start(INTERVAL_MS)
    computed = []
    add_layers = widget._add_layers

    def timed_add_layers(*args):
        computed.append(time.perf_counter())
        add_layers(*args)

    widget._add_layers = timed_add_layers
    started = time.perf_counter()
    widget._run_button.native.click()
    while widget._worker is not None:
        QApplication.processEvents()
        time.sleep(0.001)
    finished = time.perf_counter()
    timer.stop()

    times = np.array([started, *beats, finished])
    gaps = np.diff(times) * 1000
    during = gaps[times[1:] <= computed[0]]
    after = gaps[times[1:] > computed[0]]  # napari creating and drawing the new layers
    print(f"{args.method} k={args.clusters} on {args.size}² RGB: run {finished - started:.2f} s, "
          f"{len(beats)} heartbeats every {INTERVAL_MS} ms")
    print(f"  while the worker computed ({computed[0] - started:.2f} s): longest gap "
          f"{during.max():.0f} ms, 99th percentile {np.percentile(during, 99):.0f} ms")
    print(f"  while the result layers were added ({finished - computed[0]:.2f} s): longest "
          f"gap {after.max():.0f} ms")
    viewer.close()


if __name__ == "__main__":
    main()
