"""The README's list of methods is the registry's (scripts/readme_methods.py writes it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from napari_pixel_clusters.core import METHODS

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "readme_methods", ROOT / "scripts" / "readme_methods.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_lists_every_registered_method_as_the_registry_declares_it():
    script = _script()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.readme_with_table(text) == text, (
        "README.md's method list differs from the registry; run "
        "`python scripts/readme_methods.py --write`"
    )
    listed = text.split(script.START, 1)[1].split(script.END, 1)[0]
    for method in METHODS.values():
        assert f"| `{method.name}` | **{method.title}**: {method.summary} |" in listed


def test_the_table_follows_the_registry_when_a_method_is_added(monkeypatch):
    script = _script()
    kmeans = METHODS["kmeans"]
    monkeypatch.setitem(
        script.METHODS,
        "fake",
        type(kmeans)(**{**kmeans.__dict__, "name": "fake", "title": "Fake", "summary": "S."}),
    )
    assert "| `fake` | **Fake**: S. |" in script.methods_table()


def test_a_readme_without_the_markers_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^README\.md: the markers"):
        _script().readme_with_table("# no list here\n")
