"""Live engine states (``mlw_engine_states``): the learned parameters and their revision.

Every change to a model's state (training, outcomes, reset, config edit) takes the next
revision in the same transaction as the change, so a process caching a built engine knows from
one small read whether it is current.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlworker.errors import NotFound
from mlworker.registry.values import AlgorithmModel
from mlworker.store.algorithm_models._rows import (
    LiveState,
    audit,
    locked_row,
    one,
    reread,
    snapshot_of,
)
from mlworker.store.db import Database
from mlworker.store.records import EngineStateRecord, ModelRecord, ModelVersionRecord, utcnow


class StateLock:
    """The live state of one model, row-locked until the transaction ends.

    Obtained from :meth:`EngineStateRepository.locked_state`; :meth:`replace` writes a new
    state with the next revision.
    """

    def __init__(self, session: Session, model: AlgorithmModel, row: EngineStateRecord) -> None:
        self._session = session
        self._row = row
        self.model = model

    @property
    def revision(self) -> int:
        """Revision of the state as it is now."""
        return self._row.revision

    @property
    def state(self) -> dict[str, Any]:
        """The learned state as it is now."""
        return dict(self._row.state)

    def replace(self, state: dict[str, Any], *, applied_updates: int) -> int:
        """Store ``state`` as the next revision; count ``applied_updates`` outcomes; return it."""
        self._row.state = state
        self._row.revision += 1
        self._row.pending_updates += applied_updates
        self._row.updated_at = utcnow()
        self._session.flush()
        return self._row.revision


class EngineStateRepository:
    """Live states of algorithm models, always scoped to a tenant.

    Parameters
    ----------
    db
        The metadata store.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def revision(self, model_id: str) -> int | None:
        """Return the live state's revision (one key read); ``None`` for an unknown model."""
        with self._db.session(write=False) as session:
            revision: int | None = session.scalar(
                select(EngineStateRecord.revision).where(EngineStateRecord.model_id == model_id)
            )
            return revision

    def live_state(self, model_id: str, *, tenant: str) -> LiveState:
        """Return the model's live learned state."""
        with self._db.session(write=False) as session:
            row = session.get(EngineStateRecord, model_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"algorithm model {model_id} not found", field="id")
            return LiveState(row.revision, dict(row.state), row.pending_updates)

    def snapshot(self, model_id: str, *, tenant: str) -> tuple[AlgorithmModel, LiveState]:
        """Return the model and its live state as of one moment (one read transaction)."""
        with self._db.session(write=False) as session:
            model = one(session, ModelRecord.id == model_id, tenant=tenant, label=model_id)
            row = session.get(EngineStateRecord, model_id)
            if row is None:
                raise NotFound(f"algorithm model {model_id} not found", field="id")
            return model, LiveState(row.revision, dict(row.state), row.pending_updates)

    @contextmanager
    def locked_state(self, model_id: str, *, tenant: str) -> Iterator[StateLock]:
        """Hold the model's live state under a row lock for one read-modify-write.

        Everything done through the yielded :class:`StateLock` commits when the block ends and
        rolls back if it raises.
        """
        with self._db.session() as session:
            state = session.get(EngineStateRecord, model_id, with_for_update=True)
            if state is None or state.tenant != tenant:
                raise NotFound(f"algorithm model {model_id} not found", field="id")
            model = one(session, ModelRecord.id == model_id, tenant=tenant, label=model_id)
            yield StateLock(session, model, state)

    def replace_state(
        self,
        model_id: str,
        *,
        tenant: str,
        actor: str,
        state: dict[str, Any],
        action: str,
        reason: str | None,
    ) -> AlgorithmModel:
        """Replace the live state (next revision, no pending updates), with an audit row."""
        with self._db.session() as session:
            row = locked_row(session, model_id, tenant=tenant)
            live = session.get(EngineStateRecord, model_id, with_for_update=True)
            assert live is not None  # created with the model, deleted with it
            before = {**snapshot_of(row), "stateRevision": live.revision}
            live.state = state
            live.revision += 1
            live.pending_updates = 0
            live.updated_at = row.updated_at = utcnow()
            audit(
                session,
                row,
                actor=actor,
                action=action,
                before=before,
                after={**snapshot_of(row), "stateRevision": live.revision},
                reason=reason,
            )
            return reread(session, model_id, tenant)

    def record_training(
        self,
        model_id: str,
        *,
        tenant: str,
        actor: str,
        artifact_uri: str,
        artifact_sha256: str,
        artifact_format: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        dataset_fingerprint: str | None,
        job_id: str | None,
        state: dict[str, Any],
    ) -> AlgorithmModel:
        """Record a training in one transaction.

        Adds the next version, appends ``{version, trainedAt, metrics}`` to the metrics history,
        replaces the live state (next revision, no pending updates) and makes the model
        ``active``.
        """
        with self._db.session() as session:
            row = locked_row(session, model_id, tenant=tenant)
            before = snapshot_of(row)
            now = utcnow()
            version = row.latest_version + 1
            session.add(
                ModelVersionRecord(
                    model_id=model_id,
                    version=version,
                    artifact_uri=artifact_uri,
                    artifact_sha256=artifact_sha256,
                    artifact_format=artifact_format,
                    params=params,
                    metrics=metrics,
                    dataset_fingerprint=dataset_fingerprint,
                    job_id=job_id,
                    created_at=now,
                )
            )
            entry = {"version": version, "trainedAt": now.isoformat(), "metrics": metrics}
            row.metrics_history = [*(row.metrics_history or []), entry]
            row.latest_version = version
            row.status = "active"
            row.updated_at = now
            live = session.get(EngineStateRecord, model_id, with_for_update=True)
            assert live is not None
            live.state = state
            live.revision += 1
            live.pending_updates = 0
            live.updated_at = now
            audit(
                session,
                row,
                actor=actor,
                action="algorithm_model.trained",
                before=before,
                after={**snapshot_of(row), "metrics": metrics, "jobId": job_id},
                reason=None,
            )
            return reread(session, model_id, tenant)
