"""Drive the "Cluster colors" widget on a clusters layer made by Pixel clusters."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backend_bases import MouseButton, MouseEvent
from matplotlib.colors import to_hex
from skimage import color, data

from conftest import run_pixel_clusters
from napari_pixel_clusters.gui.cluster_colors import CLUSTER_COLOR

PLUGIN = "napari-pixel-clusters"


@pytest.fixture
def colors_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(data.astronaut()[::4, ::4].copy(), name="astronaut")
    run_pixel_clusters(viewer, qtbot, color_space="lab", quantized=False)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster colors")
    widget._sample_size.value = 1000
    widget.update()
    return viewer, widget, viewer.layers["astronaut k-means#1 clusters"]


def mouse(canvas, kind, axes, x, y):
    px, py = axes.transData.transform((x, y))
    MouseEvent(kind, canvas, px, py, MouseButton.LEFT)._process()


def test_bar_shows_each_cluster_as_wide_as_its_share(colors_widget):
    _, widget, layer = colors_widget
    assert widget._layer.value is layer
    widths = [patch.get_width() for patch in widget.bar_patches]
    np.testing.assert_allclose(widths, layer.features["fraction"])
    assert [to_hex(p.get_facecolor()) for p in widget.bar_patches] == list(layer.features["color"])
    mouse(widget.canvas, "motion_notify_event", widget.bar_axes, widths[0] / 2, 0)
    expected = f"cluster 1: {100 * layer.features['fraction'][0]:.1f} % of pixels"
    assert widget.hover_text.get_visible() and widget.hover_text.get_text() == expected


def test_scatter_shows_the_sample_in_lab_with_centers(colors_widget):
    _, widget, layer = colors_widget
    assert len(widget.scatter_axes) == 3
    assert [a.get_xlabel() + a.get_ylabel() for a in widget.scatter_axes] == ["La", "Lb", "ab"]
    assert all(len(points.get_offsets()) == 1000 for points in widget.points)
    centers = widget.center_marks[0].get_offsets()
    assert len(centers) == 4
    mean_rgb = layer.features[["mean_R", "mean_G", "mean_B"]].to_numpy() / 255
    np.testing.assert_allclose(centers, color.rgb2lab(mean_rgb)[:, :2])
    sample = widget.sample
    labelled = layer.data.reshape(-1)
    assert set(np.unique(sample.labels)) <= set(np.unique(labelled[labelled > 0]))


def test_points_colored_by_own_or_cluster_color(colors_widget):
    _, widget, _layer = colors_widget
    own = widget.points[0].get_facecolors()[:, :3].copy()
    widget._color_by.value = CLUSTER_COLOR
    by_cluster = widget.points[0].get_facecolors()[:, :3]
    assert len(np.unique(np.round(by_cluster, 4), axis=0)) <= 4
    assert len(np.unique(np.round(own, 4), axis=0)) > 4


def test_clicking_a_center_or_the_bar_selects_the_cluster(colors_widget):
    _, widget, layer = colors_widget
    axes, centers = widget.scatter_axes[2], widget.center_marks[2].get_offsets()
    mouse(widget.canvas, "button_press_event", axes, *centers[2])
    assert layer.selected_label == 3 and layer.show_selected_label
    widths = np.cumsum(layer.features["fraction"])
    mouse(widget.canvas, "button_press_event", widget.bar_axes, (widths[0] + widths[1]) / 2, 0)
    assert layer.selected_label == 2


def test_lasso_selects_the_clusters_around_it(colors_widget):
    _, widget, layer = colors_widget
    centers = widget.sample.centers[:, [1, 2]]
    first = centers[0]
    box = [
        (first[0] - 1, first[1] - 1),
        (first[0] + 1, first[1] - 1),
        (first[0] + 1, first[1] + 1),
        (first[0] - 1, first[1] + 1),
    ]
    widget._on_lasso(box, 1, 2)
    assert layer.selected_label == 1
    everything = [(-500, -500), (500, -500), (500, 500), (-500, 500)]
    widget._on_lasso(everything, 1, 2)
    assert layer.selected_label == int(layer.features.set_index("index")["pixels"].idxmax())
    assert widget._status.value.startswith("lasso:")


def test_painting_shows_after_update(colors_widget):
    _, widget, layer = colors_widget
    layer.data = np.where(layer.data > 0, 1, 0).astype(layer.data.dtype)
    widget.update()
    assert set(np.unique(widget.sample.labels)) == {1}


def test_open_3d_view(colors_widget, make_napari_viewer, monkeypatch):
    import napari

    _, widget, _ = colors_widget
    monkeypatch.setattr(napari, "Viewer", lambda **kwargs: make_napari_viewer(**kwargs))
    viewer3d = widget.open_3d()
    assert viewer3d.dims.ndisplay == 3
    assert viewer3d.layers["pixels"].data.shape == (1000, 3)
    assert len(viewer3d.layers["cluster centers"].data) == 4
    assert list(viewer3d.dims.axis_labels) == ["L", "a", "b"]


def test_a_large_pyramid_is_plotted_from_a_small_level(make_napari_viewer, qtbot):
    import dask.array as da

    viewer = make_napari_viewer()
    photo = np.tile(data.astronaut()[::2, ::2], (4, 4, 1))  # 1024 x 1024
    levels = [da.from_array(photo[::s, ::s], chunks=(128, 128, 3)) for s in (1, 2, 4, 8)]
    viewer.add_image(levels, name="slide", rgb=True, multiscale=True)
    run_pixel_clusters(viewer, qtbot, color_space="lab", quantized=False)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster colors")
    widget._sample_size.value = 1000
    widget.update()
    layer = viewer.layers["slide k-means#1 clusters"]
    assert widget.sample is not None and len(widget.sample.labels) == 1000
    # 256 x 256 = 65,536 pixels is the smallest level with 20 per sampled pixel
    level = layer.data[2].compute().reshape(-1)
    assert set(np.unique(widget.sample.labels)) <= set(np.unique(level[level > 0]))
    assert [to_hex(p.get_facecolor()) for p in widget.bar_patches] == list(layer.features["color"])


def test_open_3d_is_offered_for_rgb_images(colors_widget):
    _, widget, _ = colors_widget
    assert not widget._open_3d.native.isHidden()
    assert not widget._color_by.native.isHidden()


@pytest.fixture
def grey_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(data.coins()[::4, ::4].copy(), name="coins")
    run_pixel_clusters(viewer, qtbot, n_clusters=3, quantized=False)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster colors")
    layer = next(layer for layer in viewer.layers if layer.name.endswith("clusters"))
    return viewer, widget, layer


def test_a_grey_image_gets_a_histogram_stacked_by_cluster(grey_widget):
    viewer, widget, layer = grey_widget
    assert widget.hist_axes is not None and widget.scatter_axes == []
    image = viewer.layers["coins"].data
    edges = widget.hist_edges
    expected, _ = np.histogram(image[layer.data > 0], bins=edges)
    heights = np.array([[bar.get_height() for bar in bars] for bars in widget.hist_bars])
    np.testing.assert_array_equal(heights.sum(axis=0), expected)  # every pixel counted once
    for label, bars in zip(layer.features["index"], widget.hist_bars):  # each in its cluster
        mine, _ = np.histogram(image[layer.data == label], bins=edges)
        np.testing.assert_array_equal([bar.get_height() for bar in bars], mine)
        color = layer.features.set_index("index").loc[label, "color"]
        assert {to_hex(bar.get_facecolor()) for bar in bars} == {color}
    # the cluster centers are marked at each cluster's mean grey level
    centers = widget.center_marks[0].get_offsets()[:, 0]
    np.testing.assert_allclose(centers, layer.features["mean_intensity"])
    # no 3-D color space and no point colors for a grey image
    assert widget._open_3d.native.isHidden() and widget._color_by.native.isHidden()


def test_clicking_the_histogram_selects_the_cluster_under_the_mouse(grey_widget):
    _, widget, layer = grey_widget
    column = int(np.argmax(widget.hist_counts.sum(axis=0)))
    counts = widget.hist_counts[:, column]
    row = int(np.argmax(counts))
    x = (widget.hist_edges[column] + widget.hist_edges[column + 1]) / 2
    y = counts[:row].sum() + counts[row] / 2  # the middle of that cluster's segment
    mouse(widget.canvas, "button_press_event", widget.hist_axes, x, y)
    label = int(layer.features["index"][row])
    assert layer.selected_label == label and layer.show_selected_label
    # the histogram is veiled and that cluster's bars are drawn again over the veil
    assert widget.veils[-1].get_visible() and widget.veils[-1].axes is widget.hist_axes
    drawn_over = widget.highlighted()
    assert all(bar in drawn_over for bar in widget.hist_bars[row])
    assert not any(
        bar in drawn_over for i, bars in enumerate(widget.hist_bars) if i != row for bar in bars
    )


def test_an_auto_color_space_is_plotted_in_the_methods_own(make_napari_viewer, qtbot):
    """SLIC with color space "auto" compares pixels in L*a*b*: its plots say so."""
    viewer = make_napari_viewer()
    viewer.add_image(data.astronaut()[::8, ::8].copy(), name="astronaut")
    _, pixel_clusters = viewer.window.add_plugin_dock_widget(PLUGIN, "Pixel clusters")
    pixel_clusters._method.value = "slic"
    assert pixel_clusters._feature_widgets["color_space"].value is None  # auto
    pixel_clusters._run_button.native.click()
    qtbot.waitUntil(lambda: pixel_clusters._worker is None, timeout=60_000)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster colors")
    widget.update()
    assert [a.get_xlabel() + a.get_ylabel() for a in widget.scatter_axes] == ["La", "Lb", "ab"]


@pytest.mark.parametrize(
    "space, names",
    [
        ("hed", ["hematoxylin", "eosin", "DAB"]),
        ("hdab", ["hematoxylin", "DAB", "residual"]),
        ("stains", ["stain 1", "stain 2", "residual"]),  # estimated (the widget's default)
    ],
)
def test_stain_results_are_plotted_with_the_stains_on_the_axes(
    make_napari_viewer, qtbot, space, names
):
    """The axes are the stains' names; the points are the pixels' concentrations with the
    result's own vectors (for "stains", those recorded in its metadata)."""
    viewer = make_napari_viewer()
    ihc = np.ascontiguousarray(data.immunohistochemistry()[:64, :64])
    viewer.add_image(ihc, name="ihc")
    run_pixel_clusters(viewer, qtbot, color_space=space, n_clusters=3, quantized=False)
    layer = viewer.layers["ihc k-means#1 clusters"]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cluster colors")
    widget._sample_size.value = 500
    widget.update()
    pairs = [(a.get_xlabel(), a.get_ylabel()) for a in widget.scatter_axes]
    assert pairs == [(names[0], names[1]), (names[0], names[2]), (names[1], names[2])]
    params = layer.metadata["napari_pixel_clusters"]["params"]
    if space == "stains":
        matrix = np.linalg.inv(np.array(params["stain_vectors"]["vectors"]))
    else:
        matrix = color.hed_from_rgb if space == "hed" else color.hdx_from_rgb
    sample = widget.sample
    concentrations = color.separate_stains(ihc.reshape(-1, 3), matrix)
    assert sample.coords.shape == (500, 3)
    gaps = [np.abs(concentrations - row).max(axis=1).min() for row in sample.coords]
    assert max(gaps) < 1e-12  # every plotted point is a pixel's concentrations
