"""One contract suite over all nine engines (STYLE.md habit 10).

Every engine, whatever it learns, must: score in ``[0, 1]`` with shape ``(n,)``; score before it
is trained; be deterministic for a seed; survive a JSON round-trip of its state through the
artifact store; take unseen categories, unknown and missing columns and an empty frame; explain
every candidate with the score it gave; and refuse unknown config fields. Config defaults are
checked against the seed's tables.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlworker.engines import (
    CUSTOMER_ID,
    ENGINES,
    OFFER_ID,
    Explanation,
    IncrementalEngine,
    ScoringEngine,
    build_engine,
    config_of,
)
from mlworker.store.artifacts import ArtifactStore
from tests.engines.scoring_server import LOOPBACK_EGRESS, ScoringServer

#: Engines the seed trains from data: untrained they must say so.
DATA_DRIVEN = {
    "bayesian",
    "logistic_regression",
    "gradient_boosted",
    "thompson_bandit",
    "epsilon_greedy",
    "neural_cf",
    "online_learner",
}
#: Engines the seed's "Auto-Learning Modes" table updates per outcome or incrementally.
INCREMENTAL = {"bayesian", "thompson_bandit", "epsilon_greedy", "online_learner"}

#: Config defaults exactly as the seed's tables give them.
SEED_DEFAULTS: dict[str, dict[str, Any]] = {
    "scorecard": {
        "baseScore": 50,
        "rules": [],
        "normalization": "sigmoid",
        "maxScore": 100,
        "minScore": 0,
    },
    "bayesian": {
        "laplaceSmoothingAlpha": 1,
        "aucThreshold": 0.5,
        "maxPredictors": 20,
        "binCount": 10,
        "priorPositiveRate": 0.5,
    },
    "logistic_regression": {
        "learningRate": 0.01,
        "maxIterations": 100,
        "regularization": "l2",
        "regularizationStrength": 1.0,
    },
    "gradient_boosted": {
        "numLeaves": 31,
        "maxDepth": -1,
        "learningRate": 0.05,
        "nEstimators": 100,
        "minChildSamples": 20,
        "regAlpha": 0,
        "regLambda": 0,
        "subsample": 1.0,
        "colsampleBytree": 1.0,
    },
    "thompson_bandit": {"priorAlpha": 1, "priorBeta": 1, "minSamples": 10},
    "epsilon_greedy": {"epsilon": 0.1, "decayRate": 0.01, "minEpsilon": 0.01},
    "neural_cf": {"embeddingDim": 8, "hiddenDim": 16},
    "online_learner": {"learningRate": 0.01, "decayRate": 0.001},
    "external_endpoint": {"timeoutMs": 200, "scoringMode": "batch"},
}


@pytest.fixture(scope="module")
def server() -> Iterator[ScoringServer]:
    with ScoringServer() as running:
        yield running


def _config(kind: str, server: ScoringServer) -> dict[str, Any]:
    """A small, fast config per engine (defaults where they are already fast)."""
    configs: dict[str, dict[str, Any]] = {
        "scorecard": {
            "rules": [
                {"field": "tier", "operator": "eq", "value": "gold", "points": 20},
                {"field": "age", "operator": "gte", "value": 40, "points": 10},
            ]
        },
        "gradient_boosted": {"nEstimators": 15, "numLeaves": 7, "minChildSamples": 5},
        "neural_cf": {"epochs": 5},
        "external_endpoint": {"endpointUrl": server.url, "timeoutMs": 2000},
    }
    return configs.get(kind, {})


def _interactions(rows: int = 600, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows)
    age[rng.random(rows) < 0.05] = np.nan
    tier = rng.choice(["gold", "silver", "bronze"], rows).astype(object)
    tier[rng.random(rows) < 0.05] = None
    offer = rng.choice([f"o{i}" for i in range(5)], rows)
    discount = np.asarray([{"o0": 10, "o1": 20, "o2": 30, "o3": 40, "o4": 50}[o] for o in offer])
    margin = (
        0.04 * np.nan_to_num(age - 40)
        + np.where(tier == "gold", 1.2, 0.0)
        + 0.02 * (discount - 30)
        - 0.5
    )
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(np.float64)
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: [f"c{i}" for i in rng.integers(0, 80, rows)],
            OFFER_ID: offer,
            "age": age,
            "income": rng.lognormal(10.5, 0.4, rows),
            "tier": tier,
            "discount": discount,
        }
    )
    return frame, outcomes


def _candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            CUSTOMER_ID: ["c1", "c1", "c2", "c-new"],
            OFFER_ID: ["o0", "o3", "o4", "o-new"],
            "age": [25.0, 55.0, np.nan, 40.0],
            "income": [30_000.0, 90_000.0, 50_000.0, 40_000.0],
            "tier": ["gold", "bronze", None, "silver"],
            "discount": [10, 40, 50, 25],
        }
    )


def _engine(kind: str, server: ScoringServer, random_state: int = 0) -> ScoringEngine:
    return build_engine(
        kind, _config(kind, server), random_state=random_state, egress=LOOPBACK_EGRESS
    )


def _fitted(kind: str, server: ScoringServer, random_state: int = 0) -> ScoringEngine:
    frame, outcomes = _interactions()
    return _engine(kind, server, random_state).fit(frame, outcomes)


def _scores(engine: ScoringEngine, frame: pd.DataFrame, seed: int = 11) -> np.ndarray:
    return engine.score(frame, rng=np.random.default_rng(seed))


def _assert_valid(scores: np.ndarray, length: int) -> None:
    assert isinstance(scores, np.ndarray)
    assert scores.dtype == np.float64
    assert scores.shape == (length,)
    assert np.isfinite(scores).all()
    assert ((scores >= 0.0) & (scores <= 1.0)).all()


KINDS = sorted(ENGINES)


def test_every_seed_engine_is_registered() -> None:
    assert set(ENGINES) == set(SEED_DEFAULTS)
    assert len(ENGINES) == 9


@pytest.mark.parametrize("kind", KINDS)
def test_config_defaults_match_the_seed(kind: str, server: ScoringServer) -> None:
    extra = {"endpointUrl": server.url} if kind == "external_endpoint" else {}
    dumped = config_of(kind, extra, egress=LOOPBACK_EGRESS).model_dump(by_alias=True)
    for field, default in SEED_DEFAULTS[kind].items():
        assert dumped[field] == default, field


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_config_field_is_refused(kind: str, server: ScoringServer) -> None:
    with pytest.raises(ValidationError) as caught:
        config_of(kind, {**_config(kind, server), "noSuchSetting": 1}, egress=LOOPBACK_EGRESS)
    assert "noSuchSetting" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_engine_declares_its_kind(kind: str, server: ScoringServer) -> None:
    engine = _engine(kind, server)
    assert type(engine).kind == kind
    assert isinstance(engine, ScoringEngine)
    assert isinstance(engine, IncrementalEngine) == (kind in INCREMENTAL)


@pytest.mark.parametrize("kind", KINDS)
def test_untrained_engine_scores(kind: str, server: ScoringServer) -> None:
    engine = _engine(kind, server)
    assert engine.is_trained == (kind not in DATA_DRIVEN)
    scores = _scores(engine, _candidates())
    _assert_valid(scores, 4)
    if kind in {"bayesian", "logistic_regression", "gradient_boosted", "online_learner"}:
        np.testing.assert_allclose(scores, 0.5)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_returns_the_engine_and_scores_in_range(kind: str, server: ScoringServer) -> None:
    frame, outcomes = _interactions()
    engine = _engine(kind, server)
    assert engine.fit(frame, outcomes) is engine
    assert engine.is_trained
    _assert_valid(_scores(engine, frame), len(frame))
    _assert_valid(_scores(engine, _candidates()), 4)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_state_and_scores(kind: str, server: ScoringServer) -> None:
    first, second = _fitted(kind, server, 3), _fitted(kind, server, 3)
    assert json.dumps(first.state(), sort_keys=True) == json.dumps(second.state(), sort_keys=True)
    candidates = _candidates()
    np.testing.assert_array_equal(_scores(first, candidates), _scores(second, candidates))
    np.testing.assert_array_equal(_scores(first, candidates), _scores(first, candidates))


@pytest.mark.parametrize("kind", KINDS)
def test_state_round_trips_through_the_artifact_store(
    kind: str, server: ScoringServer, tmp_path: Any
) -> None:
    engine = _fitted(kind, server)
    store = ArtifactStore(str(tmp_path))
    stored = store.put_bytes("state.json", json.dumps(engine.state()).encode())
    with store.open_verified(stored.uri, stored.sha256) as handle:
        state = json.load(io.TextIOWrapper(handle, encoding="utf-8"))
    restored = build_engine(kind, _config(kind, server), state=state, egress=LOOPBACK_EGRESS)
    assert restored.is_trained
    candidates = _candidates()
    np.testing.assert_allclose(
        _scores(restored, candidates), _scores(engine, candidates), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("kind", KINDS)
def test_unseen_categories_unknown_and_missing_columns(kind: str, server: ScoringServer) -> None:
    engine = _fitted(kind, server)
    odd = _candidates().drop(columns=["income"])
    odd["tier"] = ["platinum", None, "diamond", "gold"]
    odd["neverSeen"] = ["x", "y", "z", "w"]
    _assert_valid(_scores(engine, odd), 4)
    ids_only = odd[[CUSTOMER_ID, OFFER_ID]]
    _assert_valid(_scores(engine, ids_only), 4)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_frame(kind: str, server: ScoringServer) -> None:
    engine = _fitted(kind, server)
    empty = _candidates().iloc[:0]
    _assert_valid(_scores(engine, empty), 0)
    assert engine.explain(empty, rng=np.random.default_rng(1)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_explanations_match_scores(kind: str, server: ScoringServer) -> None:
    engine = _fitted(kind, server)
    candidates = _candidates()
    scores = _scores(engine, candidates, seed=5)
    explanations = engine.explain(candidates, rng=np.random.default_rng(5))
    assert len(explanations) == len(candidates)
    for explanation, score in zip(explanations, scores, strict=True):
        assert isinstance(explanation, Explanation)
        assert explanation.engine == kind
        assert explanation.score == pytest.approx(score, abs=1e-12)
        assert isinstance(explanation.details, list)
        assert all(isinstance(detail, dict) for detail in explanation.details)
        if explanation.confidence is not None:
            assert 0.0 <= explanation.confidence <= 1.0
        json.dumps(explanation.to_dict())


@pytest.mark.parametrize("kind", sorted(INCREMENTAL))
def test_incremental_engines_learn_from_single_outcomes(kind: str, server: ScoringServer) -> None:
    engine = _fitted(kind, server)
    assert isinstance(engine, IncrementalEngine)
    before = json.dumps(engine.state(), sort_keys=True)
    candidate = _candidates().iloc[0].to_dict()
    engine.learn_one(candidate, 1.0)
    assert json.dumps(engine.state(), sort_keys=True) != before
    frame, outcomes = _interactions(rows=30, seed=99)
    engine.update(frame, outcomes)
    _assert_valid(_scores(engine, _candidates()), 4)


@pytest.mark.parametrize("kind", sorted(DATA_DRIVEN))
def test_bad_outcomes_are_refused(kind: str, server: ScoringServer) -> None:
    frame, outcomes = _interactions(rows=60)
    with pytest.raises(ValueError):
        _engine(kind, server).fit(frame, outcomes[:-1])
    with pytest.raises(ValueError):
        _engine(kind, server).fit(frame, np.full(len(frame), 2.0))
