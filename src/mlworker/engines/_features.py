"""Turning candidate frames into numeric design matrices for the linear engines.

A :class:`FeatureEncoder` is fitted on a candidate frame (every column but the reserved ids):
numeric columns, booleans included, are standardised with their mean and population standard
deviation (a constant column keeps scale 1), and a missing numeric value becomes the mean, i.e.
``0`` after scaling. Every other column is one-hot encoded as ``"field=value"`` features, the most
frequent values first and at most ``max_levels`` of them per field; a missing, unseen or dropped
value encodes as an all-zero block. Because every feature belongs to exactly one field,
contributions computed per feature (``weight * value``) add up to one contribution per original
field (:meth:`FeatureEncoder.field_contributions`), which is what explanations name.

Values are read leniently, since candidates arrive as JSON: a numeric field whose values come as
strings (``"42"``) is still numeric, booleans count as ``1``/``0``, infinities count as missing,
and categorical values are compared by their canonical text (:func:`canonical_text`), so ``3``,
``3.0`` and ``"3"`` are the same category.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from mlworker.engines._base import feature_columns

#: Default cap on one-hot levels per categorical field; rarer values encode as all zeros.
MAX_LEVELS = 50


def canonical_text(value: Any) -> str:
    """Return the text a value is compared by: JSON booleans, no ``.0`` on whole floats.

    Examples
    --------
    >>> [canonical_text(v) for v in (True, 3, 3.0, 2.5, "gold", np.int64(7))]
    ['true', '3', '3', '2.5', 'gold', '7']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, Real) and not isinstance(value, int | np.integer):
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return str(number)
    return str(value)


def canonical_texts(series: pd.Series) -> np.ndarray:
    """:func:`canonical_text` of every value, vectorised where the dtype allows.

    Missing entries get some text; callers mask them with ``series.isna()``.

    Examples
    --------
    >>> canonical_texts(pd.Series([1.0, 2.5, None])).tolist()
    ['1', '2.5', 'nan']
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.where(series.to_numpy(dtype=bool), "true", "false").astype(object)
    if pd.api.types.is_integer_dtype(series.dtype) and not isinstance(
        series.dtype, pd.api.extensions.ExtensionDtype
    ):
        return series.to_numpy().astype(str).astype(object)
    if pd.api.types.is_float_dtype(series.dtype):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        texts = numbers.astype(str).astype(object)
        whole = np.isfinite(numbers) & (numbers == np.floor(numbers)) & (np.abs(numbers) < 1e15)
        texts[whole] = numbers[whole].astype(np.int64).astype(str)
        return texts
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(
        series.dtype
    ):
        return series.to_numpy(dtype=object, na_value="nan")
    return np.array([canonical_text(value) for value in series.astype(object)], dtype=object)


def numeric_values(series: pd.Series) -> np.ndarray:
    """Values as float64; missing, unparseable and infinite values become NaN.

    Examples
    --------
    >>> numeric_values(pd.Series([True, "42", "x", None, float("inf")], dtype=object)).tolist()
    [1.0, 42.0, nan, nan, nan]
    """
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        numbers = series.to_numpy().astype(np.float64, copy=False)
    elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numbers = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    return np.where(np.isfinite(numbers), numbers, np.nan)


def column(frame: pd.DataFrame, field: str) -> pd.Series:
    """Return the column named ``field`` (matched as text), or an all-missing one when absent."""
    if field in frame.columns:
        selected = frame[field]
    else:
        by_text = {str(name): name for name in frame.columns}
        if field not in by_text:
            return pd.Series([None] * len(frame), index=frame.index, dtype=object)
        selected = frame[by_text[field]]
    # A duplicated column name selects a frame; the first column wins.
    return selected.iloc[:, 0] if isinstance(selected, pd.DataFrame) else selected


def is_numeric_column(series: pd.Series) -> bool:
    """Whether a fitted field should be numeric: a numeric dtype, or every value parses.

    Examples
    --------
    >>> is_numeric_column(pd.Series(["1", "2.5", None])), is_numeric_column(pd.Series(["1", "a"]))
    (True, False)
    """
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return True
    present = series.notna().to_numpy()
    return bool(present.any()) and bool(np.isfinite(numeric_values(series)[present]).all())


@dataclass(frozen=True, slots=True)
class NumericField:
    """A standardised numeric field: ``(value - mean) / scale``, missing → ``0``."""

    name: str
    mean: float
    scale: float


@dataclass(frozen=True, slots=True)
class CategoricalField:
    """A one-hot field with one ``"name=level"`` feature per kept level."""

    name: str
    levels: tuple[str, ...]


Field = NumericField | CategoricalField


class FeatureEncoder:
    """Standardised numeric plus one-hot categorical features, one block per field.

    Parameters
    ----------
    fields
        The encoded fields in feature order (usually from :meth:`fit` or :meth:`from_state`).

    Raises
    ------
    ValueError
        Two features would share a name (a field called ``"tier=gold"`` next to ``tier``).

    Examples
    --------
    >>> frame = pd.DataFrame({"age": [20, 40], "tier": ["gold", "silver"], "offerId": ["a", "b"]})
    >>> encoder = FeatureEncoder.fit(frame)
    >>> encoder.feature_names
    ['age', 'tier=gold', 'tier=silver']
    >>> encoder.transform(pd.DataFrame({"age": ["30", None], "tier": ["gold", "bronze"]}))
    array([[0., 1., 0.],
           [0., 0., 0.]])
    """

    def __init__(self, fields: Sequence[Field] = ()) -> None:
        self.fields: tuple[Field, ...] = tuple(fields)
        names: list[str] = []
        owners: list[int] = []
        for position, spec in enumerate(self.fields):
            block = (
                [spec.name]
                if isinstance(spec, NumericField)
                else [f"{spec.name}={level}" for level in spec.levels]
            )
            names.extend(block)
            owners.extend([position] * len(block))
        if len(set(names)) != len(names):
            duplicated = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"feature names collide: {duplicated}")
        self.feature_names: list[str] = names
        self._owners = np.asarray(owners, dtype=np.intp)
        widths = [1 if isinstance(spec, NumericField) else len(spec.levels) for spec in self.fields]
        self._offsets = np.cumsum([0, *widths])[:-1].astype(int).tolist()
        self._codes = [
            {level: code for code, level in enumerate(spec.levels)}
            if isinstance(spec, CategoricalField)
            else {}
            for spec in self.fields
        ]

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, max_levels: int = MAX_LEVELS) -> FeatureEncoder:
        """Learn the fields of a candidate frame; all-missing columns are left out.

        Parameters
        ----------
        frame
            Candidates or interactions; the reserved id columns are ignored.
        max_levels
            Most frequent values kept per categorical field (ties broken by text).
        """
        if max_levels < 1:
            raise ValueError("max_levels must be at least 1")
        fields: list[Field] = []
        for name in feature_columns(frame):
            series = column(frame, name)
            present = series.notna().to_numpy()
            if not present.any():
                continue
            if is_numeric_column(series):
                numbers = numeric_values(series)
                if np.isnan(numbers).all():
                    continue
                mean = float(np.nanmean(numbers))
                spread = float(np.nanstd(numbers))
                # Summation noise on a constant column must not become a huge scale factor.
                scale = spread if spread > 1e-12 * max(1.0, abs(mean)) else 1.0
                fields.append(NumericField(name, mean, scale))
            else:
                counts = pd.Series(canonical_texts(series)[present]).value_counts(sort=False)
                ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
                levels = tuple(str(level) for level, _ in ranked[:max_levels])
                fields.append(CategoricalField(name, levels))
        return cls(fields)

    @property
    def field_names(self) -> list[str]:
        """The original fields, in block order."""
        return [spec.name for spec in self.fields]

    @property
    def feature_fields(self) -> list[str]:
        """The field each feature belongs to, aligned with :attr:`feature_names`."""
        names = self.field_names
        return [names[owner] for owner in self._owners]

    @property
    def categorical_blocks(self) -> list[np.ndarray]:
        """Feature positions of each categorical field's one-hot block.

        Examples
        --------
        >>> FeatureEncoder([NumericField("age", 0.0, 1.0),
        ...                 CategoricalField("tier", ("gold", "silver"))]).categorical_blocks
        [array([1, 2])]
        """
        return [
            np.flatnonzero(self._owners == position)
            for position, spec in enumerate(self.fields)
            if isinstance(spec, CategoricalField)
        ]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` as the ``(len(frame), len(feature_names))`` float64 design matrix.

        Columns the encoder never saw are ignored; fields absent from ``frame`` encode as missing.
        """
        matrix = np.zeros((len(frame), len(self.feature_names)), dtype=np.float64)
        if len(frame) == 0:
            return matrix
        present = {str(name) for name in frame.columns}
        for spec, offset, lookup in zip(self.fields, self._offsets, self._codes, strict=True):
            if spec.name not in present:
                continue  # absent: the mean (0) for a numeric field, no level for a categorical
            series = column(frame, spec.name)
            if isinstance(spec, NumericField):
                standardised = (numeric_values(series) - spec.mean) / spec.scale
                matrix[:, offset] = np.nan_to_num(standardised, nan=0.0)
                continue
            texts = canonical_texts(series)
            codes = np.fromiter((lookup.get(text, -1) for text in texts), np.intp, len(texts))
            codes[series.isna().to_numpy()] = -1
            rows = np.flatnonzero(codes >= 0)
            matrix[rows, offset + codes[rows]] = 1.0
        return matrix

    def field_contributions(self, contributions: np.ndarray) -> np.ndarray:
        """Per-feature contributions ``(n, features)`` summed into per-field ones ``(n, fields)``.

        Examples
        --------
        >>> encoder = FeatureEncoder([NumericField("age", 0.0, 1.0),
        ...                           CategoricalField("tier", ("gold", "silver"))])
        >>> encoder.field_contributions(np.array([[0.5, 0.25, 0.0]])).tolist()
        [[0.5, 0.25]]
        """
        contributions = np.atleast_2d(np.asarray(contributions, dtype=np.float64))
        summed = np.zeros((contributions.shape[0], len(self.fields)), dtype=np.float64)
        np.add.at(summed.T, self._owners, contributions.T)
        return summed

    def explain_rows(self, contributions: np.ndarray) -> list[list[dict[str, Any]]]:
        """``{"field", "contribution"}`` per field and row, largest absolute contribution first.

        Examples
        --------
        >>> encoder = FeatureEncoder([NumericField("age", 0.0, 1.0),
        ...                           CategoricalField("tier", ("gold",))])
        >>> encoder.explain_rows(np.array([[0.5, -0.75]]))
        [[{'field': 'tier', 'contribution': -0.75}, {'field': 'age', 'contribution': 0.5}]]
        """
        per_field = self.field_contributions(contributions)
        names = self.field_names
        order = np.argsort(-np.abs(per_field), axis=1, kind="stable")
        return [
            [{"field": names[j], "contribution": float(row[j])} for j in ranking]
            for row, ranking in zip(per_field, order, strict=True)
        ]

    def state(self) -> dict[str, Any]:
        """Return the fields as JSON-safe values (see :meth:`from_state`)."""
        return {
            "fields": [
                {"name": spec.name, "kind": "numeric", "mean": spec.mean, "scale": spec.scale}
                if isinstance(spec, NumericField)
                else {"name": spec.name, "kind": "categorical", "levels": list(spec.levels)}
                for spec in self.fields
            ]
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureEncoder:
        """Rebuild an encoder from :meth:`state`.

        Raises
        ------
        ValueError
            The state is not one :meth:`state` produces.
        """
        fields: list[Field] = []
        try:
            for entry in state["fields"]:
                if entry["kind"] == "numeric":
                    scale = float(entry["scale"])
                    if not (math.isfinite(scale) and scale > 0):
                        raise ValueError(f"scale of {entry['name']!r} must be positive")
                    fields.append(NumericField(str(entry["name"]), float(entry["mean"]), scale))
                elif entry["kind"] == "categorical":
                    levels = tuple(str(level) for level in entry["levels"])
                    fields.append(CategoricalField(str(entry["name"]), levels))
                else:
                    raise ValueError(f"unknown field kind {entry['kind']!r}")
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed feature encoder state: {error!r}") from error
        return cls(fields)
