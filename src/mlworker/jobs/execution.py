"""The one wrapper around every job: claim, heartbeat, run, record the outcome.

Every runner (local pool, Celery, inline) calls :func:`execute_job` with nothing but a job id;
the job row says everything else. Claiming is a conditional update, so a job delivered twice
(broker redelivery, reaper re-queue) runs once per attempt and completes at most once.
"""

from __future__ import annotations

import time
import traceback

import structlog
from pydantic import ValidationError

from mlworker.errors import (
    InvalidInput,
    JobCancelled,
    JobTimeLimitExceeded,
    MLWorkerError,
    OutOfMemory,
)
from mlworker.jobs.context import Heartbeat, JobContext, JobLost
from mlworker.jobs.registry import get_job_type
from mlworker.jobs.runtime import WorkerRuntime
from mlworker.jobs.values import JobError, JobStatus
from mlworker.serialization import json_safe

log = structlog.get_logger(__name__)


def _validation_error(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return InvalidInput(f"{field}: {first['msg']}", field=field or None)


def execute_job(
    job_id: str,
    runtime: WorkerRuntime,
    *,
    time_limit_errors: tuple[type[BaseException], ...] = (),
) -> JobStatus | None:
    """Run job ``job_id`` if it is still queued, and record how it ended.

    Parameters
    ----------
    job_id
        The job to run.
    runtime
        The executing process's resources.
    time_limit_errors
        Exceptions the executor raises inside the job when its time limit passes (Celery's
        ``SoftTimeLimitExceeded``); they are recorded as ``time_limit``.

    Returns
    -------
    JobStatus or None
        The final status written, or ``None`` when the job was not ours to run (already claimed,
        finished or cancelled) or was taken away mid-run.
    """
    job = runtime.jobs.claim(job_id, worker_id=runtime.worker_id)
    if job is None:
        log.debug("job not claimable; skipping", job_id=job_id)
        return None
    with structlog.contextvars.bound_contextvars(
        job_id=job.id, tenant=job.tenant, job_type=job.type, attempt=job.attempts
    ):
        context = JobContext(job, runtime)
        started = time.perf_counter()
        log.info("job started")
        status, result, error = _run(context, time_limit_errors)
        if status is None:
            log.warning("job lost to another attempt; outcome discarded")
            return None
        written = runtime.jobs.finish(
            job.id, attempt=job.attempts, status=status, result=result, error=error
        )
        elapsed = round(time.perf_counter() - started, 4)
        if not written:
            log.warning("job no longer owned; outcome discarded", status=status.value)
            return None
        if error is not None:
            log.info("job ended", status=status.value, seconds=elapsed, error_code=error.code)
        else:
            log.info("job ended", status=status.value, seconds=elapsed)
        return status


def _run(
    context: JobContext, time_limit_errors: tuple[type[BaseException], ...]
) -> tuple[JobStatus | None, dict[str, object] | None, JobError | None]:
    settings = context.settings
    try:
        declared = get_job_type(context.job.type, allow_diagnostic=True)
        try:
            params = declared.params.model_validate(context.job.params)
        except ValidationError as exc:
            raise _validation_error(exc) from exc
        with Heartbeat(context, settings.heartbeat_seconds):
            output = declared.func(params, context)
        return JobStatus.COMPLETED, json_safe(dict(output)), None
    except JobLost:
        return None, None, None
    except JobCancelled as exc:
        return JobStatus.CANCELLED, None, JobError(exc.code, exc.message)
    except time_limit_errors as exc:
        limit = JobTimeLimitExceeded(f"stopped after its time limit ({type(exc).__name__})")
        return JobStatus.FAILED, None, JobError(limit.code, limit.message)
    except MLWorkerError as exc:
        return JobStatus.FAILED, None, JobError(exc.code, exc.message, exc.field)
    except MemoryError:
        log.error("job ran out of memory")
        memory = OutOfMemory("the job ran out of memory")
        return JobStatus.FAILED, None, JobError(memory.code, memory.message)
    except Exception as exc:
        log.error("job raised", exc_info=True)
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
        message = f"{type(exc).__name__}: {exc}{where}"
        return JobStatus.FAILED, None, JobError("internal_error", message)
