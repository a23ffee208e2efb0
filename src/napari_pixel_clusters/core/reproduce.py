"""The Python that makes a result again: a result's ``params`` as a call of ``segment``.

:func:`segment_call` reads the ``params`` a result records (``Segmentation.params``, a
clusters layer's metadata, a result folder's ``params.json``) back into the arguments of
:func:`~.segment.segment`: the method, the number of clusters asked for, how the image
was read (``rgb``, ``channel_axis``) and every option the method declares, at the value
the run used. Stain vectors are passed as recorded, so an estimate is reused bit for
bit instead of being made again. A mask is not in the params (only how many pixels it
held): the caller supplies it.

:func:`python_script` writes that call as a short script: it imports the package, reads
the image from its file as napari reads it (or names the variable that holds it), calls
``segment`` with every parameter and leaves the labels in ``labels``. Edits made in the
Cluster table are replayed after it with :mod:`.editing` and :mod:`.recluster` (their
``Edit.record``): merges, splits, merges of similar clusters, names and colors. Painting
cannot be replayed: the script stops there and says how to keep such labels (save the
layer and read the file).
"""

from __future__ import annotations

import os
import pprint
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .methods import METHODS, get_method
from .registry import CLEANUP_PARAMS, RANDOM_STATE, Method
from .stains import DEFAULT_BACKGROUND

#: The variable the script reads the image into, or expects it in.
IMAGE_VARIABLE = "image"
#: The variable a mask is read into, or expected in.
MASK_VARIABLE = "mask"
#: Image kinds whose last axis holds the colors (``rgb=True``).
COLOR_KINDS = ("rgb", "rgba")
#: Packages whose versions the script's first lines name.
VERSIONS_SHOWN = ("napari-pixel-clusters", "numpy", "scikit-learn", "scikit-image", "scipy")


@dataclass(frozen=True)
class SegmentCall:
    """The arguments of :func:`~.segment.segment` that make a result again.

    ``options`` holds every option the method declares (feature options it takes, its
    random state, its own parameters, the clean-up options), in that order; ``mask`` the
    params' record of a mask (``pixels_inside``, ``pixels``, perhaps ``layer``) when the
    run had one, which the caller must supply; ``kind`` the image kind recorded."""

    method: str
    n_clusters: int | None
    rgb: bool | None
    channel_axis: int | None
    options: dict[str, Any] = field(default_factory=dict)
    mask: dict[str, Any] | None = None
    kind: str | None = None
    #: ``{"images": n, "index": i, ...}`` for a result fitted on several images together
    #: (:func:`~.pooled.segment_many`); None for one image
    pooled: dict[str, Any] | None = None
    #: what the options say that the call alone does not (e.g. an estimate reused)
    notes: tuple[str, ...] = ()

    @property
    def reading(self) -> dict[str, Any]:
        """``rgb`` and ``channel_axis`` as keywords (those that are set)."""
        if self.channel_axis is not None:
            return {"channel_axis": self.channel_axis}
        return {} if self.rgb is None else {"rgb": self.rgb}

    def for_method(self, name: str) -> SegmentCall:
        """The same features with method ``name``: the options it takes (its own
        parameters at their defaults unless it is the same method), an empty color space
        made the recorded method's (so that the colors are compared the same way)."""
        old, new = get_method(self.method), get_method(name)
        if new.name == old.name:
            return self
        feature_options = {
            p.name: self.options.get(p.name, p.default) for p in new.feature_params()
        }
        if (
            "color_space" in feature_options
            and feature_options["color_space"] is None
            and self.kind in COLOR_KINDS
            and new.default_color_space != old.default_color_space
        ):
            feature_options["color_space"] = old.default_color_space
        options = feature_options | _common_options(new, self.options)
        return replace(self, method=new.name, options=options, n_clusters=None)

    def overridden(self, options: Mapping[str, Any]) -> SegmentCall:
        """These ``options`` instead of the recorded ones (e.g. from the command line).
        A color space other than "stains" drops the recorded stain vectors; new stain
        vectors drop the recorded ones."""
        merged = dict(self.options)
        if "color_space" in options and options["color_space"] != "stains":
            merged.pop("stain_vectors", None)
            merged.pop("stain_background", None)
        if "stain_vectors" in options:
            merged.pop("stain_background", None)
        merged |= dict(options)
        return replace(self, options=merged)


def _common_options(method: Method, options: Mapping[str, Any]) -> dict[str, Any]:
    """The random state and clean-up options of ``options`` that ``method`` takes."""
    common: dict[str, Any] = {}
    if method.uses_random_state:
        common[RANDOM_STATE.name] = options.get(RANDOM_STATE.name, RANDOM_STATE.default)
    if method.takes_cleanup:
        common |= {p.name: options.get(p.name, p.default) for p in CLEANUP_PARAMS}
    return common


def segment_call(params: Mapping[str, Any]) -> SegmentCall:
    """The call of :func:`~.segment.segment` that makes the result of ``params`` again.

    Raises ValueError starting with "params:" for params that name no known method, or
    a method that needs a number of clusters without one recorded."""
    if not isinstance(params, Mapping):
        raise ValueError(
            f"params: expected a result's params (a dict), got {type(params).__name__}."
        )
    name = params.get("method")
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(
            f"params: no known method is recorded (method {name!r}); use the params of a "
            f"result of one of {', '.join(map(repr, METHODS))}."
        )
    method = METHODS[name]
    n_clusters = params.get("n_clusters_requested") if method.needs_n_clusters else None
    if method.needs_n_clusters and n_clusters is None:
        raise ValueError(
            f"params: method {name!r} needs a number of clusters, but none is recorded "
            "(n_clusters_requested)."
        )
    image = _image_record(params)
    kind = image.get("kind")
    rgb, channel_axis = _reading(kind, image.get("channel_axis"))
    options, notes = _feature_options(method, params)
    options |= {p.name: _recorded(params, p.name, p.default) for p in method.params}
    options |= _common_options(method, params)
    mask = params.get("mask")
    pooled = params.get("pooled")
    return SegmentCall(
        method=name,
        n_clusters=n_clusters,
        rgb=rgb,
        channel_axis=channel_axis,
        options=options,
        mask=dict(mask) if isinstance(mask, Mapping) else None,
        kind=kind if isinstance(kind, str) else None,
        notes=tuple(notes),
        pooled=dict(pooled) if isinstance(pooled, Mapping) else None,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is a mapping (a recorded dict), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _image_record(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """The recorded image (the first one of a pooled fit's list)."""
    image = params.get("image")
    if isinstance(image, list) and image:
        image = image[0]
    return _mapping(image)


def _reading(kind: object, channel_axis: object) -> tuple[bool | None, int | None]:
    """``rgb`` and ``channel_axis`` that read an image as the run did."""
    if kind in COLOR_KINDS:
        return True, None
    if kind == "grey":
        return False, None
    if kind == "multichannel" and isinstance(channel_axis, int):
        return None, channel_axis
    return None, None


def _recorded(params: Mapping[str, Any], name: str, default: Any) -> Any:
    """The value asked for: ``<name>_requested`` where a method records the value it
    used under ``name`` as well (a Ward on a large image's level), else ``name``."""
    return params.get(f"{name}_requested", params.get(name, default))


def _feature_options(
    method: Method, params: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The feature options ``method`` takes, as recorded; stain vectors as the vectors
    used (an estimate is reused, with the default ``stain_background``)."""
    options = {p.name: params.get(p.name, p.default) for p in method.feature_params()}
    notes = []
    vectors = options.get("stain_vectors")
    if isinstance(vectors, Mapping) and "vectors" in vectors:
        options["stain_vectors"] = {
            key: vectors[key] for key in ("names", "vectors") if vectors.get(key) is not None
        }
        if vectors.get("estimated"):
            background = options.get("stain_background", DEFAULT_BACKGROUND)
            notes.append(
                "the stain vectors were estimated from the image (Macenko, stain_background "
                f"{background}); the vectors found are given here, so they are not estimated "
                "again"
            )
        if "stain_background" in options:
            options["stain_background"] = DEFAULT_BACKGROUND
    return options, notes


# --------------------------------------------------------------------------- scripts
def python_script(
    params: Mapping[str, Any],
    image: str | os.PathLike[str] | None = None,
    mask: str | os.PathLike[str] | None = None,
    plane: Sequence[int] = (),
    edits: Sequence[Mapping[str, Any]] = (),
    title: str = "",
    image_name: str = "",
) -> str:
    """A short Python script that makes the result of ``params`` again.

    Parameters
    ----------
    params : dict
        The result's params (``Segmentation.params`` or a clusters layer's).
    image, mask : path, variable name or None
        Where the script gets the image (and the mask, when the run had one): a file
        path (a ``str`` that is not a Python name, or any ``os.PathLike``) is read as
        napari reads it (a TIFF with tifffile, a zarr store with dask, other files with
        ``skimage.io.imread``); a Python name is a variable the script expects defined;
        None: the variable ``image`` (``mask``), which a comment asks to define.
    plane : sequence of int
        The index of the plane of a stack that was segmented (the widget's "current
        plane"): the script takes that plane, as a stack of one.
    edits : sequence of dict
        ``Edit.record`` of the edits made since, oldest first, replayed with
        :mod:`.editing` and :mod:`.recluster`; the first that cannot be replayed
        (painting) ends them with a comment.
    title, image_name : str
        What the result and its image are called (a layer's names), for the comments.

    Returns
    -------
    str
        The script. It leaves the result in ``seg`` and its labels in ``labels``
        (``table``: the cluster table, when edits were replayed).
    """
    call = segment_call(params)
    image_source = _source(image, IMAGE_VARIABLE)
    mask_source = _source(mask, MASK_VARIABLE) if call.mask is not None else None
    sources = () if call.pooled is not None else (image_source, mask_source)  # none read
    reads = [s for s in sources if s is not None and s.path is not None]
    lines = _header(params, title)
    readers = {s.reader for s in reads}
    if "da.from_zarr" in readers:
        lines.append("import dask.array as da")
    if plane:
        lines.append("import numpy as np")
    if "tifffile.imread" in readers:
        lines.append("import tifffile")
    lines.append("import napari_pixel_clusters as npc")
    if "io.imread" in readers:
        lines.append("from skimage import io")
    lines.append("")
    if call.pooled is not None:
        return "\n".join([*lines, *_pooled_lines(call, params, image, image_name, edits)]) + "\n"
    lines += _image_lines(image_source, params, image_name, plane)
    if mask_source is not None:
        lines += _mask_lines(mask_source, call.mask or {}, plane)
    lines += [f"# {note}" for note in call.notes]
    lines += _call_lines(call, image_source.variable, mask_source)
    lines.append("labels = seg.labels")
    lines += _edit_lines(edits, image_source.variable)
    return "\n".join(lines) + "\n"


def _pooled_lines(
    call: SegmentCall,
    params: Mapping[str, Any],
    image: str | os.PathLike[str] | None,
    image_name: str,
    edits: Sequence[Mapping[str, Any]],
) -> list[str]:
    """A fit on several images together: ``segment_many`` on the list ``images``
    (which the script asks for), then this image's result."""
    pooled = call.pooled or {}
    index = pooled.get("index")
    n_images = pooled.get("images", "several")
    this = ""
    if isinstance(index, int):
        path = _source(image, IMAGE_VARIABLE).path
        named = f" the layer '{image_name}'" if image_name else ""
        where = f" the file {path!r}" if path else named
        this = f"; this result is of image {index + 1}{',' if where else ''}{where}"
    lines = _comment(
        f"`images`: the {n_images} images the clusters were fitted on together "
        f"(segment_many), in the order they were given{this}; define `images` before "
        "this line."
    )
    if call.mask is not None:
        lines += _comment("`masks`: the mask of each image, as they were given.")
    lines += [f"# {note}" for note in call.notes]
    call_lines = _call_lines(call, "images", _Source("masks") if call.mask else None)
    call_lines[0] = "pooled = npc.segment_many("
    lines += [line.replace("    mask=masks,", "    masks=masks,") for line in call_lines]
    if not isinstance(index, int):
        return [*lines, "labels = [result.labels for result in pooled.results]"]
    lines += [f"seg = pooled.results[{index}]", "labels = seg.labels"]
    return lines + _edit_lines(edits, f"images[{index}]")


@dataclass(frozen=True)
class _Source:
    """Where the script gets an array: ``variable`` holds it; read from ``path`` if set."""

    variable: str
    path: str | None = None

    @property
    def reader(self) -> str:
        """The call that reads ``path``: dask for a zarr store, tifffile for a TIFF (as
        napari reads them: scikit-image would move an axis of 3 or 4 planes last),
        scikit-image for anything else."""
        path = (self.path or "").rstrip("/\\")
        if path.endswith(".zarr") or os.path.isdir(path):
            return "da.from_zarr"
        if path.lower().endswith((".tif", ".tiff")):
            return "tifffile.imread"
        return "io.imread"


def _source(value: str | os.PathLike[str] | None, default: str) -> _Source:
    if value is None:
        return _Source(default)
    if isinstance(value, str) and value.isidentifier():
        return _Source(value)
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(
            f"{default}: expected a file path or a variable name, got {type(value).__name__}."
        )
    return _Source(default, os.fspath(Path(value)))


def _header(params: Mapping[str, Any], title: str) -> list[str]:
    what = f"'{title}'" if title else f"this {params.get('method')} result"
    versions = _mapping(params.get("versions"))
    shown = ", ".join(f"{name} {versions[name]}" for name in VERSIONS_SHOWN if name in versions)
    lines = [f"# Makes {what} again with napari-pixel-clusters."]
    if shown:
        lines += _comment(f"Made with {shown}; other versions may differ in the last digits.")
    return lines


def _comment(text: str, width: int = 88) -> list[str]:
    """``text`` as comment lines of at most about ``width`` characters."""
    lines, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width and line != "#":
            lines.append(line)
            line = "#"
        line += " " + word
    return [*lines, line]


def _image_lines(
    source: _Source, params: Mapping[str, Any], image_name: str, plane: Sequence[int]
) -> list[str]:
    image = _image_record(params)
    described = _describe_image(image, plane)
    named = f" (the layer '{image_name}')" if image_name else ""
    if source.path is None:
        lines = _comment(
            f"`{source.variable}`: the image the result was made from{named}, {described}; "
            f"it was not read from a file, so define `{source.variable}` before this line."
        )
    else:
        lines = [f"{source.variable} = {source.reader}({source.path!r})  # {described}"]
    if plane:
        index = ", ".join(str(int(i)) for i in plane)
        lines.append(
            f"{source.variable} = {source.variable}[{index}][np.newaxis]  "
            f"# plane {index}, as a stack of one (as segmented)"
        )
    return lines


def _describe_image(image: Mapping[str, Any], plane: Sequence[int]) -> str:
    shape = image.get("shape")
    kind = image.get("kind", "")
    spatial = list(shape[:-1]) if isinstance(shape, list) and shape else []
    if kind not in ("grey",) and isinstance(shape, list) and shape:
        spatial.append(shape[-1])
    if plane and spatial:
        spatial = spatial[1:]
    size = " x ".join(map(str, spatial)) if spatial else "its size"
    plane_of = " plane of a stack" if plane else ""
    return f"{size} {image.get('dtype', '')} {kind}{plane_of}".replace("  ", " ").strip()


def _mask_lines(source: _Source, record: Mapping[str, Any], plane: Sequence[int]) -> list[str]:
    inside = record.get("pixels_inside")
    total = record.get("pixels")
    counted = (
        f"{inside:,} of {total:,} pixels inside"
        if isinstance(inside, int) and isinstance(total, int)
        else "the pixels inside"
    )
    layer = f", from the layer '{record['layer']}'" if record.get("layer") else ""
    if source.path is None:
        return _comment(
            f"`{source.variable}`: the mask the result was made inside ({counted}{layer}): "
            "non-zero inside, the image's spatial shape; it was not read from a file, so "
            f"define `{source.variable}` before this line (a Labels layer saved as TIFF "
            "reads with tifffile.imread)."
        )
    lines = [f"{source.variable} = {source.reader}({source.path!r})  # {counted}{layer}"]
    if plane:
        index = ", ".join(str(int(i)) for i in plane)
        lines.append(f"{source.variable} = {source.variable}[{index}][np.newaxis]")
    return lines


def _call_lines(call: SegmentCall, image: str, mask: _Source | None) -> list[str]:
    arguments: list[tuple[str, Any]] = [("method", call.method)]
    if call.n_clusters is not None:
        arguments.append(("n_clusters", call.n_clusters))
    arguments += list(call.reading.items())
    lines = ["seg = npc.segment(", f"    {image},"]
    lines += [_keyword(name, value) for name, value in arguments]
    if mask is not None:
        lines.append(f"    mask={mask.variable},")
    lines += [_keyword(name, value) for name, value in call.options.items()]
    if "random_state" in call.options and call.options["random_state"] is None:
        lines.append("    # no random_state: another run may find other clusters")
    return [*lines, ")"]


def _keyword(name: str, value: Any) -> str:
    """``    name=value,`` with the value as Python (floats exactly, via repr); long
    values wrapped over several lines."""
    text = pprint.pformat(value, width=80, sort_dicts=False)
    text = text.replace("\n", "\n" + " " * (len(name) + 5))
    return f"    {name}={text},"


def _edit_lines(edits: Sequence[Mapping[str, Any]], image: str) -> list[str]:
    if not edits:
        return []
    replayed, stopped = [], None
    for record in edits:
        line = _replay(record, image)
        if line is None:
            stopped = record
            break
        replayed.append(line)
    modules = [m for m in ("editing", "recluster") if any(f"= {m}." in line for line in replayed)]
    lines = ["", "# The edits made in the Cluster table since, replayed:"]
    if modules:
        lines += [f"from napari_pixel_clusters.core import {', '.join(modules)}", ""]
        lines += ["table = seg.table", *replayed]
    if stopped is not None:
        lines += _comment(
            f"Then {stopped.get('edit', 'an edit')} in napari, which code cannot replay: the "
            "labels differ from here on. To keep them, save the clusters layer (File > Save "
            "Selected Layers, as a result folder or TIFF) and read it with "
            "npc.read_result(folder).labels or tifffile.imread."
        )
    return lines


def _replay(record: Mapping[str, Any], image: str) -> str | None:
    """One line that replays an edit's record, or None (painting, unknown edits)."""
    kind = record.get("edit")
    if kind == "merge":
        clusters = [int(c) for c in record["clusters"]]
        return f"labels, table = editing.merge_clusters(labels, table, {clusters!r})"
    if kind == "split":
        method = f", method={record['method']!r}" if record.get("method") else ""
        return (
            f"labels, table = recluster.split_cluster(labels, table, {image}, "
            f"{int(record['cluster'])}, {int(record['n_clusters'])}, seg.params{method})"
        )
    if kind == "merge similar":
        return (
            f"labels, table = recluster.merge_similar(labels, table, {image}, "
            f"{int(record['n_clusters'])}, seg.params)"
        )
    if kind == "rename":
        return (
            f"table = editing.rename_cluster(table, {int(record['cluster'])}, {record['name']!r})"
        )
    if kind == "recolor":
        clusters = [int(c) for c in record["clusters"]]
        return f"table = editing.recolor_clusters(table, {clusters!r}, {record['color']!r})"
    return None
