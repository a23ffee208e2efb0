"""The method registry: every module here whose name does not start with ``_`` declares one
method as ``METHOD`` (a :class:`~..registry.Method`), and is found when this package is
imported. Modules whose names start with ``_`` hold what methods share."""

from __future__ import annotations

import importlib
import pkgutil

from ..registry import Method

#: The order in which the widget and the command line offer the methods (the first is the
#: default); methods not named here follow in alphabetical order.
ORDER = ("kmeans", "gmm", "ward", "canny")


def _method_modules() -> list:
    names = [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    names.sort(key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


METHODS: dict[str, Method] = {module.METHOD.name: module.METHOD for module in _method_modules()}


def get_method(name: str) -> Method:
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(
            f"method: unknown method {name!r}; use one of {', '.join(map(repr, METHODS))}."
        )
    return METHODS[name]
