"""napari-pixel-clusters: unsupervised pixel segmentation for napari.

Public API::

    import napari_pixel_clusters as npc
    seg = npc.segment(image, method="kmeans", n_clusters=5, color_space="lab")
"""

from .core import (
    FEATURE_PARAMS,
    METHODS,
    Method,
    Model,
    Param,
    PooledSegmentation,
    Segmentation,
    Sweep,
    load_model,
    read_result,
    save_model,
    segment,
    segment_many,
    segment_many_steps,
    segment_steps,
    sweep,
    sweep_steps,
    write_result,
)

__version__ = "0.1.0"
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
