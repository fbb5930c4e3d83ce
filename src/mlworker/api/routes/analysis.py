"""Analysis family (camelCase, seed 000): ``POST /analyze/*`` answer 202 with a ``jobId``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from mlworker.api.routes.jobs import IdempotencyKey, Offset, accepted
from mlworker.api.schemas import JobSubmitted
from mlworker.api.security import ServicesDep, TenantDep, authenticate
from mlworker.services.analysis import ContentParams, PolicyParams, SegmentationParams

router = APIRouter(tags=["analysis"], dependencies=[Depends(authenticate)])

_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted; poll `GET /status/{jobId}` for the result"}
}


async def _submit(
    services: Any,
    job: str,
    body: dict[str, Any],
    tenant: str,
    response: Response,
    idempotency_key: str | None,
) -> JobSubmitted:
    submission = await run_in_threadpool(
        lambda: services.analysis.submit(job, body, tenant=tenant, idempotency_key=idempotency_key)
    )
    return accepted(submission, response)


@router.post("/analyze/segments", status_code=202, response_model=JobSubmitted, responses=_ACCEPTED)
async def analyze_segments(
    body: Annotated[SegmentationParams, Body()],
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobSubmitted:
    """Segment customers: K-Means with k chosen by silhouette, profiles, names and rules."""
    raw = body.model_dump(by_alias=True, exclude_unset=True)
    return await _submit(services, "segmentation", raw, tenant, response, idempotency_key)


@router.post("/analyze/policies", status_code=202, response_model=JobSubmitted, responses=_ACCEPTED)
async def analyze_policies(
    body: Annotated[PolicyParams, Body()],
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobSubmitted:
    """Contact frequency vs response, sweet spot, channel performance, policy drafts."""
    raw = body.model_dump(by_alias=True, exclude_unset=True)
    return await _submit(services, "policy_analysis", raw, tenant, response, idempotency_key)


@router.post("/analyze/content", status_code=202, response_model=JobSubmitted, responses=_ACCEPTED)
async def analyze_content(
    body: Annotated[ContentParams, Body()],
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobSubmitted:
    """Find what drives creative performance: TF-IDF terms, attributes, insights, peers."""
    raw = body.model_dump(by_alias=True, exclude_unset=True)
    return await _submit(services, "content_analysis", raw, tenant, response, idempotency_key)


@router.get("/analyze/segments/{job_id}/assignments")
def segment_assignments(
    job_id: str,
    tenant: TenantDep,
    services: ServicesDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Every row's segment from a segmentation job that wrote assignments, a page at a time."""
    return services.analysis.assignments(
        job_id[:40],
        tenant=tenant,
        offset=offset,
        limit=limit,
        data_root=services.settings.data_root,
        outputs=services.settings.outputs,
    )
