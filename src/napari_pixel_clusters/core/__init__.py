"""Headless core: numpy, scikit-learn and scikit-image only (no Qt, no napari)."""

from .methods import METHODS
from .registry import FEATURE_PARAMS, Method, Param
from .result import Segmentation
from .segment import segment, segment_steps
from .sweep import Sweep, sweep, sweep_steps
from .model import Model, load_model, save_model
from .export import read_result, write_result

__all__ = [
    "FEATURE_PARAMS", "METHODS", "Method", "Param", "Segmentation", "Sweep", "segment",
    "segment_steps", "sweep", "sweep_steps", "Model", "load_model", "save_model",
    "read_result", "write_result",
]
