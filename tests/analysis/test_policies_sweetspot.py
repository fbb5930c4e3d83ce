from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportions_ztest

from mlworker.analysis.policies.frequency import CurvePoint
from mlworker.analysis.policies.rates import Rate, rate_rows
from mlworker.analysis.policies.sweetspot import (
    RECENCY_LABELS,
    find_cooldown,
    find_sweet_spot,
    recency_band,
)


def _curve(contacts: list[int], responses: list[int]) -> list[CurvePoint]:
    rows = rate_rows(
        [str(i + 1) for i in range(len(contacts))],
        contacts,
        responses,
        [r // 2 for r in responses],
        0.95,
    )
    return [CurvePoint(i + 1, False, row) for i, row in enumerate(rows)]


def test_a_flat_then_falling_curve_has_its_sweet_spot_at_the_step() -> None:
    contacts = [5000, 4000, 3000, 2500, 2000, 1500, 1000]
    rates = [0.10, 0.10, 0.10, 0.10, 0.04, 0.03, 0.02]
    responses = [round(n * r) for n, r in zip(contacts, rates, strict=True)]
    spot = find_sweet_spot(_curve(contacts, responses), "weekly", 0.95)
    assert spot.frequency == 4
    change = spot.change
    beyond_n, beyond_x = sum(contacts[4:]), sum(responses[4:])
    within_n, within_x = sum(contacts[:4]), sum(responses[:4])
    assert change.contacts_avoided == beyond_n
    assert change.rate_avoided == pytest.approx(beyond_x / beyond_n)
    assert change.rate_kept == pytest.approx(within_x / within_n)
    assert change.conversions_avoided == sum(r // 2 for r in responses[4:])
    # The reported p-value is at least the one-sided pooled z-test of beyond vs within.
    _, p_beyond = proportions_ztest(
        [beyond_x, within_x], [beyond_n, within_n], alternative="smaller"
    )
    assert change.p_value >= p_beyond
    assert spot.to_dict()["frequency"] == 4


def test_a_flat_curve_has_no_sweet_spot_and_says_why() -> None:
    contacts = [5000, 4000, 3000, 2000]
    spot = find_sweet_spot(_curve(contacts, [n // 10 for n in contacts]), "weekly", 0.95)
    assert spot.frequency is None
    assert "does not fall significantly" in (spot.change.reason or "")


def test_a_tiny_significant_drop_is_not_a_sweet_spot() -> None:
    contacts = [2_000_000, 2_000_000]
    spot = find_sweet_spot(_curve(contacts, [200_000, 196_000]), "daily", 0.95)
    assert spot.frequency is None


def test_one_point_curves_have_no_sweet_spot() -> None:
    assert find_sweet_spot(_curve([100], [10]), "monthly", 0.95).frequency is None
    assert find_sweet_spot([], "monthly", 0.95).change.reason == "no contacts"


def _recency(rates: list[float], contacts: int = 2000) -> list[Rate]:
    counts = [contacts] * len(RECENCY_LABELS)
    responses = [round(contacts * r) for r in rates]
    return rate_rows(list(RECENCY_LABELS), counts, responses, [0] * len(counts), 0.95)


def test_cooldown_is_where_the_rate_recovers() -> None:
    cooldown = find_cooldown(_recency([0.04, 0.04, 0.05, 0.05, 0.10, 0.10, 0.10, 0.10, 0.10]), 0.95)
    assert cooldown.hours == 24
    assert cooldown.change.contacts_avoided == 4 * 2000
    assert cooldown.change.rate_avoided == pytest.approx(0.045)


def test_no_cooldown_when_gaps_do_not_matter() -> None:
    cooldown = find_cooldown(_recency([0.1] * len(RECENCY_LABELS)), 0.95)
    assert cooldown.hours is None and cooldown.change.reason


def test_recency_bands() -> None:
    hours = [0.0, 0.99, 1.0, 3.9, 12.0, 23.9, 47.0, 71.0, 100.0, 168.0, np.nan]
    labels = [RECENCY_LABELS[b] for b in recency_band(hours)]
    assert labels == [
        "<1h",
        "<1h",
        "1-4h",
        "1-4h",
        "12-24h",
        "12-24h",
        "24-48h",
        "48-72h",
        "72-168h",
        "168h+",
        "first",
    ]
