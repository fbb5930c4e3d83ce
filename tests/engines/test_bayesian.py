"""The Bayesian (naive Bayes) engine against hand-computed posteriors, scikit-learn and scipy."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy.stats import chi2_contingency
from sklearn.metrics import roc_auc_score
from sklearn.naive_bayes import CategoricalNB

from mlworker.engines import CUSTOMER_ID, OFFER_ID, build_engine, config_of
from mlworker.engines.bayesian import BayesianConfig, Engine
from mlworker.engines.bayesian._predictors import MAX_CATEGORY_LEVELS, Predictor
from mlworker.engines.bayesian._statistics import (
    binned_auc,
    independence_p_value,
    merge_adjacent_bins,
    two_proportion_p_values,
)

NO_MERGING = {"binMergeAlpha": 1.0}


def _engine(**config: Any) -> Engine:
    return Engine(BayesianConfig.model_validate(config))


def _round_trip(engine: Engine, **config: Any) -> Engine:
    state = json.loads(json.dumps(engine.state(), allow_nan=False))
    return _engine(**config).load_state(state)


def _logit(probability: np.ndarray) -> np.ndarray:
    return np.log(probability / (1.0 - probability))


# -- statistics on counts ------------------------------------------------------------------------

TABLES = [((80, 20), (60, 40)), ((5, 1), (2, 7)), ((300, 12), (280, 30)), ((10, 10), (10, 10))]


@pytest.mark.parametrize(("bin_a", "bin_b"), TABLES)
def test_two_proportion_p_value_is_scipys_chi_square(
    bin_a: tuple[int, int], bin_b: tuple[int, int]
) -> None:
    expected = chi2_contingency([bin_a, bin_b], correction=False).pvalue
    actual = two_proportion_p_values([bin_a[0]], [bin_a[1]], [bin_b[0]], [bin_b[1]])[0]
    assert actual == pytest.approx(expected, rel=1e-9)


def test_independence_p_value_is_scipys_and_ignores_empty_bins() -> None:
    negatives, positives = [80, 0, 61, 70, 12], [20, 0, 44, 31, 9]
    kept = [0, 2, 3, 4]
    table = np.array([negatives, positives])[:, kept]
    expected = chi2_contingency(table, correction=False).pvalue
    assert independence_p_value(negatives, positives) == pytest.approx(expected, rel=1e-9)
    assert independence_p_value([5, 7], [0, 0]) == 1.0
    assert independence_p_value([5], [3]) == 1.0


def test_binned_auc_is_sklearns_on_the_rows_it_counts() -> None:
    rng = np.random.default_rng(0)
    negatives, positives = rng.integers(0, 40, 12), rng.integers(0, 40, 12)
    scores = rng.choice([0.1, 0.2, 0.3, 0.5, 0.9], 12)  # ties across bins on purpose
    rows_scores = np.repeat(np.r_[scores, scores], np.r_[negatives, positives])
    rows_labels = np.repeat([0, 1], [negatives.sum(), positives.sum()])
    auc = binned_auc(negatives, positives, scores)
    assert auc == pytest.approx(roc_auc_score(rows_labels, rows_scores), abs=1e-12)


def test_merging_keeps_only_significant_neighbours() -> None:
    # Rates 0.10, 0.11, 0.40, 0.41, 0.12: the last bin differs from its neighbour, so stays.
    negatives, positives = [900, 890, 600, 590, 880], [100, 110, 400, 410, 120]
    assert merge_adjacent_bins(negatives, positives, 0.05) == [[0, 1], [2, 3], [4]]
    assert merge_adjacent_bins(negatives, positives, 1.0) == [[0], [1], [2], [3], [4]]
    assert merge_adjacent_bins([50, 50], [50, 50], 0.05) == [[0, 1]]


# -- the posterior against hand computation and scikit-learn -------------------------------------

#: Two categorical predictors: gold 3+/1-, silver 1+/3-; web 3+/0-, app 1+/4-. 4 positives,
#: 4 negatives.
HAND = pd.DataFrame(
    {
        "tier": ["gold", "gold", "gold", "gold", "silver", "silver", "silver", "silver"],
        "channel": ["web", "web", "app", "app", "web", "app", "app", "app"],
    }
)
HAND_OUTCOMES = np.array([1, 1, 1, 0, 1, 0, 0, 0])


def test_posterior_matches_the_hand_computed_naive_bayes() -> None:
    engine = _engine(laplaceSmoothingAlpha=1, **NO_MERGING).fit(HAND, HAND_OUTCOMES)
    candidates = pd.DataFrame(
        {"tier": ["gold", "silver", "gold", "silver"], "channel": ["web", "app", "email", None]}
    )
    # P(value | c) = (count + 1) / (n_c + 1 * 2 values); both classes have n_c = 4.
    tier_gold = math.log((3 + 1) / 6) - math.log((1 + 1) / 6)  # log 2
    tier_silver = math.log((1 + 1) / 6) - math.log((3 + 1) / 6)  # log 1/2
    channel_web = math.log((3 + 1) / 6) - math.log((0 + 1) / 6)  # log 4
    channel_app = math.log((1 + 1) / 6) - math.log((4 + 1) / 6)  # log 2/5
    prior = math.log((4 + 2 * 0.5) / (4 + 2 * 0.5))  # Beta(1, 1) prior: log 1
    expected_log_odds = [
        prior + tier_gold + channel_web,  # 8/9
        prior + tier_silver + channel_app,  # 1/6
        prior + tier_gold,  # unseen channel contributes nothing: 2/3
        prior + tier_silver,  # missing channel, never seen missing in training: 1/3
    ]
    expected = [1 / (1 + math.exp(-value)) for value in expected_log_odds]
    np.testing.assert_allclose(engine.score(candidates), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(expected, [8 / 9, 1 / 6, 2 / 3, 1 / 3], rtol=0, atol=1e-12)

    explanation = engine.explain(candidates.iloc[:1])[0]
    assert explanation.details == [
        {"field": "channel", "contribution": pytest.approx(channel_web, abs=1e-12)},
        {"field": "tier", "contribution": pytest.approx(tier_gold, abs=1e-12)},
    ]
    # Confidence: mean of n / (n + 25) over the bins the candidate is in (gold 4, web 3).
    assert explanation.confidence == pytest.approx((4 / 29 + 3 / 28) / 2, abs=1e-12)


def test_prior_positive_rate_is_the_mean_of_a_two_observation_beta_prior() -> None:
    engine = _engine(priorPositiveRate=0.3, **NO_MERGING).fit(HAND, HAND_OUTCOMES)
    candidate = pd.DataFrame({"tier": ["gold"], "channel": ["web"]})
    expected = math.log((4 + 2 * 0.3) / (4 + 2 * 0.7)) + math.log(2) + math.log(4)
    assert _logit(engine.score(candidate))[0] == pytest.approx(expected, abs=1e-12)


def test_without_predictors_the_score_is_the_posterior_mean_rate() -> None:
    # The seed's worked example has 500 positive and 300 negative outcomes.
    outcomes = np.r_[np.ones(500), np.zeros(300)]
    ids_only = pd.DataFrame({CUSTOMER_ID: [f"c{i}" for i in range(800)], OFFER_ID: "o1"})
    engine = _engine().fit(ids_only, outcomes)
    assert engine.score(ids_only.iloc[:3]).tolist() == pytest.approx([501 / 802] * 3, abs=1e-12)
    assert engine.explain(ids_only.iloc[:1])[0].confidence == pytest.approx(800 / 825)


def test_matches_sklearn_categorical_nb_given_the_same_class_prior() -> None:
    rng = np.random.default_rng(3)
    rows = 2000
    codes = np.column_stack([rng.integers(0, k, rows) for k in (3, 4, 5)])
    margin = -0.5 + np.array([0.0, 0.8, -0.7])[codes[:, 0]] + 0.35 * codes[:, 1]
    margin += np.array([0.4, -0.4, 0.9, 0.0, -1.0])[codes[:, 2]]
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(int)
    frame = pd.DataFrame({f"f{j}": [f"v{code}" for code in codes[:, j]] for j in range(3)})
    engine = _engine(**NO_MERGING).fit(frame, outcomes)
    assert sorted(engine.selected_) == ["f0", "f1", "f2"]

    # scikit-learn's fitted prior is n1 / n; ours is the Beta(1, 1) posterior mean.
    prior = (outcomes.sum() + 1) / (rows + 2)
    reference = CategoricalNB(alpha=1.0, class_prior=[1 - prior, prior]).fit(codes, outcomes)
    grid = np.array([[a, b, c] for a in range(3) for b in range(4) for c in range(5)])
    candidates = pd.DataFrame({f"f{j}": [f"v{code}" for code in grid[:, j]] for j in range(3)})
    np.testing.assert_allclose(
        engine.score(candidates), reference.predict_proba(grid)[:, 1], rtol=0, atol=1e-12
    )


# -- binning, merging, selection -----------------------------------------------------------------


def test_planted_monotone_effect_is_binned_merged_and_increasing() -> None:
    rng = np.random.default_rng(11)
    x = rng.random(5000)
    outcomes = (rng.random(5000) < 1 / (1 + np.exp(-(-1.5 + 3.0 * x)))).astype(int)
    engine = _engine(binCount=10).fit(pd.DataFrame({"x": x}), outcomes)

    (predictor,) = engine.predictors_ or []
    deciles = np.quantile(x, np.arange(1, 10) / 10, method="inverted_cdf")
    np.testing.assert_array_equal(predictor.edges, deciles)
    assert predictor.counts.sum(axis=0)[1:].tolist() == [500] * 10

    (summary,) = engine.predictor_summaries()
    groups = [group for group in summary["bins"] if group["negatives"] + group["positives"]]
    rates = [group["positives"] / (group["negatives"] + group["positives"]) for group in groups]
    assert 2 <= len(groups) < 10
    assert all(later > earlier for earlier, later in zip(rates, rates[1:], strict=False))
    contributions = [group["contribution"] for group in groups]
    assert contributions == sorted(contributions)
    assert engine.selected_ == ["x"]


def test_noise_predictors_are_dropped() -> None:
    rng = np.random.default_rng(5)
    rows = 3000
    signal = rng.choice(["a", "b", "c"], rows)
    outcomes = (rng.random(rows) < np.where(signal == "a", 0.45, 0.2)).astype(int)
    frame = pd.DataFrame(
        {
            "signal": signal,
            "noiseNumber": rng.normal(size=rows),
            "noiseCategory": rng.choice(list("uvwxyz"), rows),
        }
    )
    engine = _engine().fit(frame, outcomes)
    assert engine.selected_ == ["signal"]
    importance = {
        summary["field"]: summary["importance"] for summary in engine.predictor_summaries()
    }
    assert importance["noiseNumber"] == 0.5
    assert importance["noiseCategory"] == 0.5
    assert importance["signal"] > 0.6
    # b and c do not differ: they are grouped.
    assert [group["label"] for group in engine.predictor_summaries()[0]["bins"]][:2] == [
        "b, c",
        "a",
    ]


def test_categorical_values_are_grouped_by_rate_not_by_frequency() -> None:
    rng = np.random.default_rng(12)
    sizes, rates = (
        {"a": 1000, "b": 900, "c": 800, "d": 700},
        {"a": 0.1, "b": 0.4, "c": 0.1, "d": 0.4},
    )
    values = np.repeat(list(sizes), list(sizes.values()))
    outcomes = (rng.random(values.size) < np.vectorize(rates.get)(values)).astype(int)
    engine = _engine().fit(pd.DataFrame({"code": values}), outcomes)
    groups = [g for g in engine.predictor_summaries()[0]["bins"] if g["negatives"] + g["positives"]]
    assert [set(group["label"].split(", ")) for group in groups] == [{"a", "c"}, {"b", "d"}]


def test_max_predictors_keeps_the_best_by_auc() -> None:
    rng = np.random.default_rng(2)
    rows = 4000
    features = rng.normal(size=(rows, 4))
    margin = features @ np.array([2.0, 1.2, 0.6, 0.3]) - 0.5
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(int)
    frame = pd.DataFrame(features, columns=["x4", "x3", "x1", "x2"])  # order must not matter
    engine = _engine(maxPredictors=2).fit(frame, outcomes)
    assert engine.selected_ == ["x4", "x3"]
    assert {detail["field"] for detail in engine.explain(frame.iloc[:1])[0].details} == {
        "x4",
        "x3",
    }
    everything = _engine().fit(frame, outcomes)
    assert everything.selected_[:2] == ["x4", "x3"] and len(everything.selected_) >= 3


def test_categorical_levels_are_capped() -> None:
    levels = [f"l{i:03d}" for i in range(150)]
    values = [level for i, level in enumerate(levels) for _ in range(150 - i)]
    frame = pd.DataFrame({"code": values})
    engine = _engine().fit(frame, np.arange(len(values)) % 2)
    (predictor,) = engine.predictors_ or []
    assert predictor.levels == levels[:MAX_CATEGORY_LEVELS]
    assert predictor.counts[:, 1].sum() == sum(range(1, 51))  # the 50 rarest share "other"


def test_numbers_are_read_leniently_at_score_time() -> None:
    rng = np.random.default_rng(8)
    x = rng.random(2000)
    x[:200] = np.nan
    outcomes = (rng.random(2000) < np.where(np.isnan(x), 0.6, 0.1 + 0.5 * np.nan_to_num(x))).astype(
        int
    )
    engine = _engine().fit(pd.DataFrame({"x": x}), outcomes)
    odd = pd.DataFrame({"x": pd.Series(["n/a", None, "0.99", -np.inf, np.inf], dtype=object)})
    scores = engine.score(odd)
    missing = engine.score(pd.DataFrame({"x": [np.nan]}))[0]
    assert scores[0] == scores[1] == missing  # not a number counts as missing
    assert scores[2] == engine.score(pd.DataFrame({"x": [0.99]}))[0]
    assert scores[3] < scores[4]


# -- cold start, unseen values, incremental learning ---------------------------------------------


def test_untrained_engine_scores_the_prior_rate_exactly() -> None:
    candidates = pd.DataFrame({"tier": ["gold", None], "age": [30, 50]})
    assert _engine().score(candidates).tolist() == [0.5, 0.5]
    assert _engine(priorPositiveRate=0.3).score(candidates).tolist() == [0.3, 0.3]
    explanation = _engine().explain(candidates)[0]
    assert (explanation.details, explanation.confidence, explanation.score) == ([], 0.0, 0.5)
    state = _engine().state()
    assert state["auc"] is None and state["useful"] is False
    assert _round_trip(_engine()).score(candidates).tolist() == [0.5, 0.5]


def test_one_class_only_selects_nothing() -> None:
    engine = _engine().fit(HAND, np.zeros(8))
    assert engine.selected_ == [] and engine.auc_ is None and not engine.useful
    assert engine.score(HAND.iloc[:2]).tolist() == pytest.approx([1 / 10, 1 / 10])


def test_unseen_category_and_unknown_columns_contribute_nothing() -> None:
    engine = _engine(**NO_MERGING).fit(HAND, HAND_OUTCOMES)
    known = pd.DataFrame({"tier": ["gold"], "channel": ["web"]})
    odd = pd.DataFrame({"tier": ["gold"], "channel": ["carrier pigeon"], "other": [1]})
    details = {d["field"]: d["contribution"] for d in engine.explain(odd)[0].details}
    assert details["channel"] == 0.0
    assert details["tier"] == engine.explain(known)[0].details[1]["contribution"]
    assert engine.score(odd)[0] == pytest.approx(2 / 3, abs=1e-12)


def test_learn_one_moves_the_score_the_right_way() -> None:
    engine = _engine(**NO_MERGING).fit(HAND, HAND_OUTCOMES)
    candidate = {CUSTOMER_ID: "c9", OFFER_ID: "o1", "tier": "silver", "channel": "app"}
    frame = pd.DataFrame([candidate])
    before = engine.score(frame)[0]
    engine.learn_one(candidate, 1)
    raised = engine.score(frame)[0]
    engine.learn_one(candidate, 0)
    engine.learn_one(candidate, 0)
    assert raised > before
    assert engine.score(frame)[0] < raised


def test_new_categorical_values_get_their_own_bin_in_updates() -> None:
    engine = _engine(**NO_MERGING).fit(HAND, HAND_OUTCOMES)
    platinum = pd.DataFrame({"tier": ["platinum"] * 6, "channel": ["web"] * 6})
    before = engine.score(platinum.iloc[:1])[0]
    engine.update(platinum, np.ones(6))
    (tier, _) = engine.predictors_ or []
    assert tier.levels == ["gold", "silver", "platinum"]
    assert engine.score(platinum.iloc[:1])[0] > before
    # The new bin counts: P(platinum | 1) = (6 + 1) / (10 + 3), P(platinum | 0) = 1 / (4 + 3).
    explanation = engine.explain(platinum.iloc[:1])[0]
    contribution = {d["field"]: d["contribution"] for d in explanation.details}["tier"]
    assert contribution == pytest.approx(math.log(7 / 13) - math.log(1 / 7), abs=1e-12)


def test_updates_equal_a_fit_on_all_the_data_when_nothing_is_regrouped() -> None:
    rng = np.random.default_rng(4)
    rows = 1500
    tier = rng.choice(["gold", "silver", "bronze"], rows)
    channel = rng.choice(["web", "app"], rows)
    outcomes = rng.random(rows) < np.where(tier == "gold", 0.5, 0.2) + 0.1 * (channel == "web")
    frame = pd.DataFrame({"tier": tier, "channel": channel})
    first, second = slice(0, 1000), slice(1000, rows)
    config = {**NO_MERGING, "retrainEveryN": 10_000}
    incremental = _engine(**config).fit(frame.iloc[first], outcomes[first])
    incremental.update(frame.iloc[second], outcomes[second])
    batch = _engine(**config).fit(frame, outcomes)
    assert incremental.selected_ == batch.selected_
    np.testing.assert_allclose(incremental.score(frame), batch.score(frame), rtol=0, atol=1e-12)


def test_retraining_from_counts_equals_a_fit_on_the_same_rows() -> None:
    rng = np.random.default_rng(9)
    rows = 800
    x = rng.normal(size=rows)
    tier = rng.choice(["gold", "silver", "bronze", "tin"], rows)
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-(x + (tier == "gold"))))).astype(int)
    frame = pd.DataFrame({"x": x, "tier": tier})
    # Seeing the rows twice keeps the quantile edges, so only the grouping is recomputed.
    incremental = _engine(retrainEveryN=rows).fit(frame, outcomes)
    incremental.update(frame, outcomes)
    twice = pd.concat([frame, frame], ignore_index=True)
    batch = _engine().fit(twice, np.r_[outcomes, outcomes])
    learned = incremental.state()
    assert learned["updatesSinceRetrain"] == 0
    assert learned["predictors"] == batch.state()["predictors"]
    assert learned["selected"] == batch.state()["selected"]
    np.testing.assert_array_equal(incremental.score(frame), batch.score(frame))


def test_an_engine_learning_from_scratch_builds_its_bins_after_retrain_every_n() -> None:
    engine = _engine(retrainEveryN=40)
    rng = np.random.default_rng(1)
    tier = rng.choice(["gold", "silver"], 40)
    outcomes = (tier == "gold").astype(int)  # as clear as a signal gets
    for position in range(39):
        engine.learn_one({"tier": tier[position], CUSTOMER_ID: "c"}, outcomes[position])
    assert engine.predictors_ is None and len(engine.state()["pendingRows"]) == 39
    positives = int(outcomes[:39].sum())
    flat = (positives + 1) / (39 + 2)
    restored = _round_trip(engine, retrainEveryN=40)
    assert restored.score(pd.DataFrame({"tier": ["gold", "silver"]})).tolist() == pytest.approx(
        [flat, flat], abs=1e-12
    )
    restored.learn_one({"tier": tier[39]}, outcomes[39])
    assert restored.predictors_ is not None and restored.state()["pendingRows"] == []
    gold, silver = restored.score(pd.DataFrame({"tier": ["gold", "silver"]}))
    assert gold > 0.9 and silver < 0.1


# -- AUC, explanations, state --------------------------------------------------------------------


def _contract_like(rows: int = 3000, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows)
    age[rng.random(rows) < 0.05] = np.nan
    tier = rng.choice(["gold", "silver", "bronze"], rows).astype(object)
    tier[rng.random(rows) < 0.05] = None
    margin = 0.04 * np.nan_to_num(age - 40) + np.where(tier == "gold", 1.2, 0.0) - 0.5
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(int)
    frame = pd.DataFrame({CUSTOMER_ID: "c", OFFER_ID: "o", "age": age, "tier": tier})
    return frame, outcomes


def test_reported_auc_is_the_training_auc_and_decides_usefulness() -> None:
    frame, outcomes = _contract_like()
    engine = _engine().fit(frame, outcomes)
    exact = roc_auc_score(outcomes, engine.score(frame))
    state = engine.state()
    assert state["auc"] == pytest.approx(exact, abs=0.005)
    assert state["useful"] is True
    assert _engine(aucThreshold=0.95).fit(frame, outcomes).state()["useful"] is False


def test_auc_after_updates_counts_each_outcome_scored_before_it_was_learned() -> None:
    frame, outcomes = _contract_like(rows=3000)
    train, later = slice(0, 2000), slice(2000, 3000)
    engine = _engine(retrainEveryN=1000).fit(frame.iloc[train], outcomes[train])
    fitted_scores = engine.score(frame.iloc[train])
    # Later outcomes are the opposite of what the model learned: it ranks them badly.
    flipped = 1 - outcomes[later]
    later_scores = engine.score(frame.iloc[later])
    engine.update(frame.iloc[later], flipped)
    expected = roc_auc_score(np.r_[outcomes[train], flipped], np.r_[fitted_scores, later_scores])
    assert engine.auc_ == pytest.approx(expected, abs=0.005)
    assert engine.auc_ < roc_auc_score(outcomes[train], fitted_scores) - 0.05


def test_missing_values_join_the_group_they_behave_like() -> None:
    rng = np.random.default_rng(6)
    x = rng.random(4000)
    rate = np.where(x < 0.5, 0.1, 0.5)
    x[rng.random(4000) < 0.1] = np.nan
    rate[np.isnan(x)] = 0.5
    outcomes = (rng.random(4000) < rate).astype(int)
    engine = _engine().fit(pd.DataFrame({"x": x}), outcomes)
    groups = engine.predictor_summaries()[0]["bins"]
    assert groups[0]["label"].startswith("(-inf, 0.5")  # the low-rate half, without missing
    (with_missing,) = [group for group in groups if group["label"].endswith("missing")]
    assert with_missing is not groups[0] and with_missing["label"] != "missing"
    rate = with_missing["positives"] / (with_missing["positives"] + with_missing["negatives"])
    assert rate == pytest.approx(0.5, abs=0.05)


def test_explanations_add_up_to_the_score() -> None:
    frame, outcomes = _contract_like()
    engine = _engine().fit(frame, outcomes)
    candidates = frame.iloc[:25]
    scores = engine.score(candidates)
    prior = math.log((outcomes.sum() + 1) / (len(outcomes) - outcomes.sum() + 1))
    for explanation, score in zip(engine.explain(candidates), scores, strict=True):
        assert explanation.score == score
        contributions = [detail["contribution"] for detail in explanation.details]
        assert [abs(c) for c in contributions] == sorted(
            (abs(c) for c in contributions), reverse=True
        )
        assert prior + sum(contributions) == pytest.approx(_logit(np.array(score)), abs=1e-9)
        assert explanation.confidence is not None and 0.5 < explanation.confidence < 1.0


def test_state_round_trips_exactly_after_fit_and_updates() -> None:
    frame, outcomes = _contract_like()
    engine = _engine(retrainEveryN=500).fit(frame.iloc[:2000], outcomes[:2000])
    engine.update(frame.iloc[2000:2300], outcomes[2000:2300])
    engine.learn_one({"tier": "diamond", "age": 33.0}, 1)
    restored = _round_trip(engine, retrainEveryN=500)
    assert restored.state() == engine.state()
    np.testing.assert_array_equal(restored.score(frame), engine.score(frame))
    # Both keep learning identically: 300 more outcomes cross retrainEveryN.
    for learner in (engine, restored):
        learner.update(frame.iloc[2300:], outcomes[2300:])
    assert restored.state() == engine.state()
    restored_via_registry = build_engine("bayesian", {"retrainEveryN": 500}, state=engine.state())
    np.testing.assert_array_equal(restored_via_registry.score(frame), engine.score(frame))


@pytest.mark.parametrize(
    "damage",
    [
        {"version": 99},
        {"classCounts": [1, 2, 3]},
        {"selected": ["nowhere"]},
        {"predictors": [{"field": "x", "kind": "numeric", "edges": [1.0]}]},
    ],
)
def test_a_damaged_state_is_refused(damage: dict[str, Any]) -> None:
    engine = _engine(**NO_MERGING).fit(HAND, HAND_OUTCOMES)
    with pytest.raises(ValueError, match="invalid Bayesian model state"):
        _engine().load_state({**engine.state(), **damage})


def test_bad_training_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no interactions"):
        _engine().fit(HAND.iloc[:0], [])
    with pytest.raises(ValueError, match="0 or 1"):
        _engine().fit(HAND, np.full(8, 0.5))
    with pytest.raises(ValueError, match="outcomes"):
        _engine().fit(HAND, HAND_OUTCOMES).update(HAND, HAND_OUTCOMES[:3])


def test_config_names_defaults_and_limits() -> None:
    dumped = config_of("bayesian").model_dump(by_alias=True)
    assert dumped == {
        "laplaceSmoothingAlpha": 1,
        "aucThreshold": 0.5,
        "maxPredictors": 20,
        "binCount": 10,
        "priorPositiveRate": 0.5,
        "retrainEveryN": 100,
        "binMergeAlpha": 0.05,
    }
    for bad in (
        {"laplaceSmoothingAlpha": 0},
        {"priorPositiveRate": 1},
        {"binMergeAlpha": 0},
        {"maxPredictors": 0},
    ):
        with pytest.raises(ValidationError):
            config_of("bayesian", bad)


def test_predictor_state_is_strict_json_even_with_infinite_training_values() -> None:
    column = pd.Series([-np.inf, 1.0, 2.0, None, 4.0, np.inf, np.inf, np.inf])
    predictor = Predictor.from_column("x", column, 4)
    predictor.learn(predictor.fine_bins(column, 8), np.array([0, 1, 1, 0, 1, 0, 1, 1]))
    assert np.isfinite(predictor.edges).all()
    assert predictor.counts.sum(axis=0).tolist() == [1, 2, 1, 4]  # missing, then the bins
    again = Predictor.from_state(json.loads(json.dumps(predictor.to_state(), allow_nan=False)))
    assert again.to_state() == predictor.to_state()
