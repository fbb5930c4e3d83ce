from __future__ import annotations

import pandas as pd
import pytest

from mlworker.analysis.policies import PolicyConfig
from mlworker.analysis.policies.columns import resolve_columns
from mlworker.errors import UnknownColumn


def _frame(**columns: object) -> pd.DataFrame:
    base: dict[str, object] = {
        "Customer_ID": ["a", "a", "b"],
        "occurredAt": ["2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-02T11:00:00Z"],
        "EVENT": ["click", "impression", "purchase"],
        "Channel": ["email", "sms", "email"],
        "offer": ["o1", "o2", "o1"],
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_columns_are_found_by_common_names_whatever_the_case() -> None:
    columns = resolve_columns(_frame(), PolicyConfig())
    assert (columns.customer, columns.timestamp, columns.outcome) == (
        "Customer_ID",
        "occurredAt",
        "EVENT",
    )
    assert (columns.channel, columns.offer) == ("Channel", "offer")


def test_named_columns_win_and_are_not_reused_by_detection() -> None:
    frame = _frame().rename(columns={"EVENT": "what"}).assign(response=["x", "y", "z"])
    columns = resolve_columns(frame, PolicyConfig(outcomeColumn="what"))
    assert columns.outcome == "what"
    assert columns.channel == "Channel"


def test_optional_columns_may_be_absent() -> None:
    columns = resolve_columns(_frame().drop(columns=["Channel", "offer"]), PolicyConfig())
    assert columns.channel is None and columns.offer is None


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (PolicyConfig(customerColumn="who"), "config.customerColumn"),
        (PolicyConfig(channelColumn="medium"), "config.channelColumn"),
    ],
)
def test_a_named_column_that_does_not_exist_is_refused(config: PolicyConfig, field: str) -> None:
    with pytest.raises(UnknownColumn) as caught:
        resolve_columns(_frame(), config)
    assert caught.value.field == field


def test_a_required_column_that_cannot_be_found_is_refused() -> None:
    with pytest.raises(UnknownColumn) as caught:
        resolve_columns(_frame().drop(columns=["occurredAt"]), PolicyConfig())
    assert caught.value.field == "config.timestampColumn"
