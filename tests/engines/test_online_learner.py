from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mlworker.engines import IncrementalEngine, build_engine
from mlworker.engines._features import MAX_LEVELS
from mlworker.engines.online_learner import Engine, OnlineLearnerConfig

NUMERIC = ["age", "visits", "member"]


def _stream(rows: int, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """A planted logistic model over raw-scale fields (true weights on the standardised scale)."""
    rng = np.random.default_rng(seed)
    raw = np.column_stack(
        [rng.normal(40, 12, rows), rng.exponential(3, rows), rng.integers(0, 2, rows)]
    )
    standard = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    margin = standard @ [1.2, -0.8, 0.5] - 0.3
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(np.float64)
    frame = pd.DataFrame(
        {"offerId": "o1", "age": raw[:, 0], "visits": raw[:, 1], "member": raw[:, 2] == 1}
    )
    return frame, outcomes


def _standardised(engine: Engine, frame: pd.DataFrame) -> np.ndarray:
    """The frame standardised with the engine's own running statistics."""
    fields = {entry["name"]: entry for entry in engine.state()["fields"]}
    columns = []
    for name in NUMERIC:
        entry = fields[name]
        scale = math.sqrt(entry["m2"] / entry["count"])
        columns.append((frame[name].astype(float) - entry["mean"]) / scale)
    return np.column_stack(columns)


def test_converges_toward_the_batch_solution_with_default_settings() -> None:
    frame, y = _stream(20_000)
    engine = Engine(OnlineLearnerConfig())
    distances, seen = [], 0
    for checkpoint in (1_000, 5_000, 20_000):
        engine.update(frame.iloc[seen:checkpoint], y[seen:checkpoint])
        seen = checkpoint
        design = _standardised(engine, frame.iloc[:checkpoint])
        batch = LogisticRegression(C=np.inf, tol=1e-10).fit(design, y[:checkpoint])
        weights = np.array([engine.state()["weights"][name] for name in NUMERIC])
        distances.append(float(np.linalg.norm(weights - batch.coef_[0])))
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 0.1  # measured 0.07; 1.0 after 500 examples
    assert engine.state()["bias"] == pytest.approx(batch.intercept_[0], abs=0.05)
    online_auc = roc_auc_score(y, engine.score(frame))
    batch_auc = roc_auc_score(y, batch.decision_function(design))
    assert online_auc == pytest.approx(batch_auc, abs=0.002)


def test_steps_follow_the_decaying_learning_rate() -> None:
    engine = Engine(OnlineLearnerConfig(learningRate=0.1, decayRate=0.5))
    engine.learn_one({"tier": "gold"}, 1)
    # margin 0 → p = 0.5, error -0.5, lr_0 = 0.1
    assert engine.state()["weights"] == {"tier=gold": 0.05}
    assert engine.state()["bias"] == 0.05
    engine.learn_one({"tier": "gold"}, 0)
    rate = 0.1 / (1 + 0.5 * 1)
    error = 1 / (1 + math.exp(-0.1)) - 0
    expected = 0.05 - rate * error
    state = engine.state()
    assert state["weights"]["tier=gold"] == pytest.approx(expected, abs=1e-15)
    assert state["bias"] == pytest.approx(expected, abs=1e-15)
    assert state["step"] == 2


def test_l2_shrinks_weights_but_not_the_bias() -> None:
    engine = Engine(OnlineLearnerConfig(learningRate=0.2, decayRate=0.0, l2=0.5))
    engine.learn_one({"tier": "gold"}, 1)
    engine.learn_one({"tier": "silver"}, 1)
    first = 0.2 * 0.5  # the first step moves tier=gold and the bias by lr * 0.5
    error = 1 / (1 + math.exp(-first)) - 1
    weights = engine.state()["weights"]
    assert weights["tier=gold"] == pytest.approx(first * (1 - 0.2 * 0.5), abs=1e-15)
    assert weights["tier=silver"] == pytest.approx(-0.2 * error, abs=1e-15)
    assert engine.state()["bias"] == pytest.approx(first - 0.2 * error, abs=1e-15)


def test_running_statistics_are_welford_exact() -> None:
    frame, y = _stream(3_000)
    engine = Engine(OnlineLearnerConfig()).fit(frame, y)
    fields = {entry["name"]: entry for entry in engine.state()["fields"]}
    for name in NUMERIC:
        values = frame[name].astype(float).to_numpy()
        assert fields[name]["count"] == len(values)
        assert fields[name]["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert fields[name]["m2"] / len(values) == pytest.approx(values.var(), rel=1e-10)


def test_a_field_first_seen_contributes_nothing_until_it_varies() -> None:
    engine = Engine(OnlineLearnerConfig(learningRate=0.5))
    engine.learn_one({"age": 30}, 1)
    assert engine.state()["weights"] == {"age": 0.0}  # z = 0 for the only value seen
    engine.learn_one({"age": 50}, 1)
    assert engine.state()["weights"]["age"] > 0


def test_update_is_learn_one_in_row_order() -> None:
    frame, y = _stream(200)
    frame["tier"] = np.where(np.arange(200) % 3 == 0, "gold", None)
    batch = Engine(OnlineLearnerConfig())
    batch.update(frame, y)
    single = Engine(OnlineLearnerConfig())
    for record, outcome in zip(frame.to_dict("records"), y, strict=True):
        single.learn_one(record, outcome)
    assert batch.state() == single.state()


def test_fit_starts_over_and_streams_every_epoch() -> None:
    frame, y = _stream(300)
    engine = Engine(OnlineLearnerConfig()).fit(frame, y)
    once = engine.state()
    assert engine.fit(frame, y).state() == once
    twice = Engine(OnlineLearnerConfig(epochs=2)).fit(frame, y)
    assert twice.state()["step"] == 600
    assert twice.state()["weights"] != once["weights"]


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_state_round_trip_scores_and_keeps_learning_identically(l2: float) -> None:
    frame, y = _stream(600)
    frame["tier"] = np.where(np.arange(600) % 2 == 0, "gold", "silver")
    config = OnlineLearnerConfig(l2=l2)
    engine = Engine(config)
    engine.update(frame.iloc[:400], y[:400])
    restored = build_engine("online_learner", config, state=json.loads(json.dumps(engine.state())))
    np.testing.assert_array_equal(restored.score(frame), engine.score(frame))
    assert isinstance(restored, Engine)
    engine.update(frame.iloc[400:], y[400:])
    restored.update(frame.iloc[400:], y[400:])
    tolerance = 0 if l2 == 0 else 1e-12
    np.testing.assert_allclose(restored.score(frame), engine.score(frame), rtol=0, atol=tolerance)


def test_untrained_engine_scores_one_half() -> None:
    engine = Engine(OnlineLearnerConfig())
    assert isinstance(engine, IncrementalEngine)
    assert not engine.is_trained and engine.state() == {}
    np.testing.assert_array_equal(engine.score(pd.DataFrame({"a": [1, 2]})), 0.5)
    (explanation,) = engine.explain(pd.DataFrame({"a": [1]}))
    assert explanation.score == 0.5 and explanation.details == []
    assert engine.load_state({}).is_trained is False


@pytest.mark.parametrize("outcome", [2, -1, 0.5, "yes", None, float("nan")])
def test_bad_outcomes_are_refused(outcome: Any) -> None:
    engine = Engine(OnlineLearnerConfig())
    with pytest.raises(ValueError, match="0 or 1"):
        engine.learn_one({"a": 1}, outcome)
    assert not engine.is_trained


def test_missing_text_and_ids_are_ignored_and_categories_grow() -> None:
    engine = Engine(OnlineLearnerConfig())
    engine.learn_one({"customerId": "c1", "offerId": "o1", "age": 30, "tier": None}, 1)
    engine.learn_one({"age": "unknown", "tier": float("nan")}, 0)
    engine.learn_one({"age": "45", "tier": "gold"}, 1)
    state = engine.state()
    assert list(state["weights"]) == ["age", "tier=gold"]
    assert [f["name"] for f in state["fields"]] == ["age", "tier"]
    assert state["fields"][0]["count"] == 2  # "unknown" is not a number
    for level in range(MAX_LEVELS + 5):
        engine.learn_one({"plan": f"p{level}"}, level % 2)
    plans = [name for name in engine.state()["weights"] if name.startswith("plan=")]
    assert len(plans) == MAX_LEVELS


def test_explanations_add_up_to_the_logit() -> None:
    frame, y = _stream(2_000)
    frame["tier"] = np.where(y == 1, "gold", "silver")
    engine = Engine(OnlineLearnerConfig()).fit(frame, y)
    candidates = frame.head(4).assign(tier=["gold", "platinum", None, "silver"])
    scores = engine.score(candidates)
    for explanation, score in zip(engine.explain(candidates), scores, strict=True):
        assert explanation.engine == "online_learner" and explanation.score == score
        assert sorted(d["field"] for d in explanation.details) == [
            "age",
            "member",
            "tier",
            "visits",
        ]
        logit = engine.state()["bias"] + sum(d["contribution"] for d in explanation.details)
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(score, abs=1e-12)
    assert scores[0] > scores[3]


def test_numeric_strings_at_score_time_score_like_numbers() -> None:
    frame, y = _stream(500)
    engine = Engine(OnlineLearnerConfig()).fit(frame, y)
    as_text = frame.head(5).astype({"age": str, "visits": str})
    np.testing.assert_array_equal(engine.score(as_text), engine.score(frame.head(5)))


@pytest.mark.parametrize(
    "state",
    [
        {"weights": {}, "bias": 0.0},
        {"weights": {"ghost": 1.0}, "bias": 0.0, "step": 1, "fields": []},
        {"weights": {}, "bias": 0.0, "step": 1, "fields": [{"name": "a", "kind": "date"}]},
    ],
)
def test_malformed_state_is_refused(state: dict[str, Any]) -> None:
    engine = Engine(OnlineLearnerConfig())
    with pytest.raises(ValueError):
        engine.load_state(state)
    assert not engine.is_trained


@pytest.mark.parametrize(
    "config", [{"learningRate": 0}, {"decayRate": -0.1}, {"l2": -1}, {"epochs": 0}]
)
def test_invalid_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        OnlineLearnerConfig.model_validate(config)
    assert next(iter(config)) in str(caught.value)
