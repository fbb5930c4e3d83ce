"""Entry point: segment a frame's rows and describe the segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no type info

from mlworker.analysis.segmentation.columns import select_columns
from mlworker.analysis.segmentation.config import SegmentationConfig, SegmentationLimits
from mlworker.analysis.segmentation.dbscan import DensityClustering, fit_dbscan
from mlworker.analysis.segmentation.features import FeatureMatrix, build_features
from mlworker.analysis.segmentation.naming import OUTLIERS, name_segments
from mlworker.analysis.segmentation.profiles import profile_segments
from mlworker.analysis.segmentation.result import Segment, SegmentationResult
from mlworker.analysis.segmentation.rules import suggest_rules
from mlworker.analysis.segmentation.search import (
    KCandidate,
    Labels,
    fit_final,
    relabel_by_size,
    search_k,
)
from mlworker.analysis.segmentation.silhouette import sampled_silhouette
from mlworker.analysis.statistics import Progress, no_progress
from mlworker.errors import NotEnoughData

UNASSIGNED = "Unassigned"
"""Name of label ``-1`` given to rows whose features are all missing (k-means)."""


def columns_needed(config: SegmentationConfig) -> tuple[str, ...] | None:
    """Columns a segmentation reads: the fields and the id column, or ``None`` for all.

    Examples
    --------
    >>> columns_needed(SegmentationConfig(fields=["age", "income"], idColumn="customer_id"))
    ('age', 'income', 'customer_id')
    >>> columns_needed(SegmentationConfig(idColumn="customer_id")) is None
    True
    """
    if config.fields is None:
        return None
    named = [*config.fields, *([config.id_column] if config.id_column else [])]
    return tuple(dict.fromkeys(named))


def analyze_segments(
    frame: pd.DataFrame,
    config: SegmentationConfig,
    *,
    progress: Progress = no_progress,
    limits: SegmentationLimits = SegmentationLimits(),  # noqa: B008 - frozen, never mutated
) -> SegmentationResult:
    """Segment the rows of ``frame``: choose ``k``, fit, profile, name and describe by rules.

    Parameters
    ----------
    frame
        One row per customer (or any entity).
    config
        What to segment on and how.
    progress
        ``progress(fraction, message)`` after each stage.
    limits
        Sample sizes and the mini-batch switch-over (defaults suit the service).

    Returns
    -------
    SegmentationResult
        Segments largest first, the ``k`` search, preprocessing report and per-row labels.

    Raises
    ------
    UnknownColumn
        A field or the id column is not in ``frame``.
    NoUsableColumns
        Every candidate column was excluded.
    NotEnoughData
        Fewer usable rows than ``maxClusters``.
    """
    progress(0.0, "selecting columns")
    selection = select_columns(
        frame, config.fields, config.id_column, random_state=config.random_state
    )
    features = build_features(selection, len(frame))
    if features.rows < config.max_clusters:
        raise NotEnoughData(
            f"{features.rows} rows have a value in the features, fewer than maxClusters "
            f"({config.max_clusters}); lower maxClusters or provide more rows",
            field="config.maxClusters",
        )
    progress(0.1, f"{features.rows} rows × {features.scaled.shape[1]} scaled features")

    # Threads only pay off on large data; on small data OpenMP start-up and spinning cost more
    # than the work, badly so when other jobs share the cores.
    threads = 1 if features.rows <= limits.single_thread_rows else None
    with threadpool_limits(limits=threads):
        return _segment(features, config, limits, progress)


def _segment(
    features: FeatureMatrix,
    config: SegmentationConfig,
    limits: SegmentationLimits,
    progress: Progress,
) -> SegmentationResult:
    points = features.scaled
    density: DensityClustering | None = None
    candidates: tuple[KCandidate, ...] = ()
    if config.algorithm == "dbscan":
        density = fit_dbscan(
            points,
            eps=config.eps,
            min_samples=config.min_samples,
            sample_rows=limits.dbscan_sample_rows,
            random_state=config.random_state,
        )
        labels = relabel_by_size(density.labels)
        algorithm, search_rows = "dbscan", density.sample_size
        progress(0.6, f"DBSCAN found {_cluster_count(labels)} clusters")
    else:
        search = search_k(
            points,
            range(config.min_clusters, config.max_clusters + 1),
            limits=limits,
            random_state=config.random_state,
            progress=lambda fraction, message: progress(0.1 + 0.5 * fraction, message),
        )
        minibatch = (
            config.algorithm == "minibatch_kmeans" or features.rows > limits.minibatch_above_rows
        )
        algorithm = "minibatch_kmeans" if minibatch else "kmeans"
        progress(0.6, f"fitting k={search.best_k} ({algorithm}) on {features.rows} rows")
        labels = relabel_by_size(
            fit_final(
                points, search.centroids, minibatch=minibatch, random_state=config.random_state
            )
        )
        candidates, search_rows = search.candidates, search.sample_size

    progress(0.7, "silhouette of the final segments")
    silhouette = sampled_silhouette(
        points,
        labels,
        sample_size=limits.silhouette_sample_rows,
        min_per_cluster=limits.silhouette_min_per_cluster,
        random_state=config.random_state,
    )
    progress(0.75, "profiling segments")
    profiles = profile_segments(features, labels)
    names = name_segments(profiles)
    progress(0.85, "suggesting rules")
    rules = suggest_rules(
        features,
        labels,
        [profile.cluster_id for profile in profiles],
        sample_rows=limits.rule_sample_rows,
        random_state=config.random_state,
    )
    segments = tuple(
        Segment(
            cluster_id=profile.cluster_id,
            name=names[profile.cluster_id],
            size=profile.size,
            share=profile.share,
            centroid=profile.centroid,
            profile=profile.profile,
            distinguishing_features=profile.distinguishing,
            suggested_rule=rules[profile.cluster_id],
        )
        for profile in profiles
    )
    frame_labels = _frame_labels(features, labels)
    segment_names = dict(names)
    if features.empty_rows and -1 not in segment_names:
        segment_names[-1] = UNASSIGNED if density is None else OUTLIERS
    progress(1.0, f"{_cluster_count(labels)} segments")
    return SegmentationResult(
        k=_cluster_count(labels),
        algorithm=algorithm,
        silhouette=silhouette.value,
        silhouette_sample_size=silhouette.sample_size,
        k_search=candidates,
        search_sample_size=search_rows,
        row_count=features.rows,
        features_used=tuple(features.columns_used),
        preprocessing=features.preprocessing(),
        segments=segments,
        labels=frame_labels,
        segment_names=segment_names,
        dbscan=density,
    )


def _cluster_count(labels: Labels) -> int:
    return int(np.unique(labels[labels >= 0]).size)


def _frame_labels(features: FeatureMatrix, labels: Labels) -> Labels:
    """Labels in frame order; rows with every feature missing get ``-1``."""
    if features.kept_rows is None:
        return labels
    every_row = np.full(features.frame_rows, -1, dtype=np.int32)
    every_row[features.kept_rows] = labels
    return every_row
