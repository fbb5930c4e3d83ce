"""The job repository: every state transition is one conditional ``UPDATE``.

Transitions name the state they expect (``WHERE status = 'queued'``) and, once a job runs, the
attempt that owns it (``AND attempts = :attempt``). Two workers can therefore never both claim a
job, and an execution that lost its job (its heartbeat went stale and the reaper re-queued it)
cannot overwrite the row any more: the attempt number is a fencing token.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy import exc as sa_exc

from mlworker.errors import JobNotCancellable, NotFound
from mlworker.jobs.values import Job, JobError, JobPage, JobStatus, RecoveryOutcome
from mlworker.store.db import Database
from mlworker.store.job_rows import decode_cursor, encode_cursor, to_job, update_running
from mlworker.store.records import JobRecord, utcnow


def new_job_id() -> str:
    """Return a fresh job id: ``job-`` and 16 hex digits."""
    return f"job-{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class Ownership:
    """Answer to a heartbeat or progress write: whether this attempt still owns the job."""

    owned: bool
    cancel_requested: bool = False


class JobRepository:
    """Jobs in the metadata store.

    Parameters
    ----------
    db
        The process's :class:`~mlworker.store.db.Database`.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- creation and reads --------------------------------------------------------------------
    def create(
        self,
        *,
        tenant: str,
        job_type: str,
        params: dict[str, Any],
        params_hash: str,
        runner: str,
        max_attempts: int,
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """Insert a queued job, or return the one already holding ``idempotency_key``.

        Returns
        -------
        job, created
            ``created`` is false when an existing job was returned.
        """
        if idempotency_key is not None:
            existing = self._by_idempotency_key(tenant, idempotency_key)
            if existing is not None:
                return existing, False
        now = utcnow()
        row = JobRecord(
            id=new_job_id(),
            tenant=tenant,
            type=job_type,
            params=params,
            params_hash=params_hash,
            status=JobStatus.QUEUED.value,
            progress_fraction=0.0,
            progress_message="queued",
            attempts=0,
            max_attempts=max_attempts,
            runner=runner,
            cancel_requested=False,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._db.session() as session:
                session.add(row)
                session.flush()
                return to_job(row), True
        except sa_exc.IntegrityError:
            # Two requests raced with the same key; the other one won.
            if idempotency_key is None:
                raise
            existing = self._by_idempotency_key(tenant, idempotency_key)
            if existing is None:
                raise
            return existing, False

    def _by_idempotency_key(self, tenant: str, key: str) -> Job | None:
        with self._db.session(write=False) as session:
            row = session.scalars(
                select(JobRecord).where(
                    JobRecord.tenant == tenant, JobRecord.idempotency_key == key
                )
            ).one_or_none()
            return to_job(row) if row else None

    def get(self, job_id: str, *, tenant: str | None) -> Job:
        """Return the job; :class:`NotFound` if absent or owned by another tenant."""
        with self._db.session(write=False) as session:
            row = session.get(JobRecord, job_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFound(f"job {job_id!r} not found", field="job_id")
            return to_job(row)

    def list_page(
        self,
        *,
        tenant: str,
        statuses: Sequence[JobStatus] = (),
        types: Sequence[str] = (),
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """List a tenant's jobs, newest first, with keyset pagination."""
        query = select(JobRecord).where(JobRecord.tenant == tenant)
        if statuses:
            query = query.where(JobRecord.status.in_([s.value for s in statuses]))
        if types:
            query = query.where(JobRecord.type.in_(list(types)))
        if cursor:
            created, last_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    JobRecord.created_at < created,
                    and_(JobRecord.created_at == created, JobRecord.id < last_id),
                )
            )
        query = query.order_by(JobRecord.created_at.desc(), JobRecord.id.desc()).limit(limit + 1)
        with self._db.session(write=False) as session:
            jobs = [to_job(row) for row in session.scalars(query)]
        more = len(jobs) > limit
        items = tuple(jobs[:limit])
        return JobPage(items=items, next_cursor=encode_cursor(items[-1]) if more else None)

    def ids_with_status(self, status: JobStatus, *, runner: str | None = None) -> list[str]:
        """Ids of every job in ``status`` (optionally for one runner), oldest first."""
        query = select(JobRecord.id).where(JobRecord.status == status.value)
        if runner is not None:
            query = query.where(JobRecord.runner == runner)
        with self._db.session(write=False) as session:
            return list(session.scalars(query.order_by(JobRecord.created_at)))

    def running(self, *, heartbeat_before: datetime | None = None) -> list[Job]:
        """List running jobs, optionally only those whose heartbeat is older than a cut-off."""
        query = select(JobRecord).where(JobRecord.status == JobStatus.RUNNING.value)
        if heartbeat_before is not None:
            query = query.where(
                or_(JobRecord.heartbeat_at.is_(None), JobRecord.heartbeat_at < heartbeat_before)
            )
        with self._db.session(write=False) as session:
            return [to_job(row) for row in session.scalars(query)]

    def touch_queued(self, *, runner: str, updated_before: datetime) -> list[Job]:
        """Mark queued jobs untouched since ``updated_before`` as re-published; return them.

        Used to re-publish messages a broker may have lost (a Redis restart without
        persistence): each such job is returned at most once per period.
        """
        now = utcnow()
        touched: list[Job] = []
        with self._db.session() as session:
            rows = session.scalars(
                select(JobRecord).where(
                    JobRecord.status == JobStatus.QUEUED.value,
                    JobRecord.runner == runner,
                    JobRecord.updated_at < updated_before,
                )
            ).all()
            for row in rows:
                row.updated_at = now
                touched.append(to_job(row))
        return touched

    def counts(self) -> dict[tuple[str, str], int]:
        """Count jobs per ``(type, status)``, for metrics."""
        query = select(JobRecord.type, JobRecord.status, func.count()).group_by(
            JobRecord.type, JobRecord.status
        )
        with self._db.session(write=False) as session:
            return {(t, s): int(n) for t, s, n in session.execute(query)}

    def delete(self, job_id: str) -> None:
        """Remove a job that was never handed to a runner (its submission failed)."""
        with self._db.session() as session:
            session.execute(delete(JobRecord).where(JobRecord.id == job_id))

    # --- transitions ---------------------------------------------------------------------------
    def claim(self, job_id: str, *, worker_id: str) -> Job | None:
        """Move a queued job to running for ``worker_id``; ``None`` if it is not queued."""
        now = utcnow()
        with self._db.session() as session:
            claimed = session.execute(
                update(JobRecord)
                .where(
                    JobRecord.id == job_id,
                    JobRecord.status == JobStatus.QUEUED.value,
                    JobRecord.cancel_requested.is_(False),
                )
                .values(
                    status=JobStatus.RUNNING.value,
                    attempts=JobRecord.attempts + 1,
                    worker_id=worker_id,
                    heartbeat_at=now,
                    started_at=now,
                    updated_at=now,
                    progress_message="running",
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get(JobRecord, job_id, populate_existing=True)
            assert row is not None
            return to_job(row)

    def heartbeat(
        self,
        job_id: str,
        *,
        attempt: int,
        fraction: float | None = None,
        message: str | None = None,
    ) -> Ownership:
        """Refresh the heartbeat (and progress, when given) of the attempt that owns the job."""
        values: dict[str, Any] = {"heartbeat_at": utcnow(), "updated_at": utcnow()}
        if fraction is not None:
            values["progress_fraction"] = min(1.0, max(0.0, fraction))
        if message is not None:
            values["progress_message"] = message
        with self._db.session() as session:
            if not update_running(session, job_id, attempt, values):
                return Ownership(owned=False)
            cancel = session.scalar(
                select(JobRecord.cancel_requested).where(JobRecord.id == job_id)
            )
            return Ownership(owned=True, cancel_requested=bool(cancel))

    def finish(
        self,
        job_id: str,
        *,
        attempt: int,
        status: JobStatus,
        result: dict[str, Any] | None = None,
        error: JobError | None = None,
    ) -> bool:
        """Record the outcome of the owning attempt; false if it no longer owns the job."""
        if not status.finished:
            raise ValueError(f"{status} is not a terminal status")
        now = utcnow()
        values: dict[str, Any] = {
            "status": status.value,
            "result": result,
            "error": error.to_dict() if error else None,
            "finished_at": now,
            "updated_at": now,
            "progress_message": status.value,
        }
        if status is JobStatus.COMPLETED:
            values["progress_fraction"] = 1.0
        with self._db.session() as session:
            return update_running(session, job_id, attempt, values)

    def request_cancel(self, job_id: str, *, tenant: str | None) -> Job:
        """Cancel a queued job now, or ask a running one to stop at its next progress report.

        Raises
        ------
        NotFound
            Unknown job, or another tenant's.
        JobNotCancellable
            The job already finished.
        """
        now = utcnow()
        with self._db.session() as session:
            row = session.get(JobRecord, job_id, with_for_update=True)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFound(f"job {job_id!r} not found", field="job_id")
            status = JobStatus(row.status)
            if status.finished:
                raise JobNotCancellable(f"job {job_id!r} already {status.value}", field="job_id")
            row.cancel_requested = True
            row.updated_at = now
            if status is JobStatus.QUEUED:
                row.status = JobStatus.CANCELLED.value
                row.finished_at = now
                row.progress_message = "cancelled"
                row.error = JobError("cancelled", "cancelled before it started").to_dict()
            else:
                row.progress_message = "cancelling"
            session.flush()
            return to_job(row)

    def release(self, job_id: str, *, attempt: int | None = None) -> bool:
        """Put a running job back in the queue without counting the attempt (orderly shutdown).

        ``attempt=None`` releases whatever attempt runs; a server uses it for its own pool.
        """
        values = {
            "status": JobStatus.QUEUED.value,
            "attempts": JobRecord.attempts - 1,
            "worker_id": None,
            "heartbeat_at": None,
            "updated_at": utcnow(),
            "progress_message": "re-queued: its server shut down",
        }
        with self._db.session() as session:
            return update_running(session, job_id, attempt, values)

    def recover(
        self,
        job_id: str,
        *,
        attempt: int | None,
        error: JobError,
        retry: bool = True,
    ) -> RecoveryOutcome:
        """Deal with a job whose worker vanished: re-queue it, or fail it with ``error``.

        Parameters
        ----------
        attempt
            The attempt believed lost; ``None`` when it never started (a queued job).
        error
            Recorded when the job is failed (``worker_lost``, ``time_limit``).
        retry
            Whether another attempt is allowed at all (false for time limits).
        """
        now = utcnow()
        with self._db.session() as session:
            row = session.get(JobRecord, job_id, with_for_update=True)
            if row is None:
                return RecoveryOutcome.UNCHANGED
            status = JobStatus(row.status)
            if status is JobStatus.QUEUED:
                return RecoveryOutcome.REQUEUED if attempt is None else RecoveryOutcome.UNCHANGED
            if status is not JobStatus.RUNNING or (attempt is not None and row.attempts != attempt):
                return RecoveryOutcome.UNCHANGED
            row.updated_at = now
            row.heartbeat_at = None
            if row.cancel_requested:
                row.status = JobStatus.CANCELLED.value
                row.finished_at = now
                row.progress_message = "cancelled"
                row.error = JobError("cancelled", "cancelled; its worker stopped").to_dict()
                return RecoveryOutcome.CANCELLED
            if retry and row.attempts < row.max_attempts:
                row.status = JobStatus.QUEUED.value
                row.worker_id = None
                row.progress_message = f"re-queued after {error.code} (attempt {row.attempts})"
                return RecoveryOutcome.REQUEUED
            row.status = JobStatus.FAILED.value
            row.finished_at = now
            row.progress_message = "failed"
            row.error = error.to_dict()
            return RecoveryOutcome.FAILED
