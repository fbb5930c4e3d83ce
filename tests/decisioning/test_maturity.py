"""Maturity ramp: the seed's table, deterministic daily exposure, the Wilson-width variant."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from mlworker.decisioning import exposure_probability, is_exposed, wilson_exposure_probability


def test_the_seed_table() -> None:
    # Seed 003, "Model Maturity Ramp": 0 → 2 %, 10 → 10 %, 50 → 50 %, 100+ → 100 %.
    assert exposure_probability([0, 10, 50, 100, 1000]).tolist() == [0.02, 0.1, 0.5, 1.0, 1.0]
    assert exposure_probability(30, threshold=200).item() == pytest.approx(0.15)
    with pytest.raises(ValueError):
        exposure_probability(5, threshold=0)


def test_exposure_is_stable_within_a_day_and_close_to_its_probability() -> None:
    day = date(2026, 11, 22)
    customers = [f"customer-{i}" for i in range(20_000)]
    first = [is_exposed(c, "offer-1", day, 0.3) for c in customers]
    again = [is_exposed(c, "offer-1", day, 0.3) for c in customers]
    assert first == again
    assert np.mean(first) == pytest.approx(0.3, abs=0.015)
    tomorrow = [is_exposed(c, "offer-1", date(2026, 11, 23), 0.3) for c in customers]
    assert first != tomorrow  # a new day is a new draw
    assert np.mean(tomorrow) == pytest.approx(0.3, abs=0.015)


def test_wilson_variant_follows_the_interval_width() -> None:
    successes, trials = np.array([3, 30, 300]), np.array([30, 300, 3000])
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    expected = np.clip((1 - (high - low)) / (1 - 0.1), 0.02, 1.0)
    exposure = wilson_exposure_probability(successes, trials, target_width=0.1)
    assert exposure == pytest.approx(expected, abs=1e-9)
    assert wilson_exposure_probability(0, 0).item() == 0.02
    assert np.all(np.diff(exposure) >= 0)


def test_a_rarely_answered_offer_ramps_on_fewer_interactions_than_a_coin_flip() -> None:
    # Same count, different certainty: a 2 % rate is pinned down sooner than a 50 % one.
    rare = wilson_exposure_probability(2, 100, target_width=0.05).item()
    even = wilson_exposure_probability(50, 100, target_width=0.05).item()
    assert rare > even
    with pytest.raises(ValueError):
        wilson_exposure_probability(1, 10, target_width=1.5)
