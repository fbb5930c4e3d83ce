"""Thompson bandit: Beta posteriors per offer, the minSamples exploration phase, seeded draws."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats

from mlworker.engines import CUSTOMER_ID, OFFER_ID, IncrementalEngine, build_engine
from mlworker.engines.thompson_bandit import Engine, ThompsonBanditConfig


def _engine(random_state: int = 0, **config: float) -> Engine:
    return Engine(ThompsonBanditConfig.model_validate(config), random_state=random_state)


def _history(successes: dict[str, int], failures: dict[str, int]) -> tuple[pd.DataFrame, list[int]]:
    offers: list[str] = []
    outcomes: list[int] = []
    for offer in sorted(set(successes) | set(failures)):
        offers += [offer] * (successes.get(offer, 0) + failures.get(offer, 0))
        outcomes += [1] * successes.get(offer, 0) + [0] * failures.get(offer, 0)
    frame = pd.DataFrame({CUSTOMER_ID: [f"c{i}" for i in range(len(offers))], OFFER_ID: offers})
    return frame, outcomes


def _repeat(offer: str | None, rows: int) -> pd.DataFrame:
    return pd.DataFrame({CUSTOMER_ID: ["c"] * rows, OFFER_ID: [offer] * rows})


def test_config_defaults_and_validation() -> None:
    config = ThompsonBanditConfig()
    assert (config.prior_alpha, config.prior_beta, config.min_samples) == (1, 1, 10)
    assert ThompsonBanditConfig.model_validate({"priorAlpha": 2.5}).prior_alpha == 2.5
    for bad in ({"priorAlpha": 0}, {"priorBeta": -1}, {"minSamples": -1}, {"minSamples": 2.5}):
        with pytest.raises(ValidationError):
            ThompsonBanditConfig.model_validate(bad)


def test_is_an_incremental_engine() -> None:
    assert isinstance(_engine(), IncrementalEngine)
    assert build_engine("thompson_bandit").kind == "thompson_bandit"


def test_fit_counts_outcomes_per_offer_and_starts_from_scratch() -> None:
    engine = _engine()
    assert not engine.is_trained
    engine.fit(*_history({"a": 3, "b": 1}, {"a": 2, "c": 4}))
    assert engine.is_trained
    assert engine.state() == {
        "arms": {
            "a": {"successes": 3, "failures": 2},
            "b": {"successes": 1, "failures": 0},
            "c": {"successes": 0, "failures": 4},
        }
    }
    engine.fit(*_history({"z": 1}, {}))
    assert engine.state() == {"arms": {"z": {"successes": 1, "failures": 0}}}


def test_update_and_learn_one_add_to_the_arms() -> None:
    engine = _engine().fit(*_history({"a": 1}, {"a": 1}))
    engine.update(*_history({"a": 2, "new": 1}, {"new": 2}))
    engine.learn_one({OFFER_ID: "a", "age": 40}, 0)
    engine.learn_one({OFFER_ID: 7}, True)
    assert engine.state()["arms"] == {
        "a": {"successes": 3, "failures": 2},
        "new": {"successes": 1, "failures": 2},
        "7": {"successes": 1, "failures": 0},
    }
    fresh = _engine()
    fresh.learn_one({OFFER_ID: "x"}, 1.0)
    assert fresh.is_trained


def test_bad_learning_input_is_refused() -> None:
    engine = _engine()
    with pytest.raises(ValueError, match=OFFER_ID):
        engine.learn_one({CUSTOMER_ID: "c"}, 1)
    with pytest.raises(ValueError, match=OFFER_ID):
        engine.learn_one({OFFER_ID: float("nan")}, 1)
    with pytest.raises(ValueError, match="0 or 1"):
        engine.learn_one({OFFER_ID: "a"}, 0.5)
    frame = pd.DataFrame({OFFER_ID: ["a", None, "b"]})
    with pytest.raises(ValueError, match="1 interaction rows have no offerId"):
        engine.fit(frame, [1, 0, 1])
    with pytest.raises(ValueError, match="no offerId"):
        engine.fit(pd.DataFrame({"age": [1, 2]}), [1, 0])
    assert not engine.is_trained


def test_unhashable_offer_ids_are_refused() -> None:
    frame = pd.DataFrame({OFFER_ID: [["a"], ["b"]]})
    with pytest.raises(ValueError, match="plain ids"):
        _engine().score(frame)
    with pytest.raises(ValueError, match="plain ids"):
        _engine().fit(frame, [1, 0])


def test_draws_follow_the_beta_posterior() -> None:
    # minSamples=0: every observation counts, so the arm samples Beta(1 + 30, 1 + 10).
    engine = _engine(min_samples=0).fit(*_history({"a": 30}, {"a": 10}))
    draws = engine.score(_repeat("a", 20_000), rng=np.random.default_rng(1))
    assert stats.kstest(draws, stats.beta(31, 11).cdf).pvalue > 0.01
    # The same draws are clearly not from the likelihood alone, Beta(30, 10).
    assert stats.kstest(draws, stats.beta(30, 10).cdf).pvalue < 1e-6
    assert draws.mean() == pytest.approx(31 / 42, abs=0.002)


def test_priors_shape_unobserved_arms() -> None:
    engine = _engine(prior_alpha=2, prior_beta=5)
    draws = engine.score(_repeat("unknown", 20_000), rng=np.random.default_rng(2))
    assert stats.kstest(draws, stats.beta(2, 5).cdf).pvalue > 0.01


def test_arms_below_min_samples_sample_the_prior() -> None:
    # Nine straight successes: below minSamples=10 the arm still draws from Beta(1, 1).
    engine = _engine().fit(*_history({"hot": 9}, {}))
    frame = _repeat("hot", 20_000)
    exploring = engine.score(frame, rng=np.random.default_rng(3))
    assert stats.kstest(exploring, stats.uniform.cdf).pvalue > 0.01
    assert engine.explain(frame.iloc[:1])[0].details[0]["exploring"] is True

    # The tenth observation ends exploration; the posterior counts all ten outcomes.
    engine.learn_one({OFFER_ID: "hot"}, 1)
    exploiting = engine.score(frame, rng=np.random.default_rng(3))
    assert stats.kstest(exploiting, stats.beta(11, 1).cdf).pvalue > 0.01
    assert engine.explain(frame.iloc[:1])[0].details[0]["exploring"] is False


def test_min_samples_zero_never_explores() -> None:
    engine = _engine(min_samples=0).fit(*_history({"a": 1}, {}))
    (detail,) = engine.explain(_repeat("a", 1))[0].details
    assert detail["exploring"] is False


def test_same_seed_same_draws_and_one_draw_per_candidate() -> None:
    engine = _engine().fit(*_history({"a": 40, "b": 5}, {"a": 10, "b": 45}))
    frame = pd.DataFrame({OFFER_ID: ["a", "b", "a", "b", "new"]})
    first = engine.score(frame, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(first, engine.score(frame, rng=np.random.default_rng(9)))
    assert not np.array_equal(first, engine.score(frame, rng=np.random.default_rng(10)))
    # Repeated offers get independent draws, not one shared draw.
    assert first[0] != first[2]
    # Without rng the draws come from random_state: repeatable, and seed-dependent.
    np.testing.assert_array_equal(engine.score(frame), engine.score(frame))
    other = _engine(random_state=1).load_state(engine.state())
    assert not np.array_equal(engine.score(frame), other.score(frame))


def test_better_arm_wins_most_draws() -> None:
    engine = _engine().fit(*_history({"good": 60, "bad": 20}, {"good": 40, "bad": 80}))
    draws = engine.score(
        pd.DataFrame({OFFER_ID: ["good", "bad"] * 5000}), rng=np.random.default_rng(4)
    ).reshape(-1, 2)
    assert (draws[:, 0] > draws[:, 1]).mean() > 0.99


def test_unknown_and_missing_offers_are_fresh_arms() -> None:
    engine = _engine().fit(*_history({"a": 50}, {"a": 50}))
    frame = pd.DataFrame({OFFER_ID: ["never", None, np.nan], "extra": [1, 2, 3]})
    scores = engine.score(frame, rng=np.random.default_rng(0))
    assert scores.shape == (3,) and scores.dtype == np.float64
    assert ((scores >= 0) & (scores <= 1)).all()
    no_column = engine.score(pd.DataFrame({"age": [1.0, 2.0]}), rng=np.random.default_rng(0))
    assert no_column.shape == (2,)
    for detail in (e.details[0] for e in engine.explain(frame)):
        assert detail["successes"] == detail["failures"] == 0
        assert detail["exploring"] is True
        assert detail["posteriorMean"] == 0.5
    assert engine.score(frame.iloc[:0]).shape == (0,)


def test_explanation_reports_the_posterior() -> None:
    engine = _engine(prior_alpha=2, prior_beta=3).fit(
        *_history({"a": 12, "b": 1}, {"a": 8, "b": 2})
    )
    frame = pd.DataFrame({CUSTOMER_ID: ["c", "c"], OFFER_ID: ["a", "b"]})
    scores = engine.score(frame, rng=np.random.default_rng(5))
    explanations = engine.explain(frame, rng=np.random.default_rng(5))
    a, b = (explanation.details[0] for explanation in explanations)
    assert explanations[0].engine == "thompson_bandit"
    assert explanations[0].confidence is None
    assert [e.score for e in explanations] == scores.tolist()
    assert a["sample"] == scores[0]
    assert a["offerId"] == "a"
    assert (a["successes"], a["failures"], a["exploring"]) == (12, 8, False)
    assert a["posteriorMean"] == pytest.approx(14 / 25)
    np.testing.assert_allclose(a["interval"], stats.beta(14, 11).ppf([0.025, 0.975]), rtol=1e-12)
    # Exploring arm: drawn from the prior, but mean and interval describe what was learned.
    assert (b["successes"], b["failures"], b["exploring"]) == (1, 2, True)
    assert b["posteriorMean"] == pytest.approx(3 / 8)
    np.testing.assert_allclose(b["interval"], stats.beta(3, 5).ppf([0.025, 0.975]), rtol=1e-12)
    json.dumps([e.to_dict() for e in explanations])


def test_state_round_trips_exactly() -> None:
    engine = _engine().fit(*_history({"a": 11, "b": 3}, {"a": 4, "b": 9}))
    state = json.loads(json.dumps(engine.state()))
    restored = build_engine("thompson_bandit", state=state)
    assert restored.is_trained
    frame = pd.DataFrame({OFFER_ID: ["a", "b", "c"]})
    np.testing.assert_array_equal(
        restored.score(frame, rng=np.random.default_rng(8)),
        engine.score(frame, rng=np.random.default_rng(8)),
    )
    assert restored.state() == engine.state()
    # A restored engine keeps learning where the original left off.
    restored_engine = _engine().load_state(state)
    restored_engine.learn_one({OFFER_ID: "a"}, 1)
    assert restored_engine.state()["arms"]["a"] == {"successes": 12, "failures": 4}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({}, "'arms' mapping"),
        ({"arms": []}, "'arms' mapping"),
        ({"arms": {"a": {"successes": -1, "failures": 0}}}, r"arms\.a\.successes"),
        ({"arms": {"a": {"successes": 1}}}, r"arms\.a\.failures"),
        ({"arms": {"a": {"successes": True, "failures": 0}}}, "non-negative integer"),
        ({"arms": {"a": 3}}, "non-negative integer"),
    ],
)
def test_malformed_state_is_refused(state: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _engine().load_state(state)


def test_untrained_engine_draws_from_the_prior() -> None:
    engine = _engine()
    assert engine.state() == {"arms": {}}
    draws = engine.score(_repeat("a", 10_000), rng=np.random.default_rng(6))
    assert stats.kstest(draws, stats.uniform.cdf).pvalue > 0.01
