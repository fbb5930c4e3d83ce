from __future__ import annotations

import numpy as np
import pandas as pd

from mlworker.analysis.segmentation.columns import select_columns
from mlworker.analysis.segmentation.features import FeatureMatrix, build_features
from mlworker.analysis.segmentation.profiles import profile_segments, segment_order

rng = np.random.default_rng(5)
ROWS = 1000


def _setup() -> tuple[pd.DataFrame, FeatureMatrix, np.ndarray]:
    labels = np.repeat(np.array([0, 1, -1], dtype=np.int32), [600, 350, 50])
    frame = pd.DataFrame(
        {
            "income": np.where(labels == 1, 90_000.0, 40_000.0) + rng.normal(0, 5000, ROWS),
            "tier": np.where(labels == 1, "Gold", rng.choice(["Bronze", "Silver"], ROWS)),
        }
    )
    frame.loc[[0, 1, 700], "income"] = np.nan
    features = build_features(select_columns(frame, None, None, random_state=0), ROWS)
    return frame, features, labels


def test_profiles_match_direct_computation() -> None:
    frame, features, labels = _setup()
    profiles = profile_segments(features, labels)
    assert [p.cluster_id for p in profiles] == [0, 1, -1]
    gold = profiles[1]
    members = frame[labels == 1]
    assert gold.size == 350 and np.isclose(gold.share, 0.35)
    income = members["income"].dropna()
    numeric = gold.profile["income"]
    assert np.isclose(numeric["mean"], income.mean())
    assert np.isclose(numeric["std"], income.std())
    assert np.isclose(numeric["p25"], income.quantile(0.25))
    assert np.isclose(numeric["p75"], income.quantile(0.75))
    assert numeric["min"] == income.min() and numeric["max"] == income.max()
    assert numeric["missing"] == 1
    assert gold.centroid == {"income": numeric["mean"], "tier": "Gold"}
    assert gold.profile["tier"]["topLevels"] == [{"level": "Gold", "share": 1.0}]


def test_distinguishing_features_are_standardised_differences() -> None:
    frame, features, labels = _setup()
    gold = profile_segments(features, labels)[1]
    population = frame["income"].dropna()
    by_feature = {d.feature: d for d in gold.differences}
    income = by_feature["income"]
    segment_mean = frame.loc[labels == 1, "income"].mean()
    expected = (segment_mean - population.mean()) / population.std(ddof=0)
    assert np.isclose(income.difference, expected)
    assert income.level is None and np.isclose(income.population_value, population.mean())
    p = (frame["tier"] == "Gold").mean()
    tier_gold = by_feature["tier=Gold"]
    assert tier_gold.column == "tier" and tier_gold.level == "Gold"
    assert np.isclose(tier_gold.difference, (1.0 - p) / np.sqrt(p * (1 - p)))
    sizes = [abs(d.difference) for d in gold.differences]
    assert sizes == sorted(sizes, reverse=True)
    assert len(gold.differences) == 4  # income and the three tier levels
    assert gold.distinguishing == gold.differences[:5]
    assert gold.distinguishing[0].feature in {"income", "tier=Gold"}


def test_segment_order_is_by_size() -> None:
    assert segment_order(np.array([2, 2, 0, 5, 5, 5], dtype=np.int32)) == [5, 2, 0]
