from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.analysis.policies.frequency import (
    NANOSECONDS_PER_DAY,
    NANOSECONDS_PER_HOUR,
    WINDOWS,
    band_index,
    band_labels,
    band_rates,
    frequency_curve,
    frequency_distribution,
    trailing_counts,
)


def _brute_force(group: np.ndarray, time: np.ndarray, days: int) -> np.ndarray:
    width = days * NANOSECONDS_PER_DAY
    counts = np.zeros(group.size, dtype=np.int64)
    for i in range(group.size):
        same = (group == group[i]) & (time > time[i] - width) & (time <= time[i])
        # Contacts at the same instant count in input order.
        same &= (time < time[i]) | (np.arange(group.size) <= i)
        counts[i] = same.sum()
    return counts


@pytest.mark.parametrize("span_days", [60, 20_000])
def test_trailing_counts_match_brute_force(span_days: int) -> None:
    rng = np.random.default_rng(span_days)
    rows = 600
    group = rng.integers(0, 40, rows)
    seconds = rng.integers(0, span_days * 86_400 // 40, rows) * 40
    time = seconds.astype(np.int64) * 1_000_000_000
    time[5] = time[6]  # an exact tie in one group
    group[5] = group[6]
    result = trailing_counts(group, time)
    for window in WINDOWS:
        np.testing.assert_array_equal(
            result.counts[window.name], _brute_force(group, time, window.days), window.name
        )


def test_hours_since_previous_contact_of_the_same_customer() -> None:
    hour = NANOSECONDS_PER_HOUR
    group = np.array([1, 0, 1, 0, 1])
    time = np.array([0, 5 * hour, 30 * hour, 6 * hour, 30 * hour])
    hours = trailing_counts(group, time).hours_since_previous
    np.testing.assert_array_equal(hours, [np.nan, np.nan, 30.0, 1.0, 0.0])


def test_frequency_distribution_against_pandas() -> None:
    rng = np.random.default_rng(1)
    customer = rng.integers(0, 50, 1000)
    counts = rng.integers(1, 15, 1000)
    summary = frequency_distribution(customer, counts, WINDOWS[1], cap=10)
    peaks = pd.Series(counts).groupby(customer).max()
    assert summary.customers == peaks.size
    assert summary.max == peaks.max()
    assert summary.p90 == pytest.approx(np.percentile(peaks, 90))
    assert summary.customers_above_cap == (peaks > 10).sum()
    assert summary.contacts_above_cap == (counts > 10).sum()
    assert summary.to_dict()["shareContactsAboveCap"] == pytest.approx((counts > 10).mean())


def test_bands_label_and_index_every_frequency() -> None:
    assert band_labels([2, 4]) == ["1-2", "3-4", "5+"]
    assert band_index([1, 2, 3, 5, 99], [2, 4]).tolist() == [0, 0, 1, 2, 2]
    rows = band_rates(
        np.array([1, 2, 3, 5, 6]),
        np.array([True, False, True, False, False]),
        np.zeros(5, dtype=bool),
        [2, 4],
        0.95,
    )
    assert [(r.label, r.contacts, r.responses) for r in rows] == [
        ("1-2", 2, 1),
        ("3-4", 1, 1),
        ("5+", 2, 0),
    ]


def test_curve_pools_the_sparse_tail_and_keeps_every_contact() -> None:
    frequency = np.repeat([1, 2, 3, 4, 5, 6], [500, 400, 150, 60, 120, 3])
    responded = np.arange(frequency.size) % 4 == 0
    curve = frequency_curve(frequency, responded, responded, 0.95, min_contacts=100)
    assert [(p.frequency, p.pooled, p.rate.contacts) for p in curve] == [
        (1, False, 500),
        (2, False, 400),
        (3, False, 150),
        (4, True, 183),
    ]
    assert sum(p.rate.responses for p in curve) == responded.sum()
