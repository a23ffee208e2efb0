"""Reproducible code (core/reproduce.py, ``seg.to_python``): the script a result gives
back, run in a fresh Python process on the image saved to a file, makes exactly the same
labels, for every kind of method and option (L*a*b*, mixtures, Ward, SLIC, Canny,
estimated stain vectors, clean-up, masks, a plane of a stack); edits made since are
replayed (merges, splits, merges of similar clusters) up to painting, which the script
says it cannot replay. The command line's ``--params`` replay is in test_cli.py."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
from skimage import data

import napari_pixel_clusters as npc
from napari_pixel_clusters.core import editing, recluster
from napari_pixel_clusters.core.reproduce import python_script, segment_call

PHOTO = np.ascontiguousarray(data.astronaut()[::4, ::4])
COINS = np.ascontiguousarray(data.coins()[::5, ::5])
IHC = np.ascontiguousarray(data.immunohistochemistry()[::4, ::4])

#: (image, method, n_clusters, options): every kind of call a result can come from
CASES = {
    "kmeans lab": (PHOTO, "kmeans", 5, {"color_space": "lab", "random_state": 3}),
    "gmm": (PHOTO, "gmm", 3, {"covariance_type": "diag", "random_state": 1}),
    "ward grey": (COINS, "ward", 4, {}),
    "slic": (PHOTO, "slic", None, {"n_segments": 40, "compactness": 5.0}),
    "stains estimate": (
        IHC,
        "kmeans",
        3,
        {
            "color_space": "stains",
            "stain_vectors": "estimate",
            "stain_background": 0.2,
            "standardize": True,
        },
    ),
    "clean-up and space": (
        PHOTO,
        "kmeans",
        4,
        {"spatial_weight": 0.5, "smooth": 1, "fill_holes": 30, "min_region": 20, "n_init": 2},
    ),
    "canny": (COINS, "canny", None, {"sigma": 2.0}),
}


def run_scripts(scripts: dict[str, str], tmp_path) -> dict[str, np.ndarray]:
    """Run every script, as written, in one fresh Python process (``runpy``: each in its
    own namespace); the ``labels`` each leaves behind."""
    files = {}
    for name, script in scripts.items():
        path = tmp_path / f"{name.replace(' ', '_')}.py"
        path.write_text(script)
        files[name] = (str(path), str(tmp_path / f"{path.stem}.npy"))
    driver = textwrap.dedent(
        f"""
        import runpy, numpy as np
        for script, out in {list(files.values())!r}:
            np.save(out, runpy.run_path(script, run_name="__main__")["labels"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: np.load(out) for name, (_, out) in files.items()}


@pytest.fixture(scope="module")
def results():
    return {
        name: npc.segment(image, method, k, **options)
        for name, (image, method, k, options) in CASES.items()
    }


def test_scripts_make_the_same_labels_in_a_new_process(results, tmp_path):
    scripts = {}
    for name, (image, *_rest) in CASES.items():
        path = tmp_path / f"{name.replace(' ', '_')}.tif"
        tifffile.imwrite(path, image)
        scripts[name] = results[name].to_python(path)
    labels = run_scripts(scripts, tmp_path)
    for name, seg in results.items():
        np.testing.assert_array_equal(labels[name], seg.labels, err_msg=name)
    # the estimate is not made again: the recorded vectors are given, bit for bit
    stains = scripts["stains estimate"]
    assert "stain_vectors='estimate'" not in stains and "estimated from the image" in stains
    vectors = results["stains estimate"].params["stain_vectors"]["vectors"]
    assert all(repr(value) in stains for row in vectors for value in row)


@pytest.mark.parametrize("name", list(CASES))
def test_the_call_holds_every_parameter_the_run_used(results, name):
    seg = results[name]
    method = npc.METHODS[seg.method]
    call = segment_call(seg.params)
    declared = [p.name for p in (*method.feature_params(), *method.params)]
    assert set(declared) <= set(call.options)
    script = seg.to_python("image.tif")
    for option in call.options:
        assert f"    {option}=" in script
    again = npc.segment(
        CASES[name][0], call.method, call.n_clusters, **call.reading, **call.options
    )
    np.testing.assert_array_equal(again.labels, seg.labels)
    given_as_found = ("stain_vectors", "stain_background")  # an estimate: its vectors
    for key in ("n_clusters_found", "cluster_components", *declared):
        if key not in given_as_found:
            assert again.params.get(key) == seg.params.get(key), key
    vectors = seg.params.get("stain_vectors")
    if vectors is not None:
        assert again.params["stain_vectors"]["vectors"] == vectors["vectors"]


def test_an_image_from_memory_is_a_variable_the_script_asks_for(results, tmp_path):
    seg = results["kmeans lab"]
    placeholder = seg.to_python()
    assert "define `image` before this line" in placeholder and "imread" not in placeholder
    named = seg.to_python("photo")
    assert "npc.segment(\n    photo," in named and "`photo`" in named
    np.save(tmp_path / "photo.npy", PHOTO)
    for script, variable in ((placeholder, "image"), (named, "photo")):
        namespace = runpy.run_path(
            _with_lines(
                tmp_path,
                f"import numpy\n{variable} = numpy.load({str(tmp_path / 'photo.npy')!r})\n"
                + script,
            )
        )
        np.testing.assert_array_equal(namespace["labels"], seg.labels)


def _with_lines(tmp_path, text: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(text)
    return str(path)


def test_a_mask_is_read_from_its_file_or_asked_for(tmp_path):
    inside = np.zeros(PHOTO.shape[:2], np.uint8)
    inside[20:100, 10:90] = 3
    seg = npc.segment(PHOTO, "gmm", 3, mask=inside, random_state=0)
    asked = seg.to_python(tmp_path / "photo.tif")
    assert "`mask`: the mask the result was made inside (6,400 of 16,384 pixels" in asked
    assert "    mask=mask," in asked
    tifffile.imwrite(tmp_path / "photo.tif", PHOTO)
    tifffile.imwrite(tmp_path / "inside.tif", inside)
    script = seg.to_python(tmp_path / "photo.tif", mask=tmp_path / "inside.tif")
    labels = run_scripts({"masked": script}, tmp_path)["masked"]
    np.testing.assert_array_equal(labels, seg.labels)
    assert (labels[inside == 0] == 0).all()


def test_a_plane_of_a_stack_is_taken_as_the_widget_takes_it(tmp_path):
    stack = np.stack([COINS, COINS[::-1], COINS[:, ::-1]])
    seg = npc.segment(stack[1][np.newaxis], "kmeans", 3, random_state=0)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    script = python_script(seg.params, image=tmp_path / "stack.tif", plane=(1,))
    assert "image = image[1][np.newaxis]" in script
    np.testing.assert_array_equal(run_scripts({"plane": script}, tmp_path)["plane"], seg.labels)


def test_edits_are_replayed_up_to_painting(results, tmp_path):
    seg = results["kmeans lab"]
    labels, table = seg.labels.copy(), seg.table
    records = []

    def applied(edit):
        records.append(edit.record)
        return edit.apply_in_place(labels)

    table = applied(editing.plan_merge(labels, table, [1, 4]))
    table = applied(recluster.plan_split(labels, table, PHOTO, 2, 3, seg.params))
    named = editing.rename_cluster(table, 3, "sky's")
    table = applied(
        editing.table_edit("rename", table, named, record=editing.rename_record(3, "sky's"))
    )
    table = applied(recluster.plan_merge_similar(labels, table, PHOTO, 4, seg.params))
    tifffile.imwrite(tmp_path / "photo.tif", PHOTO)
    script = python_script(seg.params, image=tmp_path / "photo.tif", edits=records)
    assert "from napari_pixel_clusters.core import editing, recluster" in script
    replayed = run_scripts({"edited": script}, tmp_path)["edited"]
    np.testing.assert_array_equal(replayed, labels)
    assert len(np.unique(labels[labels > 0])) == 4
    # painting ends the replay, and the script says so
    painted = python_script(
        seg.params, image="photo", edits=[records[0], editing.painting_record(2), records[1]]
    )
    assert "merge_clusters" in painted and "split_cluster" not in painted
    assert "Then painting in napari, which code cannot replay" in painted


def test_params_read_back_from_a_result_folder_give_the_same_call(results, tmp_path):
    seg = results["stains estimate"]
    folder = npc.write_result(seg, tmp_path / "ihc")
    params = json.loads((folder / "params.json").read_text())["params"]
    assert segment_call(params) == segment_call(seg.params)


@pytest.mark.parametrize(
    "params, message",
    [
        ("kmeans", "params: expected a result's params"),
        ({}, "params: no known method is recorded"),
        ({"method": "gmm"}, "params: method 'gmm' needs a number of clusters"),
    ],
)
def test_params_that_say_no_call_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        segment_call(params)


def test_overriding_options_drops_the_stain_vectors_they_contradict(results):
    call = segment_call(results["stains estimate"].params)
    assert isinstance(call.options["stain_vectors"], dict)
    plain = call.overridden({"color_space": "lab"})
    assert "stain_vectors" not in plain.options and plain.options["color_space"] == "lab"
    k = call.overridden({"random_state": 7}).options
    assert k["random_state"] == 7 and k["stain_vectors"] == call.options["stain_vectors"]


def test_a_result_of_a_pooled_fit_calls_segment_many_on_every_image():
    top, bottom = PHOTO[:64], PHOTO[64:, :100]
    pooled = npc.segment_many([top, bottom], "gmm", 3, color_space="hsv", random_state=2)
    script = pooled.results[1].to_python("bottom.png")
    assert "pooled = npc.segment_many(\n    images," in script
    assert "this result is of image 2, the file 'bottom.png'" in script
    assert "imread" not in script
    namespace = {"images": [top, bottom]}
    exec(script, namespace)  # the script the result gave
    np.testing.assert_array_equal(namespace["labels"], pooled.results[1].labels)
