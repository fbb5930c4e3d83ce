from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mlworker.analysis.segmentation import (
    SegmentationConfig,
    SegmentationLimits,
    SegmentationResult,
    analyze_segments,
)
from mlworker.analysis.segmentation.synthetic import planted_customers
from mlworker.errors import NotEnoughData, NoUsableColumns, UnknownColumn

ROWS = 2000
# Words a name may use for each planted segment (young budget, mid-market, affluent, seniors).
PLANTED_WORDS = {
    0: ("Bronze tier", "Low age", "Low income", "Low purchase frequency"),
    1: ("Silver tier",),
    2: ("Gold tier", "High income"),
    3: ("Platinum tier", "High age", "High purchase frequency"),
}
CONFIG = SegmentationConfig(maxClusters=6, idColumn="customer_id", randomState=3)


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, np.ndarray]:
    return planted_customers(ROWS, seed=7, outlier_share=0.005, missing_share=0.02)


@pytest.fixture(scope="module")
def result(planted: tuple[pd.DataFrame, np.ndarray]) -> SegmentationResult:
    return analyze_segments(planted[0], CONFIG)


def _planted_group(result: SegmentationResult, truth: np.ndarray, cluster_id: int) -> int:
    return int(np.bincount(truth[result.labels == cluster_id]).argmax())


def test_recovers_the_planted_segments(
    planted: tuple[pd.DataFrame, np.ndarray], result: SegmentationResult
) -> None:
    _, truth = planted
    assert result.k == 4 and result.algorithm == "kmeans"
    assert adjusted_rand_score(truth, result.labels) >= 0.9
    assert [c["k"] for c in result.to_dict()["kSearch"]] == [2, 3, 4, 5, 6]
    best = max(result.k_search, key=lambda c: c.silhouette or -1)
    assert best.k == 4
    assert result.silhouette is not None and result.silhouette_sample_size == ROWS
    sizes = [segment.size for segment in result.segments]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == ROWS
    assert {_planted_group(result, truth, s.cluster_id) for s in result.segments} == {0, 1, 2, 3}


def test_names_mention_the_planted_differences(
    planted: tuple[pd.DataFrame, np.ndarray], result: SegmentationResult
) -> None:
    _, truth = planted
    names = [segment.name for segment in result.segments]
    assert len(set(names)) == len(names)
    for segment in result.segments:
        words = PLANTED_WORDS[_planted_group(result, truth, segment.cluster_id)]
        assert any(word in segment.name for word in words), segment.name
    assert result.segment_names == {s.cluster_id: s.name for s in result.segments}


def test_clean_segment_has_a_precise_rule(
    planted: tuple[pd.DataFrame, np.ndarray], result: SegmentationResult
) -> None:
    frame, truth = planted
    seniors = next(s for s in result.segments if _planted_group(result, truth, s.cluster_id) == 3)
    rule = seniors.suggested_rule
    assert rule is not None
    assert rule.precision >= 0.9 and rule.recall >= 0.9
    covered = np.ones(ROWS, dtype=bool)
    for condition in rule.conditions:
        column = frame[condition.field]
        if condition.op == ">=":
            covered &= (column >= condition.value).to_numpy()
        elif condition.op == "<":
            covered &= (column < condition.value).to_numpy()
        elif condition.op == "=":
            covered &= (column == condition.value).to_numpy()
        else:
            covered &= (column != condition.value).to_numpy()
    members = result.labels == seniors.cluster_id
    assert np.isclose(rule.precision, (covered & members).sum() / covered.sum())
    assert np.isclose(rule.recall, (covered & members).sum() / members.sum())


def test_preprocessing_reports_every_choice(result: SegmentationResult) -> None:
    report = result.to_dict()["preprocessing"]
    excluded = {item["column"]: item["reason"] for item in report["excluded"]}
    assert excluded["customer_id"].startswith("idColumn")
    assert excluded["country"] == "constant"
    assert excluded["referrer"] == "all missing"
    assert result.features_used == (
        "income",
        "age",
        "purchase_frequency",
        "noise_1",
        "noise_2",
        "tier",
    )
    numeric = {item["column"]: item for item in report["numeric"]}
    assert numeric["income"]["missing"] > 0
    assert report["categorical"][0]["levels"][-1] == "(missing)"
    assert report["clip"] == 5.0 and report["emptyRows"] == 0


def test_to_dict_is_plain_json(result: SegmentationResult) -> None:
    answer = result.to_dict()
    assert set(answer) >= {
        "k",
        "algorithm",
        "silhouette",
        "silhouetteSampleSize",
        "kSearch",
        "rowCount",
        "featuresUsed",
        "preprocessing",
        "segments",
    }
    assert "labels" not in answer
    json.dumps(answer, allow_nan=False)
    segment: dict[str, Any] = answer["segments"][0]
    assert set(segment) == {
        "clusterId",
        "name",
        "size",
        "share",
        "centroid",
        "profile",
        "distinguishingFeatures",
        "suggestedRule",
    }
    assert set(segment["profile"]["income"]) >= {"mean", "std", "min", "p25", "p50", "p75", "max"}
    assert len(segment["distinguishingFeatures"]) == 5
    assert set(segment["suggestedRule"]) == {"conditions", "text", "precision", "recall"}
    assert result.labels.dtype == np.int32 and result.labels.shape == (ROWS,)


def test_minibatch_path_and_determinism(planted: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, truth = planted
    limits = SegmentationLimits(minibatch_above_rows=500, search_sample_rows=1000)
    config = SegmentationConfig(minClusters=3, maxClusters=5, randomState=5)
    first = analyze_segments(frame, config, limits=limits)
    second = analyze_segments(frame, config, limits=limits)
    assert first.algorithm == "minibatch_kmeans" and first.search_sample_size == 1000
    assert first.k == 4 and adjusted_rand_score(truth, first.labels) >= 0.9
    assert first.to_dict() == second.to_dict()
    np.testing.assert_array_equal(first.labels, second.labels)


def test_any_input_dtypes_and_empty_rows(planted: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, truth = planted
    frame = frame.copy()
    frame["tier"] = frame["tier"].astype("category")
    frame["income"] = frame["income"].map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
    frame["age"] = frame["age"].astype(object)
    frame.loc[:9, ["income", "age", "purchase_frequency", "tier", "noise_1", "noise_2"]] = None
    steps: list[float] = []
    result = analyze_segments(
        frame,
        SegmentationConfig(minClusters=4, maxClusters=4),
        progress=lambda fraction, message: steps.append(fraction),
    )
    assert result.row_count == ROWS - 10
    assert result.labels[:10].tolist() == [-1] * 10 and result.segment_names[-1] == "Unassigned"
    assert adjusted_rand_score(truth[10:], result.labels[10:]) >= 0.9
    assert result.to_dict()["preprocessing"]["emptyRows"] == 10
    assert steps[0] == 0.0 and steps[-1] == 1.0 and steps == sorted(steps)


def test_dbscan_finds_clusters_and_outliers() -> None:
    points, truth = make_blobs(
        n_samples=1500, centers=[[0, 0], [12, 0], [0, 12]], cluster_std=1.0, random_state=1
    )
    frame = pd.DataFrame(points, columns=["spend", "visits"])
    frame.loc[len(frame)] = [60.0, 60.0]
    frame.loc[len(frame)] = [-50.0, 40.0]
    result = analyze_segments(frame, SegmentationConfig(algorithm="dbscan", minSamples=8))
    answer = result.to_dict()
    assert result.k == 3 and answer["kSearch"] == [] and answer["algorithm"] == "dbscan"
    assert answer["dbscan"]["epsSource"] == "k-distance knee"
    outliers = next(s for s in answer["segments"] if s["clusterId"] == -1)
    assert outliers["name"] == "Outliers" and result.segment_names[-1] == "Outliers"
    assert result.labels[-2:].tolist() == [-1, -1]
    clustered = result.labels[:1500] >= 0
    assert clustered.mean() > 0.95
    assert adjusted_rand_score(truth[clustered], result.labels[:1500][clustered]) > 0.99
    assert result.silhouette is not None and result.silhouette > 0.7


def test_unknown_columns() -> None:
    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    with pytest.raises(UnknownColumn) as field:
        analyze_segments(frame, SegmentationConfig(fields=["a", "c"]))
    assert field.value.field == "config.fields.1"
    with pytest.raises(UnknownColumn) as id_column:
        analyze_segments(frame, SegmentationConfig(idColumn="user"))
    assert id_column.value.field == "config.idColumn"


def test_constant_and_missing_columns_only() -> None:
    frame = pd.DataFrame({"country": ["NL"] * 30, "score": 1.0, "referrer": None})
    with pytest.raises(NoUsableColumns) as error:
        analyze_segments(frame, SegmentationConfig())
    assert error.value.field == "config.fields"
    assert "constant" in error.value.message and "all missing" in error.value.message


def test_fewer_rows_than_max_clusters() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, np.nan, np.nan, np.nan, np.nan, 5.0]})
    with pytest.raises(NotEnoughData) as error:
        analyze_segments(frame, SegmentationConfig(maxClusters=6))
    assert error.value.field == "config.maxClusters"
