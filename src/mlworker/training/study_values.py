"""Frozen values of a hyperparameter study as the rest of the code sees it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: ``study-`` and 12 lower-case hex digits; anything else is answered 404 without a lookup.
STUDY_ID = re.compile(r"^study-[0-9a-f]{12}$")


def study_id_for(job_id: str) -> str:
    """Return the study id of the ``optimize`` job ``job_id`` (one study per job, stable).

    Examples
    --------
    >>> study_id_for("job-0123456789abcdef") == study_id_for("job-0123456789abcdef")
    True
    >>> is_study_id(study_id_for("job-0123456789abcdef"))
    True
    """
    return "study-" + hashlib.sha256(job_id.encode()).hexdigest()[:12]


def is_study_id(value: str) -> bool:
    """Whether ``value`` has the study id format.

    Examples
    --------
    >>> is_study_id("study-0123456789ab"), is_study_id("study-../../etc"), is_study_id("x")
    (True, False, False)
    """
    return bool(STUDY_ID.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Study:
    """A tenant's hyperparameter search (the ``mlw_studies`` row)."""

    id: str
    tenant: str
    algorithm: str
    task: str
    target: str
    scoring: str
    direction: str
    status: str
    n_trials: int
    best_value: float | None
    best_params: dict[str, Any] | None
    summary: dict[str, Any] | None
    dataset_fingerprint: str | None
    job_id: str | None
    model_id: str | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON form (snake_case, the training family's dialect)."""
        return {
            "study_id": self.id,
            "algorithm": self.algorithm,
            "task": self.task,
            "target_column": self.target,
            "scoring": self.scoring,
            "direction": self.direction,
            "status": self.status,
            "n_trials": self.n_trials,
            "best_score": self.best_value,
            "best_params": self.best_params,
            "summary": self.summary,
            "dataset_fingerprint": self.dataset_fingerprint,
            "job_id": self.job_id,
            "model_id": self.model_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
