"""Batch segmentation from the command line, with options generated from the registry.

    napari-pixel-clusters segment IMAGE... --method kmeans -k 5 --color-space lab --out DIR
    napari-pixel-clusters segment --pooled IMAGE... --method gmm -k 5 --probabilities --out DIR
    napari-pixel-clusters segment --params DIR/img/params.json IMAGE... --out DIR2
    napari-pixel-clusters apply --model DIR/img/model.json IMAGE... --out DIR
    napari-pixel-clusters sweep IMAGE --method kmeans --k 2..10

Each image gets a result folder ``DIR/<image name>`` (see ``core/export.py``). A bad image
is reported in one line and skipped; the exit code is 1 if any image failed. A bad
option value (``-k 0``, ``--n-init 0``, ``--min-region -4``) would fail every image the
same way: it is said once, before any image is read, with argparse's exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import FEATURE_PARAMS, METHODS, load_model, save_model, segment, segment_many, sweep
from .core.export import MAX_TABLE_BYTES, write_result
from .core.files import read_json
from .core.image import read_image as image_data
from .core.lazy import is_lazy
from .core.objects import Objects
from .core.pooled import image_kind, pooling_methods
from .core.probabilities import UNCERTAINTY_KINDS
from .core.registry import (
    CLEANUP_PARAMS,
    N_CLUSTERS,
    RANDOM_STATE,
    Method,
    Param,
    check_options,
)
from .core.reproduce import SegmentCall, segment_call
from .core.result import Segmentation
from .core.stains import ESTIMATE, read_stain_vectors

COMMANDS = ("segment", "apply", "sweep")
#: The method used when --method is not given: the registry's first (k-means).
DEFAULT_METHOD = next(iter(METHODS))


def sweepable_methods() -> list[str]:
    """Names of the methods ``sweep`` can use (those that declare sweep scores)."""
    return [method.name for method in METHODS.values() if method.sweepable]


INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (128 + SIGINT)
USAGE_ERROR = 2  # argparse's code for bad arguments


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show (required options,
    unset defaults) or the help text states it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.required or action.default in (None, False) or "default:" in text:
            return text
        return super()._get_help_string(action)


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "not set" if value is None else str(value)


@dataclass
class DeclaredOption:
    """One ``--name`` option: a parameter as the methods that take it declare it.

    ``param`` is its first declaration (type, choices); ``defaults`` and ``helps`` hold
    each taking method's default and help text (for the feature options and the random
    state, those of :data:`FEATURE_PARAMS` and :data:`RANDOM_STATE`)."""

    param: Param
    defaults: dict[str, object] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)

    @property
    def users(self) -> list[str]:
        """The methods that take it."""
        return list(self.defaults)

    def only(self, methods: Iterable[str]) -> DeclaredOption:
        """The option as ``methods`` (of its users) take it."""
        keep = [name for name in self.users if name in set(methods)]
        return DeclaredOption(
            self.param,
            {name: self.defaults[name] for name in keep},
            {name: self.helps[name] for name in keep},
        )

    def help_text(self) -> str:
        """Its help (each method's where they differ: "canny: ... slic: ..."), the methods
        that take it and its default(s), escaped for argparse (which reads ``%`` as a
        format character)."""
        if len(set(self.helps.values())) > 1:
            text = " ".join(f"{name}: {text}" for name, text in self.helps.items())
        else:
            text = next(iter(self.helps.values()), self.param.help)
        by_default: dict[str, list[str]] = {}  # each default shown, and who has it
        for name, value in self.defaults.items():
            by_default.setdefault(_shown(value), []).append(name)
        if len(by_default) > 1:
            where = "; ".join(
                f"{', '.join(names)}: default {shown}" for shown, names in by_default.items()
            )
        else:
            default = next(iter(by_default), _shown(self.param.default))
            where = f"{', '.join(self.users)}; default: {default}"
        return f"{text} [{where}]".replace("%", "%%")


def _option(parser: argparse.ArgumentParser, option: DeclaredOption) -> None:
    """One ``--name`` option per declared parameter (``--name/--no-name`` for a switch);
    unset options keep the defaults."""
    param = option.param
    flag = "--" + param.name.replace("_", "-")
    text = option.help_text()
    if param.type is bool:
        parser.add_argument(
            flag,
            dest=param.name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=text,
        )
        return
    kind = str if param.choices else param.type
    parser.add_argument(
        flag, dest=param.name, type=kind, choices=param.choices, default=None, help=text
    )


def _feature_default(method: Method, param: Param) -> object:
    """What a method uses when a feature option is not given: the color space it declares
    for RGB images, else the option's default."""
    return method.default_color_space if param.name == "color_space" else param.default


def _declared_options() -> list[DeclaredOption]:
    """Every parameter of every method, once, plus the feature options, the random state
    and the clean-up options, each with the methods that take it."""
    methods = list(METHODS.values())
    seen = {
        p.name: DeclaredOption(
            p,
            {m.name: _feature_default(m, p) for m in methods if p.name in m.takes_features},
            {m.name: p.help for m in methods if p.name in m.takes_features},
        )
        for p in FEATURE_PARAMS
    }
    seen[RANDOM_STATE.name] = DeclaredOption(
        RANDOM_STATE,
        {m.name: RANDOM_STATE.default for m in methods if m.uses_random_state},
        {m.name: RANDOM_STATE.help for m in methods if m.uses_random_state},
    )
    for method in methods:
        for param in method.params:
            if param.in_widget:
                option = seen.setdefault(param.name, DeclaredOption(param))
                option.defaults[method.name] = param.default
                option.helps[method.name] = param.help
    for p in CLEANUP_PARAMS:  # --smooth, --fill-holes, --min-region
        cleaning = [m for m in methods if m.takes_cleanup]
        seen[p.name] = DeclaredOption(
            p, {m.name: p.default for m in cleaning}, {m.name: p.help for m in cleaning}
        )
    return list(seen.values())


def k_range(text: str) -> list[int]:
    """'2..10' -> [2, ..., 10]; '3,5,8' -> [3, 5, 8]."""
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split(".."))
            return list(range(low, high + 1))
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 2..10") from None


IMAGES_HELP = (
    "image files (any format scikit-image reads, e.g. PNG, TIFF, JPEG) or zarr "
    "stores (read chunk by chunk); each gets the folder DIR/<file name without "
    "extension>"
)
OVERWRITE_HELP = (
    "replace a result folder that exists already (by default such an image "
    "is reported and skipped)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-pixel-clusters",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    seg = commands.add_parser(
        "segment",
        help="segment images into result folders",
        description="Segment images into result folders.",
        formatter_class=HelpFormatter,
    )
    seg.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help=IMAGES_HELP)
    seg.add_argument(
        "--method",
        choices=list(METHODS),
        default=None,
        help=f"segmentation method; with --params, the one it records (default: {DEFAULT_METHOD})",
    )
    seg.add_argument(
        "--params",
        type=Path,
        default=None,
        metavar="FILE",
        help="replay the params.json of a result folder (written by segment, write_result "
        "or the napari widget): its method, k, every option and how the image was read; "
        "options given here override them (default: none)",
    )
    needs_k = [m.name for m in METHODS.values() if m.needs_n_clusters]
    no_k = [m.name for m in METHODS.values() if not m.needs_n_clusters]
    seg.add_argument(
        "-k",
        "--n-clusters",
        dest="n_clusters",
        type=int,
        default=None,
        metavar="K",
        help=f"number of clusters; required by {', '.join(needs_k)}"
        + (f", not taken by {', '.join(no_k)}" if no_k else "")
        + " (no default)",
    )
    _output_options(seg)
    _probability_options(seg)
    seg.add_argument(
        "--pooled",
        action="store_true",
        help="fit one model on the pixels of all IMAGEs together (exactly: their "
        "distinct values' counts summed) and label each with it: the same cluster "
        "numbering and colors in every folder, and the shared model in DIR/model.json "
        f"(methods: {', '.join(m.name for m in pooling_methods())}; images in memory of one "
        "kind, channels and dtype; default: one model per image)",
    )
    _objects_options(seg)
    for option in _declared_options():
        if option.users:
            _option(seg, option)
    apply = commands.add_parser(
        "apply",
        help="label images with a saved model",
        description="Label images with a model saved by segment "
        "(DIR/<image>/model.json) or by the napari widget.",
        formatter_class=HelpFormatter,
    )
    apply.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help=IMAGES_HELP)
    apply.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="FILE",
        help="model.json file of a result folder (required)",
    )
    _output_options(apply)
    _probability_options(apply)
    choose = commands.add_parser(
        "sweep",
        help="compare numbers of clusters for one image",
        description="Fit every number of clusters in a range and "
        "print the scores and a suggested k.",
        formatter_class=HelpFormatter,
    )
    choose.add_argument(
        "image",
        type=Path,
        metavar="IMAGE",
        help="image file or zarr store to compare numbers of clusters on",
    )
    sweepable = sweepable_methods()
    choose.add_argument(
        "--method",
        default=DEFAULT_METHOD if DEFAULT_METHOD in sweepable else sweepable[0],
        choices=sweepable,
        help="clustering method",
    )
    choose.add_argument(
        "--k",
        dest="k_values",
        type=k_range,
        default="2..10",
        metavar="RANGE",
        help="numbers of clusters to compare: a range like 2..10 or a list like 3,5,8",
    )
    for option in _declared_options():
        if option.param.name in {p.name for p in FEATURE_PARAMS} | {RANDOM_STATE.name}:
            swept = option.only(sweepable)
            if swept.users:
                _option(choose, swept)
    return parser


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the result folders; created if missing (required)",
    )
    parser.add_argument(
        "--min-area",
        type=int,
        default=20,
        metavar="PIXELS",
        help="smallest region (pixels) outlined in outlines.csv",
    )
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _probability_options(parser: argparse.ArgumentParser) -> None:
    givers = [m.name for m in METHODS.values() if _gives_probabilities(m)]
    parser.add_argument(
        "--probabilities",
        action="store_true",
        help="also write probabilities.tif (the posterior of each cluster: one float32 "
        "plane per cluster, in label order) and uncertainty.tif into each result folder "
        f"(methods that give them: {', '.join(givers)}; default: not written)",
    )
    parser.add_argument(
        "--uncertainty",
        choices=UNCERTAINTY_KINDS,
        default="margin",
        help="for --probabilities: margin is 1 - the largest posterior, entropy the "
        "posteriors' entropy over log k",
    )


def _gives_probabilities(method: Method) -> bool:
    return method.predictor is not None and method.predictor.probabilities_rows is not None


def _objects_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--objects",
        nargs="*",
        type=int,
        default=None,
        metavar="CLUSTER",
        help="also write objects.tif (each connected region of these clusters as its own "
        "label) and objects.csv (area or volume, centroid, perimeter, mean color, bounding "
        "box of each) into the result folder; no CLUSTER: every cluster (default: no objects)",
    )
    parser.add_argument(
        "--objects-connectivity",
        type=int,
        default=None,
        metavar="N",
        help="for --objects: 1 joins pixels that share an edge (face), up to the number "
        "of spatial axes, which also joins corners (full, the default)",
    )


def objects_maker(
    args: argparse.Namespace,
) -> Callable[[Segmentation[Any]], Objects] | None:
    """What makes the objects --objects asks for from a result (None without it)."""
    if args.objects is None:
        return None

    def make(seg: Segmentation[Any]) -> Objects:
        clusters = args.objects or [int(label) for label in seg.table["label"]]
        return seg.objects(clusters, connectivity=args.objects_connectivity)

    return make


def is_zarr_store(path: Path) -> bool:
    """A folder named .zarr or holding zarr metadata (os.path: false, not an error, for a
    path the system refuses, such as one too long)."""
    return os.path.isdir(path) and (
        path.suffix == ".zarr"
        or any(os.path.exists(path / name) for name in ("zarr.json", ".zarray", ".zgroup"))
    )


def read_image(path: Path) -> Any:
    """The image in ``path``; a zarr store is opened lazily (full resolution if a pyramid).

    Only a regular file or a zarr folder is read: a device (/dev/zero), a FIFO or a socket
    could block or never end, so it is refused without being opened."""
    if is_zarr_store(path):
        return read_zarr(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ValueError(f"cannot read it ({error.strerror or error}).") from None
    if stat.S_ISDIR(mode):
        raise ValueError("it is a folder, not an image file or a zarr store.")
    if not stat.S_ISREG(mode):
        raise ValueError("not a regular file (a device, FIFO or socket); not read.")
    from skimage import io

    logging.disable(logging.WARNING)  # readers' log lines (tifffile's) are not our one line
    try:
        return io.imread(path)
    except Exception as error:  # any reader failure is a bad file for the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"cannot read it as an image ({type(error).__name__}: {reason})"
        ) from None
    finally:
        logging.disable(logging.NOTSET)


def read_zarr(path: Path) -> Any:
    """A zarr array, or the first (full-size) array of a zarr group such as an OME-Zarr
    pyramid; read chunk by chunk later, never here."""
    try:
        import zarr

        store = zarr.open(str(path), mode="r")
    except Exception as error:  # any reader failure is a bad file for the user
        raise ValueError(
            f"cannot open it as a zarr store ({type(error).__name__}: {str(error).strip()[:200]})"
        ) from None
    if hasattr(store, "shape"):
        return store
    arrays = sorted(
        store.arrays(),
        key=lambda item: (
            not item[0].isdigit(),
            int(item[0]) if item[0].isdigit() else 0,
            item[0],
        ),
    )
    if not arrays:
        raise ValueError("the zarr group holds no array.")
    return arrays[0][1]


def one_line(error: BaseException) -> str:
    """An error as one line: the message of a ValueError, or what went wrong with which
    path for an OSError (never a traceback)."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}."
    if isinstance(error, MemoryError):
        return "not enough memory for this image."
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _options(args: argparse.Namespace, exclude: Iterable[str] = ()) -> dict[str, Any]:
    names = {option.param.name for option in _declared_options()} - set(exclude)
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _summary(seg: Segmentation[Any]) -> str:
    """What was found: edges for a method that finds edges, else the number of clusters."""
    method = METHODS.get(seg.method)
    if method is not None and method.output == "edges":
        return "edges"
    return f"{seg.n_clusters} clusters"


def _run_each(
    images: Sequence[Path],
    out: Path,
    label_one: Callable[[Any], Segmentation[Any]],
    min_area: int,
    overwrite: bool,
    make_objects: Callable[[Segmentation[Any]], Objects] | None = None,
    probabilities: dict[str, Any] | None = None,
) -> int:
    """Segment every image into ``out/<stem>`` (with its objects if ``make_objects``, and
    ``probabilities``: write_result's keywords); one line each; 1 if any failed."""
    failures = 0
    for i, path in enumerate(images, start=1):
        started = time.perf_counter()
        try:
            image = read_image(path)
            if make_objects is not None and is_lazy(image):
                raise ValueError(
                    "--objects: objects need the labels in memory, and this image is read "
                    "chunk by chunk (zarr); leave out --objects for it."
                )
            seg = label_one(image)
            objects = make_objects(seg) if make_objects is not None else None
            folder = write_result(
                seg,
                out / path.stem,
                source=str(path),
                min_area=min_area,
                overwrite=overwrite,
                objects=objects,
                **(probabilities or {}),
            )
        except (ValueError, OSError, MemoryError) as error:
            failures += 1
            print(
                f"[{i}/{len(images)}] {path}: error: {one_line(error)}",
                file=sys.stderr,
                flush=True,
            )
            continue
        print(
            f"[{i}/{len(images)}] {path} -> {folder} ({_summary(seg)}"
            f"{'' if objects is None else f', {len(objects.table)} objects'}, "
            f"{time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    return 1 if failures else 0


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Argument errors found before any file is read (argparse's exit code 2)."""
    if args.command == "segment":
        method = METHODS[args.method]
        if method.needs_n_clusters and args.n_clusters is None:
            parser.error(
                f"-k/--n-clusters: method {args.method!r} needs the number of clusters, e.g. -k 5"
            )
        if not method.needs_n_clusters and args.n_clusters is not None:
            parser.error(
                f"-k/--n-clusters: method {args.method!r} takes no number of "
                "clusters; leave -k out"
            )
        if args.probabilities and not _gives_probabilities(method):
            givers = [m.name for m in METHODS.values() if _gives_probabilities(m)]
            parser.error(
                f"--probabilities: method {args.method!r} gives no probabilities; use "
                f"--method {' or '.join(givers)}"
            )
        if args.pooled and method not in pooling_methods():
            usable = [m.name for m in pooling_methods()]
            parser.error(
                f"--pooled: method {args.method!r} cannot fit one model on several "
                f"images; use --method {' or '.join(usable)}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "segment":
        try:
            _replay_params(args)
        except ValueError as error:  # a bad params file: no image is read
            print(f"{parser.prog}: error: {one_line(error)}", file=sys.stderr)
            return 1
    _check_arguments(parser, args)
    out = getattr(args, "out", None)
    if out is not None and os.path.lexists(out) and not os.path.isdir(out):  # all would fail
        print(
            f"{parser.prog}: error: --out: {out} is a file, not a folder; nothing was "
            "read or written.",
            file=sys.stderr,
        )
        return 1
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(
            "interrupted; the result folders finished so far are kept.",
            file=sys.stderr,
            flush=True,
        )
        return INTERRUPTED


def _replay_params(args: argparse.Namespace) -> None:
    """``segment``: the method and k of --params FILE unless given (else the default
    method), its whole call kept in ``args.replay`` (None without --params)."""
    args.replay = None
    if args.params is None:
        args.method = args.method or DEFAULT_METHOD
        return
    call = read_params(args.params)
    if call.pooled is not None and not args.pooled:
        raise ValueError(
            f"--params: {args.params}: the result was fitted on {call.pooled.get('images')} "
            "images together; add --pooled and give the images in the order they were given."
        )
    if args.method is not None:
        call = call.for_method(args.method)
    args.method = call.method
    args.n_clusters = call.n_clusters if args.n_clusters is None else args.n_clusters
    args.replay = call


def read_params(path: Path) -> SegmentCall:
    """The ``segment`` call recorded in a result folder's ``params.json`` (or a file of
    the params alone); a ValueError starting with "--params: <path>:" otherwise, also for
    a result made inside a mask (the command line cannot give one)."""
    content = read_json(path, "--params", MAX_TABLE_BYTES)
    params = content.get("params") if isinstance(content, dict) else None
    try:
        call = segment_call(params if isinstance(params, dict) else content)
    except ValueError as error:
        raise ValueError(f"--params: {path}: {str(error).removeprefix('params: ')}") from None
    if call.mask is not None:
        raise ValueError(
            f"--params: {path}: the result was made inside a mask ("
            f"{call.mask.get('pixels_inside', '?')} of {call.mask.get('pixels', '?')} "
            "pixels), which the command line cannot give; replay it from Python "
            "(seg.to_python, or segment(..., mask=...))."
        )
    return call


def _replayed(args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    """``segment``'s keywords: those of --params (how the image was read and every
    option), overridden by the ``options`` given on the command line."""
    call = getattr(args, "replay", None)
    if call is None:
        return options
    return {**call.reading, **call.overridden(options).options}


def _with_stain_file(options: dict[str, Any]) -> dict[str, Any]:
    """--stain-vectors FILE: the vectors of the JSON file (``estimate`` stays a word)."""
    value = options.get("stain_vectors")
    if value is not None and value != ESTIMATE:
        options["stain_vectors"] = read_stain_vectors(value)
    return options


def _run(args: argparse.Namespace) -> int:
    try:
        options = _with_stain_file(_options(args))
    except ValueError as error:  # a bad stain vectors file: no image is read
        print(f"{args.stain_vectors}: error: {one_line(error)}", file=sys.stderr)
        return 1
    if args.command == "sweep":
        try:
            result = sweep(read_image(args.image), args.method, args.k_values, **options)
        except (ValueError, OSError, MemoryError) as error:
            print(f"{args.image}: error: {one_line(error)}", file=sys.stderr)
            return 1
        print(result.table.to_string(index=False))
        print(f"suggested k: {result.suggested_k}. {result.rule}")
        return 0
    if args.command == "apply":
        try:
            model = load_model(args.model)
        except (ValueError, OSError) as error:
            print(f"{args.model}: error: {one_line(error)}", file=sys.stderr)
            return 1
        if args.probabilities:
            try:
                model.probability_labelling()
            except ValueError as error:
                print(f"{args.model}: error: {one_line(error)}", file=sys.stderr)
                return 1
        return _run_each(
            args.images,
            args.out,
            model.predict,
            args.min_area,
            args.overwrite,
            probabilities=_probability_keywords(args),
        )
    if not _options_accepted(args, options):
        return USAGE_ERROR
    options = _replayed(args, options)
    if args.pooled:
        return _run_pooled(args, options)
    return _run_each(
        args.images,
        args.out,
        lambda image: segment(image, args.method, args.n_clusters, **options),
        args.min_area,
        args.overwrite,
        objects_maker(args),
        _probability_keywords(args),
    )


def _options_accepted(args: argparse.Namespace, options: dict[str, Any]) -> bool:
    """``segment``: the method's options checked once, before any image is read (a bad
    value would fail every image the same way); one stderr line if not."""
    call = getattr(args, "replay", None)
    given = options if call is None else call.overridden(options).options
    method = METHODS[args.method]
    try:
        if method.needs_n_clusters:
            N_CLUSTERS.check(args.n_clusters)
        check_options(method, given)
    except ValueError as error:
        print(f"napari-pixel-clusters segment: error: {one_line(error)}", file=sys.stderr)
        return False
    return True


def _probability_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """write_result's keywords for --probabilities and --uncertainty."""
    return {"probabilities": True, "uncertainty": args.uncertainty} if args.probabilities else {}


def _run_pooled(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """--pooled: one model fitted on every readable image, a folder per image and the
    shared DIR/model.json; one line per image (and per failure); 1 if any failed."""
    total = len(args.images)
    paths, images, failures = [], [], 0
    kinds: dict[str, Path] = {}
    for i, path in enumerate(args.images, start=1):
        try:
            image = read_image(path)
            if is_lazy(image):
                raise ValueError(
                    "a zarr store is read chunk by chunk and --pooled fits on images in "
                    "memory; label it with the shared model instead (apply --model)."
                )
            kind = image_kind(image_data(image))
            first = next(iter(kinds), kind)
            if kind != first:
                raise ValueError(
                    f"it is {kind} but {kinds[first]} is {first}; --pooled fits one model "
                    "on images of one kind, channels and dtype."
                )
            kinds.setdefault(kind, path)
        except (ValueError, OSError, MemoryError) as error:
            failures += 1
            print(f"[{i}/{total}] {path}: error: {one_line(error)}", file=sys.stderr, flush=True)
            continue
        paths.append(path)
        images.append(image)
    if not images:
        return 1
    started = time.perf_counter()
    try:
        pooled = segment_many(images, args.method, args.n_clusters, **options)
    except (ValueError, MemoryError) as error:
        names = ", ".join(str(path) for path in paths)
        print(f"--pooled ({names}): error: {one_line(error)}", file=sys.stderr, flush=True)
        return 1
    print(
        f"one {args.method} model fitted on {len(images)} images "
        f"({pooled.n_clusters} clusters, {time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    make_objects = objects_maker(args)
    for path, seg in zip(paths, pooled.results):
        i = args.images.index(path) + 1
        try:
            objects = make_objects(seg) if make_objects is not None else None
            folder = write_result(
                seg,
                args.out / path.stem,
                source=str(path),
                min_area=args.min_area,
                overwrite=args.overwrite,
                objects=objects,
                **_probability_keywords(args),
            )
        except (ValueError, OSError, MemoryError) as error:
            failures += 1
            print(f"[{i}/{total}] {path}: error: {one_line(error)}", file=sys.stderr, flush=True)
            continue
        print(f"[{i}/{total}] {path} -> {folder} ({_summary(seg)})", flush=True)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        model_path = save_model(pooled.model, args.out / "model.json", overwrite=args.overwrite)
    except (ValueError, OSError) as error:
        print(f"{args.out / 'model.json'}: error: {one_line(error)}", file=sys.stderr)
        return 1
    print(f"shared model -> {model_path}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
