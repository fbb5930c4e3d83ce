"""Synchronous answers for job-backed endpoints (``/train``, ``/optimize``).

The seed's clients expect ``200`` with the result, so these endpoints run a job and wait for it
without holding a thread: the wait polls the job row from the event loop, backing off from
20 ms to a tenth of a second (so a search's ``timeout`` holds for the whole request).
``async: true`` or ``Prefer: respond-async`` skips the wait (202), and a wait longer than
``MLWORKER_SYNC_WAIT_SECONDS`` also ends in 202 with the job id.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlworker.api.admission import leave_admission
from mlworker.api.routes.jobs import accepted
from mlworker.errors import error_from_code
from mlworker.jobs.values import JobStatus
from mlworker.services.container import Services
from mlworker.services.jobs import Submission


def wants_async(flag: bool, prefer: str | None) -> bool:
    """Whether the client asked for a 202 instead of waiting."""
    return flag or "respond-async" in (prefer or "").lower()


async def respond(
    services: Services,
    submission: Submission,
    *,
    tenant: str,
    run_async: bool,
    response: Response,
) -> Any:
    """202 with the job id, or wait for the job and answer with its result (or its error)."""
    if run_async:
        return JSONResponse(
            accepted(submission, response).model_dump(by_alias=True),
            status_code=202,
            headers=dict(response.headers),
        )
    # From here the request only waits for the job (in the pool, not this process): its
    # admission slot goes back, so a long training does not shut scoring out.
    leave_admission()
    deadline = time.monotonic() + services.settings.sync_wait_seconds
    delay = 0.02
    job = submission.job
    while not job.status.finished:
        if time.monotonic() >= deadline:
            return JSONResponse(
                accepted(submission, response).model_dump(by_alias=True),
                status_code=202,
                headers=dict(response.headers),
            )
        await asyncio.sleep(delay)
        delay = min(0.1, delay * 1.5)
        job = await run_in_threadpool(services.jobs.get, job.id, tenant=tenant)
    if job.status is JobStatus.COMPLETED:
        return JSONResponse({**(job.result or {}), "job_id": job.id})
    error = job.error
    if error is None:  # pragma: no cover - a finished, failed job always records why
        raise RuntimeError(f"job {job.id} ended {job.status} without an error")
    failure = error_from_code(error.code, error.message, error.field)
    failure.extra["job_id"] = job.id
    raise failure
