"""Images larger than memory (dask arrays): segmented chunk by chunk, results lazy.

Nothing is loaded whole. Each method's ``lazy_run`` (next to its in-memory code under
``methods/``) reads the image one chunk at a time (one progress step per batch of chunks,
where a caller may stop), fits on something small, and returns a labeller that labels
each chunk on demand:

- k-means and Gaussian mixtures of integer images: the distinct values and their counts
  are summed over chunks and the method is fitted on them exactly as for an image in
  memory. Float images, spatial features, or too many distinct values: the fit uses a
  reproducible sample drawn chunk by chunk, and the fitted model labels every chunk
  (``methods/_pointwise_lazy.py``).
- Ward: not defined lazily; it clusters a downscaled level (block averages) and the
  labels are enlarged back (``methods/ward.py``).
- Canny: per chunk with overlap, and hysteresis joined across chunks, so the edges are
  identical to the in-memory ones (``methods/_canny_lazy.py``).

Here: reading lazy images (:mod:`.image`), the chunk machinery every route uses
(:mod:`.chunks`) and the lazy result (:mod:`.result`). The fitted labellers are small and
picklable: results compute unchanged on a ``dask.distributed`` cluster.
"""

from .image import as_dask, is_lazy, is_multiscale, read_lazy_image
from .result import LazySegmentation

__all__ = [
    "LazySegmentation",
    "as_dask",
    "is_lazy",
    "is_multiscale",
    "read_lazy_image",
]
