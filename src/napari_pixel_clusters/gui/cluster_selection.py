"""Which clusters of a clusters layer are selected and which are hidden, shown on the canvas.

One :class:`ClusterSelection` per clusters Labels layer (``cluster_selection(layer)``) is
the single place where the selection lives: Cluster table and Cluster colors both change
it and both follow its ``changed`` signal, and it follows the layer too (picking or
choosing a label in napari selects that cluster; ticking napari's "show selected" shows
the label the layer has selected). What the user sees:

- one selected cluster: napari's own ``show_selected_label`` (only that cluster is drawn);
- several: a colormap in which the other clusters are transparent;
- hidden clusters: transparent in the colormap (a selected hidden cluster is still shown);

so the image under the clusters layer shows wherever a cluster is not drawn. The outlines
of the same run follow: those of hidden clusters disappear and, while some clusters are
selected, the others' outlines are faded, so the selected regions stand out even where
their mean color looks like the photo.
"""

from __future__ import annotations

import weakref

import numpy as np
from napari.layers import Labels
from napari.utils.colormaps import DirectLabelColormap
from psygnal import Signal

from .layers import DEFAULT_OUTLINE_MODE, METADATA_KEY, TRANSPARENT, outline_colors

_SELECTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Opacity of the outlines of clusters that are not selected, while some are.
FADED_OUTLINES = 0.25


def cluster_selection(layer: Labels, viewer=None) -> ClusterSelection:
    """The selection of ``layer``'s clusters (created on first use, kept with the layer);
    ``viewer``, once given, lets it restyle the outlines of the same run."""
    selection = _SELECTIONS.get(layer)
    if selection is None:
        selection = _SELECTIONS[layer] = ClusterSelection(layer)
    if viewer is not None and selection.viewer is None:
        selection.viewer = viewer
    return selection


def run_layers(viewer, layer: Labels, output: str) -> list:
    """The layers of ``viewer`` made by the same run as ``layer`` with this ``output``
    ("quantized", "outlines", ...)."""
    if viewer is None or layer is None:
        return []
    tag = layer.metadata.get(METADATA_KEY, {})
    return [
        other
        for other in viewer.layers
        if other.metadata.get(METADATA_KEY, {}).get("run") == tag.get("run")
        and other.metadata[METADATA_KEY].get("source") == tag.get("source")
        and other.metadata[METADATA_KEY].get("output") == output
    ]


def _without_selection(colormap):
    """A copy of a label colormap that maps every label (napari's filter switched off)."""
    copy = colormap.__class__(**colormap.model_dump())
    copy.use_selection = False
    return copy


class ClusterSelection:
    """Selected and hidden clusters (label values) of one clusters layer."""

    changed = Signal()

    def __init__(self, layer: Labels):
        self._layer = weakref.ref(layer)
        self._viewer = None
        self.selected: tuple[int, ...] = ()
        self.hidden: frozenset[int] = frozenset()
        self._base = _without_selection(layer.colormap)  # the colors, nothing filtered
        self._applied = None  # the colormap we set last
        self._applying = False
        self._label = layer.selected_label
        if layer.show_selected_label and layer.selected_label in self.labels():
            self.selected = (int(layer.selected_label),)
        layer.events.selected_label.connect(self._on_selected_label)
        layer.events.show_selected_label.connect(self._on_show_selected_label)
        layer.events.colormap.connect(self._on_colormap)

    @property
    def layer(self) -> Labels | None:
        return self._layer()

    @property
    def viewer(self):
        return None if self._viewer is None else self._viewer()

    @viewer.setter
    def viewer(self, viewer):
        self._viewer = weakref.ref(viewer)

    def labels(self) -> list[int]:
        """The cluster labels listed in the layer's table."""
        layer = self.layer
        if layer is None or "index" not in layer.features:
            return []
        return [int(label) for label in layer.features["index"]]

    # ----------------------------------------------------------------- changes
    def select(self, labels) -> None:
        """Select these clusters (in this order; the first becomes napari's selected label)."""
        known = set(self.labels())
        chosen = tuple(dict.fromkeys(int(label) for label in labels if int(label) in known))
        self.selected = chosen
        self.apply()

    def hide(self, labels) -> None:
        """Hide these clusters; hidden clusters leave the selection."""
        labels = {int(label) for label in labels}
        self.hidden = self.hidden | labels
        self.selected = tuple(label for label in self.selected if label not in labels)
        self.apply()

    def show(self, labels=None) -> None:
        """Show these hidden clusters again (every hidden cluster when ``labels`` is None)."""
        self.hidden = frozenset() if labels is None else self.hidden - {int(x) for x in labels}
        self.apply()

    def use_colors(self, colormap) -> None:
        """New colors for the clusters (e.g. after recoloring), keeping what is hidden."""
        self._base = _without_selection(colormap)
        self.apply()

    # ----------------------------------------------------------------- the canvas
    def colormap(self):
        """The colormap that shows this selection: the base colors, hidden or unselected
        clusters transparent; napari's ``use_selection`` for a single selected cluster."""
        labels = np.asarray(self.labels(), dtype=int)
        hidden = np.isin(labels, list(self.hidden)) & ~np.isin(labels, self.selected)
        unselected = ~np.isin(labels, self.selected) if len(self.selected) > 1 else False
        if not hidden.any() and not np.any(unselected):
            colormap = _without_selection(self._base)
        else:
            colors = np.asarray(self._base.map(labels), dtype=float).reshape(-1, 4)
            colors[hidden | unselected] = TRANSPARENT
            colormap = DirectLabelColormap(
                color_dict={
                    None: TRANSPARENT,
                    0: TRANSPARENT,
                    **{int(label): color for label, color in zip(labels, colors)},
                }
            )
        colormap.use_selection = len(self.selected) == 1
        layer = self.layer
        colormap.selection = self.selected[0] if self.selected else layer.selected_label
        return colormap

    def apply(self) -> None:
        """Show the selection on the layer, then tell the widgets."""
        layer = self.layer
        if layer is None:
            return
        known = set(self.labels())
        self.selected = tuple(label for label in self.selected if label in known)
        self.hidden = frozenset(label for label in self.hidden if label in known)
        self._applying = True
        try:
            if self.selected:
                layer.selected_label = self.selected[0]
            self._applied = self.colormap()
            layer.colormap = self._applied
            if layer.show_selected_label != (len(self.selected) == 1):
                layer.show_selected_label = len(self.selected) == 1
            self._label = layer.selected_label
        finally:
            self._applying = False
        self.style_outlines()
        self.changed.emit()

    def style_outlines(self) -> None:
        """The outlines of the run in their style (``outline_mode`` in their metadata):
        hidden clusters' outlines clear, unselected ones faded while some are selected."""
        layer = self.layer
        for outlines in run_layers(self.viewer, layer, "outlines"):
            if not len(outlines.data):
                continue
            mode = outlines.metadata[METADATA_KEY].get("outline_mode", DEFAULT_OUTLINE_MODE)
            labels = np.asarray(outlines.features["label"], dtype=int)
            colors = np.array(outline_colors(labels, layer.features, mode), dtype=float)
            if self.selected:
                colors[~np.isin(labels, self.selected), 3] *= FADED_OUTLINES
            colors[np.isin(labels, list(self.hidden)) & ~np.isin(labels, self.selected), 3] = 0.0
            outlines.edge_color = colors

    # ----------------------------------------------------------------- the layer
    def _on_selected_label(self, event=None):
        """The user picked, painted with or typed a label in napari: select its cluster."""
        layer = self.layer
        if self._applying or layer is None or layer.selected_label == self._label:
            return
        self._label = layer.selected_label
        if self._label in self.labels() and (self._label,) != self.selected:
            self.select([self._label])

    def _on_show_selected_label(self, event=None):
        """napari's "show selected" box ticked or unticked by the user."""
        layer = self.layer
        if self._applying or layer is None:
            return
        if layer.show_selected_label and (layer.selected_label,) != self.selected:
            self.select([layer.selected_label])
        elif not layer.show_selected_label and len(self.selected) == 1:
            self.select([])

    def _on_colormap(self, event=None):
        """Someone else set the layer's colors (e.g. random label colors): keep them
        as the base and show the selection and hidden clusters again on top of them."""
        layer = self.layer
        if self._applying or layer is None or layer.colormap is self._applied:
            return
        self._base = _without_selection(layer.colormap)
        if self.selected or self.hidden:
            self.apply()
