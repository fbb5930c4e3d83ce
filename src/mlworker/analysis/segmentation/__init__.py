"""Customer segmentation: choose the number of segments, fit, profile, name and explain them.

Column selection and scaling (:mod:`.columns`, :mod:`.features`), the ``k`` search on a sample
with a stratified silhouette (:mod:`.search`, :mod:`.silhouette`), DBSCAN on a sample
(:mod:`.dbscan`), segment profiles (:mod:`.profiles`), names (:mod:`.naming`) and suggested rules
(:mod:`.rules`). :func:`analyze_segments` runs them all.
"""

from mlworker.analysis.segmentation.analyze import analyze_segments, columns_needed
from mlworker.analysis.segmentation.config import SegmentationConfig, SegmentationLimits
from mlworker.analysis.segmentation.result import Segment, SegmentationResult

__all__ = [
    "Segment",
    "SegmentationConfig",
    "SegmentationLimits",
    "SegmentationResult",
    "analyze_segments",
    "columns_needed",
]
