"""The command line and result folders, end to end on files in a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage import data, io

import napari_pixel_clusters as npc
from conftest import same_partition
from napari_pixel_clusters import cli
from napari_pixel_clusters.cli import HelpFormatter, build_parser, main
from napari_pixel_clusters.core.export import read_result


@pytest.fixture
def images(tmp_path):
    io.imsave(tmp_path / "astronaut.png", data.astronaut()[::4, ::4], check_contrast=False)
    io.imsave(tmp_path / "coins.png", data.coins()[::2, ::2], check_contrast=False)
    (tmp_path / "broken.png").write_text("not an image")
    return tmp_path


def test_segment_writes_a_folder_per_good_image_and_reports_the_bad_one(images, capsys):
    out = images / "out"
    code = main(
        [
            "segment",
            str(images / "astronaut.png"),
            str(images / "broken.png"),
            str(images / "coins.png"),
            "-k",
            "4",
            "--random-state",
            "0",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["astronaut", "coins"]  # nothing partial
    assert "[2/3]" in printed.err and "broken.png: error: cannot read it" in printed.err
    assert len(printed.err.strip().splitlines()) == 1
    result = read_result(out / "astronaut")
    expected = npc.segment(io.imread(images / "astronaut.png"), "kmeans", 4, random_state=0)
    np.testing.assert_array_equal(result.labels, expected.labels)
    np.testing.assert_array_equal(result.quantized, expected.quantized())
    pd.testing.assert_frame_equal(result.table, expected.table, check_dtype=False)
    assert result.params["source"].endswith("astronaut.png")
    assert result.params["params"]["method"] == "kmeans"
    np.testing.assert_array_equal(
        result.model.predict(io.imread(images / "astronaut.png")).labels, expected.labels
    )


def test_method_options_come_from_the_registry(images, capsys):
    out = images / "out"
    code = main(
        [
            "segment",
            str(images / "coins.png"),
            "--method",
            "gmm",
            "-k",
            "3",
            "--covariance-type",
            "diag",
            "--standardize",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    params = read_result(out / "coins").params["params"]
    assert params["covariance_type"] == "diag" and params["standardize"] is True


def test_bad_options_give_one_line_and_no_folder(images, capsys):
    out = images / "out"
    assert main(["segment", str(images / "coins.png"), "-k", "0", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("n_clusters: must be at least 1, got 0.")
    assert not (out / "coins").exists()
    assert (
        main(["segment", str(images / "coins.png"), "-k", "3", "--sigma", "2", "--out", str(out)])
        == 2
    )
    assert "sigma: not a parameter of method 'kmeans'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "error"),
    [
        (["--min-region", "-4"], "min_region: must be at least 0, got -4."),
        (["--n-init", "0"], "n_init: must be at least 1, got 0."),
        (["-k", "0"], "n_clusters: must be at least 1, got 0."),
    ],
)
def test_a_bad_option_value_is_said_once_before_any_image_is_read(
    images, capsys, monkeypatch, option, error
):
    read = []
    monkeypatch.setattr(cli, "read_image", lambda path: read.append(path))
    paths = [str(images / "coins.png"), str(images / "astronaut.png")]
    argv = ["segment", *paths, "-k", "3", *option, "--out", str(images / "out")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"napari-pixel-clusters segment: error: {error}"]
    assert read == [] and not (images / "out").exists()


def test_apply_a_saved_model_to_other_images(images, capsys):
    out = images / "out"
    main(["segment", str(images / "astronaut.png"), "-k", "3", "--out", str(out)])
    code = main(
        [
            "apply",
            "--model",
            str(out / "astronaut" / "model.json"),
            str(images / "astronaut.png"),
            "--out",
            str(images / "applied"),
        ]
    )
    assert code == 0
    np.testing.assert_array_equal(
        read_result(images / "applied" / "astronaut").labels, read_result(out / "astronaut").labels
    )
    (images / "fake.json").write_text("{}")
    assert (
        main(
            [
                "apply",
                "--model",
                str(images / "fake.json"),
                str(images / "coins.png"),
                "--out",
                str(images / "x"),
            ]
        )
        == 1
    )
    error = capsys.readouterr().err
    assert "error: model file: " in error and "not a napari-pixel-clusters model" in error


def test_sweep_prints_the_table_and_suggestion(images, capsys):
    assert main(["sweep", str(images / "coins.png"), "--k", "2..4"]) == 0
    printed = capsys.readouterr().out
    assert "silhouette" in printed and "suggested k:" in printed


def test_zarr_stores_are_segmented_lazily_into_zarr_results(tmp_path, capsys):
    import dask.array as da
    import zarr

    photo = data.astronaut()[::2, ::2]
    group = zarr.open_group(str(tmp_path / "slide.zarr"), mode="w")  # an OME-Zarr-like pyramid
    for level, step in (("0", 1), ("1", 2)):
        array = group.create_array(
            level, shape=photo[::step, ::step].shape, chunks=(64, 64, 3), dtype=photo.dtype
        )
        array[:] = photo[::step, ::step]
    out = tmp_path / "out"
    assert (
        main(
            [
                "segment",
                str(tmp_path / "slide.zarr"),
                "-k",
                "4",
                "--random-state",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    saved = read_result(out / "slide")
    expected = npc.segment(photo, "kmeans", 4, random_state=0)
    assert sorted(p.name for p in (out / "slide").iterdir()) == [
        "labels.zarr",
        "model.json",
        "params.json",
        "quantized.zarr",
        "table.csv",
    ]
    assert isinstance(saved.labels, da.Array) and saved.labels.chunksize == (64, 64)
    np.testing.assert_array_equal(saved.labels.compute(), expected.labels)
    np.testing.assert_array_equal(saved.quantized.compute(), expected.quantized())
    assert zarr.open_array(str(out / "slide" / "labels.zarr")).attrs["napari_pixel_clusters"][
        "params"
    ]["image"]["lazy"]
    assert list(saved.table["pixels"]) == list(expected.table["pixels"])
    assert saved.outlines.empty
    assert (
        main(
            [
                "apply",
                "--model",
                str(out / "slide" / "model.json"),
                str(tmp_path / "slide.zarr"),
                "--out",
                str(tmp_path / "applied"),
            ]
        )
        == 0
    )
    applied = read_result(tmp_path / "applied" / "slide")
    np.testing.assert_array_equal(applied.labels.compute(), expected.labels)


# --- the command line as a user runs it: a separate process, its exit code and its output ---

SCRIPT = Path(sys.executable).parent / "napari-pixel-clusters"
COMMAND = (
    [str(SCRIPT)]
    if SCRIPT.exists()
    else [sys.executable, "-m", "napari_pixel_clusters.gui.launch"]
)


def run_cli(*args, timeout=120, **kwargs):
    """The installed console script with ``args``; fails the test if it hangs."""
    return subprocess.run(
        [*COMMAND, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def error_lines(process) -> list[str]:
    assert "Traceback" not in process.stderr, process.stderr
    return process.stderr.strip().splitlines()


@pytest.fixture
def small(tmp_path):
    """Two small grey images written with tifffile, and the folder for the results."""
    rng = np.random.default_rng(0)
    for name in ("one", "two"):
        tifffile.imwrite(tmp_path / f"{name}.tif", rng.integers(0, 255, (24, 32), np.uint8))
    return tmp_path


@pytest.mark.parametrize("command", [[], ["segment"], ["apply"], ["sweep"]])
def test_every_help_runs_and_lists_its_options(command):
    shown = run_cli(*command, "--help", timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == "" and shown.stdout.startswith("usage: napari-pixel-clusters")
    expected = {
        (): ["image", "default: the astronaut sample", "segment,apply,sweep"],
        ("segment",): [
            "IMAGE",
            "--method",
            "-k K",
            "--out DIR",
            "--min-area",
            "--overwrite",
            "--color-space",
            "--n-init",
            "--covariance-type",
            "--downscale",
            "--sigma",
            "--low-threshold",
            "10% of the image's largest value",
            "(default: kmeans)",
            "(default: 20)",
            "[kmeans: default 3; gmm: default 1]",
        ],
        ("apply",): [
            "IMAGE",
            "--model FILE",
            "--out DIR",
            "--min-area",
            "(default: 20)",
            "--overwrite",
        ],
        ("sweep",): [
            "IMAGE",
            "--method",
            "--k RANGE",
            "(default: 2..10)",
            "--color-space",
            "--random-state",
        ],
    }[tuple(command)]
    text = " ".join(shown.stdout.split())
    for option in expected:
        assert option in text


def test_method_choices_and_options_come_from_the_registry(monkeypatch):
    """segment offers every registered method and its parameters, sweep every sweepable
    one: a method registered the documented way appears in both, with its options."""
    import dataclasses

    made_up = dataclasses.replace(
        npc.METHODS["kmeans"],
        name="made_up_sweeper",
        params=(npc.Param("made_up_level", int, 2, "A made-up level.", minimum=1),),
    )
    no_sweep = dataclasses.replace(npc.METHODS["kmeans"], name="made_up_fixed", sweep_scores=())
    for method in (made_up, no_sweep):
        monkeypatch.setitem(npc.METHODS, method.name, method)
    subparsers = next(a for a in build_parser()._actions if a.dest == "command").choices

    def method_choices(command):
        return next(a for a in subparsers[command]._actions if a.dest == "method").choices

    assert method_choices("segment") == list(npc.METHODS)
    sweepable = [m.name for m in npc.METHODS.values() if m.sweepable]
    assert method_choices("sweep") == sweepable
    assert {"kmeans", "gmm", "made_up_sweeper"} <= set(sweepable)
    assert not {"canny", "ward", "made_up_fixed"} & set(sweepable)
    text = " ".join(subparsers["segment"].format_help().split())
    assert "made_up_sweeper" in text and "made_up_fixed" in text
    assert "--made-up-level MADE_UP_LEVEL A made-up level. [made_up_sweeper; default: 2]" in text


def test_every_option_has_help_and_says_its_default():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, subparser in subparsers.items():
        formatter = HelpFormatter(prog=name)
        for action in subparser._actions:
            assert action.help, (name, action.dest)
            text = formatter._expand_help(action)
            if action.option_strings and action.dest != "help":
                assert action.required or "default" in text, (name, action.dest, text)


def test_help_imports_neither_scikit_learn_nor_scikit_image():
    script = (
        "import sys, contextlib, io\n"
        "from napari_pixel_clusters.gui.launch import main\n"
        "for argv in ([], ['segment'], ['apply'], ['sweep']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main([*argv, '--help'])\n"
        "print(sorted(m for m in ('sklearn', 'skimage', 'napari', 'qtpy') if m in sys.modules))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "[]"


@pytest.mark.parametrize("method", [m.name for m in npc.METHODS.values() if m.needs_n_clusters])
def test_k_missing_is_a_usage_error_before_any_file_is_read(small, method):
    missing = small / "missing.png"  # reading it would be an error line of its own
    shown = run_cli(
        "segment", small / "one.tif", missing, "--method", method, "--out", small / "out"
    )
    assert shown.returncode == 2
    assert (
        f"error: -k/--n-clusters: method '{method}' needs the number of clusters" in shown.stderr
    )
    assert "missing.png" not in shown.stderr and not (small / "out").exists()


def test_k_given_to_canny_is_a_usage_error(small):
    shown = run_cli(
        "segment", small / "one.tif", "--method", "canny", "-k", "3", "--out", small / "out"
    )
    assert shown.returncode == 2 and "takes no number of clusters" in shown.stderr
    assert not (small / "out").exists()


def test_canny_reports_edges_not_clusters(small, capsys):
    assert (
        main(["segment", str(small / "one.tif"), "--method", "canny", "--out", str(small / "out")])
        == 0
    )
    printed = capsys.readouterr().out
    assert "(edges," in printed and "clusters" not in printed
    assert read_result(small / "out" / "one").params["params"]["method"] == "canny"


def test_each_bad_input_is_one_line_and_the_others_are_segmented(small):
    os.mkfifo(small / "pipe.tif")  # reading it would block for ever (the timeout fails)
    (small / "folder.tif").mkdir()
    (small / "broken.png").write_text("not an image")
    (small / "broken.tif").write_bytes(b"II*\x00 not really a TIFF")  # tifffile logs too
    bad = [
        "/dev/zero",
        small / "pipe.tif",
        small / "folder.tif",
        small / "missing.tif",
        small / "broken.png",
        small / "broken.tif",
    ]
    shown = run_cli(
        "segment",
        small / "one.tif",
        *bad,
        small / "two.tif",
        "-k",
        "3",
        "--out",
        small / "out",
        timeout=60,
    )
    assert shown.returncode == 1
    lines = error_lines(shown)
    assert len(lines) == len(bad)
    for i, (line, path) in enumerate(zip(lines, bad), start=2):
        assert line.startswith(f"[{i}/8] {path}: error: ")
    assert "not a regular file" in lines[0] and "not a regular file" in lines[1]
    assert "is a folder" in lines[2] and "No such file" in lines[3]
    assert "cannot read it as an image" in lines[4]
    assert sorted(p.name for p in (small / "out").iterdir()) == ["one", "two"]
    expected = npc.segment(tifffile.imread(small / "two.tif"), "kmeans", 3)
    np.testing.assert_array_equal(read_result(small / "out" / "two").labels, expected.labels)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_image_is_one_line(small):
    (small / "one.tif").chmod(0)
    shown = run_cli(
        "segment", small / "one.tif", small / "two.tif", "-k", "3", "--out", small / "out"
    )
    assert shown.returncode == 1
    lines = error_lines(shown)
    assert len(lines) == 1 and "Permission denied" in lines[0]
    assert lines[0].startswith(f"[1/2] {small / 'one.tif'}: error: cannot read it as an image")
    assert (small / "out" / "two").is_dir()


def test_an_output_path_that_is_a_file_is_one_line_and_nothing_is_read(small):
    (small / "f").write_text("mine")
    shown = run_cli(
        "segment", small / "one.tif", small / "two.tif", "-k", "3", "--out", small / "f"
    )
    assert shown.returncode == 1
    assert error_lines(shown) == [
        f"napari-pixel-clusters: error: --out: {small / 'f'} is a "
        "file, not a folder; nothing was read or written."
    ]
    assert (small / "f").read_text() == "mine"


def unwritable_folder(tmp_path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
        return folder / "out"
    return Path("/sys/napari-pixel-clusters-test")  # not even root may create folders there


@pytest.mark.parametrize("where", ["unwritable", "too long"])
def test_an_output_that_cannot_be_written_is_one_line_per_image(small, where):
    out = unwritable_folder(small) if where == "unwritable" else small / ("x" * 300)
    shown = run_cli("segment", small / "one.tif", small / "two.tif", "-k", "3", "--out", out)
    assert shown.returncode == 1
    lines = error_lines(shown)
    assert len(lines) == 2
    for i, name in enumerate(["one", "two"], start=1):
        assert lines[i - 1].startswith(f"[{i}/2] {small / name}.tif: error: ")
        assert where != "too long" or "File name too long" in lines[i - 1]
    assert not os.path.lexists(out)


@pytest.mark.parametrize(
    "content", ["{", "[]", "null", '{"kind": 1}', "[" * 100_000, '{"n": ' + "9" * 400 + "}"]
)
def test_a_tampered_model_is_one_line_not_a_traceback(small, content):
    (small / "model.json").write_text(content)
    shown = run_cli(
        "apply", "--model", small / "model.json", small / "one.tif", "--out", small / "out"
    )
    assert shown.returncode == 1
    lines = error_lines(shown)
    assert len(lines) == 1 and lines[0].startswith(f"{small / 'model.json'}: error: ")
    assert not (small / "out").exists()


def test_a_model_path_that_is_a_folder_is_one_line(small):
    shown = run_cli("apply", "--model", small, small / "one.tif", "--out", small / "out")
    assert shown.returncode == 1
    assert len(error_lines(shown)) == 1 and shown.stderr.startswith(f"{small}: error: ")


def test_an_existing_folder_is_one_line_and_overwrite_replaces_a_result_folder(small):
    (small / "out" / "one").mkdir(parents=True)
    (small / "out" / "one" / "notes.txt").write_text("mine")
    shown = run_cli(
        "segment", small / "one.tif", small / "two.tif", "-k", "3", "--out", small / "out"
    )
    assert shown.returncode == 1
    lines = error_lines(shown)
    assert len(lines) == 1 and lines[0].startswith(f"[1/2] {small / 'one.tif'}: error: out: ")
    assert "--overwrite" in lines[0]
    assert (small / "out" / "one" / "notes.txt").read_text() == "mine"
    assert read_result(small / "out" / "two").labels.max() == 3
    again = run_cli("segment", small / "two.tif", "-k", "2", "--out", small / "out")
    assert again.returncode == 1 and "exists already" in error_lines(again)[0]
    assert read_result(small / "out" / "two").labels.max() == 3
    replaced = run_cli(
        "segment", small / "two.tif", "-k", "2", "--out", small / "out", "--overwrite"
    )
    assert replaced.returncode == 0, replaced.stderr
    expected = npc.segment(tifffile.imread(small / "two.tif"), "kmeans", 2)
    np.testing.assert_array_equal(read_result(small / "out" / "two").labels, expected.labels)


def test_ctrl_c_exits_130_with_one_line_and_keeps_the_finished_folders(small):
    images = [small / "one.tif"]
    for i in range(40):  # enough left to do when the first one is reported
        images.append(small / f"copy{i}.tif")
        images[-1].write_bytes((small / "two.tif").read_bytes())
    batch = subprocess.Popen(
        [*COMMAND, "segment", *map(str, images), "-k", "3", "--out", str(small / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # even if ignored here
    try:
        first = batch.stdout.readline()
        assert first.startswith("[1/41]"), first + batch.stderr.read()
        batch.send_signal(signal.SIGINT)
        rest, errors = batch.communicate(timeout=60)
    finally:
        batch.kill()
    assert batch.returncode == 130
    assert "Traceback" not in errors
    assert errors.strip().splitlines() == [
        "interrupted; the result folders finished so far are kept."
    ]
    finished = sorted(p.name for p in (small / "out").iterdir())
    assert 1 <= len(finished) < 41 and "one" in finished
    assert len(finished) == 1 + len(rest.splitlines())  # no hidden or half-written folder
    for name in finished:
        assert {p.name for p in (small / "out" / name).iterdir()} >= {
            "labels.tif",
            "table.csv",
            "params.json",
            "model.json",
        }


# ------------------------------------------------ switches and shared option names
def _segment_help() -> str:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    return " ".join(subparsers["segment"].format_help().split())


def test_switches_can_be_turned_on_and_off(tmp_path, capsys):
    """Every bool parameter is ``--name/--no-name``: a switch on by default (SLIC's
    enforce_connectivity) can be turned off; ``--standardize`` works as before."""
    from skimage.segmentation import slic

    coins = data.coins()[::3, ::3].copy()
    io.imsave(tmp_path / "coins.png", coins, check_contrast=False)
    argv = ["segment", str(tmp_path / "coins.png"), "--method", "slic", "--n-segments", "60"]
    labels = {}
    for switch, connected in (
        ("--enforce-connectivity", True),
        ("--no-enforce-connectivity", False),
    ):
        out = tmp_path / switch.lstrip("-")
        assert main([*argv, switch, "--out", str(out)]) == 0
        saved = read_result(out / "coins")
        expected = slic(  # grey values are stretched to 0-1: compactness 'auto' is 0.1
            coins,
            n_segments=60,
            compactness=0.1,
            enforce_connectivity=connected,
            channel_axis=None,
        )
        assert same_partition(saved.labels, expected)
        assert saved.params["params"]["enforce_connectivity"] is connected
        labels[connected] = saved.labels
    assert not same_partition(labels[True], labels[False])
    assert main([*argv, "--standardize", "--no-slic-zero", "--out", str(tmp_path / "s")]) == 0
    params = read_result(tmp_path / "s" / "coins").params["params"]
    assert params["standardize"] is True and params["slic_zero"] is False
    args = build_parser().parse_args(["segment", "x.png", "--out", "o", "--no-standardize"])
    assert args.standardize is False and args.use_quantiles is None  # not given: not sent
    text = _segment_help()
    for switch in ("standardize", "use-quantiles", "enforce-connectivity", "slic-zero"):
        assert f"--{switch}, --no-{switch}" in text, switch
    assert "[slic; default: on]" in text


def test_a_name_shared_by_methods_shows_each_ones_help():
    """--sigma means a blur before finding edges for Canny, before SLIC for SLIC: the help
    says both; an option whose help is the same everywhere says it once."""
    methods = npc.METHODS
    text = _segment_help()
    canny, slic = methods["canny"].param("sigma"), methods["slic"].param("sigma")
    assert canny.help != slic.help
    shown = " ".join(f"canny: {canny.help} slic: {slic.help}".split())
    assert f"--sigma SIGMA {shown} [canny: default 1.0; slic: default 0.0]" in text
    n_init = " ".join(f"kmeans: {methods['kmeans'].param('n_init').help}".split())
    assert n_init in text
    assert text.count("Scale every feature to zero mean") == 1


def test_the_feature_options_help_says_which_methods_take_them():
    """From the declarations (``takes_features``, ``default_color_space``): SLIC takes the
    color space (Lab by default) and standardize, not the spatial weight; Canny none."""
    text = _segment_help()
    takers = {
        p.name: [m.name for m in npc.METHODS.values() if p.name in m.takes_features]
        for p in npc.FEATURE_PARAMS
    }
    assert "slic" in takers["color_space"] and "slic" not in takers["spatial_weight"]
    assert not any("canny" in names for names in takers.values())
    assert f"[{', '.join(takers['spatial_weight'])}; default: 0.0]" in text
    assert f"[{', '.join(takers['standardize'])}; default: off]" in text
    rgb = [
        name for name in takers["color_space"] if npc.METHODS[name].default_color_space == "rgb"
    ]
    assert f"[{', '.join(rgb)}: default rgb; slic: default lab]" in text


def test_an_option_the_method_does_not_take_is_one_error_line(tmp_path, capsys):
    io.imsave(tmp_path / "coins.png", data.coins()[::3, ::3], check_contrast=False)
    argv = ["segment", str(tmp_path / "coins.png"), "--method", "slic", "--out", str(tmp_path)]
    assert main([*argv, "--spatial-weight", "0.5"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(
        "error: spatial_weight: method 'slic' does not take it (its feature options: "
        "color_space, stain_vectors, stain_background, standardize); leave spatial_weight out."
    )
    assert len(error.splitlines()) == 1


# ------------------------------------------------------------------------------ objects
def _objects_of(folder):
    return tifffile.imread(folder / "objects.tif"), pd.read_csv(folder / "objects.csv")


@pytest.mark.parametrize(
    ("flags", "clusters", "connectivity"),
    [
        (["--objects"], None, None),
        (["--objects", "2", "3", "--objects-connectivity", "1"], [2, 3], 1),
    ],
)
def test_objects_are_written_as_seg_objects_makes_them(
    images, capsys, flags, clusters, connectivity
):
    out = images / "out"
    code = main(
        [
            "segment",
            str(images / "coins.png"),
            "-k",
            "3",
            "--random-state",
            "0",
            "--out",
            str(out),
            *flags,
        ]
    )
    assert code == 0
    seg = npc.segment(io.imread(images / "coins.png"), "kmeans", 3, random_state=0)
    expected = seg.objects(clusters or [1, 2, 3], connectivity=connectivity)
    labels, table = _objects_of(out / "coins")
    np.testing.assert_array_equal(labels, expected.labels)
    pd.testing.assert_frame_equal(table, expected.table, check_dtype=False)
    assert f"3 clusters, {len(expected.table)} objects" in capsys.readouterr().out
    saved = read_result(out / "coins")  # read back whole, objects included
    np.testing.assert_array_equal(saved.objects.labels, expected.labels)
    assert saved.objects.params["clusters"] == (clusters or [1, 2, 3])


def test_objects_of_a_lazy_result_or_a_missing_cluster_are_one_line_each(tmp_path, capsys):
    import zarr

    image = data.coins()[::4, ::4]
    zarr.open_array(
        str(tmp_path / "big.zarr"), mode="w", shape=image.shape, chunks=(32, 32), dtype=image.dtype
    )[:] = image
    tifffile.imwrite(tmp_path / "small.tif", image)
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(tmp_path / "big.zarr"),
            str(tmp_path / "small.tif"),
            "-k",
            "3",
            "--out",
            str(out),
            "--objects",
            "1",
        ]
    )
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1, captured.err
    # refused before segmenting, with advice for the command line (not for Python)
    assert "big.zarr: error: --objects: objects need the labels in memory" in lines[0]
    assert "leave out --objects" in lines[0] and "np.asarray" not in lines[0]
    assert not (out / "big").exists()  # nothing half written
    assert (out / "small" / "objects.csv").exists()  # the others continue
    code = main(
        [
            "segment",
            str(tmp_path / "small.tif"),
            "-k",
            "3",
            "--out",
            str(out / "x"),
            "--objects",
            "7",
        ]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "error: clusters: no cluster 7" in lines[0]
    assert not (out / "x" / "small").exists()


# ------------------------------------------------------------------------ stain vectors
@pytest.fixture
def stained(tmp_path):
    """Two crops of the immunohistochemistry sample (hematoxylin + DAB) as PNG files."""
    ihc = data.immunohistochemistry()
    io.imsave(tmp_path / "a.png", ihc[:80, :80], check_contrast=False)
    io.imsave(tmp_path / "b.png", ihc[200:280, 200:280], check_contrast=False)
    return tmp_path


def test_stain_vectors_estimate_and_the_model_reuses_them(stained, capsys):
    out = stained / "out"
    argv = ["segment", str(stained / "a.png"), "-k", "3", "--color-space", "stains"]
    assert (
        main(
            [*argv, "--stain-vectors", "estimate", "--stain-background", "0.2", "--out", str(out)]
        )
        == 0
    )
    result = read_result(out / "a")
    expected = npc.segment(
        io.imread(stained / "a.png"),
        "kmeans",
        3,
        color_space="stains",
        stain_vectors="estimate",
        stain_background=0.2,
    )
    np.testing.assert_array_equal(result.labels, expected.labels)
    assert result.params["params"]["stain_vectors"] == expected.params["stain_vectors"]
    assert result.params["params"]["stain_vectors"]["estimated"] is True
    model = out / "a" / "model.json"  # applied to b: a's vectors, not b's own
    assert (
        main(
            [
                "apply",
                "--model",
                str(model),
                str(stained / "b.png"),
                "--out",
                str(stained / "applied"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        read_result(stained / "applied" / "b").labels,
        expected.model.predict(io.imread(stained / "b.png")).labels,
    )


@pytest.mark.parametrize(
    "content",
    [
        [[0.65, 0.70, 0.29], [0.27, 0.57, 0.78]],
        {"hematoxylin": [0.65, 0.70, 0.29], "DAB": [0.27, 0.57, 0.78]},
        {"names": ["hematoxylin", "DAB"], "vectors": [[0.65, 0.70, 0.29], [0.27, 0.57, 0.78]]},
    ],
    ids=["rows", "named-rows", "names-and-vectors"],
)
def test_stain_vectors_from_a_json_file(stained, capsys, content):
    import json

    (stained / "stains.json").write_text(json.dumps(content))
    out = stained / "out"
    argv = ["segment", str(stained / "a.png"), "-k", "3", "--color-space", "stains"]
    assert main([*argv, "--stain-vectors", str(stained / "stains.json"), "--out", str(out)]) == 0
    params = read_result(out / "a").params["params"]
    rows = np.array([[0.65, 0.70, 0.29], [0.27, 0.57, 0.78]])
    expected = npc.segment(
        io.imread(stained / "a.png"), "kmeans", 3, color_space="stains", stain_vectors=rows
    )
    assert params["stain_vectors"]["vectors"] == expected.params["stain_vectors"]["vectors"]
    names = ["stain 1", "stain 2"] if isinstance(content, list) else ["hematoxylin", "DAB"]
    assert params["features"] == [*names, "residual"]
    np.testing.assert_array_equal(read_result(out / "a").labels, expected.labels)
    assert (
        main(
            [
                "sweep",
                str(stained / "a.png"),
                "--k",
                "2..3",
                "--color-space",
                "stains",
                "--stain-vectors",
                str(stained / "stains.json"),
            ]
        )
        == 0
    )
    assert "suggested k" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, problem",
    [("{", "not valid JSON"), ("[[1, 2, 3]]", "expected shape"), (None, "not a regular file")],
)
def test_a_bad_stain_vectors_file_is_one_line_naming_it(stained, content, problem):
    path = stained / "stains.json"
    if content is not None:
        path.write_text(content)
    shown = run_cli(
        "segment",
        stained / "a.png",
        stained / "b.png",
        "-k",
        "3",
        "--color-space",
        "stains",
        "--stain-vectors",
        path,
        "--out",
        stained / "out",
    )
    assert shown.returncode == 1
    lines = error_lines(shown)
    assert len(lines) == 1 and lines[0].startswith(f"{path}: error: stain vectors file: {path}: ")
    assert problem in lines[0]
    assert not (stained / "out").exists()


def test_stain_options_are_in_the_help_and_refused_without_stains(stained, capsys):
    text = _segment_help()
    assert "--stain-vectors STAIN_VECTORS" in text and "--stain-background" in text
    assert "[kmeans, gmm, ward, slic; default: 0.15]" in text
    argv = ["segment", str(stained / "a.png"), "-k", "3", "--out", str(stained / "out")]
    assert main([*argv, "--stain-vectors", "estimate"]) == 2
    assert "stain_vectors: used with color_space='stains' only" in capsys.readouterr().err


@pytest.fixture
def halves(tmp_path):
    photo = data.astronaut()[::4, ::4]
    io.imsave(tmp_path / "top.png", photo[:64], check_contrast=False)
    io.imsave(tmp_path / "bottom.png", photo[64:, :96], check_contrast=False)
    io.imsave(tmp_path / "coins.png", data.coins()[::4, ::4], check_contrast=False)
    return tmp_path


def test_pooled_fits_one_model_and_writes_a_folder_per_image(halves, capsys):
    out = halves / "out"
    paths = [halves / "top.png", halves / "coins.png", halves / "bottom.png"]
    argv = ["segment", "--pooled", *map(str, paths), "-k", "4", "--random-state", "0"]
    code = main([*argv, "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 1  # the grey image is reported and left out; the others are pooled
    assert printed.err.count("\n") == 1 and "coins.png: error: it is grey" in printed.err
    assert sorted(p.name for p in out.iterdir()) == ["bottom", "model.json", "top"]
    pooled = npc.segment_many(
        [io.imread(paths[0]), io.imread(paths[2])], "kmeans", 4, random_state=0
    )
    shared = npc.load_model(out / "model.json")
    assert shared.to_dict()["parameters"] == pooled.model.to_dict()["parameters"]
    for name, expected in zip(["top", "bottom"], pooled.results):
        saved = read_result(out / name)
        np.testing.assert_array_equal(saved.labels, expected.labels)
        pd.testing.assert_frame_equal(saved.table, expected.table, check_dtype=False)
        assert saved.table["color"].tolist() == pooled.table["color"].tolist()
        assert saved.params["params"]["pooled"]["images"] == 2
    assert main([*argv, "--out", str(out)]) == 1  # exists already: one line each
    assert "exists already" in capsys.readouterr().err
    assert (
        main([*argv[:3], *map(str, paths[::2]), *argv[5:], "--out", str(out), "--overwrite"]) == 0
    )


def test_pooled_refuses_methods_that_cannot_pool_before_reading(halves):
    shown = run_cli(
        "segment",
        "--pooled",
        halves / "top.png",
        "--method",
        "ward",
        "-k",
        "3",
        "--out",
        halves / "out",
    )
    assert shown.returncode == 2 and "--pooled: method 'ward' cannot fit one model" in shown.stderr
    assert not (halves / "out").exists()


def test_probabilities_are_written_for_methods_that_give_them(halves, capsys):
    out = halves / "out"
    argv = ["segment", str(halves / "top.png"), "--method", "gmm", "-k", "3"]
    assert main([*argv, "--probabilities", "--uncertainty", "entropy", "--out", str(out)]) == 0
    saved = read_result(out / "top")
    seg = npc.segment(io.imread(halves / "top.png"), "gmm", 3)
    np.testing.assert_array_equal(saved.probabilities, np.moveaxis(seg.probabilities(), -1, 0))
    np.testing.assert_array_equal(saved.uncertainty, seg.uncertainty("entropy"))
    applied = halves / "applied"
    model = str(out / "top" / "model.json")
    assert (
        main(
            [
                "apply",
                "--model",
                model,
                str(halves / "top.png"),
                "--probabilities",
                "--out",
                str(applied),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(read_result(applied / "top").uncertainty, seg.uncertainty())
    main(["segment", str(halves / "top.png"), "-k", "3", "--out", str(halves / "km")])
    capsys.readouterr()
    kmeans_model = str(halves / "km" / "top" / "model.json")
    assert (
        main(
            [
                "apply",
                "--model",
                kmeans_model,
                str(halves / "top.png"),
                "--probabilities",
                "--out",
                str(halves / "none"),
            ]
        )
        == 1
    )
    assert "gives no probabilities" in capsys.readouterr().err
    assert not (halves / "none").exists()
    shown = run_cli("segment", halves / "top.png", "-k", "3", "--probabilities", "--out", out)
    assert shown.returncode == 2 and "--probabilities: method 'kmeans' gives no" in shown.stderr


# ------------------------------------------------------------------------ --params replay
def segment_to(folder, *arguments) -> int:
    return main(["segment", *map(str, arguments), "--out", str(folder)])


@pytest.mark.parametrize(
    "options",
    [
        ["--method", "gmm", "-k", "3", "--covariance-type", "diag", "--color-space", "lab"],
        ["-k", "4", "--spatial-weight", "0.5", "--smooth", "1", "--min-region", "15"],
        ["--method", "slic", "--n-segments", "30", "--random-state", "3"],
    ],
    ids=["gmm-lab", "kmeans-clean-up", "slic"],
)
def test_params_json_is_replayed_to_identical_labels(images, options, capsys):
    image = images / "astronaut.png"
    assert segment_to(images / "first", image, "--random-state", "2", *options) == 0
    params = images / "first" / "astronaut" / "params.json"
    assert segment_to(images / "again", "--params", params, image) == 0
    first, again = (
        read_result(images / "first" / "astronaut"),
        read_result(images / "again" / "astronaut"),
    )
    np.testing.assert_array_equal(
        tifffile.imread(images / "again" / "astronaut" / "labels.tif"),
        tifffile.imread(images / "first" / "astronaut" / "labels.tif"),
    )
    pd.testing.assert_frame_equal(again.table, first.table)
    for key, value in first.params["params"].items():
        if key not in ("seconds", "versions"):
            assert again.params["params"][key] == value, key


def test_replayed_stain_vectors_are_the_recorded_ones(stained, capsys):
    argv = ["-k", "3", "--color-space", "stains", "--stain-vectors", "estimate"]
    assert (
        segment_to(stained / "first", stained / "a.png", *argv, "--stain-background", "0.3") == 0
    )
    params = stained / "first" / "a" / "params.json"
    assert (
        segment_to(stained / "again", "--params", params, stained / "a.png", stained / "b.png")
        == 0
    )
    first, again = read_result(stained / "first" / "a"), read_result(stained / "again" / "a")
    np.testing.assert_array_equal(again.labels, first.labels)
    recorded = first.params["params"]["stain_vectors"]["vectors"]
    assert again.params["params"]["stain_vectors"]["vectors"] == recorded
    # b is clustered with a's vectors, not an estimate of its own
    b = read_result(stained / "again" / "b")
    expected = npc.segment(
        io.imread(stained / "b.png"),
        "kmeans",
        3,
        color_space="stains",
        stain_vectors=np.array(recorded),
    )
    np.testing.assert_array_equal(b.labels, expected.labels)


def test_options_given_with_params_override_the_recorded_ones(images, capsys):
    image = images / "astronaut.png"
    argv = ["-k", "4", "--color-space", "lab", "--random-state", "1"]
    assert segment_to(images / "first", image, *argv) == 0
    params = images / "first" / "astronaut" / "params.json"
    assert segment_to(images / "k3", "--params", params, image, "-k", "3", "--n-init", "5") == 0
    expected = npc.segment(
        io.imread(image), "kmeans", 3, color_space="lab", random_state=1, n_init=5
    )
    np.testing.assert_array_equal(read_result(images / "k3" / "astronaut").labels, expected.labels)
    # another method: the recorded features, that method's own parameters
    with pytest.raises(SystemExit) as usage:  # another method needs its own k
        segment_to(images / "gmm", "--params", params, image, "--method", "gmm")
    assert usage.value.code == 2 and "-k/--n-clusters" in capsys.readouterr().err
    assert (
        segment_to(images / "gmm2", "--params", params, image, "--method", "gmm", "-k", "2") == 0
    )
    expected = npc.segment(io.imread(image), "gmm", 2, color_space="lab", random_state=1)
    np.testing.assert_array_equal(
        read_result(images / "gmm2" / "astronaut").labels, expected.labels
    )


@pytest.mark.parametrize(
    "content, problem",
    [
        ("not json", "not valid JSON"),
        ('{"params": {"method": "magic"}}', "no known method is recorded"),
        ('{"params": {"method": "kmeans"}}', "needs a number of clusters"),
        (
            '{"params": {"method": "kmeans", "n_clusters_requested": 3, '
            '"mask": {"pixels_inside": 10, "pixels": 100}}}',
            "made inside a mask (10 of 100 pixels)",
        ),
    ],
    ids=["not-json", "unknown-method", "no-k", "mask"],
)
def test_a_bad_params_file_is_one_line_and_nothing_is_read(images, capsys, content, problem):
    params = images / "params.json"
    params.write_text(content)
    code = segment_to(images / "out", "--params", params, images / "astronaut.png")
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"napari-pixel-clusters: error: --params: {params}: ")
    assert problem in lines[0] and not (images / "out").exists()


def test_params_of_a_pooled_fit_are_replayed_with_pooled_only(halves, capsys):
    paths = [halves / "top.png", halves / "bottom.png"]
    argv = ["--pooled", *paths, "-k", "3", "--color-space", "hsv", "--random-state", "4"]
    assert segment_to(halves / "first", *argv) == 0
    params = halves / "first" / "top" / "params.json"
    assert segment_to(halves / "one", "--params", params, paths[0]) == 1
    line = capsys.readouterr().err.strip()
    assert "fitted on 2 images together; add --pooled" in line and not (halves / "one").exists()
    assert segment_to(halves / "again", "--params", params, "--pooled", *paths) == 0
    for name in ("top", "bottom"):
        np.testing.assert_array_equal(
            read_result(halves / "again" / name).labels,
            read_result(halves / "first" / name).labels,
        )
