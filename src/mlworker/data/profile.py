"""Column kinds, counts and the dataset fingerprint."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pyarrow as pa

from mlworker.data.values import ColumnKind, ColumnProfile
from mlworker.serialization import canonical_hash

_BOOLEAN_TOKENS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f"})
# A four-digit year at one end: "2026-01-03", "03/01/2026", "3.1.2026"; not "1.2.3" (a version).
_DATE_LIKE = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})(?!\d)")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?")
_SAMPLE = 5000
_SHARE = 0.95


def to_numbers(series: pd.Series) -> pd.Series:
    """Numbers from numbers or numeric strings; blanks and anything else become NaN.

    ``"1,234.5"`` is read with its thousands separator; ``"1,5"`` is not a number (a decimal
    comma would need a locale we do not know).

    Examples
    --------
    >>> to_numbers(pd.Series([" 29.85", "", "1,234.5", "1,5", None])).tolist()
    [29.85, nan, 1234.5, nan, nan]
    """
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    text = series.astype("string").str.strip()
    grouped = text.str.fullmatch(_THOUSANDS).fillna(False).to_numpy(dtype=bool)
    text = text.where(~grouped, text.str.replace(",", "", regex=False))
    return pd.to_numeric(text, errors="coerce").astype("float64")


def infer_kind(series: pd.Series) -> ColumnKind:
    """Infer what ``series`` holds.

    Strings are looked at, not trusted: ``"Yes"/"No"`` is boolean, ``" 29.85"`` with a few blanks
    is numeric, ISO dates are datetimes, long multi-word strings are text.

    Examples
    --------
    >>> infer_kind(pd.Series(["Yes", "No", None, "yes"]))
    <ColumnKind.BOOLEAN: 'boolean'>
    >>> infer_kind(pd.Series(["29.85", " ", "1889.5", "108.15"]))
    <ColumnKind.NUMERIC: 'numeric'>
    >>> infer_kind(pd.Series(["1,234.50", "987", "12,000"]))
    <ColumnKind.NUMERIC: 'numeric'>
    >>> infer_kind(pd.Series(["2026-01-03", "2026-02-11 10:00:00"]))
    <ColumnKind.DATETIME: 'datetime'>
    >>> infer_kind(pd.Series(["Gold", "Silver", "Gold"]))
    <ColumnKind.CATEGORICAL: 'categorical'>
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnKind.BOOLEAN
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnKind.DATETIME
    if pd.api.types.is_numeric_dtype(dtype):
        return ColumnKind.NUMERIC
    values = series.dropna().astype(str).str.strip()
    values = values[values != ""]
    if values.empty:
        return ColumnKind.CATEGORICAL
    sample = values.sample(_SAMPLE, random_state=0) if len(values) > _SAMPLE else values
    lowered = sample.str.lower()
    if lowered.isin(_BOOLEAN_TOKENS).all() and lowered.nunique() <= 2:
        return ColumnKind.BOOLEAN
    if to_numbers(sample).notna().mean() >= _SHARE:
        return ColumnKind.NUMERIC
    if sample.str.match(_DATE_LIKE).mean() >= _SHARE:
        # utc=True: offsets that differ between rows (DST, mixed sources) must not fail parsing.
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
        if parsed.notna().mean() >= _SHARE:
            return ColumnKind.DATETIME
    words = sample.str.count(r"\S+").mean()
    length = sample.str.len().mean()
    unique_share = sample.nunique() / len(sample)
    if words >= 4 or (length >= 30 and unique_share > 0.5):
        return ColumnKind.TEXT
    return ColumnKind.CATEGORICAL


def profile_columns(frame: pd.DataFrame) -> tuple[ColumnProfile, ...]:
    """Profile every column of ``frame``."""
    profiles = []
    for name in frame.columns:
        series = frame[name]
        profiles.append(
            ColumnProfile(
                name=str(name),
                kind=infer_kind(series),
                dtype=str(series.dtype),
                missing=int(series.isna().sum()),
                distinct=int(series.nunique(dropna=True)),
            )
        )
    return tuple(profiles)


def fingerprint(description: dict[str, Any], schema: pa.Schema, row_count: int) -> str:
    """Hash of source description, schema and row count (ARCHITECTURE.md §5).

    Examples
    --------
    >>> schema = pa.schema([("a", pa.int64())])
    >>> fingerprint({"path": "x.csv"}, schema, 3) == fingerprint({"path": "x.csv"}, schema, 4)
    False
    """
    fields = [[field.name, str(field.type)] for field in schema]
    return canonical_hash({"source": description, "schema": fields, "rows": row_count})
