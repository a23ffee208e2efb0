"""Fitted models that label other images the same way, saved as plain JSON.

A :class:`Model` is the fitted method (k-means centers, mixture parameters: whatever its
:class:`~.registry.Predictor` reads) together
with its whole feature pipeline (image kind and channels, color space, scaling
constants, spatial weight), the clean-up of its labels (``cleanup``: smooth, fill_holes,
min_region, as the result it was made from; absent: none) and the clusters' numbering,
names and colors. Files are
human-readable JSON, validated on load (see :mod:`.model_check`); nothing is ever
unpickled or executed. A model file over :data:`MAX_MODEL_BYTES` is refused unread.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from .cleanup import CleaningLabeller, Cleanup
from .files import StrPath, read_json
from .image import ImageData, mask_record, read_image
from .labelling import (
    PIPELINE_KEYS,
    FittedLabeller,
    Labelling,
    feature_pipeline,
    label_of_component,
)
from .lazy import LazySegmentation, is_lazy, read_lazy_image
from .lazy.chunks import drop_empty, tally_steps
from .methods import METHODS, get_method
from .model_check import FORMAT, VERSION, check_model_dict, word_list
from .provenance import package_versions
from .registry import CLEANUP_NAMES, Predictor, Steps, drain
from .result import Segmentation

if TYPE_CHECKING:
    import dask.array as da

#: Model files larger than this are refused before they are read (a model with the
#: most components n_clusters allows, full covariances and a few dozen features fits).
MAX_MODEL_BYTES = 64 * 2**20


@dataclass
class Model:
    """A fitted method that labels other images the same way (see the module docstring).

    Its fields are the model file's, except ``pipeline``: the file's ``"features"``.
    """

    method: str
    image: dict[str, Any]  # kind, n_channels, dtype of the image it was fitted on
    pipeline: dict[str, Any]  # color_space, spatial_weight, standardize, names, constants
    parameters: dict[str, Any]  # what the method fitted (its predictor reads), e.g. centers
    clusters: list[dict[str, Any]]  # {"label", "component", "name", "color"} per cluster
    provenance: dict[str, Any] = field(default_factory=dict)
    #: the clean-up options of the result it was made from (none: no clean-up)
    cleanup: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_segmentation(cls, seg: Segmentation[Any]) -> Model:
        params = seg.params
        table = seg.table
        clusters = [
            {
                "label": int(label),
                "component": int(component),
                "name": f"cluster {label}",
                "color": color,
            }
            for label, component, color in zip(
                table["label"], params["cluster_components"], table["color"]
            )
        ]
        return cls(
            method=seg.method,
            image={
                "kind": seg.image.kind,
                "n_channels": seg.image.n_channels,
                "dtype": str(seg.image.pixels.dtype),
            },
            pipeline=feature_pipeline(params, params["features"], params),
            parameters={
                key: np.asarray(value).tolist() if not isinstance(value, str) else value
                for key, value in seg.fitted.items()
            },
            clusters=clusters,
            provenance={
                "versions": params["versions"],
                "source_image": params["image"],
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            cleanup={name: int(params[name]) for name in CLEANUP_NAMES if params.get(name)},
        )

    # ------------------------------------------------------------------ using
    @overload
    def predict(
        self,
        image: da.Array,
        rgb: bool | None = ...,
        channel_axis: int | None = ...,
        mask: Any = ...,
    ) -> LazySegmentation: ...

    @overload
    def predict(
        self,
        image: npt.ArrayLike,
        rgb: bool | None = ...,
        channel_axis: int | None = ...,
        mask: Any = ...,
    ) -> Segmentation[np.ndarray]: ...

    def predict(
        self,
        image: Any,
        rgb: bool | None = None,
        channel_axis: int | None = None,
        mask: Any = None,
    ) -> Segmentation[Any]:
        """Label ``image`` with this model: same cluster numbering, names and colors.

        A dask array is labelled lazily (labels as a dask array, chunk by chunk). The
        model is validated again first (its fields may have been changed since it was
        loaded): a bad field is a ``ValueError`` starting with ``model:``. With ``mask``
        (as for :func:`~.segment.segment`) only the pixels inside are labelled, the others
        get label 0 and are not counted."""
        return drain(self.predict_steps(image, rgb=rgb, channel_axis=channel_axis, mask=mask))

    @overload
    def predict_steps(
        self,
        image: da.Array,
        rgb: bool | None = ...,
        channel_axis: int | None = ...,
        per_plane: bool = ...,
        mask: Any = ...,
    ) -> Steps[LazySegmentation]: ...

    @overload
    def predict_steps(
        self,
        image: npt.ArrayLike,
        rgb: bool | None = ...,
        channel_axis: int | None = ...,
        per_plane: bool = ...,
        mask: Any = ...,
    ) -> Steps[Segmentation[np.ndarray]]: ...

    def predict_steps(
        self,
        image: Any,
        rgb: bool | None = None,
        channel_axis: int | None = None,
        per_plane: bool = False,
        mask: Any = None,
    ) -> Steps[Segmentation[Any]]:
        """:meth:`predict` as a generator of ``(stage, fraction)`` steps.

        With ``per_plane`` a stack is labelled plane by plane (the model is not refitted),
        one step per plane: each a point where a caller may stop. A dask array gives lazy
        labels after one counting pass over its chunks (one step per chunk).
        """
        self.check()
        if is_lazy(image):
            return (yield from self._predict_lazy_steps(image, rgb, channel_axis, mask))
        data = read_image(image, rgb=rgb, channel_axis=channel_axis, mask=mask)
        self._check_fits(data)
        labelling = self.labelling
        if self.cleanup_options.active:
            return (yield from self._predict_cleaned_steps(data, per_plane))
        if not per_plane or len(data.spatial_shape) < 3:
            yield "predict", 0.0
            labels, compression = labelling.labels(data)
            return self._segmentation(labels, data, compression)
        labels = np.zeros(data.spatial_shape, dtype=np.int32)
        planes = list(np.ndindex(data.spatial_shape[:-2]))
        compression = ""
        for i, index in enumerate(planes):
            yield "plane", i / len(planes)
            if not data.mask[index].any():  # no pixel with data (or inside the mask): all 0
                continue
            plane = ImageData(
                pixels=data.pixels[index],
                kind=data.kind,
                mask=data.mask[index],
                channel_axis=data.channel_axis,
            )
            labels[index], compression = labelling.labels(plane)
        return self._segmentation(labels, data, f"per plane; {compression}")

    def _predict_cleaned_steps(
        self, data: ImageData[np.ndarray], per_plane: bool
    ) -> Steps[Segmentation[np.ndarray]]:
        """Labels cleaned as the result the model was made from: in component order (as
        the method numbered them before the clean-up, so that ties are decided alike),
        then numbered as the model's clusters. Per plane: each plane cleaned in 2-D."""
        labelling, cleanup = self._component_labelling, self.cleanup_options
        if not per_plane or len(data.spatial_shape) < 3:
            yield "predict", 0.0
            labels, compression = labelling.labels(data)
            yield "clean-up", 0.5
            return self._segmentation(self._numbered(cleanup.apply(labels)), data, compression)
        labels = np.zeros(data.spatial_shape, dtype=np.int32)
        planes = list(np.ndindex(data.spatial_shape[:-2]))
        compression = ""
        for i, index in enumerate(planes):
            yield "plane", i / len(planes)
            if not data.mask[index].any():  # no pixel with data (or inside the mask): all 0
                continue
            plane = ImageData(data.pixels[index], data.kind, data.mask[index], data.channel_axis)
            plane_labels, compression = labelling.labels(plane)
            labels[index] = cleanup.apply(plane_labels)
        return self._segmentation(self._numbered(labels), data, f"per plane; {compression}")

    @property
    def cleanup_options(self) -> Cleanup:
        """The clean-up it applies to its labels (:attr:`cleanup`; nothing when absent)."""
        return Cleanup(**self.cleanup)

    @property
    def _component_labelling(self) -> Labelling:
        """:attr:`labelling` with label = component + 1 (the order a fit numbers them)."""
        return replace(
            self.labelling, label_of_component=np.arange(1, self.n_components + 1, dtype=np.int32)
        )

    def _numbered(self, labels: np.ndarray) -> np.ndarray:
        """Labels component + 1 -> the model's cluster labels."""
        return self._cluster_lookup[labels]

    @property
    def _cluster_lookup(self) -> np.ndarray:
        lookup = np.zeros(self.n_components + 1, dtype=np.int32)
        lookup[1:] = self.labelling.label_of_component
        return lookup

    def _predict_lazy_steps(
        self, image: Any, rgb: bool | None, channel_axis: int | None, mask: Any = None
    ) -> Steps[LazySegmentation]:
        data = read_lazy_image(image, rgb=rgb, channel_axis=channel_axis, mask=mask)
        self._check_fits(data)
        labeller: FittedLabeller | CleaningLabeller = FittedLabeller(self.labelling, data.kind)
        if self.cleanup_options.active:  # cleaned in component order, then numbered
            labeller = CleaningLabeller(
                FittedLabeller(self._component_labelling, data.kind),
                self.cleanup_options,
                self._cluster_lookup,
            )
        tally = yield from tally_steps(data, labeller.array(data), self.n_components)
        result = LazySegmentation(
            labels=labeller.array(data),
            image=data,
            score={},
            params=self._params("lazy: every chunk labelled by the model") | mask_record(data),
            fitted=dict(self.parameters),
            tally=drop_empty(tally, 0),
            labeller=labeller,
        )
        result.__dict__["model"] = self  # its model is this one (cached_property slot)
        return result

    def _params(self, compression: str) -> dict[str, Any]:
        pipeline = self.pipeline
        return {
            "method": self.method,
            "model": True,
            **{key: pipeline[key] for key in PIPELINE_KEYS},
            **{k: v for k, v in pipeline["constants"].items() if k == "stain_vectors"},
            "features": pipeline["names"],
            "compression": compression,
            "cluster_names": [c["name"] for c in self.clusters],
            **(self.cleanup_options.as_dict() if self.cleanup_options.active else {}),
            "versions": package_versions(),
        }

    def _segmentation(
        self, labels: np.ndarray, data: ImageData[np.ndarray], compression: str
    ) -> Segmentation[np.ndarray]:
        result = Segmentation(
            labels=labels,
            image=data,
            score={},
            params=self._params(compression) | mask_record(data),
            fitted=dict(self.parameters),
        )
        result.__dict__["model"] = self  # its model is this one (cached_property slot)
        return result

    @property
    def predictor(self) -> Predictor:
        """How the model's method labels feature rows."""
        predictor = get_method(self.method).predictor
        if predictor is None:
            raise ValueError(f"model: method: {self.method!r} cannot label new images.")
        return predictor

    def probability_labelling(self) -> Labelling:
        """:attr:`labelling`, for the posterior probabilities of the clusters (see
        :mod:`.probabilities`): a ``ValueError`` starting ``method:`` when the model's
        method gives none (its predictor has no ``probabilities_rows``)."""
        if self.predictor.probabilities_rows is None:
            givers = [
                f"{m.title} ({m.name!r})"
                for m in METHODS.values()
                if m.predictor is not None and m.predictor.probabilities_rows is not None
            ]
            raise ValueError(
                f"method: {self.method!r} gives no probabilities: its model assigns each "
                "pixel to one cluster without posterior probabilities; use "
                f"{word_list(givers, 'or')} for them."
            )
        return self.labelling

    @property
    def labelling(self) -> Labelling:
        """What labels images: the feature pipeline, predictor and cluster numbering."""
        return Labelling(
            self.predictor,
            self.pipeline,
            self.parameters,
            label_of_component(
                self.n_components,
                [cluster["component"] for cluster in self.clusters],
                [cluster["label"] for cluster in self.clusters],
            ),
        )

    @property
    def n_components(self) -> int:
        return len(self.parameters[self.predictor.components_key])

    def _check_fits(self, data: ImageData[Any]) -> None:
        fitted = self.image
        color = {"rgb", "rgba"}
        same_kind = data.kind == fitted["kind"] or {data.kind, fitted["kind"]} <= color
        channels = data.color_channels.shape[-1]
        expected = 3 if fitted["kind"] in color else fitted["n_channels"]
        if not same_kind or channels != expected:
            raise ValueError(
                f"image: this model was fitted on a {fitted['kind']} image with {expected} "
                f"channel(s); this image is {data.kind} with {channels}. Apply it to images "
                "like the one it was made from."
            )

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "method": self.method,
            "image": self.image,
            "features": self.pipeline,
            "parameters": self.parameters,
            "clusters": self.clusters,
            "provenance": self.provenance,
            **({"cleanup": self.cleanup} if self.cleanup else {}),
        }

    def check(self) -> None:
        """Raise ``ValueError("model: <field>: ...")`` if a field is not valid."""
        check_model_dict(self.to_dict(), what="model")

    def with_cluster_names(self, names_and_colors: dict[int, dict[str, str]]) -> Model:
        """A copy whose clusters take the ``{"name": ..., "color": ...}`` given per label
        (as a user typed them in a cluster table); clusters without an entry keep theirs."""
        clusters = [
            {**cluster, **names_and_colors.get(int(cluster["label"]), {})}
            for cluster in self.clusters
        ]
        model = replace(self, clusters=clusters)
        model.check()
        return model

    @classmethod
    def from_dict(
        cls, content: dict[str, Any], what: str = "model file", path: StrPath | None = None
    ) -> Model:
        """A model from :meth:`to_dict`'s form, validated (see :func:`check_model_dict`);
        errors start with ``what`` and ``path``."""
        check_model_dict(content, what=what, path=path)
        return cls(
            method=content["method"],
            image=content["image"],
            pipeline=content["features"],
            parameters=content["parameters"],
            clusters=content["clusters"],
            provenance=content.get("provenance", {}),
            cleanup=content.get("cleanup", {}),
        )


def save_model(
    seg_or_model: Segmentation[Any] | Model, path: StrPath, overwrite: bool = False
) -> Path:
    """Write a model (or a segmentation's model) to ``path`` as JSON.

    An existing ``path`` is a ``ValueError`` unless ``overwrite=True``; even then only a
    model file (a JSON file whose ``format`` is a napari-pixel-clusters model) is
    replaced, never any other file. A failed write leaves no partial file (a replaced
    file is written under a temporary name first)."""
    model = seg_or_model.model if isinstance(seg_or_model, Segmentation) else seg_or_model
    if model is None:
        titles = [m.title for m in METHODS.values() if m.predictor is not None]
        raise ValueError(
            f"model: a {seg_or_model.method!r} result has no model to save; "
            f"only {word_list(titles, 'and')} results do."
        )
    model.check()
    path = Path(path)
    exists = os.path.lexists(path)
    if exists:
        _check_replaceable(path, overwrite)
    text = json.dumps(model.to_dict(), indent=1, default=_plain, allow_nan=False)
    try:
        _write_new_file(path, text, replace=exists)
    except FileExistsError:
        raise ValueError(
            f"path: {path} exists already; choose another file or pass overwrite=True."
        ) from None
    except OSError as error:
        raise ValueError(f"path: cannot write {path}: {error.strerror or error}.") from None
    return path


def _check_replaceable(path: Path, overwrite: bool) -> None:
    if not overwrite:
        raise ValueError(
            f"path: {path} exists already; choose another file or pass overwrite=True."
        )
    try:
        content = read_json(path, "path", MAX_MODEL_BYTES)
    except ValueError:
        content = None
    if path.is_symlink() or not (isinstance(content, dict) and content.get("format") == FORMAT):
        raise ValueError(
            f"path: {path} is not a napari-pixel-clusters model file, so it is "
            "not replaced even with overwrite=True; choose another file."
        )


def _write_new_file(path: Path, text: str, replace: bool) -> None:
    """Write ``text`` to ``path``: a new file (FileExistsError if it exists), or with
    ``replace`` a temporary file renamed over the existing one (which keeps its mode)."""
    if not replace:
        try:
            with open(path, "x", encoding="utf-8") as handle:  # never clobbers
                handle.write(text)
        except FileExistsError:
            raise
        except BaseException:
            path.unlink(missing_ok=True)  # ours: created just now
            raise
        return
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _plain(value: object) -> Any:
    """numpy arrays and scalars as JSON values (models built in memory may hold them)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def load_model(path: StrPath) -> Model:
    """Read and validate a model file written by :func:`save_model`.

    The file must be a regular file (a FIFO, device or directory is refused without
    reading it) of at most :data:`MAX_MODEL_BYTES` (64 MB), valid JSON nested at most
    32 levels, and a valid model (see :func:`check_model_dict`); any problem is a
    ``ValueError`` starting with ``model file: <path>:``."""
    return read_model_file(path, "model file")


def read_model_file(path: StrPath, what: str) -> Model:
    """:func:`load_model` with errors starting with ``what`` (e.g. ``folder``)."""
    content = read_json(path, what, MAX_MODEL_BYTES)
    return Model.from_dict(content, what=what, path=path)
