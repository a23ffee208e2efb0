"""The "Apply model" dock widget: label another image (or every plane of a stack) with a
model fitted earlier, taken from a clusters layer or from a saved JSON file. Nothing is
refitted: the clusters keep their numbering, names and colors."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FileEdit
from napari.layers import Labels
from napari.utils.notifications import show_info

from ..core.model import Model, load_model
from ._panel import RunPanel, large_image_levels
from .layers import (
    METADATA_KEY,
    LayerRequest,
    Placement,
    clusters_layer,
    table_colormap,
    table_names_and_colors,
    with_color_texture,
)

if TYPE_CHECKING:
    import napari

FROM_FILE = "a saved model file"


class ApplyModelWidget(RunPanel):
    """Apply a fitted k-means or Gaussian-mixture model to an image layer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self._runs = itertools.count(1)
        self._model_source = ComboBox(
            name="model",
            label="model from",
            choices=self._model_choices,
            tooltip="A clusters layer made by Pixel clusters "
            "(k-means or Gaussian mixture), or a model file.",
        )
        self._model_file = FileEdit(
            name="model_file", label="model file", mode="r", filter="*.json"
        )
        self._per_plane = CheckBox(
            name="per_plane",
            value=True,
            text="label each plane of a stack separately",
            tooltip="One prediction per plane, with progress and "
            "Cancel between planes; the model is not refitted.",
        )
        self.extend([self._image, self._model_source, self._model_file, self._per_plane])
        self._finish_layout()
        for event in ("inserted", "removed"):
            getattr(viewer.layers.events, event).connect(self._model_source.reset_choices)
        self._model_source.changed.connect(self._show_options)
        self._image.changed.connect(self._show_options)
        self._show_options()

    def _model_choices(self, widget=None):
        layers = [
            (f"layer: {layer.name}", layer)
            for layer in self._viewer.layers
            if isinstance(layer, Labels) and layer.metadata.get(METADATA_KEY, {}).get("model")
        ]
        return [*layers, (FROM_FILE, FROM_FILE)]

    def _show_options(self, event=None):
        self._model_file.visible = self._model_source.value == FROM_FILE
        layer = self._image.value
        self._per_plane.visible = bool(layer is not None and layer.ndim > 2)

    def model(self) -> Model:
        """The chosen model, read and validated (ValueError with a plain message)."""
        source = self._model_source.value
        if source == FROM_FILE:
            path = self._model_file.value
            if not path or not path.is_file():
                raise ValueError("model file: choose a model file (.json) to apply.")
            return load_model(path)
        return layer_model(source)

    def _start(self):
        """Read the model, check the image fits it, then label in a worker thread."""
        layer = self._chosen_image()
        model = self.model()
        levels = large_image_levels(layer)  # large images: labelled lazily
        steps = model.predict_steps(
            levels[0] if levels else np.asarray(layer.data),
            rgb=layer.rgb,
            per_plane=self._per_plane.value,
        )
        first = next(steps)  # checks the image fits the model before any thread
        request = LayerRequest(
            source=f"{layer.name} (model)",
            source_layer=layer.name,
            run=next(self._runs),
            placement=Placement(tuple(layer.scale), tuple(layer.translate)),
            outputs={"clusters"},
            levels=levels or [],
        )
        return self._launch(first, _apply_and_build(steps, request, model), layer, self._add_layer)

    def _add_layer(self, spec):
        self._viewer.add_labels(spec.data, **spec.kwargs)
        message = f"model applied: {spec.kwargs['name']}"
        self._status.value = message
        show_info(message)


def layer_model(layer) -> Model:
    """The model of a clusters layer, with the cluster names and colors its table shows
    now (as typed in Cluster table), not those of the run that made it."""
    model = Model.from_dict(layer.metadata[METADATA_KEY]["model"], what="model")
    return model.with_cluster_names(table_names_and_colors(layer.features))


def model_layer(seg, request: LayerRequest, model: Model):
    """The clusters layer, named and colored like the model's clusters."""
    spec = clusters_layer(seg, request)
    features = spec.kwargs["features"]
    by_label = {c["label"]: c for c in model.clusters}
    features["name"] = [by_label.get(i, {}).get("name", f"cluster {i}") for i in features["index"]]
    features["color"] = [
        by_label.get(i, {}).get("color", color)
        for i, color in zip(features["index"], features["color"])
    ]
    spec.kwargs["colormap"] = with_color_texture(table_colormap(features), spec.data.dtype)
    return spec


def _apply_and_build(steps, request, model):
    seg = yield from steps
    yield "layers", 1.0
    spec = model_layer(seg, request, model)
    if len(request.levels) > 1:  # every level in the labels' own dtype
        spec.data = [seg.labels, *(seg.labels_of(level) for level in request.levels[1:])]
    return spec
