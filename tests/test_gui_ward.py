"""Ward in the Pixel clusters widget: full resolution, progress through the merge loop,
and Cancel in the middle of the loop, as a person uses it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

PLUGIN, WIDGET = "napari-pixel-clusters", "Pixel clusters"


@pytest.fixture
def ward_widget(make_napari_viewer):
    """A viewer with a 512² RGB image (262,144 pixels: many slices of merges) and the
    Pixel clusters widget set to Ward with 27 clusters at full size."""
    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.random((512, 512, 3)), (3, 3, 0))
    image = (255 * (smooth - smooth.min()) / np.ptp(smooth)).astype(np.uint8)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="photo", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget._method.value = "ward"
    widget._n_clusters.value = 27
    return viewer, widget


def test_cancel_in_the_middle_of_the_merge_loop_adds_nothing_and_stops_at_once(ward_widget, qtbot):
    viewer, widget = ward_widget
    from qtpy.QtCore import Qt

    merges = []
    widget.run()
    # counted in the worker's thread as it yields (a queued connection would also count,
    # after Cancel, steps yielded before it but delivered late on a busy machine)
    widget._worker.yielded.connect(
        lambda step: merges.append(step) if step[0] == "fit" else None,
        Qt.ConnectionType.DirectConnection,
    )
    # past the features and graph (0.1): inside the merge loop, which yields per slice
    qtbot.waitUntil(lambda: any(0.1 < fraction < 0.9 for _, fraction in merges), timeout=120_000)
    in_loop = len(merges)
    widget._run_button.native.click()  # the button reads Cancel while a run works
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert [layer.name for layer in viewer.layers] == ["photo"]
    assert widget._status.value.startswith("cancelled")
    # the loop stopped at the next slice boundary: at most one more step after Cancel
    # (two: one may be yielded between reading the count and the click)
    assert len(merges) <= in_loop + 2
    assert max(fraction for _, fraction in merges) < 0.9


def test_ward_at_full_size_reports_progress_through_the_loop_and_adds_its_layers(
    ward_widget, qtbot
):
    viewer, widget = ward_widget
    steps = []
    widget.run()
    widget._worker.yielded.connect(steps.append)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=180_000)
    loop = [fraction for stage, fraction in steps if stage == "fit" and 0.1 < fraction < 0.9]
    assert len(loop) >= 5 and loop == sorted(loop)  # the bar moves through the merges
    clusters = next(layer for layer in viewer.layers if layer.name.endswith("clusters"))
    assert clusters.data.shape == (512, 512)  # full size: not shrunk and enlarged
    assert set(np.unique(clusters.data)) == set(range(1, 28))
    assert clusters.metadata["napari_pixel_clusters"]["params"]["downscale"] == 1.0  # as used
