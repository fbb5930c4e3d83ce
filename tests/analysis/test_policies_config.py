from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlworker.analysis.policies import PolicyConfig, columns_needed


def test_defaults_and_camel_case_names_are_the_documented_ones() -> None:
    dumped = PolicyConfig().model_dump(by_alias=True)
    assert dumped == {
        "customerColumn": None,
        "timestampColumn": None,
        "outcomeColumn": None,
        "channelColumn": None,
        "offerColumn": None,
        "lookbackDays": 90,
        "dailyCap": 3,
        "weeklyCap": 10,
        "monthlyCap": 30,
        "frequencyBands": [1, 3, 5, 7, 10],
        "positiveOutcomes": dumped["positiveOutcomes"],
        "conversionOutcomes": [
            "conversion",
            "converted",
            "accept",
            "accepted",
            "purchase",
            "purchased",
        ],
        "negativeOutcomes": None,
        "confidenceLevel": 0.95,
        "randomState": 42,
    }
    assert {"click", "clicked", "open", "converted", "purchase"} <= set(dumped["positiveOutcomes"])


def test_wire_names_and_python_names_both_populate() -> None:
    wire = PolicyConfig.model_validate({"weeklyCap": 5, "customerColumn": "who"})
    python = PolicyConfig(weekly_cap=5, customer_column="who")
    assert wire == python


@pytest.mark.parametrize(
    "body",
    [
        {"frequencyBands": [1, 3, 3]},
        {"frequencyBands": [0, 2]},
        {"frequencyBands": []},
        {"dailyCap": 12},
        {"weeklyCap": 40},
        {"lookbackDays": 0},
        {"confidenceLevel": 1.0},
        {"positiveOutcomes": []},
        {"positiveOutcomes": ["click", " "]},
        {"negativeOutcomes": ["Click "]},
        {"customerColumn": "a", "outcomeColumn": "a"},
        {"unknownField": 1},
    ],
)
def test_invalid_configurations_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PolicyConfig.model_validate(body)


def test_outcome_sets_are_normalised_and_conversions_count_as_responses() -> None:
    config = PolicyConfig(positiveOutcomes=[" Click"], conversionOutcomes=["BUY"])
    assert config.positive_set == {"click", "buy"}
    assert config.conversion_set == {"buy"}
    assert config.negative_set is None


def test_columns_needed_only_when_every_column_is_named() -> None:
    named = PolicyConfig(
        customerColumn="c",
        timestampColumn="t",
        outcomeColumn="o",
        channelColumn="ch",
        offerColumn="of",
    )
    assert columns_needed(named) == ("c", "t", "o", "ch", "of")
    assert columns_needed(named.model_copy(update={"offer_column": None})) is None
