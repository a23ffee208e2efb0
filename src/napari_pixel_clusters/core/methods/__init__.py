"""The method registry: one module per method, each exporting ``METHOD``."""

from __future__ import annotations

from ..registry import Method
from . import canny, gmm, kmeans, ward

METHODS: dict[str, Method] = {m.METHOD.name: m.METHOD for m in (kmeans, gmm, ward, canny)}


def get_method(name: str) -> Method:
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(
            f"method: unknown method {name!r}; use one of {', '.join(map(repr, METHODS))}."
        )
    return METHODS[name]
