"""From input rows (one per creative, or per creative and day) to one row per creative.

Counts are checked (numeric, finite, not negative, clicks within impressions) and summed per
creative; text and channel come from the creative's first row that has them. With a timestamp
the creative's days are split into an early and a late half, summed separately, for the trend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlworker.analysis.content.columns import ContentColumns
from mlworker.data.profile import to_numbers
from mlworker.errors import InvalidInput, NotEnoughData

COUNTS = ("impressions", "clicks", "conversions", "revenue")
MISSING_CHANNEL = "(missing)"
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Creatives:
    """One row per creative, and the early/late halves of its days.

    Attributes
    ----------
    table
        Columns ``id``, ``channel``, ``impressions``, ``clicks``, ``conversions``, ``revenue``
        (NaN where the data has no such column) and ``days``, in order of first appearance.
    texts
        Each text field's first non-missing value per creative (missing stays missing).
    early, late
        Count sums over the first and the second half of each creative's days (the middle day
        of an odd number goes to neither); ``None`` without a usable timestamp.
    excluded
        Input rows left out, by reason.
    notes
        What a reader should know about the input.
    """

    table: pd.DataFrame
    texts: pd.DataFrame
    early: pd.DataFrame | None
    late: pd.DataFrame | None
    excluded: dict[str, int]
    notes: tuple[str, ...]


def _counts(frame: pd.DataFrame, column: str, role: str) -> npt.NDArray[np.float64]:
    raw = frame[column]
    values = to_numbers(raw)
    present = int(raw.notna().sum())
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if present and np.isnan(numbers).all():
        raise InvalidInput(
            f"column {column!r} (config.{role}) holds no numbers; name the column of counts",
            field=f"config.{role}",
        )
    if np.isinf(numbers).any():
        raise InvalidInput(
            f"column {column!r} (config.{role}) holds infinite values; fix or remove those rows",
            field=f"config.{role}",
        )
    if role != "revenueColumn" and (numbers < 0).any():
        count = int((numbers < 0).sum())
        raise InvalidInput(
            f"column {column!r} (config.{role}) has {count} negative counts; counts must be >= 0",
            field=f"config.{role}",
        )
    return numbers


def _parse_days(values: pd.Series) -> npt.NDArray[np.float64]:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        text = values.astype("string")
        stamps = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
        stamps = stamps.dt.tz_localize(None)
    missing = stamps.isna().to_numpy()
    nanoseconds = stamps.astype("datetime64[ns]").to_numpy().astype(np.int64)
    days = np.floor_divide(nanoseconds, _NS_PER_DAY).astype(np.float64)
    days[missing] = np.nan
    return days


def _days(series: pd.Series) -> npt.NDArray[np.float64]:
    """Whole days since 1970 (NaN where unparseable); each distinct value is parsed once."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        values = pd.Series(series.cat.categories)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        # Bare numbers are not dates we can trust (epoch seconds? days? yyyymmdd?).
        return np.full(len(series), np.nan)
    else:
        codes, uniques = pd.factorize(series)
        values = pd.Series(uniques)
    if len(values) == 0:
        return np.full(len(series), np.nan)
    parsed = _parse_days(values)
    return np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.nan)


def _halves(
    codes: npt.NDArray[np.intp], days: npt.NDArray[np.float64], counts: pd.DataFrame, size: int
) -> tuple[pd.DataFrame, pd.DataFrame, npt.NDArray[np.int64]]:
    dated = ~np.isnan(days)
    daily = counts[dated].groupby([codes[dated], days[dated].astype(np.int64)], sort=True).sum()
    creative = daily.index.get_level_values(0).to_numpy()
    rank = daily.groupby(level=0).cumcount().to_numpy()
    span = np.bincount(creative, minlength=size)
    per_row_span = span[creative]
    half = per_row_span // 2
    early_rows = rank < half
    late_rows = rank >= per_row_span - half
    early = daily[early_rows].groupby(creative[early_rows]).sum()
    late = daily[late_rows].groupby(creative[late_rows]).sum()
    index = pd.RangeIndex(size)
    return early.reindex(index), late.reindex(index), span.astype(np.int64)


def aggregate_creatives(frame: pd.DataFrame, columns: ContentColumns) -> Creatives:
    """Validate the counts and sum them per creative.

    Raises
    ------
    InvalidInput
        A count column holds no numbers, infinite or negative values, or clicks exceed
        impressions on some row (``field`` names the column's config member).
    NotEnoughData
        No row has an id and counts.
    """
    excluded = {"rowsMissingId": 0, "rowsMissingCounts": 0}
    notes: list[str] = []
    counts = pd.DataFrame(index=frame.index)
    sources = {
        "impressions": (columns.impressions, "impressionsColumn"),
        "clicks": (columns.clicks, "clicksColumn"),
        "conversions": (columns.conversions, "conversionsColumn"),
        "revenue": (columns.revenue, "revenueColumn"),
    }
    for name, (column, role) in sources.items():
        counts[name] = _counts(frame, column, role) if column is not None else np.nan
    over = counts["clicks"].to_numpy() > counts["impressions"].to_numpy()
    if over.any():
        first = int(np.flatnonzero(over)[0])
        raise InvalidInput(
            f"{int(over.sum())} rows have more clicks ({columns.clicks!r}) than impressions "
            f"({columns.impressions!r}), e.g. row {first}; check the column mapping",
            field="config.clicksColumn",
        )
    codes, uniques = pd.factorize(frame[columns.id], sort=False)
    missing_id = codes < 0
    missing_counts = counts[["impressions", "clicks"]].isna().any(axis=1).to_numpy() & ~missing_id
    excluded["rowsMissingId"] = int(missing_id.sum())
    excluded["rowsMissingCounts"] = int(missing_counts.sum())
    keep = ~(missing_id | missing_counts)
    if not keep.any():
        raise NotEnoughData(
            "no row has a creative id, impressions and clicks; check the column mapping",
            field="dataset",
        )
    kept = frame[keep]
    counts = counts[keep].fillna({"conversions": 0.0, "revenue": 0.0})
    # Re-code so creatives with no usable row disappear; factorize numbered the creatives in
    # order of first appearance and np.unique keeps that order.
    codes, first_of = np.unique(codes[keep], return_inverse=True)
    size = len(codes)
    table = counts.groupby(first_of, sort=True).sum()
    for name, (column, _) in sources.items():
        if column is None:
            table[name] = np.nan
    table.insert(0, "id", np.asarray(uniques, dtype=object)[codes])
    if columns.channel is not None:
        channel = kept[columns.channel].groupby(first_of, sort=True).first()
        channel_text = channel.astype("string").str.strip()
        channel_text = channel_text.mask(channel_text == "", pd.NA).fillna(MISSING_CHANNEL)
        table.insert(1, "channel", channel_text.astype(object).to_numpy())
    else:
        table.insert(1, "channel", "all")
    texts = pd.DataFrame(index=table.index)
    for field in columns.text_fields:
        texts[field] = kept[field].groupby(first_of, sort=True).first()
    early = late = None
    table["days"] = 1
    if columns.timestamp is not None:
        days = _days(kept[columns.timestamp])
        if np.isnan(days).all():
            notes.append(
                f"The timestamp column {columns.timestamp!r} has no readable dates: "
                "no trend is computed."
            )
        else:
            early, late, span = _halves(first_of, days, counts, size)
            table["days"] = span
    else:
        notes.append("No timestamp column: trend is null.")
    return Creatives(
        table=table.reset_index(drop=True),
        texts=texts.reset_index(drop=True),
        early=early,
        late=late,
        excluded=excluded,
        notes=tuple(notes),
    )
