from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlworker.engines import build_engine, config_of
from mlworker.engines.scorecard import Engine, ScorecardConfig

STARBUCKS_RULES = [
    {
        "field": "reward_tier",
        "operator": "eq",
        "value": "gold",
        "points": 20,
        "description": "Gold members",
    },
    {"field": "visit_frequency", "operator": "gte", "value": 3, "points": 15},
    {"field": "age", "operator": "gte", "value": 25, "points": 10},
]


def _engine(**config: Any) -> Engine:
    return Engine(ScorecardConfig.model_validate(config))


def _single_rule(operator: str, value: Any, points: float = 10.0) -> Engine:
    rule = {"field": "x", "operator": operator, "value": value, "points": points}
    return _engine(rules=[rule], normalization="linear")


@pytest.mark.parametrize(
    ("points", "expected"), [(0, 0.5), (25, 0.8176), (35, 0.8909), (40, 0.9168)]
)
def test_sigmoid_acceptance_vectors(points: float, expected: float) -> None:
    # 50 + points raw: 50 → 0.5, 75 → 0.8176, 85 → 0.8909, 90 → 0.9168 (issue 5).
    engine = _engine(rules=[{"field": "a", "operator": "eq", "value": 1, "points": points}])
    (score,) = engine.score(pd.DataFrame({"a": [1]}))
    assert score == pytest.approx(expected, abs=5e-5)
    raw = 50 + points
    assert score == pytest.approx(1 / (1 + math.exp(-6 * (raw - 50) / 100)), abs=1e-15)


def test_seed_worked_example_scores_85_points_as_0_891() -> None:
    # The seed prints 0.818 for this member; that is 75 points' value (a known slip).
    engine = _engine(rules=STARBUCKS_RULES)
    member = pd.DataFrame({"reward_tier": ["gold"], "visit_frequency": [4], "income": [75000]})
    assert engine.score(member)[0] == pytest.approx(0.8909, abs=5e-5)
    (explanation,) = engine.explain(member)
    assert explanation.details[-1]["rawScore"] == 85.0


def test_sigmoid_is_centred_on_the_configured_range() -> None:
    engine = _engine(baseScore=0, minScore=-20, maxScore=180)
    assert engine.score(pd.DataFrame({"a": [1]}))[0] == pytest.approx(
        1 / (1 + math.exp(-6 * (0 - 80) / 200)), abs=1e-15
    )


def test_linear_normalisation_is_clamped() -> None:
    rule = {"field": "a", "operator": "gt", "value": 0, "points": 0}
    engine = _engine(normalization="linear", rules=[rule], minScore=20, maxScore=120)
    points = [-100.0, 0.0, 30.0, 100.0]
    scores = [
        Engine(engine.config.model_copy(update={"base_score": p})).score(pd.DataFrame({"a": [1]}))
        for p in points
    ]
    np.testing.assert_allclose(np.concatenate(scores), [0.0, 0.0, 0.1, 0.8])
    top = _engine(normalization="linear", baseScore=500)
    assert top.score(pd.DataFrame({"a": [1]}))[0] == 1.0


# (operator, rule value, candidate value, matched?)
OPERATOR_CASES: list[tuple[str, Any, Any, bool]] = [
    ("eq", "gold", "gold", True),
    ("eq", "gold", "Gold", False),
    ("eq", 3, 3.0, True),
    ("eq", 3, "3", True),
    ("eq", "3", 3, True),
    ("eq", 3, "three", False),
    ("eq", True, True, True),
    ("eq", "true", True, True),
    ("eq", False, True, False),
    ("neq", "gold", "silver", True),
    ("neq", "gold", "gold", False),
    ("neq", 3, "3.0", False),
    ("gt", 10, 11, True),
    ("gt", 10, 10, False),
    ("gt", 10, "12.5", True),
    ("gt", 10, "lots", False),
    ("gte", 10, 10, True),
    ("gte", 10, 9.99, False),
    ("lt", 0, -1, True),
    ("lt", 0, 0, False),
    ("lte", 0, 0, True),
    ("lte", 0, 0.5, False),
    ("gte", "2.5", 3, True),
    ("in", ["gold", "silver"], "silver", True),
    ("in", ["gold", "silver"], "bronze", False),
    ("in", [1, 2], "2", True),
    ("not_in", ["gold", "silver"], "bronze", True),
    ("not_in", ["gold", "silver"], "gold", False),
    ("contains", "coffee", "iced coffee", True),
    ("contains", "tea", "iced coffee", False),
    ("contains", "vip", ["new", "vip"], True),
    ("contains", 7, [1, 7.0], True),
    ("contains", "vip", ["very important"], False),
    ("starts_with", "ice", "iced coffee", True),
    ("starts_with", "coffee", "iced coffee", False),
    ("starts_with", "44", 4471, True),
]


@pytest.mark.parametrize(("operator", "value", "actual", "matched"), OPERATOR_CASES)
def test_operator_semantics(operator: str, value: Any, actual: Any, matched: bool) -> None:
    engine = _single_rule(operator, value)
    frame = pd.DataFrame({"x": pd.Series([actual], dtype=object)})
    assert engine.score(frame)[0] == (0.6 if matched else 0.5)
    assert engine.explain(frame)[0].details[0]["matched"] is matched


OPERATOR_VALUES = {
    "eq": "gold",
    "neq": "gold",
    "gt": 1,
    "gte": 1,
    "lt": 1,
    "lte": 1,
    "in": ["gold"],
    "not_in": ["gold"],
    "contains": "o",
    "starts_with": "g",
}


@pytest.mark.parametrize(("operator", "value"), sorted(OPERATOR_VALUES.items()))
def test_missing_values_match_no_operator(operator: str, value: Any) -> None:
    engine = _single_rule(operator, value)
    frame = pd.DataFrame({"x": pd.Series([None, np.nan, pd.NA], dtype=object)})
    np.testing.assert_array_equal(engine.score(frame), 0.5)
    np.testing.assert_array_equal(engine.score(pd.DataFrame({"other": [1, 2]})), 0.5)
    details = engine.explain(pd.DataFrame({"other": [1]}))[0].details[0]
    assert details["actual"] is None and details["matched"] is False


def test_rules_are_evaluated_column_by_column_over_many_rows() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "reward_tier": rng.choice(["gold", "silver", None], 500),
            "visit_frequency": rng.integers(0, 6, 500).astype(float),
            "age": rng.normal(30, 8, 500),
        }
    )
    frame.loc[rng.random(500) < 0.1, "age"] = np.nan
    raw = (
        50
        + 20 * (frame.reward_tier == "gold")
        + 15 * (frame.visit_frequency >= 3)
        + 10 * (frame.age >= 25)
    )
    expected = 1 / (1 + np.exp(-6 * (raw.to_numpy(dtype=float) - 50) / 100))
    scores = _engine(rules=STARBUCKS_RULES).score(frame)
    assert scores.dtype == np.float64 and scores.shape == (500,)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-15)


def test_explanation_is_a_full_audit_trail() -> None:
    engine = _engine(rules=STARBUCKS_RULES)
    candidates = pd.DataFrame(
        {"reward_tier": ["gold", "silver"], "visit_frequency": [4, 1], "offerId": ["o", "o"]}
    )
    first, second = engine.explain(candidates)
    assert first.engine == "scorecard" and first.confidence is None
    assert first.score == engine.score(candidates)[0]
    assert first.details == [
        {
            "field": "reward_tier",
            "operator": "eq",
            "expected": "gold",
            "actual": "gold",
            "matched": True,
            "points": 20.0,
            "description": "Gold members",
        },
        {
            "field": "visit_frequency",
            "operator": "gte",
            "expected": 3,
            "actual": 4,
            "matched": True,
            "points": 15.0,
            "description": "",
        },
        {
            "field": "age",
            "operator": "gte",
            "expected": 25,
            "actual": None,
            "matched": False,
            "points": 10.0,
            "description": "",
        },
        {"baseScore": 50.0, "rawScore": 85.0, "normalization": "sigmoid"},
    ]
    assert [d.get("matched") for d in second.details] == [False, False, False, None]
    assert second.details[-1]["rawScore"] == 50.0
    json.dumps([first.to_dict(), second.to_dict()])


def test_explanation_actual_values_are_plain_json() -> None:
    engine = _single_rule("contains", "a")
    frame = pd.DataFrame(
        {"x": pd.Series([np.int64(3), ["a", np.float64(1.5)], pd.Timestamp("2024-01-02")])}
    )
    actual = [e.details[0]["actual"] for e in engine.explain(frame)]
    assert actual == [3, ["a", 1.5], "2024-01-02T00:00:00"]
    json.dumps(actual)


def test_no_training_needed() -> None:
    engine = _engine(rules=STARBUCKS_RULES)
    assert engine.is_trained
    frame = pd.DataFrame({"reward_tier": ["gold"]})
    before = engine.score(frame)
    assert engine.fit(frame, np.array([1.0])) is engine
    np.testing.assert_array_equal(engine.score(frame), before)
    assert engine.state() == {}
    assert engine.load_state({}) is engine
    with pytest.raises(ValueError, match="no learned state"):
        engine.load_state({"weights": {}})
    with pytest.raises(ValueError):
        engine.fit(frame, np.array([1.0, 0.0]))


def test_empty_frame() -> None:
    engine = _engine(rules=STARBUCKS_RULES)
    assert engine.score(pd.DataFrame()).shape == (0,)
    assert engine.explain(pd.DataFrame()) == []


def test_registry_builds_it_with_seed_defaults() -> None:
    engine = build_engine("scorecard", {"rules": STARBUCKS_RULES})
    assert isinstance(engine, Engine)
    defaults = config_of("scorecard").model_dump(by_alias=True)
    assert defaults == {
        "baseScore": 50,
        "rules": [],
        "normalization": "sigmoid",
        "maxScore": 100,
        "minScore": 0,
    }


def _error_locations(config: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        ScorecardConfig.model_validate(config)
    return [error["loc"] for error in caught.value.errors()]


@pytest.mark.parametrize(
    ("rule", "location"),
    [
        ({"operator": "matches", "value": "x"}, "operator"),
        ({"operator": "in", "value": "gold"}, "value"),
        ({"operator": "not_in", "value": 3}, "value"),
        ({"operator": "eq", "value": ["gold"]}, "value"),
        ({"operator": "gt", "value": "high"}, "value"),
        ({"operator": "lte", "value": True}, "value"),
        ({"operator": "eq", "value": None}, "value"),
        ({"operator": "eq", "value": "x", "points": "many"}, "points"),
        ({"operator": "eq", "value": "x", "weight": 3}, "weight"),
    ],
)
def test_invalid_rules_name_the_offending_field(rule: dict[str, Any], location: str) -> None:
    ok = {"field": "a", "operator": "eq", "value": 1, "points": 1}
    bad = {"field": "b", "points": 5, **rule}
    locations = _error_locations({"rules": [ok, bad]})
    assert locations and all(loc[:2] == ("rules", 1) for loc in locations)
    assert any(location in map(str, loc) for loc in locations)


def test_point_range_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="maxScore"):
        ScorecardConfig(maxScore=10, minScore=10)


def test_numeric_text_rule_values_are_accepted_for_ordered_operators() -> None:
    config = ScorecardConfig.model_validate(
        {"rules": [{"field": "a", "operator": "gte", "value": "2.5", "points": 1}]}
    )
    assert config.rules[0].value == 2.5
