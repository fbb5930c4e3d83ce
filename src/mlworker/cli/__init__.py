"""The ``mlworker`` command line (typer + rich)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

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
        int | None, typer.Option(help="Local pool size (env MLWORKER_WORKERS).")
    ] = None,
) -> None:
    """Start the HTTP server: migrates the database, starts the job runner, serves the API."""
    import uvicorn

    from mlworker.main import create_app

    settings = _settings(host=host, port=port, executor=executor, workers=workers)
    try:
        application = create_app(settings)
    except MLWorkerError as exc:
        fail(exc.message)
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    )

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
