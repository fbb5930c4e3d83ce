"""Shared pieces of the algorithm model repositories: row → value, the one query, audit rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from mlworker.errors import NotFound
from mlworker.registry.values import ALGORITHM_MODEL_KIND, AlgorithmModel
from mlworker.store.models import find_row
from mlworker.store.records import (
    AuditLogRecord,
    EngineStateRecord,
    ModelRecord,
    ModelVersionRecord,
    utcnow,
)

ENTITY_TYPE = "algorithm_model"


def model_value(
    row: ModelRecord, revision: int | None, pending: int | None, metrics: dict[str, Any] | None
) -> AlgorithmModel:
    return AlgorithmModel(
        id=row.id,
        tenant=row.tenant,
        key=row.key,
        name=row.name,
        description=row.description,
        model_type=str(row.model_type),
        family=row.family,
        config=dict(row.config),
        status=row.status,
        registry_status=row.registry_status,
        spec=dict(row.spec or {}),
        state_revision=revision or 0,
        latest_version=row.latest_version,
        metrics=dict(metrics or {}),
        metrics_history=list(row.metrics_history or []),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        pending_updates=pending or 0,
    )


def snapshot_of(row: ModelRecord) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "modelType": row.model_type,
        "status": row.status,
        "registryStatus": row.registry_status,
        "registryFamily": row.family,
        "version": row.latest_version,
    }


def model_query() -> Select[Any]:
    """Models with their state revision and latest metrics: one round trip."""
    return (
        select(
            ModelRecord,
            EngineStateRecord.revision,
            EngineStateRecord.pending_updates,
            ModelVersionRecord.metrics,
        )
        .outerjoin(EngineStateRecord, EngineStateRecord.model_id == ModelRecord.id)
        .outerjoin(
            ModelVersionRecord,
            and_(
                ModelVersionRecord.model_id == ModelRecord.id,
                ModelVersionRecord.version == ModelRecord.latest_version,
            ),
        )
        .where(ModelRecord.kind == ALGORITHM_MODEL_KIND)
    )


@dataclass(frozen=True, slots=True)
class LiveState:
    """A model's live learned state and its revision."""

    revision: int
    state: dict[str, Any]
    pending_updates: int


def one(session: Session, condition: Any, *, tenant: str, label: str) -> AlgorithmModel:
    found = session.execute(
        model_query().where(condition, ModelRecord.tenant == tenant)
    ).one_or_none()
    if found is None:
        raise NotFound(f"algorithm model {label} not found", field="id")
    return model_value(*found)


def reread(session: Session, model_id: str, tenant: str) -> AlgorithmModel:
    session.flush()
    return one(session, ModelRecord.id == model_id, tenant=tenant, label=model_id)


def locked_row(session: Session, model_id: str, *, tenant: str) -> ModelRecord:
    row = find_row(session, model_id, tenant=tenant, kind=ALGORITHM_MODEL_KIND, lock=True)
    if row is None:
        raise NotFound(f"algorithm model {model_id} not found", field="id")
    return row


def audit(
    session: Session,
    row: ModelRecord,
    *,
    actor: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None,
) -> None:
    session.add(
        AuditLogRecord(
            tenant=row.tenant,
            actor=actor,
            action=action,
            entity_type=ENTITY_TYPE,
            entity_id=row.id,
            before=before,
            after=after,
            reason=reason,
            created_at=utcnow(),
        )
    )
