from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.analysis.content import ContentConfig
from mlworker.analysis.content.aggregate import aggregate_creatives
from mlworker.analysis.content.columns import resolve_columns
from mlworker.errors import InvalidInput, NotEnoughData


def _aggregate(frame: pd.DataFrame, **config: object):  # type: ignore[no-untyped-def]
    settings = ContentConfig.model_validate(config)
    return aggregate_creatives(frame, resolve_columns(frame, settings))


def _daily() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "a", "b", "a", "b", "a"],
            "date": [
                "2026-01-01",
                "2026-01-02",
                "2026-01-01",
                "2026-01-03",
                "2026-01-02",
                "2026-01-04",
            ],
            "impressions": [100, 100, 50, 100, 50, 100],
            "clicks": [1, 3, 5, 4, 5, 8],
            "title": [None, "Free gift", "Hello there", "changed later", "ignored", "x"],
            "channel": ["email", "email", "push", "email", "push", "email"],
        }
    )


def test_counts_are_summed_and_text_comes_from_the_first_row_with_one() -> None:
    creatives = _aggregate(_daily())
    table = creatives.table
    assert table["id"].tolist() == ["a", "b"]
    assert table["impressions"].tolist() == [400.0, 100.0]
    assert table["clicks"].tolist() == [16.0, 10.0]
    assert table["days"].tolist() == [4, 2]
    assert table["conversions"].isna().all() and table["revenue"].isna().all()
    assert creatives.texts["title"].tolist() == ["Free gift", "Hello there"]
    assert table["channel"].tolist() == ["email", "push"]


def test_days_split_into_early_and_late_halves() -> None:
    creatives = _aggregate(_daily())
    assert creatives.early is not None and creatives.late is not None
    # a: days 1-2 early (4 clicks), days 3-4 late (12 clicks); b: day 1 early, day 2 late.
    assert creatives.early["clicks"].tolist() == [4.0, 5.0]
    assert creatives.late["clicks"].tolist() == [12.0, 5.0]
    assert creatives.early["impressions"].tolist() == [200.0, 50.0]


def test_odd_day_counts_leave_the_middle_day_out_and_timezones_are_read() -> None:
    frame = pd.DataFrame(
        {
            "id": ["a"] * 3,
            "timestamp": pd.to_datetime(
                ["2026-01-01 10:00", "2026-01-02 10:00", "2026-01-03 10:00"]
            ).tz_localize("Europe/Paris"),
            "impressions": [10, 10, 10],
            "clicks": [1, 2, 3],
        }
    )
    creatives = _aggregate(frame)
    assert creatives.early is not None and creatives.late is not None
    assert creatives.early["clicks"].tolist() == [1.0]
    assert creatives.late["clicks"].tolist() == [3.0]


def test_categorical_and_numeric_string_columns_are_read() -> None:
    frame = _daily().astype({"id": "category", "title": "category", "channel": "category"})
    frame["impressions"] = frame["impressions"].astype(str).astype("category")
    frame["date"] = frame["date"].astype("category")
    creatives = _aggregate(frame)
    assert creatives.table["impressions"].tolist() == [400.0, 100.0]
    assert creatives.table["days"].tolist() == [4, 2]


def test_rows_without_id_or_counts_are_counted_not_used() -> None:
    frame = pd.DataFrame(
        {"id": ["a", None, "b", "c"], "impressions": [10, 10, None, 5], "clicks": [1, 1, 1, 0]}
    )
    creatives = _aggregate(frame)
    assert creatives.table["id"].tolist() == ["a", "c"]
    assert creatives.excluded == {"rowsMissingId": 1, "rowsMissingCounts": 1}
    assert "No timestamp column: trend is null." in creatives.notes


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"clicks": [1, 200]}, "config.clicksColumn"),
        ({"impressions": [10, -1]}, "config.impressionsColumn"),
        ({"conversions": [0, -2]}, "config.conversionsColumn"),
        ({"impressions": ["many", "lots"]}, "config.impressionsColumn"),
        ({"impressions": [10, float("inf")]}, "config.impressionsColumn"),
    ],
)
def test_bad_counts_are_invalid_input_naming_the_column(
    change: dict[str, list[object]], field: str
) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "impressions": [10, 100], "clicks": [1, 2]})
    frame["conversions"] = [0, 1]
    for column, values in change.items():
        frame[column] = values
    with pytest.raises(InvalidInput) as caught:
        _aggregate(frame)
    assert caught.value.field == field


def test_negative_revenue_is_allowed() -> None:
    frame = pd.DataFrame(
        {"id": ["a", "b"], "impressions": [10, 10], "clicks": [1, 1], "revenue": [-5.0, 3.0]}
    )
    assert _aggregate(frame).table["revenue"].tolist() == [-5.0, 3.0]


def test_nothing_usable_is_not_enough_data() -> None:
    frame = pd.DataFrame({"id": [None, None], "impressions": [1, 2], "clicks": [0, 0]})
    with pytest.raises(NotEnoughData):
        _aggregate(frame)


def test_unreadable_dates_leave_trend_out_with_a_note() -> None:
    frame = pd.DataFrame(
        {"id": ["a", "a"], "date": ["soon", "later"], "impressions": [1, 2], "clicks": [0, 1]}
    )
    creatives = _aggregate(frame, timestampColumn="date")
    assert creatives.early is None
    assert any("no readable dates" in note for note in creatives.notes)
    assert np.array_equal(creatives.table["impressions"], [3.0])
