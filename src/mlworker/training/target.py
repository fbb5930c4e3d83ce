"""The target column: task detection, class encoding, and the checks a careful user expects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlworker.data.profile import to_numbers
from mlworker.errors import InvalidInput
from mlworker.training.algorithms import Task

#: A numeric target with more distinct values than this (and than 5% of rows) is continuous.
_MAX_CLASSES = 50


def _plain(value: Any) -> Any:
    """Return a JSON-friendly Python scalar for a class label."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()
    return value


@dataclass(frozen=True)
class Target:
    """The prediction target and, for classification, its classes in code order."""

    name: str
    task: Task
    classes: tuple[Any, ...] | None = None

    def encode(self, values: pd.Series) -> np.ndarray:
        """Class codes ``0..k-1`` (classification) or floats (regression)."""
        if self.task is Task.REGRESSION:
            return to_numbers(values).to_numpy(dtype="float64")
        assert self.classes is not None
        index = {label: code for code, label in enumerate(self.classes)}
        return np.asarray([index[_plain(value)] for value in values], dtype="int64")

    def decode(self, codes: np.ndarray) -> list[Any]:
        """Original labels (classification) or plain floats (regression)."""
        if self.task is Task.REGRESSION:
            return [float(value) for value in codes]
        assert self.classes is not None
        return [self.classes[int(code)] for code in codes]


def _is_continuous(values: pd.Series) -> bool:
    numbers = to_numbers(values)
    if numbers.notna().mean() < 0.95:
        return False  # text labels
    distinct = numbers.dropna().unique()
    fractional = bool(np.any(np.abs(distinct - np.round(distinct)) > 1e-9))
    return fractional or len(distinct) > max(_MAX_CLASSES, 0.05 * len(values))


def analyse_target(frame: pd.DataFrame, column: str, *, task: Task | None) -> Target:
    """Check the target column and fix the task and classes.

    Parameters
    ----------
    frame
        Training rows (rows with a missing target are expected to be removed already).
    column
        Target column name.
    task
        The task the chosen algorithm performs; ``None`` infers it from the values.

    Raises
    ------
    InvalidInput
        Unknown column, no labelled rows, a single class, a continuous target for a classifier,
        or a non-numeric target for a regressor.
    """
    if column not in frame.columns:
        raise InvalidInput(
            f"target column {column!r} is not in the dataset; columns: {', '.join(frame.columns)}",
            field="target_column",
        )
    values = frame[column]
    if values.empty:
        raise InvalidInput(f"target column {column!r} has no values", field="target_column")
    continuous = _is_continuous(values)
    if task is None:
        task = Task.REGRESSION if continuous else Task.CLASSIFICATION
    if task is Task.REGRESSION:
        numbers = to_numbers(values)
        if numbers.isna().any():
            raise InvalidInput(
                f"target column {column!r} is not numeric; use a classifier", field="target_column"
            )
        if numbers.nunique() < 2:
            raise InvalidInput(f"target column {column!r} is constant", field="target_column")
        return Target(column, task)
    if continuous:
        raise InvalidInput(
            f"target column {column!r} is continuous ({values.nunique()} distinct numeric "
            "values); use a regression algorithm",
            field="target_column",
        )
    classes = sorted({_plain(value) for value in values}, key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise InvalidInput(
            f"target column {column!r} has a single class ({classes[0]!r}); a classifier needs "
            "at least two",
            field="target_column",
        )
    return Target(column, task, tuple(classes))


def drop_unlabelled(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, int]:
    """Remove rows whose target is missing or blank; return the rest and how many went."""
    if column not in frame.columns:
        return frame, 0
    values = frame[column]
    blank = values.isna()
    if pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        blank |= values.astype("string").str.strip().fillna("") == ""
    kept = frame.loc[~blank.to_numpy(dtype=bool)]
    return kept, int(blank.sum())


def class_counts(target: Target, codes: Sequence[int]) -> dict[Any, int]:
    """Rows per class label."""
    assert target.classes is not None
    counts = np.bincount(np.asarray(codes, dtype="int64"), minlength=len(target.classes))
    return {label: int(count) for label, count in zip(target.classes, counts, strict=True)}
