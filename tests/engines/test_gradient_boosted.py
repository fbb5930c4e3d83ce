"""The gradient_boosted engine: config per the seed, LightGBM parity end to end, explanations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

import mlworker.engines.gradient_boosted as gradient_boosted
from mlworker.engines import CUSTOMER_ID, OFFER_ID, build_engine
from mlworker.engines.gradient_boosted import (
    Engine,
    GradientBoostedConfig,
    lightgbm_params,
    train_booster,
)
from mlworker.engines.trees import FlatEnsemble
from mlworker.errors import InvalidInput, NoUsableColumns


def _interactions(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Planted propensity: tier x visits interaction, discount, missing ages, noise columns."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["gold", "silver", "bronze", "none"], rows).astype(object)
    tier[rng.random(rows) < 0.05] = None
    visits = rng.poisson(3, rows).astype(float)
    age = rng.normal(40, 12, rows)
    age[rng.random(rows) < 0.1] = np.nan
    discount = rng.choice([0, 10, 20, 50], rows)
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: [f"c{i}" for i in range(rows)],
            OFFER_ID: rng.choice(["o1", "o2"], rows),
            "tier": tier,
            "visits": visits,
            "age": age,
            "discount": discount,
            "noise": rng.normal(size=rows),
        }
    )
    margin = _planted_margin(frame)
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(np.float64)
    return frame, outcomes


def _planted_margin(frame: pd.DataFrame) -> np.ndarray:
    gold_regular = (frame["tier"] == "gold") & (frame["visits"] >= 3)
    age = np.nan_to_num(frame["age"].to_numpy() - 40)
    return np.asarray(1.2 * gold_regular + 0.03 * frame["discount"] - 0.02 * age - 1.0)


@pytest.fixture(scope="module")
def trained() -> tuple[Engine, pd.DataFrame, np.ndarray]:
    frame, outcomes = _interactions(6000, seed=1)
    return Engine(GradientBoostedConfig(), random_state=4).fit(frame, outcomes), frame, outcomes


def test_config_defaults_are_the_seeds() -> None:
    dumped = GradientBoostedConfig().model_dump(by_alias=True)
    assert dumped == {
        "numLeaves": 31,
        "maxDepth": -1,
        "learningRate": 0.05,
        "nEstimators": 100,
        "minChildSamples": 20,
        "regAlpha": 0,
        "regLambda": 0,
        "subsample": 1.0,
        "colsampleBytree": 1.0,
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"numLeaves": 1},
        {"maxDepth": 0},
        {"maxDepth": -2},
        {"learningRate": 0},
        {"learningRate": float("nan")},
        {"nEstimators": 0},
        {"minChildSamples": -1},
        {"regAlpha": -0.1},
        {"regLambda": float("inf")},
        {"subsample": 0},
        {"subsample": 1.5},
        {"colsampleBytree": 0},
    ],
)
def test_config_ranges_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError) as caught:
        GradientBoostedConfig.model_validate(bad)
    assert next(iter(bad)) in str(caught.value)


def test_lightgbm_parameters_map_the_seed_names() -> None:
    config = GradientBoostedConfig(
        numLeaves=15, maxDepth=6, learningRate=0.1, minChildSamples=7, regAlpha=0.5,
        regLambda=2.0, subsample=0.7, colsampleBytree=0.8,
    )  # fmt: skip
    params = lightgbm_params(config, random_state=9)
    assert params["num_leaves"] == 15 and params["max_depth"] == 6
    assert params["learning_rate"] == 0.1 and params["min_data_in_leaf"] == 7
    assert params["lambda_l1"] == 0.5 and params["lambda_l2"] == 2.0
    assert params["bagging_fraction"] == 0.7 and params["bagging_freq"] == 1
    assert params["feature_fraction"] == 0.8
    assert params["seed"] == 9 and params["deterministic"] is True
    assert lightgbm_params(GradientBoostedConfig())["bagging_freq"] == 0


def test_untrained_engine_scores_one_half_and_explains_nothing() -> None:
    engine = Engine(GradientBoostedConfig())
    candidates = pd.DataFrame({"tier": ["gold", None]})
    assert not engine.is_trained and engine.state() == {}
    np.testing.assert_array_equal(engine.score(candidates), [0.5, 0.5])
    np.testing.assert_array_equal(engine.score_matrix(np.zeros((3, 2))), [0.5, 0.5, 0.5])
    assert engine.score_row(np.zeros(2)) == 0.5
    explanations = engine.explain(candidates)
    assert [(e.score, e.details) for e in explanations] == [(0.5, []), (0.5, [])]


def test_scores_equal_lightgbm_predict_on_held_out_candidates(
    trained: tuple[Engine, pd.DataFrame, np.ndarray],
) -> None:
    engine, frame, outcomes = trained
    held_out, _ = _interactions(3000, seed=2)
    held_out.loc[::7, "tier"] = "platinum"  # unseen category
    held_out.loc[::11, "visits"] = 0.0
    held_out = held_out.drop(columns=["noise"]).assign(extra="ignored")  # missing + unknown
    encoder = engine.ensemble_.encoder  # type: ignore[union-attr]
    booster = train_booster(
        encoder.transform(frame), outcomes, encoder.categorical_indices, engine.config,
        random_state=4,
    )  # fmt: skip
    matrix = engine.encode(held_out)
    assert np.isnan(matrix[:, engine.feature_names.index("noise")]).all()
    expected = booster.predict(matrix)
    assert np.abs(engine.score(held_out) - expected).max() <= 1e-9


def test_learns_the_planted_signal(trained: tuple[Engine, pd.DataFrame, np.ndarray]) -> None:
    engine, _, _ = trained
    held_out, outcomes = _interactions(4000, seed=3)
    oracle = roc_auc_score(outcomes, _planted_margin(held_out))
    assert roc_auc_score(outcomes, engine.score(held_out)) > oracle - 0.03
    gold = held_out.assign(tier="gold", visits=5.0)
    plain = held_out.assign(tier="bronze", visits=5.0)
    assert (engine.score(gold) - engine.score(plain)).mean() > 0.15


def test_state_round_trips_through_json_to_identical_scores(
    trained: tuple[Engine, pd.DataFrame, np.ndarray],
) -> None:
    engine, frame, _ = trained
    state = json.loads(json.dumps(engine.state(), allow_nan=False))
    assert state["feature_names"] == ["tier", "visits", "age", "discount", "noise"]
    assert state["categorical"] == {"tier": {"bronze": 0, "gold": 1, "none": 2, "silver": 3}}
    restored = build_engine("gradient_boosted", {}, state=state)
    np.testing.assert_array_equal(restored.score(frame), engine.score(frame))
    assert restored.state() == state


def test_single_row_and_matrix_paths_equal_score(
    trained: tuple[Engine, pd.DataFrame, np.ndarray],
) -> None:
    engine, frame, _ = trained
    candidates = frame.iloc[:50]
    scores = engine.score(candidates)
    matrix = engine.encode(candidates)
    np.testing.assert_array_equal(engine.score_matrix(matrix, num_threads=1), scores)
    np.testing.assert_array_equal([engine.score_row(row) for row in matrix], scores)
    assert engine.score_row(matrix[0].astype(np.float32).tolist()) == pytest.approx(
        scores[0], abs=1e-6
    )
    with pytest.raises(ValueError, match="expected 5 values"):
        engine.score_row(np.zeros(4))


def test_explanations_account_for_the_margin(
    trained: tuple[Engine, pd.DataFrame, np.ndarray],
) -> None:
    engine, frame, _ = trained
    candidates = frame.iloc[:20]
    scores = engine.score(candidates)
    assert engine.ensemble_ is not None
    bias = FlatEnsemble.from_ensemble(engine.ensemble_).bias()
    margins = np.log(scores / (1 - scores))
    for explanation, score, margin in zip(engine.explain(candidates), scores, margins, strict=True):
        assert explanation.engine == "gradient_boosted" and explanation.score == score
        assert explanation.confidence is None
        total = sum(detail["contribution"] for detail in explanation.details)
        assert bias + total == pytest.approx(margin, abs=1e-9)
        magnitudes = [abs(detail["contribution"]) for detail in explanation.details]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert {detail["field"] for detail in explanation.details} <= set(engine.feature_names)


def test_training_is_seeded_and_independent_of_thread_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame, outcomes = _interactions(3000, seed=5)
    config = GradientBoostedConfig(nEstimators=30, subsample=0.7, colsampleBytree=0.6)
    first = Engine(config, random_state=1).fit(frame, outcomes).state()
    monkeypatch.setattr(gradient_boosted, "FIT_THREADS", 1)
    assert Engine(config, random_state=1).fit(frame, outcomes).state() == first
    assert Engine(config, random_state=2).fit(frame, outcomes).state() != first


def test_fit_refuses_unusable_input() -> None:
    frame, outcomes = _interactions(100, seed=6)
    engine = Engine(GradientBoostedConfig())
    with pytest.raises(InvalidInput, match="at least one"):
        engine.fit(frame.iloc[:0], outcomes[:0])
    with pytest.raises(NoUsableColumns):
        engine.fit(frame[[CUSTOMER_ID, OFFER_ID]], outcomes)
    with pytest.raises(ValueError, match="0 or 1"):
        engine.fit(frame, np.full(100, 0.5))
    assert not engine.is_trained


def test_one_class_outcomes_give_extreme_but_valid_scores() -> None:
    frame, _ = _interactions(200, seed=7)
    engine = Engine(GradientBoostedConfig(nEstimators=5)).fit(frame, np.zeros(200))
    scores = engine.score(frame)
    assert ((scores >= 0) & (scores < 1e-6)).all()


def test_load_state_refuses_malformed_json_and_empty_resets(
    trained: tuple[Engine, pd.DataFrame, np.ndarray],
) -> None:
    engine, _, _ = trained
    state = engine.state()
    state["trees"][0]["tree_structure"]["split_feature"] = 99
    with pytest.raises(InvalidInput, match="split_feature") as caught:
        Engine(GradientBoostedConfig()).load_state(state)
    assert caught.value.field == "modelState"
    restored = Engine(GradientBoostedConfig()).load_state(engine.state())
    assert restored.is_trained
    assert not restored.load_state({}).is_trained
