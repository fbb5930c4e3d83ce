"""The compiled kernel against LightGBM's own predict, the reference walkers, and tree.h's rules."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pytest

from mlworker.engines.trees import Ensemble, FeatureEncoder, FlatEnsemble, predict, predict_one
from mlworker.engines.trees.export import iter_nodes
from mlworker.engines.trees.kernel import K_ZERO_THRESHOLD, PARALLEL_MIN_ROWS, path_contributions
from mlworker.engines.trees.walker import naive_margins, numpy_margins
from tests.engines.trees.conftest import Model

PARITY = 1e-9


def _split_kinds(ensemble: Ensemble) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for root in ensemble.roots:
        for node in iter_nodes(root):
            if "split_feature" in node:
                kind = "categorical" if node["decision_type"] == "==" else node["missing_type"]
                kinds[kind] += 1
    return kinds


EXPECTED_KIND = {
    "numeric": "None",
    "categorical": "categorical",
    "nan_missing": "NaN",
    "zero_missing": "Zero",
    "missing_ignored": "None",
}


def test_each_model_exercises_its_split_kind(model: Model) -> None:
    kinds = _split_kinds(model.ensemble)
    assert kinds[EXPECTED_KIND[model.name]] >= 20, kinds
    if model.name == "numeric":
        assert model.flat.n_trees == 100
        assert max(int(tree["num_leaves"]) for tree in model.ensemble.trees) == 31


def test_kernel_matches_lightgbm_predict(model: Model) -> None:
    expected = model.booster.predict(model.holdout)
    ours = predict(model.flat, model.holdout, num_threads=1)
    assert np.abs(ours - expected).max() <= PARITY
    margins = predict(model.flat, model.holdout, raw_margin=True, num_threads=1)
    assert np.abs(margins - model.booster.predict(model.holdout, raw_score=True)).max() <= PARITY


def test_parallel_kernel_equals_serial(model: Model) -> None:
    rows = np.tile(model.holdout, (2, 1))
    assert rows.shape[0] >= PARALLEL_MIN_ROWS
    serial = predict(model.flat, rows, num_threads=1)
    np.testing.assert_array_equal(predict(model.flat, rows, num_threads=2), serial)
    np.testing.assert_array_equal(predict(model.flat, rows), serial)


def test_single_record_path_matches_batch(model: Model) -> None:
    batch = predict(model.flat, model.holdout[:300], num_threads=1)
    singles = [predict_one(model.flat, row) for row in model.holdout[:300]]
    np.testing.assert_array_equal(np.asarray(singles), batch)


def test_json_round_trip_scores_identically(model: Model) -> None:
    restored = Ensemble.from_json(json.loads(json.dumps(model.ensemble.to_json())))
    flat = FlatEnsemble.from_ensemble(restored)
    np.testing.assert_array_equal(
        predict(flat, model.holdout, num_threads=1), predict(model.flat, model.holdout)
    )


def test_non_contiguous_and_integer_input_is_accepted(model: Model) -> None:
    fortran = np.asfortranarray(model.holdout)
    np.testing.assert_array_equal(
        predict(model.flat, fortran, num_threads=1), predict(model.flat, model.holdout)
    )
    integers = np.zeros((5, model.holdout.shape[1]), dtype=np.int64)
    np.testing.assert_allclose(
        predict(model.flat, integers), model.booster.predict(integers.astype(float)), atol=PARITY
    )


def test_empty_and_misshapen_matrices(categorical_model: Model) -> None:
    width = categorical_model.holdout.shape[1]
    assert predict(categorical_model.flat, np.empty((0, width))).shape == (0,)
    assert path_contributions(categorical_model.flat, np.empty((0, width))).shape == (0, width)
    with pytest.raises(ValueError, match="matrix"):
        predict(categorical_model.flat, np.zeros((3, width + 1)))


# Hand-made trees: each decision rule of LightGBM's tree.h checked on its own.


def _stump(split: dict[str, Any], n_features: int = 1) -> Ensemble:
    tree = {
        "tree_index": 0,
        "num_leaves": 2,
        "num_cat": 0,
        "shrinkage": 1,
        "tree_structure": {
            "split_feature": 0,
            "internal_value": 0.0,
            "internal_count": 2,
            "default_left": True,
            "missing_type": "None",
            "decision_type": "<=",
            **split,
            "left_child": {"leaf_value": -1.0, "leaf_count": 1},
            "right_child": {"leaf_value": 1.0, "leaf_count": 1},
        },
    }
    names = tuple(f"x{index}" for index in range(n_features))
    state = {
        "format": "lightgbm-tree-json",
        "version": 1,
        "objective": "binary",
        "sigmoid": 1.0,
        **FeatureEncoder(names, {}).to_json(),
        "trees": [tree],
    }
    return Ensemble.from_json(state)


def _sides(ensemble: Ensemble, values: list[float]) -> list[str]:
    """Which leaf each value reaches; the kernel's two paths and both walkers must agree."""
    flat = FlatEnsemble.from_ensemble(ensemble)
    column = np.array(values)[:, None]
    margins = predict(flat, column, raw_margin=True)
    singles = [predict_one(flat, np.array([value]), raw_margin=True) for value in values]
    assert margins.tolist() == singles
    assert naive_margins(ensemble, column).tolist() == margins.tolist()
    assert numpy_margins(ensemble, column).tolist() == margins.tolist()
    return ["L" if margin < 0 else "R" for margin in margins]


NAN, KZ = float("nan"), K_ZERO_THRESHOLD


@pytest.mark.parametrize(
    ("split", "values", "sides"),
    [
        # Left iff x <= threshold; infinities compare as numbers.
        ({"threshold": 0.5}, [0.5, 0.6, -np.inf, np.inf], ["L", "R", "L", "R"]),
        # missing_type None: NaN is read as 0.0, whatever default_left says.
        ({"threshold": -0.5, "default_left": True}, [NAN, -1.0], ["R", "L"]),
        ({"threshold": 0.5, "default_left": False}, [NAN], ["L"]),
        # missing_type NaN: NaN to the default side; zero is an ordinary value.
        ({"threshold": -0.5, "missing_type": "NaN", "default_left": True}, [NAN, 0.0], ["L", "R"]),
        ({"threshold": 0.5, "missing_type": "NaN", "default_left": False}, [NAN, 0.0], ["R", "L"]),
        # missing_type Zero: NaN and |x| <= kZeroThreshold to the default side.
        (
            {"threshold": -0.5, "missing_type": "Zero", "default_left": True},
            [NAN, 0.0, -0.0, KZ, -KZ, 1e-40, 2 * KZ, -1.0],
            ["L", "L", "L", "L", "L", "L", "R", "L"],
        ),
        (
            {"threshold": 0.5, "missing_type": "Zero", "default_left": False},
            [NAN, 0.0, 1e-40, 0.25],
            ["R", "R", "R", "L"],
        ),
        # Near-zero inputs are read as 0.0 first: -kZeroThreshold is not <= -kZeroThreshold.
        ({"threshold": -KZ}, [-KZ, -2 * KZ, 1e-40], ["R", "L", "R"]),
    ],
)
def test_numeric_decision_rules(
    split: dict[str, Any], values: list[float], sides: list[str]
) -> None:
    assert _sides(_stump(split), values) == sides


def test_categorical_decision_rules() -> None:
    stump = _stump({"decision_type": "==", "threshold": "0||3||33", "default_left": False})
    values = [0.0, 3.0, 33.0, 3.9, -0.5, 1e-40, 1.0, 32.0, 34.0, 1000.0, -1.0, NAN, 3e9, 2**31 - 1]
    expected = ["L", "L", "L", "L", "L", "L", "R", "R", "R", "R", "R", "R", "R", "R"]
    assert _sides(stump, values) == expected


def test_single_leaf_trees_add_their_value() -> None:
    state = _stump({"threshold": 0.5}).to_json()
    state["trees"].append(
        {"tree_index": 1, "num_leaves": 1, "tree_structure": {"leaf_value": 0.25}}
    )
    ensemble = Ensemble.from_json(state)
    flat = FlatEnsemble.from_ensemble(ensemble)
    assert flat.depths.tolist() == [1, 0]
    rows = np.array([[0.0], [1.0]])
    assert predict(flat, rows, raw_margin=True).tolist() == [-0.75, 1.25]
    assert naive_margins(ensemble, rows).tolist() == [-0.75, 1.25]
    assert flat.bias() == 0.25
