"""The job repository contract, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from mlworker.errors import InvalidInput, JobNotCancellable, NotFound
from mlworker.jobs.values import JobError, JobStatus, RecoveryOutcome
from mlworker.store import migrate
from mlworker.store.db import Database
from mlworker.store.jobs import JobRepository
from mlworker.store.records import utcnow


@pytest.fixture
def repo(store_settings):
    settings = store_settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(db)
    yield JobRepository(db)
    db.dispose()


def _create(repo: JobRepository, tenant: str = "t1", key: str | None = None, **kw):
    values = {
        "tenant": tenant,
        "job_type": "diagnostics.noop",
        "params": {"a": 1},
        "params_hash": "h1",
        "runner": "local",
        "max_attempts": 2,
        "idempotency_key": key,
    }
    values.update(kw)
    return repo.create(**values)


def test_create_and_get(repo: JobRepository) -> None:
    job, created = _create(repo)
    assert created
    assert job.id.startswith("job-") and len(job.id) == 20
    assert job.status is JobStatus.QUEUED and job.attempts == 0
    fetched = repo.get(job.id, tenant="t1")
    assert fetched.params == {"a": 1}
    assert fetched.created_at.tzinfo is not None


def test_get_is_tenant_scoped(repo: JobRepository) -> None:
    job, _ = _create(repo, tenant="t1")
    with pytest.raises(NotFound):
        repo.get(job.id, tenant="t2")
    with pytest.raises(NotFound):
        repo.get("job-doesnotexist00", tenant="t1")
    assert repo.get(job.id, tenant=None).id == job.id


def test_idempotency_key_returns_the_existing_job(repo: JobRepository) -> None:
    first, created_first = _create(repo, key="k1")
    second, created_second = _create(repo, key="k1")
    other_tenant, created_other = _create(repo, tenant="t2", key="k1")
    assert created_first and not created_second and created_other
    assert second.id == first.id
    assert other_tenant.id != first.id


def test_concurrent_idempotent_creates_make_one_job(repo: JobRepository) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _create(repo, key="race"), range(16)))
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_list_filters_and_paginates_newest_first(repo: JobRepository) -> None:
    made = [_create(repo, job_type=f"type{i % 2}")[0] for i in range(7)]
    _create(repo, tenant="other")
    seen = []
    cursor = None
    while True:
        page = repo.list_page(tenant="t1", limit=3, cursor=cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [job.id for job in seen] == [job.id for job in reversed(made)]
    only = repo.list_page(tenant="t1", types=["type1"], limit=50)
    assert {job.type for job in only.items} == {"type1"} and len(only.items) == 3
    queued = repo.list_page(tenant="t1", statuses=[JobStatus.RUNNING], limit=50)
    assert queued.items == ()
    with pytest.raises(InvalidInput):
        repo.list_page(tenant="t1", cursor="not-a-cursor!")


def test_claim_is_exclusive(repo: JobRepository) -> None:
    job, _ = _create(repo)
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda i: repo.claim(job.id, worker_id=f"w{i}"), range(8)))
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    assert winners[0].status is JobStatus.RUNNING and winners[0].attempts == 1
    assert winners[0].started_at is not None and winners[0].heartbeat_at is not None


def test_attempt_fences_writes(repo: JobRepository) -> None:
    job, _ = _create(repo)
    claimed = repo.claim(job.id, worker_id="w1")
    assert claimed is not None
    assert repo.heartbeat(job.id, attempt=1, fraction=0.5, message="half").owned
    assert repo.get(job.id, tenant="t1").progress_fraction == 0.5
    # A stale attempt number can neither heartbeat nor finish.
    assert not repo.heartbeat(job.id, attempt=2).owned
    assert not repo.finish(job.id, attempt=2, status=JobStatus.COMPLETED, result={})
    assert repo.finish(job.id, attempt=1, status=JobStatus.COMPLETED, result={"x": 1})
    done = repo.get(job.id, tenant="t1")
    assert done.status is JobStatus.COMPLETED and done.result == {"x": 1}
    assert done.progress_fraction == 1.0 and done.finished_at is not None
    # Completing twice is impossible.
    assert not repo.finish(job.id, attempt=1, status=JobStatus.FAILED)
    assert repo.claim(job.id, worker_id="w2") is None


def test_cancel_queued_running_and_finished(repo: JobRepository) -> None:
    queued, _ = _create(repo)
    cancelled = repo.request_cancel(queued.id, tenant="t1")
    assert cancelled.status is JobStatus.CANCELLED
    assert repo.claim(queued.id, worker_id="w") is None

    running, _ = _create(repo)
    repo.claim(running.id, worker_id="w")
    asked = repo.request_cancel(running.id, tenant="t1")
    assert asked.status is JobStatus.RUNNING and asked.cancel_requested
    assert repo.heartbeat(running.id, attempt=1).cancel_requested

    with pytest.raises(JobNotCancellable):
        repo.request_cancel(queued.id, tenant="t1")
    with pytest.raises(NotFound):
        repo.request_cancel(running.id, tenant="t2")


def test_recover_requeues_then_fails(repo: JobRepository) -> None:
    job, _ = _create(repo, max_attempts=2)
    lost = JobError("worker_lost", "gone")
    repo.claim(job.id, worker_id="w")
    assert repo.recover(job.id, attempt=1, error=lost) is RecoveryOutcome.REQUEUED
    assert repo.get(job.id, tenant="t1").status is JobStatus.QUEUED
    # The lost attempt can no longer write.
    assert not repo.finish(job.id, attempt=1, status=JobStatus.COMPLETED)
    repo.claim(job.id, worker_id="w")
    assert repo.recover(job.id, attempt=2, error=lost) is RecoveryOutcome.FAILED
    failed = repo.get(job.id, tenant="t1")
    assert failed.status is JobStatus.FAILED and failed.error == lost
    assert repo.recover(job.id, attempt=2, error=lost) is RecoveryOutcome.UNCHANGED


def test_recover_without_retry_and_with_cancel_request(repo: JobRepository) -> None:
    limit = JobError("time_limit", "too slow")
    job, _ = _create(repo, max_attempts=5)
    repo.claim(job.id, worker_id="w")
    assert repo.recover(job.id, attempt=None, error=limit, retry=False) is RecoveryOutcome.FAILED
    assert repo.get(job.id, tenant="t1").error == limit

    other, _ = _create(repo)
    repo.claim(other.id, worker_id="w")
    repo.request_cancel(other.id, tenant="t1")
    assert repo.recover(other.id, attempt=1, error=limit) is RecoveryOutcome.CANCELLED

    never_started, _ = _create(repo)
    assert repo.recover(never_started.id, attempt=None, error=limit) is RecoveryOutcome.REQUEUED


def test_release_does_not_count_the_attempt(repo: JobRepository) -> None:
    job, _ = _create(repo)
    repo.claim(job.id, worker_id="w")
    assert repo.release(job.id)
    released = repo.get(job.id, tenant="t1")
    assert released.status is JobStatus.QUEUED and released.attempts == 0


def test_running_with_stale_heartbeat(repo: JobRepository) -> None:
    job, _ = _create(repo)
    repo.claim(job.id, worker_id="w")
    assert repo.running(heartbeat_before=utcnow() - timedelta(seconds=60)) == []
    stale = repo.running(heartbeat_before=utcnow() + timedelta(seconds=1))
    assert [j.id for j in stale] == [job.id]


def test_touch_queued_returns_each_job_once_per_period(repo: JobRepository) -> None:
    job, _ = _create(repo, runner="celery")
    _create(repo, runner="local")
    later = utcnow() + timedelta(seconds=1)
    assert [j.id for j in repo.touch_queued(runner="celery", updated_before=later)] == [job.id]
    assert repo.touch_queued(runner="celery", updated_before=utcnow() - timedelta(seconds=5)) == []


def test_counts(repo: JobRepository) -> None:
    _create(repo)
    _create(repo)
    job, _ = _create(repo, job_type="other")
    repo.claim(job.id, worker_id="w")
    assert repo.counts() == {("diagnostics.noop", "queued"): 2, ("other", "running"): 1}
