"""Channel performance (CTR, CVR and pairwise differences) and day/hour response patterns."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

from mlworker.analysis.policies.frequency import grouped_counts
from mlworker.analysis.policies.rates import (
    BoolArray,
    FloatArray,
    IntArray,
    Rate,
    holm_adjust,
    json_number,
    rate_rows,
)
from mlworker.analysis.policies.sweetspot import SweetSpot
from mlworker.analysis.statistics import two_proportion_test, wilson_interval

# Groups with fewer contacts are neither flagged best/worst nor compared pairwise.
MIN_FLAG_CONTACTS = 30
# Pairwise comparisons cover at most this many channels (the largest), i.e. 66 pairs.
MAX_COMPARED_CHANNELS = 12
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAYPARTS = ("night", "morning", "afternoon", "evening")
_NANOSECONDS_PER_HOUR = 3_600_000_000_000
# 1970-01-01 was a Thursday (Monday = 0).
_EPOCH_WEEKDAY = 3


def day_and_hour(wall_clock: IntArray) -> tuple[IntArray, IntArray]:
    """Day of week (Monday = 0) and hour of day of int64 wall-clock nanoseconds.

    Examples
    --------
    >>> ns = np.array(["2026-01-05T09:30", "2026-01-11T23:59"], dtype="datetime64[ns]")
    >>> day, hour = day_and_hour(ns.view(np.int64))
    >>> day.tolist(), hour.tolist()
    ([0, 6], [9, 23])
    """
    hours = wall_clock // _NANOSECONDS_PER_HOUR
    return ((hours // 24 + _EPOCH_WEEKDAY) % 7).astype(np.int64), (hours % 24).astype(np.int64)


def daypart(hour: IntArray) -> IntArray:
    """Night 0-5 h, morning 6-11 h, afternoon 12-17 h, evening 18-23 h.

    Examples
    --------
    >>> [DAYPARTS[p] for p in daypart(np.array([0, 6, 12, 23]))]
    ['night', 'morning', 'afternoon', 'evening']
    """
    return (hour // 6).astype(np.int64)


@dataclass(frozen=True, slots=True)
class ChannelPerformance:
    """Impressions, clicks and conversions of one channel; CTR and CVR with Wilson intervals."""

    channel: str
    impressions: int
    clicks: int
    conversions: int
    ctr_low: float
    ctr_high: float
    cvr_low: float
    cvr_high: float
    best: bool
    worst: bool

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form (CVR = conversions / clicks)."""
        return {
            "channel": self.channel,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "ctr": json_number(self.clicks / self.impressions if self.impressions else None),
            "ctrLow": json_number(self.ctr_low),
            "ctrHigh": json_number(self.ctr_high),
            "cvr": json_number(self.conversions / self.clicks if self.clicks else None),
            "cvrLow": json_number(self.cvr_low),
            "cvrHigh": json_number(self.cvr_high),
            "best": self.best,
            "worst": self.worst,
        }


@dataclass(frozen=True, slots=True)
class ChannelComparison:
    """Two channels' CTR or CVR compared (two-sided, Holm-adjusted over the pairs)."""

    channel_a: str
    channel_b: str
    metric: str
    rate_a: float
    rate_b: float
    difference: float
    low: float
    high: float
    p_value: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form; difference = rate A - rate B."""
        return {
            "channelA": self.channel_a,
            "channelB": self.channel_b,
            "metric": self.metric,
            "rateA": json_number(self.rate_a),
            "rateB": json_number(self.rate_b),
            "difference": json_number(self.difference),
            "low": json_number(self.low),
            "high": json_number(self.high),
            "pValue": json_number(self.p_value),
            "significant": self.significant,
        }


@dataclass(frozen=True, slots=True)
class ChannelReport:
    """Everything per channel; ``skipped`` says why comparisons are absent."""

    column: str | None
    performance: tuple[ChannelPerformance, ...]
    comparisons: tuple[ChannelComparison, ...]
    sweet_spots: tuple[SweetSpot, ...]
    skipped: str | None

    def rows(self) -> list[dict[str, Any]]:
        """One JSON row per channel: performance, the channels it differs from, sweet spots."""
        rows = []
        for row in self.performance:
            differs = {
                metric: sorted(
                    pair.channel_b if pair.channel_a == row.channel else pair.channel_a
                    for pair in self.comparisons
                    if pair.metric == metric
                    and pair.significant
                    and row.channel in (pair.channel_a, pair.channel_b)
                )
                for metric in ("ctr", "cvr")
            }
            rows.append(
                {
                    **row.to_dict(),
                    "ctrDiffersFrom": differs["ctr"],
                    "cvrDiffersFrom": differs["cvr"],
                    "sweetSpots": [
                        spot.to_dict() for spot in self.sweet_spots if spot.channel == row.channel
                    ],
                }
            )
        return rows


def _flags(rates: FloatArray, eligible: BoolArray) -> tuple[int, int]:
    """Find the best and worst eligible rate (``-1`` when fewer than two are eligible)."""
    if eligible.sum() < 2:
        return -1, -1
    masked = np.where(eligible, rates, np.nan)
    return int(np.nanargmax(masked)), int(np.nanargmin(masked))


def channel_performance(
    channel: IntArray,
    labels: tuple[str, ...],
    responded: BoolArray,
    converted: BoolArray,
    confidence: float,
) -> tuple[list[ChannelPerformance], list[ChannelComparison]]:
    """Per-channel CTR and CVR, largest channel first, and Holm-adjusted pairwise tests.

    A conversion counts as a click: CTR = clicks / impressions, CVR = conversions / clicks.

    Examples
    --------
    >>> rows, pairs = channel_performance(
    ...     np.array([0, 0, 0, 0, 1, 1]), ("email", "sms"),
    ...     np.array([True, True, False, False, True, False]),
    ...     np.array([True, False, False, False, False, False]), 0.95)
    >>> [(r.channel, r.impressions, r.clicks, r.conversions) for r in rows]
    [('email', 4, 2, 1), ('sms', 2, 1, 0)]
    """
    impressions, clicks, conversions = grouped_counts(channel, len(labels), responded, converted)
    ctr_low, ctr_high = wilson_interval(clicks, impressions, confidence)
    cvr_low, cvr_high = wilson_interval(conversions, clicks, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        ctr = np.where(impressions > 0, clicks / impressions, np.nan)
    best, worst = _flags(ctr, impressions >= MIN_FLAG_CONTACTS)
    order = sorted(range(len(labels)), key=lambda i: (-impressions[i], labels[i]))
    rows = [
        ChannelPerformance(
            channel=labels[i],
            impressions=int(impressions[i]),
            clicks=int(clicks[i]),
            conversions=int(conversions[i]),
            ctr_low=float(ctr_low[i]),
            ctr_high=float(ctr_high[i]),
            cvr_low=float(cvr_low[i]),
            cvr_high=float(cvr_high[i]),
            best=i == best,
            worst=i == worst,
        )
        for i in order
        if impressions[i] > 0
    ]
    compared = [i for i in order if impressions[i] >= MIN_FLAG_CONTACTS][:MAX_COMPARED_CHANNELS]
    comparisons: list[ChannelComparison] = []
    alpha = 1.0 - confidence
    for metric, successes, trials in (("ctr", clicks, impressions), ("cvr", conversions, clicks)):
        tests = [
            (
                a,
                b,
                two_proportion_test(
                    successes[a], trials[a], successes[b], trials[b], confidence=confidence
                ),
            )
            for a, b in combinations(compared, 2)
            if trials[a] > 0 and trials[b] > 0
        ]
        adjusted = holm_adjust([test.p_value for _, _, test in tests])
        comparisons.extend(
            ChannelComparison(
                channel_a=labels[a],
                channel_b=labels[b],
                metric=metric,
                rate_a=test.p1,
                rate_b=test.p2,
                difference=test.difference,
                low=test.low,
                high=test.high,
                p_value=float(p_value),
                significant=bool(p_value < alpha),
            )
            for (a, b, test), p_value in zip(tests, adjusted, strict=True)
        )
    return rows, comparisons


@dataclass(frozen=True, slots=True)
class TimePattern:
    """Response rate per level (day or hour), best and worst flagged, and a homogeneity test."""

    rates: tuple[Rate, ...]
    best: int
    worst: int
    p_value: float | None

    def rows(self) -> list[dict[str, Any]]:
        """Camel-case JSON rows."""
        return [
            {**rate.to_dict(), "best": i == self.best, "worst": i == self.worst}
            for i, rate in enumerate(self.rates)
        ]


def time_pattern(
    codes: IntArray,
    labels: tuple[str, ...],
    responded: BoolArray,
    converted: BoolArray,
    confidence: float,
) -> TimePattern:
    """Rates per level with Wilson intervals and a chi-square test that they are all equal.

    Best and worst are flagged among levels with at least 30 contacts.

    References
    ----------
    .. [1] Agresti, A. (2013). Categorical Data Analysis, 3rd ed., section 3.2 (Pearson's
       chi-squared test of independence).

    Examples
    --------
    >>> pattern = time_pattern(np.repeat([0, 1], 100), ("am", "pm"),
    ...                        np.r_[np.ones(40, bool), np.zeros(160, bool)],
    ...                        np.zeros(200, bool), 0.95)
    >>> pattern.best, pattern.worst, pattern.p_value < 1e-9
    (0, 1, True)
    """
    contacts, responses, conversions = grouped_counts(codes, len(labels), responded, converted)
    rates = rate_rows(list(labels), contacts, responses, conversions, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(contacts > 0, responses / contacts, np.nan)
    best, worst = _flags(shares, contacts >= MIN_FLAG_CONTACTS)
    present = contacts > 0
    table = np.column_stack([responses[present], contacts[present] - responses[present]])
    p_value: float | None = None
    if table.shape[0] >= 2 and table.sum(axis=0).min() > 0:
        p_value = float(stats.chi2_contingency(table, correction=False).pvalue)
    return TimePattern(tuple(rates), best, worst, p_value)
