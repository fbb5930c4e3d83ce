"""Initial schema: jobs, datasets, model registry, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types, so later model edits never change this migration.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mlw_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=100), nullable=False),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlw_audit_log")),
    )
    with op.batch_alter_table("mlw_audit_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mlw_audit_log_entity", ["tenant", "entity_type", "entity_id"], unique=False
        )

    op.create_table(
        "mlw_datasets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("columns", JSON, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlw_datasets")),
    )
    with op.batch_alter_table("mlw_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mlw_datasets_tenant"), ["tenant"], unique=False)

    op.create_table(
        "mlw_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress_fraction", sa.Float(), nullable=False),
        sa.Column("progress_message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("runner", sa.String(length=16), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_mlw_jobs_status"),
        ),
        sa.CheckConstraint(
            "progress_fraction >= 0 AND progress_fraction <= 1", name=op.f("ck_mlw_jobs_progress")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlw_jobs")),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_mlw_jobs_tenant_idempotency_key"),
    )
    with op.batch_alter_table("mlw_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mlw_jobs_status_heartbeat", ["status", "heartbeat_at"], unique=False
        )
        batch_op.create_index(
            "ix_mlw_jobs_tenant_created", ["tenant", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_mlw_jobs_tenant_status", ["tenant", "status"], unique=False)

    op.create_table(
        "mlw_models",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("family", sa.String(length=200), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("registry_status", sa.String(length=16), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "registry_status IN ('draft', 'shadow', 'challenger', 'champion', 'archived')",
            name=op.f("ck_mlw_models_registry_status"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'training', 'active', 'failed', 'deleted')",
            name=op.f("ck_mlw_models_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlw_models")),
        sa.UniqueConstraint("tenant", "key", name="uq_mlw_models_tenant_key"),
    )
    with op.batch_alter_table("mlw_models", schema=None) as batch_op:
        batch_op.create_index("ix_mlw_models_tenant_kind", ["tenant", "kind"], unique=False)
        batch_op.create_index(
            "uq_mlw_models_one_champion",
            ["tenant", "family"],
            unique=True,
            sqlite_where=sa.text("registry_status = 'champion'"),
            postgresql_where=sa.text("registry_status = 'champion'"),
        )

    op.create_table(
        "mlw_model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("artifact_format", sa.String(length=32), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("dataset_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["mlw_models.id"],
            name=op.f("fk_mlw_model_versions_model_id_mlw_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlw_model_versions")),
        sa.UniqueConstraint("model_id", "version", name="uq_mlw_model_versions_model_version"),
    )


def downgrade() -> None:
    op.drop_table("mlw_model_versions")
    with op.batch_alter_table("mlw_models", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_mlw_models_one_champion",
            sqlite_where=sa.text("registry_status = 'champion'"),
            postgresql_where=sa.text("registry_status = 'champion'"),
        )
        batch_op.drop_index("ix_mlw_models_tenant_kind")

    op.drop_table("mlw_models")
    with op.batch_alter_table("mlw_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_mlw_jobs_tenant_status")
        batch_op.drop_index("ix_mlw_jobs_tenant_created")
        batch_op.drop_index("ix_mlw_jobs_status_heartbeat")

    op.drop_table("mlw_jobs")
    with op.batch_alter_table("mlw_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mlw_datasets_tenant"))

    op.drop_table("mlw_datasets")
    with op.batch_alter_table("mlw_audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_mlw_audit_log_entity")

    op.drop_table("mlw_audit_log")
