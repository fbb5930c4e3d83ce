"""Train one model: check the data, split, fit, score, evaluate on the held-out rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no type info

from mlworker.data.profile import to_numbers
from mlworker.errors import InvalidInput
from mlworker.training.algorithms import Algorithm, Task
from mlworker.training.evaluation import evaluate
from mlworker.training.features import (
    ColumnPlan,
    describe_plan,
    plan_features,
    refuse_infinite,
    to_booleans,
)
from mlworker.training.model import TrainedModel, fit_model, sample_weights
from mlworker.training.target import Target, analyse_target, class_counts, drop_unlabelled

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


@dataclass(frozen=True)
class PreparedData:
    """A training table checked and split into features and encoded target."""

    target: Target
    plan: tuple[ColumnPlan, ...]
    features: pd.DataFrame
    codes: np.ndarray
    dropped_rows: int


@dataclass(frozen=True)
class TrainingResult:
    """A trained model, its metrics on the held-out rows, and how it came to be."""

    model: TrainedModel
    metrics: dict[str, float]
    evaluation: dict[str, Any]
    holdout: pd.DataFrame
    n_train: int
    n_test: int
    training_time: float
    features: dict[str, Any]
    warnings: tuple[str, ...]


def prepare_data(frame: pd.DataFrame, target_column: str, *, task: Task | None) -> PreparedData:
    """Check the target, drop unlabelled rows, plan the feature columns.

    Raises
    ------
    InvalidInput
        Empty data, an unusable target, no usable feature column, or an infinite number in
        the target or a numeric feature (naming the column: fails before any fit).
    """
    if frame.empty:
        raise InvalidInput("the dataset has no rows", field="dataset")
    if target_column not in frame.columns:
        raise InvalidInput(
            f"target column {target_column!r} is not in the dataset; columns: "
            + ", ".join(map(str, frame.columns)),
            field="target_column",
        )
    labelled, dropped = drop_unlabelled(frame, target_column)
    if labelled.empty:
        raise InvalidInput(f"every row lacks a {target_column!r} value", field="target_column")
    if pd.api.types.is_numeric_dtype(labelled[target_column].dtype):
        refuse_infinite(labelled[target_column], column=target_column, field="target_column")
    target = analyse_target(labelled, target_column, task=task)
    plan = plan_features(labelled, exclude=(target_column,))
    if not any(column.used for column in plan):
        reasons = ", ".join(f"{c.name} ({c.reason})" for c in plan) or "none"
        raise InvalidInput(f"no usable feature columns: {reasons}", field="dataset")
    for column in plan:
        if column.role in ("numeric", "boolean"):
            convert = to_numbers if column.role == "numeric" else to_booleans
            refuse_infinite(convert(labelled[column.name]), column=column.name, field="dataset")
    features = labelled.drop(columns=[target_column]).reset_index(drop=True)
    codes = target.encode(labelled[target_column])
    return PreparedData(target, plan, features, codes, dropped)


def split_indices(
    data: PreparedData, *, test_size: float, stratify: bool, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split; stratified by class when asked (and possible)."""
    rows = np.arange(len(data.codes))
    classification = data.target.task is Task.CLASSIFICATION
    if classification and stratify:
        counts = class_counts(data.target, data.codes.tolist())
        rare = {label: n for label, n in counts.items() if 0 < n < 2}
        if rare:
            label = next(iter(rare))
            raise InvalidInput(
                f"class {label!r} has a single row; a stratified split needs at least two per "
                "class (remove the row, or send stratify=false)",
                field="target_column",
            )
    n_test = int(np.ceil(test_size * len(rows)))
    if n_test < 1 or len(rows) - n_test < 2:
        raise InvalidInput(
            f"{len(rows)} labelled rows are too few to hold out {test_size:.0%}", field="test_size"
        )
    if classification and stratify and n_test < len(data.target.classes or ()):
        raise InvalidInput(
            f"test_size={test_size} leaves {n_test} test rows for "
            f"{len(data.target.classes or ())} classes",
            field="test_size",
        )
    train, test = train_test_split(
        rows,
        test_size=test_size,
        random_state=random_state,
        stratify=data.codes if classification and stratify else None,
    )
    return np.sort(train), np.sort(test)


def train(
    frame: pd.DataFrame,
    target_column: str,
    algorithm: Algorithm,
    params: Mapping[str, Any],
    *,
    test_size: float = 0.2,
    stratify: bool = True,
    random_state: int = 42,
    class_weight: str | Mapping[Any, float] | None = None,
    n_jobs: int = 1,
    progress: Progress = _no_progress,
) -> TrainingResult:
    """Train ``algorithm`` on ``frame`` and evaluate it on a held-out split.

    Parameters
    ----------
    frame
        Raw rows, target included.
    target_column
        Column to predict.
    algorithm
        Entry of the algorithm table.
    params
        Validated hyperparameters.
    test_size
        Share of rows held out for evaluation.
    stratify
        Keep class proportions in both splits (classification).
    random_state
        Seed for the split and the estimator.
    class_weight
        ``"balanced"`` or a label → weight mapping (classification).
    n_jobs
        Threads the estimator may use.
    progress
        Callback ``(fraction, message)``.
    """
    progress(0.05, "checking data")
    data = prepare_data(frame, target_column, task=algorithm.task)
    train_rows, test_rows = split_indices(
        data, test_size=test_size, stratify=stratify, random_state=random_state
    )
    weights = sample_weights(data.target, data.codes[train_rows], class_weight)
    progress(0.15, f"fitting {algorithm.name} on {len(train_rows)} rows")
    # OpenMP and BLAS pools (HistGradientBoosting, linear algebra) take every core unless told
    # otherwise; n_jobs is this job's share, as it is for the estimators that take n_jobs.
    with threadpool_limits(limits=n_jobs):
        started = time.perf_counter()
        model = fit_model(
            algorithm,
            params,
            target=data.target,
            plan=data.plan,
            features=data.features.iloc[train_rows],
            codes=data.codes[train_rows],
            weights=weights,
            random_state=random_state,
            n_jobs=n_jobs,
        )
        training_time = time.perf_counter() - started
        progress(0.8, "evaluating on the held-out rows")
        holdout = data.features.iloc[test_rows].copy()
        holdout[target_column] = data.target.decode(data.codes[test_rows])
        evaluation = evaluate(model, holdout, random_state=random_state)
    warnings = []
    if data.dropped_rows:
        warnings.append(f"{data.dropped_rows} rows without a target value were left out")
    dropped = describe_plan(data.plan)["dropped"]
    if dropped:
        warnings.append(
            "columns left out: " + ", ".join(f"{name} ({why})" for name, why in dropped.items())
        )
    return TrainingResult(
        model=model,
        metrics=evaluation["metrics"],
        evaluation=evaluation,
        holdout=holdout,
        n_train=len(train_rows),
        n_test=len(test_rows),
        training_time=training_time,
        features=describe_plan(data.plan),
        warnings=tuple(warnings),
    )
