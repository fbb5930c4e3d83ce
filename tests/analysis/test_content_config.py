from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlworker.analysis.content import ContentConfig


def test_wire_names_and_defaults_are_exactly_the_documented_ones() -> None:
    dumped = ContentConfig().model_dump(by_alias=True)
    assert dumped == {
        "idColumn": None,
        "channelColumn": None,
        "impressionsColumn": None,
        "clicksColumn": None,
        "conversionsColumn": None,
        "revenueColumn": None,
        "timestampColumn": None,
        "textFields": None,
        "target": "ctr",
        "minImpressions": 100,
        "randomState": 42,
        "topTerms": 20,
        "maxCreatives": 1000,
    }


def test_camel_case_input_is_read() -> None:
    config = ContentConfig.model_validate(
        {"idColumn": "ad", "textFields": ["title"], "target": "cvr", "minImpressions": 5}
    )
    assert (config.id_column, config.text_fields, config.target) == ("ad", ["title"], "cvr")
    assert config.min_impressions == 5


@pytest.mark.parametrize(
    "body",
    [
        {"target": "ctr2"},
        {"minImpressions": -1},
        {"topTerms": 0},
        {"maxCreatives": -5},
        {"unknownKey": 1},
        {"clicksColumn": "x", "impressionsColumn": "x"},
        {"textFields": ["title", "title"]},
        {"textFields": ["clicks"], "clicksColumn": "clicks"},
        {"idColumn": ""},
    ],
)
def test_invalid_configs_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ContentConfig.model_validate(body)


def test_config_is_frozen() -> None:
    config = ContentConfig()
    with pytest.raises(ValidationError):
        config.target = "rpi"  # type: ignore[misc]
