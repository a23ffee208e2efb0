"""What a result records of how it was made: package versions, values as plain JSON."""

from __future__ import annotations

import platform
from functools import cache
from importlib import metadata
from typing import Any

import numpy as np

PACKAGES = ("napari-pixel-clusters", "numpy", "scikit-learn", "scikit-image", "scipy")


def package_versions() -> dict[str, str]:
    """Versions of Python and of PACKAGES (a new dict each call: callers may change it)."""
    return dict(_installed_versions())


@cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    """Read once per process: reading package metadata takes milliseconds per package,
    and the packages a process has imported do not change while it runs."""
    versions = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, "not installed"))
    return tuple(versions)


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
