"""Which columns a segmentation can use, and as what.

Every column named (or every column, when none are) ends up as exactly one of: a numeric
feature (numbers, numeric strings, booleans as 0/1), a categorical feature, or an excluded column
with the reason it was left out (the ``idColumn``, all missing, constant, identifier-like, free
text, datetime, unsupported type).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlworker.data.profile import infer_kind, to_numbers
from mlworker.data.values import ColumnKind
from mlworker.errors import NoUsableColumns, UnknownColumn

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]

MAX_LEVELS = 20
"""Categorical levels kept as their own one-hot column; rarer ones become ``(other)``."""

_KIND_SAMPLE = 5000
_UNIQUE_SHARE = 0.95
_ID_WORDS = frozenset({"id", "uuid", "guid"})
_KEY_WORDS = frozenset({"key", "uuid", "guid", "id"})
_TRUE_TOKENS = frozenset({"true", "yes", "y", "t"})
_FALSE_TOKENS = frozenset({"false", "no", "n", "f"})
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\-\s.]+")
_TEXT_WORDS = 3


@dataclass(frozen=True, slots=True)
class ExcludedColumn:
    """A column left out of the features, and why."""

    column: str
    reason: str


@dataclass(frozen=True, slots=True)
class NumericColumn:
    """A column used as numbers: one float per frame row, NaN where missing."""

    name: str
    values: FloatArray


@dataclass(frozen=True, slots=True)
class CategoricalColumn:
    """A column used as categories: one code per frame row (``-1`` missing) into ``levels``."""

    name: str
    codes: IntArray
    levels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ColumnSelection:
    """The outcome of column selection, in frame (or ``fields``) order."""

    numeric: tuple[NumericColumn, ...]
    categorical: tuple[CategoricalColumn, ...]
    excluded: tuple[ExcludedColumn, ...]


def name_words(name: str) -> list[str]:
    """Split a snake, kebab or camel case column name into its words.

    Examples
    --------
    >>> name_words("purchaseFrequency"), name_words("customer_ID"), name_words("HTTPStatus")
    (['purchase', 'Frequency'], ['customer', 'ID'], ['HTTP', 'Status'])
    """
    spaced = _WORD_BOUNDARY.sub(" ", name)
    return [word for word in _SEPARATORS.split(spaced) if word]


def humanize(name: str) -> str:
    """Column name as words: ``annual_income`` → ``annual income``; acronyms stay upper case.

    Examples
    --------
    >>> humanize("purchaseFrequency"), humanize("annual_income"), humanize("customerLTV")
    ('purchase frequency', 'annual income', 'customer LTV')
    """
    words = name_words(name)
    return " ".join(word if word.isupper() and len(word) > 1 else word.lower() for word in words)


def looks_like_identifier_name(name: str) -> bool:
    """Whether the name says identifier: ``id``, ``customer_id``, ``orderUuid``, ``api_key``.

    Examples
    --------
    >>> [looks_like_identifier_name(n) for n in ("id", "customerId", "user_key", "paid", "age")]
    [True, True, True, False, False]
    """
    words = [word.lower() for word in name_words(name)]
    if not words:
        return False
    return words[0] in _ID_WORDS or words[-1] in _KEY_WORDS


def select_columns(
    frame: pd.DataFrame,
    fields: Sequence[str] | None,
    id_column: str | None,
    *,
    random_state: int,
) -> ColumnSelection:
    """Classify the candidate columns of ``frame`` into numeric, categorical and excluded.

    Parameters
    ----------
    frame
        The dataset.
    fields
        Columns asked for (``None``: every column).
    id_column
        The assignments' key column: checked to exist and always excluded.
    random_state
        Seed of the value sample kinds are inferred from.

    Raises
    ------
    UnknownColumn
        A field or the id column is not in ``frame``.
    NoUsableColumns
        Every candidate column was excluded.
    """
    # Frames built in notebooks may have non-string labels; requests name columns as strings.
    label_of = {str(column): column for column in frame.columns}
    present = set(label_of)
    if id_column is not None and id_column not in present:
        raise UnknownColumn(
            f"idColumn {id_column!r} is not a column of the dataset; name one of its columns "
            "or leave idColumn out",
            field="config.idColumn",
            column=id_column,
        )
    if fields is None:
        candidates = list(label_of)
    else:
        for index, field in enumerate(fields):
            if field not in present:
                raise UnknownColumn(
                    f"field {field!r} is not a column of the dataset; name only existing "
                    "columns or leave fields out to use them all",
                    field=f"config.fields.{index}",
                    column=field,
                )
        candidates = list(dict.fromkeys(fields))
    numeric: list[NumericColumn] = []
    categorical: list[CategoricalColumn] = []
    excluded: list[ExcludedColumn] = []
    for name in candidates:
        if name == id_column:
            excluded.append(ExcludedColumn(name, "idColumn: keys the assignments, never a feature"))
            continue
        outcome = classify_column(name, frame[label_of[name]], random_state=random_state)
        if isinstance(outcome, NumericColumn):
            numeric.append(outcome)
        elif isinstance(outcome, CategoricalColumn):
            categorical.append(outcome)
        else:
            excluded.append(outcome)
    if not numeric and not categorical:
        reasons = "; ".join(f"{item.column}: {item.reason}" for item in excluded) or "none given"
        raise NoUsableColumns(
            f"no column can be segmented on ({reasons}); name numeric or categorical columns "
            "in fields",
            field="config.fields",
        )
    return ColumnSelection(tuple(numeric), tuple(categorical), tuple(excluded))


def classify_column(
    name: str, series: pd.Series, *, random_state: int
) -> NumericColumn | CategoricalColumn | ExcludedColumn:
    """Decide how one column is used; see the module docstring for the reasons."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return ExcludedColumn(name, "datetime")
    non_missing = int(series.notna().sum())
    if non_missing == 0:
        return ExcludedColumn(name, "all missing")
    if looks_like_identifier_name(name):
        return ExcludedColumn(name, "identifier-like name")
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            return ExcludedColumn(name, "unsupported type complex")
        return _numeric_or_excluded(name, to_numbers(series).to_numpy(dtype=np.float64))
    if pd.api.types.is_timedelta64_dtype(dtype):
        return ExcludedColumn(name, "unsupported type timedelta")
    codes, levels = _codes_and_levels(series)
    if not (codes >= 0).any():
        return ExcludedColumn(name, "all missing")
    sample = _value_sample(series, random_state)
    kind = infer_kind(sample)
    if kind is ColumnKind.DATETIME:
        return ExcludedColumn(name, "datetime")
    if kind is ColumnKind.BOOLEAN:
        return _numeric_or_excluded(name, _take(_boolean_levels(levels), codes))
    if kind is ColumnKind.NUMERIC:
        numbers = to_numbers(pd.Series(levels, dtype=object)).to_numpy(dtype=np.float64)
        return _numeric_or_excluded(name, _take(numbers, codes))
    distinct = int(np.count_nonzero(np.bincount(codes[codes >= 0], minlength=len(levels))))
    if distinct <= 1:
        return ExcludedColumn(name, "constant")
    unique_per_row = distinct > MAX_LEVELS and distinct >= _UNIQUE_SHARE * int((codes >= 0).sum())
    if kind is ColumnKind.TEXT:
        many_words = sample.astype(str).str.count(r"\S+").mean() >= _TEXT_WORDS
        if many_words or not unique_per_row:
            return ExcludedColumn(name, "free text")
    if unique_per_row:
        return ExcludedColumn(name, "identifier-like: a distinct value on almost every row")
    return CategoricalColumn(name, codes, tuple(str(level) for level in levels))


def _numeric_or_excluded(name: str, values: FloatArray) -> NumericColumn | ExcludedColumn:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ExcludedColumn(name, "all missing")
    if finite.min() == finite.max():
        return ExcludedColumn(name, "constant")
    if _is_integer_identifier(finite):
        return ExcludedColumn(name, "identifier-like: a distinct integer on almost every row")
    # Infinities carry no distance information; they are treated as missing.
    return NumericColumn(name, np.where(np.isfinite(values), values, np.nan))


def _is_integer_identifier(values: FloatArray) -> bool:
    """Distinct integers on (almost) every row that are sequential or form a dense range.

    Integer measurements (incomes in whole currency units) are often distinct on small data
    too, so uniqueness alone is not enough: identifiers are also counted up or dense.
    """
    if values.size <= MAX_LEVELS or not np.all(np.mod(values, 1.0) == 0.0):
        return False
    distinct = np.unique(values).size
    if distinct < 0.99 * values.size:
        return False
    steps = np.diff(values)
    monotonic = bool(np.all(steps > 0) or np.all(steps < 0))
    dense = float(values.max() - values.min() + 1) <= 1.5 * distinct
    return monotonic or dense


def _codes_and_levels(series: pd.Series) -> tuple[IntArray, npt.NDArray[np.object_]]:
    """Integer codes (``-1`` missing) and the distinct values they index; blanks are missing."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int32)
        levels = np.asarray(series.cat.categories.astype(object), dtype=object)
    else:
        raw_codes, uniques = pd.factorize(series, use_na_sentinel=True)
        codes = raw_codes.astype(np.int32)
        levels = np.asarray(pd.Index(uniques).astype(object), dtype=object)
    blank = np.array([isinstance(level, str) and not level.strip() for level in levels], bool)
    if blank.any():
        codes = np.where((codes >= 0) & blank[np.maximum(codes, 0)], -1, codes).astype(np.int32)
    return codes, levels


def _value_sample(series: pd.Series, random_state: int) -> pd.Series:
    values = series.dropna()
    if len(values) > _KIND_SAMPLE:
        values = values.sample(_KIND_SAMPLE, random_state=random_state)
    return values


def _boolean_levels(levels: npt.NDArray[np.object_]) -> FloatArray:
    tokens = [str(level).strip().lower() for level in levels]
    return np.array(
        [1.0 if t in _TRUE_TOKENS else 0.0 if t in _FALSE_TOKENS else np.nan for t in tokens]
    )


def _take(level_values: FloatArray, codes: IntArray) -> FloatArray:
    """Per-row values from per-level values; code ``-1`` gives NaN."""
    padded = np.append(level_values.astype(np.float64), np.nan)
    return padded[np.where(codes >= 0, codes, len(level_values))]
