"""Scheduled retraining scaled out: ``mlworker worker --beat`` ticks, trains, once per slot.

Real PostgreSQL and Redis, a real worker subprocess running Celery beat with a one-second
learning tick, and a ``logistic_regression`` model that learns on a schedule from the outcome
log. Two slots train: a daily cron slot some twelve hours back (the model is made a day old, so
that slot is due at once; the next one is hours away, so repeated ticks with new outcomes
waiting must submit nothing), then, with the schedule changed to ``"1m"``, the next minute's
slot, reached by the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlworker.config import Settings
from mlworker.jobs.celery_runner import LEARNING_TICK_TASK
from mlworker.jobs.values import Job, JobStatus
from mlworker.services.container import Services
from mlworker.services.learning import SCHEDULER_ACTOR, training_idempotency_key
from mlworker.services.outcomes import OutcomesRequest
from mlworker.store.outcomes import ScheduledTrainingRepository
from mlworker.store.records import ModelRecord, utcnow
from tests.support import CeleryWorker, settings_for, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

TENANT = "default"
TRAINING_JOB = "algorithm_training"
MODEL_KEY = "beat-lr"
TICK_SECONDS = 1.0
FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@pytest.fixture
def settings(
    tmp_path: Path, postgres_url: str, pg_schema: str, redis_url: str, queue_name: str
) -> Iterator[Settings]:
    yield settings_for(
        tmp_path,
        executor="celery",
        database_url=postgres_url,
        database_schema=pg_schema,
        broker_url=redis_url,
        queue_name=queue_name,
        learning_tick_seconds=TICK_SECONDS,
    )
    _delete_redis_queue(redis_url, queue_name)


def _delete_redis_queue(redis_url: str, queue: str) -> None:
    """Drop the queue's keys: its list (expired ticks may be left in it) and kombu's bindings."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{queue}*"))  # the name is random: only its keys
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    started = Services(settings)
    started.start()  # migrates the fresh schema; scaled out, no scheduler thread here
    yield started
    started.close()


@pytest.fixture
def beat_worker(settings: Settings, services: Services, tmp_path: Path) -> Iterator[CeleryWorker]:
    worker = CeleryWorker(settings, tmp_path / "worker.log", concurrency=2, beat=True)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def interactions(start: int, count: int) -> list[dict[str, Any]]:
    """Outcomes whose conversion follows ``x`` (planted signal) plus noise, seeded."""
    rng = np.random.default_rng(start)
    items = []
    for i in range(start, start + count):
        x = float(rng.normal())
        items.append(
            {
                "modelKey": MODEL_KEY,
                "customerId": f"c{i}",
                "offerId": f"o{i % 3}",
                "outcome": int(x + rng.normal(scale=0.5) > 0),
                "customerAttributes": {"x": x},
            }
        )
    return items


def record(services: Services, start: int, count: int) -> None:
    request = OutcomesRequest.model_validate({"outcomes": interactions(start, count)})
    answer = services.outcomes.record(request, tenant=TENANT)
    # A scheduled learner only logs outcomes: nothing applied, nothing buffered.
    assert answer["recorded"] == count and answer["applied"] == {} and answer["buffered"] == {}


def training_jobs(services: Services) -> list[Job]:
    page = services.jobs.list(tenant=TENANT, types=[TRAINING_JOB], limit=100)
    return sorted(page.items, key=lambda job: job.created_at)


def finished(services: Services, count: int) -> list[Job] | None:
    jobs = training_jobs(services)
    if len(jobs) >= count and all(job.status in FINISHED for job in jobs):
        return jobs
    return None


def minute_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def daily_far_from_now(now: datetime) -> tuple[str, datetime]:
    """A daily cron schedule firing twelve hours away from ``now``, and its latest fire time."""
    hour = (now.hour + 12) % 24
    latest = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if hour > now.hour:
        latest -= timedelta(days=1)
    return f"0 {hour} * * *", latest


def tick_log(worker: CeleryWorker) -> list[dict[str, Any]]:
    """The worker's log records of learning-tick task runs (its JSON lines)."""
    records = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # Celery's start-up banner and warnings are plain text
        if isinstance(record, dict) and record.get("data", {}).get("name") == LEARNING_TICK_TASK:
            records.append(record)
    return records


def submissions_per_tick(worker: CeleryWorker) -> list[int]:
    """What each finished tick returned (trainings it submitted); a failed tick fails here."""
    results = []
    for record in tick_log(worker):
        assert "return_value" in record["data"], f"a learning tick failed: {record}"
        results.append(int(record["data"]["return_value"]))
    return results


def wait_for_ticks(worker: CeleryWorker, count: int) -> None:
    """Wait until the worker has run ``count`` more ticks than it has now."""
    target = len(submissions_per_tick(worker)) + count
    wait_for(
        lambda: len(submissions_per_tick(worker)) >= target,
        timeout=count * TICK_SECONDS + 30,
        interval=0.2,
    )


def backdate(services: Services, model_id: str, by: timedelta) -> None:
    with services.db.session() as session:
        row = session.get(ModelRecord, model_id)
        assert row is not None
        row.created_at -= by


def score(services: Services, model_id: str, x: float) -> float:
    answer = services.algorithm_models.score(
        model_id, {"x": x}, [{"id": "o0"}], tenant=TENANT, explain=False
    )
    return float(answer["scores"][0]["score"])


def test_beat_retrains_a_scheduled_model_once_per_slot(
    services: Services, beat_worker: CeleryWorker
) -> None:
    models = services.algorithm_models
    schedules = ScheduledTrainingRepository(services.db)
    daily, slot = daily_far_from_now(utcnow())
    model = models.create(
        {
            "key": MODEL_KEY,
            "name": "scheduled logistic regression",
            "modelType": "logistic_regression",
            "learningConfig": {"autoLearn": True, "learnMode": "scheduled", "schedule": daily},
        },
        tenant=TENANT,
        actor="test",
    )
    assert model.latest_version == 0
    record(services, start=0, count=120)
    # Created after the schedule's latest fire time, the model has no slot: ticks submit nothing.
    wait_for_ticks(beat_worker, 2)
    assert training_jobs(services) == [] and schedules.last_job(model.id) is None

    # A day-old model with 120 logged outcomes is due for the latest slot: one training.
    backdate(services, model.id, by=timedelta(days=1))
    [first] = wait_for(lambda: finished(services, 1), timeout=90, interval=0.2)
    assert first.status is JobStatus.COMPLETED, first.error
    assert first.idempotency_key == training_idempotency_key(model.id, slot)
    assert schedules.last_job(model.id) == (slot, first.id)
    assert first.runner == "celery" and first.attempts == 1
    assert first.params["actor"] == SCHEDULER_ACTOR and first.params["dataset"] is None
    trained = models.get(model.id, tenant=TENANT)
    assert trained.latest_version == 1 and trained.status == "active"
    assert trained.state_revision > model.state_revision
    assert first.result is not None
    assert first.result["version"] == 1 and first.result["stateRevision"] == trained.state_revision
    assert trained.metrics == first.result["metrics"]
    assert set(trained.metrics) >= {"auc", "accuracy", "precision", "recall", "f1"}
    assert trained.metrics["evidence"] == 120  # every logged outcome, nothing else
    assert trained.metrics["auc"] > 0.8  # the planted signal, on the hold-out
    assert score(services, model.id, 2.0) > 0.8 and score(services, model.id, -2.0) < 0.2
    trainings = [
        row
        for row in models.audit_trail(model.id, tenant=TENANT)
        if row["action"] == "algorithm_model.trained"
    ]
    assert [row["actor"] for row in trainings] == [SCHEDULER_ACTOR]

    # New outcomes wait, but the slot is spent and the next is hours away: ticks go on, no job.
    record(services, start=1000, count=30)
    wait_for_ticks(beat_worker, 3)
    assert [job.id for job in training_jobs(services)] == [first.id]
    assert sum(submissions_per_tick(beat_worker)) == 1

    # Every minute now: the first minute slot after the training trains once, on 150 rows.
    learning = {"autoLearn": True, "learnMode": "scheduled", "schedule": "1m"}
    models.update(model.id, {"learningConfig": learning}, tenant=TENANT, actor="test")
    jobs = wait_for(lambda: finished(services, 2), timeout=90, interval=0.2)
    assert len(jobs) == 2
    second = jobs[1]
    assert second.status is JobStatus.COMPLETED, second.error
    minute_slot = minute_of(second.created_at)
    # The first minute slot later than the training, whichever minute the schedule changed in.
    trained_at = datetime.fromisoformat(trained.metrics_history[0]["trainedAt"])
    assert minute_slot == minute_of(trained_at) + timedelta(minutes=1)
    assert second.idempotency_key == training_idempotency_key(model.id, minute_slot)
    assert schedules.last_job(model.id) == (minute_slot, second.id)
    retrained = models.get(model.id, tenant=TENANT)
    assert retrained.latest_version == 2 and retrained.state_revision > trained.state_revision
    assert [entry["version"] for entry in retrained.metrics_history] == [1, 2]
    assert retrained.metrics["evidence"] == 150

    # Later ticks find no outcome newer than the last training: still two jobs. Of the ten or
    # more ticks of the run (those waited for above and the two that submitted), two submitted
    # one training each and every other submitted nothing.
    wait_for_ticks(beat_worker, 3)
    assert len(training_jobs(services)) == 2
    per_tick = submissions_per_tick(beat_worker)
    assert len(per_tick) >= 10 and sorted(set(per_tick)) == [0, 1] and sum(per_tick) == 2
