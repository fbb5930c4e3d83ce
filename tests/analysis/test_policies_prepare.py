from __future__ import annotations

import pandas as pd
import pytest

from mlworker.analysis.policies import PolicyConfig
from mlworker.analysis.policies.prepare import classify_outcomes, prepare_interactions
from mlworker.errors import NotEnoughData


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


def test_outcomes_match_case_insensitively_and_unlisted_ones_are_ignored() -> None:
    config = PolicyConfig(negativeOutcomes=["impression", "ignored"])
    flags = classify_outcomes(
        pd.Series([" CLICK", "Impression", "bounce", "Purchase", None]), config
    )
    assert flags.usable.tolist() == [True, True, False, True, False]
    assert flags.responded.tolist()[:4] == [True, False, False, True]
    assert flags.converted.tolist()[:4] == [False, False, False, True]
    assert flags.unclassified == 2


def test_a_boolean_outcome_column_is_read_directly() -> None:
    flags = classify_outcomes(pd.Series([1, 0, 1, 0]), PolicyConfig())
    assert flags.responded.tolist() == [True, False, True, False]


def test_prepare_drops_and_counts_unusable_rows() -> None:
    frame = _frame(
        Customer_ID=["a", None, "b"],
        EVENT=["click", "impression", "weird"],
    )
    prepared = prepare_interactions(frame, PolicyConfig(negativeOutcomes=["impression"]))
    assert prepared.ignored_rows == 2
    assert prepared.responded.tolist() == [True]
    assert prepared.channel_labels == ("email",)
    assert any("without a customer" in note for note in prepared.notes)


def test_prepare_with_no_usable_rows_is_not_enough_data() -> None:
    with pytest.raises(NotEnoughData):
        prepare_interactions(_frame().iloc[:0], PolicyConfig())
