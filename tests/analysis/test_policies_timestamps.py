from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.analysis.policies.timestamps import parse_timestamps
from mlworker.errors import InvalidInput


def test_timestamps_in_every_form_give_the_same_instants() -> None:
    text = pd.Series(["2026-01-05T09:30:00+01:00", "2026-01-05 08:30:00Z", None])
    aware = pd.to_datetime(text, utc=True, format="ISO8601").dt.tz_convert("Europe/Paris")
    epoch_seconds = pd.Series([1767601800.0, 1767601800.0, np.nan])
    expected = pd.Timestamp("2026-01-05T08:30:00").value
    for series in (
        text,
        text.astype("category"),
        text.astype("string"),
        aware,
        epoch_seconds,
        epoch_seconds * 1000,
    ):
        parsed = parse_timestamps(series)
        assert parsed.valid.tolist() == [True, True, False], series.dtype
        assert parsed.utc[:2].tolist() == [expected, expected], series.dtype
    paris = parse_timestamps(aware)
    assert paris.wall_clock[0] == pd.Timestamp("2026-01-05T09:30:00").value
    assert paris.time_zone == "Europe/Paris"


def test_unparseable_timestamps_are_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_timestamps(pd.Series(["yesterday", "soon", "2026-01-01"], name="when"))
    assert caught.value.field == "config.timestampColumn"


def test_a_few_bad_timestamps_among_many_are_dropped_and_counted() -> None:
    values = pd.Series(["2026-01-01"] * 99 + ["not a date"])
    parsed = parse_timestamps(values)
    assert parsed.unparseable == 1 and parsed.valid.sum() == 99


def test_timestamps_beyond_the_nanosecond_range_are_refused_not_wrapped() -> None:
    far = pd.Series(pd.to_datetime(["2026-01-01", "9999-01-01"]).as_unit("us"))
    with pytest.raises(InvalidInput) as caught:
        parse_timestamps(far)
    assert caught.value.field == "config.timestampColumn"
    microseconds = parse_timestamps(far.iloc[:1])
    assert microseconds.utc.tolist() == [pd.Timestamp("2026-01-01").value]
