"""From a raw interaction frame to typed arrays: columns found, timestamps parsed, outcomes read.

Everything downstream works on integer codes and int64 nanoseconds, never on Python objects, so
five million rows stay cheap whatever dtype the loader produced (object, ``string``,
``category``, datetime64 with or without a time zone, ISO strings, Unix epochs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlworker.analysis.policies.columns import ResolvedColumns, resolve_columns
from mlworker.analysis.policies.config import PolicyConfig, normalize_outcome
from mlworker.analysis.policies.rates import BoolArray, IntArray
from mlworker.analysis.policies.timestamps import parse_timestamps
from mlworker.errors import NotEnoughData


def codes_and_labels(series: pd.Series) -> tuple[IntArray, list[str]]:
    """Integer codes (``-1`` for missing) and the string label of each code.

    Examples
    --------
    >>> codes, labels = codes_and_labels(pd.Series(["b", None, "a", "b"], dtype="category"))
    >>> codes.tolist(), labels
    ([1, -1, 0, 1], ['a', 'b'])
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int64)
        return codes, [str(value) for value in series.cat.categories]
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), [str(value) for value in uniques]


@dataclass(frozen=True, slots=True)
class OutcomeFlags:
    """Per row: usable (classified), responded (positive or conversion), converted."""

    usable: BoolArray
    responded: BoolArray
    converted: BoolArray
    unclassified: int
    note: str | None
    values: tuple[str, ...]


def classify_outcomes(series: pd.Series, config: PolicyConfig) -> OutcomeFlags:
    """Read every outcome as response, conversion, non-response or unclassified.

    A boolean (or 0/1) column is read directly: true is a response. Otherwise values are matched
    case-insensitively against the configured lists, one lookup per distinct value.

    Examples
    --------
    >>> flags = classify_outcomes(pd.Series(["Click", "ignored", "purchase", None]),
    ...                           PolicyConfig())
    >>> flags.responded.tolist(), flags.converted.tolist(), flags.usable.tolist()
    ([True, False, True, False], [False, False, True, False], [True, True, True, True])
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype)
        and series.dropna().isin([0, 1]).all()
        and series.notna().any()
    ):
        present = series.notna().to_numpy(dtype=bool)
        responded = series.fillna(0).astype(bool).to_numpy(dtype=bool) & present
        usable = present if config.negative_set is not None else np.ones(len(series), bool)
        return OutcomeFlags(
            usable=usable,
            responded=responded & usable,
            converted=np.zeros(len(series), dtype=bool),
            unclassified=int((~usable).sum()),
            note="boolean outcome column: true is a response, there are no conversions",
            values=("false", "true"),
        )
    codes, labels = codes_and_labels(series)
    normalized = [normalize_outcome(label) for label in labels]
    positive, conversion, negative = config.positive_set, config.conversion_set, config.negative_set
    is_conversion = np.array([value in conversion for value in normalized] + [False])
    is_positive = np.array([value in positive for value in normalized] + [False]) | is_conversion
    # The last slot is the missing outcome (code -1): a non-response unless negatives are listed.
    is_negative = np.array(
        [negative is None or value in negative for value in normalized] + [negative is None]
    )
    usable = (is_positive | is_negative)[codes]
    unclassified = int((~usable).sum())
    note = None
    if unclassified:
        unknown = sorted({normalized[c] for c in np.unique(codes[~usable]) if c >= 0})
        note = (
            f"{unclassified} rows ignored: outcome in neither positiveOutcomes nor "
            f"negativeOutcomes ({', '.join(unknown[:10]) or 'missing'})"
        )
    return OutcomeFlags(
        usable=usable,
        responded=is_positive[codes],
        converted=is_conversion[codes],
        unclassified=unclassified,
        note=note,
        values=tuple(sorted(set(normalized)))[:50],
    )


@dataclass(frozen=True, slots=True)
class Interactions:
    """Usable contacts as parallel arrays (all rows, the history before the window included)."""

    customer: IntArray
    time: IntArray
    wall_clock: IntArray
    responded: BoolArray
    converted: BoolArray
    channel: IntArray | None
    channel_labels: tuple[str, ...]
    customer_count: int
    columns: ResolvedColumns
    ignored_rows: int
    time_zone: str | None
    notes: tuple[str, ...]
    outcome_values: tuple[str, ...]


def _compact(codes: IntArray) -> tuple[IntArray, IntArray]:
    """Renumber non-negative codes densely; returns the new codes and the old code of each."""
    used = np.flatnonzero(np.bincount(codes, minlength=1) > 0) if codes.size else codes
    lookup = np.full(int(codes.max()) + 1 if codes.size else 1, -1, dtype=np.int64)
    lookup[used] = np.arange(used.size)
    return lookup[codes], used


def prepare_interactions(frame: pd.DataFrame, config: PolicyConfig) -> Interactions:
    """Resolve columns and turn the frame into :class:`Interactions`.

    Rows without a customer or timestamp, with an unparseable timestamp, or (when
    ``negativeOutcomes`` is given) with an unlisted outcome are dropped and counted.

    Raises
    ------
    UnknownColumn, InvalidInput, NotEnoughData
        Columns missing, timestamps unreadable, or no usable rows.
    """
    columns = resolve_columns(frame, config)
    if len(frame) == 0:
        raise NotEnoughData("the dataset has no rows", field="dataset")
    notes: list[str] = []
    customer_codes, _ = codes_and_labels(frame[columns.customer])
    times = parse_timestamps(frame[columns.timestamp])
    outcomes = classify_outcomes(frame[columns.outcome], config)
    keep = (customer_codes >= 0) & times.valid & outcomes.usable
    missing_customer = int((customer_codes < 0).sum())
    missing_time = int((~times.valid).sum()) - times.unparseable
    if missing_customer:
        notes.append(f"{missing_customer} rows without a customer ignored")
    if missing_time:
        notes.append(f"{missing_time} rows without a timestamp ignored")
    if times.unparseable:
        notes.append(f"{times.unparseable} rows with an unparseable timestamp ignored")
    notes.extend(note for note in (times.note, outcomes.note) if note)
    channel: IntArray | None = None
    channel_labels: tuple[str, ...] = ()
    if columns.channel is not None:
        codes, labels = codes_and_labels(frame[columns.channel])
        # A missing channel is a level of its own rather than a reason to drop the contact.
        codes = np.where(codes < 0, len(labels), codes)
        labels = [*labels, "(missing)"]
        codes, used = _compact(codes[keep])
        channel, channel_labels = codes, tuple(labels[i] for i in used)
    if columns.offer is not None:
        offers = frame[columns.offer][keep].nunique(dropna=True)
        notes.append(
            f"offer column {columns.offer!r}: {offers} distinct offers; caps are analysed "
            "across offers"
        )
    customer, _ = _compact(customer_codes[keep])
    kept = int(keep.sum())
    if kept == 0:
        raise NotEnoughData(
            "no usable rows: every row lacks a customer, a timestamp or a classified outcome",
            field="dataset",
        )
    return Interactions(
        customer=customer,
        time=times.utc[keep],
        wall_clock=times.wall_clock[keep],
        responded=outcomes.responded[keep],
        converted=outcomes.converted[keep],
        channel=channel,
        channel_labels=channel_labels,
        customer_count=int(customer.max()) + 1,
        columns=columns,
        ignored_rows=len(frame) - kept,
        time_zone=times.time_zone,
        notes=tuple(notes),
        outcome_values=outcomes.values,
    )
