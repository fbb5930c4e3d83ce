"""Booster → portable tree JSON: what it keeps, that it is exact, and what it refuses to load."""

from __future__ import annotations

import copy
import json
from typing import Any

import lightgbm
import numpy as np
import pytest

from mlworker.engines.gradient_boosted import GradientBoostedConfig, train_booster
from mlworker.engines.trees import (
    Ensemble,
    FeatureEncoder,
    FlatEnsemble,
    export_booster,
    predict,
)
from mlworker.engines.trees.export import FORMAT, iter_nodes, parse_categories, parse_objective
from tests.engines.trees.conftest import Model


def test_export_keeps_the_portable_fields_only(categorical_model: Model) -> None:
    state = categorical_model.ensemble.to_json()
    assert state["format"] == FORMAT and state["version"] == 1
    assert state["objective"] == "binary" and state["sigmoid"] == 1.0
    assert state["feature_names"] == ["x0", "x1", "x2"]
    assert set(state["categorical"]) == {"x1"}
    assert state["lightgbm_version"] == lightgbm.__version__
    splits = [
        node for root in categorical_model.ensemble.roots for node in iter_nodes(root)
        if "split_feature" in node
    ]  # fmt: skip
    assert set(splits[0]) == {
        "split_feature", "threshold", "decision_type", "default_left", "missing_type",
        "internal_value", "internal_count", "left_child", "right_child",
    }  # fmt: skip
    categorical = [node for node in splits if node["decision_type"] == "=="]
    assert categorical and all(isinstance(node["threshold"], str) for node in categorical)
    assert all(node["split_feature"] == 1 for node in categorical)
    json.dumps(state, allow_nan=False)


def test_leaf_values_and_thresholds_are_lightgbms_exactly(model: Model) -> None:
    dumped = model.booster.dump_model()["tree_info"]
    for ours, theirs in zip(model.ensemble.roots, dumped, strict=True):
        for mine, original in zip(
            iter_nodes(ours), iter_nodes(theirs["tree_structure"]), strict=True
        ):
            for key in ("leaf_value", "threshold", "split_feature", "default_left"):
                assert mine.get(key) == original.get(key)


def test_sigmoid_scale_travels_with_the_model() -> None:
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=(2000, 2))
    outcomes = (matrix[:, 0] + rng.normal(size=2000) > 0).astype(np.float64)
    config = GradientBoostedConfig(nEstimators=10)
    booster = train_booster(matrix, outcomes, [], config, extra_params={"sigmoid": 2.5})
    state = export_booster(booster, FeatureEncoder(("a", "b"), {}))
    assert state["sigmoid"] == 2.5
    flat = FlatEnsemble.from_ensemble(Ensemble.from_json(state))
    assert np.abs(predict(flat, matrix) - booster.predict(matrix)).max() <= 1e-9


def test_only_binary_single_output_boosters_export() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(300, 2))
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1}
    multiclass = lightgbm.train(params, lightgbm.Dataset(matrix, rng.integers(0, 3, 300)), 2)
    with pytest.raises(ValueError, match="single-output"):
        export_booster(multiclass, FeatureEncoder(("a", "b"), {}))
    regression = lightgbm.train(
        {"objective": "regression", "verbose": -1}, lightgbm.Dataset(matrix, matrix[:, 0]), 2
    )
    with pytest.raises(ValueError, match="binary"):
        export_booster(regression, FeatureEncoder(("a", "b"), {}))
    binary = lightgbm.train(
        {"objective": "binary", "verbose": -1}, lightgbm.Dataset(matrix, matrix[:, 0] > 0), 2
    )
    with pytest.raises(ValueError, match="features"):
        export_booster(binary, FeatureEncoder(("a",), {}))


def test_parsers() -> None:
    assert parse_objective("binary sigmoid:2.5") == 2.5
    assert parse_objective("binary") == 1.0
    assert parse_categories("7") == [7]
    with pytest.raises(ValueError):
        parse_categories("1||x")
    with pytest.raises(ValueError):
        parse_categories("1||-2")


def _first_split(state: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = state["trees"][0]["tree_structure"]
    return node


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda state: state.update(format="xgboost"), "format"),
        (lambda state: state.update(version=2), "version"),
        (lambda state: state.update(objective="regression"), "binary"),
        (lambda state: state.update(sigmoid=-1.0), "sigmoid"),
        (lambda state: state.update(trees="nope"), "trees must be a list"),
        (lambda state: state.update(feature_names="x0"), "feature_names"),
        (lambda state: state["categorical"].update(ghost={"a": 0}), "ghost"),
        (lambda state: state["categorical"]["x1"].update(bad=-1), "non-negative"),
        (lambda state: state["trees"][0].pop("tree_structure"), "trees.0 has no tree_structure"),
        (lambda state: _first_split(state).update(split_feature=3), "split_feature"),
        (lambda state: _first_split(state).update(decision_type="<"), "decision_type"),
        (lambda state: _first_split(state).update(missing_type="Null"), "missing_type"),
        (lambda state: _first_split(state).update(default_left="yes"), "default_left"),
        (lambda state: _first_split(state).update(threshold="a"), "threshold"),
        (lambda state: _first_split(state).pop("right_child"), "right_child"),
        (lambda state: _first_split(state)["left_child"].clear(), "node"),
    ],
)
def test_malformed_state_is_refused_with_a_reason(
    categorical_model: Model, corrupt: Any, message: str
) -> None:
    state = copy.deepcopy(categorical_model.ensemble.to_json())
    corrupt(state)
    with pytest.raises(ValueError, match=message):
        Ensemble.from_json(state)


def test_to_json_returns_a_copy(categorical_model: Model) -> None:
    state = categorical_model.ensemble.to_json()
    state["trees"][0]["tree_structure"]["threshold"] = 123.0
    assert categorical_model.ensemble.to_json()["trees"][0]["tree_structure"]["threshold"] != 123.0
