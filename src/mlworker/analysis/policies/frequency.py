"""How often each customer was contacted: trailing-window counts, bands and the marginal curve.

The count of a contact is how many contacts the same customer received in the trailing window
ending at it, itself included (``(t - window, t]``): the contact's ordinal within the window.
It is computed for all rows at once: rows are sorted by one int64 key ``customer * stride +
time`` and one ``searchsorted`` per window finds where each contact's window starts. The stride
leaves a gap longer than the widest window between customers, so a window never reaches into
the previous customer's contacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlworker.analysis.policies.rates import (
    BoolArray,
    FloatArray,
    IntArray,
    Rate,
    json_number,
    rate_rows,
)

NANOSECONDS_PER_HOUR = 3_600_000_000_000
NANOSECONDS_PER_DAY = 24 * NANOSECONDS_PER_HOUR
# Curve points with fewer contacts than this are pooled into one tail point ("12+").
MIN_POINT_CONTACTS = 100
_KEY_LIMIT = 2**62


@dataclass(frozen=True, slots=True)
class Window:
    """A trailing window of a frequency cap."""

    name: str
    days: int
    config_key: str
    unit: str


WINDOWS = (
    Window("daily", 1, "maxPerDay", "day"),
    Window("weekly", 7, "maxPerWeek", "week"),
    Window("monthly", 30, "maxPerMonth", "month"),
)
WINDOW_BY_NAME = {window.name: window for window in WINDOWS}


@dataclass(frozen=True, slots=True)
class TrailingCounts:
    """Per row (input order): the trailing count of each window and hours since the previous."""

    counts: dict[str, IntArray]
    hours_since_previous: FloatArray


def trailing_counts(
    group: IntArray, time: IntArray, windows: Sequence[Window] = WINDOWS
) -> TrailingCounts:
    """Contacts of the same group in the trailing window of each contact, itself included.

    Parameters
    ----------
    group
        Non-negative integer code of the customer (or customer-channel pair) of each row.
    time
        Int64 nanoseconds of each row.
    windows
        Windows to count.

    Returns
    -------
    Counts per window name and the hours since the group's previous contact (NaN for the first),
    both in input order. Contacts at the same instant are counted in input order.

    Examples
    --------
    >>> day = NANOSECONDS_PER_DAY
    >>> result = trailing_counts(np.array([0, 0, 1, 0]), np.array([0, day, day, 9 * day]))
    >>> result.counts["weekly"].tolist(), result.hours_since_previous.tolist()
    ([1, 2, 1, 1], [nan, 24.0, nan, 192.0])
    """
    rows = group.size
    if rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return TrailingCounts({w.name: empty for w in windows}, np.zeros(0, dtype=np.float64))
    offset = time - time.min()
    longest = max(window.days for window in windows) * NANOSECONDS_PER_DAY
    groups = int(group.max()) + 1
    span = int(offset.max())
    # The finest time resolution whose combined key fits in int64 (seconds always do).
    for divisor in (1, 1_000, 1_000_000, 1_000_000_000):
        stride = (span + longest) // divisor + 2
        if groups * stride < _KEY_LIMIT:
            break
    key = group.astype(np.int64) * stride + offset // divisor
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    positions = np.arange(rows, dtype=np.int64)
    counts: dict[str, IntArray] = {}
    for window in windows:
        width = window.days * NANOSECONDS_PER_DAY // divisor
        first = np.searchsorted(sorted_key, sorted_key - width, side="right")
        count = np.empty(rows, dtype=np.int64)
        count[order] = positions - first + 1
        counts[window.name] = count
    sorted_group = group[order]
    sorted_time = time[order]
    gaps = np.full(rows, np.nan)
    same_group = sorted_group[1:] == sorted_group[:-1]
    # Rows within one key unit may be out of exact time order; a negative gap is a tie.
    elapsed = np.maximum(sorted_time[1:] - sorted_time[:-1], 0) / NANOSECONDS_PER_HOUR
    gaps[1:] = np.where(same_group, elapsed, np.nan)
    hours = np.empty(rows, dtype=np.float64)
    hours[order] = gaps
    return TrailingCounts(counts, hours)


@dataclass(frozen=True, slots=True)
class FrequencyDistribution:
    """Per-customer peak trailing count in one window, and how much of it exceeds the cap."""

    window: str
    days: int
    cap: int
    customers: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: int
    customers_above_cap: int
    contacts_above_cap: int
    contacts: int

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form."""
        return {
            "window": self.window,
            "days": self.days,
            "cap": self.cap,
            "measure": "peak trailing contacts per customer",
            "customers": self.customers,
            "mean": json_number(self.mean),
            "p50": json_number(self.p50),
            "p90": json_number(self.p90),
            "p99": json_number(self.p99),
            "max": self.max,
            "customersAboveCap": self.customers_above_cap,
            "shareCustomersAboveCap": json_number(
                self.customers_above_cap / self.customers if self.customers else None
            ),
            "contactsAboveCap": self.contacts_above_cap,
            "shareContactsAboveCap": json_number(
                self.contacts_above_cap / self.contacts if self.contacts else None
            ),
        }


def frequency_distribution(
    customer: IntArray, counts: IntArray, window: Window, cap: int
) -> FrequencyDistribution:
    """Distribution over customers of their peak trailing count, and the share above ``cap``.

    A customer is above the cap when any of their contacts had a trailing count above it; a
    contact is above the cap when its own trailing count is (the cap would have blocked it).

    Examples
    --------
    >>> summary = frequency_distribution(np.array([0, 0, 0, 1]), np.array([1, 2, 3, 1]),
    ...                                  WINDOWS[1], cap=2)
    >>> summary.max, summary.customers_above_cap, summary.contacts_above_cap
    (3, 1, 1)
    """
    peaks = np.zeros(int(customer.max()) + 1 if customer.size else 0, dtype=np.int64)
    np.maximum.at(peaks, customer, counts)
    peaks = peaks[peaks > 0]
    if peaks.size == 0:
        return FrequencyDistribution(
            window.name, window.days, cap, 0, np.nan, np.nan, np.nan, np.nan, 0, 0, 0, 0
        )
    p50, p90, p99 = np.percentile(peaks, [50, 90, 99])
    return FrequencyDistribution(
        window=window.name,
        days=window.days,
        cap=cap,
        customers=int(peaks.size),
        mean=float(peaks.mean()),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        max=int(peaks.max()),
        customers_above_cap=int((peaks > cap).sum()),
        contacts_above_cap=int((counts > cap).sum()),
        contacts=int(counts.size),
    )


def band_labels(edges: Sequence[int]) -> list[str]:
    """Labels of the bands with upper bounds ``edges`` and an open last band.

    Examples
    --------
    >>> band_labels([1, 3, 5, 7, 10])
    ['1', '2-3', '4-5', '6-7', '8-10', '11+']
    """
    labels = []
    low = 1
    for high in edges:
        labels.append(str(high) if high == low else f"{low}-{high}")
        low = high + 1
    return [*labels, f"{low}+"]


def band_index(frequency: npt.ArrayLike, edges: Sequence[int]) -> IntArray:
    """Band of each frequency (``0`` for ``<= edges[0]``, ``len(edges)`` for the open band).

    Examples
    --------
    >>> band_index([1, 2, 3, 4, 11], [1, 3, 5, 7, 10]).tolist()
    [0, 1, 1, 2, 5]
    """
    bands = np.searchsorted(np.asarray(edges), np.asarray(frequency), side="left")
    return np.asarray(bands, dtype=np.int64)


def grouped_counts(
    codes: IntArray, levels: int, responded: BoolArray, converted: BoolArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Contacts, responses and conversions per code ``0 .. levels-1``."""
    contacts = np.bincount(codes, minlength=levels)
    responses = np.bincount(codes, weights=responded, minlength=levels).round().astype(np.int64)
    conversions = np.bincount(codes, weights=converted, minlength=levels).round().astype(np.int64)
    return contacts.astype(np.int64), responses, conversions


def band_rates(
    frequency: IntArray,
    responded: BoolArray,
    converted: BoolArray,
    edges: Sequence[int],
    confidence: float,
) -> list[Rate]:
    """Response rate of each frequency band with its Wilson interval."""
    labels = band_labels(edges)
    counts = grouped_counts(band_index(frequency, edges), len(labels), responded, converted)
    return rate_rows(labels, *counts, confidence)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Response rate of the f-th contact in the window (``pooled``: of the f-th and later)."""

    frequency: int
    pooled: bool
    rate: Rate

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form."""
        return {"frequency": self.frequency, "pooled": self.pooled, **self.rate.to_dict()}


def frequency_curve(
    frequency: IntArray,
    responded: BoolArray,
    converted: BoolArray,
    confidence: float,
    min_contacts: int = MIN_POINT_CONTACTS,
) -> list[CurvePoint]:
    """Marginal response curve: the rate at each trailing count, the sparse tail pooled.

    From the first frequency above 1 with fewer than ``min_contacts`` contacts on, all contacts
    form one last point labelled ``f+``.

    Examples
    --------
    >>> frequency = np.array([1] * 200 + [2] * 150 + [3] * 20 + [4] * 5)
    >>> responded = np.zeros(frequency.size, dtype=bool)
    >>> [point.rate.label for point in frequency_curve(frequency, responded, responded, 0.95)]
    ['1', '2', '3+']
    """
    if frequency.size == 0:
        return []
    levels = int(frequency.max()) + 1
    contacts, responses, conversions = grouped_counts(frequency, levels, responded, converted)
    sparse = np.flatnonzero(contacts[2:] < min_contacts)
    tail = int(sparse[0]) + 2 if sparse.size else levels
    frequencies = list(range(1, tail))
    labels = [str(f) for f in frequencies]
    sums = [contacts[1:tail], responses[1:tail], conversions[1:tail]]
    if tail < levels:
        frequencies.append(tail)
        labels.append(f"{tail}+")
        sums = [
            np.append(values, values_all[tail:].sum())
            for values, values_all in zip(sums, (contacts, responses, conversions), strict=True)
        ]
    rows = rate_rows(labels, sums[0], sums[1], sums[2], confidence)
    return [
        CurvePoint(frequency=f, pooled=label.endswith("+"), rate=row)
        for f, label, row in zip(frequencies, labels, rows, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class WindowContacts:
    """The contacts inside the lookback window: outcomes, trailing counts, recency, channel.

    ``channel_counts`` are channel-scoped trailing counts (contacts of the same customer on
    the same channel); ``None`` without a channel column.
    """

    responded: BoolArray
    converted: BoolArray
    counts: dict[str, IntArray]
    recency: IntArray
    channel: IntArray | None
    channel_labels: tuple[str, ...]
    channel_counts: dict[str, IntArray] | None
