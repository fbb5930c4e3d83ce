"""Learning modes and the scheduler of scheduled retraining (one job per due slot)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from mlworker.errors import BrokerUnavailable
from mlworker.jobs.values import JobStatus
from mlworker.services.container import Services
from mlworker.services.learning import (
    LearningConfig,
    LearningScheduler,
    training_idempotency_key,
)
from mlworker.services.outcomes import OutcomesRequest
from mlworker.store.outcomes import OutcomeRepository, ScheduledTrainingRepository
from mlworker.store.records import JobRecord, ModelRecord, utcnow

TRAINING_JOB = "algorithm_training"


@pytest.fixture
def services(make_settings) -> Iterator[Services]:
    started = Services(make_settings())
    started.start()
    yield started
    started.close()


def scheduled_model(services: Services, key: str = "lr", **learning: Any) -> Any:
    config = {"autoLearn": True, "learnMode": "scheduled", "schedule": "24h", **learning}
    return services.algorithm_models.create(
        {"key": key, "name": key, "modelType": "logistic_regression", "learningConfig": config},
        tenant="default",
        actor="test",
    )


def record(services: Services, key: str, count: int, *, start: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(start)
    items = []
    for i in range(start, start + count):
        x = float(rng.normal())
        items.append(
            {
                "modelKey": key,
                "customerId": f"c{i}",
                "offerId": f"o{i % 3}",
                "outcome": int(x + rng.normal(scale=0.5) > 0),
                "customerAttributes": {"x": x},
            }
        )
    request = OutcomesRequest.model_validate({"outcomes": items})
    return services.outcomes.record(request, tenant="default")


def scheduler(services: Services) -> LearningScheduler:
    """Another replica's scheduler on the same store."""
    return LearningScheduler(
        models=services.algorithm_models,
        outcomes=OutcomeRepository(services.db),
        schedules=ScheduledTrainingRepository(services.db),
    )


def training_jobs(services: Services) -> list[Any]:
    return list(services.jobs.list(tenant="default", types=[TRAINING_JOB], limit=100).items)


def wait_for(services: Services, job_id: str, timeout: float = 60) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = services.jobs.get(job_id, tenant="default")
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
            return job.status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def backdate(services: Services, model_id: str, days: float) -> None:
    with services.db.session() as session:
        row = session.get(ModelRecord, model_id)
        assert row is not None
        row.created_at = utcnow() - timedelta(days=days)


def test_learning_config_reads_the_model_spec() -> None:
    incremental = LearningConfig.from_spec(
        {"learningConfig": {"autoLearn": True, "learnMode": "incremental", "batchThreshold": 20}}
    )
    assert incremental.buffers and incremental.apply_threshold == 20
    per_outcome = LearningConfig.from_spec(
        {"learningConfig": {"autoLearn": True, "learnMode": "per_outcome"}}
    )
    assert per_outcome.buffers and per_outcome.apply_threshold == 1
    scheduled = LearningConfig.from_spec(
        {"learningConfig": {"autoLearn": True, "learnMode": "scheduled", "schedule": "7d"}}
    )
    assert scheduled.scheduled and not scheduled.buffers
    off = LearningConfig.from_spec({"learningConfig": {"learnMode": "incremental"}})
    assert not off.buffers and not off.scheduled
    assert LearningConfig.from_spec(None) == LearningConfig()


def test_a_due_model_is_submitted_once_per_slot(services: Services) -> None:
    model = scheduled_model(services)
    logged = record(services, "lr", 120)
    assert logged["recorded"] == 120 and logged["applied"] == {} and logged["buffered"] == {}
    now = utcnow()
    # Created after today's 00:00 slot: nothing is due until tomorrow.
    assert services.learning.tick(now) == []
    tomorrow = now + timedelta(days=1)
    [run] = services.learning.tick(tomorrow)
    assert run.model_id == model.id and run.slot == datetime.combine(
        tomorrow.date(), datetime.min.time(), UTC
    )
    # The same slot again, from this replica or another: no second job.
    assert services.learning.tick(tomorrow) == []
    assert scheduler(services).tick(tomorrow + timedelta(hours=3)) == []
    [job] = training_jobs(services)
    assert job.id == run.job_id and job.idempotency_key == training_idempotency_key(
        model.id, run.slot
    )
    assert wait_for(services, job.id) is JobStatus.COMPLETED
    trained = services.algorithm_models.get(model.id, tenant="default")
    assert trained.latest_version == 1 and trained.status == "active"
    # The next slot: no outcome arrived since the training, so nothing to learn from.
    assert services.learning.tick(now + timedelta(days=2)) == []
    record(services, "lr", 1, start=500)
    [again] = services.learning.tick(now + timedelta(days=2))
    assert again.slot == run.slot + timedelta(days=1)
    assert len(training_jobs(services)) == 2
    assert wait_for(services, again.job_id) is JobStatus.COMPLETED


def test_a_slot_waits_while_the_previous_training_is_unfinished(services: Services) -> None:
    model = scheduled_model(services)
    record(services, "lr", 120)
    now = utcnow()
    [run] = services.learning.tick(now + timedelta(days=1))
    assert wait_for(services, run.job_id) is JobStatus.COMPLETED
    record(services, "lr", 5, start=500)
    # As if that training were still running when the next slot comes (a slow job).
    with services.db.session() as session:
        row = session.get(JobRecord, run.job_id)
        assert row is not None
        row.status = "running"
    assert services.learning.tick(now + timedelta(days=2)) == []
    with services.db.session() as session:
        row = session.get(JobRecord, run.job_id)
        assert row is not None
        row.status = "completed"
    [later] = services.learning.tick(now + timedelta(days=2))
    assert later.model_id == model.id and later.slot == run.slot + timedelta(days=1)


def test_concurrent_ticks_submit_one_training(services: Services) -> None:
    scheduled_model(services, schedule="0 3 * * *")
    record(services, "lr", 60)
    moment = utcnow() + timedelta(days=1, hours=4)
    replicas = [scheduler(services) for _ in range(4)]
    barrier = threading.Barrier(len(replicas))
    submitted: list[Any] = []

    def tick(replica: LearningScheduler) -> None:
        barrier.wait()
        submitted.extend(replica.tick(moment))

    threads = [threading.Thread(target=tick, args=(replica,)) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(submitted) == 1 and submitted[0].slot.hour == 3
    assert len(training_jobs(services)) == 1


def test_only_auto_learning_scheduled_models_are_retrained(services: Services) -> None:
    scheduled_model(services, "off", autoLearn=False)
    services.algorithm_models.create(
        {
            "key": "bayes",
            "name": "bayes",
            "modelType": "bayesian",
            "learningConfig": {"autoLearn": True, "learnMode": "incremental"},
        },
        tenant="default",
        actor="test",
    )
    silent = scheduled_model(services, "silent")  # scheduled, but no outcome yet
    for key in ("off", "bayes"):
        record(services, key, 60)
    assert services.learning.tick(utcnow() + timedelta(days=3)) == []
    assert training_jobs(services) == []
    assert ScheduledTrainingRepository(services.db).last_job(silent.id) is None


def test_a_failed_submission_is_retried_at_the_next_tick(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = scheduled_model(services)
    record(services, "lr", 60)
    original = services.algorithm_models.submit_training
    calls = []

    def broker_down(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise BrokerUnavailable("the job broker is unavailable")

    monkeypatch.setattr(services.algorithm_models, "submit_training", broker_down)
    moment = utcnow() + timedelta(days=1)
    assert services.learning.tick(moment) == []
    assert len(calls) == 1
    assert ScheduledTrainingRepository(services.db).last_job(model.id) is None
    monkeypatch.setattr(services.algorithm_models, "submit_training", original)
    [run] = services.learning.tick(moment)
    assert ScheduledTrainingRepository(services.db).last_job(model.id) == (run.slot, run.job_id)


def test_the_background_thread_ticks(services: Services) -> None:
    model = scheduled_model(services, schedule="1m")
    backdate(services, model.id, days=1)
    record(services, "lr", 60)
    ticking = LearningScheduler(
        models=services.algorithm_models,
        outcomes=OutcomeRepository(services.db),
        schedules=ScheduledTrainingRepository(services.db),
        tick_seconds=0.05,
    )
    ticking.start()
    try:
        deadline = time.monotonic() + 10
        while not training_jobs(services) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        ticking.close()
    assert len(training_jobs(services)) == 1


def test_celery_beat_runs_the_tick_task(
    services: Services, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlworker.jobs import celery_runner

    settings = make_settings(broker_url="redis://127.0.0.1:6379/0", executor="celery")
    app = celery_runner.create_celery_app(settings)
    entry = app.conf.beat_schedule["learning-tick"]
    assert entry["task"] == celery_runner.LEARNING_TICK_TASK in app.tasks
    assert entry["schedule"] == 60.0 and entry["options"]["expires"] == 60.0
    # The task body ticks with the worker's settings (here an inline runner on this store).
    model = scheduled_model(services)
    backdate(services, model.id, days=2)
    record(services, "lr", 60)
    monkeypatch.setattr(celery_runner, "_worker_settings", make_settings())
    assert app.tasks[celery_runner.LEARNING_TICK_TASK]() == 1
    assert app.tasks[celery_runner.LEARNING_TICK_TASK]() == 0
    assert len(training_jobs(services)) == 1


def test_worker_beat_option_reaches_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlworker import cli
    from mlworker.jobs import celery_runner

    seen: dict[str, Any] = {}
    monkeypatch.setenv("MLWORKER_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr(celery_runner, "run_worker", lambda settings, **kw: seen.update(kw))
    result = CliRunner().invoke(cli.app, ["worker", "--beat", "--concurrency", "1"])
    assert result.exit_code == 0, result.output
    assert seen["beat"] is True and seen["concurrency"] == 1
