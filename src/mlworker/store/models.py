"""The model registry in the metadata store: models, versions, and the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mlworker.errors import NotFound
from mlworker.registry.values import ModelVersion, RegisteredModel
from mlworker.store.db import Database
from mlworker.store.records import AuditLogRecord, ModelRecord, ModelVersionRecord, utcnow


def version_value(row: ModelVersionRecord) -> ModelVersion:
    """Return the registry value of a version row."""
    return ModelVersion(
        model_id=row.model_id,
        version=row.version,
        artifact_uri=row.artifact_uri,
        artifact_sha256=row.artifact_sha256,
        artifact_format=row.artifact_format,
        params=row.params,
        metrics=row.metrics,
        dataset_fingerprint=row.dataset_fingerprint,
        job_id=row.job_id,
        created_at=row.created_at,
    )


def _model(row: ModelRecord, version: ModelVersionRecord | None) -> RegisteredModel:
    return RegisteredModel(
        id=row.id,
        tenant=row.tenant,
        key=row.key,
        name=row.name,
        kind=row.kind,
        family=row.family,
        config=row.config,
        status=row.status,
        registry_status=row.registry_status,
        latest_version=row.latest_version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=version_value(version) if version is not None else None,
    )


def _snapshot(row: ModelRecord) -> dict[str, Any]:
    return {
        "name": row.name,
        "kind": row.kind,
        "family": row.family,
        "status": row.status,
        "registryStatus": row.registry_status,
        "latestVersion": row.latest_version,
    }


class ModelRepository:
    """Registered models, always scoped to a tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def register(
        self,
        *,
        model_id: str,
        tenant: str,
        name: str,
        kind: str,
        family: str,
        config: dict[str, Any],
        version: ModelVersion,
        actor: str,
        reason: str,
    ) -> RegisteredModel:
        """Create a model with its first version and an audit row, in one transaction."""
        now = utcnow()
        row = ModelRecord(
            id=model_id,
            tenant=tenant,
            key=model_id,
            name=name,
            kind=kind,
            family=family,
            config=config,
            status="active",
            registry_status="draft",
            latest_version=version.version,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        version_row = ModelVersionRecord(
            model_id=model_id,
            version=version.version,
            artifact_uri=version.artifact_uri,
            artifact_sha256=version.artifact_sha256,
            artifact_format=version.artifact_format,
            params=version.params,
            metrics=version.metrics,
            dataset_fingerprint=version.dataset_fingerprint,
            job_id=version.job_id,
            created_at=now,
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            session.add(version_row)
            session.add(
                AuditLogRecord(
                    tenant=tenant,
                    actor=actor,
                    action="model.registered",
                    entity_type="model",
                    entity_id=model_id,
                    before=None,
                    after={**_snapshot(row), "version": version.version},
                    reason=reason,
                    created_at=now,
                )
            )
            session.flush()
            return _model(row, version_row)

    def _latest(self, session: Any, row: ModelRecord) -> ModelVersionRecord | None:
        version: ModelVersionRecord | None = session.scalars(
            select(ModelVersionRecord).where(
                ModelVersionRecord.model_id == row.id,
                ModelVersionRecord.version == row.latest_version,
            )
        ).one_or_none()
        return version

    def _row(
        self, session: Session, model_id: str, *, tenant: str, kind: str, lock: bool = False
    ) -> ModelRecord:
        row = find_row(session, model_id, tenant=tenant, kind=kind, lock=lock)
        if row is None or row.status == "deleted":
            raise NotFound(f"model {model_id!r} not found", field="model_id")
        return row

    def get(self, model_id: str, *, tenant: str, kind: str) -> RegisteredModel:
        """Return the model and its latest version.

        Raises
        ------
        NotFound
            No model ``model_id`` of ``kind`` in ``tenant`` (another tenant's model, or a model
            of another kind, is not found either).
        """
        with self._db.session(write=False) as session:
            row = self._row(session, model_id, tenant=tenant, kind=kind)
            return _model(row, self._latest(session, row))

    def list_models(self, *, tenant: str, kind: str, limit: int = 100) -> list[RegisteredModel]:
        """List a tenant's models of ``kind``, newest first."""
        query = (
            select(ModelRecord)
            .where(
                ModelRecord.tenant == tenant,
                ModelRecord.kind == kind,
                ModelRecord.status != "deleted",
            )
            .order_by(ModelRecord.created_at.desc(), ModelRecord.id.desc())
            .limit(limit)
        )
        with self._db.session(write=False) as session:
            return [_model(row, self._latest(session, row)) for row in session.scalars(query)]

    def delete(
        self, model_id: str, *, tenant: str, kind: str, actor: str, reason: str
    ) -> list[str]:
        """Delete the model and its versions, with an audit row; return their artifact URIs.

        Raises
        ------
        NotFound
            No model ``model_id`` of ``kind`` in ``tenant``: a model of another kind is deleted
            only through its own family, under that family's lifecycle rules.
        """
        with self._db.session() as session:
            row = self._row(session, model_id, tenant=tenant, kind=kind, lock=True)
            uris = list(
                session.scalars(
                    select(ModelVersionRecord.artifact_uri).where(
                        ModelVersionRecord.model_id == model_id
                    )
                )
            )
            session.add(
                AuditLogRecord(
                    tenant=tenant,
                    actor=actor,
                    action="model.deleted",
                    entity_type="model",
                    entity_id=model_id,
                    before=_snapshot(row),
                    after=None,
                    reason=reason,
                    created_at=utcnow(),
                )
            )
            session.execute(
                delete(ModelVersionRecord).where(ModelVersionRecord.model_id == model_id)
            )
            session.execute(delete(ModelRecord).where(ModelRecord.id == model_id))
            return uris

    def audit_trail(self, model_id: str, *, tenant: str) -> list[dict[str, Any]]:
        """Audit rows about one model, oldest first."""
        with self._db.session(write=False) as session:
            return audit_entries(session, tenant=tenant, entity_type="model", entity_id=model_id)


def find_row(
    session: Session, model_id: str, *, tenant: str, kind: str, lock: bool = False
) -> ModelRecord | None:
    """Return the tenant's model row ``model_id`` if it is of ``kind``, else ``None``.

    Every registry family (trained estimators, algorithm models) keeps its models in
    ``mlw_models``; reading a row by id only through here, with the family's kind, is what keeps
    one family's routes from answering for, changing or deleting another family's models.
    ``lock`` takes the row lock of a read-modify-write (and re-reads a row already loaded).
    """
    query = select(ModelRecord).where(
        ModelRecord.id == model_id, ModelRecord.tenant == tenant, ModelRecord.kind == kind
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row: ModelRecord | None = session.scalars(query).one_or_none()
    return row


def audit_entries(
    session: Session, *, tenant: str, entity_type: str, entity_id: str
) -> list[dict[str, Any]]:
    """Return the audit rows about one entity, oldest first, as camelCase JSON."""
    query = (
        select(AuditLogRecord)
        .where(
            AuditLogRecord.tenant == tenant,
            AuditLogRecord.entity_type == entity_type,
            AuditLogRecord.entity_id == entity_id,
        )
        .order_by(AuditLogRecord.id)
    )
    return [
        {
            "actor": row.actor,
            "action": row.action,
            "before": row.before,
            "after": row.after,
            "reason": row.reason,
            "createdAt": row.created_at.isoformat(),
        }
        for row in session.scalars(query)
    ]
