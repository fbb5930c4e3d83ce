from __future__ import annotations

import numpy as np
import pandas as pd

from mlworker.analysis.segmentation.columns import select_columns
from mlworker.analysis.segmentation.features import build_features
from mlworker.analysis.segmentation.rules import Condition, round_significant, suggest_rules

ROWS = 4000
rng = np.random.default_rng(11)


def test_clean_segment_gets_a_precise_rule_measured_on_all_rows() -> None:
    income = rng.uniform(20_000, 150_000, ROWS)
    tier = rng.choice(["Bronze", "Silver", "Gold"], ROWS)
    age = rng.uniform(18, 80, ROWS)
    labels = np.where((income >= 85_000) & (tier == "Gold"), 1, 0).astype(np.int32)
    frame = pd.DataFrame({"income": income, "tier": tier, "age": age})
    features = build_features(select_columns(frame, None, None, random_state=0), ROWS)
    rules = suggest_rules(features, labels, [0, 1], sample_rows=1500, random_state=0)
    rule = rules[1]
    assert rule is not None
    fields = {(c.field, c.op) for c in rule.conditions}
    assert fields == {("income", ">="), ("tier", "=")}
    threshold = next(c.value for c in rule.conditions if c.field == "income")
    assert isinstance(threshold, int | float) and 80_000 <= threshold <= 90_000
    assert threshold == round_significant(float(threshold))
    assert "tier = 'Gold'" in rule.text and " AND " in rule.text
    covered = (income >= threshold) & (tier == "Gold")
    hits = (covered & (labels == 1)).sum()
    assert rule.precision == hits / covered.sum()
    assert rule.recall == hits / (labels == 1).sum()
    assert rule.precision >= 0.97 and rule.recall >= 0.97
    # The rest is a union ("income < 85000 OR tier != Gold"); one leaf covers a pure part.
    assert rules[0] is not None and rules[0].precision >= 0.99


def test_round_significant() -> None:
    assert round_significant(85_012.3) == 85_000
    assert round_significant(0.0123456) == 0.0123
    assert round_significant(-1_234.5) == -1_230
    assert round_significant(0.0) == 0


def test_condition_text_quotes_levels() -> None:
    assert Condition("tier", "!=", "O'Neil").text == "tier != 'O''Neil'"
    assert Condition("age", "<", 42.5).text == "age < 42.5"
