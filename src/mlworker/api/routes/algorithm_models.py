"""Algorithm models (seed 003, camelCase): CRUD, training, scoring, lifecycle, advice.

Every route is a plain ``def``: each one reads or writes the metadata store and scoring is CPU
work, so FastAPI runs them in its threadpool and the event loop never blocks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import JSONResponse

from mlworker.api.routes.jobs import IdempotencyKey, Offset, accepted
from mlworker.api.schemas import JobSubmitted
from mlworker.api.security import ServicesDep, TenantDep, authenticate
from mlworker.errors import InvalidInput
from mlworker.services.algorithm_requests import (
    AlgorithmModelCreate,
    AlgorithmModelUpdate,
    ModelType,
    PromoteRequest,
    RegistryStatus,
    ScoreRequest,
    Status,
    TrainRequest,
)

PREFIX = "/api/v1/algorithm-models"
router = APIRouter(prefix=PREFIX, tags=["algorithm models"], dependencies=[Depends(authenticate)])


def _actor(tenant: str) -> str:
    return f"tenant:{tenant}"


def _location(model_id: str) -> str:
    return f"{PREFIX}/{model_id}"


@router.post("", status_code=201)
def create_model(
    body: AlgorithmModelCreate, tenant: TenantDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    """Create a model (registry status ``draft``); ``config`` is checked against its engine."""
    model = services.algorithm_models.create(body, tenant=tenant, actor=_actor(tenant))
    response.headers["Location"] = _location(model.id)
    return model.to_api()


@router.get("")
def list_models(
    tenant: TenantDep,
    services: ServicesDep,
    model_type: Annotated[ModelType | None, Query(alias="modelType")] = None,
    registry_status: Annotated[RegistryStatus | None, Query(alias="registryStatus")] = None,
    registry_family: Annotated[str | None, Query(alias="registryFamily", max_length=200)] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """List the tenant's models, newest first, filtered and a page at a time."""
    items, total = services.algorithm_models.page(
        tenant=tenant,
        model_type=model_type,
        registry_status=registry_status,
        family=registry_family,
        status=status,
        limit=limit,
        offset=offset,
    )
    return {
        "items": [model.to_api() for model in items],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.delete("", status_code=204)
def delete_model_by_query(
    tenant: TenantDep,
    services: ServicesDep,
    model_id: Annotated[str | None, Query(alias="id", max_length=100)] = None,
) -> Response:
    """Delete a model permanently (the seed's ``DELETE …?id={id}`` form)."""
    if model_id is None:
        raise InvalidInput("give the model to delete as ?id=", field="id")
    services.algorithm_models.delete(model_id, tenant=tenant, actor=_actor(tenant))
    return Response(status_code=204)


@router.get("/{model_id}")
def get_model(
    model_id: str,
    tenant: TenantDep,
    services: ServicesDep,
    include_state: Annotated[bool, Query(alias="includeState")] = False,
) -> dict[str, Any]:
    """Return one model; ``?includeState=true`` adds its learned parameters (``modelState``)."""
    model = services.algorithm_models.get(model_id, tenant=tenant)
    if not include_state:
        return model.to_api()
    state = services.algorithm_models.model_state(model_id, tenant=tenant)
    return model.to_api(model_state=state)


@router.put("/{model_id}")
def update_model(
    model_id: str, body: AlgorithmModelUpdate, tenant: TenantDep, services: ServicesDep
) -> dict[str, Any]:
    """Replace the fields sent; a body read with GET may be sent back as it is."""
    model = services.algorithm_models.update(model_id, body, tenant=tenant, actor=_actor(tenant))
    return model.to_api()


@router.delete("/{model_id}", status_code=204)
def delete_model(model_id: str, tenant: TenantDep, services: ServicesDep) -> Response:
    """Delete a model permanently, with its versions and their files (the audit log stays)."""
    services.algorithm_models.delete(model_id, tenant=tenant, actor=_actor(tenant))
    return Response(status_code=204)


@router.post("/{model_id}/train", status_code=202, response_model=JobSubmitted)
def train_model(
    model_id: str,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    body: Annotated[TrainRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> JobSubmitted:
    """Train as a job (from ``dataset``, or the model's logged outcomes); poll its Location."""
    request = body or TrainRequest()
    submission = services.algorithm_models.submit_training(
        model_id,
        tenant=tenant,
        actor=_actor(tenant),
        dataset=request.dataset,
        customer_id_column=request.customer_id_column,
        offer_id_column=request.offer_id_column,
        outcome_column=request.outcome_column,
        validation_fraction=request.validation_fraction,
        random_state=request.random_state,
        idempotency_key=idempotency_key,
    )
    return accepted(submission, response)


@router.post("/{model_id}/score")
def score_offers(
    model_id: str, body: ScoreRequest, tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    """Score offers for one customer, highest first; ``explain`` adds ``modelExplanation``."""
    # The answer is plain JSON already: rendering it directly skips FastAPI's re-validation
    # of an untyped dict, which cost more than the scoring itself on this hot path.
    answer = services.algorithm_models.score(
        model_id,
        body.customer_attributes,
        [offer.model_dump() for offer in body.offers],
        tenant=tenant,
        explain=body.explain,
        customer_id=body.customer_id,
        seed=body.seed,
    )
    return JSONResponse(answer)


@router.post("/{model_id}/reset-learning")
def reset_learning(model_id: str, tenant: TenantDep, services: ServicesDep) -> dict[str, Any]:
    """Forget what the model learned: it scores as untrained again (audited)."""
    model = services.algorithm_models.reset_learning(model_id, tenant=tenant, actor=_actor(tenant))
    return model.to_api()


@router.post("/{model_id}/promote")
def promote(
    model_id: str, body: PromoteRequest, tenant: TenantDep, services: ServicesDep
) -> dict[str, Any]:
    """Change the registry status; a new champion demotes the family's current one."""
    model = services.algorithm_models.promote(
        model_id,
        to=body.to,
        tenant=tenant,
        actor=_actor(tenant),
        reason=body.reason,
        demote_to=body.demote_to,
    )
    return model.to_api()


@router.get("/{model_id}/recommendations")
def recommendations(model_id: str, tenant: TenantDep, services: ServicesDep) -> dict[str, Any]:
    """Auto-upgrade advice: each rule of the seed's table, its inputs, whether it fires."""
    return services.algorithm_models.recommendations(model_id, tenant=tenant)


@router.get("/{model_id}/audit")
def audit_trail(model_id: str, tenant: TenantDep, services: ServicesDep) -> dict[str, Any]:
    """Return the model's audit trail, oldest first (kept after the model is deleted)."""
    return {"items": services.algorithm_models.audit_trail(model_id, tenant=tenant)}
