"""What a finished search answers, and what ``GET /study/{id}`` shows of its trials."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mlworker.errors import SearchFailed
from mlworker.training import auto
from mlworker.training.search import Search
from mlworker.training.trials import DISCARDED, Clock, RunStats


@dataclass(frozen=True)
class TuningResult:
    """The outcome of a search (the seed's ``/optimize`` answer, and more).

    Attributes
    ----------
    study_name
        The Optuna study (our study id).
    algorithm
        Algorithm of the best trial.
    best_params
        Its parameters under their ``/train`` names.
    best_score
        Its mean cross-validated score.
    n_trials
        Trials the study ran (every worker's; queued warm starts never started excluded).
    stopped
        Why the search ended: ``n_trials``, ``timeout`` or ``closed``.
    leaderboard
        ``auto`` only: per algorithm, its best score, trials and time.
    isolation
        Cost of running trials in a child process (starts, round-trip overhead).
    """

    study_name: str
    algorithm: str
    requested: str
    task: str
    scoring: str
    best_params: dict[str, Any]
    best_score: float
    best_trial: int
    n_trials: int
    n_completed: int
    n_pruned: int
    n_failed: int
    elapsed: float
    stopped: str
    leaderboard: list[dict[str, Any]] | None
    isolation: dict[str, float]

    @property
    def trials_per_second(self) -> float:
        """Trials the study ran per second of wall time."""
        return self.n_trials / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "study_id": self.study_name,
            "algorithm": self.algorithm,
            "requested_algorithm": self.requested,
            "task": self.task,
            "scoring": self.scoring,
            "best_params": self.best_params,
            "best_score": self.best_score,
            "best_trial": self.best_trial,
            "n_trials": self.n_trials,
            "n_completed": self.n_completed,
            "n_pruned": self.n_pruned,
            "n_failed": self.n_failed,
            "elapsed": round(self.elapsed, 3),
            "trials_per_second": round(self.trials_per_second, 3),
            "stopped": self.stopped,
            "leaderboard": self.leaderboard,
            "isolation": self.isolation,
        }


def close_study(study: optuna.Study) -> None:
    """Stop every worker at its next trial; fail trials a lost worker left running."""
    study.set_user_attr("closed", True)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(  # a finished worker cannot tell its own trial
            trial._trial_id, "failure", "its worker stopped before finishing it"
        )
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def started_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Return the trials that ran or run.

    Queued warm starts that never started, and trials a worker created past the budget, are
    left out.
    """
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state is not TrialState.WAITING and not t.user_attrs.get(DISCARDED)
    ]


def summarize(
    search: Search, study: optuna.Study, *, clock: Clock, stats: Sequence[RunStats]
) -> TuningResult:
    """Return the result of a finished search.

    Raises
    ------
    SearchFailed
        No trial completed; the message gives the first failure's reason.
    """
    trials = started_trials(study)
    completed = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    stopped = stats[0].stopped if stats else "n_trials"
    if not completed:
        reasons = [str(t.user_attrs["failure"]) for t in trials if "failure" in t.user_attrs]
        why = reasons[0] if reasons else "no trial ran"
        field = "timeout" if stopped == "timeout" or "deadline" in why else None
        raise SearchFailed(
            f"study {study.study_name}: no trial completed in {len(trials)} tried ({why}); "
            + ("give a larger timeout" if field else "check the data and the algorithm"),
            field=field,
            study_id=study.study_name,
        )
    best = max(completed, key=lambda t: float(t.value or -math.inf))
    isolation: dict[str, float] = {}
    for run in stats:
        for key, value in run.isolation.to_dict().items():
            isolation[key] = isolation.get(key, 0) + value
    return TuningResult(
        study_name=study.study_name,
        algorithm=str(best.user_attrs["algorithm"]),
        requested="auto" if search.auto else search.candidates[0].name,
        task=search.target.task.value,
        scoring=search.scorer.name,
        best_params=dict(best.user_attrs["params"]),
        best_score=float(best.value or 0.0),
        best_trial=best.number,
        n_trials=len(trials),
        n_completed=len(completed),
        n_pruned=sum(1 for t in trials if t.state is TrialState.PRUNED),
        n_failed=sum(1 for t in trials if t.state is TrialState.FAIL),
        elapsed=time.monotonic() - clock.started,
        stopped=stopped,
        leaderboard=auto.leaderboard(trials, search.candidates) if search.auto else None,
        isolation=isolation,
    )


def describe_trial(trial: FrozenTrial) -> dict[str, Any]:
    """One trial as ``GET /study/{id}`` lists it (parameters under their ``/train`` names)."""
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "algorithm": trial.user_attrs.get("algorithm"),
        "params": trial.user_attrs.get("params", {}),
        "value": trial.value,
        "duration": trial.duration.total_seconds() if trial.duration is not None else None,
        "intermediate_values": {
            str(step): value for step, value in sorted(trial.intermediate_values.items())
        },
        "failure": trial.user_attrs.get("failure"),
        "warm_start": bool(trial.user_attrs.get("warm_start", False)),
        "started_at": trial.datetime_start.isoformat() if trial.datetime_start else None,
    }


def param_importances(study: optuna.Study) -> dict[str, float] | None:
    """FANOVA importance of each parameter (``None`` below two completed trials or on error).

    Names are the ``/train`` names (``penalty`` for every solver's ``penalty|solver=…``);
    ``auto`` studies keep the algorithm prefix (``LGBMClassifier:num_leaves``).
    """
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(completed) < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            raw = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return None
    merged: dict[str, float] = {}
    for name, value in raw.items():
        key = name.split("|", 1)[0]
        merged[key] = merged.get(key, 0.0) + float(value)
    return dict(sorted(merged.items(), key=lambda item: -item[1]))
