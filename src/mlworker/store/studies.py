"""Hyperparameter studies in the metadata store (``mlw_studies``), always tenant-scoped."""

from __future__ import annotations

from typing import Any

from mlworker.errors import NotFound
from mlworker.store.db import Database
from mlworker.store.records import StudyRecord, utcnow
from mlworker.training.study_values import Study


def _to_study(row: StudyRecord) -> Study:
    return Study(
        id=row.id,
        tenant=row.tenant,
        algorithm=row.algorithm,
        task=row.task,
        target=row.target,
        scoring=row.scoring,
        direction=row.direction,
        status=row.status,
        n_trials=row.n_trials,
        best_value=row.best_value,
        best_params=row.best_params,
        summary=row.summary,
        dataset_fingerprint=row.dataset_fingerprint,
        job_id=row.job_id,
        model_id=row.model_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class StudyRepository:
    """Studies, always scoped to a tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def start(
        self,
        *,
        study_id: str,
        tenant: str,
        algorithm: str,
        task: str,
        target: str,
        scoring: str,
        n_trials: int,
        dataset_fingerprint: str | None,
        job_id: str | None,
    ) -> Study:
        """Record a running study; a retried job's study starts over under the same id."""
        now = utcnow()
        with self._db.session() as session:
            row = session.get(StudyRecord, study_id)
            if row is None:
                row = StudyRecord(id=study_id, tenant=tenant, created_at=now)
                session.add(row)
            row.algorithm, row.task, row.target = algorithm, task, target
            row.scoring, row.direction, row.status = scoring, "maximize", "running"
            row.n_trials, row.dataset_fingerprint, row.job_id = (
                n_trials,
                dataset_fingerprint,
                job_id,
            )
            row.best_value, row.best_params, row.summary, row.model_id = None, None, None, None
            row.updated_at = now
            session.flush()
            return _to_study(row)

    def finish(
        self,
        study_id: str,
        *,
        status: str,
        best_value: float | None = None,
        best_params: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        model_id: str | None = None,
    ) -> None:
        """Record how the study ended (``completed`` or ``failed``) and what it found."""
        with self._db.session() as session:
            row = session.get(StudyRecord, study_id)
            if row is None:
                raise NotFound(f"study {study_id!r} not found", field="study_id")
            row.status, row.best_value, row.best_params = status, best_value, best_params
            row.summary, row.model_id, row.updated_at = summary, model_id, utcnow()

    def get(self, study_id: str, *, tenant: str) -> Study:
        """Return the study; :class:`NotFound` when absent or another tenant's."""
        with self._db.session(write=False) as session:
            row = session.get(StudyRecord, study_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"study {study_id!r} not found", field="study_id")
            return _to_study(row)
