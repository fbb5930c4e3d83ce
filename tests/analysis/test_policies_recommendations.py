from __future__ import annotations

import numpy as np
import pytest

from mlworker.analysis.policies.frequency import (
    NANOSECONDS_PER_HOUR,
    WindowContacts,
    trailing_counts,
)
from mlworker.analysis.policies.recommendations import (
    cap_recommendation,
    confidence_from_p_value,
    recommend,
)
from mlworker.analysis.policies.sweetspot import ChangePoint, SweetSpot, recency_band

CAPS = {"daily": 3, "weekly": 10, "monthly": 30}
CHANNELS = ("email", "sms")


def _contacts(seed: int, customers: int = 800) -> tuple[WindowContacts, np.random.Generator]:
    """Random schedules over 90 days on two channels; outcomes are set by each test."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.uniform(0.2, 1.4, customers) * 90)
    customer = np.repeat(np.arange(customers), counts)
    time = (rng.uniform(0, 90 * 24, customer.size) * NANOSECONDS_PER_HOUR).astype(np.int64)
    channel = rng.integers(0, 2, customer.size)
    trailing = trailing_counts(customer, time)
    scoped = trailing_counts(customer * 2 + channel, time)
    contacts = WindowContacts(
        responded=np.zeros(customer.size, dtype=bool),
        converted=np.zeros(customer.size, dtype=bool),
        counts=trailing.counts,
        recency=recency_band(trailing.hours_since_previous),
        channel=channel,
        channel_labels=CHANNELS,
        channel_counts=scoped.counts,
    )
    return contacts, rng


def _with_outcomes(
    contacts: WindowContacts, rng: np.random.Generator, probability: np.ndarray
) -> WindowContacts:
    responded = rng.random(probability.size) < probability
    converted = responded & (rng.random(probability.size) < 0.3)
    return WindowContacts(
        responded,
        converted,
        contacts.counts,
        contacts.recency,
        contacts.channel,
        contacts.channel_labels,
        contacts.channel_counts,
    )


def _configs(recommendations: list) -> list[tuple[str | None, dict[str, int]]]:
    return [(r.payload["scopes"][0]["scopeId"], r.payload["config"]) for r in recommendations]


def test_a_weekly_effect_gives_one_weekly_cap_and_notes_for_the_rest() -> None:
    contacts, rng = _contacts(seed=0)
    probability = np.where(contacts.counts["weekly"] <= 4, 0.12, 0.03)
    recommendations, notes = recommend(_with_outcomes(contacts, rng, probability), CAPS, 0.95)
    assert _configs(recommendations) == [(None, {"maxPerWeek": 4})]
    cap = recommendations[0].to_dict()
    assert cap["type"] == "policy"
    assert cap["payload"]["ruleType"] == "frequency_cap"
    assert cap["payload"]["scopes"] == [{"scope": "global", "scopeId": None}]
    assert cap["payload"]["status"] == "draft"
    change = cap["evidence"]["expectedChange"]
    assert change["contactsAvoided"] == (contacts.counts["weekly"] > 4).sum()
    assert change["responseRateOfAvoided"] == pytest.approx(0.03, abs=0.01)
    assert change["responseRateOfKept"] == pytest.approx(0.12, abs=0.01)
    assert cap["evidence"]["interval"][0] < cap["evidence"]["effectSize"] < 0
    assert cap["confidence"] == pytest.approx(min(0.999, 1 - cap["evidence"]["pValue"]))
    assert any(note.startswith("no daily cap recommended") for note in notes)
    assert any(note.startswith("no cooldown recommended") for note in notes)


def test_a_channel_specific_effect_gives_a_channel_cap() -> None:
    contacts, rng = _contacts(seed=1)
    email = contacts.channel == 0
    assert contacts.channel_counts is not None
    tired = email & (contacts.channel_counts["weekly"] > 2)
    probability = np.where(tired, 0.03, 0.12)
    recommendations, _ = recommend(_with_outcomes(contacts, rng, probability), CAPS, 0.95)
    assert _configs(recommendations)[0] == ("email", {"maxPerWeek": 2})
    assert recommendations[0].payload["scopes"] == [{"scope": "channel", "scopeId": "email"}]
    assert all(scope != "sms" for scope, _ in _configs(recommendations))


def test_no_effect_no_recommendation() -> None:
    contacts, rng = _contacts(seed=2, customers=400)
    flat = np.full(contacts.responded.size, 0.1)
    recommendations, notes = recommend(_with_outcomes(contacts, rng, flat), CAPS, 0.95)
    assert recommendations == []
    assert len(notes) == 4  # weekly, daily, monthly, cooldown


def test_a_sweet_spot_at_or_above_the_current_cap_is_not_recommended() -> None:
    change = ChangePoint(5, 0.02, 0.1, -0.08, -0.09, -0.07, 1e-12, 900, 18, 3, 9100, 910, None)
    assert cap_recommendation(SweetSpot("weekly", None, change, 0.03, 1e-9), 5) is None
    proposal = cap_recommendation(SweetSpot("daily", "sms", change, 0.03, 1e-9), 6)
    assert proposal is not None
    assert proposal.payload["config"] == {"maxPerDay": 5}
    assert proposal.payload["name"] == "sms daily cap of 5"


@pytest.mark.parametrize(
    ("p_value", "confidence"), [(0.2, 0.8), (0.0, 0.999), (1.0, 0.0), (None, 0.0)]
)
def test_confidence_is_one_minus_p_clipped(p_value: float | None, confidence: float) -> None:
    assert confidence_from_p_value(p_value) == pytest.approx(confidence)
