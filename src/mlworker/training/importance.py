"""Feature importance per original input column.

Native importances (trees, boosting: mean impurity decrease or gain; linear models: absolute
coefficients on standardised inputs) are summed from the model's inputs back to the raw column
they came from (one-hot levels, datetime parts). Models without either (kernel machines) get
permutation importance on the held-out rows. Values are non-negative and normalised to sum to 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mlworker.training.model import TrainedModel

TOP = 10
_PERMUTATION_ROWS = 2000


def input_sources(model: TrainedModel) -> list[str]:
    """Name the raw column behind each column of the estimator's input matrix."""
    columns = model.preprocessor.named_steps["preprocess"]
    sources: list[str] = []
    for name, transformer, selected in columns.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        prepared = list(selected)
        if name == "cat":
            for index, column in enumerate(prepared):
                sources.extend([column] * len(transformer.categories_[index]))
        else:
            sources.extend(prepared)
    plan_names = {column.name for column in model.plan}
    return [source if source in plan_names else raw_column(source) for source in sources]


def raw_column(prepared: str) -> str:
    """Name the raw column a derived one comes from: ``"signup__at__year"`` → ``"signup__at"``.

    Derived columns (datetime parts) append ``__<part>`` to the raw name, which may itself
    contain ``__``; only the last suffix is removed.
    """
    return str(prepared).rsplit("__", 1)[0]


def _native(model: TrainedModel) -> np.ndarray | None:
    estimator = model.estimator
    values = getattr(estimator, "feature_importances_", None)
    if values is None and hasattr(estimator, "coef_"):
        coefficients = np.atleast_2d(np.asarray(estimator.coef_, dtype="float64"))
        values = np.abs(coefficients).mean(axis=0)
    return None if values is None else np.asarray(values, dtype="float64")


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    positive = {name: max(0.0, float(value)) for name, value in scores.items()}
    total = sum(positive.values())
    if total <= 0:
        return {}
    ranked = sorted(positive.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return {name: value / total for name, value in ranked if value > 0}


def feature_importance(
    model: TrainedModel,
    holdout: pd.DataFrame,
    truth: np.ndarray,
    score: Callable[[TrainedModel, pd.DataFrame, np.ndarray], float],
    *,
    random_state: int = 0,
) -> tuple[dict[str, float], str]:
    """Top columns by importance and the method used (``native`` or ``permutation``).

    ``score(model, prepared_rows, truth)`` must rate predictions from prepared columns
    (:meth:`TrainedModel.prepare`), higher being better.
    """
    values = _native(model)
    if values is not None:
        sources = input_sources(model)
        if len(sources) == len(values):
            totals: dict[str, float] = {}
            for source, value in zip(sources, values, strict=True):
                totals[source] = totals.get(source, 0.0) + float(value)
            return _normalise(totals), "native"
    return _normalise(permutation(model, holdout, truth, score, random_state)), "permutation"


def permutation(
    model: TrainedModel,
    holdout: pd.DataFrame,
    truth: np.ndarray,
    score: Callable[[TrainedModel, pd.DataFrame, np.ndarray], float],
    random_state: int,
    repeats: int = 5,
) -> dict[str, float]:
    """Mean drop in ``score`` when one raw column is shuffled (Breiman, 2001).

    Columns are shuffled after preparation (all parts of a datetime together), which measures
    the same thing as shuffling the raw column but skips re-parsing it on every repeat.
    """
    rng = np.random.default_rng(random_state)
    if len(holdout) > _PERMUTATION_ROWS:
        rows = rng.choice(len(holdout), _PERMUTATION_ROWS, replace=False)
        holdout, truth = holdout.iloc[rows], truth[rows]
    prepared = model.prepare(holdout)
    baseline = score(model, prepared, truth)
    groups: dict[str, list[str]] = {}
    for column in prepared.columns:
        source = column if column in model.input_columns else raw_column(column)
        groups.setdefault(source, []).append(column)
    drops: dict[str, float] = {}
    for source, columns in groups.items():
        losses = []
        for _ in range(repeats):
            order = rng.permutation(len(prepared))
            shuffled = prepared.copy()
            for column in columns:
                shuffled[column] = prepared[column].to_numpy()[order]
            losses.append(baseline - score(model, shuffled, truth))
        drops[source] = float(np.mean(losses))
    return drops
