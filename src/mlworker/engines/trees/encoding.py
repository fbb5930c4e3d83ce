"""Candidate frames → the float64 feature matrix a tree ensemble reads.

Numeric columns pass through as ``float64``. Every other column is categorical: its values (as
strings) get integer codes at training time, and the value → code mapping travels with the
model, so the exported JSON alone turns a candidate into the same matrix row. Missing values and
values never seen in training become ``NaN``, which the trees route by LightGBM's own
missing-value rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype

#: What :func:`pandas.api.types.infer_dtype` calls an object column that holds only numbers.
_NUMERIC_INFERRED = frozenset(
    {"integer", "floating", "mixed-integer-float", "decimal", "boolean", "empty"}
)


def is_numeric_column(column: pd.Series) -> bool:
    """Whether a training column is numeric (numbers, booleans, or nothing but missing values).

    Examples
    --------
    >>> is_numeric_column(pd.Series([1, None, 2.5], dtype=object))
    True
    >>> is_numeric_column(pd.Series(["gold", None]))
    False
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    if is_bool_dtype(dtype) or is_numeric_dtype(dtype):
        return not pd.api.types.is_complex_dtype(dtype)
    if dtype is np.dtype(object):
        return infer_dtype(column, skipna=True) in _NUMERIC_INFERRED
    return False


def category_key(value: Any) -> str:
    """Return the string a categorical value is matched by, in training and scoring alike.

    Examples
    --------
    >>> category_key("gold"), category_key(3)
    ('gold', '3')
    """
    return value if isinstance(value, str) else str(value)


def _as_float(column: pd.Series) -> np.ndarray:
    if is_bool_dtype(column.dtype) or (
        is_numeric_dtype(column.dtype) and not isinstance(column.dtype, pd.CategoricalDtype)
    ):
        if isinstance(column.dtype, np.dtype):
            return column.to_numpy(dtype=np.float64)
        # Nullable dtypes (Int64, boolean) carry pd.NA, which only na_value turns into NaN.
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    # Strings that are numbers ("42") count; anything else is missing rather than an error.
    coerced = pd.to_numeric(column.astype(object), errors="coerce")
    return np.asarray(coerced, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class FeatureEncoder:
    """Column layout and categorical codes of one trained ensemble.

    Parameters
    ----------
    feature_names
        Matrix columns, in order.
    categorical
        ``feature → {value: code}`` for every categorical feature; codes are ``0..k-1``.

    Examples
    --------
    >>> frame = pd.DataFrame({"age": [30, None], "tier": ["gold", "silver"]})
    >>> encoder = FeatureEncoder.fit(frame, ["age", "tier"])
    >>> encoder.categorical
    {'tier': {'gold': 0, 'silver': 1}}
    >>> encoder.transform(pd.DataFrame({"tier": ["silver", "platinum"]})).tolist()
    [[nan, 1.0], [nan, nan]]
    """

    feature_names: tuple[str, ...]
    categorical: Mapping[str, Mapping[str, int]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> FeatureEncoder:
        """Learn which of ``columns`` are categorical and number their values (sorted)."""
        labels = {str(label): label for label in frame.columns}
        categorical: dict[str, dict[str, int]] = {}
        for name in columns:
            column = frame[labels[name]]
            if is_numeric_column(column):
                continue
            present = column[column.notna()]
            values = sorted({category_key(value) for value in present.tolist()})
            categorical[name] = {value: code for code, value in enumerate(values)}
        return cls(tuple(columns), categorical)

    @property
    def categorical_indices(self) -> list[int]:
        """Matrix column indices of the categorical features."""
        return [i for i, name in enumerate(self.feature_names) if name in self.categorical]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` as a ``(len(frame), n_features)`` C-contiguous float64 matrix.

        Columns the model never saw are ignored; features absent from ``frame`` are missing.
        """
        labels = {str(label): label for label in frame.columns}
        matrix = np.full((len(frame), len(self.feature_names)), np.nan, dtype=np.float64)
        for index, name in enumerate(self.feature_names):
            if name not in labels or len(frame) == 0:
                continue
            column = frame[labels[name]]
            codes = self.categorical.get(name)
            if codes is None:
                matrix[:, index] = _as_float(column)
            else:
                matrix[:, index] = _codes(column, codes)
        return matrix

    def to_json(self) -> dict[str, Any]:
        """``feature_names`` and ``categorical`` as plain JSON values."""
        return {
            "feature_names": list(self.feature_names),
            "categorical": {name: dict(codes) for name, codes in self.categorical.items()},
        }

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> FeatureEncoder:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        ValueError
            The names or codes are malformed.
        """
        names = state.get("feature_names")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError("feature_names must be a list of strings")
        raw = state.get("categorical") or {}
        if not isinstance(raw, Mapping):
            raise ValueError("categorical must map feature names to {value: code}")
        categorical: dict[str, dict[str, int]] = {}
        for name, codes in raw.items():
            if name not in names:
                raise ValueError(f"categorical feature {name!r} is not in feature_names")
            if not isinstance(codes, Mapping) or not all(
                isinstance(code, int) and not isinstance(code, bool) and code >= 0
                for code in codes.values()
            ):
                raise ValueError(f"categorical codes of {name!r} must be non-negative integers")
            categorical[name] = {str(value): int(code) for value, code in codes.items()}
        return cls(tuple(names), categorical)


def _codes(column: pd.Series, codes: Mapping[str, int]) -> np.ndarray:
    values = column.to_numpy(dtype=object)
    present = ~pd.isna(values)
    out = np.full(len(values), np.nan, dtype=np.float64)
    # A dict lookup per value beats pandas' hashing here: the keys must be built in Python
    # anyway, and small candidate batches would pay pandas' fixed costs many times over.
    lookup, missing = codes.get, np.nan
    keys = (category_key(value) for value in values[present])
    out[present] = np.fromiter(
        (lookup(key, missing) for key in keys), dtype=np.float64, count=int(present.sum())
    )
    return out
