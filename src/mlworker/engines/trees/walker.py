"""Reference scorers over the portable tree JSON, written for clarity, not speed.

:func:`naive_margins` walks each row through each tree's JSON nodes in plain Python, one
decision at a time exactly as LightGBM's ``tree.h`` states it: it is the parity reference the
compiled kernel is tested against. :func:`numpy_margins` moves all rows down one tree level per
step with NumPy (no compiler needed). Both share nothing with :mod:`.kernel` but the JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlworker.engines.trees.export import Ensemble, is_leaf, iter_nodes, parse_categories

#: LightGBM's ``kZeroThreshold`` (the C++ ``1e-35f``).
K_ZERO_THRESHOLD = float(np.float32(1e-35))
_INT32_LIMIT = 2147483648.0


def goes_left(node: Mapping[str, Any], value: float) -> bool:
    """Whether ``value`` of the split feature sends a row to ``node``'s left child.

    Examples
    --------
    >>> split = {"decision_type": "<=", "threshold": 1.5, "missing_type": "NaN",
    ...          "default_left": False}
    >>> goes_left(split, 1.5), goes_left(split, float("nan"))
    (True, False)
    >>> goes_left({"decision_type": "==", "threshold": "0||2"}, 2.0)
    True
    """
    if node["decision_type"] == "==":
        if math.isnan(value) or value <= -1.0 or value >= _INT32_LIMIT:
            return False
        return int(value) in parse_categories(node["threshold"])
    missing_type = node["missing_type"]
    if math.isnan(value):
        if missing_type == "NaN":
            return bool(node["default_left"])
        value = 0.0
    elif abs(value) <= K_ZERO_THRESHOLD:
        value = 0.0  # LightGBM's dense-row reader drops near-zero values before the trees
    if missing_type == "Zero" and value == 0.0:
        return bool(node["default_left"])
    return value <= float(node["threshold"])


def leaf_of(root: Mapping[str, Any], row: np.ndarray) -> Mapping[str, Any]:
    """Return the leaf one row reaches in one tree."""
    node = root
    while not is_leaf(node):
        value = float(row[node["split_feature"]])
        node = node["left_child"] if goes_left(node, value) else node["right_child"]
    return node


def naive_margins(ensemble: Ensemble, matrix: np.ndarray) -> np.ndarray:
    """Raw margins (sum of leaf values, trees in order), one Python walk per row and tree."""
    matrix = np.asarray(matrix, dtype=np.float64)
    margins = np.zeros(matrix.shape[0], dtype=np.float64)
    for index in range(matrix.shape[0]):
        total = 0.0
        for root in ensemble.roots:
            total += float(leaf_of(root, matrix[index])["leaf_value"])
        margins[index] = total
    return margins


def naive_contributions(ensemble: Ensemble, row: np.ndarray) -> tuple[float, np.ndarray]:
    """Saabas path contributions of one row: ``(bias, per-feature contributions)``.

    Each step from a node to its child credits ``value(child) - value(node)`` to the node's
    split feature, where an internal node's value is its ``internal_value``; the bias is the
    sum of the roots' values, so ``bias + contributions.sum()`` is the raw margin.

    References
    ----------
    A. Saabas, "Interpreting random forests", 2014.
    """
    contributions = np.zeros(len(ensemble.encoder.feature_names), dtype=np.float64)
    bias = 0.0
    for root in ensemble.roots:
        node = root
        value = float(node["leaf_value"] if is_leaf(node) else node["internal_value"])
        bias += value
        while not is_leaf(node):
            feature = node["split_feature"]
            side = "left_child" if goes_left(node, float(row[feature])) else "right_child"
            child = node[side]
            child_value = float(child["leaf_value"] if is_leaf(child) else child["internal_value"])
            contributions[feature] += child_value - value
            node, value = child, child_value
    return bias, contributions


def probabilities(margins: np.ndarray, sigmoid: float = 1.0) -> np.ndarray:
    """LightGBM's binary link ``1 / (1 + exp(-sigmoid · margin))``.

    Examples
    --------
    >>> probabilities(np.array([0.0, -1000.0])).tolist()
    [0.5, 0.0]
    """
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(-sigmoid * np.asarray(margins))), dtype=np.float64)


class _TreeTable:
    """One tree as arrays, numbered locally: nodes ``0..k-1``, a child ``< 0`` is ``~leaf``."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        ordered = list(iter_nodes(root))
        splits = [node for node in ordered if not is_leaf(node)]
        leaves = [node for node in ordered if is_leaf(node)]
        split_index = {id(node): i for i, node in enumerate(splits)}
        leaf_index = {id(node): i for i, node in enumerate(leaves)}

        def child(node: Mapping[str, Any]) -> int:
            return split_index[id(node)] if not is_leaf(node) else ~leaf_index[id(node)]

        self.root = child(root)
        self.leaf_values = np.array([float(leaf["leaf_value"]) for leaf in leaves])
        self.feature = np.array([int(node["split_feature"]) for node in splits], dtype=np.intp)
        self.left = np.array([child(node["left_child"]) for node in splits], dtype=np.intp)
        self.right = np.array([child(node["right_child"]) for node in splits], dtype=np.intp)
        self.default_left = np.array([bool(node["default_left"]) for node in splits])
        self.categorical = np.array([node["decision_type"] == "==" for node in splits])
        self.missing_nan = np.array([node["missing_type"] == "NaN" for node in splits])
        self.missing_zero = np.array([node["missing_type"] == "Zero" for node in splits])
        self.threshold = np.array(
            [0.0 if node["decision_type"] == "==" else float(node["threshold"]) for node in splits]
        )
        sets = [
            parse_categories(node["threshold"]) if node["decision_type"] == "==" else []
            for node in splits
        ]
        width = max((max(chosen) + 1 for chosen in sets if chosen), default=1)
        self.members = np.zeros((len(splits), width), dtype=bool)
        for i, chosen in enumerate(sets):
            self.members[i, chosen] = True

    def leaves(self, matrix: np.ndarray) -> np.ndarray:
        """Leaf index of every row, all rows moving one level per step."""
        node = np.full(matrix.shape[0], self.root, dtype=np.intp)
        active = np.flatnonzero(node >= 0)
        while active.size:
            at = node[active]
            value = matrix[active, self.feature[at]]
            is_nan = np.isnan(value)
            numeric = np.where(is_nan & ~self.missing_nan[at], 0.0, value)
            numeric = np.where(np.abs(numeric) <= K_ZERO_THRESHOLD, 0.0, numeric)
            use_default = (self.missing_zero[at] & (numeric == 0.0)) | (
                self.missing_nan[at] & is_nan
            )
            with np.errstate(invalid="ignore"):
                numeric_left = np.where(
                    use_default, self.default_left[at], numeric <= self.threshold[at]
                )
                valid = ~is_nan & (value > -1.0) & (value < _INT32_LIMIT)
            category = np.where(valid, np.trunc(np.where(valid, value, 0.0)), 0).astype(np.int64)
            inside = valid & (category < self.members.shape[1])
            member = self.members[at, np.minimum(category, self.members.shape[1] - 1)] & inside
            go_left = np.where(self.categorical[at], member, numeric_left)
            node[active] = np.where(go_left, self.left[at], self.right[at])
            active = active[node[active] >= 0]
        return ~node


def numpy_margins(ensemble: Ensemble, matrix: np.ndarray) -> np.ndarray:
    """Raw margins with NumPy, all rows moving down each tree level by level."""
    matrix = np.asarray(matrix, dtype=np.float64)
    margins = np.zeros(matrix.shape[0], dtype=np.float64)
    for root in ensemble.roots:
        table = _TreeTable(root)
        margins += table.leaf_values[table.leaves(matrix)]
    return margins
