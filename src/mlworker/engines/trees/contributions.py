"""Per-feature path contributions of a tree ensemble (the seed's "SHAP-inspired approximation").

Saabas' method: follow each tree's decision path and credit every change of the expected value
(LightGBM's ``internal_value``) from a node to its child to the node's split feature. Summed
over trees, the contributions plus the bias (the roots' expected values) add up to the raw
margin exactly, so an explanation accounts for the whole score in log-odds. Unlike TreeSHAP
the credit depends on the order of splits along the path; it costs one walk per tree.

References
----------
A. Saabas, "Interpreting random forests", 2014,
https://blog.datadive.net/interpreting-random-forests/.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlworker.engines.trees.flat import FlatEnsemble
from mlworker.engines.trees.kernel import path_contributions as _compiled_contributions


def path_contributions(flat: FlatEnsemble, matrix: np.ndarray) -> tuple[float, np.ndarray]:
    """``(bias, contributions)``: contributions is ``(rows, n_features)`` in margin units.

    For every row, ``bias + contributions[row].sum()`` is the row's raw margin.
    """
    return flat.bias(), _compiled_contributions(flat, matrix)


def contribution_details(
    contributions: np.ndarray, feature_names: Sequence[str]
) -> list[dict[str, Any]]:
    """One row's contributions as ``[{"field", "contribution"}]``, largest magnitude first.

    Features no path split on (contribution exactly zero) are left out.

    Examples
    --------
    >>> contribution_details(np.array([0.1, 0.0, -0.4]), ["age", "income", "tier"])
    [{'field': 'tier', 'contribution': -0.4}, {'field': 'age', 'contribution': 0.1}]
    """
    values = np.asarray(contributions, dtype=np.float64)
    used = np.flatnonzero(values != 0.0)
    # Stable sort: equal magnitudes keep feature order, so details are deterministic.
    order = used[np.argsort(-np.abs(values[used]), kind="stable")]
    return [
        {"field": str(feature_names[index]), "contribution": float(values[index])}
        for index in order
    ]
