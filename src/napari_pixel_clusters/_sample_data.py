"""Sample images for File > Open Sample, all shipped with scikit-image (no download)."""

from __future__ import annotations

from skimage import data


def coins():
    return [(data.coins(), {"name": "coins"})]


def astronaut():
    return [(data.astronaut(), {"name": "astronaut", "rgb": True})]


def cat():
    return [(data.chelsea(), {"name": "cat", "rgb": True})]


def immunohistochemistry():
    return [(data.immunohistochemistry(), {"name": "immunohistochemistry", "rgb": True})]
