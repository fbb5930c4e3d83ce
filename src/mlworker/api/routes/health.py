"""Health, readiness and metrics: open to every caller (no API key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from mlworker.api.problems import problem
from mlworker.api.schemas import HealthRead, ReadinessRead
from mlworker.api.security import ServicesDep
from mlworker.services.capabilities import available_capabilities

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthRead)
async def health() -> HealthRead:
    """Liveness, and the capabilities this installation has (the seed clients read this)."""
    return HealthRead(status="ok", capabilities=available_capabilities())


@router.get(
    "/health/ready",
    response_model=ReadinessRead,
    responses={503: {"description": "A dependency is down (problem+json lists the checks)"}},
)
def ready(services: ServicesDep) -> ReadinessRead | JSONResponse:
    """Readiness: the metadata database answers and the runner (broker) can take jobs."""
    checks = services.readiness()
    if all(value == "ok" for value in checks.values()):
        return ReadinessRead(status="ready", checks=checks)
    failing = ", ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
    return problem(
        503,
        "not_ready",
        "Not ready",
        failing,
        instance="/health/ready",
        headers={"Retry-After": "5"},
        checks=checks,
    )


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
