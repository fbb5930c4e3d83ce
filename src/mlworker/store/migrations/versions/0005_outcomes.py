"""Outcome log, offer evidence tallies, shadow scores, scheduled-training slots.

``mlw_outcomes`` keeps every outcome ``POST /api/v1/outcomes`` recorded (idempotent per tenant
and key), with the bookkeeping of models that learn from it in batches. ``mlw_offer_evidence``
holds each offer's running interaction and positive counts for smoothing and the maturity ramp.
``mlw_shadow_scores`` logs what shadow models scored; ``mlw_scheduled_trainings`` the latest
schedule slot each scheduled learner was submitted for.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
LOG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mlw_outcomes",
        sa.Column("id", LOG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=40), nullable=True),
        sa.Column("model_key", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("offer_id", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.Float(), nullable=False),
        sa.Column("outcome_type", sa.String(length=100), nullable=True),
        sa.Column("customer_attributes", JSON, nullable=False),
        sa.Column("offer_attributes", JSON, nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("buffered", sa.Boolean(), nullable=False),
        sa.Column("claimed_at", TIMESTAMP, nullable=True),
        sa.Column("applied_revision", sa.Integer(), nullable=True),
        sa.CheckConstraint("outcome IN (0, 1)", name=op.f("ck_mlw_outcomes_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlw_outcomes")),
        sa.UniqueConstraint(
            "tenant", "idempotency_key", name="uq_mlw_outcomes_tenant_idempotency_key"
        ),
    )
    with op.batch_alter_table("mlw_outcomes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mlw_outcomes_tenant_model_occurred",
            ["tenant", "model_key", "occurred_at"],
            unique=False,
        )
        batch_op.create_index("ix_mlw_outcomes_tenant_offer", ["tenant", "offer_id"], unique=False)
        batch_op.create_index(
            "ix_mlw_outcomes_pending",
            ["tenant", "model_key", "id"],
            unique=False,
            sqlite_where=sa.text("buffered = 1 AND applied_revision IS NULL"),
            postgresql_where=sa.text("buffered AND applied_revision IS NULL"),
        )

    op.create_table(
        "mlw_offer_evidence",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("offer_id", sa.String(length=255), nullable=False),
        sa.Column("interactions", sa.BigInteger(), nullable=False),
        sa.Column("positives", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "offer_id", name=op.f("pk_mlw_offer_evidence")),
    )

    op.create_table(
        "mlw_shadow_scores",
        sa.Column("id", LOG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("offer_id", sa.String(length=255), nullable=False),
        sa.Column("model_key", sa.String(length=255), nullable=False),
        sa.Column("model_id", sa.String(length=40), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("served_model_key", sa.String(length=255), nullable=True),
        sa.Column("served_score", sa.Float(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlw_shadow_scores")),
    )
    with op.batch_alter_table("mlw_shadow_scores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mlw_shadow_scores_tenant_model_created",
            ["tenant", "model_key", "created_at"],
            unique=False,
        )

    op.create_table(
        "mlw_scheduled_trainings",
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("last_slot", TIMESTAMP, nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["mlw_models.id"],
            name=op.f("fk_mlw_scheduled_trainings_model_id_mlw_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_mlw_scheduled_trainings")),
    )


def downgrade() -> None:
    op.drop_table("mlw_scheduled_trainings")
    with op.batch_alter_table("mlw_shadow_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_mlw_shadow_scores_tenant_model_created")
    op.drop_table("mlw_shadow_scores")
    op.drop_table("mlw_offer_evidence")
    with op.batch_alter_table("mlw_outcomes", schema=None) as batch_op:
        batch_op.drop_index("ix_mlw_outcomes_pending")
        batch_op.drop_index("ix_mlw_outcomes_tenant_offer")
        batch_op.drop_index("ix_mlw_outcomes_tenant_model_occurred")
    op.drop_table("mlw_outcomes")
