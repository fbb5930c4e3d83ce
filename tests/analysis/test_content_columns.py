from __future__ import annotations

import pandas as pd
import pytest

from mlworker.analysis.content import ContentConfig, columns_needed
from mlworker.analysis.content.columns import resolve_columns
from mlworker.errors import UnknownColumn


def _frame(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_common_names_are_found_case_insensitively() -> None:
    frame = _frame(
        Creative_ID=["a", "b"],
        Channel=["email", "push"],
        Sends=[100, 200],
        Clicks=[1, 2],
        Orders=[0, 1],
        Revenue=[0.0, 9.5],
        Date=["2026-01-01", "2026-01-02"],
        Subject=["Big sale", "Hello"],
        campaign=["x", "y"],
    )
    columns = resolve_columns(frame, ContentConfig())
    assert columns.id == "Creative_ID"
    assert columns.channel == "Channel"
    assert columns.impressions == "Sends"
    assert columns.clicks == "Clicks"
    assert columns.conversions == "Orders"
    assert columns.revenue == "Revenue"
    assert columns.timestamp == "Date"
    assert columns.text_fields == ("Subject",)


def test_rates_are_not_mistaken_for_counts() -> None:
    frame = _frame(
        id=["a"], impressions=[10], click_through_rate=[0.1], total_clicks=[1], title=["x"]
    )
    assert resolve_columns(frame, ContentConfig()).clicks == "total_clicks"


def test_optional_columns_may_be_absent_and_multi_word_strings_count_as_text() -> None:
    frame = _frame(
        id=["a", "b", "c"],
        impressions=[1, 2, 3],
        clicks=[0, 1, 1],
        copy_variant=["Free shipping on every order today", "New arrivals for you now", "x y z w"],
        segment=["gold", "silver", "gold"],
    )
    columns = resolve_columns(frame, ContentConfig())
    assert (columns.channel, columns.conversions, columns.revenue, columns.timestamp) == (
        None,
        None,
        None,
        None,
    )
    assert columns.text_fields == ("copy_variant",)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (ContentConfig(clicks_column="nope"), "config.clicksColumn"),
        (ContentConfig(timestamp_column="when"), "config.timestampColumn"),
        (ContentConfig(text_fields=["title", "headline"]), "config.textFields.1"),
    ],
)
def test_unknown_configured_columns_name_their_config_member(
    config: ContentConfig, field: str
) -> None:
    frame = _frame(id=["a"], impressions=[1], clicks=[0], title=["x"])
    with pytest.raises(UnknownColumn) as caught:
        resolve_columns(frame, config)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("drop", "field"),
    [
        ("id", "config.idColumn"),
        ("views", "config.impressionsColumn"),
        ("clicks", "config.clicksColumn"),
    ],
)
def test_missing_required_columns_are_unknown(drop: str, field: str) -> None:
    frame = _frame(id=["a"], views=[1], clicks=[0]).drop(columns=drop)
    with pytest.raises(UnknownColumn) as caught:
        resolve_columns(frame, ContentConfig())
    assert caught.value.field == field


def test_columns_needed_only_when_every_role_is_named() -> None:
    assert columns_needed(ContentConfig(id_column="id", text_fields=["t"])) is None
    full = ContentConfig(
        id_column="id",
        channel_column="ch",
        impressions_column="imp",
        clicks_column="clk",
        conversions_column="cv",
        revenue_column="rev",
        timestamp_column="day",
        text_fields=["title", "body"],
    )
    assert columns_needed(full) == ("id", "ch", "imp", "clk", "cv", "rev", "day", "title", "body")
