"""Settings shared by the plugin's widgets of one viewer (issue 12, item 4).

Pixel clusters and Choose number of clusters both show the features (color space,
spatial weight, standardize), the random state, the input image and the number of
clusters; they read and write them here, so changing one widget changes the other.
Widgets never reach into each other: everything one tells another goes through here::

    from napari_pixel_clusters.gui.state import shared_settings
    settings = shared_settings(viewer)        # one object per viewer
    settings.color_space = "lab"              # every follower hears it
    settings.events.color_space.connect(callback)   # callback(new_value, old_value)

Fields (each with an event of the same name in ``settings.events``; an event fires only
when the value really changes, so "set the field from my control, set my control from
the field" does not loop):

- ``image``: the chosen source Image layer, or None (reset to None when it leaves the
  viewer's layer list);
- ``mask``: the "only inside" layer (a Labels or Shapes layer whose non-zero pixels or
  shapes are the pixels to segment and sweep), or None for the whole image (reset to None
  when it leaves the viewer's layer list);
- ``color_space``: "rgb", "lab" or "hsv", or None ("auto": each method's default,
  ``Method.default_color_space``); used for RGB images only;
- ``stain_vectors``: "estimate" or the path of a JSON file of stain vectors, or None (no
  widget has said yet); ``stain_background``: float (used with color space "stains");
- ``spatial_weight``: float; ``standardize``: bool;
- ``random_state``: int (or None: a new random start every run);
- ``n_clusters``: int or None (None: no widget has said yet; Pixel clusters keeps its own);
- ``method``: the name of the method to segment with, or None (no widget has said yet).
  Pixel clusters shows it and sets it; Choose number of clusters sets it when a k is
  chosen (it sweeps only the methods that can be swept, so it keeps its own choice).

Besides the fields, ``settings.k_chosen`` is a signal ``(method, k, run)`` emitted by
:meth:`SharedSettings.choose_k` when the user picks a k in a sweep: the sweep's features,
random state and image are already in the fields when it fires, ``method`` is the sweep's
method and ``n_clusters`` is ``k`` (so a Pixel clusters widget opened later shows them
too). Pixel clusters connects to it and runs if ``run`` is True.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psygnal import Signal, evented

from ..core.features import COLOR_SPACES
from ..core.stains import DEFAULT_BACKGROUND

if TYPE_CHECKING:
    import napari


@evented
@dataclass(eq=False)
class SharedSettings:
    """What the plugin's widgets of one viewer share; see the module docstring."""

    image: Any = None
    mask: Any = None
    color_space: str | None = None
    stain_vectors: str | None = None
    stain_background: float = DEFAULT_BACKGROUND
    spatial_weight: float = 0.0
    standardize: bool = False
    random_state: int | None = 0
    n_clusters: int | None = None
    method: str | None = None

    k_chosen = Signal(str, int, bool)  # (method, k, run): not a field

    def features(self) -> dict:
        """The shared options as keyword arguments of ``segment``/``sweep``."""
        return {
            "color_space": self.color_space,
            "stain_vectors": self.stain_vectors,
            "stain_background": self.stain_background,
            "spatial_weight": self.spatial_weight,
            "standardize": self.standardize,
            "random_state": self.random_state,
        }

    def update(self, **values) -> None:
        """Set several fields (checked first); each changed one emits its event."""
        unknown = sorted(set(values) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a shared setting; use one of "
                f"{', '.join(self.__dataclass_fields__)}."
            )
        if values.get("color_space") not in (None, *COLOR_SPACES):
            raise ValueError(
                f"color_space: use one of {', '.join(COLOR_SPACES)} or None (auto), got "
                f"{values['color_space']!r}."
            )
        for name, value in values.items():
            setattr(self, name, value)

    def choose_k(self, method: str, k: int, run: bool = False) -> None:
        """Set ``method`` and ``n_clusters`` to ``k``, then tell the followers (to run,
        if ``run``)."""
        self.method = method
        self.n_clusters = int(k)
        self.k_chosen.emit(method, int(k), bool(run))


_SETTINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shared_settings(viewer: napari.viewer.Viewer) -> SharedSettings:
    """The one :class:`SharedSettings` of ``viewer`` (created on first use)."""
    settings = _SETTINGS.get(viewer)
    if settings is None:
        settings = _SETTINGS[viewer] = SharedSettings()
        settings_ref = weakref.ref(settings)

        def forget_removed_image(event):
            current = settings_ref()
            if current is not None and current.image is event.value:
                current.image = None
            if current is not None and current.mask is event.value:
                current.mask = None

        viewer.layers.events.removed.connect(forget_removed_image)
    return settings
