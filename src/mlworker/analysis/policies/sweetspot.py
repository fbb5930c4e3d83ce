"""Where the response rate falls with frequency (the sweet spot) or recovers with time (cooldown).

Both are change points on an ordered curve, found with one-sided two-proportion tests, Holm's
adjustment across the candidate points and a minimum relative drop, so a trivial but
significant drop on millions of contacts is not a finding.

Sweet spot
    For each candidate cap ``f`` the rate of the ``(f+1)``-th contact in the window is tested
    against the rate of contacts ``1..f``; the sweet spot is the first ``f`` where it is
    significantly lower. Comparing all contacts beyond ``f`` instead would flag ``f = 1`` as
    soon as any later frequency is worse, so the next contact localises the drop. A second
    test, contacts beyond ``f`` against contacts up to ``f`` (what a cap at ``f`` removes and
    keeps), must be significant too; the reported p-value is the larger of the two
    (an intersection-union test).
Cooldown
    Hours since the customer's previous contact are banded; for each boundary ``h`` the band
    just before ``h`` is tested against all contacts at least ``h`` after their previous one.
    The cooldown is the largest such boundary: where the rate has recovered. The avoided
    contacts (sooner than ``h``) against the later ones must be significant too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlworker.analysis.policies.frequency import CurvePoint
from mlworker.analysis.policies.rates import FloatArray, IntArray, Rate, holm_adjust, json_number
from mlworker.analysis.statistics import ProportionTest, two_proportion_test

# A significant drop smaller than this share of the rate is not worth a policy.
MIN_RELATIVE_DROP = 0.10
# Fewest contacts in either group of a test.
MIN_TEST_CONTACTS = 30
RECENCY_BOUNDS_HOURS = (1, 4, 12, 24, 48, 72, 168)
RECENCY_LABELS = ("<1h", "1-4h", "4-12h", "12-24h", "24-48h", "48-72h", "72-168h", "168h+", "first")


def recency_band(hours_since_previous: npt.ArrayLike) -> IntArray:
    """Band of the hours since the previous contact; the first contact is the last band.

    Examples
    --------
    >>> [RECENCY_LABELS[b] for b in recency_band([0.5, 4.0, 11.9, 200.0, np.nan])]
    ['<1h', '4-12h', '4-12h', '168h+', 'first']
    """
    hours = np.asarray(hours_since_previous, dtype=np.float64)
    bands = np.searchsorted(np.asarray(RECENCY_BOUNDS_HOURS, dtype=np.float64), hours, "right")
    return np.where(np.isnan(hours), len(RECENCY_LABELS) - 1, bands).astype(np.int64)


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A tested comparison of the contacts a policy avoids with the ones it keeps."""

    threshold: int | None
    rate_avoided: float | None
    rate_kept: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    contacts_avoided: int
    responses_avoided: int
    conversions_avoided: int
    contacts_kept: int
    responses_kept: int
    reason: str | None
    z: float | None = None


@dataclass(frozen=True, slots=True)
class SweetSpot:
    """The frequency beyond which the response rate falls, in one window (and channel)."""

    window: str
    channel: str | None
    change: ChangePoint
    rate_next: float | None
    marginal_p_value: float | None

    @property
    def frequency(self) -> int | None:
        """The sweet spot: the largest frequency before the rate falls (``None``: none)."""
        return self.change.threshold

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form; difference = rate beyond - rate within."""
        change = self.change
        return {
            "window": self.window,
            "channel": self.channel,
            "frequency": change.threshold,
            "rateWithin": json_number(change.rate_kept),
            "rateBeyond": json_number(change.rate_avoided),
            "rateNext": json_number(self.rate_next),
            "difference": json_number(change.difference),
            "low": json_number(change.low),
            "high": json_number(change.high),
            "pValue": json_number(change.p_value),
            "marginalPValue": json_number(self.marginal_p_value),
            "contactsWithin": change.contacts_kept,
            "contactsBeyond": change.contacts_avoided,
            "conversionsBeyond": change.conversions_avoided,
            "reason": change.reason,
        }


@dataclass(frozen=True, slots=True)
class Cooldown:
    """The hours after a contact during which the next one responds worse."""

    change: ChangePoint
    band_p_value: float | None

    @property
    def hours(self) -> int | None:
        """Cooldown in hours (``None``: no significant recovery point)."""
        return self.change.threshold

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form; difference = rate sooner than the cooldown - rate later."""
        change = self.change
        return {
            "cooldownHours": change.threshold,
            "rateSooner": json_number(change.rate_avoided),
            "rateLater": json_number(change.rate_kept),
            "difference": json_number(change.difference),
            "low": json_number(change.low),
            "high": json_number(change.high),
            "pValue": json_number(change.p_value),
            "bandPValue": json_number(self.band_p_value),
            "contactsSooner": change.contacts_avoided,
            "reason": change.reason,
        }


def _no_change(reason: str) -> ChangePoint:
    return ChangePoint(None, None, None, None, None, None, None, 0, 0, 0, 0, 0, reason)


def _smaller(
    x_low: float, n_low: float, x_high: float, n_high: float, confidence: float
) -> ProportionTest | None:
    """One-sided test that the first rate is below the second (``None``: too few contacts)."""
    if min(n_low, n_high) < MIN_TEST_CONTACTS or x_low + x_high == 0:
        return None
    return two_proportion_test(
        x_low, n_low, x_high, n_high, alternative="smaller", confidence=confidence
    )


def _relative_drop(test: ProportionTest) -> float:
    return 1.0 - test.p1 / test.p2 if test.p2 > 0 else 0.0


def _holm_over_tested(tests: Sequence[ProportionTest | None]) -> FloatArray:
    """Holm-adjusted p-values of the tests that ran; ``nan`` for the ones that did not."""
    adjusted = np.full(len(tests), np.nan)
    ran = [i for i, test in enumerate(tests) if test is not None]
    if ran:
        adjusted[ran] = holm_adjust([tests[i].p_value for i in ran])  # type: ignore[union-attr]
    return adjusted


def _change_point(
    threshold: int,
    avoided: tuple[int, int, int],
    kept: tuple[int, int, int],
    test: ProportionTest,
    p_value: float,
) -> ChangePoint:
    return ChangePoint(
        threshold=threshold,
        rate_avoided=test.p1,
        rate_kept=test.p2,
        difference=test.difference,
        low=test.low,
        high=test.high,
        p_value=p_value,
        contacts_avoided=avoided[0],
        responses_avoided=avoided[1],
        conversions_avoided=avoided[2],
        contacts_kept=kept[0],
        responses_kept=kept[1],
        reason=None,
        z=test.z,
    )


def find_sweet_spot(
    curve: Sequence[CurvePoint],
    window: str,
    confidence: float,
    channel: str | None = None,
) -> SweetSpot:
    """Find the first frequency after which the next contact responds significantly worse.

    Parameters
    ----------
    curve
        The marginal curve of the window (:func:`~.frequency.frequency_curve`).
    window
        Its name, reported back.
    confidence
        ``1 - confidence`` is the family-wise significance level.
    channel
        The channel the curve belongs to, reported back (``None``: all channels).

    References
    ----------
    .. [1] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics 6(2), 65-70.
    .. [2] Berger, R. L. (1982). Multiparameter hypothesis testing and acceptance sampling.
       Technometrics 24(4), 295-300 (the intersection-union test).

    Examples
    --------
    >>> from mlworker.analysis.policies.frequency import frequency_curve
    >>> frequency = np.repeat([1, 2, 3, 4], [4000, 3000, 2000, 1000])
    >>> responded = np.zeros(frequency.size, dtype=bool)
    >>> for f, hits in ((1, 400), (2, 300), (3, 60), (4, 20)):
    ...     responded[np.flatnonzero(frequency == f)[:hits]] = True
    >>> spot = find_sweet_spot(frequency_curve(frequency, responded, responded, 0.95),
    ...                        "weekly", 0.95)
    >>> spot.frequency, round(spot.change.rate_kept, 3), round(spot.change.rate_avoided, 3)
    (2, 0.1, 0.027)
    """
    contacts = np.array([point.rate.contacts for point in curve], dtype=np.int64)
    responses = np.array([point.rate.responses for point in curve], dtype=np.int64)
    conversions = np.array([point.rate.conversions for point in curve], dtype=np.int64)
    if len(curve) < 2:
        reason = "no contacts" if not curve else f"too few repeated contacts in a {window} window"
        return SweetSpot(window, channel, _no_change(reason), None, None)
    alpha = 1.0 - confidence
    within_contacts = np.cumsum(contacts)[:-1]
    within_responses = np.cumsum(responses)[:-1]
    marginal = [
        _smaller(
            responses[i + 1], contacts[i + 1], within_responses[i], within_contacts[i], confidence
        )
        for i in range(len(curve) - 1)
    ]
    adjusted = _holm_over_tested(marginal)
    if np.isnan(adjusted).all():
        reason = f"too few contacts at repeated frequencies (at least {MIN_TEST_CONTACTS} needed)"
        return SweetSpot(window, channel, _no_change(reason), None, None)
    for i, test in enumerate(marginal):
        if test is None or not adjusted[i] < alpha or _relative_drop(test) < MIN_RELATIVE_DROP:
            continue
        kept = (int(within_contacts[i]), int(within_responses[i]), 0)
        avoided = (
            int(contacts[i + 1 :].sum()),
            int(responses[i + 1 :].sum()),
            int(conversions[i + 1 :].sum()),
        )
        beyond = _smaller(avoided[1], avoided[0], kept[1], kept[0], confidence)
        if beyond is None or not beyond.p_value < alpha:
            continue
        p_value = max(float(adjusted[i]), beyond.p_value)
        change = _change_point(curve[i].frequency, avoided, kept, beyond, p_value)
        return SweetSpot(window, channel, change, test.p1, float(adjusted[i]))
    smallest = float(np.nanmin(adjusted))
    reason = (
        f"the response rate does not fall significantly (level {alpha:.2g}) and by at least "
        f"{MIN_RELATIVE_DROP:.0%} at any frequency; smallest Holm-adjusted p-value {smallest:.3g}"
    )
    return SweetSpot(window, channel, _no_change(reason), None, None)


def find_cooldown(recency: Sequence[Rate], confidence: float) -> Cooldown:
    """Find the hours after a contact until the next one responds as well as later ones.

    Parameters
    ----------
    recency
        Rates of the bands of :data:`RECENCY_LABELS` (the last one: first contacts).
    confidence
        ``1 - confidence`` is the family-wise significance level.

    References
    ----------
    .. [1] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics 6(2), 65-70.

    Examples
    --------
    >>> from mlworker.analysis.policies.rates import rate_rows
    >>> contacts = [1000] * 8 + [500]
    >>> responses = [50, 50, 50, 100, 100, 100, 100, 100, 50]
    >>> cooldown = find_cooldown(rate_rows(list(RECENCY_LABELS), contacts, responses,
    ...                                    [0] * 9, 0.95), 0.95)
    >>> cooldown.hours, cooldown.change.contacts_avoided
    (12, 3000)
    """
    contacts = np.array([row.contacts for row in recency], dtype=np.int64)
    responses = np.array([row.responses for row in recency], dtype=np.int64)
    conversions = np.array([row.conversions for row in recency], dtype=np.int64)
    gap_bands = len(RECENCY_BOUNDS_HOURS) + 1
    alpha = 1.0 - confidence
    band_tests = [
        _smaller(
            responses[j],
            contacts[j],
            responses[j + 1 : gap_bands].sum(),
            contacts[j + 1 : gap_bands].sum(),
            confidence,
        )
        for j in range(len(RECENCY_BOUNDS_HOURS))
    ]
    adjusted = _holm_over_tested(band_tests)
    if np.isnan(adjusted).all():
        return Cooldown(_no_change("too few repeat contacts to compare gaps"), None)
    for j in reversed(range(len(RECENCY_BOUNDS_HOURS))):
        test = band_tests[j]
        if test is None or not adjusted[j] < alpha or _relative_drop(test) < MIN_RELATIVE_DROP:
            continue
        avoided = (
            int(contacts[: j + 1].sum()),
            int(responses[: j + 1].sum()),
            int(conversions[: j + 1].sum()),
        )
        later = (int(contacts[j + 1 : gap_bands].sum()), int(responses[j + 1 : gap_bands].sum()))
        overall = _smaller(avoided[1], avoided[0], later[1], later[0], confidence)
        if overall is None or not overall.p_value < alpha:
            continue
        # Kept: every contact not avoided, first contacts included.
        kept = (
            int(contacts.sum()) - avoided[0],
            int(responses.sum()) - avoided[1],
            0,
        )
        p_value = max(float(adjusted[j]), overall.p_value)
        change = _change_point(RECENCY_BOUNDS_HOURS[j], avoided, kept, overall, p_value)
        return Cooldown(change, float(adjusted[j]))
    smallest = float(np.nanmin(adjusted))
    reason = (
        "contacts soon after a previous one do not respond significantly worse (level "
        f"{alpha:.2g}) and by at least {MIN_RELATIVE_DROP:.0%}; smallest Holm-adjusted p-value "
        f"{smallest:.3g}"
    )
    return Cooldown(_no_change(reason), None)
