"""Retraining schedules: parsing, fire times, due slots (intervals on the epoch, cron in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from croniter import croniter

from mlworker.decisioning.schedule import parse_schedule


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_intervals(text: str, interval: timedelta) -> None:
    schedule = parse_schedule(text)
    assert schedule.interval == interval and schedule.cron is None


@pytest.mark.parametrize(
    "text", ["0 3 * * *", "*/15 * * * *", "0 0 * * mon-fri", "30 2 1 */2 *", "@daily", "@weekly"]
)
def test_cron_expressions(text: str) -> None:
    schedule = parse_schedule(text)
    assert schedule.cron is not None and schedule.interval is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("daily", "neither an interval"),
        ("30s", "neither an interval"),
        ("0m", "shorter than one minute"),
        ("* * * * * *", "5 fields"),  # croniter's seconds field is not accepted
        ("0 3 * *", "5 fields"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 25 * * *", "not a valid cron expression"),
        ("0 0 30 2 *", "not a valid cron expression"),  # February 30th never comes
        ("x" * 101, "at most 100"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(text)


def test_intervals_fire_on_the_epoch_grid() -> None:
    quarter = parse_schedule("15m")
    assert quarter.latest_run(at(2026, 11, 22, 12, 14, 59)) == at(2026, 11, 22, 12, 0)
    assert quarter.latest_run(at(2026, 11, 22, 12, 15)) == at(2026, 11, 22, 12, 15)
    assert quarter.next_run(at(2026, 11, 22, 12, 15)) == at(2026, 11, 22, 12, 30)
    # 1970-01-01 was a Thursday: weekly slots fall on Thursdays at midnight UTC.
    weekly = parse_schedule("7d").latest_run(at(2026, 11, 22, 9))
    assert weekly == at(2026, 11, 19) and weekly.weekday() == 3


def test_other_time_zones_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 22, 4, 30, tzinfo=paris)  # 03:30 UTC
    assert parse_schedule("0 3 * * *").latest_run(moment) == at(2026, 11, 22, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("24h").latest_run(datetime(2026, 11, 22))


@pytest.mark.parametrize("text", ["0 3 * * *", "*/7 * * * *", "15 4 * * 1", "0 0 1 * *"])
def test_cron_fire_times_agree_with_croniter(text: str) -> None:
    schedule = parse_schedule(text)
    reference = croniter(text, at(2026, 1, 1, 0, 0, 30))
    expected = [reference.get_next(datetime) for _ in range(20)]
    fired = [schedule.next_run(at(2026, 1, 1, 0, 0, 30))]
    while len(fired) < 20:
        fired.append(schedule.next_run(fired[-1]))
    assert fired == expected
    for previous, current in zip(fired, fired[1:], strict=False):
        # A fire time counts as reached at that very second, and not a second before.
        assert schedule.latest_run(current) == current
        assert schedule.latest_run(current - timedelta(seconds=1)) == previous


def test_due_slot_collapses_missed_runs_and_waits_after_a_run() -> None:
    daily = parse_schedule("0 3 * * *")
    now = at(2026, 11, 22, 8)
    # Last ran five days ago: due once, for today's 03:00 slot.
    assert daily.due_run(last_run=at(2026, 11, 17, 3), now=now) == at(2026, 11, 22, 3)
    # Ran (or was created) after today's slot: nothing due until tomorrow 03:00.
    assert daily.due_run(last_run=at(2026, 11, 22, 3, 0, 40), now=now) is None
    assert daily.due_run(last_run=at(2026, 11, 22, 3, 0, 40), now=at(2026, 11, 23, 3)) == at(
        2026, 11, 23, 3
    )
    # Two replicas ticking a few seconds apart compute the same slot.
    assert daily.due_run(last_run=at(2026, 11, 21), now=at(2026, 11, 22, 3, 0, 1)) == (
        daily.due_run(last_run=at(2026, 11, 21), now=at(2026, 11, 22, 3, 0, 59))
    )
