"""SLIC superpixels (core/methods/slic.py): scikit-image's slic on the same pixels, label for
label, and the method in the API, the widget, the command line and result folders."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage
from skimage import color, data, io, measure
from skimage.segmentation import slic

import napari_pixel_clusters as npc
from napari_pixel_clusters.cli import build_parser, main
from napari_pixel_clusters.core.export import read_result, write_result

PLUGIN, WIDGET = "napari-pixel-clusters", "Pixel clusters"


@pytest.fixture(scope="module")
def cat():
    return data.chelsea()[::3, ::3].copy()  # (100, 151, 3) uint8


@pytest.fixture(scope="module")
def coins():
    return data.coins()[::3, ::3].copy()  # (101, 128) uint8


def nearest_filled(values, usable):
    """Every pixel without data given its nearest usable pixel's values (built here, apart
    from the module, for the oracle)."""
    index = ndimage.distance_transform_edt(~usable, return_distances=False, return_indices=True)
    return values[tuple(index)]


# ------------------------------------------------------------------ oracle: slic itself
def test_default_on_rgb_is_slic_of_the_image(cat):
    """By default an RGB image is clustered in Lab with compactness 10: slic(image)."""
    seg = npc.segment(cat, "slic")
    np.testing.assert_array_equal(seg.labels, slic(cat))
    assert seg.params["color_space_used"] == "lab" and seg.params["convert2lab"] is True
    assert seg.params["compactness_used"] == 10.0 and seg.params["mask_slic"] is False
    assert seg.n_clusters == seg.score["superpixels"] == len(seg.table)


@pytest.mark.parametrize(
    "color_space, oracle_input, convert2lab, compactness",
    [
        ("lab", lambda rgb: rgb, True, 10.0),
        ("rgb", lambda rgb: rgb, False, 0.1),
        ("hsv", color.rgb2hsv, False, 0.1),
    ],
)
def test_each_color_space_is_what_slic_clusters_in(
    cat, color_space, oracle_input, convert2lab, compactness
):
    seg = npc.segment(cat, "slic", color_space=color_space, n_segments=60)
    expected = slic(
        oracle_input(cat), n_segments=60, compactness=compactness, convert2lab=convert2lab
    )
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.params["compactness_used"] == compactness


def test_explicit_parameters_are_passed_to_slic(cat):
    options = {
        "n_segments": 40,
        "compactness": 25.0,
        "sigma": 1.5,
        "max_num_iter": 4,
        "min_size_factor": 0.2,
    }
    seg = npc.segment(cat, "slic", color_space="lab", **options)
    np.testing.assert_array_equal(seg.labels, slic(cat, **options))
    loose = npc.segment(cat, "slic", n_segments=40, enforce_connectivity=False, slic_zero=True)
    expected = slic(cat, n_segments=40, enforce_connectivity=False, slic_zero=True)
    # without connectivity slic may leave label numbers unused: ours run 1..n in its order
    _, expected_compact = np.unique(expected, return_inverse=True)
    np.testing.assert_array_equal(loose.labels, expected_compact.reshape(expected.shape) + 1)


def test_grey_image_is_slic_with_compactness_for_values_0_to_1(coins):
    seg = npc.segment(coins, "slic", n_segments=80, sigma=1.0)
    expected = slic(coins, n_segments=80, compactness=0.1, sigma=1.0, channel_axis=None)
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.params["color_space_used"] is None and seg.params["convert2lab"] is False


def test_float_images_are_stretched_by_slic_so_their_scale_does_not_matter(coins):
    scaled = coins.astype(np.float64) * 37.5 - 1000.0
    seg = npc.segment(scaled, "slic", n_segments=80)
    same = seg.labels == npc.segment(coins, "slic", n_segments=80).labels
    assert same.mean() > 0.99  # the same up to rounding in the stretch


def test_standardize_scales_each_channel_before_slic():
    rng = np.random.default_rng(1)
    base = data.coins()[::4, ::4].astype(np.float64)
    image = np.stack([base * 1000.0, rng.normal(0, 1, base.shape)])  # (2, y, x)
    seg = npc.segment(image, "slic", channel_axis=0, standardize=True, n_segments=50)
    channels = np.moveaxis(image, 0, -1)
    z = (channels - channels.mean(axis=(0, 1))) / channels.std(axis=(0, 1))
    expected = slic(z, n_segments=50, compactness=0.1, convert2lab=False, channel_axis=-1)
    np.testing.assert_array_equal(seg.labels, expected)
    np.testing.assert_allclose(seg.params["scale"], channels.std(axis=(0, 1)))


# ------------------------------------------------------------------ stacks
def test_a_grey_stack_gives_3d_supervoxels():
    rng = np.random.default_rng(0)
    blobs = data.binary_blobs(length=40, n_dim=3, rng=1).astype(np.float64)
    volume = (blobs + rng.normal(0, 0.1, blobs.shape))[:12]  # (z, y, x)
    seg = npc.segment(volume, "slic", n_segments=60)
    expected = slic(volume, n_segments=60, compactness=0.1, channel_axis=None)
    np.testing.assert_array_equal(seg.labels, expected)
    planes_of = [np.unique(np.nonzero(seg.labels == label)[0]) for label in (1, seg.n_clusters)]
    assert all(len(planes) > 1 for planes in planes_of), "supervoxels span several planes"


def test_an_rgb_stack_gives_3d_supervoxels_in_lab(cat):
    stack = np.stack([np.roll(cat, 3 * i, axis=1) for i in range(4)])  # (z, y, x, 3)
    seg = npc.segment(stack, "slic", rgb=True, n_segments=80)
    np.testing.assert_array_equal(seg.labels, slic(stack, n_segments=80, channel_axis=-1))
    assert seg.labels.shape == stack.shape[:-1]


def test_four_axes_are_segmented_one_volume_at_a_time(coins):
    volumes = np.stack(
        [np.stack([np.roll(coins, 5 * (t + z), axis=0) for z in range(3)]) for t in range(2)]
    )  # (t, z, y, x)
    seg = npc.segment(volumes, "slic", n_segments=30)
    found = 0
    for t in range(2):
        expected = slic(volumes[t], n_segments=30, compactness=0.1, channel_axis=None)
        np.testing.assert_array_equal(seg.labels[t], expected + found)
        found += expected.max()
    assert seg.n_clusters == found and seg.params["volumes"] == 2


# ------------------------------------------------------------------ pixels without data
@pytest.fixture
def coins_with_nan(coins):
    image = coins.astype(np.float64)
    image[20:45, 30:70] = np.nan
    image.flat[::17] = np.nan
    return image


def test_nan_pixels_are_slics_mask_and_get_label_0(coins_with_nan):
    usable = np.isfinite(coins_with_nan)
    seg = npc.segment(coins_with_nan, "slic", n_segments=70)
    expected = slic(coins_with_nan, n_segments=70, compactness=0.1, mask=usable, channel_axis=None)
    np.testing.assert_array_equal(seg.labels, expected)
    assert np.all(seg.labels[~usable] == 0) and np.all(seg.labels[usable] > 0)
    assert seg.params["mask_slic"] is True


def test_blur_does_not_spread_nan_pixels_filled_from_their_nearest(coins_with_nan):
    usable = np.isfinite(coins_with_nan)
    seg = npc.segment(coins_with_nan, "slic", n_segments=70, sigma=2.0)
    filled = nearest_filled(coins_with_nan, usable)
    expected = slic(
        filled, n_segments=70, compactness=0.1, sigma=2.0, mask=usable, channel_axis=None
    )
    np.testing.assert_array_equal(seg.labels, expected)
    assert np.all(seg.labels[usable] > 0)


def test_transparent_pixels_are_masked_out(cat):
    rgba = np.dstack([cat, np.full(cat.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    seg = npc.segment(rgba, "slic", n_segments=50)
    visible = rgba[..., 3] > 0
    np.testing.assert_array_equal(seg.labels, slic(cat, n_segments=50, mask=visible))
    assert np.all(seg.labels[~visible] == 0) and np.all(seg.labels[visible] > 0)


# ------------------------------------------------------------------ invariants and table
@pytest.mark.parametrize("n_segments", [20, 100, 400])
def test_about_n_segments_superpixels_covering_every_pixel(cat, n_segments):
    seg = npc.segment(cat, "slic", n_segments=n_segments)
    assert 0.4 * n_segments <= seg.n_clusters <= 1.3 * n_segments
    np.testing.assert_array_equal(np.unique(seg.labels), np.arange(1, seg.n_clusters + 1))
    np.testing.assert_array_equal(
        npc.segment(cat, "slic", n_segments=n_segments).labels, seg.labels
    )
    assert seg.params["n_clusters_requested"] is None and "random_state" not in seg.params


def test_higher_compactness_gives_rounder_superpixels(cat):
    def roundness(labels):  # 4 pi area / perimeter^2: 1 for a disc, about 0.8 for a square
        regions = measure.regionprops(labels)
        return np.mean([4 * np.pi * r.area / max(r.perimeter, 1) ** 2 for r in regions])

    shapes = [roundness(npc.segment(cat, "slic", compactness=c).labels) for c in (1, 10, 100)]
    assert shapes == sorted(shapes) and shapes[-1] > 1.5 * shapes[0]


def test_the_table_and_quantized_image_are_the_superpixel_means(coins_with_nan, cat):
    seg = npc.segment(cat, "slic", n_segments=40)
    table = seg.table
    for label in (1, seg.n_clusters // 2, seg.n_clusters):
        inside = cat[seg.labels == label].astype(np.float64)
        row = table[table["label"] == label].iloc[0]
        assert row["pixels"] == len(inside)
        np.testing.assert_allclose(
            row[["mean_R", "mean_G", "mean_B"]].to_numpy(float), inside.mean(0)
        )
    quantized = seg.quantized()
    means = np.array([cat[seg.labels == i].mean(0) for i in range(1, seg.n_clusters + 1)])
    assert np.abs(quantized.astype(float) - means[seg.labels - 1]).max() <= 0.5

    grey = npc.segment(coins_with_nan, "slic", n_segments=30)
    usable = np.isfinite(coins_with_nan)
    by_hand = ndimage.mean(coins_with_nan, grey.labels, np.arange(1, grey.n_clusters + 1))
    np.testing.assert_allclose(grey.table["mean_intensity"], by_hand)
    assert grey.table["pixels"].sum() == usable.sum()
    np.testing.assert_array_equal(np.isnan(grey.quantized()), ~usable)


# ------------------------------------------------------------------ refusals
def test_what_slic_cannot_do_is_a_clear_error(coins, cat):
    with pytest.raises(ValueError, match=r"^spatial_weight: method 'slic' does not take it"):
        npc.segment(cat, "slic", spatial_weight=0.5)  # compactness weighs position
    with pytest.raises(ValueError, match=r"^n_clusters: method 'slic' chooses how many"):
        npc.segment(coins, "slic", 5)
    with pytest.raises(ValueError, match=r"^color_space: 'lab' applies to RGB images"):
        npc.segment(coins, "slic", color_space="lab")
    with pytest.raises(ValueError, match=r"^compactness: must be at least"):
        npc.segment(coins, "slic", compactness=0.0)


def test_a_dask_image_is_refused_naming_the_method(coins):
    with pytest.raises(ValueError, match=r"^method: 'slic' needs the whole image in memory"):
        npc.segment(da.from_array(coins, chunks=50), "slic")
    with pytest.raises(ValueError, match=r"^method: 'slic' needs the whole image in memory"):
        npc.segment([coins, coins[::2, ::2]], "slic")  # a pyramid


# ------------------------------------------------------------------ saving
def test_no_model_but_result_folders_round_trip(cat, tmp_path):
    seg = npc.segment(cat, "slic", n_segments=50)
    assert seg.model is None
    with pytest.raises(ValueError, match=r"^model: a 'slic' result has no model to save"):
        npc.save_model(seg, tmp_path / "model.json")
    folder = write_result(seg, tmp_path / "cat", source="chelsea")
    assert not (folder / "model.json").exists()
    saved = read_result(folder)
    np.testing.assert_array_equal(saved.labels, seg.labels)
    np.testing.assert_array_equal(saved.quantized, seg.quantized())
    assert list(saved.table["label"]) == list(seg.table["label"])
    np.testing.assert_allclose(saved.table["mean_G"], seg.table["mean_G"])
    assert saved.params["params"]["method"] == "slic"
    assert saved.params["params"]["n_segments"] == 50 and saved.model is None


def test_a_folder_with_more_than_1000_superpixels_reads_back(tmp_path):
    image = np.random.default_rng(0).random((96, 96))
    seg = npc.segment(image, "slic", n_segments=1500)
    assert seg.n_clusters > 1000
    saved = read_result(write_result(seg, tmp_path / "many"))
    np.testing.assert_array_equal(saved.labels, seg.labels)


# ------------------------------------------------------------------ command line
def test_segment_help_lists_slic_and_its_options():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    text = " ".join(subparsers["segment"].format_help().split())
    assert "slic" in next(a.choices for a in subparsers["segment"]._actions if a.dest == "method")
    for option in (
        "--n-segments N_SEGMENTS About how many superpixels",
        "[slic; default: 100]",
        "--compactness COMPACTNESS Weight of position against color",
        "--max-num-iter",
        "--slic-zero",
        "not taken by canny, slic",
    ):
        assert option in text, option


def test_the_command_line_segments_with_slic(tmp_path, coins, capsys):
    io.imsave(tmp_path / "coins.png", coins, check_contrast=False)
    out = tmp_path / "out"
    argv = ["segment", str(tmp_path / "coins.png"), "--method", "slic", "--out", str(out)]
    assert main([*argv, "--n-segments", "60", "--sigma", "1"]) == 0
    expected = npc.segment(coins, "slic", n_segments=60, sigma=1.0)
    saved = read_result(out / "coins")
    np.testing.assert_array_equal(saved.labels, expected.labels)
    assert f"({expected.n_clusters} clusters" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main([*argv, "-k", "3"])
    assert usage.value.code == 2
    assert "method 'slic' takes no number of clusters" in capsys.readouterr().err


# ------------------------------------------------------------------ the napari widget
def test_the_widget_offers_slic_with_its_parameters_and_runs_it(make_napari_viewer, qtbot, cat):
    viewer = make_napari_viewer()
    viewer.add_image(cat, name="cat")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    assert "slic" in widget._method.choices
    assert widget._method.native.itemText(widget._method.choices.index("slic")) == (
        "SLIC superpixels"
    )
    widget._method.value = "slic"
    controls = widget._method_params["slic"]
    for param in npc.METHODS["slic"].params:
        assert controls[param.name].tooltip.startswith(param.help)
        assert controls[param.name].native.isHidden() == param.advanced
    assert widget._n_clusters.native.isHidden()
    assert not widget._feature_widgets["color_space"].native.isHidden()
    assert not widget._outputs["quantized"].native.isHidden()
    assert widget._summary.value == npc.METHODS["slic"].summary

    controls["n_segments"].value = 50
    controls["sigma"].value = 1.0
    widget._feature_widgets["color_space"].value = "lab"
    widget._run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)

    expected = npc.segment(cat, "slic", n_segments=50, sigma=1.0, color_space="lab")
    clusters = viewer.layers["cat SLIC superpixels#1 clusters"]
    np.testing.assert_array_equal(clusters.data, expected.labels)
    np.testing.assert_array_equal(clusters.data, slic(cat, n_segments=50, sigma=1.0))
    assert list(clusters.features["pixels"]) == list(expected.table["pixels"])
    quantized = viewer.layers["cat SLIC superpixels#1 quantized"]
    np.testing.assert_array_equal(quantized.data, expected.quantized())


@pytest.mark.parametrize("inside", [[(10, 10)], [(10, 10), (40, 50)], [(0, 0), (0, 1), (1, 0)]])
def test_mask_pieces_too_small_for_a_seed_get_labels(inside):
    """maskSLIC seeds nothing in a one-pixel piece of the mask; every pixel with data is
    labelled all the same, one superpixel per connected piece slic left unlabelled."""
    image = data.astronaut()[:64, :64]
    mask = np.zeros(image.shape[:2], bool)
    for y, x in inside:
        mask[y, x] = True
    seg = npc.segment(image, "slic", mask=mask)
    assert np.all((seg.labels > 0) == mask)
    n_pieces = ndimage.label(mask)[1]
    assert seg.n_clusters == len(np.unique(seg.labels[mask])) >= n_pieces
    assert 0 <= seg.params["unseeded_pieces"] <= n_pieces
    if len(inside) == 1:  # slic alone gives no superpixel here
        assert seg.params["unseeded_pieces"] == 1
        assert slic(image, mask=mask, start_label=1).max() == 0
    assert seg.table["pixels"].sum() == mask.sum()


def test_large_mask_pieces_keep_slics_labels():
    image = data.astronaut()[:96, :96]
    mask = np.zeros(image.shape[:2], bool)
    mask[8:80, 8:80] = True
    seg = npc.segment(image, "slic", mask=mask, n_segments=20)
    expected = slic(image, n_segments=20, mask=mask, start_label=1)
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.params["unseeded_pieces"] == 0
