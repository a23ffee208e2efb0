"""How responsive napari stays while the Pixel clusters widget works.

    xvfb-run -a python benchmarks/gui_responsiveness.py [--size 4096] [--method kmeans]
    xvfb-run -a python benchmarks/gui_responsiveness.py --size 512 --outlines

Opens a real viewer with a size x size RGB image (the astronaut resized), presses Run in
the widget, and runs a QTimer heartbeat every 10 ms on the GUI thread meanwhile, until the
new layers have been drawn. Prints the click-to-layers time (Run pressed -> result layers
in the viewer and drawn once) and how late the latest heartbeat was: the longest time the
user interface was frozen, while the worker computed and while the layers were added and
first drawn. ``--outlines`` adds the outlines (Shapes) layer too, at the widget's default
minimum area.
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
#: After the layers are added, keep beating this long so that their first draw is timed.
SETTLE_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--method", default="kmeans", choices=["kmeans", "gmm"])
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--outlines", action="store_true", help="add the outlines layer")
    parser.add_argument("--repeat", type=int, default=1, help="runs (the first warms up)")
    args = parser.parse_args()

    image = data.astronaut()
    if args.size != image.shape[0]:
        image = transform.resize(
            image, (args.size, args.size), order=1, preserve_range=True
        ).astype(np.uint8)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1440, 900)
    viewer.add_image(image, name="photo", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    widget._method.value = args.method
    widget._n_clusters.value = args.clusters
    widget._outputs["outlines"].value = args.outlines
    pump(0.3)  # let the first paint happen before measuring

    for run in range(1, args.repeat + 1):
        viewer.layers.selection.active = viewer.layers["photo"]
        timing = timed_run(widget)
        n_polygons = [
            len(layer.data)
            for layer in viewer.layers
            if layer.metadata.get("napari_pixel_clusters", {}).get("output") == "outlines"
        ]
        outlines = f", {n_polygons[-1]} outline polygons" if args.outlines else ""
        print(
            f"run {run}: {args.method} k={args.clusters} on {args.size}² RGB{outlines}: "
            f"click-to-layers {timing['total']:.2f} s"
        )
        print(
            f"  worker ({timing['worker']:.2f} s): longest GUI freeze "
            f"{timing['worker_gap']:.0f} ms, 99th percentile {timing['worker_p99']:.0f} ms"
        )
        print(
            f"  adding and first drawing the layers ({timing['adding']:.2f} s): longest "
            f"GUI freeze {timing['adding_gap']:.0f} ms"
        )
        print(f"  status line: {widget._status.value!r}")
    viewer.close()


def pump(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


def timed_run(widget) -> dict:
    """Press Run, beat until the layers are drawn; times in s, gaps in ms."""
    beats = []
    timer = QTimer()
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    computed, added = [], []
    add_layers = widget._add_layers

    def timed_add_layers(*args):
        computed.append(time.perf_counter())
        add_layers(*args)
        added.append(time.perf_counter())

    widget._add_layers = timed_add_layers
    timer.start(INTERVAL_MS)
    started = time.perf_counter()
    widget._run_button.native.click()
    while widget._worker is not None:
        QApplication.processEvents()
        time.sleep(0.001)
    # the canvas draws the new layers at the next paint: wait for the beats after it
    pump(SETTLE_S)
    timer.stop()
    widget._add_layers = add_layers
    times = np.array([started, *beats])
    gaps = np.diff(times) * 1000
    during = gaps[times[1:] <= computed[0]]
    after = gaps[times[1:] > computed[0]]
    # drawn: the first beat after the add that follows a normal interval
    after_added = times[times > added[0]]
    drawn = after_added[0] if len(after_added) else added[0]
    return {
        "total": drawn - started,
        "worker": computed[0] - started,
        "worker_gap": during.max(initial=0),
        "worker_p99": np.percentile(during, 99) if len(during) else 0,
        "adding": drawn - computed[0],
        "adding_gap": after.max(initial=0),
    }


if __name__ == "__main__":
    main()
