"""Row ↔ value mapping, keyset cursors and the fenced update behind every job transition."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from mlworker.errors import InvalidInput
from mlworker.jobs.values import Job, JobError, JobStatus
from mlworker.store.records import JobRecord


def to_job(row: JobRecord) -> Job:
    """Turn a job row into the value the rest of the code sees."""
    return Job(
        id=row.id,
        tenant=row.tenant,
        type=row.type,
        params=row.params,
        status=JobStatus(row.status),
        progress_fraction=row.progress_fraction,
        progress_message=row.progress_message,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        runner=row.runner,
        cancel_requested=row.cancel_requested,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        worker_id=row.worker_id,
        result=row.result,
        error=JobError.from_dict(row.error) if row.error else None,
        idempotency_key=row.idempotency_key,
        params_hash=row.params_hash,
    )


def update_running(
    session: Session, job_id: str, attempt: int | None, values: dict[str, Any]
) -> bool:
    """Update a running job, only if ``attempt`` (when given) still owns it."""
    conditions = [JobRecord.id == job_id, JobRecord.status == JobStatus.RUNNING.value]
    if attempt is not None:
        conditions.append(JobRecord.attempts == attempt)
    result = session.execute(
        update(JobRecord)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def encode_cursor(job: Job) -> str:
    """Opaque keyset cursor pointing just past ``job`` (newest-first order)."""
    raw = json.dumps([job.created_at.isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; :class:`InvalidInput` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, job_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), str(job_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not one this server issued", field="cursor") from exc
