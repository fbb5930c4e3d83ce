"""Training family (snake_case, the seed's dialect): ``/train`` and ``/algorithms``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from mlworker.api.routes.jobs import IdempotencyKey
from mlworker.api.security import ServicesDep, TenantDep, authenticate
from mlworker.api.waiting import respond, wants_async
from mlworker.errors import NotFound
from mlworker.services.training import TrainParams
from mlworker.training.algorithms import ALGORITHMS, ALIASES, Task, available_algorithms

router = APIRouter(tags=["training"], dependencies=[Depends(authenticate)])

PreferHeader = Annotated[
    str | None,
    Header(alias="Prefer", description="`respond-async` answers 202 with a jobId at once."),
]


class TrainRequest(TrainParams):
    """``POST /train``: the train parameters plus ``async``."""

    run_async: bool = Field(False, alias="async")


@router.post(
    "/train",
    responses={202: {"description": "Accepted as a job (async: true or Prefer: respond-async)"}},
)
async def train(
    body: TrainRequest,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Train a model and answer with its id and held-out metrics (a job underneath)."""
    params = TrainParams(**body.model_dump(exclude={"run_async"}))
    submission = await run_in_threadpool(
        lambda: services.studies.submit_train(
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


@router.get("/algorithms")
def algorithms() -> dict[str, list[str]]:
    """Installed algorithms that train, grouped by task (the seed's shape)."""
    grouped: dict[str, list[str]] = {task.value: [] for task in Task}
    for name, algorithm in available_algorithms().items():
        grouped[algorithm.task.value].append(name)
    return grouped


@router.get("/algorithms/{name}")
def algorithm(name: str) -> dict[str, Any]:
    """Task, defaults and search space of one algorithm."""
    entry = ALGORITHMS.get(ALIASES.get(name, name))
    if entry is None or not entry.available:
        raise NotFound(f"algorithm {name[:100]!r} is not available", field="name")
    return entry.describe()
