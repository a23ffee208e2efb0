"""The package's import graph, read from the source with ``ast``: no module imports itself
through others (a cycle), and the headless core imports no GUI library.

Every ``import`` and ``from ... import`` that runs counts, at module level or inside a
function (a function-local import only postpones a cycle, it does not remove it); relative
imports are resolved. Imports under ``if TYPE_CHECKING:`` never run (type checkers alone
read them, for annotations), so they are no edges; their ``else:`` branch runs and counts.
A package that discovers its modules at import (``pkgutil.iter_modules`` over its own
``__path__``, as ``core.methods`` does) imports each of its public modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import napari_pixel_clusters

PACKAGE = "napari_pixel_clusters"
ROOT = Path(napari_pixel_clusters.__file__).parent
GUI_LIBRARIES = {"napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6", "superqt"}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(name: str, path: Path) -> list[tuple[str, ...]]:
    """What the module imports, each as the dotted names it may be, most specific first:
    ``from X import y`` is module ``X.y`` if there is one, else a name defined in ``X``;
    ``import X.y.z`` is the longest of ``X.y.z``, ``X.y``, ``X`` that is a module."""
    source = path.read_text(encoding="utf-8")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.append(tuple(".".join(parts[:n]) for n in range(len(parts), 0, -1)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module
            found += [(f"{origin}.{alias.name}", origin) for alias in node.names]
    if "iter_modules(__path__)" in source:
        found += [
            (f"{name}.{sibling.stem}",)
            for sibling in sorted(path.parent.glob("*.py"))
            if not sibling.stem.startswith("_")
        ]
    return found


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` that runs: all but the bodies of ``if TYPE_CHECKING:`` (or
    ``if typing.TYPE_CHECKING:``)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports."""
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for candidates in imported_names(name, path):
            targets |= {next((c for c in candidates if c in modules), None)}
        graph[name] = targets - {name, None}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_graph_is_read_from_every_kind_of_import():
    graph = import_graph()
    assert len(graph) > 30
    core = f"{PACKAGE}.core"
    assert f"{core}.registry" in graph[f"{core}.segment"]  # from .registry import ...
    assert f"{core}.methods.kmeans" in graph[f"{core}.methods"]  # discovered at import
    assert f"{core}.segment" in graph[core]  # from .segment import segment


def test_no_module_imports_itself_through_others():
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_imports_for_type_checkers_only_are_no_edges(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(
        "import typing\n"
        "from typing import TYPE_CHECKING\n"
        "from .runs import used\n"
        "if TYPE_CHECKING:\n"
        "    from .annotations import Model\n"
        "    import package.hints\n"
        "if typing.TYPE_CHECKING:\n"
        "    from . import stubs\n"
        "else:\n"
        "    from . import fallback\n"
        "def function():\n"
        "    from .later import thing\n"
        "    if TYPE_CHECKING:\n"
        "        from .inner import Hint\n"
    )
    found = {candidates[0] for candidates in imported_names("package.module", path)}
    assert found == {
        "typing",
        "typing.TYPE_CHECKING",
        "package.runs.used",
        "package.fallback",
        "package.later.thing",
    }


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_imports_no_gui_library():
    for name, path in module_files().items():
        if name.startswith(f"{PACKAGE}.core"):
            roots = {candidates[-1].split(".")[0] for candidates in imported_names(name, path)}
            assert not roots & GUI_LIBRARIES, f"{name} imports {sorted(roots & GUI_LIBRARIES)}"
