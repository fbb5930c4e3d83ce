"""The reaper recovers jobs whose heartbeat stopped; nothing stays running forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from mlworker.jobs.reaper import Reaper
from mlworker.jobs.values import Job, JobStatus, RecoveryOutcome
from mlworker.store import migrate
from mlworker.store.db import Database
from mlworker.store.jobs import JobRepository
from mlworker.store.records import JobRecord, utcnow


class RecordingRunner:
    """An in-memory runner (the stub every runner-facing unit test uses)."""

    def __init__(self, name: str = "local") -> None:
        self.name = name
        self.submitted: list[str] = []

    def start(self) -> None: ...

    def submit(self, job: Job) -> None:
        self.submitted.append(job.id)

    def check(self) -> None: ...

    def close(self) -> None: ...


@pytest.fixture
def setup(store_settings):
    settings = store_settings(job_max_attempts=2)
    db = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(db)
    repo = JobRepository(db)
    yield settings, db, repo
    db.dispose()


def _running_job(repo: JobRepository, db: Database, *, stale: bool, runner: str = "local") -> Job:
    job, _ = repo.create(
        tenant="t",
        job_type="diagnostics.noop",
        params={},
        params_hash="h",
        runner=runner,
        max_attempts=2,
    )
    claimed = repo.claim(job.id, worker_id="celery:somewhere:1")
    assert claimed is not None
    if stale:
        with db.session() as session:
            session.execute(
                sa.update(JobRecord)
                .where(JobRecord.id == job.id)
                .values(heartbeat_at=utcnow() - timedelta(minutes=5))
            )
    return claimed


def test_stale_job_is_requeued_and_resubmitted(setup) -> None:
    settings, db, repo = setup
    runner = RecordingRunner()
    stale = _running_job(repo, db, stale=True)
    fresh = _running_job(repo, db, stale=False)
    outcomes = Reaper(repo, runner, settings).reap_once()
    assert outcomes == {stale.id: RecoveryOutcome.REQUEUED}
    assert runner.submitted == [stale.id]
    assert repo.get(stale.id, tenant=None).status is JobStatus.QUEUED
    assert repo.get(fresh.id, tenant=None).status is JobStatus.RUNNING


def test_stale_job_out_of_attempts_fails_with_worker_lost(setup) -> None:
    settings, db, repo = setup
    runner = RecordingRunner()
    job = _running_job(repo, db, stale=True)
    Reaper(repo, runner, settings).reap_once()
    assert repo.claim(job.id, worker_id="w2") is not None  # attempt 2
    with db.session() as session:
        session.execute(
            sa.update(JobRecord)
            .where(JobRecord.id == job.id)
            .values(heartbeat_at=utcnow() - timedelta(minutes=5))
        )
    assert Reaper(repo, runner, settings).reap_once() == {job.id: RecoveryOutcome.FAILED}
    failed = repo.get(job.id, tenant=None)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "worker_lost"
    assert runner.submitted == [job.id]


def test_stale_job_with_cancel_request_is_cancelled(setup) -> None:
    settings, db, repo = setup
    job = _running_job(repo, db, stale=True)
    repo.request_cancel(job.id, tenant=None)
    assert Reaper(repo, RecordingRunner(), settings).reap_once() == {
        job.id: RecoveryOutcome.CANCELLED
    }


def test_long_queued_celery_jobs_are_published_again(store_settings) -> None:
    settings = store_settings(requeue_queued_after_seconds=60)
    db = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(db)
    repo = JobRepository(db)
    try:
        job, _ = repo.create(
            tenant="t",
            job_type="diagnostics.noop",
            params={},
            params_hash="h",
            runner="celery",
            max_attempts=2,
        )
        runner = RecordingRunner("celery")
        with db.session() as session:
            session.execute(
                sa.update(JobRecord)
                .where(JobRecord.id == job.id)
                .values(updated_at=utcnow() - timedelta(minutes=5))
            )
        Reaper(repo, runner, settings).reap_once()
        Reaper(repo, runner, settings).reap_once()
        assert runner.submitted == [job.id]  # once per period, not on every pass
    finally:
        db.dispose()
