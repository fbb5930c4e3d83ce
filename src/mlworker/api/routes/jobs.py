"""Jobs: status, listing, cancellation, and generic submission."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from mlworker.api.schemas import JobCreate, JobList, JobRead, JobSubmitted
from mlworker.api.security import ServicesDep, TenantDep, authenticate
from mlworker.jobs.values import JobStatus
from mlworker.services.jobs import Submission

router = APIRouter(tags=["jobs"], dependencies=[Depends(authenticate)])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Repeat a job-creating request safely: the same key returns the same job.",
    ),
]

#: Deepest page any list serves: beyond every real listing, and far inside the 64-bit integers
#: the databases take (a larger offset was a 500 from the driver, not a 422).
MAX_OFFSET = 1_000_000_000

Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description=f"Items to skip (at most {MAX_OFFSET:,}).")
]


def accepted(submission: Submission, response: Response) -> JobSubmitted:
    """Shape the 202 answer every job-creating route gives."""
    response.headers["Location"] = f"/status/{submission.job.id}"
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    return JobSubmitted.of(submission.job)


@router.get("/status/{job_id}", response_model=JobRead)
def job_status(job_id: str, tenant: TenantDep, services: ServicesDep) -> JobRead:
    """Status, progress, result or error of one job."""
    return JobRead.of(services.jobs.get(job_id, tenant=tenant))


@router.get("/jobs", response_model=JobList)
def list_jobs(
    tenant: TenantDep,
    services: ServicesDep,
    status: Annotated[list[JobStatus] | None, Query(description="Filter by status")] = None,
    type: Annotated[list[str] | None, Query(description="Filter by job type")] = None,  # noqa: A002
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobList:
    """List the tenant's jobs, newest first; pass ``nextCursor`` back as ``cursor`` for more."""
    page = services.jobs.list(
        tenant=tenant, statuses=status or (), types=type or (), limit=limit, cursor=cursor
    )
    return JobList(items=[JobRead.of(job) for job in page.items], next_cursor=page.next_cursor)


@router.post("/jobs", status_code=202, response_model=JobSubmitted)
def submit_job(
    body: JobCreate,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobSubmitted:
    """Submit a job of any declared type with its parameters."""
    submission = services.jobs.submit(
        tenant=tenant, job_type=body.type, params=body.params, idempotency_key=idempotency_key
    )
    return accepted(submission, response)


@router.post("/jobs/{job_id}/cancel", response_model=JobRead)
def cancel_job(job_id: str, tenant: TenantDep, services: ServicesDep) -> JobRead:
    """Cancel a queued job now, or a running one at its next progress report."""
    return JobRead.of(services.jobs.cancel(job_id, tenant=tenant))
