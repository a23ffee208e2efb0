"""Does panning a lazy result in napari stay interactive? Freezes while panning, measured.

    xvfb-run -a python benchmarks/lazy_panning.py [--side 51200] [--steps 30]

Opens a lazy multiscale RGB "slide" (the astronaut tiled to side x side, never in memory
whole), runs k-means (k=8, Lab) in the Pixel clusters widget, then pans across the image
at full resolution, one chunk (512 px) per step, twice: with only the slide shown, and
with the slide and its clusters and quantized result layers shown. Every chunk that comes
on screen is labelled when napari asks for it. A 10 ms heartbeat on the GUI thread
measures how long the interface freezes, while the widget runs and while panning; the
ratio of the two panning runs is what the lazy results add to panning the image itself.
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from skimage import data

INTERVAL_MS = 10
CHUNK = 512


def camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9)."""
    return getattr(viewer, "scene", viewer).camera


def pyramid(side: int) -> list:
    tile = da.from_array(data.astronaut(), chunks=(CHUNK, CHUNK, 3))
    full = da.tile(tile, (side // 512, side // 512, 1))
    levels = [full]
    while levels[-1].shape[0] > 1024:
        levels.append(full[:: 2 ** len(levels), :: 2 ** len(levels)].rechunk((CHUNK, CHUNK, 3)))
    return levels


def settle(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


def pan(viewer, steps: int) -> np.ndarray:
    """Heartbeat gaps (ms) while panning ``steps`` chunks to the right at zoom 1."""
    y, x = viewer.layers["slide"].data[0].shape[:2]
    camera(viewer).zoom = 1.0
    camera(viewer).center = (y / 3, x / 3)
    settle(1.0)
    beats = []
    timer = QTimer()
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start(INTERVAL_MS)
    for step in range(1, steps + 1):
        camera(viewer).center = (y / 3, x / 3 + step * CHUNK)
        settle(0.25)
    timer.stop()
    return np.diff(beats) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=51200)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    levels = pyramid(args.side)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1400, 900)
    viewer.add_image(levels, name="slide", rgb=True, multiscale=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    widget._n_clusters.value = 8
    widget._feature_widgets["color_space"].value = "lab"
    settle(1.0)
    print(
        f"slide {levels[0].shape} ({levels[0].nbytes / 1e9:.1f} GB of pixels, "
        f"{len(levels)} levels); clustering...",
        flush=True,
    )
    beats = []
    timer = QTimer()
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start(INTERVAL_MS)
    started = time.perf_counter()
    widget._run_button.native.click()
    while widget._worker is not None:
        QApplication.processEvents()
        time.sleep(0.001)
    timer.stop()
    during = np.diff([started, *beats]) * 1000
    print(
        f"  {widget._status.value} (wall {time.perf_counter() - started:.0f} s); while "
        f"it ran, the longest freeze was {during.max():.0f} ms (99th percentile "
        f"{np.percentile(during, 99):.0f} ms)"
    )

    results = [layer for layer in viewer.layers if layer.name != "slide"]
    for layer in results:
        layer.visible = False
    alone = pan(viewer, args.steps)
    for layer in results:
        layer.visible = True
    with_results = pan(viewer, args.steps)

    print(f"\npanning {args.steps} chunks at full resolution, one per 250 ms:")
    print("| shown | longest freeze (ms) | 95th percentile (ms) | median (ms) |")
    print("|---|---|---|---|")
    for name, gaps in (("slide only", alone), ("slide + clusters + quantized", with_results)):
        print(
            f"| {name} | {gaps.max():.0f} | {np.percentile(gaps, 95):.0f} | "
            f"{np.median(gaps):.0f} |"
        )
    print(f"longest freeze with results / slide only: {with_results.max() / alone.max():.1f}x")
    viewer.close()


if __name__ == "__main__":
    main()
