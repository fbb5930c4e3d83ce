"""Alembic environment: runs on the connection handed over by :mod:`mlworker.store.migrate`."""

from __future__ import annotations

from alembic import context

from mlworker.store.migrate import VERSION_TABLE
from mlworker.store.records import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
