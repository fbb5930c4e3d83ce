from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from mlworker.analysis.policies.channels import (
    DAY_NAMES,
    channel_performance,
    day_and_hour,
    time_pattern,
)


def test_ctr_and_cvr_of_a_worked_table() -> None:
    # email: 10 impressions, 4 clicks of which 1 conversion; sms: 5 impressions, 1 conversion.
    channel = np.array([0] * 10 + [1] * 5)
    outcome = ["click"] * 3 + ["purchase"] + ["impression"] * 6 + ["purchase"] + ["none"] * 4
    converted = np.array([value == "purchase" for value in outcome])
    responded = converted | np.array([value == "click" for value in outcome])
    rows, _ = channel_performance(channel, ("email", "sms"), responded, converted, 0.95)
    email, sms = (row.to_dict() for row in rows)
    assert (email["impressions"], email["clicks"], email["conversions"]) == (10, 4, 1)
    assert email["ctr"] == pytest.approx(0.4) and email["cvr"] == pytest.approx(0.25)
    assert (sms["impressions"], sms["clicks"], sms["conversions"]) == (5, 1, 1)
    assert sms["ctr"] == pytest.approx(0.2) and sms["cvr"] == pytest.approx(1.0)
    low, high = proportion_confint(4, 10, method="wilson")
    assert (email["ctrLow"], email["ctrHigh"]) == pytest.approx((low, high))
    low, high = proportion_confint(1, 4, method="wilson")
    assert (email["cvrLow"], email["cvrHigh"]) == pytest.approx((low, high))


def test_pairwise_differences_are_tested_and_holm_adjusted() -> None:
    sizes = [4000, 3000, 2000]
    rates = [0.10, 0.10, 0.05]
    channel = np.repeat([0, 1, 2], sizes)
    responded = np.concatenate(
        [np.arange(n) < round(n * r) for n, r in zip(sizes, rates, strict=True)]
    )
    rows, pairs = channel_performance(
        channel, ("email", "sms", "push"), responded, np.zeros_like(responded), 0.95
    )
    assert [row.channel for row in rows] == ["email", "sms", "push"]
    assert rows[2].worst and not rows[2].best
    ctr = {(p.channel_a, p.channel_b): p for p in pairs if p.metric == "ctr"}
    assert not ctr[("email", "sms")].significant
    assert ctr[("email", "push")].significant and ctr[("sms", "push")].significant
    _, raw = proportions_ztest([400, 100], [4000, 2000])
    assert ctr[("email", "push")].p_value == pytest.approx(min(1.0, 3 * raw))
    assert ctr[("email", "push")].difference == pytest.approx(0.05)


def test_day_and_hour_agree_with_pandas() -> None:
    stamps = pd.Series(pd.date_range("2025-12-28", periods=500, freq="7h37min"))
    day, hour = day_and_hour(stamps.to_numpy(dtype="datetime64[ns]").view(np.int64))
    assert day.tolist() == stamps.dt.day_of_week.tolist()
    assert hour.tolist() == stamps.dt.hour.tolist()


def test_time_pattern_flags_and_tests_homogeneity() -> None:
    rng = np.random.default_rng(0)
    day = rng.integers(0, 7, 7000)
    responded = rng.random(7000) < np.where(day == 5, 0.2, 0.1)
    pattern = time_pattern(day, DAY_NAMES, responded, np.zeros_like(responded), 0.95)
    assert DAY_NAMES[pattern.best] == "Saturday"
    table = pd.crosstab(day, responded).to_numpy()
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert pattern.p_value == pytest.approx(expected)
    rows = pattern.rows()
    assert rows[5]["best"] and sum(row["worst"] for row in rows) == 1
