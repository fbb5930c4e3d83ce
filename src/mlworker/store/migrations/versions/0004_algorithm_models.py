"""Algorithm models: their columns on mlw_models, the seed's statuses, live engine states.

Algorithm models (seed 003) are ``mlw_models`` rows of kind ``algorithm_model``; they add a
description, the engine's ``model_type``, a ``spec`` (target, predictors, learning, outcome
weights, interaction features, evolution thresholds) and ``metrics_history``. The status CHECK
is widened to the seed's statuses (``paused``, ``archived``, ``error``); ``key`` grows to 255
characters. ``mlw_engine_states`` holds each model's live learned state and its revision.

SQLite cannot alter a CHECK constraint, so the table is rebuilt (batch mode): copied, dropped,
renamed. With foreign keys on, dropping ``mlw_models`` would cascade into
``mlw_model_versions``, and a migration runs inside a transaction where ``PRAGMA foreign_keys``
cannot be switched off; the version rows are therefore set aside and put back around the
rebuild. The one-champion partial index is dropped and created again explicitly rather than
trusting reflection to keep its ``WHERE`` clause.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

_OLD_STATUSES = "status IN ('draft', 'training', 'active', 'failed', 'deleted')"
_NEW_STATUSES = (
    "status IN ('draft', 'training', 'active', 'paused', 'archived', 'error', 'failed', 'deleted')"
)
_CHAMPION = sa.text("registry_status = 'champion'")
_VERSIONS_BACKUP = "mlw_tmp_0004_model_versions"
_NEW_COLUMNS = ("metrics_history", "spec", "model_type", "description")


@contextmanager
def _versions_kept() -> Iterator[None]:
    """On SQLite, keep ``mlw_model_versions`` rows across a rebuild of ``mlw_models``."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute(f"CREATE TABLE {_VERSIONS_BACKUP} AS SELECT * FROM mlw_model_versions")
    yield
    if sqlite:
        op.execute("DELETE FROM mlw_model_versions")
        op.execute(f"INSERT INTO mlw_model_versions SELECT * FROM {_VERSIONS_BACKUP}")
        op.execute(f"DROP TABLE {_VERSIONS_BACKUP}")


def _rebuild_models(
    status_check: str, key_length: int, old_key_length: int, *, drop_columns: bool = False
) -> None:
    with op.batch_alter_table("mlw_models", schema=None) as batch_op:
        batch_op.drop_index("uq_mlw_models_one_champion")
    with _versions_kept(), op.batch_alter_table("mlw_models", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_mlw_models_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_mlw_models_status"), sa.text(status_check))
        batch_op.alter_column(
            "key",
            existing_type=sa.String(length=old_key_length),
            type_=sa.String(length=key_length),
            existing_nullable=False,
        )
        if drop_columns:
            for column in _NEW_COLUMNS:
                batch_op.drop_column(column)
    with op.batch_alter_table("mlw_models", schema=None) as batch_op:
        batch_op.create_index(
            "uq_mlw_models_one_champion",
            ["tenant", "family"],
            unique=True,
            sqlite_where=_CHAMPION,
            postgresql_where=_CHAMPION,
        )


def upgrade() -> None:
    with op.batch_alter_table("mlw_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("model_type", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("spec", JSON, nullable=True))
        batch_op.add_column(sa.Column("metrics_history", JSON, nullable=True))
    _rebuild_models(_NEW_STATUSES, key_length=255, old_key_length=200)

    op.create_table(
        "mlw_engine_states",
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("pending_updates", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["mlw_models.id"],
            name=op.f("fk_mlw_engine_states_model_id_mlw_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_mlw_engine_states")),
    )


def downgrade() -> None:
    op.drop_table("mlw_engine_states")
    # The old schema cannot describe algorithm models (nor their statuses or longer keys): they
    # go, with their version rows; their artifacts stay in the artifact store.
    op.execute(
        "DELETE FROM mlw_model_versions WHERE model_id IN "
        "(SELECT id FROM mlw_models WHERE kind = 'algorithm_model')"
    )
    op.execute("DELETE FROM mlw_models WHERE kind = 'algorithm_model'")
    _rebuild_models(_OLD_STATUSES, key_length=200, old_key_length=255, drop_columns=True)
