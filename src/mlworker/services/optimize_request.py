"""What ``POST /optimize`` asks for: the parameters, their checks, the search and its time budget.

Shared by the ``optimize`` job (:mod:`mlworker.services.tuning`) and its extra workers
(:mod:`mlworker.services.search_workers`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlworker.data.values import LoadedDataset
from mlworker.errors import InvalidInput, ValidationFailed
from mlworker.services.training import DatasetRequest, algorithm_for
from mlworker.training.algorithms import Task
from mlworker.training.scoring import SCORERS, check_scoring_name
from mlworker.training.tuning import Search, prepare_search

#: Budget of an ``auto`` search that names no ``timeout``.
AUTO_TIMEOUT_SECONDS = 60.0
#: Seconds kept for writing the model file and registry rows after the final training.
STORE_SECONDS = 0.5
#: Seconds a fresh training process needs before it fits (start, receive the table).
PROCESS_START_SECONDS = 0.3


class OptimizeParams(DatasetRequest):
    """Parameters of ``POST /optimize`` (and of the ``optimize`` job)."""

    target_column: str = Field(min_length=1, max_length=255)
    algorithm: str = Field("RandomForestClassifier", min_length=1, max_length=100)
    n_trials: int = Field(100, ge=1, description="At most MAX_TRIALS.")
    timeout: float | None = Field(None, gt=0, le=7 * 24 * 3600)
    cv_folds: int = Field(5, ge=2, le=20)
    scoring: str | None = Field(None, min_length=1, max_length=64)
    random_state: int = Field(42, ge=0, le=2**31 - 1)
    n_workers: int = Field(1, ge=1, le=32)
    train_best: bool = False
    pruner: Literal["median", "hyperband", "none"] = "median"
    task: Literal["classification", "regression"] | None = None
    test_size: float = Field(0.2, ge=0.1, le=0.5)


def check_optimize_params(params: OptimizeParams) -> OptimizeParams:
    """Submission-time checks: the algorithm exists for the task, the score is whitelisted."""
    check_scoring_name(params.scoring)
    if params.algorithm == "auto":
        return params
    algorithm = algorithm_for(params.algorithm, params.task)
    if params.scoring is not None and SCORERS[params.scoring].task is not algorithm.task:
        raise InvalidInput(
            f"scoring {params.scoring!r} does not apply to {algorithm.task.value} "
            f"({algorithm.name})",
            field="scoring",
        )
    return params.model_copy(update={"algorithm": algorithm.name})


def check_trial_budget(params: OptimizeParams, max_trials: int) -> None:
    """Refuse ``n_trials`` above ``MAX_TRIALS``.

    Raises
    ------
    ValidationFailed
        ``field="n_trials"``.
    """
    if params.n_trials > max_trials:
        message = f"n_trials: at most {max_trials} (MAX_TRIALS), got {params.n_trials}"
        raise ValidationFailed(
            message, field="n_trials", errors=[{"field": "n_trials", "message": message}]
        )


def build_search(params: OptimizeParams, dataset: LoadedDataset) -> Search:
    """Prepare the search the request describes on the loaded dataset (leader and workers)."""
    algorithm = None if params.algorithm == "auto" else algorithm_for(params.algorithm, params.task)
    return prepare_search(
        dataset.frame,
        params.target_column,
        algorithm=algorithm,
        task=Task(params.task) if params.task else None,
        scoring=params.scoring,
        cv_folds=params.cv_folds,
        random_state=params.random_state,
        pruner=params.pruner,
    )


def time_budget(params: OptimizeParams) -> float | None:
    """Seconds the whole request may take: ``timeout``, else 60 s for ``auto``, else none."""
    return params.timeout or (AUTO_TIMEOUT_SECONDS if params.algorithm == "auto" else None)


def finish_reserve(budget: float) -> float:
    """Seconds kept after the search for the summary, the records and the answer's way back.

    5 % of the budget, 0.5 s to 3 s: on a loaded machine, closing the study and writing the
    records took up to 0.4 s, and the waiting request polls the job row every 0.1 s.
    """
    return min(3.0, max(0.5, 0.05 * budget))
