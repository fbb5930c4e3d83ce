"""The reference walkers: LightGBM's decisions written plainly, checked against LightGBM."""

from __future__ import annotations

import numpy as np
import pytest

from mlworker.engines.trees.walker import (
    goes_left,
    leaf_of,
    naive_contributions,
    naive_margins,
    numpy_margins,
    probabilities,
)
from tests.engines.trees.conftest import Model

PARITY = 1e-9


def test_naive_and_numpy_walkers_match_lightgbm(model: Model) -> None:
    rows = model.holdout[:400]
    raw = model.booster.predict(rows, raw_score=True)
    assert np.abs(naive_margins(model.ensemble, rows) - raw).max() <= PARITY
    full = model.booster.predict(model.holdout, raw_score=True)
    assert np.abs(numpy_margins(model.ensemble, model.holdout) - full).max() <= PARITY
    assert np.abs(probabilities(raw) - model.booster.predict(rows)).max() <= PARITY


def test_leaf_of_reaches_lightgbms_leaf(categorical_model: Model) -> None:
    rows = categorical_model.holdout[:200]
    leaf_indices = categorical_model.booster.predict(rows, pred_leaf=True)
    tree = categorical_model.booster.dump_model()["tree_info"][3]["tree_structure"]
    ours_root = categorical_model.ensemble.roots[3]

    def leaf_values(root: dict, index: int) -> float:
        stack = [root]
        while stack:
            node = stack.pop()
            if "leaf_value" in node:
                if node.get("leaf_index", 0) == index:
                    return float(node["leaf_value"])
            else:
                stack += [node["left_child"], node["right_child"]]
        raise AssertionError(index)

    for row, leaves in zip(rows, leaf_indices, strict=True):
        assert leaf_of(ours_root, row)["leaf_value"] == leaf_values(tree, int(leaves[3]))


@pytest.mark.parametrize(
    ("node", "value", "left"),
    [
        ({"decision_type": "<=", "threshold": 1.0, "missing_type": "None"}, 1.0, True),
        ({"decision_type": "<=", "threshold": -1.0, "missing_type": "None"}, np.nan, False),
        (
            {"decision_type": "<=", "threshold": 5.0, "missing_type": "NaN", "default_left": False},
            np.nan,
            False,
        ),
        (
            {
                "decision_type": "<=",
                "threshold": -5.0,
                "missing_type": "Zero",
                "default_left": True,
            },
            1e-36,
            True,
        ),
        ({"decision_type": "==", "threshold": "1||4"}, 4.5, True),
        ({"decision_type": "==", "threshold": "0||4"}, -0.9, True),
        ({"decision_type": "==", "threshold": "0||4"}, -1.0, False),
        ({"decision_type": "==", "threshold": "0||4"}, np.nan, False),
    ],
)
def test_goes_left(node: dict, value: float, left: bool) -> None:
    assert goes_left(node, value) is left


def test_naive_contributions_add_up_to_the_margin(categorical_model: Model) -> None:
    rows = categorical_model.holdout[:50]
    margins = naive_margins(categorical_model.ensemble, rows)
    for row, margin in zip(rows, margins, strict=True):
        bias, contributions = naive_contributions(categorical_model.ensemble, row)
        assert bias + contributions.sum() == pytest.approx(margin, abs=1e-12)


def test_probabilities_is_lightgbms_link() -> None:
    margins = np.array([-800.0, -2.0, 0.0, 3.0, 800.0])
    expected = [0.0, 1 / (1 + np.exp(2.0)), 0.5, 1 / (1 + np.exp(-3.0)), 1.0]
    np.testing.assert_allclose(probabilities(margins), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(probabilities(np.array([1.0]), sigmoid=2.0), [1 / (1 + np.exp(-2))])
