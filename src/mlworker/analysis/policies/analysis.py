"""``analyze_policies``: from an interaction history to contact-policy recommendations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlworker.analysis.policies.channels import (
    DAY_NAMES,
    DAYPARTS,
    MAX_COMPARED_CHANNELS,
    ChannelReport,
    TimePattern,
    channel_performance,
    day_and_hour,
    daypart,
    time_pattern,
)
from mlworker.analysis.policies.columns import ResolvedColumns
from mlworker.analysis.policies.config import PolicyConfig
from mlworker.analysis.policies.frequency import (
    NANOSECONDS_PER_DAY,
    WINDOWS,
    CurvePoint,
    FrequencyDistribution,
    WindowContacts,
    band_index,
    band_labels,
    band_rates,
    frequency_curve,
    frequency_distribution,
    grouped_counts,
    trailing_counts,
)
from mlworker.analysis.policies.model import Factor, ResponseModel, fit_response_model
from mlworker.analysis.policies.prepare import Interactions, prepare_interactions
from mlworker.analysis.policies.rates import BoolArray, IntArray, Rate, json_number, rate_rows
from mlworker.analysis.policies.recommendations import (
    MIN_CHANNEL_CONTACTS,
    Recommendation,
    recommend,
)
from mlworker.analysis.policies.sweetspot import (
    RECENCY_LABELS,
    Cooldown,
    SweetSpot,
    find_cooldown,
    find_sweet_spot,
    recency_band,
)
from mlworker.analysis.statistics import Progress, no_progress
from mlworker.errors import NotEnoughData


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """Everything the contact-policy analysis found; ``to_dict()`` is the job's JSON answer."""

    columns: ResolvedColumns
    interaction_count: int
    customer_count: int
    ignored_rows: int
    window_start: str
    window_end: str
    lookback_days: int
    response_rate: Rate
    contact_frequency: tuple[FrequencyDistribution, ...]
    frequency_bands: tuple[Rate, ...]
    frequency_curve: dict[str, tuple[CurvePoint, ...]]
    sweet_spots: tuple[SweetSpot, ...]
    model: ResponseModel
    channels: ChannelReport
    day_of_week: TimePattern
    hour_of_day: TimePattern
    since_last_contact: tuple[Rate, ...]
    cooldown: Cooldown
    recommendations: tuple[Recommendation, ...]
    notes: tuple[str, ...]

    @property
    def sweet_spot(self) -> SweetSpot:
        """The weekly sweet spot, the primary one."""
        return next(spot for spot in self.sweet_spots if spot.window == "weekly")

    def to_dict(self) -> dict[str, Any]:
        """Camel-case, JSON-safe form."""
        rate = self.response_rate
        return {
            "columns": {
                "customer": self.columns.customer,
                "timestamp": self.columns.timestamp,
                "outcome": self.columns.outcome,
                "channel": self.columns.channel,
                "offer": self.columns.offer,
            },
            "interactionCount": self.interaction_count,
            "customerCount": self.customer_count,
            "ignoredRows": self.ignored_rows,
            "window": {
                "start": self.window_start,
                "end": self.window_end,
                "lookbackDays": self.lookback_days,
            },
            "responseRate": json_number(rate.rate),
            "responseRateInterval": [json_number(rate.low), json_number(rate.high)],
            "responses": rate.responses,
            "conversions": rate.conversions,
            "conversionRate": json_number(
                rate.conversions / rate.contacts if rate.contacts else None
            ),
            "contactFrequency": {row.window: row.to_dict() for row in self.contact_frequency},
            "frequencyBands": [band.to_dict() for band in self.frequency_bands],
            "frequencyCurve": {
                window: [point.to_dict() for point in points]
                for window, points in self.frequency_curve.items()
            },
            "sweetSpot": self.sweet_spot.to_dict(),
            "sweetSpots": [spot.to_dict() for spot in self.sweet_spots],
            "model": self.model.to_dict(),
            "channels": self.channels.rows(),
            "channelComparisons": [pair.to_dict() for pair in self.channels.comparisons],
            "timePatterns": {
                "dayOfWeek": self.day_of_week.rows(),
                "dayOfWeekPValue": json_number(self.day_of_week.p_value),
                "hourOfDay": self.hour_of_day.rows(),
                "hourOfDayPValue": json_number(self.hour_of_day.p_value),
                "sinceLastContact": {
                    "bands": [band.to_dict() for band in self.since_last_contact],
                    "cooldown": self.cooldown.to_dict(),
                },
            },
            "recommendations": [item.to_dict() for item in self.recommendations],
            "notes": list(self.notes),
        }


def _iso(nanoseconds: int, time_zone: str | None) -> str:
    stamp = pd.Timestamp(nanoseconds, unit="ns")
    return (stamp.tz_localize("UTC") if time_zone is not None else stamp).isoformat()


def _channel_sweet_spots(contacts: WindowContacts, confidence: float) -> list[SweetSpot]:
    """Sweet spots of channel-scoped frequencies, largest channels first."""
    assert contacts.channel is not None and contacts.channel_counts is not None
    sizes = np.bincount(contacts.channel, minlength=len(contacts.channel_labels))
    spots = []
    for channel in np.argsort(-sizes, kind="stable")[:MAX_COMPARED_CHANNELS]:
        if sizes[channel] < MIN_CHANNEL_CONTACTS:
            continue
        mine = contacts.channel == channel
        for window in WINDOWS:
            curve = frequency_curve(
                contacts.channel_counts[window.name][mine],
                contacts.responded[mine],
                contacts.converted[mine],
                confidence,
            )
            label = contacts.channel_labels[channel]
            spots.append(find_sweet_spot(curve, window.name, confidence, channel=label))
    return spots


def _channel_report(
    contacts: WindowContacts, column: str | None, confidence: float
) -> ChannelReport:
    if contacts.channel is None:
        return ChannelReport(column, (), (), (), "no channel column: channel comparisons skipped")
    performance, comparisons = channel_performance(
        contacts.channel,
        contacts.channel_labels,
        contacts.responded,
        contacts.converted,
        confidence,
    )
    if contacts.channel_counts is None:
        skipped = (
            f"one channel ({performance[0].channel!r}) in the window: channel comparison and "
            "channel-scoped caps skipped"
        )
        return ChannelReport(column, tuple(performance), (), (), skipped)
    spots = _channel_sweet_spots(contacts, confidence)
    return ChannelReport(column, tuple(performance), tuple(comparisons), tuple(spots), None)


# The model's recency factor: the last three bands merged into its reference. A weekly
# frequency of 1 means no contact in the previous 168 hours, so with a separate "168h+" or
# "first" level the recency terms would duplicate the frequency-band terms.
_MODEL_RECENCY = np.array([0, 1, 2, 3, 4, 5, 6, 6, 6])
_MODEL_RECENCY_LABELS = (*RECENCY_LABELS[:6], "72h+ or first")


def _model_factors(
    contacts: WindowContacts, day: IntArray, hour: IntArray, bands: list[int]
) -> list[Factor]:
    factors = [
        Factor(
            "frequencyBand",
            band_index(contacts.counts["weekly"], bands),
            tuple(band_labels(bands)),
            reference="first",
        )
    ]
    if contacts.channel is not None and contacts.channel_counts is not None:
        factors.append(Factor("channel", contacts.channel, contacts.channel_labels))
    factors.append(Factor("dayOfWeek", day, DAY_NAMES))
    factors.append(Factor("daypart", daypart(hour), DAYPARTS))
    factors.append(
        Factor(
            "sinceLastContact",
            _MODEL_RECENCY[contacts.recency],
            _MODEL_RECENCY_LABELS,
            reference="last",
        )
    )
    return factors


def _window_contacts(interactions: Interactions, inside: BoolArray) -> WindowContacts:
    """Trailing counts over the whole history, kept for the contacts inside the window."""
    trailing = trailing_counts(interactions.customer, interactions.time)
    channel = channel_counts = None
    labels: tuple[str, ...] = ()
    if interactions.channel is not None:
        channel = interactions.channel[inside]
        labels = interactions.channel_labels
        if np.unique(channel).size >= 2:
            pair = interactions.customer * len(labels) + interactions.channel
            scoped = trailing_counts(pair, interactions.time).counts
            channel_counts = {name: counts[inside] for name, counts in scoped.items()}
    return WindowContacts(
        responded=interactions.responded[inside],
        converted=interactions.converted[inside],
        counts={name: counts[inside] for name, counts in trailing.counts.items()},
        recency=recency_band(trailing.hours_since_previous[inside]),
        channel=channel,
        channel_labels=labels,
        channel_counts=channel_counts,
    )


def analyze_policies(
    frame: pd.DataFrame, config: PolicyConfig, *, progress: Progress = no_progress
) -> PolicyResult:
    """Analyse contact frequency against response and recommend contact policies.

    Parameters
    ----------
    frame
        Interaction history, one row per contact with its outcome.
    config
        Columns, window, current caps and outcome lists.
    progress
        ``progress(fraction, message)`` callback.

    Returns
    -------
    PolicyResult
        Frequencies, response by band and by frequency, sweet spots, the response model,
        channel and time patterns, recommendations and notes.

    Raises
    ------
    UnknownColumn
        A named column is missing or a required one cannot be found.
    InvalidInput
        The timestamps cannot be parsed.
    NotEnoughData
        No usable rows, or no positive outcome in the window.
    """
    progress(0.0, "reading columns")
    interactions = prepare_interactions(frame, config)
    confidence = config.confidence_level
    progress(0.15, "counting trailing contact frequencies")
    end = int(interactions.time.max())
    start = end - config.lookback_days * NANOSECONDS_PER_DAY
    inside = interactions.time > start
    contacts = _window_contacts(interactions, inside)
    count = int(contacts.responded.size)
    responses = int(contacts.responded.sum())
    if responses == 0:
        raise NotEnoughData(
            f"none of the {count} contacts in the last {config.lookback_days} days has a "
            f"positive outcome (outcomes seen: {', '.join(interactions.outcome_values[:20])}). "
            "List the outcomes that count as a response in config.positiveOutcomes.",
            field="config.positiveOutcomes",
        )
    notes = list(interactions.notes)
    clock = interactions.time_zone or "the timestamps' own clock (no time zone)"
    notes.append(f"day of week and hour of day are read in {clock}")
    history = int((~inside).sum())
    if history:
        notes.append(
            f"{history} contacts before the window count towards trailing frequencies only"
        )
    progress(0.35, "response by frequency")
    responded, converted = contacts.responded, contacts.converted
    (response_rate,) = rate_rows(["all"], [count], [responses], [int(converted.sum())], confidence)
    customer = interactions.customer[inside]
    distributions = tuple(
        frequency_distribution(customer, contacts.counts[w.name], w, config.cap_for(w.name))
        for w in WINDOWS
    )
    bands = band_rates(
        contacts.counts["weekly"], responded, converted, config.frequency_bands, confidence
    )
    curves = {
        w.name: tuple(frequency_curve(contacts.counts[w.name], responded, converted, confidence))
        for w in WINDOWS
    }
    spots = tuple(find_sweet_spot(curves[w.name], w.name, confidence) for w in WINDOWS)
    progress(0.5, "fitting the response model")
    day, hour = day_and_hour(interactions.wall_clock[inside])
    model = fit_response_model(
        _model_factors(contacts, day, hour, config.frequency_bands), responded, confidence
    )
    notes.extend(model.notes)
    progress(0.7, "channel and time patterns")
    channels = _channel_report(contacts, interactions.columns.channel, confidence)
    if channels.skipped:
        notes.append(channels.skipped)
    day_of_week = time_pattern(day, DAY_NAMES, responded, converted, confidence)
    hours = tuple(f"{h:02d}" for h in range(24))
    hour_of_day = time_pattern(hour, hours, responded, converted, confidence)
    since_last = rate_rows(
        list(RECENCY_LABELS),
        *grouped_counts(contacts.recency, len(RECENCY_LABELS), responded, converted),
        confidence,
    )
    cooldown = find_cooldown(since_last, confidence)
    progress(0.85, "recommendations")
    caps = {w.name: config.cap_for(w.name) for w in WINDOWS}
    recommendations, recommendation_notes = recommend(contacts, caps, confidence)
    notes.extend(recommendation_notes)
    progress(1.0, "done")
    return PolicyResult(
        columns=interactions.columns,
        interaction_count=count,
        customer_count=int(np.count_nonzero(np.bincount(customer))),
        ignored_rows=interactions.ignored_rows,
        window_start=_iso(start, interactions.time_zone),
        window_end=_iso(end, interactions.time_zone),
        lookback_days=config.lookback_days,
        response_rate=response_rate,
        contact_frequency=distributions,
        frequency_bands=tuple(bands),
        frequency_curve=curves,
        sweet_spots=spots,
        model=model,
        channels=channels,
        day_of_week=day_of_week,
        hour_of_day=hour_of_day,
        since_last_contact=tuple(since_last),
        cooldown=cooldown,
        recommendations=tuple(recommendations),
        notes=tuple(notes),
    )
