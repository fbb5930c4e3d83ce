"""Algorithm model rows: reads, create, update, delete (kind ``algorithm_model``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy import exc as sa_exc

from mlworker.errors import Conflict
from mlworker.registry.values import ALGORITHM_MODEL_KIND, AlgorithmModel, ModelVersion
from mlworker.store.algorithm_models._rows import (
    ENTITY_TYPE,
    audit,
    locked_row,
    model_query,
    model_value,
    one,
    reread,
    snapshot_of,
)
from mlworker.store.db import Database
from mlworker.store.models import audit_entries, version_value
from mlworker.store.records import (
    EngineStateRecord,
    ModelRecord,
    ModelVersionRecord,
    utcnow,
)

#: Columns of ``mlw_models`` an update may change.
UPDATABLE = frozenset({"name", "description", "family", "config", "status", "spec"})


class AlgorithmModelRepository:
    """Algorithm models, always scoped to a tenant.

    Parameters
    ----------
    db
        The metadata store.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, model_id: str, *, tenant: str) -> AlgorithmModel:
        """Return one model by id; :class:`NotFound` for another tenant's."""
        with self._db.session(write=False) as session:
            return one(session, ModelRecord.id == model_id, tenant=tenant, label=model_id)

    def get_by_key(self, key: str, *, tenant: str) -> AlgorithmModel:
        """Return one model by its key (unique per tenant)."""
        with self._db.session(write=False) as session:
            return one(session, ModelRecord.key == key, tenant=tenant, label=f"key {key!r}")

    def list_page(
        self,
        *,
        tenant: str,
        model_type: str | None = None,
        registry_status: str | None = None,
        family: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AlgorithmModel], int]:
        """Return a page of the tenant's models (newest first) and how many match in all."""
        conditions = [ModelRecord.tenant == tenant, ModelRecord.kind == ALGORITHM_MODEL_KIND]
        for column, wanted in (
            (ModelRecord.model_type, model_type),
            (ModelRecord.registry_status, registry_status),
            (ModelRecord.family, family),
            (ModelRecord.status, status),
        ):
            if wanted is not None:
                conditions.append(column == wanted)
        query = (
            model_query()
            .where(*conditions)
            .order_by(ModelRecord.created_at.desc(), ModelRecord.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._db.session(write=False) as session:
            items = [model_value(*found) for found in session.execute(query)]
            total = session.scalar(select(func.count()).select_from(ModelRecord).where(*conditions))
        return items, int(total or 0)

    def champion(self, family: str, *, tenant: str) -> AlgorithmModel | None:
        """Return the family's champion, if it has one."""
        query = model_query().where(
            ModelRecord.tenant == tenant,
            ModelRecord.family == family,
            ModelRecord.registry_status == "champion",
        )
        with self._db.session(write=False) as session:
            found = session.execute(query).one_or_none()
        return model_value(*found) if found is not None else None

    def family_members(self, family: str, *, tenant: str) -> list[AlgorithmModel]:
        """Return every model of the family, oldest first."""
        query = (
            model_query()
            .where(ModelRecord.tenant == tenant, ModelRecord.family == family)
            .order_by(ModelRecord.created_at, ModelRecord.id)
        )
        with self._db.session(write=False) as session:
            return [model_value(*found) for found in session.execute(query)]

    def versions(self, model_id: str, *, tenant: str) -> list[ModelVersion]:
        """Return the model's versions, oldest first."""
        with self._db.session(write=False) as session:
            one(session, ModelRecord.id == model_id, tenant=tenant, label=model_id)
            rows = session.scalars(
                select(ModelVersionRecord)
                .where(ModelVersionRecord.model_id == model_id)
                .order_by(ModelVersionRecord.version)
            )
            return [version_value(row) for row in rows]

    def audit_trail(self, model_id: str, *, tenant: str) -> list[dict[str, Any]]:
        """Return the audit rows about one model, oldest first (they outlive the model)."""
        with self._db.session(write=False) as session:
            return audit_entries(
                session, tenant=tenant, entity_type=ENTITY_TYPE, entity_id=model_id
            )

    def create(
        self,
        *,
        model_id: str,
        tenant: str,
        key: str,
        name: str,
        description: str,
        model_type: str,
        family: str,
        config: dict[str, Any],
        status: str,
        spec: dict[str, Any],
        state: dict[str, Any],
        actor: str,
    ) -> AlgorithmModel:
        """Create a model in ``draft`` with its initial (untrained) state at revision 1.

        Raises
        ------
        Conflict
            The tenant already has a model with this key.
        """
        now = utcnow()
        row = ModelRecord(
            id=model_id,
            tenant=tenant,
            key=key,
            name=name,
            kind=ALGORITHM_MODEL_KIND,
            family=family,
            config=config,
            status=status,
            registry_status="draft",
            latest_version=0,
            created_by=actor,
            created_at=now,
            updated_at=now,
            description=description,
            model_type=model_type,
            spec=spec,
            metrics_history=[],
        )
        try:
            with self._db.session() as session:
                session.add(row)
                session.flush()
                session.add(
                    EngineStateRecord(
                        model_id=model_id,
                        tenant=tenant,
                        revision=1,
                        state=state,
                        pending_updates=0,
                        updated_at=now,
                    )
                )
                audit(
                    session,
                    row,
                    actor=actor,
                    action="algorithm_model.created",
                    before=None,
                    after=snapshot_of(row),
                    reason=None,
                )
                return reread(session, model_id, tenant)
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"an algorithm model with key {key!r} already exists", field="key"
            ) from exc

    def update(
        self,
        model_id: str,
        *,
        tenant: str,
        actor: str,
        changes: Mapping[str, Any],
        new_revision: bool,
    ) -> AlgorithmModel:
        """Apply ``changes`` (columns in :data:`UPDATABLE`); ``new_revision`` bumps the state's.

        A config edit changes what the state means to the engine, so it takes a new revision:
        every process rebuilds its cached engine.

        Raises
        ------
        Conflict
            The new family already has a champion and this model is one.
        """
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        try:
            with self._db.session() as session:
                row = locked_row(session, model_id, tenant=tenant)
                before = snapshot_of(row)
                for name, value in changes.items():
                    setattr(row, name, value)
                row.updated_at = utcnow()
                if new_revision:
                    state = session.get(EngineStateRecord, model_id, with_for_update=True)
                    if state is not None:
                        state.revision += 1
                        state.updated_at = row.updated_at
                audit(
                    session,
                    row,
                    actor=actor,
                    action="algorithm_model.updated",
                    before=before,
                    after={**snapshot_of(row), "changed": sorted(changes)},
                    reason=None,
                )
                return reread(session, model_id, tenant)
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                "the family already has a champion; demote one of them first",
                field="registryFamily",
            ) from exc

    def delete(self, model_id: str, *, tenant: str, actor: str) -> list[str]:
        """Delete the model, its state and versions; return the versions' artifact URIs.

        Raises
        ------
        Conflict
            The model is its family's champion: promote another or archive it first.
        """
        with self._db.session() as session:
            row = locked_row(session, model_id, tenant=tenant)
            if row.registry_status == "champion":
                raise Conflict(
                    f"algorithm model {row.key!r} is the champion of family {row.family!r}; "
                    "promote another model or archive it before deleting it",
                    field="registryStatus",
                )
            uris = list(
                session.scalars(
                    select(ModelVersionRecord.artifact_uri).where(
                        ModelVersionRecord.model_id == model_id
                    )
                )
            )
            audit(
                session,
                row,
                actor=actor,
                action="algorithm_model.deleted",
                before=snapshot_of(row),
                after=None,
                reason=None,
            )
            for record in (EngineStateRecord, ModelVersionRecord):
                session.execute(delete(record).where(record.model_id == model_id))
            session.execute(delete(ModelRecord).where(ModelRecord.id == model_id))
            return uris

    def set_status(
        self, model_id: str, *, tenant: str, status: str, actor: str, action: str, reason: str
    ) -> AlgorithmModel:
        """Set the model's ``status`` (training, error, ...) with an audit row."""
        with self._db.session() as session:
            row = locked_row(session, model_id, tenant=tenant)
            before = snapshot_of(row)
            row.status = status
            row.updated_at = utcnow()
            audit(
                session,
                row,
                actor=actor,
                action=action,
                before=before,
                after=snapshot_of(row),
                reason=reason,
            )
            return reread(session, model_id, tenant)
