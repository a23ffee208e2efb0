"""Batch segmentation from the command line, with options generated from the registry.

    napari-pixel-clusters segment IMAGE... --method kmeans -k 5 --color-space lab --out DIR
    napari-pixel-clusters apply --model DIR/img/model.json IMAGE... --out DIR
    napari-pixel-clusters sweep IMAGE --method kmeans --k 2..10

Each image gets a result folder ``DIR/<image name>`` (see ``core/export.py``). A bad image
is reported in one line and skipped; the exit code is 1 if any image failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from skimage import io

from .core import FEATURE_PARAMS, METHODS, load_model, segment, sweep
from .core.export import write_result
from .core.registry import RANDOM_STATE

COMMANDS = ("segment", "apply", "sweep")


def _option(parser, param) -> None:
    """One ``--name`` option per declared parameter; unset options keep the defaults."""
    flag = "--" + param.name.replace("_", "-")
    if param.type is bool:
        parser.add_argument(flag, dest=param.name, action="store_true", default=None,
                            help=param.help)
        return
    kind = str if param.choices else param.type
    parser.add_argument(flag, dest=param.name, type=kind, choices=param.choices,
                        default=None, help=param.help)


def _declared_params():
    """Every parameter of every method, once, plus the feature options."""
    seen = {}
    for param in (*FEATURE_PARAMS, RANDOM_STATE,
                  *(p for m in METHODS.values() for p in m.params if p.in_widget)):
        seen.setdefault(param.name, param)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-pixel-clusters",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seg = commands.add_parser("segment", help="segment images into result folders")
    seg.add_argument("images", nargs="+", type=Path)
    seg.add_argument("--method", choices=list(METHODS), default="kmeans")
    seg.add_argument("-k", "--n-clusters", dest="n_clusters", type=int, default=None)
    seg.add_argument("--out", type=Path, required=True, help="folder for the results")
    seg.add_argument("--min-area", type=int, default=20, help="smallest outlined region")
    for param in _declared_params():
        _option(seg, param)
    apply = commands.add_parser("apply", help="label images with a saved model")
    apply.add_argument("images", nargs="+", type=Path)
    apply.add_argument("--model", type=Path, required=True)
    apply.add_argument("--out", type=Path, required=True)
    apply.add_argument("--min-area", type=int, default=20)
    choose = commands.add_parser("sweep", help="compare numbers of clusters for one image")
    choose.add_argument("image", type=Path)
    choose.add_argument("--method", choices=["kmeans", "gmm"], default="kmeans")
    choose.add_argument("--k", dest="k_values", type=k_range, default=list(range(2, 11)))
    for param in _declared_params():
        if param.name in {p.name for p in FEATURE_PARAMS} | {"random_state"}:
            _option(choose, param)
    return parser


def read_image(path: Path):
    """The image in ``path``; a zarr store is opened lazily (full resolution if a pyramid)."""
    if path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zarray").exists():
        return read_zarr(path)
    try:
        return io.imread(path)
    except Exception as error:  # any reader failure is a bad file for the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"cannot read it as an image ({type(error).__name__}: {reason})") \
            from None


def read_zarr(path: Path):
    """A zarr array, or the first (full-size) array of a zarr group such as an OME-Zarr
    pyramid; read chunk by chunk later, never here."""
    try:
        import zarr

        store = zarr.open(str(path), mode="r")
    except Exception as error:  # any reader failure is a bad file for the user
        raise ValueError(f"cannot open it as a zarr store ({type(error).__name__}: "
                         f"{str(error).strip()[:200]})") from None
    if hasattr(store, "shape"):
        return store
    arrays = sorted(store.arrays(), key=lambda item: (not item[0].isdigit(),
                                                      int(item[0]) if item[0].isdigit() else 0,
                                                      item[0]))
    if not arrays:
        raise ValueError("the zarr group holds no array.")
    return arrays[0][1]


def _options(args, exclude=()) -> dict:
    names = {p.name for p in _declared_params()} - set(exclude)
    return {name: getattr(args, name) for name in names
            if getattr(args, name, None) is not None}


def _run_each(images, out: Path, label_one, min_area: int) -> int:
    """Segment every image into ``out/<stem>``; one line each; 1 if any failed."""
    failures = 0
    for i, path in enumerate(images, start=1):
        started = time.perf_counter()
        try:
            seg = label_one(read_image(path))
            folder = write_result(seg, out / path.stem, source=str(path), min_area=min_area)
        except ValueError as error:
            failures += 1
            print(f"[{i}/{len(images)}] {path}: error: {error}", file=sys.stderr)
            continue
        print(f"[{i}/{len(images)}] {path} -> {folder} ({seg.n_clusters} clusters, "
              f"{time.perf_counter() - started:.1f} s)")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        try:
            result = sweep(read_image(args.image), args.method, args.k_values,
                           **_options(args))
        except ValueError as error:
            print(f"{args.image}: error: {error}", file=sys.stderr)
            return 1
        print(result.table.to_string(index=False))
        print(f"suggested k: {result.suggested_k}. {result.rule}")
        return 0
    if args.command == "apply":
        try:
            model = load_model(args.model)
        except ValueError as error:
            print(f"{args.model}: error: {error}", file=sys.stderr)
            return 1
        return _run_each(args.images, args.out, model.predict, args.min_area)
    options = _options(args)
    return _run_each(args.images, args.out,
                     lambda image: segment(image, args.method, args.n_clusters, **options),
                     args.min_area)


if __name__ == "__main__":
    sys.exit(main())
