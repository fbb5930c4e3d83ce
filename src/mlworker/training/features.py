"""Which columns a model uses and how raw values become model inputs.

:func:`plan_features` decides, once, from the training frame: identifier-like, constant,
all-missing and free-text columns are dropped (with the reason reported); numeric strings with
blanks become numbers; Yes/No columns become 0/1; datetimes become their parts; everything else
is categorical. :class:`FeaturePreparer` applies that plan to any frame — at training and at
prediction time — as the first step of every saved pipeline, so a model is always fed the same
way it was trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlworker.data.profile import infer_kind, to_numbers
from mlworker.data.values import ColumnKind
from mlworker.errors import InvalidInput

MISSING = "__missing__"
OTHER = "__other__"
DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour")
_TRUE = frozenset({"true", "yes", "y", "t", "1"})
_FALSE = frozenset({"false", "no", "n", "f", "0"})
#: Categories kept per column; rarer ones share the ``__other__`` level.
MAX_CATEGORIES = 30


@dataclass(frozen=True)
class ColumnPlan:
    """What happens to one input column."""

    name: str
    kind: str
    role: str  # "numeric", "boolean", "datetime", "categorical" or "dropped"
    reason: str | None = None

    @property
    def used(self) -> bool:
        """Whether the column feeds the model."""
        return self.role != "dropped"


def _identifier_like(series: pd.Series, kind: ColumnKind) -> bool:
    values = series.dropna()
    if len(values) < 20 or values.nunique() < 0.95 * len(values):
        return False
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.TEXT):
        return True
    if kind is ColumnKind.NUMERIC and pd.api.types.is_integer_dtype(values.dtype):
        name = str(series.name).lower()
        monotonic = values.is_monotonic_increasing or values.is_monotonic_decreasing
        return monotonic or name == "id" or name.endswith(("id", "_id", "key", "uuid"))
    return False


def plan_column(series: pd.Series) -> ColumnPlan:
    """Decide the role of one column from its values."""
    name = str(series.name)
    kind = infer_kind(series)
    present = series.dropna()
    if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        present = present[present.astype(str).str.strip() != ""]
    if present.empty:
        return ColumnPlan(name, kind.value, "dropped", "all values missing")
    if present.nunique() <= 1:
        return ColumnPlan(name, kind.value, "dropped", "constant")
    if _identifier_like(series, kind):
        return ColumnPlan(name, kind.value, "dropped", "identifier (a distinct value per row)")
    if kind is ColumnKind.TEXT:
        return ColumnPlan(name, kind.value, "dropped", "free text")
    role = {
        ColumnKind.NUMERIC: "numeric",
        ColumnKind.BOOLEAN: "boolean",
        ColumnKind.DATETIME: "datetime",
    }.get(kind, "categorical")
    return ColumnPlan(name, kind.value, role)


def plan_features(frame: pd.DataFrame, *, exclude: tuple[str, ...] = ()) -> tuple[ColumnPlan, ...]:
    """Plan every column of ``frame`` except ``exclude`` (the target)."""
    return tuple(plan_column(frame[column]) for column in frame.columns if column not in exclude)


def refuse_infinite(values: pd.Series, *, column: str, field: str | None) -> None:
    """Refuse ``inf`` and ``-inf`` among the numbers of ``column``.

    Infinity is a data error (an overflow, a division by zero upstream), not a missing value:
    imputing it would hide the bug and train on a made-up number, and no estimator can use it.
    Missing values (blank, NaN) stay allowed: features impute them, targets drop their rows.

    Raises
    ------
    InvalidInput
        Naming the column, how many values are infinite and the first row holding one.

    Examples
    --------
    >>> refuse_infinite(pd.Series([1.0, None]), column="x", field="dataset")
    >>> refuse_infinite(pd.Series([1.0, float("inf")]), column="x", field=None)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlworker.errors.InvalidInput: column 'x' holds 1 infinite value (first in row 1); ...
    """
    infinite = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
    count = int(infinite.sum())
    if count:
        row = values.index[int(infinite.argmax())]
        noun = "value" if count == 1 else "values"
        raise InvalidInput(
            f"column {column!r} holds {count} infinite {noun} (first in row {row}); "
            "use finite numbers, or leave a cell blank for a missing value",
            field=field,
            column=column,
        )


def to_booleans(series: pd.Series) -> pd.Series:
    """1.0 for true-like values, 0.0 for false-like, NaN otherwise."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    text = series.astype("string").str.strip().str.lower()
    result = pd.Series(np.nan, index=series.index, dtype="float64")
    result[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = 1.0
    result[text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = 0.0
    return result


#: pandas accessor of each part whose column name predates pandas' current spelling.
_PART_ACCESSORS = {"dayofweek": "day_of_week"}


def _datetime_parts(series: pd.Series) -> dict[str, pd.Series]:
    stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    return {
        f"{series.name}__{part}": getattr(stamps.dt, _PART_ACCESSORS.get(part, part)).astype(
            "float64"
        )
        for part in DATETIME_PARTS
    }


def _categories(series: pd.Series) -> list[str]:
    counts = series.value_counts()
    kept = counts[counts >= max(2, int(0.001 * len(series)))].index[:MAX_CATEGORIES]
    return sorted(str(value) for value in kept)


class FeaturePreparer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Turn raw columns into model inputs according to a column plan.

    Numeric output columns are ``float64`` (NaN where missing, imputed later in the pipeline);
    categorical output columns are strings, with ``__missing__`` for missing values and
    ``__other__`` for categories too rare at training time (or unseen since).

    Parameters
    ----------
    plan
        Column plans as dictionaries (kept JSON-serialisable so the saved pipeline is too).
    """

    def __init__(self, plan: list[dict[str, Any]] | None = None) -> None:
        self.plan = plan

    def _plans(self) -> list[ColumnPlan]:
        return [ColumnPlan(**item) for item in self.plan or []]

    def fit(self, frame: pd.DataFrame, y: Any = None) -> FeaturePreparer:
        """Learn the categories kept for each categorical column."""
        self.categories_: dict[str, list[str]] = {}
        for column in self._plans():
            if column.role == "categorical":
                self.categories_[column.name] = _categories(self._text(frame[column.name]))
        self.feature_names_in_ = np.asarray([c.name for c in self._plans()], dtype=object)
        prepared = self.transform(frame)
        self.numeric_columns_ = [c for c in prepared.columns if prepared[c].dtype.kind == "f"]
        self.categorical_columns_ = [c for c in prepared.columns if c not in self.numeric_columns_]
        return self

    @staticmethod
    def _text(series: pd.Series) -> pd.Series:
        text = series.astype("string").str.strip()
        return text.where(text.notna() & (text != ""), MISSING).astype(object)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Apply the plan; missing input columns raise ``KeyError`` naming them.

        Raises
        ------
        KeyError
            A planned column is absent.
        InvalidInput
            A numeric column holds an infinite value (:func:`refuse_infinite`).
        """
        used = [column for column in self._plans() if column.used]
        missing = [column.name for column in used if column.name not in frame.columns]
        if missing:
            raise KeyError(missing)
        output: dict[str, pd.Series] = {}
        for column in used:
            series = frame[column.name]
            if column.role in ("numeric", "boolean"):
                convert = to_numbers if column.role == "numeric" else to_booleans
                output[column.name] = convert(series)
                refuse_infinite(output[column.name], column=column.name, field=None)
            elif column.role == "datetime":
                output.update(_datetime_parts(series))
            else:
                text = self._text(series)
                known = set(getattr(self, "categories_", {}).get(column.name, []))
                keep = text.isin(known) | (text == MISSING)
                output[column.name] = text.where(keep, OTHER)
        return pd.DataFrame(output, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the prepared columns."""
        return np.asarray([*self.numeric_columns_, *self.categorical_columns_], dtype=object)


def plan_to_dicts(plan: tuple[ColumnPlan, ...]) -> list[dict[str, Any]]:
    """JSON form of a plan (stored in the pipeline and the model metadata)."""
    return [asdict(column) for column in plan]


def describe_plan(plan: tuple[ColumnPlan, ...]) -> dict[str, Any]:
    """Summary for training results: used columns by role, dropped columns with reasons."""
    used: Mapping[str, list[str]] = {
        role: [c.name for c in plan if c.role == role]
        for role in ("numeric", "boolean", "datetime", "categorical")
    }
    return {
        "used": {role: names for role, names in used.items() if names},
        "dropped": {c.name: c.reason for c in plan if not c.used},
    }
