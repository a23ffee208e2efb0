"""What the plugin prepares once per napari session, when its first dock opens.

- **Label colors.** napari maps label values to colors with numba whenever numba can be
  imported (its "fastest available" colormap backend), and this plugin installs numba
  (Ward's compiled loop). Measured with ``benchmarks/bench_first_draw.py`` (a 2048² Labels
  layer with 27 colors, as our results), numba's mapping freezes the window 2.4-2.7x
  longer than napari's numpy mapping (1.9 s against 0.7 s for the first layer, 0.47 s
  against 0.20 s for later ones). So while the user's napari setting is "fastest
  available" and no compiled PartSegCore backend is installed, this session uses the
  numpy ("pure python") mapping. A backend chosen in Preferences > Experimental is kept,
  and the setting itself is never changed.
- **Compiled kernels.** Each method's ``warm_up`` (Ward: compile its loop, about 10 s once
  per machine, or load it from numba's cache, 0.3 s; k-means: its loops and the lazy
  histogram's counting loop, 10-18 s once, 0.5 s from the cache), then the clean-up's
  (its loops: about 10 s once, then about 1 s), runs in a background thread, so that the first run
  does not wait for it. Measured: the GUI thread is never held more than
  about 0.1 s while it compiles, 0.06 s while it loads.
"""

from __future__ import annotations

import importlib.util
import logging
import threading

from ..core.methods import METHODS

logger = logging.getLogger(__name__)
_prepared = threading.Event()


def prepare_session() -> None:
    """Set up label colors and warm the methods' kernels, once per process."""
    if _prepared.is_set():
        return
    _prepared.set()
    use_numpy_label_colors()
    threading.Thread(
        target=warm_up_methods, name="napari-pixel-clusters warm-up", daemon=True
    ).start()


def use_numpy_label_colors() -> bool:
    """napari's numpy label-color mapping for this session, if the user left the choice to
    napari and numba would be its pick; returns whether it was set."""
    from napari.settings import get_settings
    from napari.utils.colormap_backend import ColormapBackend, set_backend

    if get_settings().experimental.colormap_backend != ColormapBackend.fastest_available:
        return False  # the user chose a backend: keep it
    if importlib.util.find_spec("PartSegCore_compiled_backend") is not None:
        return False  # napari's compiled mapping: faster than both
    set_backend(ColormapBackend.pure_python)
    return True


def warm_up_methods() -> None:
    """Run every method's ``warm_up``, then the clean-up's (:func:`~..core.cleanup.warm_up`);
    a failure is logged (the run itself will report it)."""
    from ..core import cleanup

    warm_ups = [(m.title, m.warm_up) for m in METHODS.values() if m.warm_up is not None]
    for title, warm_up in [*warm_ups, ("clean-up", cleanup.warm_up)]:
        try:
            warm_up()
        except Exception:  # a first run compiles again and says what is wrong
            logger.exception("warming up %s failed", title)
