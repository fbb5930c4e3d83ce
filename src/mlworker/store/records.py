"""ORM rows. They never leave ``store/``: repositories turn them into domain values.

Every table carries the ``mlw_`` prefix so ours never clash with the platform's when both share a
PostgreSQL database (ARCHITECTURE.md §6).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
#: ``failed``/``deleted`` belong to trained estimators; the rest are the seed's algorithm-model
#: statuses (``paused``, ``archived`` and ``error`` added by migration 0004).
MODEL_STATUSES = (
    "draft",
    "training",
    "active",
    "paused",
    "archived",
    "error",
    "failed",
    "deleted",
)
REGISTRY_STATUSES = ("draft", "shadow", "challenger", "champion", "archived")

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Timezone-aware now in UTC: the only clock the store uses."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive on SQLite) on the way in."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use utcnow()")
        value = value.astimezone(UTC)
        # SQLite keeps text and compares it lexically: one format, no offset suffix.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC on the way out."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations are deterministic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, datetime: UTCDateTime}


class JobRecord(Base):
    """One job (ARCHITECTURE.md §5). The row is the only source of truth for its state."""

    __tablename__ = "mlw_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]]
    params_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    progress_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    runner: Mapped[str] = mapped_column(String(16))
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("tenant", "idempotency_key", name="uq_mlw_jobs_tenant_idempotency_key"),
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        CheckConstraint("progress_fraction >= 0 AND progress_fraction <= 1", name="progress"),
        Index("ix_mlw_jobs_tenant_created", "tenant", "created_at", "id"),
        Index("ix_mlw_jobs_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_mlw_jobs_tenant_status", "tenant", "status"),
    )


class DatasetRecord(Base):
    """An uploaded dataset: its stored file and the profile measured when it arrived."""

    __tablename__ = "mlw_datasets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class ModelRecord(Base):
    """A model in the one registry: trained estimators, scoring engines, text classifiers."""

    __tablename__ = "mlw_models"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(50))
    family: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    registry_status: Mapped[str] = mapped_column(String(16))
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    # Algorithm models (kind "algorithm_model", migration 0004); other kinds leave them empty.
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    model_type: Mapped[str | None] = mapped_column(String(50))
    spec: Mapped[dict[str, Any] | None]
    metrics_history: Mapped[list[Any] | None] = mapped_column(JSONType)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("tenant", "key", name="uq_mlw_models_tenant_key"),
        CheckConstraint(f"status IN {MODEL_STATUSES!r}", name="status"),
        CheckConstraint(f"registry_status IN {REGISTRY_STATUSES!r}", name="registry_status"),
        Index("ix_mlw_models_tenant_kind", "tenant", "kind"),
        # At most one champion per tenant and family, enforced by the database itself.
        Index(
            "uq_mlw_models_one_champion",
            "tenant",
            "family",
            unique=True,
            sqlite_where=text("registry_status = 'champion'"),
            postgresql_where=text("registry_status = 'champion'"),
        ),
    )


class ModelVersionRecord(Base):
    """A numbered, immutable version of a model and the artifact that holds it."""

    __tablename__ = "mlw_model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("mlw_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    artifact_uri: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_format: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_mlw_model_versions_model_version"),
    )


class EngineStateRecord(Base):
    """The live learned parameters (``modelState``) of one algorithm model.

    ``revision`` grows with every change (a training, a batch of outcomes, a reset, a config
    edit), so a process caching a built engine knows from one small read whether it is current.
    """

    __tablename__ = "mlw_engine_states"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("mlw_models.id", ondelete="CASCADE"), primary_key=True
    )
    tenant: Mapped[str] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]]
    pending_updates: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class AuditLogRecord(Base):
    """Who changed what, from which state to which, and why."""

    __tablename__ = "mlw_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_mlw_audit_log_entity", "tenant", "entity_type", "entity_id"),)


class StudyRecord(Base):
    """A hyperparameter search: our tenant-scoped handle on an Optuna study."""

    __tablename__ = "mlw_studies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    algorithm: Mapped[str] = mapped_column(String(100))
    task: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(255))
    scoring: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    n_trials: Mapped[int] = mapped_column(Integer)
    best_value: Mapped[float | None] = mapped_column(Float)
    best_params: Mapped[dict[str, Any] | None]
    summary: Mapped[dict[str, Any] | None]
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(40))
    model_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed', 'failed')", name="status"),
        Index("ix_mlw_studies_tenant_created", "tenant", "created_at"),
    )


class SegmentAssignmentRecord(Base):
    """One row's segment from a segmentation job (``writeAssignments: "table"``)."""

    __tablename__ = "mlw_segment_assignments"

    job_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    row_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    row_key: Mapped[str | None] = mapped_column(String(255))
    cluster_id: Mapped[int] = mapped_column(Integer)
    segment_name: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("ix_mlw_segment_assignments_tenant_job", "tenant", "job_id"),)


#: Row ids of the append-only logs: 64-bit on PostgreSQL, SQLite's rowid alias there.
LogId = BigInteger().with_variant(Integer(), "sqlite")


class OutcomeRecord(Base):
    """One recorded outcome (``POST /api/v1/outcomes``, migration 0005): the outcome log.

    ``buffered`` marks outcomes an auto-learning model applies in batches; ``claimed_at`` is set
    while one process applies them and ``applied_revision`` (the engine state revision that
    includes them) once it has. Outcomes of scheduled learners stay unbuffered: a retraining
    reads the whole log.
    """

    __tablename__ = "mlw_outcomes"

    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str | None] = mapped_column(String(40))
    model_key: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[str] = mapped_column(String(255))
    offer_id: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[float] = mapped_column(Float)
    outcome_type: Mapped[str | None] = mapped_column(String(100))
    customer_attributes: Mapped[dict[str, Any]]
    offer_attributes: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    buffered: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_at: Mapped[datetime | None]
    applied_revision: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint(
            "tenant", "idempotency_key", name="uq_mlw_outcomes_tenant_idempotency_key"
        ),
        CheckConstraint("outcome IN (0, 1)", name="outcome"),
        Index("ix_mlw_outcomes_tenant_model_occurred", "tenant", "model_key", "occurred_at"),
        Index("ix_mlw_outcomes_tenant_offer", "tenant", "offer_id"),
        # Only the not-yet-applied buffered outcomes: counting them stays cheap however long
        # the log grows.
        Index(
            "ix_mlw_outcomes_pending",
            "tenant",
            "model_key",
            "id",
            sqlite_where=text("buffered = 1 AND applied_revision IS NULL"),
            postgresql_where=text("buffered AND applied_revision IS NULL"),
        ),
    )


class OfferEvidenceRecord(Base):
    """Running tallies of an offer's recorded outcomes: the evidence behind smoothing and ramp.

    Kept up to date in the transaction that records outcomes, so scoring reads one row per
    offer instead of counting the log.
    """

    __tablename__ = "mlw_offer_evidence"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    offer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    interactions: Mapped[int] = mapped_column(BigInteger)
    positives: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class ShadowScoreRecord(Base):
    """What a shadow model scored for a served candidate; shadow scores are never served."""

    __tablename__ = "mlw_shadow_scores"

    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[str] = mapped_column(String(255))
    offer_id: Mapped[str] = mapped_column(String(255))
    model_key: Mapped[str] = mapped_column(String(255))
    model_id: Mapped[str | None] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    served_model_key: Mapped[str | None] = mapped_column(String(255))
    served_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_mlw_shadow_scores_tenant_model_created", "tenant", "model_key", "created_at"),
    )


class ScheduledTrainingRecord(Base):
    """The latest schedule slot a scheduled learner was submitted for (one row per model)."""

    __tablename__ = "mlw_scheduled_trainings"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("mlw_models.id", ondelete="CASCADE"), primary_key=True
    )
    tenant: Mapped[str] = mapped_column(String(100))
    last_slot: Mapped[datetime]
    job_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime]
