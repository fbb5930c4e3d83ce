"""A search's set-up: data, folds, score, spaces, pruner, sampler, and the Optuna study.

:func:`~mlworker.training.tuning.optimize` runs a whole search in one process; the services use
the parts: :func:`prepare_search`, :func:`create_study` (the leader) or :func:`attach_study`
(extra workers in other processes or on other machines), :func:`run_trials`, then
:func:`~mlworker.training.study_report.summarize`.

Every trial is scored by stratified k-fold cross-validation (plain k-fold for regression); each
fold's running mean is reported to the pruner (median by default), and boosting stops early
inside each fold, the mean number of trees kept becoming the trial's ``n_estimators``. The
parameters a trial used are stored under their ``/train`` names as the trial's ``params`` user
attribute, so ``best_params`` can be sent to ``/train`` as they are. Folds are fitted in a
killable child process (:mod:`~mlworker.training.trial_process`): no trial runs past the
deadline. A trial that raises is recorded as failed, with the reason, and the search goes on.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner
from optuna.storages import BaseStorage
from sklearn.model_selection import KFold, StratifiedKFold

from mlworker.errors import InvalidInput
from mlworker.training import auto
from mlworker.training.algorithms import Algorithm, Task
from mlworker.training.scoring import Scorer, resolve_scoring
from mlworker.training.space import Choice, Hyperparameter, optuna_values
from mlworker.training.target import Target, class_counts
from mlworker.training.trainer import PreparedData, prepare_data
from mlworker.training.trial_process import (
    FoldData,
)

#: Pruners a request may name.
PRUNERS = ("median", "hyperband", "none")


def make_pruner(name: str, cv_folds: int) -> BasePruner:
    """Return the pruner called ``name``; fold numbers are its steps.

    The median pruner waits for five finished trials and never judges a trial on its first
    fold alone; Hyperband treats the folds as its resource.
    """
    if name == "median":
        return MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return HyperbandPruner(min_resource=1, max_resource=cv_folds, reduction_factor=3)
    if name == "none":
        return NopPruner()
    raise InvalidInput(f"unknown pruner {name!r}; one of {', '.join(PRUNERS)}", field="pruner")


@dataclass(frozen=True)
class Search:
    """Everything every worker of one study needs: data, folds, candidates, score, spaces."""

    data: PreparedData
    candidates: tuple[Algorithm, ...]
    auto: bool
    scorer: Scorer
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    random_state: int
    pruner: str
    spaces: Mapping[str, tuple[Hyperparameter, ...]]

    @property
    def target(self) -> Target:
        """The prediction target."""
        return self.data.target

    @property
    def cv_folds(self) -> int:
        """Number of cross-validation folds."""
        return len(self.folds)

    def prefix(self, algorithm: Algorithm) -> str:
        """Study parameter prefix: ``Name:`` when one study searches several algorithms."""
        return f"{algorithm.name}:" if self.auto else ""

    def algorithm(self, name: str) -> Algorithm:
        """Return the candidate called ``name``."""
        return next(a for a in self.candidates if a.name == name)

    def fold_data(self, n_jobs: int) -> FoldData:
        """Return what the trial process receives."""
        return FoldData(
            target=self.data.target,
            plan=self.data.plan,
            features=self.data.features,
            codes=self.data.codes,
            folds=self.folds,
            scoring=self.scorer.name,
            random_state=self.random_state,
            n_jobs=n_jobs,
        )

    def describe(self) -> dict[str, Any]:
        """JSON summary stored on the study."""
        return {
            "algorithm": "auto" if self.auto else self.candidates[0].name,
            "candidates": [a.name for a in self.candidates],
            "task": self.target.task.value,
            "scoring": self.scorer.name,
            "direction": "maximize",
            "cv_folds": self.cv_folds,
            "pruner": self.pruner,
            "random_state": self.random_state,
            "n_rows": len(self.data.codes),
        }


def _space(algorithm: Algorithm, target: Target) -> tuple[Hyperparameter, ...]:
    excluded = auto.excluded_choices(algorithm, target.classes)
    space = []
    for parameter in algorithm.space:
        search = parameter.search
        if isinstance(search, Choice) and parameter.name in excluded:
            options = tuple(o for o in search.options if o not in excluded[parameter.name])
            parameter = dataclasses.replace(parameter, search=Choice(options))
        space.append(parameter)
    return tuple(space)


def _folds(data: PreparedData, cv_folds: int, random_state: int) -> tuple[Any, ...]:
    rows = len(data.codes)
    if data.target.task is Task.CLASSIFICATION:
        counts = class_counts(data.target, data.codes.tolist())
        label, smallest = min(counts.items(), key=lambda item: item[1])
        if smallest < cv_folds:
            raise InvalidInput(
                f"class {label!r} has {smallest} rows; stratified {cv_folds}-fold "
                f"cross-validation needs at least {cv_folds} per class (lower cv_folds)",
                field="cv_folds",
            )
        splitter: Any = StratifiedKFold(cv_folds, shuffle=True, random_state=random_state)
    else:
        if rows < 2 * cv_folds:
            raise InvalidInput(
                f"{rows} rows are too few for {cv_folds}-fold cross-validation", field="cv_folds"
            )
        splitter = KFold(cv_folds, shuffle=True, random_state=random_state)
    return tuple(splitter.split(np.zeros(rows), data.codes))


def prepare_search(
    frame: pd.DataFrame,
    target_column: str,
    *,
    algorithm: Algorithm | None,
    task: Task | None = None,
    scoring: str | None = None,
    cv_folds: int = 5,
    random_state: int = 42,
    pruner: str = "median",
    candidates: Sequence[Algorithm] | None = None,
) -> Search:
    """Check the data and the request; fix folds, score and search spaces.

    Parameters
    ----------
    frame
        Raw rows, target included.
    target_column
        Column to predict.
    algorithm
        The algorithm to tune, or ``None`` for ``auto`` (every candidate of the task).
    task
        For ``auto``: the task, inferred from the target when ``None``.
    scoring
        A name from :data:`~mlworker.training.scoring.SCORERS`; the task's default when ``None``.
    cv_folds
        Cross-validation folds.
    random_state
        Seed of the folds, the sampler and the estimators.
    pruner
        ``median``, ``hyperband`` or ``none``.
    candidates
        For ``auto``: the algorithms to search (default: every installed one of the task).

    Raises
    ------
    InvalidInput
        Unusable data or target, an unknown score or pruner, too few rows per fold.
    """
    make_pruner(pruner, cv_folds)
    data = prepare_data(frame, target_column, task=algorithm.task if algorithm else task)
    if algorithm is not None:
        chosen: tuple[Algorithm, ...] = (algorithm,)
    else:
        chosen = tuple(candidates or auto.candidates(data.target.task))
        chosen = tuple(a for a in chosen if a.task is data.target.task)
        if not chosen:
            raise InvalidInput(f"no {data.target.task.value} algorithm is installed", field="task")
    return Search(
        data=data,
        candidates=chosen,
        auto=algorithm is None,
        scorer=resolve_scoring(scoring, data.target),
        folds=_folds(data, cv_folds, random_state),
        random_state=random_state,
        pruner=pruner,
        spaces={a.name: _space(a, data.target) for a in chosen},
    )


def _sampler(search: Search, worker: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Grouped multivariate TPE models each conditional branch (a solver's penalties, an
        # algorithm of "auto") from the trials that took it; the constant liar keeps parallel
        # workers from sampling the same point.
        return optuna.samplers.TPESampler(
            seed=search.random_state + worker, multivariate=True, group=True, constant_liar=True
        )


def create_study(
    search: Search, *, storage: BaseStorage | str, study_name: str, n_trials: int
) -> optuna.Study:
    """Create the study and queue the warm starts (cheapest algorithm first)."""
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize",
        sampler=_sampler(search, 0),
        pruner=make_pruner(search.pruner, search.cv_folds),
    )
    study.set_user_attr("search", search.describe())
    for algorithm in search.candidates[:n_trials]:
        space, prefix = search.spaces[algorithm.name], search.prefix(algorithm)
        values = optuna_values(space, auto.warm_start(algorithm), prefix=prefix)
        study.enqueue_trial(values, user_attrs={"algorithm": algorithm.name, "warm_start": True})
    return study


def attach_study(
    search: Search, *, storage: BaseStorage | str, study_name: str, worker: int
) -> optuna.Study:
    """Load a study another worker created, with this worker's own sampler seed."""
    return optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=_sampler(search, worker),
        pruner=make_pruner(search.pruner, search.cv_folds),
    )
