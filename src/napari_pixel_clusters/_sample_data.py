"""Sample images for File > Open Sample, all shipped with scikit-image (no download)."""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage import data

#: What napari's sample hooks return: (data, layer keyword arguments) per layer.
Samples = list[tuple[np.ndarray, dict[str, Any]]]


def coins() -> Samples:
    return [(data.coins(), {"name": "coins"})]


def astronaut() -> Samples:
    return [(data.astronaut(), {"name": "astronaut", "rgb": True})]


def cat() -> Samples:
    return [(data.chelsea(), {"name": "cat", "rgb": True})]


def immunohistochemistry() -> Samples:
    return [(data.immunohistochemistry(), {"name": "immunohistochemistry", "rgb": True})]
