"""Scheduled learners: which algorithm models may retrain on a schedule, and their slots.

A scheduled learner *claims* a schedule slot with a conditional write before its training is
submitted, so many replicas ticking at once submit one training per slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update

from mlworker.store.db import Database
from mlworker.store.records import (
    JobRecord,
    ModelRecord,
    ModelVersionRecord,
    ScheduledTrainingRecord,
    utcnow,
)

#: Job statuses of a training that has not finished yet.
_ACTIVE_JOB_STATUSES = ("queued", "running")
#: Model statuses whose models never learn on a schedule.
_RETIRED_STATUSES = ("deleted", "archived", "paused")


@dataclass(frozen=True, slots=True)
class SlotClaim:
    """A schedule slot this process claimed, and the one claimed before it."""

    model_id: str
    slot: datetime
    previous: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduledModel:
    """An algorithm model that may learn on a schedule, and when it last ran."""

    model_id: str
    tenant: str
    key: str
    spec: Mapping[str, Any]
    created_at: datetime
    last_trained_at: datetime | None
    last_slot: datetime | None
    #: Whether the training submitted for the last slot is still queued or running.
    last_job_active: bool = False


class ScheduledTrainingRepository:
    """Algorithm models that may learn on a schedule, and the slots they were submitted for."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def candidates(self) -> list[ScheduledModel]:
        """Every tenant's live algorithm models, with last training time and last slot.

        The caller filters on ``spec`` (its ``learningConfig``): JSON queries differ between
        SQLite and PostgreSQL, and models are few.
        """
        last_trained = (
            select(func.max(ModelVersionRecord.created_at))
            .where(ModelVersionRecord.model_id == ModelRecord.id)
            .scalar_subquery()
        )
        query = (
            select(
                ModelRecord.id,
                ModelRecord.tenant,
                ModelRecord.key,
                ModelRecord.spec,
                ModelRecord.created_at,
                last_trained,
                ScheduledTrainingRecord.last_slot,
                JobRecord.status,
            )
            .outerjoin(ScheduledTrainingRecord, ScheduledTrainingRecord.model_id == ModelRecord.id)
            .outerjoin(JobRecord, JobRecord.id == ScheduledTrainingRecord.job_id)
            .where(
                ModelRecord.kind == "algorithm_model",
                ModelRecord.status.not_in(_RETIRED_STATUSES),
                ModelRecord.registry_status != "archived",
            )
            .order_by(ModelRecord.tenant, ModelRecord.id)
        )
        with self._db.session(write=False) as session:
            rows = list(session.execute(query))
        return [
            ScheduledModel(
                model_id=model_id,
                tenant=tenant,
                key=key,
                spec=spec or {},
                created_at=created_at,
                last_trained_at=_utc(trained_at),
                last_slot=last_slot,
                last_job_active=job_status in _ACTIVE_JOB_STATUSES,
            )
            for model_id, tenant, key, spec, created_at, trained_at, last_slot, job_status in rows
        ]

    def claim_slot(self, *, model_id: str, tenant: str, slot: datetime) -> SlotClaim | None:
        """Claim ``slot`` for the model; ``None`` when this or a later slot was claimed already.

        The winner gets a :class:`SlotClaim` holding the slot claimed before, which
        :meth:`release_slot` restores if the training cannot be submitted.
        """
        now = utcnow()
        try:
            with self._db.session() as session:
                query = select(ScheduledTrainingRecord).where(
                    ScheduledTrainingRecord.model_id == model_id
                )
                if not self._db.is_sqlite:
                    query = query.with_for_update()
                row = session.scalars(query).one_or_none()
                if row is None:
                    session.add(
                        ScheduledTrainingRecord(
                            model_id=model_id, tenant=tenant, last_slot=slot, updated_at=now
                        )
                    )
                    return SlotClaim(model_id=model_id, slot=slot, previous=None)
                if row.last_slot >= slot:
                    return None
                claim = SlotClaim(model_id=model_id, slot=slot, previous=row.last_slot)
                row.last_slot, row.job_id, row.updated_at = slot, None, now
                return claim
        except sa_exc.IntegrityError:
            return None  # another replica inserted the first claim a moment earlier

    def set_job(self, claim: SlotClaim, *, job_id: str) -> None:
        """Remember the job submitted for a claimed slot."""
        with self._db.session() as session:
            session.execute(
                update(ScheduledTrainingRecord)
                .where(
                    ScheduledTrainingRecord.model_id == claim.model_id,
                    ScheduledTrainingRecord.last_slot == claim.slot,
                )
                .values(job_id=job_id, updated_at=utcnow())
            )

    def release_slot(self, claim: SlotClaim) -> None:
        """Undo a claim whose submission failed, so the next tick tries the slot again."""
        with self._db.session() as session:
            row = session.get(ScheduledTrainingRecord, claim.model_id)
            if row is None or row.last_slot != claim.slot:
                return
            if claim.previous is None:
                session.delete(row)
            else:
                row.last_slot, row.updated_at = claim.previous, utcnow()

    def last_job(self, model_id: str) -> tuple[datetime, str | None] | None:
        """Return the latest claimed slot of the model and the job submitted for it."""
        with self._db.session(write=False) as session:
            row = session.get(ScheduledTrainingRecord, model_id)
            return None if row is None else (row.last_slot, row.job_id)


def _utc(value: datetime | None) -> datetime | None:
    # A scalar subquery's result skips the column type's conversion on some drivers.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
