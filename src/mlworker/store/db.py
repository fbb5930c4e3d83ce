"""Engine construction and the scoped session where database errors are translated.

SQLite and PostgreSQL must behave the same. SQLite gets WAL mode, a busy timeout, and write
transactions that start with ``BEGIN IMMEDIATE``: a deferred transaction that later writes can
fail at once with "database is locked" when another process committed in between, whatever the
busy timeout, while an immediate one waits for the writer lock up front.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mlworker.errors import DatabaseUnavailable

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str, *, schema: str | None = None, pool_size: int = 5) -> Engine:
    """Create an engine for ``url`` with the pragmas and options ML Worker relies on.

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:///…`` or ``postgresql+psycopg://…``).
    schema
        PostgreSQL schema holding our tables; becomes the connection's ``search_path``.
    pool_size
        Connections kept open per process (PostgreSQL).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        _install_sqlite_hooks(engine)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if schema:
        connect_args["options"] = f"-csearch_path={schema},public"
    return create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
    )


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One process's handle on the metadata store.

    Parameters
    ----------
    url
        SQLAlchemy URL of the store.
    schema
        Optional PostgreSQL schema for our tables.
    """

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self.engine = create_db_engine(url, schema=schema)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(writer, expire_on_commit=False)

    @property
    def redacted_url(self) -> str:
        """The URL with any password masked, for logs and messages."""
        return _redact(self.url)

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """Open a transaction; commit on success, roll back on error.

        Connection failures become :class:`~mlworker.errors.DatabaseUnavailable`, so callers
        (and the API) see one error whatever the driver.
        """
        factory = self._writes if write else self._reads
        try:
            with factory() as session, session.begin():
                yield session
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise DatabaseUnavailable(
                f"the metadata database is unavailable ({type(exc.orig).__name__})"
            ) from exc
        except sa_exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailable(
                    "the connection to the metadata database was lost"
                ) from exc
            raise

    def ping(self) -> None:
        """Run ``SELECT 1``; raise :class:`~mlworker.errors.DatabaseUnavailable` if it fails."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except sa_exc.SQLAlchemyError as exc:
            raise DatabaseUnavailable("the metadata database is unavailable") from exc

    def dispose(self) -> None:
        """Close every pooled connection (after a fork, or at shutdown)."""
        self.engine.dispose()
