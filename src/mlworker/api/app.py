"""Build the FastAPI application: middleware, error mapping, routers, lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from mlworker import __version__
from mlworker.api.admission import AdmissionMiddleware
from mlworker.api.metrics import ApiMetrics
from mlworker.api.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    StrictJSONMiddleware,
)
from mlworker.api.openapi import install_api_docs
from mlworker.api.problems import install_problem_handlers
from mlworker.api.routes import (
    algorithm_models,
    analysis,
    datasets,
    decisioning,
    health,
    jobs,
    models,
    training,
    tuning,
)
from mlworker.config import Settings, load_settings
from mlworker.logs import configure_logging
from mlworker.services.container import Services

#: Paths whose ``POST`` carries a file upload: larger body limit, admission slots of their own.
UPLOAD_PATHS = ("/datasets",)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app. Connections open in the lifespan, never at import or build time.

    Parameters
    ----------
    settings
        Configuration; read from the environment when omitted.
    """
    settings = settings or load_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services(settings)
        await run_in_threadpool(services.start)
        app.state.services = services
        try:
            yield
        finally:
            await run_in_threadpool(services.close)

    app = FastAPI(
        title="ML Worker",
        version=__version__,
        summary="Analysis jobs, training, propensity scoring and text classification.",
        lifespan=lifespan,
        # Served by install_api_docs instead, behind the API key when keys are set.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = ApiMetrics(lambda: app.state.services.job_repository.counts())
    install_problem_handlers(app)
    install_api_docs(app)
    # Innermost: sees the body after the size limit has been applied to it.
    app.add_middleware(StrictJSONMiddleware, limit=int(settings.max_request_bytes))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Prefer"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        limit=int(settings.max_request_bytes),
        upload_limit=int(settings.max_upload_bytes),
        upload_paths=UPLOAD_PATHS,
    )
    # Inside the request context, so a shed request is logged, counted and carries its id.
    app.add_middleware(
        AdmissionMiddleware,
        max_concurrent=settings.max_concurrent_requests,
        max_queued=settings.max_queued_requests,
        queue_wait_seconds=settings.queue_wait_seconds,
        max_concurrent_uploads=settings.max_concurrent_uploads,
        upload_paths=UPLOAD_PATHS,
    )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(datasets.router)
    app.include_router(training.router)
    app.include_router(tuning.router)
    app.include_router(models.router)
    app.include_router(analysis.router)
    app.include_router(algorithm_models.router)
    app.include_router(decisioning.router)
    return app


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for a long-lived server process (the factory of ``mlworker serve``).

    Everything imported and built by now (libraries, routes, schemas) lives as long as the
    process, so it is moved out of the garbage collector's reach: collections while serving no
    longer walk it, and neither does the interpreter's final collection, which otherwise took
    seconds of the shutdown grace period.

    Parameters
    ----------
    settings
        Configuration; read from the environment when omitted (each process of
        ``mlworker serve --workers N`` reads its own).
    """
    app = create_app(settings)
    gc.freeze()
    return app
