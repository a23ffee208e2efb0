"""What a result records of how it was made: package versions, values as plain JSON."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import numpy as np

PACKAGES = ("napari-pixel-clusters", "numpy", "scikit-learn", "scikit-image", "scipy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def plain(value: Any) -> Any:
    """Arrays -> lists, numpy scalars -> Python numbers, so that params can be stored as
    JSON (layer metadata, files)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value
