"""Images larger than memory (dask arrays): segmented chunk by chunk, results lazy.

Nothing is loaded whole. Every route reads the image one chunk at a time (one progress
step per chunk, where a caller may stop), fits on something small, and returns labels as a
dask array that labels each chunk on demand:

- k-means and Gaussian mixtures of integer images: the distinct values and their counts
  are summed over chunks and the method is fitted on them exactly as for an image in
  memory (:mod:`.points`). Float images, spatial features, or too many distinct values:
  the fit uses a reproducible sample drawn chunk by chunk, and the fitted model labels
  every chunk.
- Ward: not defined lazily; it clusters a downscaled level (block averages) and the
  labels are enlarged back (:mod:`.ward`).
- Canny: per chunk with overlap, and hysteresis joined across chunks, so the edges are
  identical to the in-memory ones (:mod:`.edges`).

The fitted labellers are small and picklable: results compute unchanged on a
``dask.distributed`` cluster.
"""

from .image import as_dask, is_lazy, is_multiscale, read_lazy_image
from .result import LazySegmentation
from .segment import lazy_segment_steps

__all__ = [
    "LazySegmentation",
    "as_dask",
    "is_lazy",
    "is_multiscale",
    "lazy_segment_steps",
    "read_lazy_image",
]
