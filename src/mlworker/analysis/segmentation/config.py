"""Parameters of a segmentation: the wire configuration and the sampling limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

MAX_CLUSTERS_LIMIT = 30


class SegmentationConfig(BaseModel):
    """What ``POST /analyze/segments`` asks for (camelCase on the wire).

    Parameters
    ----------
    fields
        Columns to segment on; ``None`` uses every usable column.
    min_clusters, max_clusters
        Range of ``k`` searched (``2 <= minClusters <= maxClusters <= 30``).
    algorithm
        ``kmeans`` (switches to mini-batch k-means for the final fit on large data),
        ``minibatch_kmeans`` or ``dbscan``.
    random_state
        Seed of every random choice (samples, k-means++ initialisation, trees).
    write_assignments
        Where the service writes each row's segment: nowhere, a Parquet file or a table.
    id_column
        Column keying the written assignments; never a feature.
    eps
        DBSCAN neighbourhood radius in scaled units; ``None`` picks the knee of the
        k-distance curve of a sample.
    min_samples
        DBSCAN: neighbours (the point included) that make a core point.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )

    fields: list[str] | None = None
    min_clusters: int = Field(default=2, ge=2, le=MAX_CLUSTERS_LIMIT)
    max_clusters: int = Field(default=8, ge=2, le=MAX_CLUSTERS_LIMIT)
    algorithm: Literal["kmeans", "minibatch_kmeans", "dbscan"] = "kmeans"
    random_state: int = 42
    write_assignments: Literal["none", "file", "table"] = "none"
    id_column: str | None = None
    eps: float | None = Field(default=None, gt=0)
    min_samples: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _range_is_ordered(self) -> SegmentationConfig:
        if self.min_clusters > self.max_clusters:
            raise ValueError(
                f"minClusters ({self.min_clusters}) is larger than maxClusters "
                f"({self.max_clusters}); make minClusters <= maxClusters"
            )
        return self


@dataclass(frozen=True, slots=True)
class SegmentationLimits:
    """Sample sizes and switch-over points that keep a segmentation fast on millions of rows.

    Not part of the request: the defaults suit the service; tests shrink them to reach the
    large-data code paths on small frames.

    Attributes
    ----------
    search_sample_rows
        Rows (a seeded random sample) each candidate ``k`` is fitted and scored on.
    silhouette_sample_rows
        Size of the stratified sample the silhouette is computed on exactly.
    silhouette_min_per_cluster
        Smallest number of sampled rows per cluster in that sample (all rows if fewer).
    minibatch_above_rows
        With ``algorithm="kmeans"``, the final fit uses mini-batch k-means above this many rows.
    kmeans_restarts, restart_sample_rows
        k-means++ restarts (``n_init``) per ``k``, run on a subsample of the search sample of
        this many rows; the best is then refined on the whole search sample.
    dbscan_sample_rows
        Rows DBSCAN clusters; the rest join the nearest core point within ``eps``.
    rule_sample_rows
        Rows the rule trees are fitted on (precision and recall are measured on all rows).
    single_thread_rows
        Up to this many rows everything runs on one thread (threads cost more than they save).
    """

    search_sample_rows: int = 100_000
    silhouette_sample_rows: int = 4_000
    silhouette_min_per_cluster: int = 50
    minibatch_above_rows: int = 200_000
    kmeans_restarts: int = 10
    restart_sample_rows: int = 10_000
    dbscan_sample_rows: int = 20_000
    rule_sample_rows: int = 20_000
    single_thread_rows: int = 20_000
