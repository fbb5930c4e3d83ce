"""Customers with planted segments: ground truth for tests, benchmarks and demos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

TIERS = ("Bronze", "Silver", "Gold", "Platinum")
SIGNAL_SHIFT = 1.5


@dataclass(frozen=True, slots=True)
class PlantedSegment:
    """Centre of one planted segment (income is log-normal around ``income``)."""

    share: float
    income: float
    age: float
    purchase_frequency: float
    tier: str


PLANTED = (
    PlantedSegment(0.4, 30_000, 25, 2.0, "Bronze"),
    PlantedSegment(0.3, 60_000, 45, 7.0, "Silver"),
    PlantedSegment(0.2, 130_000, 52, 12.0, "Gold"),
    PlantedSegment(0.1, 45_000, 72, 20.0, "Platinum"),
)
"""Young budget buyers, mid-market, affluent, frequent seniors."""


def planted_customers(
    rows: int,
    *,
    seed: int = 0,
    noise_columns: int = 2,
    signal_columns: int = 0,
    noise_categoricals: int = 0,
    outlier_share: float = 0.0,
    missing_share: float = 0.0,
    junk_columns: bool = True,
) -> tuple[pd.DataFrame, npt.NDArray[np.int32]]:
    """Generate customers from :data:`PLANTED` and return them with each row's true segment.

    Parameters
    ----------
    rows
        Number of customers.
    seed
        Seed of everything generated.
    noise_columns
        Extra standard-normal numeric columns ``noise_1 …`` unrelated to the segments.
    signal_columns
        Extra unit-normal numeric columns ``metric_1 …``; ``metric_j`` is raised by
        :data:`SIGNAL_SHIFT` in planted segment ``(j − 1) mod 4``, so every segment owns some.
    noise_categoricals
        Extra uniform categorical columns ``category_1 …`` (five levels) unrelated to them.
    outlier_share
        Share of rows whose income is multiplied by 20 to 100 (heavy-tailed outliers).
    missing_share
        Share of missing values in ``income``, ``age`` and ``tier``.
    junk_columns
        Add ``customer_id`` (unique), ``country`` (constant) and ``referrer`` (all missing).

    Examples
    --------
    >>> frame, truth = planted_customers(1000, seed=1)
    >>> sorted(frame.columns)[:4], np.bincount(truth).tolist()
    (['age', 'country', 'customer_id', 'income'], [400, 300, 200, 100])
    """
    rng = np.random.default_rng(seed)
    shares = np.array([segment.share for segment in PLANTED])
    counts = np.floor(shares * rows).astype(int)
    counts[0] += rows - counts.sum()
    truth = rng.permutation(np.repeat(np.arange(len(PLANTED), dtype=np.int32), counts))
    centre = {
        name: np.array([getattr(segment, name) for segment in PLANTED])[truth]
        for name in ("income", "age", "purchase_frequency")
    }
    income = centre["income"] * np.exp(rng.normal(0.0, 0.12, rows))
    if outlier_share > 0:
        outliers = rng.random(rows) < outlier_share
        income[outliers] *= rng.uniform(20, 100, int(outliers.sum()))
    age = np.clip(np.round(centre["age"] + rng.normal(0.0, 3.0, rows)), 18, 95)
    frequency = np.maximum(centre["purchase_frequency"] + rng.normal(0.0, 1.0, rows), 0.0)
    planted_tier = np.array([segment.tier for segment in PLANTED], dtype=object)[truth]
    # 10% of customers hold a tier at random, so the tier alone does not give the answer away.
    shuffled = rng.random(rows) < 0.1
    planted_tier[shuffled] = rng.choice(np.array(TIERS, dtype=object), int(shuffled.sum()))
    columns: dict[str, object] = {
        "income": np.round(income, 2),
        "age": age,
        "purchase_frequency": np.round(frequency, 2),
        "tier": planted_tier,
    }
    for index in range(1, signal_columns + 1):
        raised = truth == (index - 1) % len(PLANTED)
        columns[f"metric_{index}"] = SIGNAL_SHIFT * raised + rng.normal(0.0, 1.0, rows)
    for index in range(1, noise_columns + 1):
        columns[f"noise_{index}"] = rng.normal(0.0, 1.0, rows)
    levels = np.array(["a", "b", "c", "d", "e"], dtype=object)
    for index in range(1, noise_categoricals + 1):
        columns[f"category_{index}"] = rng.choice(levels, rows)
    frame = pd.DataFrame(columns)
    if missing_share > 0:
        for name in ("income", "age", "tier"):
            frame.loc[rng.random(rows) < missing_share, name] = None
    if junk_columns:
        frame.insert(0, "customer_id", np.arange(1, rows + 1) * 7 + 1000)
        frame["country"] = "NL"
        frame["referrer"] = pd.Series([None] * rows, dtype=object)
    return frame, truth
