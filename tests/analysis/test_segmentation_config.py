from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlworker.analysis.segmentation import SegmentationConfig, columns_needed


def test_defaults_and_camel_case_names() -> None:
    config = SegmentationConfig()
    assert config.model_dump(by_alias=True) == {
        "fields": None,
        "minClusters": 2,
        "maxClusters": 8,
        "algorithm": "kmeans",
        "randomState": 42,
        "writeAssignments": "none",
        "idColumn": None,
        "eps": None,
        "minSamples": 10,
    }


def test_accepts_camel_and_snake_names() -> None:
    camel = SegmentationConfig.model_validate({"minClusters": 3, "idColumn": "id"})
    snake = SegmentationConfig(min_clusters=3, id_column="id")
    assert camel == snake


@pytest.mark.parametrize(
    "body",
    [
        {"minClusters": 5, "maxClusters": 4},
        {"minClusters": 1},
        {"maxClusters": 31},
        {"algorithm": "hdbscan"},
        {"writeAssignments": "csv"},
        {"eps": 0},
        {"minSamples": 0},
        {"unknown": 1},
    ],
)
def test_rejects_invalid_configuration(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SegmentationConfig.model_validate(body)


def test_min_greater_than_max_names_both_fields() -> None:
    with pytest.raises(ValidationError, match="minClusters"):
        SegmentationConfig(minClusters=6, maxClusters=3)


def test_config_is_frozen() -> None:
    config = SegmentationConfig()
    with pytest.raises(ValidationError):
        config.max_clusters = 3  # type: ignore[misc]


def test_columns_needed() -> None:
    assert columns_needed(SegmentationConfig()) is None
    assert columns_needed(SegmentationConfig(fields=["a", "b", "a"])) == ("a", "b")
    config = SegmentationConfig(fields=["a", "id"], idColumn="id")
    assert columns_needed(config) == ("a", "id")
