from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from mlworker.engines import build_engine
from mlworker.engines.logistic_regression import (
    Engine,
    LogisticRegressionConfig,
    minimize_logistic_loss,
)

#: Largest coefficient (or intercept) difference from scikit-learn accepted.
SKLEARN_TOLERANCE = 2e-3


def _planted(
    rows: int, seed: int, *, categorical: bool = True, sparse: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows from a known logistic model over raw-scale numeric fields and a tier."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customerId": [f"c{i}" for i in range(rows)],
            "offerId": rng.choice(["o1", "o2"], rows),
            "age": rng.normal(40, 12, rows),
            "income": rng.lognormal(10.5, 0.4, rows),
            "visits": rng.poisson(3, rows).astype(float),
        }
    )
    standard = (frame[["age", "income", "visits"]] - frame[["age", "income", "visits"]].mean()) / (
        frame[["age", "income", "visits"]].std(ddof=0)
    )
    margin = 1.0 * standard["age"] - 0.8 * standard["visits"] - 0.3
    if not sparse:
        margin += 0.4 * standard["income"]
    else:
        for k in range(5):  # pure-noise fields the l1 penalty should zero out
            frame[f"noise{k}"] = rng.normal(size=rows)
    if categorical:
        frame["tier"] = rng.choice(["gold", "silver", "bronze"], rows, p=[0.2, 0.3, 0.5])
        margin += np.where(frame["tier"] == "gold", 1.0, 0.0)
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(np.float64)
    return frame, outcomes


def _sklearn_reference(engine: Engine, frame: pd.DataFrame, y: np.ndarray, **kw: Any) -> np.ndarray:
    design = engine.encoder_.transform(frame)
    model = LogisticRegression(tol=1e-10, max_iter=100_000, **kw).fit(design, y)
    return np.append(model.coef_[0], model.intercept_[0])


def _ours(engine: Engine) -> np.ndarray:
    return np.append(engine.coefficients_, engine.intercept_)


@pytest.mark.parametrize(("strength", "missing_tier"), [(1.0, 0.0), (20.0, 0.0), (1.0, 0.05)])
def test_l2_matches_sklearn(strength: float, missing_tier: float) -> None:
    frame, y = _planted(1500, seed=1)
    frame.loc[np.random.default_rng(0).random(len(frame)) < missing_tier, "tier"] = None
    config = LogisticRegressionConfig(regularization="l2", regularizationStrength=strength)
    engine = Engine(config).fit(frame, y)
    assert engine.converged_
    reference = _sklearn_reference(engine, frame, y, C=1 / strength)
    np.testing.assert_allclose(_ours(engine), reference, rtol=0, atol=SKLEARN_TOLERANCE)


def test_no_penalty_matches_sklearn() -> None:
    # Without a penalty a full one-hot block is collinear with the intercept and sklearn's
    # coefficients are not unique, so compare on numeric fields only.
    frame, y = _planted(1500, seed=2, categorical=False)
    engine = Engine(LogisticRegressionConfig(regularization="none")).fit(frame, y)
    reference = _sklearn_reference(engine, frame, y, C=np.inf)
    np.testing.assert_allclose(_ours(engine), reference, rtol=0, atol=SKLEARN_TOLERANCE)


def test_l1_matches_sklearn_and_its_zero_pattern() -> None:
    frame, y = _planted(1500, seed=3, sparse=True)
    config = LogisticRegressionConfig(regularization="l1", regularizationStrength=30.0)
    engine = Engine(config).fit(frame, y)
    reference = _sklearn_reference(engine, frame, y, C=1 / 30.0, l1_ratio=1.0, solver="saga")
    np.testing.assert_allclose(_ours(engine), reference, rtol=0, atol=SKLEARN_TOLERANCE)
    zeros = dict(zip(engine.encoder_.feature_names, engine.coefficients_ == 0, strict=True))
    np.testing.assert_array_equal(engine.coefficients_ == 0, reference[:-1] == 0)
    assert all(zeros[f"noise{k}"] for k in range(5))
    assert not any(zeros[name] for name in ("age", "visits", "tier=gold"))


def test_planted_coefficients_are_recovered() -> None:
    frame, y = _planted(20_000, seed=4, categorical=False)
    engine = Engine(LogisticRegressionConfig(regularization="none")).fit(frame, y)
    weights = dict(zip(engine.encoder_.feature_names, engine.coefficients_, strict=True))
    assert weights["age"] == pytest.approx(1.0, abs=0.06)
    assert weights["visits"] == pytest.approx(-0.8, abs=0.06)
    assert weights["income"] == pytest.approx(0.4, abs=0.06)
    assert engine.intercept_ == pytest.approx(-0.3, abs=0.06)


def test_solver_converges_on_a_raw_design_matrix() -> None:
    rng = np.random.default_rng(5)
    design = rng.normal(size=(800, 4)) * [1, 10, 0.1, 3] + [0, 5, 0, -2]
    y = (rng.random(800) < 1 / (1 + np.exp(-(design @ [1.0, 0.1, -5.0, 0.0])))).astype(float)
    result = minimize_logistic_loss(
        design,
        y,
        penalty="l2",
        strength=2.0,
        learning_rate=0.01,
        batch_size=16,
        max_epochs=300,
        tolerance=1e-6,
        rng=np.random.default_rng(0),
    )
    model = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(design, y)
    np.testing.assert_allclose(result.coefficients, model.coef_[0], atol=1e-3)
    assert result.intercept == pytest.approx(model.intercept_[0], abs=1e-3)
    assert result.converged and result.epochs < 300


def test_hitting_max_iterations_is_reported() -> None:
    frame, y = _planted(400, seed=6)
    engine = Engine(LogisticRegressionConfig(maxIterations=2)).fit(frame, y)
    assert engine.epochs_ == 2 and not engine.converged_
    assert engine.state()["converged"] is False


def test_unseen_category_contributes_nothing() -> None:
    frame, y = _planted(1000, seed=7)
    engine = Engine(LogisticRegressionConfig()).fit(frame, y)
    candidates = pd.DataFrame(
        {"age": [50.0, 50.0], "income": [40_000.0] * 2, "tier": ["platinum", None]}
    )
    (first, second) = engine.explain(candidates)
    assert {d["field"]: d["contribution"] for d in first.details}["tier"] == 0.0
    assert first.score == second.score
    numeric_only = candidates.drop(columns="tier")
    np.testing.assert_array_equal(engine.score(candidates), engine.score(numeric_only))


def test_explanation_adds_up_to_the_logit_and_names_original_fields() -> None:
    frame, y = _planted(1000, seed=8)
    engine = Engine(LogisticRegressionConfig()).fit(frame, y)
    candidates = frame.head(5)
    scores = engine.score(candidates)
    for explanation, score in zip(engine.explain(candidates), scores, strict=True):
        assert explanation.engine == "logistic_regression" and explanation.confidence is None
        fields = [d["field"] for d in explanation.details]
        assert sorted(fields) == ["age", "income", "tier", "visits"]
        sizes = [abs(d["contribution"]) for d in explanation.details]
        assert sizes == sorted(sizes, reverse=True)
        logit = engine.intercept_ + sum(d["contribution"] for d in explanation.details)
        assert 1 / (1 + np.exp(-logit)) == pytest.approx(score, abs=1e-12)
        assert explanation.score == score


def test_state_round_trips_through_json_exactly() -> None:
    frame, y = _planted(800, seed=9)
    engine = Engine(LogisticRegressionConfig(regularization="l1")).fit(frame, y)
    state = json.loads(json.dumps(engine.state()))
    assert set(state["coefficients"]) == set(engine.encoder_.feature_names)
    restored = build_engine("logistic_regression", {"regularization": "l1"}, state=state)
    np.testing.assert_array_equal(restored.score(frame), engine.score(frame))
    assert restored.explain(frame.head(3)) == engine.explain(frame.head(3))
    assert restored.state() == engine.state()


@pytest.mark.parametrize(
    "state",
    [
        {"encoder": {"fields": []}},
        {"encoder": {"fields": []}, "coefficients": {"ghost": 1.0}, "intercept": 0.0},
        {
            "encoder": {"fields": [{"name": "a", "kind": "numeric", "mean": 0, "scale": 1}]},
            "coefficients": {},
            "intercept": 0.0,
        },
    ],
)
def test_malformed_state_is_refused(state: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Engine(LogisticRegressionConfig()).load_state(state)


def test_loading_an_empty_state_forgets_the_model() -> None:
    frame, y = _planted(300, seed=10)
    engine = Engine(LogisticRegressionConfig()).fit(frame, y)
    assert engine.load_state({}).is_trained is False
    np.testing.assert_array_equal(engine.score(frame.head(3)), 0.5)


def test_untrained_engine() -> None:
    engine = Engine(LogisticRegressionConfig())
    assert not engine.is_trained and engine.state() == {}
    np.testing.assert_array_equal(engine.score(pd.DataFrame({"a": [1, 2]})), [0.5, 0.5])
    (explanation,) = engine.explain(pd.DataFrame({"a": [1]}))
    assert explanation.score == 0.5 and explanation.details == []


def test_seeded_shuffling_is_reproducible() -> None:
    frame, y = _planted(500, seed=11)
    config = LogisticRegressionConfig(maxIterations=3)
    first = Engine(config, random_state=1).fit(frame, y)
    again = Engine(config, random_state=1).fit(frame, y)
    other = Engine(config, random_state=2).fit(frame, y)
    np.testing.assert_array_equal(first.coefficients_, again.coefficients_)
    assert not np.array_equal(first.coefficients_, other.coefficients_)


def test_numeric_strings_at_score_time_score_like_numbers() -> None:
    frame, y = _planted(500, seed=12)
    engine = Engine(LogisticRegressionConfig()).fit(frame, y)
    as_text = frame.head(4).astype({"age": str, "visits": str})
    np.testing.assert_array_equal(engine.score(as_text), engine.score(frame.head(4)))


def test_single_class_outcomes_fit_towards_that_class() -> None:
    frame, _ = _planted(300, seed=13)
    engine = Engine(LogisticRegressionConfig()).fit(frame, np.zeros(300))
    assert (engine.score(frame) < 0.05).all()


def test_no_features_learns_the_base_rate() -> None:
    frame = pd.DataFrame({"offerId": ["o"] * 400})
    y = np.r_[np.ones(100), np.zeros(300)]
    engine = Engine(LogisticRegressionConfig(regularization="none")).fit(frame, y)
    np.testing.assert_allclose(engine.score(frame.head(2)), 0.25, atol=1e-3)


def test_bad_input_is_refused() -> None:
    frame, y = _planted(50, seed=14)
    with pytest.raises(ValueError, match="at least one"):
        Engine(LogisticRegressionConfig()).fit(frame.iloc[:0], np.array([]))
    with pytest.raises(ValueError):
        Engine(LogisticRegressionConfig()).fit(frame, y[:-1])


@pytest.mark.parametrize(
    "config",
    [
        {"learningRate": 0},
        {"maxIterations": 0},
        {"regularization": "elasticnet"},
        {"regularizationStrength": -1},
        {"batchSize": 0},
        {"tolerance": -1e-3},
    ],
)
def test_invalid_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        LogisticRegressionConfig.model_validate(config)
    assert next(iter(config)) in str(caught.value)
