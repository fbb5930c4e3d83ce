"""A checked tree ensemble laid out as flat arrays for the compiled kernels.

Every node of every tree, leaves included, is one row of a table (trees one after another,
each in depth-first pre-order, so a left child usually sits next to its parent). A leaf's
children are itself: walking further from a leaf stays there, which lets the batch kernel move
a whole block of rows through a tree a fixed number of levels without a branch per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlworker.engines.trees.export import Ensemble, is_leaf, iter_nodes, parse_categories
from mlworker.engines.trees.kernel import (
    CATEGORICAL,
    DEFAULT_RIGHT,
    K_ZERO_THRESHOLD,
    LEAF,
    NAN_RIGHT,
    NEAR_ZERO_THRESHOLD,
    NODE_DTYPE,
    SLOT_SHIFT,
    ZERO_MISSING,
)


@dataclass(frozen=True, slots=True, eq=False)
class FlatEnsemble:
    """A tree ensemble as arrays, built once per model for :mod:`.kernel`.

    Attributes
    ----------
    roots
        ``uint32[n_trees]``: each tree's root node.
    depths
        ``uint32[n_trees]``: each tree's depth (levels from the root to its deepest leaf).
    nodes
        :data:`~.kernel.NODE_DTYPE` records ``(threshold, feature, info)``; ``info`` holds the
        decision flags and, for categorical splits, the bitset slot.
    children
        ``uint32[n_nodes, 2]``: left and right child (a leaf's are itself).
    values
        ``float64[n_nodes]``: a leaf's ``leaf_value``, a split's ``internal_value``.
    cat_bounds
        ``uint32[n_slots + 1]``: slot ``s``'s bitset is ``cat_bits[cat_bounds[s]:cat_bounds[s+1]]``.
    cat_bits
        ``uint32[...]``: category ``c`` is bit ``c % 32`` of word ``c // 32``.
    n_features
        Width of the input matrix.
    sigmoid
        Logistic scale of the binary link.
    """

    roots: np.ndarray
    depths: np.ndarray
    nodes: np.ndarray
    children: np.ndarray
    values: np.ndarray
    cat_bounds: np.ndarray
    cat_bits: np.ndarray
    n_features: int
    sigmoid: float

    @classmethod
    def from_ensemble(cls, ensemble: Ensemble) -> FlatEnsemble:
        """Flatten a checked :class:`~.export.Ensemble`."""
        records: list[tuple[float, int, int]] = []
        children: list[tuple[int, int]] = []
        values: list[float] = []
        bounds: list[int] = [0]
        bits: list[int] = []
        roots: list[int] = []
        depths: list[int] = []
        for root in ensemble.roots:
            ordered = list(iter_nodes(root))
            index = {id(node): len(records) + offset for offset, node in enumerate(ordered)}
            depth = {id(root): 0}
            for node in ordered:
                own = index[id(node)]
                if is_leaf(node):
                    records.append((np.nan, 0, LEAF))
                    children.append((own, own))
                    values.append(float(node["leaf_value"]))
                    continue
                for side in ("left_child", "right_child"):
                    depth[id(node[side])] = depth[id(node)] + 1
                info, threshold = _split_flags(node)
                if info & CATEGORICAL:
                    info |= (len(bounds) - 1) << SLOT_SHIFT
                    bits.extend(_bitset(parse_categories(node["threshold"])))
                    bounds.append(len(bits))
                records.append((threshold, int(node["split_feature"]), info))
                children.append((index[id(node["left_child"])], index[id(node["right_child"])]))
                values.append(float(node["internal_value"]))
            roots.append(index[id(root)])
            depths.append(max(depth.values()))
        return cls(
            roots=np.asarray(roots, dtype=np.uint32),
            depths=np.asarray(depths, dtype=np.uint32),
            nodes=np.array(records, dtype=NODE_DTYPE),
            children=np.asarray(children, dtype=np.uint32).reshape(-1, 2),
            values=np.asarray(values, dtype=np.float64),
            cat_bounds=np.asarray(bounds, dtype=np.uint32),
            cat_bits=np.asarray(bits, dtype=np.uint32),
            n_features=len(ensemble.encoder.feature_names),
            sigmoid=ensemble.sigmoid,
        )

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return int(self.roots.shape[0])

    def bias(self) -> float:
        """Sum of the roots' values: where every path contribution starts."""
        return float(sum(float(self.values[root]) for root in self.roots.tolist()))


def _split_flags(node: Mapping[str, Any]) -> tuple[int, float]:
    """``(info, threshold)`` of a split node, per LightGBM's decision rules."""
    if node["decision_type"] == "==":
        return CATEGORICAL | NAN_RIGHT, 0.0
    threshold = float(node["threshold"])
    info = 0 if node["default_left"] else DEFAULT_RIGHT
    missing_type = node["missing_type"]
    if missing_type == "None":
        # NaN is read as 0.0, so it goes where 0.0 goes.
        nan_right = not 0.0 <= threshold
    else:
        nan_right = not node["default_left"]
    if nan_right:
        info |= NAN_RIGHT
    if missing_type == "Zero":
        info |= ZERO_MISSING
    if -K_ZERO_THRESHOLD <= threshold <= K_ZERO_THRESHOLD:
        # Only here can LightGBM's rounding of near-zero inputs to 0.0 change the answer.
        info |= NEAR_ZERO_THRESHOLD
    return info, threshold


def _bitset(categories: list[int]) -> list[int]:
    words = [0] * (max(categories) // 32 + 1)
    for category in categories:
        words[category // 32] |= 1 << (category % 32)
    return words
