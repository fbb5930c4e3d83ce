"""Schema migrations (Alembic), run at start-up and by ``mlworker db upgrade``.

Our version table is ``mlw_alembic_version`` so it never collides with the platform's own
``alembic_version`` when both live in one PostgreSQL database. On PostgreSQL an advisory lock
serialises concurrent upgrades (N replicas starting at once); SQLite's ``BEGIN IMMEDIATE`` does the
same there.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from mlworker.errors import DatabaseUnavailable
from mlworker.store.db import Database

VERSION_TABLE = "mlw_alembic_version"
_MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every ML Worker process.
_ADVISORY_LOCK_ID = 0x6D6C776B


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _run(db: Database, action: str, revision: str) -> None:
    try:
        _migrate(db, action, revision)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise DatabaseUnavailable(
            f"cannot migrate {db.redacted_url}: the database is unavailable ({exc.orig})"
        ) from exc


def _migrate(db: Database, action: str, revision: str) -> None:
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            if db.schema:
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            connection.commit()
        try:
            config = _config(connection)
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _ADVISORY_LOCK_ID}
                )
                connection.commit()


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    _run(db, "upgrade", revision)


def downgrade(db: Database, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` drops every ML Worker table)."""
    _run(db, "downgrade", revision)


def current_revision(db: Database) -> str | None:
    """Return the revision the database is at, or ``None`` before the first upgrade."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    """Return the newest revision shipped with this version of ML Worker."""
    return ScriptDirectory(str(_MIGRATIONS)).get_current_head()
