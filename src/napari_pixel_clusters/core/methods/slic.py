"""SLIC superpixels (scikit-image ``slic``): one label per superpixel, like clusters.

SLIC is k-means in color and position, seeded on a regular grid: every superpixel is a
compact region of similar color. What this module passes to
``skimage.segmentation.slic``, and why:

* **Values**: the image's channels read as scikit-image reads them (``img_as_float``), in
  float64 (float32 images at their limits would overflow in slic's rescaling). slic
  stretches them to 0-1 over the pixels with data before anything else, so the scale
  of an image's values does not matter.
* **Color space** (RGB images): ``lab`` (the default here: ``color_space`` left empty)
  passes RGB with ``convert2lab=True``, so slic converts after its stretch exactly as
  ``slic(image)`` does: by default the labels are ``slic(image, start_label=1)``'s.
  ``rgb`` and ``hsv`` pass those values with ``convert2lab=False``: SLIC clusters in the
  chosen space. Grey and multichannel images pass their channels with
  ``convert2lab=False`` (a 3-channel multichannel image is not RGB).
* **compactness** 'auto' is a tenth of the range of the values SLIC compares: 10 in Lab
  (L from 0 to 100; scikit-image's default), 0.1 otherwise (values stretched to 0-1),
  so the default gives superpixels that follow the image in every color space.
* **standardize** scales every channel (in the chosen color space) to zero mean and unit
  variance over the pixels with data before slic (e.g. channels of a multichannel image
  in different units). ``spatial_weight`` is not taken (``takes_features`` leaves it
  out, so it is refused): SLIC always weighs position, by ``compactness``.
* **Pixels without data** (NaN, fully transparent) go to slic's ``mask`` (maskSLIC: the
  seeds are spread over the pixels with data) and get label 0. They are first given their
  nearest usable pixel's value, so that blurring (``sigma``) does not spread NaN or
  meaningless values into their neighbours. An image whose pixels all have data is
  passed without a mask: slic then seeds its regular grid, as ``slic(image)``.
  maskSLIC seeds nothing in a piece of the mask too small for a seed (a single pixel,
  a thin strip): slic leaves it at 0. Every pixel with data gets a label here, so each
  connected piece slic left unlabelled becomes one more superpixel (numbered after
  slic's; ``params["unseeded_pieces"]`` counts them).
* **Stacks**: a 3-D stack (z, y, x), grey or RGB, gives 3-D supervoxels (slic's own
  3-D mode, z counted like y and x); for a plane at a time, segment one plane (the
  widget's "current plane"). Images with more than three spatial axes (t, z, y, x) are
  segmented one 3-D volume at a time, ``n_segments`` each, labels numbered on.

SLIC seeds a grid over the whole image and iterates over all of it, so chunks segmented
apart (even with overlap) would not give the same superpixels: there is no lazy route, and
a dask image is refused with a ``ValueError`` naming the method. Superpixels do not label
new images, so a result has no model to save (result folders work as for every method).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..features import check_color_space, image_stain_vectors, unit_rgb_coordinates
from ..image import ImageData
from ..registry import Method, MethodOutput, Param, Steps
from ..stains import StainVectors

#: compactness 'auto': a tenth of the range of the values SLIC compares
AUTO_COMPACTNESS_LAB = 10.0  # Lab's L runs from 0 to 100 (scikit-image's default)
AUTO_COMPACTNESS_UNIT = 0.1  # values stretched to 0-1 by slic
#: RGB images are clustered in Lab when color_space is left empty, as by ``slic(image)``
DEFAULT_COLOR_SPACE = "lab"
#: slic works on 2-D images and 3-D volumes
VOLUME_AXES = 3


def run(
    data: ImageData[np.ndarray],
    n_clusters: int | None,
    feature_options: dict[str, Any],
    params: dict[str, Any],
) -> Steps[MethodOutput]:
    color_space = slic_color_space(data, feature_options["color_space"])
    stains = image_stain_vectors(data, color_space, feature_options)  # "stains" only
    values, convert2lab, standardization = slic_values(
        data, color_space, feature_options["standardize"], stains
    )
    compactness = params["compactness"]
    if compactness is None:
        compactness = AUTO_COMPACTNESS_LAB if convert2lab else AUTO_COMPACTNESS_UNIT
    labels = np.zeros(data.spatial_shape, dtype=np.int32)
    volumes = list(itertools.product(*map(range, data.spatial_shape[:-VOLUME_AXES])))
    found = 0
    unseeded = 0
    for i, index in enumerate(volumes):
        yield "superpixels", i / len(volumes)
        mask = data.mask[index]
        if not mask.any():
            continue
        volume = superpixels(values[index], mask, convert2lab, compactness, params)
        unseeded += label_unseeded_pieces(volume, mask)
        labels[index] = np.where(volume > 0, volume + found, 0)
        found = int(labels[index].max(initial=found))
    details = {
        "color_space_used": color_space,
        "convert2lab": convert2lab,
        "compactness_used": float(compactness),
        "mask_slic": not bool(data.mask.all()),
        "unseeded_pieces": unseeded,
        **standardization,
        **({"stain_vectors": stains.record()} if stains is not None else {}),
    }
    if len(volumes) > 1:
        details["volumes"] = len(volumes)
    return MethodOutput(labels=labels, score={"superpixels": found}, details=details)


def slic_color_space(data: ImageData, color_space: str | None) -> str | None:
    """The color space SLIC clusters in: an RGB image's default is Lab (as ``slic``'s)."""
    checked = check_color_space(data, color_space)
    return DEFAULT_COLOR_SPACE if data.is_color and color_space is None else checked


def slic_values(
    data: ImageData[np.ndarray],
    color_space: str | None,
    standardize: bool,
    stains: StainVectors | None = None,
) -> tuple[np.ndarray, bool, dict[str, Any]]:
    """``(values, convert2lab, standardization)``: the float64 array slic gets, channels
    last (a copy: the image is never modified), pixels without data filled."""
    from skimage.util import img_as_float

    values = np.array(img_as_float(data.color_channels), dtype=np.float64)
    if not data.mask.all():
        fill_from_nearest(values, data.mask)
    convert2lab = color_space == "lab" and not standardize
    if color_space is not None and not convert2lab:
        values = unit_rgb_coordinates(values, color_space, stains)[0]
    standardization: dict[str, Any] = {}
    if standardize:
        values, standardization = standardized(values, data.mask)
    return values, convert2lab, standardization


def standardized(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Every channel to zero mean and unit variance over the pixels with data."""
    usable = values[mask]
    mean, scale = usable.mean(axis=0), usable.std(axis=0)
    scale[scale == 0] = 1.0
    return (values - mean) / scale, {"mean": mean.tolist(), "scale": scale.tolist()}


def fill_from_nearest(values: np.ndarray, mask: np.ndarray) -> None:
    """Give every pixel without data (in place) the values of its nearest usable pixel."""
    from scipy import ndimage

    nearest = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    values[...] = values[tuple(nearest)]


def superpixels(
    values: np.ndarray,
    mask: np.ndarray,
    convert2lab: bool,
    compactness: float,
    params: dict[str, Any],
) -> np.ndarray:
    """slic on one 2-D image or 3-D volume (``values`` channels last): labels 1..n, 0
    where ``mask`` is False."""
    from skimage.segmentation import slic

    grey = values.shape[-1] == 1
    return slic(
        values[..., 0] if grey else values,
        n_segments=params["n_segments"],
        compactness=compactness,
        max_num_iter=params["max_num_iter"],
        sigma=params["sigma"],
        convert2lab=convert2lab,
        enforce_connectivity=params["enforce_connectivity"],
        min_size_factor=params["min_size_factor"],
        slic_zero=params["slic_zero"],
        start_label=1,
        mask=None if mask.all() else mask,
        channel_axis=None if grey else -1,
    ).astype(np.int32, copy=False)


def label_unseeded_pieces(volume: np.ndarray, mask: np.ndarray) -> int:
    """Give each connected piece of ``mask`` that slic left at 0 a label of its own,
    after slic's (in place); returns how many there were."""
    from scipy import ndimage

    unlabelled = mask & (volume == 0)
    if not unlabelled.any():
        return 0
    pieces, n_pieces = ndimage.label(unlabelled)
    volume[unlabelled] = pieces[unlabelled] + int(volume.max(initial=0))
    return int(n_pieces)


METHOD = Method(
    name="slic",
    title="SLIC superpixels",
    summary="Compact regions of similar color on a grid of about n_segments seeds "
    "(scikit-image slic); 3-D supervoxels for stacks.",
    params=(
        Param(
            "n_segments",
            int,
            100,
            "About how many superpixels to make (seeds on a regular grid); scikit-image "
            "often finds fewer (down to about half). Images with more than three spatial "
            "axes: this many per 3-D volume.",
            minimum=1,
            maximum=1_000_000,
        ),
        Param(
            "compactness",
            float,
            None,
            "Weight of position against color: higher gives more square superpixels, lower "
            "follows color more closely. Try values on a log scale (x10, /10). Empty "
            "(auto): 10 for RGB in Lab (scikit-image's default), 0.1 otherwise (values "
            "are stretched to 0-1).",
            # no maximum: the widget's arrows then step by a tenth of the value's order
            # of magnitude (0.1 -> 0.11, 10 -> 11), as suits a value explored on a log scale
            minimum=0.0001,
            allow_none=True,
        ),
        Param(
            "sigma",
            float,
            0.0,
            "Blur (Gaussian standard deviation, pixels) before SLIC; 0: none. Pixels "
            "without data take their nearest pixel's value first, so no NaN spreads.",
            minimum=0.0,
            maximum=100.0,
        ),
        Param(
            "max_num_iter",
            int,
            10,
            "Maximum number of SLIC (k-means) iterations.",
            minimum=1,
            maximum=1000,
            advanced=True,
        ),
        Param(
            "enforce_connectivity",
            bool,
            True,
            "Make every superpixel one connected region: pieces smaller than "
            "min_size_factor of a superpixel's size join a neighbour.",
            advanced=True,
        ),
        Param(
            "min_size_factor",
            float,
            0.5,
            "With enforce_connectivity: pieces smaller than this fraction of the expected "
            "superpixel size (pixels / n_segments) join a neighbour.",
            minimum=0.0,
            maximum=1.0,
            advanced=True,
        ),
        Param(
            "slic_zero",
            bool,
            False,
            "SLIC-zero (SLICO): adapt the compactness of every superpixel to its own color "
            "spread, for regular shapes in both smooth and textured parts.",
            advanced=True,
        ),
    ),
    run=run,
    lazy_run=None,  # a global iterative method: chunks would not give the same superpixels
    needs_n_clusters=False,
    # compactness weighs position: no spatial_weight
    takes_features=("color_space", "stain_vectors", "stain_background", "standardize"),
    default_color_space=DEFAULT_COLOR_SPACE,
    uses_random_state=False,  # deterministic (scikit-image seeds maskSLIC with a fixed seed)
    busy_steps=((("superpixels", 0.0), "Finding superpixels (one scikit-image call)..."),),
    large_image_note=(
        "Large image: SLIC needs the whole image in memory\n(its seeds and iterations "
        "span the whole image);\nload the image, or a part of it, first."
    ),
)
