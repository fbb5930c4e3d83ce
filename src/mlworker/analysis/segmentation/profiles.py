"""Describe each segment: size, centroid, per-column profile and what sets it apart.

Differences are standardised against the whole population so numeric and categorical features
can be ranked together: for a numeric column ``(segment mean − population mean) / population
std``; for a categorical level ``(segment share − population share) / sqrt(p (1 − p))`` with
``p`` the population share (the standardised difference of a 0/1 indicator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlworker.analysis.segmentation.features import (
    MISSING_LEVEL,
    CategoricalFeature,
    FeatureMatrix,
    NumericFeature,
)
from mlworker.analysis.segmentation.search import Labels

TOP_DISTINGUISHING = 5
TOP_LEVELS = 5


@dataclass(frozen=True, slots=True)
class DistinguishingFeature:
    """One standardised difference between a segment and the population."""

    feature: str
    column: str
    level: str | None
    difference: float
    segment_value: float
    population_value: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``level`` only for categorical levels)."""
        answer: dict[str, Any] = {"feature": self.feature, "column": self.column}
        if self.level is not None:
            answer["level"] = self.level
        answer |= {
            "difference": self.difference,
            "segmentValue": self.segment_value,
            "populationValue": self.population_value,
        }
        return answer


@dataclass(frozen=True, slots=True, eq=False)
class SegmentProfile:
    """What describes one segment, before it is named and given a rule.

    ``differences`` holds every standardised difference, largest ``|difference|`` first.
    """

    cluster_id: int
    size: int
    share: float
    centroid: dict[str, float | str | None]
    profile: dict[str, dict[str, Any]]
    differences: tuple[DistinguishingFeature, ...]

    @property
    def distinguishing(self) -> tuple[DistinguishingFeature, ...]:
        """The top differences reported."""
        return self.differences[:TOP_DISTINGUISHING]


def segment_order(labels: Labels) -> list[int]:
    """Segment ids present in ``labels``, largest first (ties by id).

    Examples
    --------
    >>> segment_order(np.array([1, -1, -1, 0, 0, 0], dtype=np.int32))
    [0, -1, 1]
    """
    ids, counts = np.unique(labels, return_counts=True)
    return [int(ids[i]) for i in np.lexsort((ids, -counts))]


def profile_segments(features: FeatureMatrix, labels: Labels) -> list[SegmentProfile]:
    """Profile every segment of ``labels`` (kept rows of ``features``), largest first."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    ids = segment_order(labels)
    bounds = {
        segment: (
            int(np.searchsorted(sorted_labels, segment, side="left")),
            int(np.searchsorted(sorted_labels, segment, side="right")),
        )
        for segment in ids
    }
    centroids: dict[int, dict[str, float | str | None]] = {segment: {} for segment in ids}
    profiles: dict[int, dict[str, dict[str, Any]]] = {segment: {} for segment in ids}
    differences: dict[int, list[DistinguishingFeature]] = {segment: [] for segment in ids}

    for numeric in features.numeric:
        _profile_numeric(numeric, order, bounds, centroids, profiles, differences)
    for categorical in features.categorical:
        _profile_categorical(categorical, labels, ids, centroids, profiles, differences)

    total = labels.size
    answer = []
    for segment in ids:
        start, stop = bounds[segment]
        ranked = sorted(differences[segment], key=lambda d: (-abs(d.difference), d.feature))
        answer.append(
            SegmentProfile(
                cluster_id=segment,
                size=stop - start,
                share=(stop - start) / total,
                centroid=centroids[segment],
                profile=profiles[segment],
                differences=tuple(ranked),
            )
        )
    return answer


def _profile_numeric(
    feature: NumericFeature,
    order: npt.NDArray[np.intp],
    bounds: dict[int, tuple[int, int]],
    centroids: dict[int, dict[str, float | str | None]],
    profiles: dict[int, dict[str, dict[str, Any]]],
    differences: dict[int, list[DistinguishingFeature]],
) -> None:
    observed_all = feature.values[~np.isnan(feature.values)]
    population_mean = float(observed_all.mean())
    population_std = float(observed_all.std())
    in_segment_order = feature.values[order]
    for segment, (start, stop) in bounds.items():
        values = in_segment_order[start:stop]
        observed = values[~np.isnan(values)]
        missing = int(values.size - observed.size)
        if observed.size == 0:
            centroids[segment][feature.name] = None
            profiles[segment][feature.name] = {"kind": "numeric", "missing": missing}
            continue
        mean = float(observed.mean())
        p25, p50, p75 = (float(q) for q in np.percentile(observed, [25, 50, 75]))
        centroids[segment][feature.name] = mean
        profiles[segment][feature.name] = {
            "kind": "numeric",
            "mean": mean,
            "std": float(observed.std(ddof=1)) if observed.size > 1 else 0.0,
            "min": float(observed.min()),
            "p25": p25,
            "p50": p50,
            "p75": p75,
            "max": float(observed.max()),
            "missing": missing,
        }
        if population_std > 0:
            differences[segment].append(
                DistinguishingFeature(
                    feature=feature.name,
                    column=feature.name,
                    level=None,
                    difference=(mean - population_mean) / population_std,
                    segment_value=mean,
                    population_value=population_mean,
                )
            )


def _profile_categorical(
    feature: CategoricalFeature,
    labels: Labels,
    ids: list[int],
    centroids: dict[int, dict[str, float | str | None]],
    profiles: dict[int, dict[str, dict[str, Any]]],
    differences: dict[int, list[DistinguishingFeature]],
) -> None:
    levels = len(feature.levels)
    # Row of each segment: label + 1, so the noise label -1 has row 0.
    width = int(labels.max()) + 2
    counts = np.bincount((labels + 1) * levels + feature.codes, minlength=width * levels)
    counts = counts.reshape(width, levels).astype(np.float64)
    population = counts.sum(axis=0) / counts.sum()
    missing_index = feature.levels.index(MISSING_LEVEL) if feature.missing else None
    for segment in ids:
        segment_counts = counts[segment + 1]
        shares = segment_counts / segment_counts.sum()
        ranked = sorted(range(levels), key=lambda j: (-segment_counts[j], feature.levels[j]))
        present = [j for j in ranked if j != missing_index and segment_counts[j] > 0]
        centroids[segment][feature.name] = feature.levels[present[0]] if present else None
        profiles[segment][feature.name] = {
            "kind": "categorical",
            "topLevels": [
                {"level": feature.levels[j], "share": float(shares[j])}
                for j in ranked[:TOP_LEVELS]
                if segment_counts[j] > 0
            ],
            "missing": int(segment_counts[missing_index]) if missing_index is not None else 0,
        }
        for j, level in enumerate(feature.levels):
            p = float(population[j])
            if 0.0 < p < 1.0:
                differences[segment].append(
                    DistinguishingFeature(
                        feature=f"{feature.name}={level}",
                        column=feature.name,
                        level=level,
                        difference=(float(shares[j]) - p) / float(np.sqrt(p * (1 - p))),
                        segment_value=float(shares[j]),
                        population_value=p,
                    )
                )
