"""A bounded random forest on the shrunk rate, permutation importance and signed effects.

The forest is bounded (depth, leaf size, a fraction of the features per split): a full-depth
forest on a large TF-IDF matrix takes minutes and hundreds of megabytes for no better ranking.
Importance is measured by permutation on held-out creatives, because impurity importance
favours sparse, many-valued columns; only the columns a permutation changes are re-predicted,
which makes permuting a rare term nearly free.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.ensemble import RandomForestRegressor

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

TREES = 100
MAX_DEPTH = 12
MIN_SAMPLES_LEAF = 5
FEATURE_SHARE = 0.1
N_JOBS = 2
HOLDOUT_SHARE = 0.2
_MIN_FEATURES_PER_SPLIT = 30
_BATCH_ROWS = 100_000


def weighted_r2(
    observed: FloatArray, predicted: FloatArray, weights: FloatArray | None = None
) -> float | None:
    """Coefficient of determination with sample weights (as ``sklearn.metrics.r2_score``).

    ``None`` when the observed values do not vary.

    Examples
    --------
    >>> weighted_r2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    0.5
    """
    w = np.ones_like(observed) if weights is None else weights
    mean = float(np.average(observed, weights=w))
    total = float((w * (observed - mean) ** 2).sum())
    if total <= 0:
        return None
    return 1.0 - float((w * (observed - predicted) ** 2).sum()) / total


def features_per_split(columns: int) -> int:
    """Features tried at each split: a tenth of them, but at least 30 (or all, if fewer).

    Examples
    --------
    >>> features_per_split(2000), features_per_split(100), features_per_split(12)
    (200, 30, 12)
    """
    return max(min(columns, _MIN_FEATURES_PER_SPLIT), math.ceil(FEATURE_SHARE * columns))


@dataclass(frozen=True)
class ForestFit:
    """The fitted forest and how well it predicts.

    Attributes
    ----------
    model
        The fitted ``RandomForestRegressor``.
    train, holdout
        Row positions of the seeded 80/20 split.
    r2_holdout, r2_out_of_bag
        Weighted R² on the held-out rows and out of bag on the training rows.
    """

    model: Any
    train: IntArray
    holdout: IntArray
    r2_holdout: float | None
    r2_out_of_bag: float | None

    def parameters(self) -> dict[str, Any]:
        """Describe the forest's size, camelCase."""
        return {
            "trees": int(self.model.n_estimators),
            "maxDepth": int(self.model.max_depth),
            "minSamplesLeaf": int(self.model.min_samples_leaf),
            "maxFeatures": int(self.model.max_features),
            "trainCount": int(self.train.size),
            "holdoutCount": int(self.holdout.size),
        }


def forest_predict(model: Any, matrix: sp.csr_matrix) -> FloatArray:
    """Mean of the trees' predictions, in parallel but summed in a fixed order.

    ``RandomForestRegressor.predict`` with several threads adds the trees up in whatever order
    they finish, so repeated runs differ in the last bits; this keeps results reproducible.
    """
    rows = sp.csr_matrix(matrix, dtype=np.float32)
    rows.indices = rows.indices.astype(np.int32, copy=False)
    rows.indptr = rows.indptr.astype(np.int32, copy=False)
    trees = list(model.estimators_)
    groups = [group for group in np.array_split(np.arange(len(trees)), N_JOBS) if group.size]

    def partial_sum(group: IntArray) -> FloatArray:
        total = np.zeros(rows.shape[0])
        for index in group:
            total += trees[index].predict(rows, check_input=False)
        return total

    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        parts = list(pool.map(partial_sum, groups))
    return np.asarray(sum(parts[1:], parts[0]) / len(trees), dtype=np.float64)


def split_rows(rows: int, random_state: int) -> tuple[IntArray, IntArray]:
    """Seeded 80/20 split of ``range(rows)`` into sorted training and hold-out positions."""
    order = np.random.default_rng(random_state).permutation(rows)
    cut = rows - max(1, round(HOLDOUT_SHARE * rows))
    return np.sort(order[:cut]), np.sort(order[cut:])


def fit_forest(
    matrix: sp.csr_matrix, target: FloatArray, weights: FloatArray, *, random_state: int
) -> ForestFit:
    """Fit the bounded forest on 80 % of the rows, weighted, and score it on the rest."""
    train, holdout = split_rows(matrix.shape[0], random_state)
    model = RandomForestRegressor(
        n_estimators=TREES,
        max_depth=MAX_DEPTH,
        min_samples_leaf=MIN_SAMPLES_LEAF,
        max_features=features_per_split(matrix.shape[1]),
        oob_score=True,
        n_jobs=N_JOBS,
        random_state=random_state,
    )
    with warnings.catch_warnings():
        # A few rows in no tree's out-of-bag sample only leave their OOB prediction empty.
        warnings.simplefilter("ignore", UserWarning)
        model.fit(matrix[train], target[train], sample_weight=weights[train])
    predicted = forest_predict(model, matrix[holdout])
    out_of_bag = np.asarray(model.oob_prediction_, dtype=np.float64).ravel()
    seen = np.isfinite(out_of_bag)
    return ForestFit(
        model=model,
        train=train,
        holdout=holdout,
        r2_holdout=weighted_r2(target[holdout], predicted, weights[holdout]),
        r2_out_of_bag=weighted_r2(target[train][seen], out_of_bag[seen], weights[train][seen]),
    )


def _predict_each(model: Any, parts: Iterable[sp.csr_matrix]) -> Iterator[FloatArray]:
    """Predictions for each of many small matrices, stacked into few calls as they come.

    Each call has a fixed thread overhead, so small matrices are predicted together; taking
    them lazily keeps at most one batch in memory.
    """
    batch: list[sp.csr_matrix] = []
    rows = 0
    for part in _and_end(parts):
        if part is not None:
            batch.append(part)
            rows += part.shape[0]
        if batch and (part is None or rows >= _BATCH_ROWS):
            predicted = forest_predict(model, sp.vstack(batch, format="csr"))
            ends = np.cumsum([piece.shape[0] for piece in batch])
            yield from np.split(predicted, ends[:-1])
            batch, rows = [], 0


def _and_end(parts: Iterable[sp.csr_matrix]) -> Iterator[sp.csr_matrix | None]:
    yield from parts
    yield None


def _with_column(
    matrix: sp.csr_matrix, column: int, old: FloatArray, new: FloatArray
) -> sp.csr_matrix:
    """``matrix`` with ``column`` set to ``new`` (``old`` its current values), staying sparse."""
    delta = (new - old).astype(np.float32)
    rows = np.flatnonzero(delta)
    patch = sp.csr_matrix(
        (delta[rows], (rows, np.full(rows.size, column))), shape=matrix.shape, dtype=np.float32
    )
    result = sp.csr_matrix(matrix + patch)
    result.eliminate_zeros()
    return result


def permutation_importance(
    model: Any,
    matrix: sp.csr_matrix,
    target: FloatArray,
    weights: FloatArray,
    columns: Sequence[int],
    *,
    n_repeats: int,
    seed: int,
) -> tuple[FloatArray, FloatArray]:
    """Drop in weighted R² when each column is permuted, mean and standard deviation.

    Same permutations as ``sklearn.inspection.permutation_importance`` given the seed it
    draws (``RandomState(seed)`` per column, one shuffle of the row order per repeat, applied
    to the already permuted column), so the numbers match it; but only the rows whose value
    the permutation changed are re-predicted.

    Parameters
    ----------
    model
        Fitted ``RandomForestRegressor``.
    matrix, target, weights
        Held-out rows, their targets and sample weights.
    columns
        Column positions to permute.
    n_repeats
        Permutations per column.
    seed
        Seed of each column's ``RandomState``.

    References
    ----------
    .. [1] Breiman, L. (2001). Random forests. Machine Learning 45(1), 5-32, section 10.
    .. [2] Strobl, C., Boulesteix, A.-L., Zeileis, A. and Hothorn, T. (2007). Bias in random
       forest variable importance measures. BMC Bioinformatics 8, 25.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 3))
    >>> y = 2 * X[:, 0] + 0.1 * rng.random(200)
    >>> forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    >>> mean, std = permutation_importance(
    ...     forest, sp.csr_matrix(X), y, np.ones(200), [0, 1], n_repeats=3, seed=1
    ... )
    >>> bool(mean[0] > 0.5 > abs(mean[1]))
    True
    """
    baseline = forest_predict(model, matrix)
    base_score = weighted_r2(target, baseline, weights) or 0.0
    by_column = sp.csc_matrix(matrix)
    pending: deque[IntArray] = deque()

    def permuted_rows() -> Iterator[sp.csr_matrix]:
        for column in columns:
            original = by_column[:, column].toarray().ravel().astype(np.float64)
            current = original.copy()
            generator = np.random.RandomState(seed)
            order = np.arange(matrix.shape[0])
            for _ in range(n_repeats):
                generator.shuffle(order)
                current = current[order]
                changed = np.flatnonzero(current != original)
                pending.append(changed)
                yield _with_column(matrix[changed], column, original[changed], current[changed])

    scores = np.empty(len(columns) * n_repeats)
    for index, predicted in enumerate(_predict_each(model, permuted_rows())):
        permuted = baseline.copy()
        permuted[pending.popleft()] = predicted
        scores[index] = weighted_r2(target, permuted, weights) or 0.0
    drops = (base_score - scores).reshape(len(columns), n_repeats)
    return drops.mean(axis=1), drops.std(axis=1)


def signed_effects(
    model: Any,
    matrix: sp.csr_matrix,
    columns: Sequence[int],
    low: FloatArray,
    high: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Average predicted change when each column goes from ``low`` to ``high`` on every row.

    Returns the mean difference of predictions and the relative change of the mean prediction
    (``mean(high) / mean(low) − 1``, NaN where the low mean is not positive).

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 2))
    >>> y = 1 + X[:, 0] - X[:, 1]
    >>> forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    >>> difference, relative = signed_effects(
    ...     forest, sp.csr_matrix(X), [0, 1], np.array([0.2, 0.2]), np.array([0.8, 0.8])
    ... )
    >>> bool(difference[0] > 0.3), bool(difference[1] < -0.3)
    (True, True)
    """
    by_column = sp.csc_matrix(matrix)
    rows = matrix.shape[0]
    parts: list[sp.csr_matrix] = []
    for position, column in enumerate(columns):
        original = by_column[:, column].toarray().ravel().astype(np.float64)
        for value in (low[position], high[position]):
            parts.append(_with_column(matrix, column, original, np.full(rows, value)))
    predictions = np.concatenate(list(_predict_each(model, parts))).reshape(len(columns), 2, rows)
    low_mean = predictions[:, 0, :].mean(axis=1)
    high_mean = predictions[:, 1, :].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(low_mean > 0, high_mean / low_mean - 1, np.nan)
    return high_mean - low_mean, relative


def contrast_values(
    matrix: sp.csr_matrix, columns: Sequence[int], binary: npt.NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """Values to contrast per column: ``(low, high)`` arrays.

    A term's typical (median) non-zero value against zero, 1 against 0 for an indicator, the
    upper against the lower quartile for a count or a share.
    """
    by_column = sp.csc_matrix(matrix)
    low = np.zeros(len(columns))
    high = np.zeros(len(columns))
    for position, column in enumerate(columns):
        values = by_column[:, column]
        if binary[column]:
            nonzero = values.data[values.data != 0]
            high[position] = float(np.median(nonzero)) if nonzero.size else 1.0
            continue
        dense = values.toarray().ravel()
        low[position], high[position] = np.quantile(dense, [0.25, 0.75])
        if high[position] <= low[position]:
            low[position], high[position] = float(dense.min()), float(dense.max())
    return low, high
