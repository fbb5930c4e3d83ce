"""Hyperparameter search (training family, snake_case): ``/optimize`` and ``/study/{id}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from mlworker.api.routes.jobs import IdempotencyKey
from mlworker.api.routes.training import PreferHeader
from mlworker.api.security import ServicesDep, TenantDep, authenticate
from mlworker.api.waiting import respond, wants_async
from mlworker.services.optimize_request import OptimizeParams

router = APIRouter(tags=["training"], dependencies=[Depends(authenticate)])


class OptimizeRequest(OptimizeParams):
    """``POST /optimize``: the search parameters plus ``async``."""

    run_async: bool = Field(False, alias="async")


@router.post(
    "/optimize",
    responses={202: {"description": "Accepted as a job (async: true or Prefer: respond-async)"}},
)
async def optimize(
    body: OptimizeRequest,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Search hyperparameters; answer with the best ones and the study id (a job underneath).

    ``algorithm: "auto"`` searches every installed algorithm of the task. ``timeout`` bounds
    the whole request; ``train_best`` also trains the best parameters and returns ``model_id``.
    """
    params = OptimizeParams(**body.model_dump(exclude={"run_async"}))
    submission = await run_in_threadpool(
        lambda: services.studies.submit(
            tenant=tenant, params=params, idempotency_key=idempotency_key
        )
    )
    return await respond(
        services,
        submission,
        tenant=tenant,
        run_async=wants_async(body.run_async, prefer),
        response=response,
    )


@router.get("/study/{study_id}")
def study(study_id: str, tenant: TenantDep, services: ServicesDep) -> dict[str, Any]:
    """Return the study, every trial and the parameter importances.

    Each trial has its state, parameters (``/train`` names), value, duration, per-fold values
    and failure reason: enough to draw the optimisation history.
    """
    return services.studies.get(study_id, tenant=tenant)


@router.get("/study/{study_id}/best")
def best(study_id: str, tenant: TenantDep, services: ServicesDep) -> dict[str, Any]:
    """Return the best trial so far: parameters ready for ``/train``, score, algorithm."""
    return services.studies.best(study_id, tenant=tenant)
