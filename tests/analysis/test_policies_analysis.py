from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlworker.analysis.policies import PolicyConfig, analyze_policies
from mlworker.errors import InvalidInput, NotEnoughData, UnknownColumn

START = pd.Timestamp("2026-01-01T00:00:00Z")


def _schedules(customers: int, days: int, low: float, high: float, seed: int) -> dict[str, Any]:
    """Random contact times per customer, with each contact's weekly count and previous gap.

    The counts are computed here one customer at a time, independently of the code under test.
    """
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.uniform(low, high, customers) * days)
    customer = np.repeat(np.arange(customers), counts)
    hours = rng.uniform(0, days * 24, customer.size)
    order = np.lexsort((hours, customer))
    customer, hours = customer[order], hours[order]
    weekly = np.empty(customer.size, dtype=np.int64)
    gap = np.full(customer.size, np.inf)
    bounds = np.r_[0, np.flatnonzero(np.diff(customer)) + 1, customer.size]
    for first, last in zip(bounds[:-1], bounds[1:], strict=True):
        times = hours[first:last]
        weekly[first:last] = (
            np.arange(last - first) - np.searchsorted(times, times - 7 * 24, side="right") + 1
        )
        gap[first + 1 : last] = np.diff(times)
    return {"rng": rng, "customer": customer, "hours": hours, "weekly": weekly, "gap": gap}


def _frame(schedule: dict[str, Any], probability: np.ndarray) -> pd.DataFrame:
    rng = schedule["rng"]
    responded = rng.random(probability.size) < probability
    purchased = responded & (rng.random(probability.size) < 0.2)
    frame = pd.DataFrame(
        {
            "customerId": [f"c{c}" for c in schedule["customer"]],
            "timestamp": START + pd.to_timedelta(schedule["hours"], unit="h"),
            "channel": rng.choice(["email", "sms", "push"], probability.size, p=[0.5, 0.3, 0.2]),
            "outcome": np.where(purchased, "purchase", np.where(responded, "click", "impression")),
        }
    )
    return frame.sample(frac=1.0, random_state=0, ignore_index=True)  # order must not matter


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """Response flat at 12 % up to 5 contacts in the trailing week, then 3.5 %."""
    schedule = _schedules(customers=900, days=120, low=0.1, high=1.6, seed=0)
    return _frame(schedule, np.where(schedule["weekly"] <= 5, 0.12, 0.035))


@pytest.fixture(scope="module")
def planted_result(planted: pd.DataFrame) -> dict[str, Any]:
    return analyze_policies(planted, PolicyConfig(weeklyCap=10)).to_dict()


def test_the_planted_weekly_sweet_spot_and_cap_are_recovered(
    planted_result: dict[str, Any],
) -> None:
    result = planted_result
    assert result["sweetSpot"]["frequency"] == 5
    assert result["sweetSpot"]["rateWithin"] == pytest.approx(0.12, abs=0.01)
    assert result["sweetSpot"]["rateBeyond"] == pytest.approx(0.035, abs=0.01)
    weekly = [
        r["payload"]
        for r in result["recommendations"]
        if r["payload"]["ruleType"] == "frequency_cap" and "maxPerWeek" in r["payload"]["config"]
    ]
    assert weekly[0] == {
        "name": "Global weekly cap of 5",
        "ruleType": "frequency_cap",
        "scopes": [{"scope": "global", "scopeId": None}],
        "config": {"maxPerWeek": 5},
        "status": "draft",
    }
    # Nothing else is planted: the frequency effect explains the other windows and recency.
    assert len(result["recommendations"]) == 1


def test_the_result_is_plain_json_with_the_documented_keys(
    planted: pd.DataFrame, planted_result: dict[str, Any]
) -> None:
    result = planted_result
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    for key in (
        "interactionCount",
        "customerCount",
        "ignoredRows",
        "window",
        "responseRate",
        "contactFrequency",
        "frequencyBands",
        "frequencyCurve",
        "sweetSpot",
        "sweetSpots",
        "model",
        "channels",
        "timePatterns",
        "recommendations",
        "notes",
    ):
        assert key in result
    assert [band["label"] for band in result["frequencyBands"]] == [
        "1",
        "2-3",
        "4-5",
        "6-7",
        "8-10",
        "11+",
    ]
    assert [spot["window"] for spot in result["sweetSpots"]] == ["daily", "weekly", "monthly"]
    assert set(result["contactFrequency"]) == {"daily", "weekly", "monthly"}
    assert result["window"]["end"] == pd.Timestamp(planted["timestamp"].max()).isoformat()
    window_rows = planted["timestamp"] >= planted["timestamp"].max() - pd.Timedelta(days=90)
    assert result["interactionCount"] == window_rows.sum()
    assert result["customerCount"] == planted.loc[window_rows, "customerId"].nunique()
    assert {row["channel"] for row in result["channels"]} == {"email", "sms", "push"}
    assert len(result["timePatterns"]["dayOfWeek"]) == 7
    assert len(result["timePatterns"]["hourOfDay"]) == 24
    terms = {c["term"] for c in result["model"]["coefficients"]}
    assert {"intercept", "frequencyBand[6-7]", "channel[sms]"} <= terms
    assert 0.5 < result["model"]["auc"] < 1.0


def test_categorical_columns_from_the_loader_give_the_same_answer(
    planted: pd.DataFrame, planted_result: dict[str, Any]
) -> None:
    table = pa.Table.from_pandas(planted, preserve_index=False)
    categorical = table.to_pandas(strings_to_categorical=True)
    assert isinstance(categorical["customerId"].dtype, pd.CategoricalDtype)
    assert analyze_policies(categorical, PolicyConfig(weeklyCap=10)).to_dict() == planted_result


def test_a_planted_cooldown_is_recommended() -> None:
    schedule = _schedules(customers=900, days=100, low=0.2, high=1.2, seed=1)
    frame = _frame(schedule, np.where(schedule["gap"] < 12, 0.05, 0.10))
    result = analyze_policies(frame, PolicyConfig()).to_dict()
    cooldowns = [r for r in result["recommendations"] if r["payload"]["ruleType"] == "cooldown"]
    assert [r["payload"]["config"] for r in cooldowns] == [{"cooldownHours": 12}]
    expected = cooldowns[0]["evidence"]["expectedChange"]
    assert expected["responseRateOfAvoided"] == pytest.approx(0.05, abs=0.01)
    assert result["timePatterns"]["sinceLastContact"]["cooldown"]["cooldownHours"] == 12


def _small(rows: int = 400, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 40, rows),
            "created_at": pd.Timestamp("2026-03-01")
            + pd.to_timedelta(rng.uniform(0, 60 * 24, rows), unit="h"),
            "event": rng.choice(["Clicked", "delivered"], rows, p=[0.2, 0.8]),
            "channel": "email",
        }
    )


def test_a_single_channel_skips_comparisons_and_the_rest_works() -> None:
    progress: list[float] = []
    result = analyze_policies(
        _small(), PolicyConfig(), progress=lambda fraction, _: progress.append(fraction)
    ).to_dict()
    assert [row["channel"] for row in result["channels"]] == ["email"]
    assert result["channelComparisons"] == []
    assert any("one channel" in note for note in result["notes"])
    assert all(r["payload"]["scopes"][0]["scope"] == "global" for r in result["recommendations"])
    assert result["interactionCount"] == 400 and result["ignoredRows"] == 0
    assert progress == sorted(progress) and progress[0] == 0.0 and progress[-1] == 1.0
    assert not any("channel[" in c["term"] for c in result["model"]["coefficients"])


def test_rows_before_the_window_count_only_towards_frequencies() -> None:
    stamps = pd.to_datetime(
        ["2026-01-01T00:00", "2026-01-09T00:00", "2026-01-09T12:00", "2026-01-10T00:00"]
    )
    frame = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "b"],
            "timestamp": stamps,
            "outcome": ["click", "click", "none", "click"],
        }
    )
    result = analyze_policies(frame, PolicyConfig(lookbackDays=1)).to_dict()
    assert result["interactionCount"] == 2  # 2026-01-09T12:00 and 2026-01-10T00:00
    assert result["window"] == {
        "start": "2026-01-09T00:00:00",
        "end": "2026-01-10T00:00:00",
        "lookbackDays": 1,
    }
    weekly = {point["frequency"]: point["contacts"] for point in result["frequencyCurve"]["weekly"]}
    assert weekly == {1: 1, 2: 1}  # a's contact at 12:00 is its 2nd in the week


def test_an_unknown_column_is_refused_with_its_field() -> None:
    with pytest.raises(UnknownColumn) as caught:
        analyze_policies(_small(), PolicyConfig(customerColumn="who"))
    assert caught.value.field == "config.customerColumn"


def test_no_positive_outcome_is_not_enough_data() -> None:
    frame = _small().assign(event="delivered")
    with pytest.raises(NotEnoughData) as caught:
        analyze_policies(frame, PolicyConfig())
    assert caught.value.field == "config.positiveOutcomes"
    assert "delivered" in caught.value.message


def test_unparseable_timestamps_are_invalid_input() -> None:
    frame = _small().assign(created_at="last tuesday")
    with pytest.raises(InvalidInput) as caught:
        analyze_policies(frame, PolicyConfig())
    assert caught.value.field == "config.timestampColumn"
