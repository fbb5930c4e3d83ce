"""LightGBM booster → portable tree JSON, and that JSON read back and checked.

The JSON is LightGBM's own ``dump_model()`` trimmed to what scoring and explanations need, plus
the feature encoding, so it alone reproduces every score (seed 003, "Gradient Boosted")::

    {"format": "lightgbm-tree-json", "version": 1, "objective": "binary", "sigmoid": 1.0,
     "feature_names": [...], "categorical": {feature: {value: code}},
     "lightgbm_version": "4.6.0",
     "trees": [{"tree_index": 0, "num_leaves": 31, "num_cat": 0, "shrinkage": 1,
                "tree_structure": NODE}]}

An internal ``NODE`` has ``split_feature`` (an index into ``feature_names``), ``threshold`` (a
number for ``decision_type`` ``"<="``, or the left categories as ``"1||3||7"`` for ``"=="``),
``default_left``, ``missing_type`` (``"None"``, ``"Zero"``, ``"NaN"``), ``internal_value``,
``internal_count``, ``left_child`` and ``right_child``; a leaf has ``leaf_value`` and
``leaf_count``. LightGBM prints thresholds and leaf values with 17 significant digits, so the
doubles survive the trip exactly. The margin is the sum of leaf values over trees (the initial
score is folded into the first tree) and the propensity ``1 / (1 + exp(-sigmoid · margin))``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlworker.engines.trees.encoding import FeatureEncoder

FORMAT = "lightgbm-tree-json"
FORMAT_VERSION = 1

_SPLIT_FIELDS = (
    "split_feature",
    "threshold",
    "decision_type",
    "default_left",
    "missing_type",
    "internal_value",
    "internal_count",
)
_LEAF_FIELDS = ("leaf_value", "leaf_count")
_TREE_FIELDS = ("tree_index", "num_leaves", "num_cat", "shrinkage")
MISSING_TYPES = ("None", "Zero", "NaN")


def is_leaf(node: Mapping[str, Any]) -> bool:
    """Whether a ``tree_structure`` node is a leaf."""
    return "leaf_value" in node


def parse_categories(threshold: str) -> list[int]:
    """Return the left-going categories of a categorical split (``"1||3||7"``).

    Raises
    ------
    ValueError
        A part is not a non-negative integer.

    Examples
    --------
    >>> parse_categories("1||3||7")
    [1, 3, 7]
    """
    try:
        categories = [int(part) for part in threshold.split("||")]
    except ValueError:
        raise ValueError(
            f"categorical threshold {threshold!r} is not '||'-joined integers"
        ) from None
    if any(category < 0 for category in categories):
        raise ValueError(f"categorical threshold {threshold!r} has a negative category")
    return categories


def parse_objective(objective: str) -> float:
    """Return the sigmoid scale of a binary objective string (``"binary sigmoid:1"``).

    Raises
    ------
    ValueError
        The objective is not binary log-loss.

    Examples
    --------
    >>> parse_objective("binary sigmoid:1")
    1.0
    """
    name, *options = objective.split()
    if name != "binary":
        raise ValueError(f"only the binary objective is supported, not {objective!r}")
    for option in options:
        key, _, value = option.partition(":")
        if key == "sigmoid":
            return float(value)
    return 1.0


def _trim(root: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a dumped tree keeping only the portable fields (iteratively: trees can be deep)."""
    out: dict[str, Any] = {}
    stack: list[tuple[Mapping[str, Any], dict[str, Any]]] = [(root, out)]
    while stack:
        source, target = stack.pop()
        if is_leaf(source):
            target.update({key: source[key] for key in _LEAF_FIELDS if key in source})
            continue
        target.update({key: source[key] for key in _SPLIT_FIELDS})
        for side in ("left_child", "right_child"):
            target[side] = {}
            stack.append((source[side], target[side]))
    return out


def export_booster(booster: Any, encoder: FeatureEncoder) -> dict[str, Any]:
    """Export a trained binary LightGBM booster as portable tree JSON.

    Parameters
    ----------
    booster
        A ``lightgbm.Booster`` trained on ``encoder``'s matrix (its feature names are ignored:
        ``split_feature`` indexes ``encoder.feature_names``).
    encoder
        The matrix layout and categorical codes used in training.

    Raises
    ------
    ValueError
        The booster is not a single-output binary model over ``encoder``'s features.
    """
    import lightgbm

    dump = booster.dump_model()
    if dump.get("num_tree_per_iteration", 1) != 1:
        raise ValueError("only single-output (binary) boosters can be exported")
    if len(dump["feature_names"]) != len(encoder.feature_names):
        raise ValueError(
            f"the booster has {len(dump['feature_names'])} features, "
            f"the encoder {len(encoder.feature_names)}"
        )
    sigmoid = parse_objective(str(dump["objective"]))
    trees = [
        {
            **{key: info[key] for key in _TREE_FIELDS},
            "tree_structure": _trim(info["tree_structure"]),
        }
        for info in dump["tree_info"]
    ]
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "objective": "binary",
        "sigmoid": sigmoid,
        **encoder.to_json(),
        "lightgbm_version": lightgbm.__version__,
        "trees": trees,
    }


def iter_nodes(root: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of a tree in depth-first pre-order, left before right."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if not is_leaf(node):
            stack.append(node["right_child"])
            stack.append(node["left_child"])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_node(node: Any, n_features: int, where: str) -> None:
    if not isinstance(node, Mapping):
        raise ValueError(f"{where}: a node must be an object")
    if is_leaf(node):
        if not _is_number(node["leaf_value"]) or not math.isfinite(node["leaf_value"]):
            raise ValueError(f"{where}: leaf_value must be a finite number")
        return
    missing = [key for key in _SPLIT_FIELDS if key != "internal_count" and key not in node]
    missing += [side for side in ("left_child", "right_child") if side not in node]
    if missing:
        raise ValueError(f"{where}: a split node lacks {', '.join(missing)}")
    feature = node["split_feature"]
    if not isinstance(feature, int) or isinstance(feature, bool) or not 0 <= feature < n_features:
        raise ValueError(f"{where}: split_feature {feature!r} is not a feature index")
    if node["missing_type"] not in MISSING_TYPES:
        raise ValueError(f"{where}: missing_type must be one of {MISSING_TYPES}")
    if not isinstance(node["default_left"], bool):
        raise ValueError(f"{where}: default_left must be true or false")
    if not _is_number(node["internal_value"]):
        raise ValueError(f"{where}: internal_value must be a number")
    threshold = node["threshold"]
    if node["decision_type"] == "<=":
        if not _is_number(threshold) or math.isnan(threshold):
            raise ValueError(f"{where}: a '<=' split needs a numeric threshold")
    elif node["decision_type"] == "==":
        if not isinstance(threshold, str):
            raise ValueError(f"{where}: a '==' split needs a '||'-joined category threshold")
        parse_categories(threshold)
    else:
        raise ValueError(f"{where}: decision_type must be '<=' or '=='")


@dataclass(frozen=True, slots=True)
class Ensemble:
    """A checked portable tree ensemble.

    Parameters
    ----------
    encoder
        Feature layout and categorical codes.
    sigmoid
        Scale of the logistic link: ``p = 1 / (1 + exp(-sigmoid · margin))``.
    trees
        The trees' JSON objects, each with a ``tree_structure``.
    lightgbm_version
        The LightGBM that trained it (provenance only).
    """

    encoder: FeatureEncoder
    sigmoid: float
    trees: tuple[Mapping[str, Any], ...]
    lightgbm_version: str | None = None

    @property
    def roots(self) -> list[Mapping[str, Any]]:
        """Each tree's root node."""
        return [tree["tree_structure"] for tree in self.trees]

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> Ensemble:
        """Read and check the JSON of :func:`export_booster`.

        Raises
        ------
        ValueError
            The JSON is not a well-formed ensemble; the message names the offending node.
        """
        if state.get("format") != FORMAT:
            raise ValueError(f"model state format must be {FORMAT!r}")
        if state.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported tree JSON version {state.get('version')!r}")
        if state.get("objective") != "binary":
            raise ValueError("only the binary objective is supported")
        sigmoid = state.get("sigmoid", 1.0)
        if not _is_number(sigmoid) or not math.isfinite(sigmoid) or sigmoid <= 0:
            raise ValueError("sigmoid must be a positive number")
        encoder = FeatureEncoder.from_json(state)
        trees = state.get("trees")
        if not isinstance(trees, Sequence) or isinstance(trees, str):
            raise ValueError("trees must be a list")
        n_features = len(encoder.feature_names)
        for index, tree in enumerate(trees):
            if not isinstance(tree, Mapping) or "tree_structure" not in tree:
                raise ValueError(f"trees.{index} has no tree_structure")
            for node in iter_nodes(tree["tree_structure"]):
                _check_node(node, n_features, f"trees.{index}")
        version = state.get("lightgbm_version")
        return cls(
            encoder,
            float(sigmoid),
            tuple(copy.deepcopy(list(trees))),
            version if isinstance(version, str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON :meth:`from_json` reads (a copy: callers may change it freely)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "objective": "binary",
            "sigmoid": self.sigmoid,
            **self.encoder.to_json(),
            "lightgbm_version": self.lightgbm_version,
            "trees": copy.deepcopy(list(self.trees)),
        }
