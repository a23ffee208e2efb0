"""The method registry (core/registry.py, core/methods/__init__.py): every method and
parameter declares its help and a valid default; every public module under core/methods/
is a method, found on import."""

from __future__ import annotations


def test_registry_declares_every_parameter():
    import napari_pixel_clusters as npc

    assert {"kmeans", "gmm", "ward", "canny"} <= set(npc.METHODS)  # and any added later
    for method in npc.METHODS.values():
        assert method.title and method.summary
        for param in (*method.params, *npc.FEATURE_PARAMS):
            assert param.help, f"{method.name}.{param.name} has no help text"
            if param.default is not None:
                assert param.check(param.default) == param.default


def test_every_method_module_is_registered_without_a_list_to_edit():
    """A module under core/methods/ (not starting with "_") is a method: found on import."""
    import importlib
    from pathlib import Path

    from napari_pixel_clusters.core import methods

    modules = sorted(
        path.stem
        for path in Path(methods.__file__).parent.glob("*.py")
        if not path.stem.startswith("_")
    )
    declared = [importlib.import_module(f"{methods.__name__}.{name}").METHOD for name in modules]
    assert sorted(methods.METHODS) == sorted(method.name for method in declared)
    assert all(methods.METHODS[method.name] is method for method in declared)
    assert next(iter(methods.METHODS)) == "kmeans"  # the default comes first
