from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from mlworker.analysis.content.lifts import benjamini_hochberg, presence_lift


def test_presence_lift_recovers_a_planted_ratio_with_coverage() -> None:
    rng = np.random.default_rng(4)
    trials = rng.integers(500, 5000, 3000).astype(float)
    present = rng.random(3000) < 0.3
    rates = 0.02 * np.where(present, 1.8, 1.0) * rng.lognormal(0, 0.1, 3000)
    successes = rng.binomial(trials.astype(int), rates).astype(float)
    lift = presence_lift(present, successes, trials)
    assert lift.with_count == int(present.sum())
    assert lift.without_count == 3000 - lift.with_count
    assert lift.lift == pytest.approx(1.8, rel=0.03)
    assert lift.low is not None and lift.high is not None
    assert lift.low < 1.8 < lift.high
    assert lift.p_value is not None and lift.p_value < 1e-10


def test_presence_lift_with_expected_denominators_removes_a_channel_confound() -> None:
    # The word is common in a channel with a doubled rate but has no effect of its own.
    rng = np.random.default_rng(9)
    channel = rng.random(4000) < 0.5
    present = rng.random(4000) < np.where(channel, 0.6, 0.1)
    channel_rate = np.where(channel, 0.04, 0.02)
    trials = np.full(4000, 2000.0)
    successes = rng.binomial(2000, channel_rate).astype(float)
    raw = presence_lift(present, successes, trials)
    adjusted = presence_lift(present, successes, trials * channel_rate)
    assert raw.lift is not None and raw.lift > 1.4
    assert adjusted.low is not None and adjusted.high is not None
    assert adjusted.low < 1.0 < adjusted.high


def test_presence_lift_needs_two_creatives_on_each_side() -> None:
    present = np.array([True, False, False, False])
    lift = presence_lift(present, np.ones(4), np.full(4, 10.0))
    assert lift.lift is None and lift.p_value is None
    assert (lift.with_count, lift.without_count) == (1, 3)


def test_benjamini_hochberg_matches_statsmodels() -> None:
    p_values = np.random.default_rng(0).uniform(0, 0.2, 25)
    expected = multipletests(p_values, method="fdr_bh")[1]
    np.testing.assert_allclose(benjamini_hochberg(p_values), expected)
    with_missing = benjamini_hochberg([0.01, np.nan, 0.02])
    assert np.isnan(with_missing[1])
    np.testing.assert_allclose(
        with_missing[[0, 2]], multipletests([0.01, 0.02], method="fdr_bh")[1]
    )
