"""``algorithm: "auto"``: which algorithms to try, where each starts, and who gets the next trial.

The strategy, in three steps, all inside one Optuna study:

1. **Warm starts, cheapest first.** Every candidate algorithm of the task is tried once with a
   configuration that is good on most small tables (:data:`WARM_STARTS`), in order of cost, so a
   valid model (the linear baseline) exists within the first second.
2. **Successive halving over algorithms.** The remaining trials go in rounds: round ``r`` keeps
   the best ``⌈K / 2ʳ⌉`` algorithms (by best cross-validated score so far) and gives each
   ``3 · 2ʳ`` tuned trials; the last survivor gets the rest of the budget (Jamieson & Talwalkar,
   2016). An algorithm whose trials take more than a third of the time left is passed over.
3. **TPE inside each algorithm.** Parameters are stored under ``Algorithm:name``, so the
   multivariate, grouped TPE sampler models each algorithm's space from its own trials.

The choice depends only on the study's trials, so any worker attached to the study (another
process, another machine) makes the same kind of choice.

References
----------
.. [1] K. Jamieson and A. Talwalkar, "Non-stochastic best arm identification and hyperparameter
   optimization", AISTATS 2016.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from mlworker.training.algorithms import Algorithm, Task, available_algorithms

#: Tuned trials each survivor gets in the first round of successive halving (doubling after).
ROUND_TRIALS = 3
#: An algorithm is passed over when one of its trials takes more than this share of the time left.
AFFORDABLE_SHARE = 1 / 3

_BOOSTED = {
    "n_estimators": 1000,  # an upper bound: early stopping inside each fold picks the number
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "reg_alpha": 0.001,
}
_FOREST = {"n_estimators": 300, "max_depth": 20, "min_samples_split": 2, "min_samples_leaf": 1}
_HIST = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20}
_GRADIENT = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3, "subsample": 1.0}

#: First configuration tried for each algorithm: good on most small tables, inside the space.
WARM_STARTS: dict[str, dict[str, Any]] = {
    "LogisticRegression": {"C": 1.0, "solver": "lbfgs", "penalty": "l2", "max_iter": 1000},
    "LinearRegression": {"fit_intercept": True},
    "Ridge": {"alpha": 1.0},
    "LGBMClassifier": {**_BOOSTED, "num_leaves": 15, "min_child_samples": 10},
    "LGBMRegressor": {**_BOOSTED, "num_leaves": 15, "min_child_samples": 10},
    "XGBClassifier": {**_BOOSTED, "max_depth": 4, "min_child_weight": 1.0},
    "XGBRegressor": {**_BOOSTED, "max_depth": 4, "min_child_weight": 1.0},
    "HistGradientBoostingClassifier": _HIST,
    "HistGradientBoostingRegressor": _HIST,
    "RandomForestClassifier": {**_FOREST, "max_features": "sqrt"},
    "RandomForestRegressor": {**_FOREST, "max_features": 1.0},
    "GradientBoostingClassifier": _GRADIENT,
    "GradientBoostingRegressor": _GRADIENT,
    "SVC": {"C": 1.0, "kernel": "rbf", "gamma": "scale"},
    "SVR": {"C": 1.0, "kernel": "rbf", "gamma": "scale", "epsilon": 0.1},
}


def candidates(task: Task) -> tuple[Algorithm, ...]:
    """Return the installed algorithms of ``task``, cheapest first (table order breaks ties).

    Examples
    --------
    >>> candidates(Task.REGRESSION)[0].name
    'LinearRegression'
    """
    found = [a for a in available_algorithms().values() if a.task is task]
    order = {algorithm.name: index for index, algorithm in enumerate(found)}
    return tuple(sorted(found, key=lambda a: (a.cost, order[a.name])))


def warm_start(algorithm: Algorithm) -> dict[str, Any]:
    """Return the first configuration tried for ``algorithm`` (else its table defaults)."""
    return dict(WARM_STARTS.get(algorithm.name, algorithm.defaults))


@dataclass
class AlgorithmRecord:
    """What the study knows about one algorithm so far."""

    name: str
    trials: int = 0
    tuned: int = 0
    completed: int = 0
    best: float | None = None
    best_trial: int | None = None
    seconds: float = 0.0
    finished: int = 0

    @property
    def mean_seconds(self) -> float:
        """Mean duration of its finished trials (0 when none finished)."""
        return self.seconds / self.finished if self.finished else 0.0


def records(trials: Sequence[FrozenTrial], names: Sequence[str]) -> dict[str, AlgorithmRecord]:
    """Tally the study's trials per algorithm (``names`` fixes the order)."""
    tally = {name: AlgorithmRecord(name) for name in names}
    for trial in trials:
        record = tally.get(str(trial.user_attrs.get("algorithm")))
        if record is None or trial.state is TrialState.WAITING:
            continue
        record.trials += 1
        if not trial.user_attrs.get("warm_start"):
            record.tuned += 1
        if trial.duration is not None:
            record.seconds += trial.duration.total_seconds()
            record.finished += 1
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            record.completed += 1
            if record.best is None or trial.value > record.best:
                record.best, record.best_trial = trial.value, trial.number
    return tally


def choose(
    trials: Sequence[FrozenTrial],
    algorithms: Sequence[Algorithm],
    *,
    remaining: float | None,
) -> Algorithm:
    """Pick the algorithm for the next tuned trial (successive halving; see the module doc).

    Parameters
    ----------
    trials
        The study's trials so far (every worker's).
    algorithms
        Candidates, cheapest first.
    remaining
        Seconds left in the search, or ``None`` without a time budget.
    """
    tally = records(trials, [a.name for a in algorithms])
    by_name = {a.name: a for a in algorithms}
    alive = [tally[a.name] for a in algorithms if tally[a.name].best is not None]
    if not alive:
        return min(algorithms, key=lambda a: tally[a.name].trials)
    affordable = [
        record
        for record in alive
        if remaining is None or record.mean_seconds <= AFFORDABLE_SHARE * remaining
    ] or [min(alive, key=lambda record: record.mean_seconds)]
    ranked = sorted(affordable, key=lambda record: -_best(record))
    keep = _survivors(len(ranked), sum(record.tuned for record in ranked))
    survivors = ranked[:keep]
    chosen = min(survivors, key=lambda record: (record.tuned, survivors.index(record)))
    return by_name[chosen.name]


def _best(record: AlgorithmRecord) -> float:
    return record.best if record.best is not None else -math.inf


def _survivors(count: int, tuned: int) -> int:
    """Algorithms kept in the current round after ``tuned`` tuned trials.

    Examples
    --------
    >>> [_survivors(7, n) for n in (0, 20, 21, 44, 45, 68, 69, 500)]
    [7, 7, 4, 4, 2, 2, 1, 1]
    """
    spent, round_number = tuned, 0
    while True:
        keep = max(1, math.ceil(count / (1 << round_number)))
        cost = keep * ROUND_TRIALS * (1 << round_number)
        if keep == 1 or spent < cost:
            return keep
        spent -= cost
        round_number += 1


def leaderboard(
    trials: Sequence[FrozenTrial], algorithms: Sequence[Algorithm]
) -> list[dict[str, Any]]:
    """Per algorithm: best score, trials run and time spent, best first."""
    rows = []
    for record in records(trials, [a.name for a in algorithms]).values():
        if record.trials == 0:
            continue
        rows.append(
            {
                "algorithm": record.name,
                "best_score": record.best,
                "best_trial": record.best_trial,
                "trials": record.trials,
                "completed": record.completed,
                "seconds": round(record.seconds, 3),
            }
        )
    return sorted(
        rows, key=lambda row: -row["best_score"] if row["best_score"] is not None else math.inf
    )


def excluded_choices(
    algorithm: Algorithm, classes: Sequence[Any] | None
) -> Mapping[str, tuple[Any, ...]]:
    """Choices to leave out of ``algorithm``'s search for this target (none in general).

    liblinear fits one-vs-rest only for two classes; scikit-learn refuses it for more.
    """
    if algorithm.name == "LogisticRegression" and classes is not None and len(classes) > 2:
        return {"solver": ("liblinear",)}
    return {}
