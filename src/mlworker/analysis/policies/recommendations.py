"""Contact policies to propose: frequency caps below the sweet spot, and a cooldown.

Each recommendation carries a ``payload`` the platform stores as a draft contact policy, and
the evidence behind it. ``confidence`` is ``1 - pValue`` clipped to ``[0, 0.999]``: a
readable summary of how sure the test is that the avoided contacts respond worse, not the
probability that the policy improves any business metric.

The expected change is first-order: the avoided contacts are the ones the history shows above
the cap (or sooner than the cooldown), assumed dropped rather than rescheduled, and their
conversions counted as lost — an upper bound, since some would happen anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlworker.analysis.policies.frequency import (
    WINDOW_BY_NAME,
    WINDOWS,
    WindowContacts,
    frequency_curve,
    grouped_counts,
)
from mlworker.analysis.policies.rates import BoolArray, json_number, rate_rows
from mlworker.analysis.policies.sweetspot import (
    RECENCY_BOUNDS_HOURS,
    RECENCY_LABELS,
    ChangePoint,
    Cooldown,
    SweetSpot,
    find_cooldown,
    find_sweet_spot,
)

# A channel gets its own cap only with at least this many contacts in the window.
MIN_CHANNEL_CONTACTS = 500
MAX_CONFIDENCE = 0.999
# Channel caps are sought on the largest channels only.
MAX_CHANNEL_CAPS = 12


def confidence_from_p_value(p_value: float | None) -> float:
    """Return ``1 - p`` clipped to ``[0, 0.999]`` (0 when there is no p-value).

    Examples
    --------
    >>> confidence_from_p_value(0.02), confidence_from_p_value(1e-30)
    (0.98, 0.999)
    """
    if p_value is None:
        return 0.0
    return float(min(max(1.0 - p_value, 0.0), MAX_CONFIDENCE))


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A proposed contact policy with its evidence."""

    title: str
    description: str
    payload: dict[str, Any]
    confidence: float
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form."""
        return {
            "type": "policy",
            "title": self.title,
            "description": self.description,
            "payload": self.payload,
            "confidence": json_number(self.confidence),
            "evidence": self.evidence,
        }


def _evidence(change: ChangePoint, given: list[str]) -> dict[str, Any]:
    kept_rate = change.responses_kept / change.contacts_kept if change.contacts_kept else None
    return {
        "effectSize": json_number(change.difference),
        "interval": [json_number(change.low), json_number(change.high)],
        "pValue": json_number(change.p_value),
        "sampleSize": change.contacts_avoided + change.contacts_kept,
        "expectedChange": {
            "contactsAvoided": change.contacts_avoided,
            "conversionsLost": change.conversions_avoided,
            "responseRateOfAvoided": json_number(change.rate_avoided),
            "responseRateOfKept": json_number(kept_rate),
        },
        "withinPolicies": list(given),
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _scopes(channel: str | None) -> list[dict[str, str | None]]:
    if channel is None:
        return [{"scope": "global", "scopeId": None}]
    return [{"scope": "channel", "scopeId": channel}]


def cap_recommendation(
    spot: SweetSpot, current_cap: int, given: list[str] | None = None
) -> Recommendation | None:
    """Propose a cap at the sweet spot of ``spot``'s window when it is below the current cap.

    Examples
    --------
    >>> from mlworker.analysis.policies.sweetspot import ChangePoint, SweetSpot
    >>> change = ChangePoint(5, 0.02, 0.1, -0.08, -0.09, -0.07, 1e-12, 900, 18, 3, 9100, 910,
    ...                      None)
    >>> recommendation = cap_recommendation(SweetSpot("weekly", None, change, 0.03, 1e-9), 10)
    >>> recommendation.payload["config"], recommendation.confidence
    ({'maxPerWeek': 5}, 0.999)
    """
    frequency = spot.frequency
    if frequency is None or frequency >= current_cap:
        return None
    window = WINDOW_BY_NAME[spot.window]
    change = spot.change
    scope = "contacts" if spot.channel is None else f"{spot.channel} contacts"
    nth = "" if frequency == 1 else f" {frequency}"
    title = f"Cap {scope} at {frequency} per {window.unit}"
    share = change.contacts_avoided / max(change.contacts_avoided + change.contacts_kept, 1)
    context = f"Within {' and '.join(given)}: " if given else ""
    description = context + (
        f"{scope if given or spot.channel else scope.capitalize()} beyond the first{nth} in a "
        f"trailing {window.days}-day window "
        f"responded at {_percent(change.rate_avoided)} against {_percent(change.rate_kept)} "
        f"up to it (p = {change.p_value:.2g}). A cap of {frequency} per {window.unit} (now "
        f"{current_cap}) would have avoided {change.contacts_avoided} contacts "
        f"({share:.1%}) and at most {change.conversions_avoided} conversions."
    )
    payload = {
        "name": f"{spot.channel or 'Global'} {window.name} cap of {frequency}",
        "ruleType": "frequency_cap",
        "scopes": _scopes(spot.channel),
        "config": {window.config_key: int(frequency)},
        "status": "draft",
    }
    return Recommendation(
        title,
        description,
        payload,
        confidence_from_p_value(change.p_value),
        _evidence(change, list(given or [])),
    )


def cooldown_recommendation(
    cooldown: Cooldown, given: list[str] | None = None
) -> Recommendation | None:
    """Propose a cooldown when contacts soon after a previous one respond significantly worse.

    Examples
    --------
    >>> from mlworker.analysis.policies.sweetspot import ChangePoint, Cooldown
    >>> change = ChangePoint(12, 0.05, 0.1, -0.05, -0.06, -0.04, 1e-6, 3000, 150, 20, 6000,
    ...                      600, None)
    >>> cooldown_recommendation(Cooldown(change, 1e-7)).payload["config"]
    {'cooldownHours': 12}
    """
    hours = cooldown.hours
    if hours is None:
        return None
    change = cooldown.change
    context = f"Within {' and '.join(given)}: c" if given else "C"
    description = context + (
        f"ontacts less than {hours} hours after the customer's previous contact responded at "
        f"{_percent(change.rate_avoided)} against {_percent(change.rate_kept)} for later ones "
        f"(p = {change.p_value:.2g}). A {hours}-hour cooldown would have avoided "
        f"{change.contacts_avoided} contacts and at most {change.conversions_avoided} "
        "conversions (fewer if they are rescheduled)."
    )
    payload = {
        "name": f"Cooldown of {hours} hours",
        "ruleType": "cooldown",
        "scopes": _scopes(None),
        "config": {"cooldownHours": int(hours)},
        "status": "draft",
    }
    return Recommendation(
        f"Wait at least {hours} hours between contacts",
        description,
        payload,
        confidence_from_p_value(change.p_value),
        _evidence(change, list(given or [])),
    )


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A policy that may be proposed: a cap on a window (global or one channel), or a cooldown."""

    window: str | None
    channel: int | None = None

    def describe(self, labels: tuple[str, ...], value: int) -> str:
        if self.window is None:
            return f"cooldownHours {value}"
        key = WINDOW_BY_NAME[self.window].config_key
        return f"{key} {value}" if self.channel is None else f"{labels[self.channel]} {key} {value}"


@dataclass(frozen=True, slots=True)
class _Finding:
    """A candidate evaluated on the kept contacts: its recommendation and what it avoids."""

    recommendation: Recommendation | None
    avoided: BoolArray | None
    strength: float
    reason: str


def _evaluate(
    candidate: _Candidate,
    contacts: WindowContacts,
    kept: BoolArray,
    caps: dict[str, int],
    level: float,
    tested: int,
    given: list[str],
) -> _Finding:
    """Search one candidate at confidence ``level`` (Bonferroni over ``tested`` candidates)."""
    if candidate.window is None:
        recency = rate_rows(
            list(RECENCY_LABELS),
            *grouped_counts(
                contacts.recency[kept],
                len(RECENCY_LABELS),
                contacts.responded[kept],
                contacts.converted[kept],
            ),
            level,
        )
        cooldown = find_cooldown(recency, level)
        change = _bonferroni(cooldown.change, tested)
        recommendation = cooldown_recommendation(replace(cooldown, change=change), given)
        if recommendation is None or cooldown.hours is None:
            return _Finding(None, None, 0.0, f"no cooldown recommended: {change.reason}")
        band = RECENCY_BOUNDS_HOURS.index(cooldown.hours)
        avoided = kept & (contacts.recency <= band)
        return _Finding(recommendation, avoided, -(change.z or 0.0), "")
    window = WINDOW_BY_NAME[candidate.window]
    if candidate.channel is None:
        counts, mine, label = contacts.counts[window.name], kept, None
    else:
        assert contacts.channel is not None and contacts.channel_counts is not None
        counts = contacts.channel_counts[window.name]
        mine = kept & (contacts.channel == candidate.channel)
        label = contacts.channel_labels[candidate.channel]
    curve = frequency_curve(counts[mine], contacts.responded[mine], contacts.converted[mine], level)
    spot = find_sweet_spot(curve, window.name, level, channel=label)
    spot = replace(spot, change=_bonferroni(spot.change, tested))
    recommendation = cap_recommendation(spot, caps[window.name], given)
    if recommendation is None or spot.frequency is None:
        return _Finding(None, None, 0.0, _cap_note(spot, caps[window.name]))
    return _Finding(recommendation, mine & (counts > spot.frequency), -(spot.change.z or 0.0), "")


def _bonferroni(change: ChangePoint, tested: int) -> ChangePoint:
    if change.p_value is None:
        return change
    return replace(change, p_value=min(1.0, change.p_value * tested))


def _cap_note(spot: SweetSpot, cap: int) -> str:
    if spot.frequency is None:
        return f"no {spot.window} cap recommended: {spot.change.reason}"
    return (
        f"no {spot.window} cap recommended: the sweet spot ({spot.frequency}) is not below "
        f"the current cap ({cap})"
    )


def _candidates(contacts: WindowContacts) -> list[_Candidate]:
    found = [_Candidate(window) for window in ("weekly", "daily", "monthly")]
    found.append(_Candidate(None))
    if contacts.channel is not None and contacts.channel_counts is not None:
        sizes = np.bincount(contacts.channel, minlength=len(contacts.channel_labels))
        for channel in np.argsort(-sizes, kind="stable")[:MAX_CHANNEL_CAPS]:
            if sizes[channel] >= MIN_CHANNEL_CONTACTS:
                found.extend(_Candidate(w.name, int(channel)) for w in WINDOWS)
    return found


def recommend(
    contacts: WindowContacts, caps: dict[str, int], confidence: float
) -> tuple[list[Recommendation], list[str]]:
    """Propose caps and a cooldown by forward selection, strongest evidence first.

    Every candidate policy (a weekly, daily or monthly cap, globally or per channel, and a
    cooldown) is searched on the contacts the policies chosen so far keep; the one whose avoided
    contacts differ most from the kept ones (largest z) is chosen, and the search repeats until
    no candidate is significant. One mechanism shows up in several candidates — frequent
    contacts are also close together — and judging each on what the earlier ones keep proposes
    only policies that add to them, with incremental evidence and expected change. Each step
    tests its candidates at ``alpha / candidates`` (Bonferroni) and reports p-values
    multiplied accordingly.

    Parameters
    ----------
    contacts
        Contacts in the window with their trailing counts.
    caps
        Current cap of each window.
    confidence
        Confidence level of the tests.

    Returns
    -------
    The recommendations in the order chosen, and notes on the policies not recommended.

    References
    ----------
    .. [1] Dunn, O. J. (1961). Multiple comparisons among means. JASA 56(293), 52-64.
    """
    alpha = 1.0 - confidence
    kept = np.ones(contacts.responded.size, dtype=bool)
    remaining = _candidates(contacts)
    given: list[str] = []
    recommendations: list[Recommendation] = []
    last: dict[_Candidate, _Finding] = {}
    while remaining:
        tested = len(remaining)
        level = 1.0 - alpha / tested
        findings = {
            candidate: _evaluate(candidate, contacts, kept, caps, level, tested, given)
            for candidate in remaining
        }
        last.update(findings)
        usable = [c for c, finding in findings.items() if finding.recommendation is not None]
        if not usable:
            break
        best = max(usable, key=lambda candidate: findings[candidate].strength)
        finding = findings[best]
        assert finding.recommendation is not None and finding.avoided is not None
        recommendations.append(finding.recommendation)
        kept &= ~finding.avoided
        value = next(iter(finding.recommendation.payload["config"].values()))
        given.append(best.describe(contacts.channel_labels, int(value)))
        remaining.remove(best)
    context = f" (within {' and '.join(given)})" if given else ""
    notes = [
        last[candidate].reason + context
        for candidate in remaining
        if candidate.channel is None and candidate in last
    ]
    return recommendations, notes
