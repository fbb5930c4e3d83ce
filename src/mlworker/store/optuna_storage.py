"""Where Optuna keeps studies: the service's own database, in a place of its own.

By default studies live next to the metadata (``OPTUNA_STORAGE`` overrides the URL):

- **PostgreSQL**: in their own schema (``mlw_optuna``, or ``<MLWORKER_DATABASE_SCHEMA>_optuna``),
  created if missing. Optuna's tables (``studies``, ``trials`` … and its own
  ``alembic_version``) then never meet the platform's tables or ours, and every worker on every
  machine attaches to the same studies.
- **SQLite**: a separate file beside the metadata file (``var/mlworker.db`` →
  ``var/mlworker-optuna.db``), in WAL mode, with a 30 s busy timeout and write transactions that
  take the write lock up front (``BEGIN IMMEDIATE``), so processes running trials of one study
  wait for each other instead of failing with "database is locked".
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from mlworker.config import Settings, normalise_database_url
from mlworker.errors import DatabaseUnavailable

SCHEMA = "mlw_optuna"
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
_storages: dict[tuple[str, str | None], optuna.storages.BaseStorage] = {}
_lock = threading.Lock()


def storage_schema(settings: Settings) -> str:
    """Return the PostgreSQL schema holding Optuna's tables.

    Examples
    --------
    >>> from mlworker.config import Settings
    >>> storage_schema(Settings(_env_file=None, database_schema="tenant_a"))
    'tenant_a_optuna'
    """
    return f"{settings.database_schema}_optuna" if settings.database_schema else SCHEMA


def storage_url(settings: Settings) -> str:
    """Return the Optuna storage URL: ``OPTUNA_STORAGE``, else derived from ``DATABASE_URL``.

    Examples
    --------
    >>> from mlworker.config import Settings
    >>> storage_url(Settings(_env_file=None, database_url="sqlite:///./var/mlworker.db"))
    'sqlite:///var/mlworker-optuna.db'
    """
    if settings.optuna_storage:
        return normalise_database_url(settings.optuna_storage)
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return url.render_as_string(hide_password=False)
    path = Path(url.database)
    sibling = path.with_name(f"{path.stem}-optuna{path.suffix or '.db'}")
    return url.set(database=str(sibling)).render_as_string(hide_password=False)


def _sqlite_engine_kwargs(url: URL) -> dict[str, Any]:
    database = url.database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as connection:
            connection.execute("PRAGMA journal_mode=WAL")  # persistent: set once per file
    # Python's sqlite3 opens "BEGIN IMMEDIATE" before the first write of a transaction: the
    # write lock is awaited (busy timeout) up front instead of failing on upgrade.
    return {
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "isolation_level": "IMMEDIATE"}
    }


def _relax_sync(storage: optuna.storages.RDBStorage) -> None:
    """WAL with ``synchronous=NORMAL``: a commit no longer waits for the disk (safe in WAL)."""

    @event.listens_for(storage.engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    storage.engine.dispose()  # connections opened while creating the tables lack it


def _postgres_engine_kwargs(url: str, schema: str) -> dict[str, Any]:
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
    return {
        "connect_args": {"connect_timeout": 5, "options": f"-csearch_path={schema}"},
        "pool_pre_ping": True,
    }


def open_storage(settings: Settings) -> optuna.storages.BaseStorage:
    """Return this process's Optuna storage for ``settings`` (created once, then reused).

    Raises
    ------
    DatabaseUnavailable
        The database cannot be reached.
    """
    url = storage_url(settings)
    parsed = make_url(url)
    schema = storage_schema(settings) if parsed.get_backend_name() == "postgresql" else None
    key = (url, schema)
    with _lock:
        if key in _storages:
            return _storages[key]
        try:
            if parsed.get_backend_name() == "sqlite":
                kwargs = _sqlite_engine_kwargs(parsed)
            elif schema is not None:
                kwargs = _postgres_engine_kwargs(url, schema)
            else:
                kwargs = {}
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            if parsed.get_backend_name() == "sqlite":
                _relax_sync(storage)
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sqlite3.OperationalError) as exc:
            raise DatabaseUnavailable(
                f"the Optuna storage is unavailable ({type(exc).__name__})"
            ) from exc
        _storages[key] = storage
        return storage


def delete_study(storage: optuna.storages.BaseStorage, study_name: str) -> None:
    """Delete ``study_name`` if it exists (a retried job starts its study over)."""
    try:
        optuna.delete_study(study_name=study_name, storage=storage)
    except KeyError:
        pass
