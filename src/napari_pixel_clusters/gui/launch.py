"""``napari-pixel-clusters [IMAGE]``: open napari with an image (a sample by default)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="napari-pixel-clusters",
        description="Open napari with an image to segment (the astronaut sample by default) "
        "and the Pixel clusters widget docked.",
    )
    parser.add_argument("image", nargs="?", help="image file to open instead of the sample")
    args = parser.parse_args(argv)

    import napari

    viewer = napari.Viewer(title="napari-pixel-clusters")
    if args.image:
        viewer.open(args.image)
    else:
        viewer.open_sample("napari-pixel-clusters", "astronaut")
    viewer.window.add_plugin_dock_widget("napari-pixel-clusters", "Pixel clusters")
    napari.run()


if __name__ == "__main__":
    main()
