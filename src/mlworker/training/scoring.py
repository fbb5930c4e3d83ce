"""Cross-validation scores a search may optimise: a whitelist, every one "higher is better".

Defaults per task: ``roc_auc`` for a binary target, ``f1_weighted`` for a multiclass target,
``r2`` for regression. ``f1_weighted`` is the multiclass default because it is the ``f1_score``
``/train`` reports (weighted over classes), it equals accuracy's ranking on balanced classes and,
unlike accuracy, it does not reward a model that ignores a rare class. Losses are negated
(``neg_log_loss``, ``neg_root_mean_squared_error`` …), scikit-learn's convention, so every study
maximises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from mlworker.errors import InvalidInput
from mlworker.training.algorithms import Task
from mlworker.training.target import Target

#: ``score(truth, predicted, proba)``: predicted codes (or values) and class probabilities.
ScoreFunction = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]


@dataclass(frozen=True)
class Scorer:
    """One whitelisted score.

    Attributes
    ----------
    name
        Name a request uses (``roc_auc``).
    task
        The task it applies to.
    function
        ``function(truth, predicted, proba)`` → the score, higher is better.
    """

    name: str
    task: Task
    function: ScoreFunction

    def __call__(self, truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
        """Score one fold; an undefined score (one class in the fold) is NaN."""
        try:
            value = float(self.function(truth, predicted, proba))
        except ValueError:
            return math.nan
        return value


def _roc_auc(truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
    assert proba is not None
    if proba.shape[1] == 2:
        return float(skm.roc_auc_score(truth, proba[:, 1]))
    labels = np.arange(proba.shape[1])
    return float(skm.roc_auc_score(truth, proba, multi_class="ovr", average="macro", labels=labels))


def _f1(average: str) -> ScoreFunction:
    def score(truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
        return float(skm.f1_score(truth, predicted, average=average, zero_division=0))

    return score


def _neg_log_loss(truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
    assert proba is not None
    labels = np.arange(proba.shape[1])
    return -float(skm.log_loss(truth, np.clip(proba, 1e-15, 1.0), labels=labels))


def _neg_rmse(truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
    return -math.sqrt(float(skm.mean_squared_error(truth, predicted)))


_SCORERS = (
    Scorer("roc_auc", Task.CLASSIFICATION, _roc_auc),
    Scorer("accuracy", Task.CLASSIFICATION, lambda t, p, _: float(skm.accuracy_score(t, p))),
    Scorer(
        "balanced_accuracy",
        Task.CLASSIFICATION,
        lambda t, p, _: float(skm.balanced_accuracy_score(t, p)),
    ),
    Scorer("f1_weighted", Task.CLASSIFICATION, _f1("weighted")),
    Scorer("f1_macro", Task.CLASSIFICATION, _f1("macro")),
    Scorer("neg_log_loss", Task.CLASSIFICATION, _neg_log_loss),
    Scorer("r2", Task.REGRESSION, lambda t, p, _: float(skm.r2_score(t, p))),
    Scorer(
        "neg_mean_squared_error",
        Task.REGRESSION,
        lambda t, p, _: -float(skm.mean_squared_error(t, p)),
    ),
    Scorer("neg_root_mean_squared_error", Task.REGRESSION, _neg_rmse),
    Scorer(
        "neg_mean_absolute_error",
        Task.REGRESSION,
        lambda t, p, _: -float(skm.mean_absolute_error(t, p)),
    ),
)
#: Every score a search may optimise, by name.
SCORERS: dict[str, Scorer] = {scorer.name: scorer for scorer in _SCORERS}


def default_scoring(target: Target) -> str:
    """Return the score a search optimises when the request names none.

    Examples
    --------
    >>> default_scoring(Target("churn", Task.CLASSIFICATION, ("No", "Yes")))
    'roc_auc'
    >>> default_scoring(Target("species", Task.CLASSIFICATION, ("a", "b", "c")))
    'f1_weighted'
    >>> default_scoring(Target("price", Task.REGRESSION))
    'r2'
    """
    if target.task is Task.REGRESSION:
        return "r2"
    return "roc_auc" if len(target.classes or ()) == 2 else "f1_weighted"


def resolve_scoring(name: str | None, target: Target) -> Scorer:
    """Return the scorer called ``name`` (the task's default when ``None``).

    Raises
    ------
    InvalidInput
        ``field="scoring"``: not on the whitelist, or made for the other task.
    """
    chosen = name or default_scoring(target)
    scorer = SCORERS.get(chosen)
    if scorer is None:
        known = ", ".join(s.name for s in _SCORERS if s.task is target.task)
        raise InvalidInput(f"unknown scoring {chosen!r}; for this task: {known}", field="scoring")
    if scorer.task is not target.task:
        known = ", ".join(s.name for s in _SCORERS if s.task is target.task)
        raise InvalidInput(
            f"scoring {chosen!r} is for {scorer.task.value}, but the target is a "
            f"{target.task.value} target; use one of: {known}",
            field="scoring",
        )
    return scorer


def check_scoring_name(name: str | None) -> None:
    """Refuse a scoring name that is not on the whitelist at all (at submission time).

    Raises
    ------
    InvalidInput
        ``field="scoring"``.
    """
    if name is not None and name not in SCORERS:
        raise InvalidInput(
            f"unknown scoring {name!r}; known: {', '.join(SCORERS)}", field="scoring"
        )
