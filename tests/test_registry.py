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


# --------------------------------------------------- which feature options a method takes
def _method(**declared):
    """A method declared as a module would (its run is never called here)."""
    from napari_pixel_clusters.core.registry import Method

    return Method(name="demo", title="Demo", summary="A demo.", params=(), run=None, **declared)


def test_a_method_declares_the_feature_options_it_takes():
    import napari_pixel_clusters as npc
    from napari_pixel_clusters.core.registry import FEATURE_NAMES

    assert FEATURE_NAMES == (
        "color_space",
        "stain_vectors",
        "stain_background",
        "spatial_weight",
        "standardize",
    )
    assert _method().takes_features == FEATURE_NAMES  # all of them unless it says
    assert npc.METHODS["canny"].takes_features == ()
    slic_features = ("color_space", "stain_vectors", "stain_background", "standardize")
    assert npc.METHODS["slic"].takes_features == slic_features
    assert [p.name for p in npc.METHODS["slic"].feature_params()] == list(slic_features)
    assert npc.METHODS["kmeans"].feature_params() == npc.FEATURE_PARAMS
    assert npc.METHODS["kmeans"].uses_features and not npc.METHODS["canny"].uses_features
    assert (
        npc.METHODS["kmeans"].default_color_space,
        npc.METHODS["slic"].default_color_space,
    ) == (
        "rgb",
        "lab",
    )


def test_a_declaration_naming_an_unknown_option_or_color_space_is_refused():
    import pytest

    with pytest.raises(ValueError, match=r"^takes_features: 'colour_space' is not a feature"):
        _method(takes_features=("colour_space",))
    with pytest.raises(ValueError, match=r"^default_color_space: 'xyz' is not a color space"):
        _method(default_color_space="xyz")


def test_check_options_refuses_an_option_the_method_does_not_take():
    import pytest

    from napari_pixel_clusters.core.registry import check_options

    method = _method(takes_features=("standardize",))
    for name, value in (("spatial_weight", 0.5), ("color_space", "lab")):
        with pytest.raises(
            ValueError,
            match=rf"^{name}: method 'demo' does not take it \(its feature options: "
            rf"standardize\); leave {name} out\.$",
        ):
            check_options(method, {name: value, "standardize": True})
    # at their defaults they are no choice: accepted, and every option reaches run
    features, params = check_options(
        method, {"spatial_weight": 0.0, "color_space": None, "standardize": True}
    )
    assert features == {
        "color_space": None,
        "stain_vectors": None,
        "stain_background": 0.15,
        "spatial_weight": 0.0,
        "standardize": True,
        "random_state": 0,
    }
    assert params == {}
    with pytest.raises(ValueError, match=r"^color_space: .*\(its feature options: none\)"):
        check_options(_method(takes_features=()), {"color_space": "rgb"})


def test_a_result_records_only_the_feature_options_its_method_takes():
    import napari_pixel_clusters as npc
    from conftest import SMALL_PHOTO

    recorded = {
        name: set(npc.segment(SMALL_PHOTO, name, 3 if method.needs_n_clusters else None).params)
        for name, method in npc.METHODS.items()
    }
    every = {
        "color_space",
        "stain_vectors",
        "stain_background",
        "spatial_weight",
        "standardize",
        "random_state",
    }
    for name, method in npc.METHODS.items():
        expected = set(method.takes_features) | (
            {"random_state"} if method.uses_random_state else set()
        )
        assert recorded[name] & every == expected, name
    assert recorded["slic"] & every == {
        "color_space",
        "stain_vectors",
        "stain_background",
        "standardize",
    }
    assert recorded["canny"] & every == set()


def test_auto_color_space_is_the_declared_default_color_space():
    """color_space None ("auto" in the widgets) is each method's declared default."""
    import numpy as np

    import napari_pixel_clusters as npc
    from conftest import SMALL_PHOTO

    image = SMALL_PHOTO[:24, :24]
    for name, method in npc.METHODS.items():
        if "color_space" in method.takes_features:
            k = 3 if method.needs_n_clusters else None
            auto = npc.segment(image, name, k, rgb=True)
            declared = npc.segment(
                image, name, k, rgb=True, color_space=method.default_color_space
            )
            np.testing.assert_array_equal(auto.labels, declared.labels, err_msg=name)
            other = "hsv"  # a color space no method defaults to: other labels
            assert not np.array_equal(
                npc.segment(image, name, k, rgb=True, color_space=other).labels, auto.labels
            ), name
