"""Decisioning family (camelCase, seed 003): ``POST /api/v1/score`` and ``POST /api/v1/outcomes``.

Both routes are plain ``def``: FastAPI runs them in its thread pool, so scoring (NumPy) and the
database never block the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Response
from fastapi.responses import JSONResponse

from mlworker.api.routes.jobs import IdempotencyKey
from mlworker.api.security import ServicesDep, TenantDep, authenticate
from mlworker.services.decisioning import ScoreRequest
from mlworker.services.outcomes import OutcomesRequest

router = APIRouter(prefix="/api/v1", tags=["decisioning"], dependencies=[Depends(authenticate)])


@router.post("/score")
def score_offers(
    body: Annotated[ScoreRequest, Body()], tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    """Score candidate offers for one customer.

    Per offer: model resolution (champion/challenger, offer → category → channel → default),
    the model's score or a degraded fallback (pre-computed propensity, then priority),
    propensity smoothing toward ``priority / 100`` by the offer's evidence, and the maturity
    ramp's deterministic ``exposed`` flag (unexposed offers are returned, flagged). Sorted by
    ``score``, highest first.
    """
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    answer = services.decisioning.score(
        body, tenant=tenant, request_id=str(request_id) if request_id else None
    )
    # Plain JSON already; rendering it directly skips re-validating an untyped dict (hot path).
    return JSONResponse(answer)


@router.post("/outcomes", status_code=201)
def record_outcomes(
    body: Annotated[OutcomesRequest, Body()],
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Record outcomes (idempotently) and feed them to the models that learn from them.

    ``201`` when something new was recorded, ``200`` when every outcome was a duplicate. With
    an ``Idempotency-Key`` header, outcomes without their own key get ``<key>:<position>``.
    """
    answer = services.outcomes.record(body, tenant=tenant, idempotency_key=idempotency_key)
    if answer["recorded"] == 0:
        response.status_code = 200
    return answer
