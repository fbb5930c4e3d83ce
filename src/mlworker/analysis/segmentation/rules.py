"""A short human rule that reproduces each segment, with its precision and recall.

For each segment a shallow one-vs-rest decision tree is fitted on the original-unit features of
a stratified sample (numbers, and one indicator per categorical level). The leaf whose path has
the best F1 for the segment becomes the rule: its split conditions, merged per column (the
tightest bound of each direction; an equality makes the column's inequalities redundant),
thresholds rounded to three significant digits. Precision and recall are then measured on every
row against the cluster labels, with the rounded thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.tree import DecisionTreeClassifier

from mlworker.analysis.segmentation.features import (
    MISSING_LEVEL,
    OTHER_LEVEL,
    FeatureMatrix,
)
from mlworker.analysis.segmentation.search import Labels
from mlworker.analysis.segmentation.silhouette import stratified_sample

MAX_DEPTH = 3
SIGNIFICANT_DIGITS = 3
_MIN_PER_SEGMENT = 200
_PRUNE_TOLERANCE = 0.005


@dataclass(frozen=True, slots=True)
class Condition:
    """``field op value``: ``op`` is one of ``>=``, ``<``, ``=``, ``!=``."""

    field: str
    op: str
    value: float | int | str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"field": self.field, "op": self.op, "value": self.value}

    @property
    def text(self) -> str:
        """``income >= 85000`` or ``tier = 'Gold'``."""
        if isinstance(self.value, str):
            quoted = self.value.replace("'", "''")
            return f"{self.field} {self.op} '{quoted}'"
        return f"{self.field} {self.op} {self.value}"


@dataclass(frozen=True, slots=True)
class SuggestedRule:
    """Conditions joined by AND, with precision and recall on every row."""

    conditions: tuple[Condition, ...]
    precision: float
    recall: float

    @property
    def text(self) -> str:
        """The conditions as one readable line."""
        return " AND ".join(condition.text for condition in self.conditions)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "conditions": [condition.to_dict() for condition in self.conditions],
            "text": self.text,
            "precision": self.precision,
            "recall": self.recall,
        }


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float | int:
    """Round to ``digits`` significant digits; whole numbers come back as ``int``.

    Examples
    --------
    >>> round_significant(85012.3), round_significant(0.012345), round_significant(-2.5)
    (85000, 0.0123, -2.5)
    """
    if value == 0 or not math.isfinite(value):
        return 0 if value == 0 else value
    rounded = round(value, digits - 1 - math.floor(math.log10(abs(value))))
    return int(rounded) if float(rounded).is_integer() else float(rounded)


@dataclass(frozen=True, slots=True)
class _Column:
    """A tree input column: a numeric feature, or the indicator of one categorical level."""

    field: str
    numeric: int | None = None
    categorical: int | None = None
    level: int | None = None
    level_name: str = ""


def suggest_rules(
    features: FeatureMatrix,
    labels: Labels,
    segment_ids: Sequence[int],
    *,
    sample_rows: int,
    random_state: int,
) -> dict[int, SuggestedRule | None]:
    """Suggest a rule for every segment in ``segment_ids`` (``None`` if no split finds it)."""
    columns = _tree_columns(features)
    rng = np.random.default_rng(random_state)
    picked = stratified_sample(labels, sample_rows, min_per_cluster=_MIN_PER_SEGMENT, rng=rng)
    design = _design(features, columns, picked)
    rules: dict[int, SuggestedRule | None] = {}
    for segment in segment_ids:
        conditions = _best_leaf_conditions(design, labels[picked] == segment, columns, random_state)
        if not conditions:
            rules[segment] = None
            continue
        covered = _evaluate(features, columns, conditions)
        members = labels == segment
        hits = int(np.count_nonzero(covered & members))
        rules[segment] = SuggestedRule(
            conditions=tuple(condition for condition, _ in conditions),
            precision=hits / max(int(covered.sum()), 1),
            recall=hits / max(int(members.sum()), 1),
        )
    return rules


def _tree_columns(features: FeatureMatrix) -> list[_Column]:
    columns = [_Column(f.name, numeric=i) for i, f in enumerate(features.numeric)]
    for i, feature in enumerate(features.categorical):
        # "(other)" and "(missing)" would make rules no one can read back; they are left out.
        columns.extend(
            _Column(feature.name, categorical=i, level=j, level_name=level)
            for j, level in enumerate(feature.levels)
            if level not in (OTHER_LEVEL, MISSING_LEVEL)
        )
    return columns


def _design(
    features: FeatureMatrix, columns: list[_Column], rows: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    design = np.empty((rows.size, len(columns)))
    for position, column in enumerate(columns):
        if column.numeric is not None:
            numeric = features.numeric[column.numeric]
            values = numeric.values[rows]
            design[:, position] = np.where(np.isnan(values), numeric.median, values)
        else:
            assert column.categorical is not None
            codes = features.categorical[column.categorical].codes[rows]
            design[:, position] = codes == column.level
    return design


def _best_leaf_conditions(
    design: npt.NDArray[np.float64],
    target: npt.NDArray[np.bool_],
    columns: list[_Column],
    random_state: int,
) -> list[tuple[Condition, _Column]]:
    positives = int(target.sum())
    if positives == 0 or positives == target.size or design.shape[1] == 0:
        return []
    tree = DecisionTreeClassifier(
        max_depth=MAX_DEPTH,
        class_weight="balanced",
        min_samples_leaf=max(1, target.size // 1000),
        random_state=random_state,
    ).fit(design, target)
    leaves = tree.apply(design)
    node_count = tree.tree_.node_count
    leaf_hits = np.bincount(leaves, weights=target.astype(np.float64), minlength=node_count)
    leaf_sizes = np.bincount(leaves, minlength=node_count).astype(np.float64)
    f1 = np.where(leaf_sizes > 0, 2 * leaf_hits / (leaf_sizes + positives), -1.0)
    best = int(np.argmax(f1))
    if leaf_hits[best] == 0 or best == 0:
        return []
    return _prune(_merge(_path(tree, best, columns)), design, target, columns)


def _prune(
    conditions: list[tuple[Condition, _Column]],
    design: npt.NDArray[np.float64],
    target: npt.NDArray[np.bool_],
    columns: list[_Column],
) -> list[tuple[Condition, _Column]]:
    """Drop conditions (deepest first) whose removal costs at most ``_PRUNE_TOLERANCE`` F1.

    A depth-3 path often ends in a split that tidies up a few rows; the rule reads better
    without it.
    """
    position = {column: index for index, column in enumerate(columns)}
    masks = [_sample_mask(design[:, position[column]], cond) for cond, column in conditions]
    positives = int(target.sum())

    def f1(kept: list[int]) -> float:
        covered = np.logical_and.reduce([masks[i] for i in kept]) if kept else np.ones_like(target)
        return 2 * int(np.count_nonzero(covered & target)) / (int(covered.sum()) + positives)

    kept = list(range(len(conditions)))
    score = f1(kept)
    for index in reversed(range(len(conditions))):
        if len(kept) == 1:
            break
        without = [i for i in kept if i != index]
        if f1(without) >= score - _PRUNE_TOLERANCE:
            kept, score = without, f1(without)
    return [conditions[i] for i in kept]


def _sample_mask(values: npt.NDArray[np.float64], condition: Condition) -> npt.NDArray[np.bool_]:
    if condition.op == ">=":
        return values >= float(condition.value)
    if condition.op == "<":
        return values < float(condition.value)
    # Indicator column of the named level.
    wanted = 1.0 if condition.op == "=" else 0.0
    return np.equal(values, wanted)


def _path(
    tree: DecisionTreeClassifier, leaf: int, columns: list[_Column]
) -> list[tuple[Condition, _Column]]:
    left, right = tree.tree_.children_left, tree.tree_.children_right
    parent: dict[int, tuple[int, bool]] = {}
    for node in range(tree.tree_.node_count):
        if left[node] >= 0:
            parent[int(left[node])] = (node, False)
            parent[int(right[node])] = (node, True)
    steps = []
    node = leaf
    while node in parent:
        node, went_right = parent[node]
        column = columns[int(tree.tree_.feature[node])]
        threshold = float(tree.tree_.threshold[node])
        if column.numeric is not None:
            op = ">=" if went_right else "<"
            condition = Condition(column.field, op, round_significant(threshold))
        else:
            condition = Condition(column.field, "=" if went_right else "!=", column.level_name)
        steps.append((condition, column))
    return steps[::-1]


def _merge(
    steps: list[tuple[Condition, _Column]],
) -> list[tuple[Condition, _Column]]:
    """One bound per column and direction; ``=`` drops the column's ``!=`` conditions."""
    merged: dict[tuple[str, str, int | None], tuple[Condition, _Column]] = {}
    equal_columns = {column.field for condition, column in steps if condition.op == "="}
    for condition, column in steps:
        if condition.op == "!=" and column.field in equal_columns:
            continue
        key = (column.field, condition.op, column.level if condition.op == "!=" else None)
        kept = merged.get(key)
        if kept is not None and isinstance(condition.value, int | float):
            previous = kept[0].value
            assert isinstance(previous, int | float)
            tighter = max if condition.op == ">=" else min
            condition = Condition(condition.field, condition.op, tighter(previous, condition.value))
        merged[key] = (condition, column)
    return list(merged.values())


def _evaluate(
    features: FeatureMatrix,
    columns: list[_Column],
    conditions: list[tuple[Condition, _Column]],
) -> npt.NDArray[np.bool_]:
    covered = np.ones(features.rows, dtype=bool)
    for condition, column in conditions:
        if column.numeric is not None:
            values = features.numeric[column.numeric].values
            threshold = float(condition.value)
            with np.errstate(invalid="ignore"):
                covered &= values >= threshold if condition.op == ">=" else values < threshold
        else:
            assert column.categorical is not None
            codes = features.categorical[column.categorical].codes
            covered &= codes == column.level if condition.op == "=" else codes != column.level
    return covered
