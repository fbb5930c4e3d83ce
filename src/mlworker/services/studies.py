"""Study use cases for the API: submit a search, read a study with its trials, its best trial."""

from __future__ import annotations

from typing import Any

import optuna

from mlworker.config import Settings
from mlworker.errors import NotFound
from mlworker.services.jobs import JobService, Submission
from mlworker.services.optimize_request import OptimizeParams, check_trial_budget
from mlworker.services.training import TrainParams
from mlworker.store.db import Database
from mlworker.store.optuna_storage import open_storage
from mlworker.store.studies import StudyRepository
from mlworker.training.study_report import describe_trial, param_importances, started_trials
from mlworker.training.study_values import Study, is_study_id


class StudyService:
    """Hyperparameter studies; every call is scoped to a tenant."""

    def __init__(self, settings: Settings, db: Database, jobs: JobService) -> None:
        self._settings = settings
        self._repository = StudyRepository(db)
        self._jobs = jobs

    def submit(
        self, *, tenant: str, params: OptimizeParams, idempotency_key: str | None = None
    ) -> Submission:
        """Submit an ``optimize`` job after checking the trial budget against ``MAX_TRIALS``."""
        check_trial_budget(params, self._settings.max_trials)
        return self._jobs.submit(
            tenant=tenant,
            job_type="optimize",
            params=params,
            idempotency_key=idempotency_key,
            field_prefix="",
        )

    def submit_train(
        self, *, tenant: str, params: TrainParams, idempotency_key: str | None = None
    ) -> Submission:
        """Submit a ``train`` job; a ``study_id`` it links must name one of the tenant's studies.

        Raises
        ------
        NotFound
            ``study_id`` names no study of this tenant (``field="study_id"``); no job is created.
        """
        if params.study_id is not None:
            self.record(params.study_id, tenant=tenant)
        return self._jobs.submit(
            tenant=tenant,
            job_type="train",
            params=params,
            idempotency_key=idempotency_key,
            field_prefix="",
        )

    def record(self, study_id: str, *, tenant: str) -> Study:
        """Return the study record; an id not shaped ``study-<12 hex>`` is 404 at once."""
        if not is_study_id(study_id):
            raise NotFound(f"study {study_id[:60]!r} not found", field="study_id")
        return self._repository.get(study_id, tenant=tenant)

    def _optuna_study(self, study_id: str) -> optuna.Study | None:
        try:
            return optuna.load_study(study_name=study_id, storage=open_storage(self._settings))
        except KeyError:  # the storage was wiped, or the job has not created it yet
            return None

    def get(self, study_id: str, *, tenant: str) -> dict[str, Any]:
        """Return the record, every trial (for the optimisation history) and importances."""
        study = self.record(study_id, tenant=tenant)
        optuna_study = self._optuna_study(study_id)
        trials = started_trials(optuna_study) if optuna_study is not None else []
        importances = param_importances(optuna_study) if optuna_study is not None else None
        completed = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
        best = max(completed, key=lambda t: float(t.value or 0.0), default=None)
        return {
            **study.to_dict(),
            "best_trial": best.number if best is not None else None,
            "n_trials_run": len(trials),
            "trials": [describe_trial(trial) for trial in trials],
            "param_importances": importances,
        }

    def best(self, study_id: str, *, tenant: str) -> dict[str, Any]:
        """Return the best trial so far: parameters (``/train`` names), score, algorithm."""
        study = self.record(study_id, tenant=tenant)
        optuna_study = self._optuna_study(study_id)
        trials = started_trials(optuna_study) if optuna_study is not None else []
        completed = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
        if not completed:
            raise NotFound(f"study {study_id!r} has no completed trial yet", field="study_id")
        best = max(completed, key=lambda t: float(t.value or 0.0))
        return {
            "study_id": study.id,
            "status": study.status,
            "algorithm": best.user_attrs.get("algorithm", study.algorithm),
            "scoring": study.scoring,
            "best_params": best.user_attrs.get("params", {}),
            "best_score": best.value,
            "best_trial": best.number,
            "model_id": study.model_id,
        }
