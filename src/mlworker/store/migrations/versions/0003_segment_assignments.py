"""Segment assignments: every row's segment from a segmentation job.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlw_segment_assignments",
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("row_key", sa.String(length=255), nullable=True),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("segment_name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "row_number", name=op.f("pk_mlw_segment_assignments")),
    )
    with op.batch_alter_table("mlw_segment_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mlw_segment_assignments_tenant_job", ["tenant", "job_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mlw_segment_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_mlw_segment_assignments_tenant_job")
    op.drop_table("mlw_segment_assignments")
