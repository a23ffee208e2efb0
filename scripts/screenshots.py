"""Regenerate the README's screenshots: the real viewer and widget, driven like a person.

    xvfb-run -a python scripts/screenshots.py      # on a machine without a display
    xvfb-run -a python scripts/screenshots.py canny_coins   # only some shots

Each shot opens a sample, sets the widget's choices (the shared ones through
the viewer's shared settings, as another widget would), presses Run, waits for the worker,
hides what would clutter the view and saves the whole window to docs/images/.
"""

from __future__ import annotations

import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_pixel_clusters.gui.state import shared_settings

OUT = Path(__file__).resolve().parent.parent / "docs" / "images"
SIZE = (1440, 900)


def camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9)."""
    return getattr(viewer, "scene", viewer).camera


def run_widget(widget, timeout=120):
    widget._run_button.native.click()
    started = time.time()
    while widget._worker is not None and time.time() - started < timeout:
        QApplication.processEvents()
        time.sleep(0.02)


def shot(viewer, name, visible):
    for layer in viewer.layers:
        layer.visible = layer.name in visible
    viewer.reset_view()
    QApplication.processEvents()
    viewer.screenshot(str(OUT / name), canvas_only=False, flash=False)
    print("saved", OUT / name)


def new_viewer(sample):
    viewer = napari.Viewer(title="napari-pixel-clusters")
    viewer.window._qt_window.resize(*SIZE)
    viewer.open_sample("napari-pixel-clusters", sample)
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    return viewer, widget


def kmeans_astronaut():
    viewer, widget = new_viewer("astronaut")
    shared_settings(viewer).update(n_clusters=6, color_space="lab")
    widget._outputs["outlines"].value = True
    run_widget(widget)
    viewer.layers["astronaut k-means#1 clusters"].opacity = 1.0
    shot(viewer, "kmeans_clusters.png", {"astronaut k-means#1 clusters"})
    shot(viewer, "kmeans_quantized.png", {"astronaut k-means#1 quantized"})
    shot(viewer, "kmeans_outlines.png", {"astronaut", "astronaut k-means#1 outlines"})
    viewer.close()


def ward_coins():
    viewer, widget = new_viewer("coins")
    shared_settings(viewer).update(method="ward", n_clusters=27)
    widget._outputs["quantized"].value = False  # full resolution (downscale auto)
    widget._outputs["outlines"].value = True
    widget._random_colors.value = True
    run_widget(widget)
    shot(viewer, "ward_coins.png", {"coins", "coins Ward#1 outlines"})
    viewer.close()


def slic_astronaut():
    viewer, widget = new_viewer("astronaut")
    shared_settings(viewer).update(method="slic")
    widget._outputs["quantized"].value = True
    widget._outputs["outlines"].value = True
    run_widget(widget)
    shown = {
        "astronaut",
        *(n.name for n in viewer.layers if n.name.endswith(("quantized", "outlines"))),
    }
    shot(viewer, "slic_astronaut.png", shown)
    viewer.close()


def gmm_random_colors():
    viewer, widget = new_viewer("immunohistochemistry")
    shared_settings(viewer).update(method="gmm", n_clusters=4)
    widget._outputs["quantized"].value = False
    widget._random_colors.value = True
    run_widget(widget)
    shot(
        viewer,
        "gmm_random_colors.png",
        {"immunohistochemistry", "immunohistochemistry Gaussian mixture#1 clusters"},
    )
    viewer.close()


def gmm_probabilities():
    """A Gaussian mixture (k=3) of the IHC sample with its probabilities and uncertainty:
    the probabilities layer shown on the DAB cluster (the slider over the clusters), the
    outputs ticked in the dock."""
    viewer, widget = new_viewer("immunohistochemistry")
    shared_settings(viewer).update(method="gmm", n_clusters=3)
    widget._outputs["quantized"].value = False
    widget._outputs["probabilities"].value = True
    widget._outputs["uncertainty"].value = True
    run_widget(widget)
    run = "immunohistochemistry Gaussian mixture#1"
    clusters = viewer.layers[f"{run} clusters"]
    probabilities = viewer.layers[f"{run} probabilities"]
    # the DAB (brown) cluster: the most red against blue of the clusters' mean colors
    colors = [
        tuple(int(color[i : i + 2], 16) for i in (1, 3, 5)) for color in clusters.features["color"]
    ]
    dab = max(range(len(colors)), key=lambda i: colors[i][0] - colors[i][2])
    for layer in viewer.layers:
        layer.visible = layer is probabilities
    viewer.layers.selection.active = probabilities
    viewer.dims.set_point(0, dab)  # plane i: the posterior of label i + 1
    close_notifications(viewer)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.screenshot(str(OUT / "gmm_probabilities.png"), canvas_only=False, flash=False)
    print("saved", OUT / "gmm_probabilities.png", "cluster", dab + 1)
    viewer.close()


def canny_coins():
    viewer, widget = new_viewer("coins")
    shared_settings(viewer).method = "canny"
    widget._method_params["canny"]["sigma"].value = 2.0
    run_widget(widget)
    shot(viewer, "canny_edges.png", {"coins", "coins Canny#1 edges"})
    viewer.close()


def choose_k_cat():
    viewer = napari.Viewer(title="napari-pixel-clusters")
    viewer.window._qt_window.resize(*SIZE)
    viewer.open_sample("napari-pixel-clusters", "cat")
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-pixel-clusters", "Choose number of clusters"
    )
    shared_settings(viewer).color_space = "lab"
    run_widget(widget)
    shot(viewer, "choose_k.png", {"cat"})
    viewer.close()


def clusters_then(sample, n_clusters, widget_name):
    """Cluster a sample in Lab with Pixel clusters, then open another widget alone."""
    viewer, widget = new_viewer(sample)
    shared_settings(viewer).update(n_clusters=n_clusters, color_space="lab")
    widget._outputs["quantized"].value = False
    run_widget(widget)
    viewer.window.remove_dock_widget("all")
    return viewer, viewer.window.add_plugin_dock_widget("napari-pixel-clusters", widget_name)[1]


def cluster_colors_astronaut():
    viewer, colors = clusters_then("astronaut", 6, "Cluster colors")
    colors.update()
    shot(viewer, "cluster_colors.png", {"astronaut", "astronaut k-means#1 clusters"})
    viewer.close()


def cluster_table_ihc():
    viewer, table = clusters_then("immunohistochemistry", 4, "Cluster table")
    for label, name in enumerate(["background", "nuclei", "DAB, strong", "DAB, weak"], 1):
        table.rename(label, name)
    table.select_rows([1])
    shot(
        viewer,
        "cluster_table.png",
        {"immunohistochemistry", "immunohistochemistry k-means#1 clusters"},
    )
    viewer.close()


def close_notifications(viewer):
    """Close the toasts of the run's messages (they would cover the canvas)."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()


def histology_ihc():
    """Brightfield histology: the IHC sample clustered in the hematoxylin-DAB stain space
    (k-means, k=3, standardized, speckle cleaned: smooth 1, min region 30), the clusters
    named in the Cluster table, the nuclei row selected and made into objects."""
    from skimage import color

    viewer, widget = new_viewer("immunohistochemistry")
    shared_settings(viewer).update(n_clusters=3, color_space="hdab", standardize=True)
    widget._cleanup_widgets["smooth"].value = 1
    widget._cleanup_widgets["min_region"].value = 30
    widget._outputs["quantized"].value = False
    run_widget(widget)
    viewer.window.remove_dock_widget("all")
    _, table = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Cluster table")
    clusters = viewer.layers["immunohistochemistry k-means#1 clusters"]
    image = viewer.layers["immunohistochemistry"].data
    stains = color.separate_stains(image, color.hdx_from_rgb)
    means = {c: stains[clusters.data == c].mean(axis=0) for c in (1, 2, 3)}
    dab = max(means, key=lambda c: means[c][1])
    nuclei = max((c for c in means if c != dab), key=lambda c: means[c][0])
    background = ({1, 2, 3} - {dab, nuclei}).pop()
    for label, name in ((dab, "DAB"), (nuclei, "nuclei"), (background, "background")):
        table.rename(label, name)
    table.select_rows([list(clusters.features["index"]).index(nuclei)])
    table.make_objects()
    started = time.time()
    while (table._objects_worker is not None or table.object_counts() is None) and (
        time.time() - started < 60
    ):
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.layers.selection.active = clusters  # the table keeps following the clusters
    close_notifications(viewer)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.screenshot(str(OUT / "histology_ihc.png"), canvas_only=False, flash=False)
    print("saved", OUT / "histology_ihc.png")
    viewer.close()


def histology_roi():
    """Brightfield histology in the Pixel clusters dock: stain vectors estimated from the
    IHC sample (Macenko), only inside an ellipse drawn around a gland, speckle cleaned
    (smooth 1, min region 30): the controls and the clusters of the region."""
    viewer, widget = new_viewer("immunohistochemistry")
    viewer.add_shapes(
        [np.array([[390, 318], [112, 130]])],  # center (y, x) and radii
        shape_type="ellipse",
        name="gland",
        edge_color="yellow",
        edge_width=3,
        face_color="transparent",
    )
    viewer.layers.selection.active = viewer.layers["immunohistochemistry"]
    shared_settings(viewer).update(
        n_clusters=3,
        color_space="stains",
        stain_vectors="estimate",
        standardize=True,
        mask=viewer.layers["gland"],
    )
    widget._cleanup_widgets["smooth"].value = 1
    widget._cleanup_widgets["min_region"].value = 30
    widget._outputs["outlines"].value = True
    widget._outputs["quantized"].value = False
    run_widget(widget)
    close_notifications(viewer)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.screenshot(str(OUT / "histology_roi.png"), canvas_only=False, flash=False)
    print("saved", OUT / "histology_roi.png")
    viewer.close()


def large_slide():
    """A 6144² lazy multiscale 'slide' (the IHC sample tiled): lazy pyramid results."""
    import dask.array as da
    from skimage import data

    tile = da.from_array(data.immunohistochemistry(), chunks=(512, 512, 3))
    slide = da.tile(tile, (12, 12, 1))
    viewer = napari.Viewer(title="napari-pixel-clusters")
    viewer.window._qt_window.resize(*SIZE)
    viewer.add_image(
        [slide[:: 2**i, :: 2**i] for i in range(4)], name="slide", rgb=True, multiscale=True
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    shared_settings(viewer).update(n_clusters=4, color_space="lab")
    run_widget(widget, timeout=600)
    viewer.layers["slide k-means#1 clusters"].opacity = 1.0
    viewer.layers["slide k-means#1 quantized"].visible = False
    camera(viewer).center = (0, 3000, 3000)  # zoomed in: full-resolution chunks, on demand
    camera(viewer).zoom = 1.0
    for _ in range(50):
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.screenshot(str(OUT / "large_slide.png"), canvas_only=False, flash=False)
    print("saved", OUT / "large_slide.png")
    viewer.close()


def all_widgets_astronaut():
    """A 1440x900 window with all five widgets docked after a k-means run with outlines,
    one cluster selected in the Cluster table: what a reviewer works with."""
    viewer, widget = new_viewer("astronaut")
    shared_settings(viewer).update(n_clusters=6, color_space="lab")
    widget._outputs["outlines"].value = True
    run_widget(widget)
    for name in ("Choose number of clusters", "Cluster colors", "Apply model", "Cluster table"):
        _, dock = viewer.window.add_plugin_dock_widget("napari-pixel-clusters", name)
        QApplication.processEvents()
    dock.select_rows([1])
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    size = viewer.window._qt_window.size()
    print("window", size.width(), "x", size.height())
    viewer.screenshot(str(OUT / "all_widgets.png"), canvas_only=False, flash=False)
    print("saved", OUT / "all_widgets.png")
    viewer.close()


def settle(seconds=0.4):
    """Let the window draw (events processed for ``seconds``)."""
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def wait_for(done, timeout=120, what="the result"):
    """Process events until ``done()`` is true (a worker's result arrived)."""
    started = time.time()
    while not done():
        if time.time() - started > timeout:
            raise TimeoutError(f"no {what} after {timeout} s")
        QApplication.processEvents()
        time.sleep(0.02)


def preview_astronaut():
    """Live preview: "preview" ticked in Pixel clusters, k changed from 5 to 7 with the
    spin box (Lab color space): the one preview layer over the astronaut and the status
    line with the preview's time."""
    viewer, widget = new_viewer("astronaut")
    shared_settings(viewer).update(n_clusters=5, color_space="lab")
    preview = widget._preview
    preview.toggle.value = True
    wait_for(lambda: preview.layer is not None and not preview.busy, what="preview")
    widget._n_clusters.value = 7  # a change: the same layer is updated in place
    wait_for(lambda: not preview.busy and len(preview.layer.features) == 7, what="update")
    preview.layer.opacity = 1.0
    close_notifications(viewer)
    shot(viewer, "preview_astronaut.png", {"astronaut", preview.layer.name})
    print("status:", widget._status.value)
    viewer.close()


def split_clusters():
    """Sub-clusters: k-means (k=4, Lab) of the astronaut, then in Cluster table the
    largest cluster split into 3 (new labels appended, in their own mean colors)."""
    viewer, table = clusters_then("astronaut", 4, "Cluster table")
    clusters = viewer.layers["astronaut k-means#1 clusters"]
    pixels = list(clusters.features["pixels"])
    table.select_rows([pixels.index(max(pixels))])
    (split,) = table.selected_labels()
    before = set(clusters.features["index"])
    table.split_selected(3)
    wait_for(lambda: len(clusters.features) != len(before), what="split")  # in a worker
    wait_for(lambda: not table.busy, what="split's end")
    labels = list(clusters.features["index"])
    parts = {split} | (set(labels) - before)  # the split label keeps one part
    table.select_rows([row for row, label in enumerate(labels) if label in parts])
    print("split cluster", split, "into", sorted(parts))
    wait_for(lambda: table.object_counts() is not None, what="object counts")  # a worker too
    clusters.opacity = 1.0
    viewer.layers.selection.active = clusters
    close_notifications(viewer)
    shot(viewer, "split_clusters.png", {"astronaut", clusters.name})
    viewer.close()


if __name__ == "__main__":
    import sys

    OUT.mkdir(parents=True, exist_ok=True)
    SHOTS = (
        kmeans_astronaut,
        ward_coins,
        slic_astronaut,
        gmm_random_colors,
        gmm_probabilities,
        canny_coins,
        choose_k_cat,
        cluster_colors_astronaut,
        cluster_table_ihc,
        all_widgets_astronaut,
        histology_ihc,
        histology_roi,
        large_slide,
        preview_astronaut,
        split_clusters,
    )
    chosen = sys.argv[1:]  # names of shots to make (default: all)
    for make in SHOTS:
        if not chosen or make.__name__ in chosen:
            make()
