"""The content analysis answer: ranked features, insights, baseline and per-creative rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlworker.serialization import json_safe

#: Per-creative columns of the JSON answer, in order.
CREATIVE_COLUMNS = (
    "id",
    "channel",
    "impressions",
    "clicks",
    "conversions",
    "revenue",
    "ctr",
    "cvr",
    "rpi",
    "shrunkRate",
    "vsPeers",
    "trend",
    "days",
    "modelled",
)


@dataclass(frozen=True, slots=True)
class FeatureEffect:
    """One ranked feature: how much the model needs it, which way it pushes, what the data say.

    Attributes
    ----------
    feature, kind, field, label
        Display name, ``"term"`` or ``"attribute"``, its text field (or ``"channel"``), and the
        term, attribute key or channel name.
    importance, importance_std
        Mean and standard deviation over repeats of the drop in held-out R² when permuted.
    direction, effect
        ``"+"`` or ``"-"``, and the model's relative change of the predicted rate between the
        contrasted values (a term absent → present).
    lift, low, high, p_value
        Data estimate: rate with the feature over rate without it, 95 % interval, p-value.
    creatives_with, creatives_without
        Creatives with and without the feature (for counts and shares: above ``threshold``).
    threshold
        For counts and shares, the median that splits "with" from "without".
    """

    feature: str
    kind: Literal["term", "attribute"]
    field: str
    label: str
    importance: float
    importance_std: float
    direction: Literal["+", "-"]
    effect: float | None
    lift: float | None
    low: float | None
    high: float | None
    p_value: float | None
    creatives_with: int
    creatives_without: int
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """CamelCase JSON form."""
        return {
            "feature": self.feature,
            "kind": self.kind,
            "field": self.field,
            "term": self.label if self.kind == "term" else None,
            "importance": self.importance,
            "importanceStd": self.importance_std,
            "direction": self.direction,
            "effect": self.effect,
            "lift": self.lift,
            "low": self.low,
            "high": self.high,
            "pValue": self.p_value,
            "creativesWith": self.creatives_with,
            "creativesWithout": self.creatives_without,
            "threshold": self.threshold,
        }


@dataclass(frozen=True, slots=True)
class Insight:
    """A sentence about one significant feature, with the numbers behind it."""

    text: str
    feature: str
    lift: float
    low: float
    high: float | None
    p_value: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """CamelCase JSON form."""
        return {
            "text": self.text,
            "feature": self.feature,
            "lift": self.lift,
            "low": self.low,
            "high": self.high,
            "pValue": self.p_value,
            "n": self.n,
        }


@dataclass(frozen=True)
class ContentResult:
    """What drives the creatives' rate, and every creative's shrunk rate.

    ``per_creative`` holds every creative (columns of :data:`CREATIVE_COLUMNS` plus
    ``channelRate``) for the service to write out; ``to_dict()`` carries only ``creatives``,
    the ``max_creatives`` with the most impressions.
    """

    creative_count: int
    modelled_count: int
    excluded: dict[str, int]
    target: str
    baseline: dict[str, Any]
    model: dict[str, Any]
    feature_importance: tuple[FeatureEffect, ...]
    insights: tuple[Insight, ...]
    creatives: tuple[dict[str, Any], ...]
    creatives_truncated: bool
    notes: tuple[str, ...]
    per_creative: pd.DataFrame = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON answer: camelCase keys, plain types."""
        answer = {
            "creativeCount": self.creative_count,
            "modelledCount": self.modelled_count,
            "excluded": self.excluded,
            "target": self.target,
            "baseline": self.baseline,
            "model": self.model,
            "featureImportance": [effect.to_dict() for effect in self.feature_importance],
            "insights": [insight.to_dict() for insight in self.insights],
            "creatives": list(self.creatives),
            "creativesTruncated": self.creatives_truncated,
            "notes": list(self.notes),
        }
        return dict(json_safe(answer))


def creative_records(per_creative: pd.DataFrame, limit: int) -> tuple[dict[str, Any], ...]:
    """Return the ``limit`` creatives with the most impressions (ties: first seen first)."""
    order = np.argsort(-per_creative["impressions"].to_numpy(dtype=np.float64), kind="stable")
    top = per_creative.iloc[order[:limit]]
    records = top[list(CREATIVE_COLUMNS)].to_dict(orient="records")
    return tuple(json_safe(record) for record in records)
