"""One battery over every method and every kind of image (scikit-learn's common tests idea).

The parametrised suite runs every method on every dtype (64-bit extremes and huge floats
included) and shape (empty, one pixel, one row, grey, RGB, transparent RGBA, stacks, 4-D,
multichannel) with a few options, and asserts for each case either a sane result or the
ValueError the case calls for, whose message starts with the argument's name.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings

import dask.array as da
import numpy as np
import pytest

import napari_pixel_clusters as npc
from conftest import IMAGE_KINDS
from napari_pixel_clusters.core.registry import FEATURE_PARAMS, N_CLUSTERS, RANDOM_STATE

ONE_CLUSTER_KINDS = {"constant", "one_pixel"}


def takes_k(method: str) -> bool:
    """What the battery expects is asked of the method's declaration, not its name."""
    return npc.METHODS[method].needs_n_clusters


def finds_edges(method: str) -> bool:
    return npc.METHODS[method].output == "edges"


def run(method, kind, **extra):
    image, read_options = IMAGE_KINDS[kind]
    k = (1 if kind in ONE_CLUSTER_KINDS else 3) if takes_k(method) else None
    return npc.segment(image, method, k, random_state=0, **read_options, **extra)


def usable_pixels(kind):
    image, options = IMAGE_KINDS[kind]
    if kind == "rgba":
        return image[..., 3] > 0
    pixels = (
        np.moveaxis(image, options["channel_axis"], -1)
        if "channel_axis" in options
        else image[..., None]
        if kind != "rgb"
        else image
    )
    return np.isfinite(pixels.astype(float)).all(axis=-1)


@pytest.mark.parametrize("kind", sorted(IMAGE_KINDS))
@pytest.mark.parametrize("method", sorted(npc.METHODS))
def test_method_on_image_kind(method, kind):
    image, _ = IMAGE_KINDS[kind]
    before = image.copy()
    seg = run(method, kind)
    usable = usable_pixels(kind)

    assert seg.labels.shape == usable.shape
    assert seg.labels.dtype == np.int32
    assert np.all(seg.labels[~usable] == 0)
    found = np.unique(seg.labels[seg.labels > 0])
    np.testing.assert_array_equal(found, np.arange(1, seg.n_clusters + 1))
    if finds_edges(method):
        assert seg.n_clusters in (0, 1)
    else:
        assert np.all(seg.labels[usable] > 0), "every usable pixel belongs to a cluster"
        if takes_k(method):
            assert seg.n_clusters == seg.params["n_clusters_requested"]
    assert len(seg.table) == seg.n_clusters
    assert seg.table["pixels"].sum() == np.count_nonzero(seg.labels)
    assert seg.palette.shape[0] == seg.n_clusters

    quantized = seg.quantized()
    assert quantized.shape == image.shape and quantized.dtype == image.dtype

    np.testing.assert_array_equal(image, before)  # the input is never modified
    np.testing.assert_array_equal(run(method, kind).labels, seg.labels)  # deterministic


# ------------------------------------------------------------------------------------------
# The parametrised suite: method x dtype x shape x options.

#: Every name an API error may start with: segment's own arguments and every parameter.
ARGUMENT_NAMES = (
    {"image", "method", "rgb", "channel_axis", N_CLUSTERS.name, RANDOM_STATE.name}
    | {p.name for p in FEATURE_PARAMS}
    | {p.name for method in npc.METHODS.values() for p in method.params}
)
METHODS = sorted(npc.METHODS)
HUGE = "huge"  # dtype cases whose values are beyond what can be clustered


def _integers(dtype):
    def make(shape, rng):
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        values.flat[:2] = (info.min, info.max)  # the extremes are always there
        return values

    return make


def _choice(dtype, values):
    def make(shape, rng):
        image = rng.choice(np.array(values, dtype=dtype), shape)
        image.flat[: len(values)] = np.array(values, dtype=dtype)[: image.size]
        return image

    return make


def _floats(dtype, scale=1.0):
    def make(shape, rng):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    return make


def _with_nan(shape, rng):
    image = rng.random(shape)
    image.flat[1::5] = np.nan
    return image


I64, U64 = np.iinfo(np.int64), np.iinfo(np.uint64)
F16, F32, F64 = np.finfo(np.float16).max, np.finfo(np.float32).max, np.finfo(np.float64).max
DTYPES = {
    "bool": lambda shape, rng: rng.random(shape) > 0.5,
    **{
        name: _integers(name)
        for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
    },
    "int64_extremes": _choice(np.int64, [I64.max, I64.min, I64.max - 1, 0, I64.min + 1]),
    "uint64_extremes": _choice(np.uint64, [U64.max, 0, U64.max - 1, 2**63]),
    "float16": _floats(np.float16, 100.0),
    "float16_max": _choice(np.float16, [F16, -F16, 0.0, 1.5]),
    "float32": _floats(np.float32),
    "float32_max": _choice(np.float32, [F32, -F32, 0.0, 1.5]),
    "float64": _floats(np.float64),
    "float64_1e100": _choice(np.float64, [1e100, -1e100, 0.0, 1.0]),  # the largest allowed
    "float64_nan": _with_nan,
    "float64_1e308" + HUGE: _choice(np.float64, [1e308, 0.0, 1.0]),
    "float64_max" + HUGE: _choice(np.float64, [F64, -F64, 0.0]),
    "complex": lambda shape, rng: rng.random(shape) + 1j * rng.random(shape),
    "object": lambda shape, rng: np.full(shape, 1, dtype=object),
}
#: name: (shape, read options, spatial axes); the RGBA case is made fully transparent.
SHAPES = {
    "0x0": ((0, 0), {}, None),
    "1x1": ((1, 1), {}, (1, 1)),
    "1xN": ((1, 7), {}, (1, 7)),
    "grey": ((6, 7), {}, (6, 7)),
    "rgb": ((6, 7, 3), {"rgb": True}, (6, 7)),
    "rgba_transparent": ((6, 7, 4), {"rgb": True}, (6, 7)),
    "stack": ((3, 5, 6), {}, (3, 5, 6)),
    "4d": ((2, 2, 4, 5), {}, (2, 2, 4, 5)),
    "multichannel": ((2, 6, 7), {"channel_axis": 0}, (6, 7)),
}
OPTIONS = {
    "default": {},
    "k=1": {"n_clusters": 1},
    "standardize+spatial": {"standardize": True, "spatial_weight": 0.5},
    "lab": {"color_space": "lab"},
}
DEFAULT_K = 3


def make_image(dtype_case: str, shape_case: str):
    shape, read, _ = SHAPES[shape_case]
    rng = np.random.default_rng(abs(hash((dtype_case, shape_case))) % 2**32)
    image = DTYPES[dtype_case](shape, rng)
    if shape_case == "rgba_transparent":
        image[..., 3] = 0
    return image, dict(read)


def channels_last(image, shape_case):
    read = SHAPES[shape_case][1]
    if "channel_axis" in read:
        return np.moveaxis(image, read["channel_axis"], -1)
    return image if "rgb" in read else image[..., None]


def usable_mask(image, shape_case):
    pixels = channels_last(image, shape_case)
    mask = (
        np.isfinite(pixels.astype(float)).all(axis=-1)
        if pixels.dtype.kind == "f"
        else np.ones(pixels.shape[:-1], bool)
    )
    if shape_case == "rgba_transparent":
        mask &= pixels[..., 3] != 0
    return mask


def expected_error(method, dtype_case, shape_case, options, lazy=False):
    """The argument a ValueError must name for this case, or None for a result."""
    image, _ = make_image(dtype_case, shape_case)
    k = options.get("n_clusters", DEFAULT_K if takes_k(method) else None)
    if lazy and npc.METHODS[method].lazy_run is None:
        return "method"
    if dtype_case in ("complex", "object") or image.size == 0 or dtype_case.endswith(HUGE):
        return "image"
    if not usable_mask(image, shape_case).any():
        return "image"
    if takes_k(method) != (k is not None):
        return "n_clusters"
    features = {p.name: options[p.name] for p in FEATURE_PARAMS if p.name in options}
    not_taken = [name for name in features if name not in npc.METHODS[method].takes_features]
    if not_taken:  # the first in FEATURE_PARAMS' order (the options set are not defaults)
        return not_taken[0]
    if method == "ward" and len(SHAPES[shape_case][2]) > 3:
        return "image"
    if "color_space" in features and "rgb" not in SHAPES[shape_case][1]:
        return "color_space"
    if takes_k(method) and k > n_rows(method, image, shape_case, features):
        return "n_clusters"
    return None


def n_rows(method, image, shape_case, features):
    """Rows a method clusters: distinct usable values, or usable pixels."""
    mask = usable_mask(image, shape_case)
    if method == "ward" or features.get("spatial_weight", 0) > 0:
        return int(mask.sum())
    return len(np.unique(channels_last(image, shape_case)[mask], axis=0))


def run_case(method, image, read, options, lazy=False):
    options = dict(options)
    k = options.pop("n_clusters", DEFAULT_K if takes_k(method) else None)
    if lazy:
        image = da.from_array(image, chunks=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. scikit-learn on duplicate points
        return npc.segment(image, method, k, **read, **options)


def assert_sane(seg, image, shape_case, method, requested):
    """Invariants every result keeps, whatever the input."""
    labels = np.asarray(seg.labels)
    usable = usable_mask(image, shape_case)
    assert labels.shape == SHAPES[shape_case][2] == usable.shape
    assert labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() <= seg.n_clusters
    np.testing.assert_array_equal(np.unique(labels[labels > 0]), np.arange(1, seg.n_clusters + 1))
    assert np.all(labels[~usable] == 0)
    if finds_edges(method):
        assert seg.n_clusters in (0, 1)
    else:
        assert np.all(labels[usable] > 0), "every usable pixel belongs to a cluster"
        assert 1 <= seg.n_clusters <= (requested if takes_k(method) else usable.sum())

    table = seg.table
    np.testing.assert_array_equal(table["pixels"], np.bincount(labels.ravel())[1:])
    if labels.any():
        assert table["fraction"].sum() == pytest.approx(1.0)
    numbers_in_table = table.drop(columns=["color"]).to_numpy(dtype=float)
    assert np.isfinite(numbers_in_table).all(), table
    assert seg.palette.shape == (seg.n_clusters, channels_last(image, shape_case).shape[-1])
    assert np.isfinite(seg.palette).all(), seg.palette
    for name, value in seg.score.items():
        if isinstance(value, numbers.Number):
            assert math.isfinite(value), (name, value)
    json.dumps(seg.params)  # plain Python values only

    quantized = np.asarray(seg.quantized())
    assert quantized.shape == image.shape and quantized.dtype == image.dtype
    pixels, out = channels_last(image, shape_case), channels_last(quantized, shape_case)
    labelled = labels > 0
    np.testing.assert_array_equal(out[~labelled], pixels[~labelled])  # kept as they were
    if labelled.any():
        values = pixels[usable]
        inside = (out[labelled] >= values.min(axis=0)) & (out[labelled] <= values.max(axis=0))
        assert inside.all(), "quantized values stay within the image's range"


def check_case(method, dtype_case, shape_case, options, lazy=False):
    image, read = make_image(dtype_case, shape_case)
    before = image.copy()
    argument = expected_error(method, dtype_case, shape_case, options, lazy)
    requested = options.get("n_clusters", DEFAULT_K)
    if argument is None:
        try:
            seg = run_case(method, image, read, options, lazy)
        except ValueError as error:  # a mixture may collapse on a few points, as in sklearn
            if (
                method == "gmm"
                and str(error).startswith("n_clusters:")
                and "collapsed" in str(error)
            ):
                return
            raise
        assert_sane(seg, image, shape_case, method, requested)
    else:
        with pytest.raises(ValueError) as error:
            run_case(method, image, read, options, lazy)
        message = str(error.value)
        assert message.split(":")[0] in ARGUMENT_NAMES, message
        assert message.startswith(f"{argument}:"), message
    np.testing.assert_array_equal(image, before)  # the input is never modified


@pytest.mark.parametrize("shape_case", list(SHAPES))
@pytest.mark.parametrize("dtype_case", list(DTYPES))
@pytest.mark.parametrize("method", METHODS)
def test_every_dtype_and_shape(method, dtype_case, shape_case):
    check_case(method, dtype_case, shape_case, OPTIONS["default"])


@pytest.mark.parametrize("option", [name for name in OPTIONS if name != "default"])
@pytest.mark.parametrize("shape_case", ["1x1", "grey", "rgb", "stack", "4d", "multichannel"])
@pytest.mark.parametrize("dtype_case", ["bool", "uint8", "uint64_extremes", "float32_max"])
@pytest.mark.parametrize("method", METHODS)
def test_options(method, dtype_case, shape_case, option):
    check_case(method, dtype_case, shape_case, OPTIONS[option])


@pytest.mark.parametrize(
    "shape_case", ["1x1", "1xN", "grey", "rgb", "stack", "multichannel", "rgba_transparent"]
)
@pytest.mark.parametrize(
    "dtype_case",
    [
        "bool",
        "uint8",
        "int64_extremes",
        "uint64_extremes",
        "float16_max",
        "float64_nan",
        "float64_max" + HUGE,
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_lazy_images(method, dtype_case, shape_case):
    check_case(method, dtype_case, shape_case, OPTIONS["default"], lazy=True)


CANNY_OPTIONS = {
    "sigma 0": {"sigma": 0.0},
    "sigma 3": {"sigma": 3.0},
    "thresholds": {"low_threshold": 0.0, "high_threshold": 0.0},
    "quantiles": {"use_quantiles": True, "low_threshold": 0.5, "high_threshold": 0.9},
}


@pytest.mark.parametrize("option", list(CANNY_OPTIONS))
@pytest.mark.parametrize("shape_case", ["1x1", "grey", "rgb", "stack", "multichannel"])
@pytest.mark.parametrize("dtype_case", ["bool", "int64", "uint64_extremes", "float64_nan"])
def test_canny_options(dtype_case, shape_case, option):
    check_case("canny", dtype_case, shape_case, CANNY_OPTIONS[option])
