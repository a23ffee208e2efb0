"""Headless core: numpy, scikit-learn and scikit-image only (no Qt, no napari)."""

from .export import read_result, write_result
from .methods import METHODS
from .model import Model, load_model, save_model
from .pooled import PooledSegmentation, segment_many, segment_many_steps
from .registry import FEATURE_PARAMS, Method, Param
from .result import Segmentation
from .segment import segment, segment_steps
from .sweep import Sweep, sweep, sweep_steps

__all__ = [
    "FEATURE_PARAMS",
    "METHODS",
    "Method",
    "Model",
    "Param",
    "PooledSegmentation",
    "Segmentation",
    "Sweep",
    "load_model",
    "read_result",
    "save_model",
    "segment",
    "segment_many",
    "segment_many_steps",
    "segment_steps",
    "sweep",
    "sweep_steps",
    "write_result",
]
