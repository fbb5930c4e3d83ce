"""Retraining schedules: fixed intervals (``"15m"``, ``"24h"``, ``"7d"``) and cron expressions.

A schedule is a set of *fire times* in UTC. A model is due when the latest fire time at or
before now is later than its last run, so a server that was down for three days runs a missed
daily schedule once, not three times, and every replica computes the same slot for the same
moment (the slot is what makes concurrent submissions collapse into one job).

Intervals are aligned on the Unix epoch rather than on the last run: ``"24h"`` fires at
00:00 UTC and ``"15m"`` at :00, :15, :30 and :45, whatever time a training happened to finish,
so a schedule never drifts by the length of its own jobs. Cron expressions are the classic five
fields (minute hour day-of-month month day-of-week) or one of the ``@hourly``, ``@daily``,
``@weekly``, ``@monthly``, ``@yearly`` shorthands, evaluated in UTC by ``croniter``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterError, croniter

_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SHORTHANDS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The shortest interval accepted: a retraining job every few seconds is a mistake, not a plan.
MIN_INTERVAL = timedelta(minutes=1)
_MAX_TEXT = 100


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: exactly one of ``interval`` and ``cron`` is set.

    Use :func:`parse_schedule` to build one.
    """

    text: str
    interval: timedelta | None = None
    cron: str | None = None

    def latest_run(self, now: datetime) -> datetime:
        """Return the latest fire time at or before ``now`` (UTC).

        Examples
        --------
        >>> noon = datetime(2026, 11, 22, 12, 7, tzinfo=UTC)
        >>> parse_schedule("15m").latest_run(noon).isoformat()
        '2026-11-22T12:00:00+00:00'
        >>> parse_schedule("0 3 * * *").latest_run(noon).isoformat()
        '2026-11-22T03:00:00+00:00'
        """
        now = _aware(now)
        if self.interval is not None:
            periods = (now - _EPOCH) // self.interval
            return _EPOCH + periods * self.interval
        assert self.cron is not None
        # croniter's get_prev is strictly before its start; starting one second after the
        # whole second of ``now`` makes a fire time equal to ``now`` count as reached.
        start = now.replace(microsecond=0) + timedelta(seconds=1)
        previous: datetime = croniter(self.cron, start).get_prev(datetime)
        return _aware(previous)

    def next_run(self, after: datetime) -> datetime:
        """Return the first fire time strictly after ``after`` (UTC).

        Examples
        --------
        >>> parse_schedule("7d").next_run(datetime(2026, 11, 22, tzinfo=UTC)).isoformat()
        '2026-11-26T00:00:00+00:00'
        >>> parse_schedule("@daily").next_run(datetime(2026, 11, 22, tzinfo=UTC)).isoformat()
        '2026-11-23T00:00:00+00:00'
        """
        after = _aware(after)
        if self.interval is not None:
            return self.latest_run(after) + self.interval
        assert self.cron is not None
        following: datetime = croniter(self.cron, after).get_next(datetime)
        return _aware(following)

    def due_run(self, *, last_run: datetime, now: datetime) -> datetime | None:
        """Return the slot to run now, or ``None`` when nothing fired since ``last_run``.

        Missed slots collapse into the latest one: a model last run three days ago on a daily
        schedule is due once, for today's slot.

        Examples
        --------
        >>> daily = parse_schedule("24h")
        >>> daily.due_run(last_run=datetime(2026, 11, 19, 8, tzinfo=UTC),
        ...               now=datetime(2026, 11, 22, 8, tzinfo=UTC)).isoformat()
        '2026-11-22T00:00:00+00:00'
        >>> daily.due_run(last_run=datetime(2026, 11, 22, 1, tzinfo=UTC),
        ...               now=datetime(2026, 11, 22, 8, tzinfo=UTC)) is None
        True
        """
        slot = self.latest_run(now)
        return slot if slot > _aware(last_run) else None


def parse_schedule(text: str) -> Schedule:
    """Parse ``learningConfig.schedule``: an interval or a five-field cron expression.

    Parameters
    ----------
    text
        ``"<n>m"``, ``"<n>h"``, ``"<n>d"`` or ``"<n>w"`` (at least one minute), a cron expression
        of five fields such as ``"0 3 * * *"``, or a shorthand such as ``"@daily"``.

    Raises
    ------
    ValueError
        The text is neither, or names an impossible time; the message says what was expected.

    Examples
    --------
    >>> parse_schedule("24h").interval
    datetime.timedelta(days=1)
    >>> parse_schedule("0 3 * * 1-5").cron
    '0 3 * * 1-5'
    >>> parse_schedule("every day")
    Traceback (most recent call last):
    ...
    ValueError: schedule 'every day' is neither an interval like '15m', '24h', '7d' nor a \
cron expression of 5 fields (minute hour day-of-month month day-of-week)
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("schedule must be a non-empty string such as '24h' or '0 3 * * *'")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"schedule must be at most {_MAX_TEXT} characters")
    cleaned = " ".join(text.split())
    interval = _INTERVAL.match(cleaned)
    if interval is not None:
        amount, unit = int(interval.group(1)), interval.group(2).lower()
        length = timedelta(**{_UNITS[unit]: amount})
        if length < MIN_INTERVAL:
            raise ValueError(f"schedule {text!r} is shorter than one minute")
        return Schedule(text=cleaned, interval=length)
    if cleaned.lower() in _SHORTHANDS:
        return Schedule(text=cleaned, cron=cleaned.lower())
    fields = cleaned.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"schedule {text!r} is neither an interval like '15m', '24h', '7d' nor a cron "
            "expression of 5 fields (minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(cleaned, _EPOCH).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"schedule {text!r} is not a valid cron expression: {exc}") from exc
    return Schedule(text=cleaned, cron=cleaned)
