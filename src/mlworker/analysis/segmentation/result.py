"""The frozen result of a segmentation and its camelCase JSON form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlworker.analysis.segmentation.dbscan import DensityClustering
from mlworker.analysis.segmentation.profiles import DistinguishingFeature
from mlworker.analysis.segmentation.rules import SuggestedRule
from mlworker.analysis.segmentation.search import KCandidate
from mlworker.serialization import json_safe


@dataclass(frozen=True, slots=True, eq=False)
class Segment:
    """One segment: who is in it, what it looks like and how to find it again."""

    cluster_id: int
    name: str
    size: int
    share: float
    centroid: dict[str, float | str | None]
    profile: dict[str, dict[str, Any]]
    distinguishing_features: tuple[DistinguishingFeature, ...]
    suggested_rule: SuggestedRule | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "clusterId": self.cluster_id,
            "name": self.name,
            "size": self.size,
            "share": self.share,
            "centroid": self.centroid,
            "profile": self.profile,
            "distinguishingFeatures": [d.to_dict() for d in self.distinguishing_features],
            "suggestedRule": self.suggested_rule.to_dict() if self.suggested_rule else None,
        }


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """Segments found in a dataset, with the search that chose them.

    Attributes
    ----------
    k
        Number of segments (DBSCAN: clusters found, the outliers not counted).
    algorithm
        Algorithm of the final fit: ``kmeans``, ``minibatch_kmeans`` or ``dbscan``.
    silhouette, silhouette_sample_size
        Mean silhouette of the final labels (DBSCAN: noise left out), estimated exactly on a
        stratified sample of that many rows.
    k_search
        Scores of each candidate ``k`` on the search sample (empty for DBSCAN).
    search_sample_size
        Rows the candidates were fitted and scored on (DBSCAN: rows it clustered).
    row_count
        Rows segmented (rows whose features are all missing are not).
    features_used
        Input columns used as features.
    preprocessing
        Scaling, encoding and exclusion of every column (JSON form).
    segments
        Largest first.
    labels
        Segment of every input row, in frame order (``-1``: outliers, or no feature values).
    segment_names
        Name of every label that occurs in ``labels``.
    dbscan
        How DBSCAN was run, when it was.
    """

    k: int
    algorithm: str
    silhouette: float | None
    silhouette_sample_size: int
    k_search: tuple[KCandidate, ...]
    search_sample_size: int
    row_count: int
    features_used: tuple[str, ...]
    preprocessing: dict[str, Any]
    segments: tuple[Segment, ...]
    labels: npt.NDArray[np.int32]
    segment_names: dict[int, str]
    dbscan: DensityClustering | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the job's JSON answer (camelCase; ``labels`` are not part of it)."""
        answer: dict[str, Any] = json_safe(
            {
                "k": self.k,
                "algorithm": self.algorithm,
                "silhouette": self.silhouette,
                "silhouetteSampleSize": self.silhouette_sample_size,
                "kSearch": [candidate.to_dict() for candidate in self.k_search],
                "searchSampleSize": self.search_sample_size,
                "rowCount": self.row_count,
                "featuresUsed": list(self.features_used),
                "preprocessing": self.preprocessing,
                "segments": [segment.to_dict() for segment in self.segments],
                "dbscan": self.dbscan.to_dict() if self.dbscan else None,
            }
        )
        return answer
