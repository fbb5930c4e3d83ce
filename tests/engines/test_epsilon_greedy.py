"""Epsilon-greedy: decaying epsilon, optimistic unpulled arms, per-request exploration."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlworker.engines import CUSTOMER_ID, OFFER_ID, IncrementalEngine, build_engine
from mlworker.engines.epsilon_greedy import Engine, EpsilonGreedyConfig


def _engine(random_state: int = 0, **config: float) -> Engine:
    return Engine(EpsilonGreedyConfig.model_validate(config), random_state=random_state)


def _pulls(**arms: tuple[int, int]) -> tuple[pd.DataFrame, list[int]]:
    """Interactions giving each arm ``(pulls, successes)``."""
    offers: list[str] = []
    outcomes: list[int] = []
    for offer, (pulls, successes) in arms.items():
        offers += [offer] * pulls
        outcomes += [1] * successes + [0] * (pulls - successes)
    return pd.DataFrame({OFFER_ID: offers}), outcomes


def _requests(customers: int, offers: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            CUSTOMER_ID: np.repeat([f"c{i}" for i in range(customers)], len(offers)),
            OFFER_ID: offers * customers,
        }
    )


GREEDY = {"epsilon": 0.0, "minEpsilon": 0.0}


def test_config_defaults_and_validation() -> None:
    config = EpsilonGreedyConfig()
    assert (config.epsilon, config.decay_rate, config.min_epsilon) == (0.1, 0.01, 0.01)
    for bad in ({"epsilon": 1.5}, {"epsilon": -0.1}, {"decayRate": -1}, {"minEpsilon": 2}):
        with pytest.raises(ValidationError):
            EpsilonGreedyConfig.model_validate(bad)


def test_is_an_incremental_engine() -> None:
    assert isinstance(_engine(), IncrementalEngine)


@pytest.mark.parametrize(
    ("total_pulls", "expected"),
    [(0, 0.1), (100, 0.05), (300, 0.025), (900, 0.01), (5000, 0.01)],
)
def test_epsilon_decays_to_its_floor(total_pulls: int, expected: float) -> None:
    # 0.1 / (1 + 0.01 * 900) = 0.01 exactly; beyond it the floor holds.
    engine = _engine().fit(*_pulls(a=(total_pulls, 0)))
    assert engine.epsilon_t == pytest.approx(expected)
    assert engine.is_trained == (total_pulls > 0)


def test_exploitation_scores_success_rates_and_optimistic_unpulled_arms() -> None:
    engine = _engine(**GREEDY).fit(*_pulls(a=(4, 3), b=(5, 1), z=(2, 0)))
    frame = pd.DataFrame({OFFER_ID: ["a", "b", "z", "never", None]})
    np.testing.assert_array_equal(
        engine.score(frame, rng=np.random.default_rng(0)), [0.75, 0.2, 0.0, 1.0, 1.0]
    )
    np.testing.assert_array_equal(
        engine.score(pd.DataFrame({"age": [3]}), rng=np.random.default_rng(0)), [1.0]
    )


def test_exploitation_is_deterministic_and_draws_once_per_request() -> None:
    engine = _engine(**GREEDY).fit(*_pulls(a=(10, 7), b=(10, 2)))
    frame = _requests(3, ["a", "b", "c"])
    outputs = [engine.score(frame, rng=np.random.default_rng(seed)) for seed in range(5)]
    for scores in outputs:
        np.testing.assert_array_equal(scores, [0.7, 0.2, 1.0] * 3)
    # Exactly one uniform per customer request is consumed, nothing else.
    used, reference = np.random.default_rng(42), np.random.default_rng(42)
    engine.score(frame, rng=used)
    reference.random(3)
    assert used.random() == reference.random()


def test_every_request_explored_when_epsilon_is_one() -> None:
    engine = _engine(epsilon=1.0, decayRate=0.0).fit(*_pulls(a=(10, 7), b=(10, 2)))
    frame = _requests(4, ["a", "b"])
    scores = engine.score(frame, rng=np.random.default_rng(7))
    # Uniform scores: one draw per request decides, then one draw per candidate.
    reference = np.random.default_rng(7)
    reference.random(4)
    np.testing.assert_array_equal(scores, reference.random(8))
    assert all(e.details[0]["explored"] for e in engine.explain(frame))


def test_exploration_is_decided_per_customer_at_rate_epsilon() -> None:
    engine = _engine(epsilon=0.3, decayRate=0.0).fit(*_pulls(a=(10, 6), b=(10, 3), c=(10, 1)))
    customers = 4000
    frame = _requests(customers, ["a", "b", "c"])
    explanations = engine.explain(frame, rng=np.random.default_rng(11))
    explored = np.array([e.details[0]["explored"] for e in explanations]).reshape(customers, 3)
    # A request is explored or exploited as a whole.
    assert (explored.all(axis=1) | ~explored.any(axis=1)).all()
    rate = explored[:, 0].mean()
    assert rate == pytest.approx(0.3, abs=4 * np.sqrt(0.3 * 0.7 / customers))
    scores = np.array([e.score for e in explanations]).reshape(customers, 3)
    assert (scores[~explored[:, 0]] == [0.6, 0.3, 0.1]).all()
    explored_scores = scores[explored[:, 0]]
    # Explored requests rank the arms uniformly at random: the best arm wins about a third.
    assert (explored_scores.argmax(axis=1) == 0).mean() == pytest.approx(1 / 3, abs=0.06)


def test_rows_without_customer_form_one_request() -> None:
    engine = _engine(epsilon=0.5, decayRate=0.0).fit(*_pulls(a=(4, 1), b=(4, 3)))
    for frame in (
        pd.DataFrame({OFFER_ID: ["a", "b"] * 3}),
        pd.DataFrame({CUSTOMER_ID: [None, np.nan] * 3, OFFER_ID: ["a", "b"] * 3}),
    ):
        seen = set()
        for seed in range(40):
            explanations = engine.explain(frame, rng=np.random.default_rng(seed))
            flags = {explanation.details[0]["explored"] for explanation in explanations}
            assert len(flags) == 1
            seen |= flags
        assert seen == {True, False}


def test_same_seed_same_scores_and_default_rng_from_random_state() -> None:
    engine = _engine(epsilon=0.5, decayRate=0.0).fit(*_pulls(a=(4, 1), b=(4, 3)))
    frame = _requests(50, ["a", "b", "c"])
    first = engine.score(frame, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(first, engine.score(frame, rng=np.random.default_rng(3)))
    assert not np.array_equal(first, engine.score(frame, rng=np.random.default_rng(4)))
    np.testing.assert_array_equal(engine.score(frame), engine.score(frame))
    other = _engine(random_state=1, epsilon=0.5, decayRate=0.0).load_state(engine.state())
    assert not np.array_equal(engine.score(frame), other.score(frame))


def test_explanation_details() -> None:
    engine = _engine().fit(*_pulls(a=(40, 10), b=(60, 30)))
    frame = pd.DataFrame({CUSTOMER_ID: ["c"] * 3, OFFER_ID: ["a", "b", "new"]})
    scores = engine.score(frame, rng=np.random.default_rng(2))
    explanations = engine.explain(frame, rng=np.random.default_rng(2))
    assert [e.score for e in explanations] == scores.tolist()
    details = [e.details[0] for e in explanations]
    assert details[0] == {
        "offerId": "a",
        "score": scores[0],
        "successRate": 0.25,
        "pulls": 40,
        "explored": False,
        "epsilon": pytest.approx(0.1 / 2),
    }
    assert details[2]["successRate"] is None
    assert details[2]["pulls"] == 0
    assert details[2]["score"] == 1.0
    assert all(e.engine == "epsilon_greedy" and e.confidence is None for e in explanations)
    json.dumps([e.to_dict() for e in explanations])


def test_fit_resets_update_and_learn_one_add() -> None:
    engine = _engine().fit(*_pulls(a=(3, 1)))
    engine.fit(*_pulls(b=(2, 2)))
    assert engine.state() == {"arms": {"b": {"successes": 2, "failures": 0}}}
    engine.update(*_pulls(b=(2, 0), c=(1, 1)))
    engine.learn_one({OFFER_ID: "c", "tier": "gold"}, 0.0)
    engine.learn_one({OFFER_ID: 5}, 1)
    assert engine.state()["arms"] == {
        "b": {"successes": 2, "failures": 2},
        "c": {"successes": 1, "failures": 1},
        "5": {"successes": 1, "failures": 0},
    }
    assert engine.total_pulls == 7


def test_bad_learning_input_is_refused() -> None:
    engine = _engine()
    with pytest.raises(ValueError, match=OFFER_ID):
        engine.learn_one({}, 1)
    with pytest.raises(ValueError, match="0 or 1"):
        engine.learn_one({OFFER_ID: "a"}, 3)
    with pytest.raises(ValueError, match="2 interaction rows have no offerId"):
        engine.update(pd.DataFrame({OFFER_ID: [None, "a", np.nan]}), [1, 1, 0])
    with pytest.raises(ValueError, match="outcomes"):
        engine.fit(pd.DataFrame({OFFER_ID: ["a", "b"]}), [1])
    assert not engine.is_trained


def test_state_round_trips_exactly() -> None:
    engine = _engine(epsilon=0.4, decayRate=0.0).fit(*_pulls(a=(7, 2), b=(9, 8)))
    state = json.loads(json.dumps(engine.state()))
    restored = build_engine("epsilon_greedy", {"epsilon": 0.4, "decayRate": 0.0}, state=state)
    frame = _requests(30, ["a", "b", "c"])
    np.testing.assert_array_equal(
        restored.score(frame, rng=np.random.default_rng(1)),
        engine.score(frame, rng=np.random.default_rng(1)),
    )
    assert restored.state() == engine.state()


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"arm": {}}, "'arms' mapping"),
        ({"arms": {"a": {"successes": 1.5, "failures": 0}}}, r"arms\.a\.successes"),
        ({"arms": {"a": {"successes": 2}}}, r"arms\.a\.failures"),
        ({"arms": {"a": {"successes": 2, "failures": -3}}}, "non-negative integer"),
    ],
)
def test_malformed_state_is_refused(state: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _engine().load_state(state)


def test_untrained_engine_is_optimistic() -> None:
    engine = _engine(**GREEDY)
    assert engine.state() == {"arms": {}}
    np.testing.assert_array_equal(engine.score(_requests(2, ["a", "b"])), [1.0] * 4)
    assert engine.score(_requests(0, ["a"])).shape == (0,)
    assert engine.explain(_requests(0, ["a"])) == []
