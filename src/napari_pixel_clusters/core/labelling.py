"""Labelling pixels with a fitted point-wise method: its feature pipeline, its predictor
and the clusters' numbering.

A saved :class:`~.model.Model` labels images with a :class:`Labelling`, and so do the
chunks of a lazy image fitted on a sample or a histogram (:class:`FittedLabeller`): the
same features, the same prediction, the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .features import FeatureSet, build_features
from .image import ImageData, usable_mask
from .lazy.chunks import ChunkLabeller
from .registry import Predictor

#: The feature options a fitted pipeline keeps (besides the feature names and constants).
PIPELINE_KEYS = ("color_space", "spatial_weight", "standardize")
#: The constants a fitted pipeline reuses (``FeatureSet.standardization``): scaling, and
#: the stain vectors of color space "stains" (as given or estimated; never estimated again).
CONSTANT_KEYS = ("mean", "scale", "coordinate_mean", "coordinate_scale", "stain_vectors")


def feature_pipeline(
    feature_options: dict[str, Any], names: Sequence[str], constants: dict[str, Any]
) -> dict[str, Any]:
    """A fit's feature pipeline, as a model keeps it: ``color_space``, ``spatial_weight``
    and ``standardize`` (from ``feature_options``), the feature ``names`` and the
    ``constants`` measured on the image it was fitted on (scaling, stain vectors)."""
    return {
        **{key: feature_options[key] for key in PIPELINE_KEYS},
        "names": list(names),
        "constants": {
            key: constants[key] for key in CONSTANT_KEYS if constants.get(key) is not None
        },
    }


def label_of_component(
    n_components: int,
    components: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Label per component: ``components[i]`` gets ``labels[i]`` (default i + 1); the
    components without a label (they found no pixels) get the next labels."""
    labels = np.arange(1, len(components) + 1) if labels is None else labels
    label_of = np.zeros(n_components, dtype=np.int32)
    label_of[np.asarray(components, dtype=np.intp)] = labels
    unused = np.flatnonzero(label_of == 0)
    label_of[unused] = len(components) + 1 + np.arange(len(unused))
    return label_of


@dataclass(frozen=True, eq=False)
class Labelling:
    """A fitted method with its whole feature pipeline: labels any image like the one it
    was fitted on.

    ``pipeline`` as :func:`feature_pipeline` makes it; ``parameters`` what the method
    fitted (read by ``predictor``); ``label_of_component`` as :func:`label_of_component`.
    """

    predictor: Predictor
    pipeline: dict[str, Any]
    parameters: dict[str, Any]
    label_of_component: np.ndarray

    def features(
        self, data: ImageData[np.ndarray], coordinates: np.ndarray | None = None
    ) -> FeatureSet:
        """The fitted feature pipeline applied to ``data`` (``coordinates``: see
        :meth:`labels`); a ValueError when the model's features need other positions."""
        pipeline = self.pipeline
        fitted_axes = len(pipeline["constants"].get("coordinate_mean", data.spatial_shape))
        if fitted_axes != len(data.spatial_shape):
            raise ValueError(
                f"image: this model uses the features {', '.join(pipeline['names'])}, which "
                f"this image does not give (positions of a {len(data.spatial_shape)}-D "
                "image); apply it to images of the same kind."
            )
        return build_features(
            data,
            color_space=pipeline["color_space"],
            spatial_weight=pipeline["spatial_weight"],
            standardize=pipeline["standardize"],
            fixed=pipeline["constants"],
            coordinates=coordinates,
        )

    def labels(
        self, data: ImageData[np.ndarray], coordinates: np.ndarray | None = None
    ) -> tuple[np.ndarray, str]:
        """Labels of ``data`` and how its features were built; ``coordinates`` place a
        piece of a larger image (a chunk)."""
        feature_set = self.features(data, coordinates)
        components = self.predictor.predict_rows(self.parameters, feature_set)
        labels = np.zeros(data.spatial_shape, dtype=np.int32)
        labels[data.mask] = feature_set.to_pixels(self.label_of_component[components])
        return labels, feature_set.compression


class FittedLabeller(ChunkLabeller):
    """Labels each chunk with a :class:`Labelling` (positions offset to the chunk's)."""

    def __init__(self, labelling: Labelling, kind: str):
        self.labelling, self.kind = labelling, kind

    def chunk(
        self, pixels: np.ndarray, origin: tuple[int, ...], scale: tuple[float, ...]
    ) -> np.ndarray:
        block = ImageData(pixels, self.kind, usable_mask(pixels, self.kind), None)
        if not block.mask.any():
            return np.zeros(block.spatial_shape, dtype=np.int32)
        positions = np.stack(np.nonzero(block.mask), axis=1) + np.asarray(origin)
        return self.labelling.labels(block, positions * np.asarray(scale))[0]

    def values(self, values: np.ndarray) -> np.ndarray:
        """Labels of pixel values ``(n, C)`` (pipelines without positions only)."""
        rows = ImageData(values[:, None, :], self.kind, np.ones((len(values), 1), bool), None)
        return self.labelling.labels(rows)[0][:, 0]
