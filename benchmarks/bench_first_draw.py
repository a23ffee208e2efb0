"""napari's GUI freeze when a cluster Labels layer is added and first drawn, with and
without numba.

    xvfb-run -a python benchmarks/bench_first_draw.py [--size 2048] [--repeat 3]

napari maps label values to colors with numba when numba can be imported (a compiled
parallel loop over a numba typed dict), and with numpy otherwise. Our Ward loop needs
numba, so installing the package installs it for napari too. This measures what that
costs or saves the user: a size x size int32 image with 27 labels and a
``DirectLabelColormap`` of 27 colors (as our result layers have) is added to a viewer
while a 10 ms QTimer heartbeat runs on the GUI thread; the longest gap between beats is
the freeze. Each variant runs in its own process (the first layer in a process pays the
one-off costs: imports, numba's typed dict and kernels), ``--repeat`` times, medians:

* ``numba, first use``: numba importable, an empty numba cache (``NUMBA_CACHE_DIR``):
  napari's kernels are compiled, as on a machine's very first draw;
* ``numba``: numba importable, its cache warm (every later session);
* ``numba, numpy mapping``: numba importable, but napari's colormap backend set to
  "pure python" (Preferences > Experimental, or ``napari.utils.colormap_backend.set_backend``);
* ``no numba``: ``import numba`` fails (a ``sys.meta_path`` finder blocks it), as if it
  were not installed: napari uses numpy.

Each process adds two layers one after the other: the first draw, then a second layer
(everything loaded). The parent process must run under a display (``xvfb-run -a``); the
children inherit it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

INTERVAL_MS = 10
SETTLE_S = 0.6  # beats kept after the add, so that the first paint is inside the window
N_LABELS = 27


class BlockNumba:
    """A meta path finder that makes ``import numba`` (and its submodules) fail."""

    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ImportError(f"{name} is blocked by bench_first_draw.py")
        return None


def labels_image(size: int):
    """A size x size int32 image of 27 labels: the astronaut's grey levels in 27 bands."""
    import numpy as np
    from skimage import color, data, transform

    grey = color.rgb2gray(data.astronaut())
    grey = transform.resize(grey, (size, size), order=1)
    return (1 + np.minimum(grey * N_LABELS, N_LABELS - 1)).astype(np.int32)


def cluster_colormap():
    """27 colors, label 0 and unknown labels clear: like our result layers."""
    import numpy as np
    from napari.utils.colormaps import DirectLabelColormap

    rng = np.random.default_rng(0)
    colors = {None: np.zeros(4), 0: np.zeros(4)}
    for label in range(1, N_LABELS + 1):
        colors[label] = np.r_[rng.random(3), 1.0]
    return DirectLabelColormap(color_dict=colors)


def pump(seconds: float) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


def timed_add(viewer, data, name: str) -> dict:
    """Adds a Labels layer while beating; the longest gap (ms) and the add call's time."""
    import numpy as np
    from qtpy.QtCore import QTimer

    beats = []
    timer = QTimer()
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start(INTERVAL_MS)
    pump(0.1)
    started = time.perf_counter()
    viewer.add_labels(data, colormap=cluster_colormap(), name=name)
    added = time.perf_counter()
    pump(SETTLE_S)
    timer.stop()
    times = np.array([started, *[beat for beat in beats if beat > started]])
    return {
        "freeze_ms": float(np.diff(times).max(initial=0) * 1000),
        "add_call_ms": (added - started) * 1000,
    }


def child(variant: str, size: int) -> None:
    if variant == "no numba":
        sys.meta_path.insert(0, BlockNumba())
    started = time.perf_counter()
    import napari

    imported = time.perf_counter()
    from napari.utils.colormaps import _accelerated_cmap

    data = labels_image(size)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1200, 800)
    if variant == "numba, numpy mapping":  # after the viewer: it applies the saved setting
        from napari.utils.colormap_backend import ColormapBackend, set_backend

        set_backend(ColormapBackend.pure_python)
    pump(0.5)  # the empty viewer's first paint
    first = timed_add(viewer, data, "first")
    pump(0.2)
    second = timed_add(viewer, data + 0, "second")
    texture_path = _accelerated_cmap.labels_raw_to_texture_direct.__name__
    viewer.close()
    result = {
        "variant": variant,
        "import_napari_s": imported - started,
        "numba_loaded": "numba" in sys.modules,
        "color_mapping": texture_path,
        "first": first,
        "second": second,
    }
    print("RESULT " + json.dumps(result), flush=True)


def run_child(variant: str, size: int) -> dict:
    environment = dict(os.environ)
    with tempfile.TemporaryDirectory() as empty_cache:
        if variant == "numba, first use":
            environment["NUMBA_CACHE_DIR"] = empty_cache
        command = [sys.executable, __file__, "--child", variant, "--size", str(size)]
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{variant}: no result\n{done.stdout}\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size)
        return
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        sys.exit("run under a display, e.g. xvfb-run -a python benchmarks/bench_first_draw.py")
    variants = ("numba, first use", "numba", "numba, numpy mapping", "no numba")
    run_child("numba", args.size)  # fills the numba cache for the "numba" runs
    results = {variant: [] for variant in variants}
    for _ in range(args.repeat):
        for variant in variants:  # interleaved: load on the machine hits all alike
            results[variant].append(run_child(variant, args.size))
    print(
        f"Labels layer {args.size}² int32, {N_LABELS} labels, DirectLabelColormap; "
        f"median of {args.repeat} processes each (longest GUI freeze / add_labels call, ms)"
    )
    medians = {}
    for variant, runs in results.items():
        medians[variant] = {
            layer: {
                key: statistics.median(run[layer][key] for run in runs)
                for key in ("freeze_ms", "add_call_ms")
            }
            for layer in ("first", "second")
        }
        numbers = medians[variant]
        print(
            f"  {variant:>20}: first layer {numbers['first']['freeze_ms']:6.0f} / "
            f"{numbers['first']['add_call_ms']:6.0f}   second layer "
            f"{numbers['second']['freeze_ms']:6.0f} / {numbers['second']['add_call_ms']:6.0f}"
            f"   (import napari {statistics.median(r['import_napari_s'] for r in runs):.2f} s,"
            f" numba loaded: {runs[-1]['numba_loaded']}, mapping: {runs[-1]['color_mapping']})"
        )
    for variant in variants[:-1]:
        for layer in ("first", "second"):
            ratio = medians[variant][layer]["freeze_ms"] / medians["no numba"][layer]["freeze_ms"]
            print(f"  freeze ratio {variant} / no numba, {layer} layer: {ratio:.2f}")


if __name__ == "__main__":
    main()
