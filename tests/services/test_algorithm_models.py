"""Algorithm model service: engine cache, outcomes, secrets, training, advice, lifecycle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from mlworker.engines import build_engine, candidate_frame
from mlworker.errors import (
    ArtifactCorrupt,
    Conflict,
    EngineUnavailable,
    InvalidInput,
    NotFound,
    ValidationFailed,
)
from mlworker.jobs.values import JobStatus
from mlworker.registry.values import REDACTED, AlgorithmModel
from mlworker.services.algorithm_engines import EngineCache, RecentReads
from mlworker.services.algorithm_requests import ModelType
from mlworker.services.algorithm_training import (
    binary_metrics,
    binary_outcomes,
    fit_and_evaluate,
    selected_predictors,
)
from mlworker.services.algorithm_upgrades import upgrade_advice
from mlworker.services.container import Services
from mlworker.store.algorithm_models import EngineStateRepository
from tests.support import wait_for

TENANT = "default"


@pytest.fixture
def services(make_settings) -> Iterator[Services]:
    started = Services(make_settings())
    started.start()
    yield started
    started.close()


def create(services: Services, key: str, model_type: str, **fields: Any) -> AlgorithmModel:
    body = {"key": key, "name": key, "modelType": model_type, **fields}
    return services.algorithm_models.create(body, tenant=TENANT, actor="test")


def interactions(offers: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"customerId": [f"c{i}" for i in range(len(offers))], "offerId": offers})


def planted(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Interactions whose outcome depends on ``tier`` and ``visits`` (and nothing else)."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["gold", "silver", "bronze"], size=n)
    visits = rng.poisson(3, size=n).astype(float)
    logit = -1.0 + 1.5 * (tier == "gold") - 1.0 * (tier == "bronze") + 0.5 * (visits - 3)
    outcomes = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    frame = pd.DataFrame(
        {
            "customerId": [f"c{i}" for i in range(n)],
            "offerId": rng.choice(["o1", "o2"], size=n),
            "tier": tier,
            "visits": visits,
            "noise": rng.normal(size=n),
        }
    )
    return frame, outcomes


def test_model_types_name_every_engine() -> None:
    from mlworker.engines import ENGINES

    assert set(ModelType.__args__) == set(ENGINES)  # type: ignore[attr-defined]


def test_engine_cache_keeps_the_newest_revision_and_evicts_the_oldest() -> None:
    cache = EngineCache(size=2)
    engines = [build_engine("scorecard") for _ in range(4)]
    cache.put("a", 1, engines[0])
    cache.put("a", 2, engines[1])
    assert cache.get("a", 1) is None and cache.get("a", 2) is engines[1]
    cache.put("a", 1, engines[0])  # a stale writer never replaces a newer revision
    assert cache.get("a", 1) is None and len(cache) == 1
    cache.put("b", 1, engines[2])
    cache.get("a", 2)  # a is now the most recently used
    cache.put("c", 1, engines[3])
    assert cache.get("b", 1) is None and cache.get("a", 2) is engines[1]


def test_recent_reads_expire_and_can_be_forgotten() -> None:
    now = [0.0]
    reads: RecentReads[int] = RecentReads(0.5, size=2, clock=lambda: now[0])
    reads.put("a", 1)
    now[0] = 0.49
    assert reads.get("a") == 1
    now[0] = 0.5
    assert reads.get("a") is None
    reads.put("a", 2)
    reads.put("b", 3)
    reads.put("c", 4)  # over size: the oldest goes
    assert reads.get("a") is None and reads.get("c") == 4
    reads.discard("c")
    assert reads.get("c") is None and reads.get("b") == 3
    reads.discard()
    assert reads.get("b") is None
    off: RecentReads[int] = RecentReads(0.0)
    off.put("a", 1)
    assert off.get("a") is None


def test_scoring_reuses_reads_briefly_and_forgets_its_own_changes(make_settings) -> None:
    offers = [{"id": "o1", "attributes": {}}]
    scorer = Services(make_settings(scoring_cache_seconds=60.0))
    scorer.start()
    other = Services(make_settings(scoring_cache_seconds=0.0))  # another process, in effect
    try:
        model = create(scorer, "cached", "scorecard", config={"baseScore": 50})
        models = scorer.algorithm_models

        def served() -> float:
            answer = models.score(model.id, {}, offers, tenant=TENANT, explain=False)
            return float(answer["scores"][0]["score"])

        assert served() == pytest.approx(0.5)
        other.algorithm_models.update(
            model.id, {"config": {"baseScore": 75}}, tenant=TENANT, actor="test"
        )
        # Another process's edit shows once the remembered read expires, not before.
        assert served() == pytest.approx(0.5)
        models.update(model.id, {"config": {"baseScore": 85}}, tenant=TENANT, actor="test")
        assert served() == pytest.approx(0.8909, abs=1e-4)  # this process's own edit: at once
        with pytest.raises(NotFound):
            models.score(model.id, {}, offers, tenant="someone-else", explain=False)
    finally:
        other.close()
        scorer.close()


def test_the_engine_is_reused_until_its_state_revision_changes(services: Services) -> None:
    models = services.algorithm_models
    model = create(services, "bandit", "thompson_bandit")
    first = models.engine(model)
    assert models.engine(model) is first
    assert models.engine(models.get(model.id, tenant=TENANT)) is first
    revision = models.apply_outcomes(
        model.id, interactions(["a", "a", "b"]), np.array([1, 1, 0]), tenant=TENANT
    )
    assert revision == model.state_revision + 1
    # A caller holding the old value still gets the new state: engine() reads the revision.
    updated = models.engine(model)
    assert updated is not first and updated.state() != first.state()
    edited = models.update(model.id, {"config": {"priorAlpha": 2.0}}, tenant=TENANT, actor="test")
    assert edited.state_revision == revision + 1
    assert models.engine(edited) is not updated


def test_outcomes_applied_in_batches_equal_one_fit(services: Services) -> None:
    models = services.algorithm_models
    model = create(services, "bandit", "thompson_bandit")
    rng = np.random.default_rng(3)
    offers = rng.choice(["a", "b", "c"], size=90).tolist()
    outcomes = (rng.random(90) < 0.3).astype(float)
    for start in range(0, 90, 30):
        models.apply_outcomes(
            model.id,
            interactions(offers[start : start + 30]),
            outcomes[start : start + 30],
            tenant=TENANT,
        )
    batch = build_engine("thompson_bandit").fit(interactions(offers), outcomes)
    assert models.model_state(model.id, tenant=TENANT) == batch.state()
    current = models.get(model.id, tenant=TENANT)
    assert current.pending_updates == 90 and current.state_revision == model.state_revision + 3


def test_concurrent_outcomes_are_never_lost(services: Services) -> None:
    models = services.algorithm_models
    model = create(services, "bandit", "thompson_bandit")
    barrier = threading.Barrier(8)

    def learn() -> None:
        barrier.wait()
        models.apply_outcomes(model.id, interactions(["a"]), np.array([1.0]), tenant=TENANT)

    threads = [threading.Thread(target=learn) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    state = models.model_state(model.id, tenant=TENANT)
    assert state["arms"]["a"]["successes"] == 8
    assert models.get(model.id, tenant=TENANT).state_revision == model.state_revision + 8


def test_outcomes_for_a_batch_trained_engine_or_bad_outcomes_are_refused(
    services: Services,
) -> None:
    models = services.algorithm_models
    linear = create(services, "lr", "logistic_regression")
    with pytest.raises(InvalidInput) as caught:
        models.apply_outcomes(linear.id, interactions(["a"]), np.array([1.0]), tenant=TENANT)
    assert caught.value.field == "modelType"
    bandit = create(services, "bandit", "thompson_bandit")
    with pytest.raises(InvalidInput) as caught:
        models.apply_outcomes(bandit.id, interactions(["a"]), np.array([2.0]), tenant=TENANT)
    assert caught.value.field == "outcomes"
    no_offer = pd.DataFrame({"customerId": ["c1"], "offerId": [None]})
    with pytest.raises(InvalidInput) as caught:
        models.apply_outcomes(bandit.id, no_offer, np.array([1.0]), tenant=TENANT)
    assert caught.value.field == "interactions"
    assert models.get(bandit.id, tenant=TENANT).state_revision == bandit.state_revision


def test_learning_config_is_checked_against_the_engine(services: Services) -> None:
    assert create(services, "nb", "bayesian").spec["learningConfig"]["learnMode"] == "incremental"
    assert create(services, "ol", "online_learner").spec["learningConfig"]["learnMode"] == (
        "per_outcome"
    )
    with pytest.raises(InvalidInput) as caught:
        create(services, "lr", "logistic_regression", learningConfig={"learnMode": "per_outcome"})
    assert caught.value.field == "learningConfig.learnMode"
    with pytest.raises(ValidationFailed) as failed:
        create(services, "lr", "logistic_regression", learningConfig={"schedule": "every day"})
    assert failed.value.field == "learningConfig.schedule"
    with pytest.raises(ValidationFailed) as failed:
        create(
            services,
            "lr",
            "logistic_regression",
            learningConfig={"autoLearn": True, "learnMode": "scheduled"},
        )
    assert failed.value.field == "learningConfig"
    scheduled = create(
        services, "lr", "logistic_regression", learningConfig={"schedule": "0 3 * * *"}
    )
    assert scheduled.spec["learningConfig"]["schedule"] == "0 3 * * *"


def test_secrets_are_redacted_on_output_and_kept_when_sent_back(services: Services) -> None:
    models = services.algorithm_models
    config = {
        "endpointUrl": "https://models.example.com/score",
        "authType": "bearer",
        "authConfig": {"token": "s3cr3t"},
    }
    model = create(services, "ext", "external_endpoint", config=config)
    shown = model.to_api()
    assert shown["config"]["authConfig"]["token"] == REDACTED
    assert "s3cr3t" not in repr(shown)
    assert models.get(model.id, tenant=TENANT).config["authConfig"]["token"] == "s3cr3t"
    body = dict(shown)
    body["description"] = "round trip"
    kept = models.update(model.id, body, tenant=TENANT, actor="test")
    assert kept.config["authConfig"]["token"] == "s3cr3t" and kept.description == "round trip"
    assert kept.state_revision == model.state_revision  # the config did not change
    body["config"] = {**shown["config"], "authConfig": {"token": "n3w"}}
    assert models.update(model.id, body, tenant=TENANT, actor="t").config["authConfig"] == {
        **kept.config["authConfig"],
        "token": "n3w",
    }


def test_update_refuses_what_only_other_routes_change(services: Services) -> None:
    models = services.algorithm_models
    model = create(services, "sc", "scorecard")
    for body, field in (
        ({"modelType": "bayesian"}, "modelType"),
        ({"key": "other"}, "key"),
        ({"registryStatus": "champion"}, "registryStatus"),
        ({"status": "training"}, "status"),
    ):
        with pytest.raises(InvalidInput) as caught:
            models.update(model.id, body, tenant=TENANT, actor="test")
        assert caught.value.field == field
    with pytest.raises(ValidationFailed) as failed:
        models.update(model.id, {"config": {"baseScore": "x"}}, tenant=TENANT, actor="test")
    assert failed.value.field == "config.baseScore"


def test_binary_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=200)
    scores = np.clip(0.3 * truth + rng.random(200) * 0.7, 0, 1)
    predicted = scores >= 0.5
    assert binary_metrics(truth, scores) == pytest.approx(
        {
            "auc": roc_auc_score(truth, scores),
            "accuracy": accuracy_score(truth, predicted),
            "precision": precision_score(truth, predicted),
            "recall": recall_score(truth, predicted),
            "f1": f1_score(truth, predicted),
        }
    )
    assert binary_metrics(np.ones(3), np.array([0.2, 0.6, 0.9]))["auc"] is None


def test_outcome_columns_are_read_as_zero_or_one() -> None:
    values, kept = binary_outcomes(pd.Series([True, False, None]), column="o")
    assert values.tolist() == [1.0, 0.0] and kept.tolist() == [True, True, False]
    values, _ = binary_outcomes(pd.Series([1, 0, 1]), column="o")
    assert values.tolist() == [1.0, 0.0, 1.0]
    values, _ = binary_outcomes(pd.Series(["Yes", " no", "TRUE", "0"]), column="o")
    assert values.tolist() == [1.0, 0.0, 1.0, 0.0]
    for bad in (pd.Series([0, 2]), pd.Series(["yes", "maybe"])):
        with pytest.raises(InvalidInput) as caught:
            binary_outcomes(bad, column="o")
        assert caught.value.field == "outcomeColumn"


def test_selected_predictors_keep_ids_and_name_a_missing_one() -> None:
    frame, _ = planted(10, seed=1)
    spec = {
        "predictors": [{"field": "tier", "selected": True}, {"field": "noise", "selected": False}]
    }
    assert list(selected_predictors(frame, spec).columns) == ["customerId", "offerId", "tier"]
    assert selected_predictors(frame, {}) is frame
    with pytest.raises(InvalidInput) as caught:
        selected_predictors(frame, {"predictors": [{"field": "tier"}, {"field": "income"}]})
    assert caught.value.field == "predictors.1.field"


@pytest.mark.parametrize("model_type", ["bayesian", "logistic_regression"])
def test_a_planted_signal_is_found_on_the_hold_out(services: Services, model_type: str) -> None:
    model = create(services, model_type, model_type)
    frame, outcomes = planted(1500, seed=2)
    progress: list[float] = []
    state, metrics = fit_and_evaluate(
        model,
        frame,
        outcomes,
        validation_fraction=0.2,
        random_state=0,
        report=lambda fraction, _: progress.append(fraction),
    )
    assert metrics["auc"] > 0.7
    assert (metrics["evidence"], metrics["trainingRows"], metrics["validationRows"]) == (
        1500,
        1200,
        300,
    )
    # The live state is a refit on every row, not the hold-out probe.
    refit = build_engine(model_type, model.config, random_state=0).fit(frame, outcomes)
    assert state == refit.state()
    assert progress == sorted(progress) and progress[-1] <= 1.0


def test_a_scorecard_is_evaluated_on_every_row(services: Services) -> None:
    rules = [{"field": "tier", "operator": "eq", "value": "gold", "points": 30}]
    model = create(services, "sc", "scorecard", config={"rules": rules})
    frame, outcomes = planted(40, seed=4)
    _, metrics = fit_and_evaluate(
        model, frame, outcomes, validation_fraction=0.2, random_state=0, report=lambda *_: None
    )
    expected = binary_metrics(outcomes, build_engine("scorecard", model.config).score(frame))
    assert metrics["auc"] == pytest.approx(expected["auc"])
    assert metrics["validationRows"] == 40 and metrics["trainingRows"] == 0


def _train(services: Services, model: AlgorithmModel, rows: list[dict[str, Any]]) -> Any:
    submission = services.algorithm_models.submit_training(
        model.id,
        tenant=TENANT,
        actor="test",
        dataset={"rows": rows},  # type: ignore[arg-type]
    )
    return wait_for(
        lambda: (
            (job := services.jobs.get(submission.job.id, tenant=TENANT)).status.finished and job
        ),
        timeout=60,
    )


def test_a_version_state_is_read_back_only_while_its_checksum_matches(
    services: Services,
) -> None:
    model = create(services, "nb", "bayesian")
    frame, outcomes = planted(200, seed=5)
    rows = frame.assign(outcome=outcomes.astype(int)).to_dict("records")
    job = _train(services, model, rows)
    assert job.status is JobStatus.COMPLETED, job.error
    models = services.algorithm_models
    assert models.version_state(model.id, 1, tenant=TENANT) == models.model_state(
        model.id, tenant=TENANT
    )
    artifact = next(Path(services.settings.artifacts).rglob(f"{model.id}/*.json"))
    artifact.write_text(artifact.read_text().replace("bayesian", "bayesiam"))
    with pytest.raises(ArtifactCorrupt):
        models.version_state(model.id, 1, tenant=TENANT)


def test_reset_learning_goes_back_to_the_untrained_state(services: Services) -> None:
    models = services.algorithm_models
    model = create(services, "bandit", "thompson_bandit")
    models.apply_outcomes(model.id, interactions(["a"] * 5), np.ones(5), tenant=TENANT)
    reset = models.reset_learning(model.id, tenant=TENANT, actor="ann")
    assert models.model_state(model.id, tenant=TENANT) == build_engine("thompson_bandit").state()
    assert reset.state_revision == model.state_revision + 2 and reset.pending_updates == 0
    last = models.audit_trail(model.id, tenant=TENANT)[-1]
    assert (last["action"], last["actor"]) == ("algorithm_model.reset_learning", "ann")


def test_scoring_is_seeded_and_archived_models_are_never_scored(services: Services) -> None:
    models = services.algorithm_models
    model = create(services, "bandit", "thompson_bandit")
    models.apply_outcomes(
        model.id,
        interactions(["a"] * 20 + ["b"] * 20),
        np.r_[np.ones(20), np.zeros(20)],
        tenant=TENANT,
    )
    offers = [{"id": "a"}, {"id": "b"}, {"id": "new"}]

    def score(seed: int | None, explain: bool = False) -> dict[str, Any]:
        return models.score(model.id, {}, offers, tenant=TENANT, explain=explain, seed=seed)

    assert score(7) == score(7)
    explained = score(7, explain=True)
    assert [row["score"] for row in explained["scores"]] == [
        row["score"] for row in score(7)["scores"]
    ]
    assert all(
        row["modelExplanation"]["engine"] == "thompson_bandit" for row in explained["scores"]
    )
    ranked = [row["score"] for row in explained["scores"]]
    assert ranked == sorted(ranked, reverse=True)
    models.promote(model.id, to="archived", tenant=TENANT, actor="t", reason=None)
    with pytest.raises(Conflict):
        score(7)


def test_an_engine_that_cannot_load_its_state_is_unavailable(services: Services) -> None:
    model = create(services, "sc", "scorecard")
    with EngineStateRepository(services.db).locked_state(model.id, tenant=TENANT) as live:
        live.replace({"weights": [1, 2]}, applied_updates=0)
    with pytest.raises(EngineUnavailable):
        services.algorithm_models.engine(model)


def _plant_training(services: Services, model: AlgorithmModel, **metrics: Any) -> None:
    EngineStateRepository(services.db).record_training(
        model.id,
        tenant=TENANT,
        actor="t",
        artifact_uri="file:///unused",
        artifact_sha256="0" * 64,
        artifact_format="engine-state+json",
        params={},
        metrics=metrics,
        dataset_fingerprint=None,
        job_id=None,
        state=services.algorithm_models.model_state(model.id, tenant=TENANT),
    )


def _fires(services: Services, model: AlgorithmModel) -> str | None:
    advice = services.algorithm_models.recommendations(model.id, tenant=TENANT)
    recommendation = advice["recommendation"]
    return None if recommendation is None else str(recommendation["upgradeTo"])


def test_recommendations_follow_the_auto_upgrade_table(services: Services) -> None:
    rule = {"field": "tier", "operator": "eq", "value": "gold", "points": 5}
    six = create(services, "six", "scorecard", config={"rules": [rule] * 6})
    five = create(services, "five", "scorecard", config={"rules": [rule] * 5})
    for model in (six, five):
        _plant_training(services, model, evidence=101, auc=0.6)
    assert _fires(services, six) == "bayesian" and _fires(services, five) is None

    bayes = create(services, "nb", "bayesian")
    _plant_training(services, bayes, evidence=450, auc=0.74)
    assert _fires(services, bayes) is None  # 450 samples
    services.algorithm_models.apply_outcomes(
        bayes.id, interactions(["a"] * 51), np.ones(51), tenant=TENANT
    )
    advice = services.algorithm_models.recommendations(bayes.id, tenant=TENANT)
    assert advice["inputs"] == {"rules": None, "samples": 501, "auc": 0.74}
    assert advice["recommendation"]["upgradeTo"] == "logistic_regression"

    linear = create(services, "lr", "logistic_regression", evolutionConfig={"maxAuc": 0.95})
    _plant_training(services, linear, evidence=5001, auc=0.92)
    assert _fires(services, linear) == "gradient_boosted"  # 0.92 < 0.95 (overridden)
    plain = create(services, "lr2", "logistic_regression")
    _plant_training(services, plain, evidence=5001, auc=0.92)
    assert _fires(services, plain) is None


def test_upgrade_advice_lists_every_rule_and_needs_lightgbm_for_boosting() -> None:
    advice = upgrade_advice("logistic_regression", rules=None, samples=6000, auc=0.8)
    assert [(r["from"], r["applies"]) for r in advice["rules"]] == [
        ("scorecard", False),
        ("bayesian", False),
        ("logistic_regression", True),
    ]
    assert advice["recommendation"]["upgradeTo"] == "gradient_boosted"
    without = upgrade_advice(
        "logistic_regression", rules=None, samples=6000, auc=0.8, available=lambda _: False
    )
    assert without["recommendation"] is None
    assert without["rules"][2]["conditions"][-1]["met"] is False
    # Thresholds are strict ("more than", "below"), and never measured AUC never fires.
    assert upgrade_advice("bayesian", rules=None, samples=500, auc=0.5)["recommendation"] is None
    assert upgrade_advice("bayesian", rules=None, samples=501, auc=0.75)["recommendation"] is None
    assert upgrade_advice("bayesian", rules=None, samples=9999, auc=None)["recommendation"] is None
    assert (
        upgrade_advice(
            "scorecard", rules=2, samples=3, auc=None, evolution={"minRules": 1, "minSamples": 2}
        )["recommendation"]["upgradeTo"]
        == "bayesian"
    )


def test_candidate_frames_reach_the_engine_unchanged(services: Services) -> None:
    rules = [{"field": "tier", "operator": "eq", "value": "gold", "points": 35}]
    model = create(services, "sc", "scorecard", config={"rules": rules})
    customer = {"tier": "silver"}
    offers = [{"id": "o1", "attributes": {"tier": "gold"}}, {"id": "o2", "attributes": {}}]
    answer = services.algorithm_models.score(
        model.id, customer, offers, tenant=TENANT, explain=False, customer_id="c9"
    )
    direct = build_engine("scorecard", model.config).score(
        candidate_frame(customer, offers, customer_id="c9")
    )
    assert [row["offerId"] for row in answer["scores"]] == ["o1", "o2"]
    assert [row["score"] for row in answer["scores"]] == pytest.approx(direct.tolist())


def test_without_a_dataset_training_reads_the_outcome_log(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlworker.store.outcomes import OutcomeRepository

    frame, outcomes = planted(300, seed=8)
    asked: list[dict[str, Any]] = []

    def training_frame(self: Any, **kwargs: Any) -> tuple[pd.DataFrame, np.ndarray]:
        asked.append(kwargs)
        return frame, outcomes

    monkeypatch.setattr(OutcomeRepository, "training_frame", training_frame)
    model = create(services, "nb", "bayesian")
    submission = services.algorithm_models.submit_training(
        model.id, tenant=TENANT, actor="scheduler", dataset=None
    )
    job = wait_for(
        lambda: (j := services.jobs.get(submission.job.id, tenant=TENANT)).status.finished and j,
        timeout=60,
    )
    assert job.status is JobStatus.COMPLETED, job.error
    assert asked == [{"tenant": TENANT, "model_key": "nb", "since": None}]
    assert job.result["metrics"]["evidence"] == 300 and job.result["metrics"]["auc"] > 0.7
    trained = services.algorithm_models.get(model.id, tenant=TENANT)
    assert trained.status == "active" and trained.latest_version == 1
    assert services.algorithm_models.audit_trail(model.id, tenant=TENANT)[-1]["actor"] == (
        "scheduler"
    )
