"""Health, readiness and metrics: open to every caller (no API key), never queued behind work.

``/health`` and ``/health/ready`` are ``async`` and bypass admission control, so neither waits
for a thread that scoring holds: a liveness probe answers in milliseconds at any load. Readiness
checks the database and the broker on a thread of its own; probes arriving while a check runs
share its answer.
"""

from __future__ import annotations

import asyncio
from functools import cache

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from mlworker.api.problems import problem
from mlworker.api.schemas import HealthRead, ReadinessRead
from mlworker.services.capabilities import available_capabilities
from mlworker.services.container import Services

router = APIRouter(tags=["health"])


@cache
def _capabilities() -> tuple[str, ...]:
    # Installed modules do not change while the process runs; probing them costs file lookups.
    return tuple(available_capabilities())


class ReadinessCheck:
    """Run a :class:`Services`' readiness checks, one at a time, off the shared thread pool.

    The check runs under a limiter of its own, so it never waits for a thread that a route
    holds, and probes that arrive while a check runs share its answer instead of starting more
    (a slow database delays the probes, it does not pile checks onto it).

    Parameters
    ----------
    services
        Whose ``readiness()`` to run.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self._running: asyncio.Future[dict[str, str]] | None = None
        self._limiter = anyio.CapacityLimiter(1)

    async def checks(self) -> dict[str, str]:
        """Return the result of the check in flight, or of a new one."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._check())
        # Shielded: a probe that hangs up does not cancel the check the others wait for.
        return await asyncio.shield(self._running)

    async def _check(self) -> dict[str, str]:
        return await anyio.to_thread.run_sync(self.services.readiness, limiter=self._limiter)


def _readiness(request: Request) -> ReadinessCheck:
    state = request.app.state
    check: ReadinessCheck | None = getattr(state, "readiness_check", None)
    if check is None or check.services is not state.services:
        check = state.readiness_check = ReadinessCheck(state.services)
    return check


@router.get("/health", response_model=HealthRead)
async def health() -> HealthRead:
    """Liveness, and the capabilities this installation has (the seed clients read this)."""
    return HealthRead(status="ok", capabilities=list(_capabilities()))


@router.get(
    "/health/ready",
    response_model=ReadinessRead,
    responses={503: {"description": "A dependency is down (problem+json lists the checks)"}},
)
async def ready(request: Request) -> ReadinessRead | JSONResponse:
    """Readiness: the metadata database answers and the runner (broker) can take jobs."""
    checks = await _readiness(request).checks()
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
