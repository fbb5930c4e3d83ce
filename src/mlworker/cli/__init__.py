"""The ``mlworker`` command line (typer + rich)."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from mlworker.cli import analysis, datasets, jobs, training
from mlworker.cli.client import fail
from mlworker.config import Settings, load_settings
from mlworker.errors import ConfigurationError, MLWorkerError

app = typer.Typer(
    name="mlworker",
    help="ML Worker: analysis jobs, training, scoring and text classification in one service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage the metadata database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(jobs.app, name="jobs")
app.add_typer(datasets.app, name="datasets")
app.command("train")(training.train)
app.command("optimize")(training.optimize)
app.command("analyze")(analysis.analyze)


if TYPE_CHECKING:
    from mlworker.store.db import Database


@contextmanager
def _database() -> Iterator[Database]:
    """Open the configured metadata store for a ``db`` command; report failures plainly."""
    from mlworker.store.db import Database

    settings = _settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    try:
        yield db
    except MLWorkerError as exc:
        fail(exc.message)
    finally:
        db.dispose()


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        fail(str(exc), code=2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (env HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env ML_WORKER_PORT or PORT).")] = None,
    executor: Annotated[
        str | None, typer.Option(help="Job runner: local or celery (env MLWORKER_EXECUTOR).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="HTTP server processes (env MLWORKER_SERVER_WORKERS, default 1)."),
    ] = None,
    pool_size: Annotated[
        int | None,
        typer.Option(
            help="Local job pool processes, shared by all server processes (env MLWORKER_WORKERS)."
        ),
    ] = None,
) -> None:
    """Start the HTTP server: migrates the database, starts the job runner, serves the API."""
    settings = _settings(
        host=host, port=port, executor=executor, workers=pool_size, server_workers=workers
    )
    if settings.server_workers == 1:
        _serve_one(settings)
    else:
        _serve_many(
            settings,
            {
                "MLWORKER_EXECUTOR": executor,
                "MLWORKER_WORKERS": None if pool_size is None else str(pool_size),
                "MLWORKER_SERVER_WORKERS": None if workers is None else str(workers),
            },
        )


def _drain_seconds(settings: Settings) -> int:
    """Seconds uvicorn waits for requests in flight; the rest of the grace closes the services."""
    grace = settings.shutdown_grace_seconds
    return max(1, math.floor(grace - min(3.0, grace / 2)))


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": _drain_seconds(settings),
    }


def _serve_one(settings: Settings) -> None:
    """One server process; the app's lifespan migrates the store and owns the job pool."""
    import uvicorn

    from mlworker.main import create_served_app

    try:
        application = create_served_app(settings)
    except MLWorkerError as exc:
        fail(exc.message)
    grace = settings.shutdown_grace_seconds

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if not self.should_exit:
                _exit_after(grace)
            super().handle_exit(sig, frame)

    server = _Server(uvicorn.Config(application, **_uvicorn_options(settings)))

    def _stop(signum: int, frame: FrameType | None) -> None:
        # uvicorn handles SIGINT/SIGTERM while it serves, then re-raises the signal once it has
        # shut down; under the default SIGTERM action that re-raise would kill the process (exit
        # 143) after a clean shutdown. A signal before uvicorn takes over still stops it.
        server.should_exit = True

    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, _stop)
    server.run()
    if not server.started:
        fail("the server did not start", code=3)


def _exit_after(seconds: float) -> None:
    """Backstop of the grace period: end the process if a clean shutdown takes longer.

    The drain and the services' close are each bounded; this only catches what is not (a stuck
    request, a hung database). Jobs the pool still held are then recovered at the next start,
    as after a crash.
    """

    def _expire() -> None:
        log = structlog.get_logger(__name__)
        log.error("shutdown exceeded its grace period; exiting", grace_seconds=seconds)
        os._exit(1)

    timer = threading.Timer(seconds, _expire)
    timer.daemon = True
    timer.start()


def _serve_many(settings: Settings, overrides: dict[str, str | None]) -> None:
    """N server processes on one listening socket (uvicorn's supervisor, app factory).

    The parent migrates the store first, so the processes never race to migrate it. Each
    process runs its own slice of the job pool; a job is claimed with one conditional update, so
    a job submitted in one process and re-offered by another (restart, recovery) still runs once.
    """
    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess

    from mlworker.logs import configure_logging
    from mlworker.store import migrate
    from mlworker.store.db import Database

    configure_logging(settings)
    settings.data_root.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url, schema=settings.database_schema)
    try:
        migrate.upgrade(db)
    except MLWorkerError as exc:
        fail(exc.message)
    finally:
        db.dispose()
    # Spawned server processes build their settings from the environment: pass the options on.
    os.environ.update({name: value for name, value in overrides.items() if value is not None})
    config = uvicorn.Config(
        "mlworker.main:create_served_app",
        factory=True,
        workers=settings.server_workers,
        **_uvicorn_options(settings),
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    grace = settings.shutdown_grace_seconds

    def _join_within_grace() -> None:
        # uvicorn waits for its processes without a bound; the grace period is the bound.
        deadline = time.monotonic() + grace
        for process in supervisor.processes:
            process.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.process.is_alive():
                process.kill()
                process.process.join(timeout=5)

    supervisor.join_all = _join_within_grace  # type: ignore[method-assign]
    supervisor.run()


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default MLWORKER_WORKERS).")
    ] = None,
    beat: Annotated[
        bool,
        typer.Option(
            "--beat",
            help="Also run Celery beat: ticks scheduled retraining (run it on one worker).",
        ),
    ] = False,
) -> None:
    """Start a Celery worker for scaled-out mode (needs MLWORKER_BROKER_URL)."""
    from mlworker.jobs.celery_runner import run_worker
    from mlworker.logs import configure_logging

    settings = _settings()
    if not settings.broker_url:
        fail("MLWORKER_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)", code=2)
    configure_logging(settings)
    run_worker(
        settings,
        concurrency=concurrency or settings.workers,
        loglevel=settings.log_level,
        beat=beat,
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(metavar="REVISION", help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: newest)."""
    from mlworker.store import migrate

    with _database() as db:
        migrate.upgrade(db, revision)
        typer.echo(f"{db.redacted_url}: at revision {migrate.current_revision(db)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Argument(metavar="REVISION", help="Target revision ('base' drops every table).")
    ],
) -> None:
    """Revert migrations down to REVISION."""
    from mlworker.store import migrate

    with _database() as db:
        migrate.downgrade(db, revision)
        typer.echo(f"{db.redacted_url}: at revision {migrate.current_revision(db)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one this version ships."""
    from mlworker.store import migrate

    with _database() as db:
        typer.echo(f"current: {migrate.current_revision(db)}  head: {migrate.head_revision()}")


def main() -> None:
    """Console-script entry point."""
    app()
