"""Fitted models that label other images the same way, saved as plain JSON.

A :class:`Model` is the fitted method (k-means centres or mixture parameters) together
with its whole feature pipeline (image kind and channels, colour space, scaling
constants, spatial weight) and the clusters' numbering, names and colours. Files are
human-readable JSON, validated on load; nothing is ever unpickled or executed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import build_features
from .image import ImageData, read_image
from .methods.gmm import Mixture, predict
from .registry import drain
from .result import Segmentation
from .segment import package_versions

FORMAT = "napari-pixel-clusters model"
VERSION = 1
PIPELINE_KEYS = ("color_space", "spatial_weight", "standardize")


@dataclass
class Model:
    method: str
    image: dict  # kind, n_channels, dtype of the image it was fitted on
    features: dict  # color_space, spatial_weight, standardize, names, constants
    parameters: dict  # kmeans: centers; gmm: covariance_type, weights, means, precisions_cholesky
    clusters: list  # {"label", "component", "name", "color"} per cluster
    provenance: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_segmentation(cls, seg: Segmentation) -> Model:
        params = seg.params
        table = seg.table
        clusters = [
            {"label": int(label), "component": int(component), "name": f"cluster {label}",
             "color": color}
            for label, component, color in zip(table["label"], params["cluster_components"],
                                               table["color"])
        ]
        constants = {key: params[key] for key in
                     ("mean", "scale", "coordinate_mean", "coordinate_scale") if key in params}
        return cls(
            method=seg.method,
            image={"kind": seg.image.kind, "n_channels": seg.image.n_channels,
                   "dtype": str(seg.image.pixels.dtype)},
            features={**{key: params[key] for key in PIPELINE_KEYS},
                      "names": params["features"], "constants": constants},
            parameters={key: np.asarray(value).tolist() if not isinstance(value, str) else value
                        for key, value in seg.fitted.items()},
            clusters=clusters,
            provenance={"versions": params["versions"], "source_image": params["image"],
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        )

    # ------------------------------------------------------------------ using
    def predict(self, image, rgb=None, channel_axis=None) -> Segmentation:
        """Label ``image`` with this model: same cluster numbering, names and colours.

        A dask array is labelled lazily (labels as a dask array, chunk by chunk)."""
        return drain(self.predict_steps(image, rgb=rgb, channel_axis=channel_axis))

    def predict_steps(self, image, rgb=None, channel_axis=None, per_plane=False):
        """:meth:`predict` as a generator of ``(stage, fraction)`` steps.

        With ``per_plane`` a stack is labelled plane by plane (the model is not refitted),
        one step per plane: each a point where a caller may stop. A dask array gives lazy
        labels after one counting pass over its chunks (one step per chunk).
        """
        from .lazy import is_lazy

        if is_lazy(image):
            return (yield from self._predict_lazy_steps(image, rgb, channel_axis))
        data = read_image(image, rgb=rgb, channel_axis=channel_axis)
        self._check_fits(data)
        if not per_plane or len(data.spatial_shape) < 3:
            yield "predict", 0.0
            labels, compression = self._labels(data)
            return self._segmentation(labels, data, compression)
        labels = np.zeros(data.spatial_shape, dtype=np.int32)
        planes = list(np.ndindex(data.spatial_shape[:-2]))
        for i, index in enumerate(planes):
            yield "plane", i / len(planes)
            plane = ImageData(pixels=data.pixels[index], kind=data.kind,
                              mask=data.mask[index], channel_axis=data.channel_axis)
            labels[index], compression = self._labels(plane)
        return self._segmentation(labels, data, f"per plane; {compression}")

    def _labels(self, data: ImageData, coordinates=None):
        """Labels of ``data``; ``coordinates`` place a piece of a larger image (a chunk)."""
        spec = self.features
        fitted_axes = len(spec["constants"].get("coordinate_mean", data.spatial_shape))
        if fitted_axes != len(data.spatial_shape):
            raise ValueError(
                f"image: this model uses the features {', '.join(spec['names'])}, which this "
                f"image does not give (positions of a {len(data.spatial_shape)}-D image); "
                "apply it to images of the same kind."
            )
        feature_set = build_features(
            data, color_space=spec["color_space"], spatial_weight=spec["spatial_weight"],
            standardize=spec["standardize"], fixed=spec["constants"],
            coordinates=coordinates)
        components = self._row_components(feature_set)
        labels = np.zeros(data.spatial_shape, dtype=np.int32)
        labels[data.mask] = feature_set.to_pixels(self._label_of_component()[components])
        return labels, feature_set.compression

    def _predict_lazy_steps(self, image, rgb, channel_axis):
        from .lazy import LazySegmentation, read_lazy_image
        from .lazy.points import ModelLabeller
        from .lazy.result import drop_empty, tally_steps

        data = read_lazy_image(image, rgb=rgb, channel_axis=channel_axis)
        self._check_fits(data)
        labeller = ModelLabeller(self, data.kind)
        tally = yield from tally_steps(data, labeller.array(data), self.n_components)
        result = LazySegmentation(
            labels=labeller.array(data), image=data, score={},
            params=self._params("lazy: every chunk labelled by the model"),
            fitted=dict(self.parameters), tally=drop_empty(tally, 0), labeller=labeller)
        result.__dict__["model"] = self  # its model is this one (cached_property slot)
        return result

    def _params(self, compression: str) -> dict:
        spec = self.features
        return {"method": self.method, "model": True, **{k: spec[k] for k in PIPELINE_KEYS},
                "features": spec["names"], "compression": compression,
                "cluster_names": [c["name"] for c in self.clusters],
                "versions": package_versions()}

    def _segmentation(self, labels, data, compression) -> Segmentation:
        result = Segmentation(labels=labels, image=data, score={},
                              params=self._params(compression), fitted=dict(self.parameters))
        result.__dict__["model"] = self  # its model is this one (cached_property slot)
        return result

    def _row_components(self, feature_set) -> np.ndarray:
        X = feature_set.X
        if self.method == "kmeans":
            from sklearn.metrics import pairwise_distances_argmin

            return pairwise_distances_argmin(X, np.asarray(self.parameters["centers"]))
        p = self.parameters
        mixture = Mixture(p["covariance_type"], np.asarray(p["weights"]),
                          np.asarray(p["means"]), np.asarray(p["precisions_cholesky"]))
        return predict(X, feature_set.pixel_weights(), mixture)[0]

    def _label_of_component(self) -> np.ndarray:
        """Label per component; components that found no pixels get the next labels."""
        n_components = self.n_components
        label_of = np.zeros(n_components, dtype=np.int32)
        for cluster in self.clusters:
            label_of[cluster["component"]] = cluster["label"]
        unused = np.flatnonzero(label_of == 0)
        label_of[unused] = len(self.clusters) + 1 + np.arange(len(unused))
        return label_of

    @property
    def n_components(self) -> int:
        key = "centers" if self.method == "kmeans" else "means"
        return len(self.parameters[key])

    def _check_fits(self, data) -> None:
        fitted = self.image
        colour = {"rgb", "rgba"}
        same_kind = data.kind == fitted["kind"] or {data.kind, fitted["kind"]} <= colour
        channels = data.color_channels.shape[-1]
        expected = 3 if fitted["kind"] in colour else fitted["n_channels"]
        if not same_kind or channels != expected:
            raise ValueError(
                f"image: this model was fitted on a {fitted['kind']} image with {expected} "
                f"channel(s); this image is {data.kind} with {channels}. Apply it to images "
                "like the one it was made from."
            )

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "method": self.method,
                "image": self.image, "features": self.features,
                "parameters": self.parameters, "clusters": self.clusters,
                "provenance": self.provenance}

    @classmethod
    def from_dict(cls, content: dict) -> Model:
        check_model_dict(content)
        return cls(**{key: content[key] for key in
                      ("method", "image", "features", "parameters", "clusters")},
                   provenance=content.get("provenance", {}))


def save_model(seg_or_model, path) -> Path:
    """Write a model (or a segmentation's model) to ``path`` as JSON."""
    model = seg_or_model.model if isinstance(seg_or_model, Segmentation) else seg_or_model
    if model is None:
        raise ValueError(f"model: a {seg_or_model.method!r} result has no model to save; "
                         "only k-means and Gaussian mixture results do.")
    path = Path(path)
    path.write_text(json.dumps(model.to_dict(), indent=1))
    return path


def load_model(path) -> Model:
    """Read and validate a model file written by :func:`save_model`."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"model file: cannot read {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"model file: {path} is not JSON ({error.msg}, line "
                         f"{error.lineno}).") from None
    return Model.from_dict(content)


def check_model_dict(content) -> None:
    """Raise ValueError saying what is wrong with a model file's content."""
    def fail(problem):
        raise ValueError(f"model file: {problem}")

    if not isinstance(content, dict) or content.get("format") != FORMAT:
        fail(f"not a napari-pixel-clusters model (its 'format' is not {FORMAT!r}).")
    if content.get("version") != VERSION:
        fail(f"version {content.get('version')!r} is not supported (this is version "
             f"{VERSION}).")
    missing = [k for k in ("method", "image", "features", "parameters", "clusters")
               if k not in content]
    if missing:
        fail(f"missing {', '.join(missing)}.")
    method, params, features = content["method"], content["parameters"], content["features"]
    if method not in ("kmeans", "gmm"):
        fail(f"method {method!r} cannot label new images; use 'kmeans' or 'gmm'.")
    n_features = len(features.get("names", []))
    try:
        centres = np.asarray(params["centers" if method == "kmeans" else "means"], float)
        if method == "gmm":
            np.asarray(params["weights"], float)
            np.asarray(params["precisions_cholesky"], float)
    except (KeyError, TypeError, ValueError):
        fail("its parameters are incomplete or not numbers.")
    if centres.ndim != 2 or centres.shape[1] != n_features or not np.isfinite(centres).all():
        fail(f"cluster centres must be a finite table of {n_features} features per cluster.")
    components = [c.get("component") for c in content["clusters"] if isinstance(c, dict)]
    if len(components) != len(content["clusters"]) or not all(
            isinstance(c, int) and 0 <= c < len(centres) for c in components):
        fail("its clusters do not match its centres.")
