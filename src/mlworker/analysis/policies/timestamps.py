"""Timestamps in any form the loader produces, as int64 nanoseconds (UTC and wall clock)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mlworker.analysis.policies.rates import BoolArray, IntArray
from mlworker.errors import InvalidInput

# Tolerated share of non-blank timestamps that fail to parse (dropped and counted); above it the
# column is taken to be the wrong one.
MAX_UNPARSEABLE_SHARE = 0.05
# Unix epochs: the unit is read from the magnitude (seconds until year 5138, then ms, µs, ns).
EpochUnit = Literal["ns", "us", "ms", "s"]
_EPOCH_UNITS: tuple[tuple[float, EpochUnit], ...] = (
    (1e17, "ns"),
    (1e14, "us"),
    (1e11, "ms"),
    (0.0, "s"),
)


@dataclass(frozen=True, slots=True)
class ParsedTimes:
    """Timestamps as int64 nanoseconds: UTC for windows, wall clock for day and hour."""

    utc: IntArray
    wall_clock: IntArray
    valid: BoolArray
    unparseable: int
    time_zone: str | None
    note: str | None


def _datetimes_to_ns(values: pd.Series) -> tuple[IntArray, IntArray, BoolArray, str | None]:
    """Nanoseconds of a datetime64 series (naive or tz-aware); NaT marked invalid."""
    valid = values.notna().to_numpy(dtype=bool)
    time_zone: str | None = None
    wall = values
    utc = values
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        time_zone = str(values.dtype.tz)
        wall = values.dt.tz_localize(None)
        utc = values.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        # Series.astype checks the nanosecond range; numpy's conversion would wrap around.
        utc_ns = utc.astype("datetime64[ns]").to_numpy().view(np.int64)
        wall_ns = wall.astype("datetime64[ns]").to_numpy().view(np.int64)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as error:
        raise InvalidInput(
            f"timestamps outside the years 1677-2262 cannot be analysed: {error}",
            field="config.timestampColumn",
        ) from error
    return utc_ns, wall_ns, valid, time_zone


def _parse_strings(values: pd.Series) -> pd.Series:
    """ISO 8601 first (fast), then pandas' per-element parser for the rest; always UTC."""
    parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    retry = parsed.isna() & values.notna()
    if retry.any():
        parsed = parsed.copy()
        parsed[retry] = pd.to_datetime(values[retry], utc=True, format="mixed", errors="coerce")
    return parsed


def parse_timestamps(series: pd.Series) -> ParsedTimes:
    """Parse the timestamp column (datetime64, ISO strings, categoricals or Unix epochs).

    String timestamps are read as UTC (offsets honoured); naive datetimes are taken as they are.

    Raises
    ------
    InvalidInput
        More than 5 % of the non-blank timestamps cannot be parsed
        (``field="config.timestampColumn"``).

    Examples
    --------
    >>> parsed = parse_timestamps(pd.Series(["2026-01-05T10:00:00Z", None, "2026-01-06"]))
    >>> parsed.valid.tolist(), parsed.unparseable
    ([True, False, True], 0)
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # One parse per distinct value, then a gather by code.
        categories = pd.Series(dtype.categories, name=series.name)
        codes = series.cat.codes.to_numpy().astype(np.int64)
        present = codes >= 0
        if len(categories) == 0:
            empty = np.zeros(len(series), dtype=np.int64)
            return ParsedTimes(empty, empty, present, 0, None, None)
        parsed_categories = parse_timestamps(categories)
        safe = np.where(present, codes, 0)
        valid = present & parsed_categories.valid[safe]
        unparseable = int((present & ~valid).sum())
        _check_share(series, unparseable, int(present.sum()))
        return ParsedTimes(
            parsed_categories.utc[safe],
            parsed_categories.wall_clock[safe],
            valid,
            unparseable,
            parsed_categories.time_zone,
            parsed_categories.note,
        )
    if pd.api.types.is_datetime64_any_dtype(dtype):
        utc_ns, wall_ns, valid, time_zone = _datetimes_to_ns(series)
        return ParsedTimes(utc_ns, wall_ns, valid, 0, time_zone, None)
    if pd.api.types.is_bool_dtype(dtype):
        _raise_unparseable(series, 1.0)
    note: str | None = None
    if pd.api.types.is_numeric_dtype(dtype):
        numbers = series.astype("float64")
        present = numbers.notna().to_numpy(dtype=bool)
        magnitude = float(numbers.abs().median()) if present.any() else 0.0
        unit = next(unit for threshold, unit in _EPOCH_UNITS if magnitude >= threshold)
        parsed = pd.to_datetime(numbers, unit=unit, errors="coerce", utc=True)
        note = f"numeric timestamps read as Unix epoch {unit} (UTC)"
    else:
        text = series.astype("string").str.strip()
        text = text.mask(text == "")
        present = text.notna().to_numpy(dtype=bool)
        parsed = _parse_strings(text)
    valid = parsed.notna().to_numpy(dtype=bool)
    unparseable = int((present & ~valid).sum())
    _check_share(series, unparseable, int(present.sum()))
    utc_ns, wall_ns, _, _ = _datetimes_to_ns(parsed)
    return ParsedTimes(utc_ns, wall_ns, valid, unparseable, "UTC", note)


def _check_share(series: pd.Series, unparseable: int, present: int) -> None:
    if present and unparseable / present > MAX_UNPARSEABLE_SHARE:
        _raise_unparseable(series, unparseable / present)


def _raise_unparseable(series: pd.Series, share: float) -> None:
    examples = series.dropna().astype(str).head(3).tolist()
    raise InvalidInput(
        f"{share:.0%} of the values of timestamp column {series.name!r} are not timestamps "
        f"(e.g. {examples}). Name a date-time column with config.timestampColumn (ISO 8601 "
        "strings, datetimes or Unix epochs).",
        field="config.timestampColumn",
        column=str(series.name),
    )
