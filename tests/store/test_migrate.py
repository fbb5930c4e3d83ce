"""Migrations: upgrade → downgrade → upgrade on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from mlworker.store import migrate
from mlworker.store.db import Database
from mlworker.store.migrate import VERSION_TABLE
from mlworker.store.records import Base

OUR_TABLES = {table.name for table in Base.metadata.sorted_tables}


def _tables(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names(schema=db.schema))


def test_upgrade_downgrade_upgrade(store_settings) -> None:
    settings = store_settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    try:
        assert migrate.current_revision(db) is None
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        assert OUR_TABLES <= _tables(db)
        assert {
            "mlw_jobs",
            "mlw_datasets",
            "mlw_models",
            "mlw_model_versions",
            "mlw_audit_log",
        } <= (_tables(db))

        migrate.downgrade(db, "base")
        assert migrate.current_revision(db) is None
        assert not (OUR_TABLES & _tables(db))

        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        assert OUR_TABLES <= _tables(db)
    finally:
        db.dispose()


def test_upgrade_is_idempotent_and_uses_our_version_table(store_settings) -> None:
    settings = store_settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    try:
        migrate.upgrade(db)
        migrate.upgrade(db)
        tables = _tables(db)
        assert VERSION_TABLE in tables
        assert "alembic_version" not in tables  # never collide with the platform's own
    finally:
        db.dispose()


def test_schema_matches_the_models(store_settings) -> None:
    """The migration creates exactly what the ORM declares (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    settings = store_settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    try:
        migrate.upgrade(db)
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE, "compare_type": False}
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_one_champion_per_tenant_and_family_is_enforced(store_settings) -> None:
    from sqlalchemy.exc import IntegrityError

    from mlworker.store.records import ModelRecord, utcnow

    settings = store_settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(db)

    def model(model_id: str, status: str, tenant: str = "t1") -> ModelRecord:
        return ModelRecord(
            id=model_id,
            tenant=tenant,
            key=model_id,
            name=model_id,
            kind="scorecard",
            family="offers",
            config={},
            status="active",
            registry_status=status,
            latest_version=0,
            created_at=utcnow(),
            updated_at=utcnow(),
        )

    try:
        with db.session() as session:
            session.add_all(
                [model("m1", "champion"), model("m2", "challenger"), model("m3", "champion", "t2")]
            )
        try:
            with db.session() as session:
                session.add(model("m4", "champion"))
        except IntegrityError:
            pass
        else:
            raise AssertionError("a second champion in one family was accepted")
    finally:
        db.dispose()
