"""Hyperparameter optimisation: one call that runs a whole search in this process.

:func:`optimize` is the domain entry point (notebooks, the benchmark, tests); the ``optimize``
job assembles the same parts (:mod:`~mlworker.training.search`,
:mod:`~mlworker.training.trials`, :mod:`~mlworker.training.study_report`) around the service's
Optuna storage, extra workers and the optional final training.

What a search does:

- samples the algorithm's search space from the table with a seeded, multivariate TPE sampler
  (``LogisticRegression`` picks a solver first, then only a penalty that solver supports);
- scores each trial by stratified k-fold cross-validation (k-fold for regression) with a
  whitelisted score (:mod:`~mlworker.training.scoring`), reporting each fold to the pruner;
- stops boosting early inside each fold and reports the mean number of trees as
  ``n_estimators``, so ``best_params`` reproduces the model through ``/train``;
- fits in a killable child process: no trial runs past ``timeout``;
- records a trial that raises as failed, with the reason, and goes on;
- for ``algorithm="auto"`` searches every installed algorithm of the task, cheapest first
  (:mod:`~mlworker.training.auto`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

import optuna
import pandas as pd
from optuna.storages import BaseStorage

from mlworker.training.algorithms import Algorithm, Task, resolve
from mlworker.training.search import PRUNERS, Search, attach_study, create_study, prepare_search
from mlworker.training.study_report import TuningResult, close_study, summarize
from mlworker.training.trials import Clock, Progress, RunStats, run_trials

__all__ = [
    "PRUNERS",
    "Clock",
    "RunStats",
    "Search",
    "TuningResult",
    "attach_study",
    "create_study",
    "optimize",
    "prepare_search",
    "run_trials",
]


def _no_progress(fraction: float, message: str) -> None:
    return None


def optimize(
    frame: pd.DataFrame,
    target_column: str,
    *,
    algorithm: Algorithm | str,
    n_trials: int = 100,
    timeout: float | None = None,
    task: Task | None = None,
    scoring: str | None = None,
    cv_folds: int = 5,
    pruner: str = "median",
    random_state: int = 42,
    n_jobs: int = 1,
    storage: BaseStorage | str | None = None,
    study_name: str | None = None,
    candidates: Sequence[Algorithm] | None = None,
    progress: Progress = _no_progress,
) -> TuningResult:
    """Search hyperparameters of ``algorithm`` (or of every algorithm, ``"auto"``).

    Parameters
    ----------
    frame
        Raw rows, target included.
    target_column
        Column to predict.
    algorithm
        An algorithm (or its table name), or ``"auto"``.
    n_trials
        Trial budget.
    timeout
        Wall-clock budget in seconds, from this call on; no trial runs past it.
    task
        ``auto`` only: the task (inferred from the target when ``None``).
    scoring
        Score to maximise (the task's default when ``None``).
    cv_folds
        Cross-validation folds.
    pruner
        ``median``, ``hyperband`` or ``none``.
    random_state
        Seed of folds, sampler and estimators: the same call gives the same result.
    n_jobs
        Threads per estimator.
    storage
        Optuna storage (in memory when ``None``).
    study_name
        Study name (``study-`` and 12 hex digits when ``None``).
    candidates
        ``auto`` only: the algorithms to search.
    progress
        ``(fraction, message)`` callback.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> frame = load_iris(as_frame=True).frame
    >>> result = optimize(frame, "target", algorithm="LogisticRegression", n_trials=3)
    >>> result.n_trials, result.scoring, sorted(result.best_params)[:2]
    (3, 'f1_weighted', ['C', 'max_iter'])
    """
    clock = Clock(time.monotonic(), None if timeout is None else time.monotonic() + timeout)
    chosen = None if algorithm == "auto" else algorithm
    if isinstance(chosen, str):
        chosen = resolve(chosen)
    search = prepare_search(
        frame,
        target_column,
        algorithm=chosen,
        task=task,
        scoring=scoring,
        cv_folds=cv_folds,
        random_state=random_state,
        pruner=pruner,
        candidates=candidates,
    )
    study = create_study(
        search,
        storage=storage if storage is not None else optuna.storages.InMemoryStorage(),
        study_name=study_name or f"study-{secrets.token_hex(6)}",
        n_trials=n_trials,
    )
    stats = run_trials(
        search, study, n_trials=n_trials, clock=clock, n_jobs=n_jobs, progress=progress
    )
    close_study(study)
    return summarize(search, study, clock=clock, stats=[stats])
