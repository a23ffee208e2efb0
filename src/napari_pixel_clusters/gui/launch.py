"""``napari-pixel-clusters [IMAGE]``: open napari with an image (a sample by default)."""

from __future__ import annotations

import argparse
import sys

from ..cli import COMMANDS
from ..cli import main as cli_main


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:  # batch work: no viewer
        sys.exit(cli_main(argv))
    parser = argparse.ArgumentParser(
        prog="napari-pixel-clusters",
        description="Open napari with an image to segment (the astronaut sample by default) "
        "and the Pixel clusters widget docked. For batch work: "
        "napari-pixel-clusters {segment,apply,sweep} --help.",
    )
    parser.add_argument(
        "image", nargs="?", help="image file to open (default: the astronaut sample)"
    )
    args = parser.parse_args(argv)

    import napari

    viewer = napari.Viewer(title="napari-pixel-clusters")
    if args.image:
        viewer.open(args.image)
    else:
        viewer.open_sample("napari-pixel-clusters", "astronaut")
    viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    fit_to_docked_canvas(viewer)
    napari.run()


def fit_to_docked_canvas(viewer) -> None:
    """Fit the image to the canvas as the docked widget left it.

    The image was fitted when it was opened, to the canvas before the dock narrowed it
    (its right side was cut off): let Qt lay the window out, then fit again.
    """
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    viewer.reset_view()


if __name__ == "__main__":
    main()
