from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.analysis.content.rates import (
    baseline,
    beta_binomial_prior_strength,
    creative_rates,
    random_effects_prior_strength,
    shrink_rates,
)
from mlworker.analysis.statistics import ratio_estimate


def _table(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(len(rows))],
            "channel": [channel for channel, _, _ in rows],
            "impressions": [float(n) for _, n, _ in rows],
            "clicks": [float(y) for _, _, y in rows],
            "conversions": np.nan,
            "revenue": np.nan,
        }
    )


@pytest.mark.parametrize("strength", [50.0, 400.0])
def test_kleinman_estimate_recovers_the_planted_prior_strength(strength: float) -> None:
    rng = np.random.default_rng(7)
    rates = rng.beta(0.03 * strength, 0.97 * strength, 4000)
    trials = rng.integers(100, 5000, 4000)
    successes = rng.binomial(trials, rates)
    estimate = beta_binomial_prior_strength(successes, trials)
    assert estimate == pytest.approx(strength, rel=0.15)


def test_kleinman_estimate_is_infinite_without_extra_variation_and_nan_when_unidentified() -> None:
    rng = np.random.default_rng(3)
    trials = rng.integers(100, 2000, 3000)
    assert beta_binomial_prior_strength(rng.binomial(trials, 0.05), trials) == np.inf
    assert np.isnan(beta_binomial_prior_strength([1, 2], [10, 10]))
    assert np.isnan(beta_binomial_prior_strength([0, 0, 0], [10, 20, 30]))


def test_random_effects_estimate_recovers_the_planted_variance_ratio() -> None:
    rng = np.random.default_rng(11)
    exposures = rng.integers(200, 20_000, 5000).astype(float)
    means = rng.normal(0.05, 0.01, 5000)  # τ² = 1e-4
    rates = rng.normal(means, np.sqrt(1.0 / exposures))  # σ² = 1
    estimate = random_effects_prior_strength(rates * exposures, exposures)
    assert estimate == pytest.approx(1.0 / 1e-4, rel=0.2)


def test_worked_table_shrunk_rates_and_vs_peers() -> None:
    table = _table(
        [
            ("email", 1000, 30),
            ("email", 1000, 10),
            ("email", 1000, 20),
            ("push", 500, 5),
            ("push", 500, 15),
            ("push", 500, 10),
        ]
    )
    rates, shrinkage = creative_rates(table, None, None, "ctr")
    # email: p = 0.02, S = 1000·(0.01² + 0.01²) = 0.2, ρ = (0.2/0.0196 − 2) / (3000 − 1000 − 2).
    rho_email = (0.2 / 0.0196 - 2) / 1998
    k_email = 1 / rho_email - 1
    # push: p = 0.02, S = 500·(0.01² + 0.01²) = 0.1, ρ = (0.1/0.0196 − 2) / (1500 − 500 − 2).
    rho_push = (0.1 / 0.0196 - 2) / 998
    k_push = 1 / rho_push - 1
    assert shrinkage.strengths["email"] == (pytest.approx(k_email), "channel")
    assert shrinkage.strengths["push"] == (pytest.approx(k_push), "channel")
    first = (30 + k_email * 0.02) / (1000 + k_email)
    fourth = (5 + k_push * 0.02) / (500 + k_push)
    assert rates["shrunkRate"].iloc[0] == pytest.approx(first)
    assert rates["vsPeers"].iloc[0] == pytest.approx(first / 0.02)
    assert rates["vsPeers"].iloc[3] == pytest.approx(fourth / 0.02)
    assert rates["ctr"].tolist() == pytest.approx([0.03, 0.01, 0.02, 0.01, 0.03, 0.02])
    assert rates["trend"].isna().all()


def test_a_three_impression_creative_is_pulled_to_its_channel_mean() -> None:
    rng = np.random.default_rng(5)
    trials = rng.integers(500, 3000, 60)
    successes = rng.binomial(trials, rng.beta(6, 194, 60))
    rows = [("email", n, y) for n, y in zip(trials, successes, strict=True)]
    rows.append(("email", 3, 2))
    rates, _ = creative_rates(_table(rows), None, None, "ctr")
    tiny = rates.iloc[-1]
    mean = rates["clicks"].sum() / rates["impressions"].sum()
    assert tiny["ctr"] == pytest.approx(2 / 3)
    assert abs(tiny["shrunkRate"] - mean) < 0.05 * abs(tiny["ctr"] - mean)
    big = rates.iloc[int(np.argmax(trials))]
    assert abs(big["shrunkRate"] - big["ctr"]) < abs(tiny["shrunkRate"] - tiny["ctr"])


def test_prior_strength_falls_back_to_pooled_then_median_exposure() -> None:
    rng = np.random.default_rng(2)
    trials = rng.integers(500, 3000, 40)
    successes = rng.binomial(trials, rng.beta(6, 194, 40))
    groups = pd.Series(["big"] * 40 + ["lonely"])
    shrinkage = shrink_rates(
        np.append(successes, 5).astype(float),
        np.append(trials, 100).astype(float),
        groups,
        binomial=True,
    )
    assert shrinkage.strengths["big"][1] == "channel"
    assert shrinkage.strengths["lonely"] == (shrinkage.strengths["big"][0], "pooled")
    single = shrink_rates(
        np.array([5.0, 9.0]), np.array([100.0, 300.0]), pd.Series(["a", "b"]), binomial=True
    )
    assert single.strengths["a"] == (200.0, "fallback")
    assert single.shrunk[0] == pytest.approx((5 + 200 * 0.05) / 300)


def test_cvr_without_clicks_is_the_channel_rate() -> None:
    table = _table([("email", 100, 0), ("email", 100, 10), ("email", 100, 20), ("email", 50, 5)])
    table["conversions"] = [0.0, 2.0, 1.0, 1.0]
    rates, _ = creative_rates(table, None, None, "cvr")
    assert np.isnan(rates["cvr"].iloc[0])
    assert rates["shrunkRate"].iloc[0] == pytest.approx(4 / 35)
    assert rates["vsPeers"].iloc[0] == pytest.approx(1.0)


def test_trend_is_the_relative_change_between_halves() -> None:
    table = _table([("email", 400, 16), ("email", 100, 10), ("email", 100, 5)])
    early = pd.DataFrame({"impressions": [200.0, 50.0, np.nan], "clicks": [4.0, 5.0, np.nan]})
    late = pd.DataFrame({"impressions": [200.0, 50.0, np.nan], "clicks": [12.0, 5.0, np.nan]})
    rates, _ = creative_rates(table, early, late, "ctr")
    assert rates["trend"].iloc[0] == pytest.approx(2.0)
    assert rates["trend"].iloc[1] == pytest.approx(0.0)
    assert np.isnan(rates["trend"].iloc[2])


def test_baseline_rates_and_intervals_are_ratio_estimates() -> None:
    table = _table([("email", 1000, 30), ("email", 1000, 10), ("push", 500, 5), ("push", 800, 9)])
    table["conversions"] = [3.0, 1.0, 0.0, 2.0]
    rates, shrinkage = creative_rates(table, None, None, "ctr")
    summary = baseline(rates, shrinkage)
    overall = summary["overall"]
    reference = ratio_estimate(table["clicks"], table["impressions"])
    assert overall["ctr"] == pytest.approx(
        {"rate": reference.estimate, "low": reference.low, "high": reference.high}
    )
    assert overall["cvr"]["rate"] == pytest.approx(6 / 54)
    assert overall["rpi"] is None and overall["revenue"] is None
    assert [channel["channel"] for channel in summary["channels"]] == ["email", "push"]
    assert summary["channels"][1]["ctr"]["rate"] == pytest.approx(14 / 1300)
