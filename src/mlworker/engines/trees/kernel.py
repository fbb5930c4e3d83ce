"""The compiled scorer: numba kernels over a :class:`~.flat.FlatEnsemble`.

Each decision follows LightGBM's ``Tree::NumericalDecision`` / ``CategoricalDecision``
(``include/LightGBM/tree.h``) and its dense-row reader, which turns ``|x| <= kZeroThreshold``
into ``0.0`` before any tree sees it:

* numeric split, ``x`` NaN: to the default side when ``missing_type`` is ``NaN`` or ``Zero``,
  else ``x`` is read as ``0.0``;
* numeric split, ``missing_type`` ``Zero`` and ``x`` (near) zero: to the default side;
* otherwise left iff ``x <= threshold``;
* categorical split: NaN, negatives and values beyond ``int32`` go right; else ``int(x)``
  (truncated toward zero, as C++ does) goes left iff it is in the split's bitset.

:mod:`.flat` folds all of this into per-node flags, so the common split costs one comparison
and one NaN test; categorical, ``Zero`` and near-zero-threshold splits take the exact slow
path. The batch kernel moves a block of rows through one tree level by level (leaves point to
themselves, so every row takes the tree's depth in steps with no branch on the path), which
keeps the tree's nodes in cache and many independent loads in flight; a single record walks
several trees side by side for the same reason. Leaf values are summed in tree order from
``0.0`` and the link is LightGBM's own ``1 / (1 + exp(-s · margin))``, so results match
``booster.predict`` to the last bit in practice. Indices are unsigned because numba adds a
negative-index fix-up to every signed array access.

Everything compiled, and every constant it reads, lives in this one module: numba's on-disk
cache is invalidated by this file's changes only.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numba
import numpy as np
from numba import njit, prange

if TYPE_CHECKING:
    from mlworker.engines.trees.flat import FlatEnsemble

#: LightGBM's ``kZeroThreshold`` (declared ``1e-35f``, hence the float32 rounding).
K_ZERO_THRESHOLD = float(np.float32(1e-35))
#: One node: numeric threshold, split feature, flags (below) | categorical slot << SLOT_SHIFT.
NODE_DTYPE = np.dtype([("threshold", np.float64), ("feature", np.uint32), ("info", np.uint32)])
CATEGORICAL = 1
#: ``missing_type`` ``Zero``: near-zero values go to the default side.
ZERO_MISSING = 2
#: The threshold lies in ``[-kZeroThreshold, kZeroThreshold]``, where rounding inputs matters.
NEAR_ZERO_THRESHOLD = 4
NAN_RIGHT = 8
DEFAULT_RIGHT = 16
LEAF = 32
SLOT_SHIFT = 6
_SLOW = CATEGORICAL | ZERO_MISSING | NEAR_ZERO_THRESHOLD
#: Rows per block of the batch kernel: the block and one tree stay in L1/L2 together.
BLOCK_ROWS = 128
#: Trees a single record walks side by side.
TREE_GROUP = 16
#: Below this many rows the serial kernel wins (starting threads costs more than it saves).
PARALLEL_MIN_ROWS = 4096

# numba's "workqueue" threading layer (the fallback without OpenMP or TBB) aborts the process
# on concurrent parallel launches from two Python threads; launches are serialised, each one
# already uses every thread it is given.
_parallel_launch = threading.Lock()


@njit(cache=True, nogil=True)
def _slow_goes_right(x, threshold, info, cat_bounds, cat_bits):  # type: ignore[no-untyped-def]
    if info & CATEGORICAL:
        if math.isnan(x) or x <= -1.0 or x >= 2147483648.0:
            return True
        category = np.int64(x)
        slot = np.int64(info >> SLOT_SHIFT)
        start = np.int64(cat_bounds[slot])
        word = category >> 5
        if word >= np.int64(cat_bounds[slot + 1]) - start:
            return True
        return ((np.int64(cat_bits[start + word]) >> (category & 31)) & 1) == 0
    if math.isnan(x):
        return (info & NAN_RIGHT) != 0
    if -K_ZERO_THRESHOLD <= x <= K_ZERO_THRESHOLD:
        if info & ZERO_MISSING:
            return (info & DEFAULT_RIGHT) != 0
        x = 0.0
    return x > threshold


@njit(cache=True, nogil=True)
def _goes_right(x, threshold, info, cat_bounds, cat_bits):  # type: ignore[no-untyped-def]
    if info & _SLOW:
        return _slow_goes_right(x, threshold, info, cat_bounds, cat_bits)
    # NaN fails every comparison, so it only goes right when the node says so.
    return (x > threshold) | (((info & NAN_RIGHT) != 0) & (x != x))


@njit(cache=True, nogil=True)
def _score_block(  # type: ignore[no-untyped-def]
    matrix, start, stop, state, roots, depths, nodes, children, values, cat_bounds, cat_bits,
    sigmoid, out,
):  # fmt: skip
    block = matrix[start:stop]
    rows = stop - start
    for row in range(rows):
        out[start + row] = 0.0
    for tree in range(roots.shape[0]):
        root = roots[tree]
        for row in range(rows):
            state[row] = root
        for _ in range(depths[tree]):
            for row in range(rows):
                node = state[row]
                record = nodes[node]
                right = _goes_right(
                    block[np.uint64(row), record.feature], record.threshold, record.info,
                    cat_bounds, cat_bits,
                )  # fmt: skip
                state[row] = children[node, np.uint32(right)]
        for row in range(rows):
            out[start + row] += values[state[row]]
    if sigmoid > 0.0:
        for row in range(start, stop):
            # LightGBM's link term for term (an overflowing exp gives 0.0, never NaN).
            out[row] = 1.0 / (1.0 + math.exp(-sigmoid * out[row]))


@njit(cache=True, nogil=True)
def _score_serial(  # type: ignore[no-untyped-def]
    matrix, roots, depths, nodes, children, values, cat_bounds, cat_bits, sigmoid, out
):
    state = np.empty(BLOCK_ROWS, dtype=np.uint32)
    n_rows = matrix.shape[0]
    for start in range(0, n_rows, BLOCK_ROWS):
        _score_block(
            matrix, start, min(start + BLOCK_ROWS, n_rows), state, roots, depths, nodes,
            children, values, cat_bounds, cat_bits, sigmoid, out,
        )  # fmt: skip


@njit(cache=True, nogil=True, parallel=True)
def _score_parallel(  # type: ignore[no-untyped-def]
    matrix, roots, depths, nodes, children, values, cat_bounds, cat_bits, sigmoid, out
):
    n_rows = matrix.shape[0]
    for block in prange((n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        state = np.empty(BLOCK_ROWS, dtype=np.uint32)
        start = block * BLOCK_ROWS
        _score_block(
            matrix, start, min(start + BLOCK_ROWS, n_rows), state, roots, depths, nodes,
            children, values, cat_bounds, cat_bits, sigmoid, out,
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _score_one(row, roots, depths, nodes, children, values, cat_bounds, cat_bits, sigmoid):  # type: ignore[no-untyped-def]
    # One row has no other rows to overlap with, so it walks TREE_GROUP trees side by side:
    # their paths are independent, which keeps several loads in flight instead of one.
    total = 0.0
    state = np.empty(TREE_GROUP, dtype=np.uint32)
    n_trees = roots.shape[0]
    for first in range(0, n_trees, TREE_GROUP):
        count = min(TREE_GROUP, n_trees - first)
        depth = np.uint32(0)
        for member in range(count):
            state[member] = roots[first + member]
            depth = max(depth, depths[first + member])
        for _ in range(depth):
            for member in range(count):
                node = state[member]
                record = nodes[node]
                right = _goes_right(
                    row[record.feature], record.threshold, record.info, cat_bounds, cat_bits
                )
                state[member] = children[node, np.uint32(right)]
        for member in range(count):
            total += values[state[member]]
    if sigmoid > 0.0:
        return 1.0 / (1.0 + math.exp(-sigmoid * total))
    return total


@njit(cache=True, nogil=True, parallel=True)
def _path_contributions(  # type: ignore[no-untyped-def]
    matrix, roots, nodes, children, values, cat_bounds, cat_bits, n_features
):
    n_rows = matrix.shape[0]
    out = np.zeros((n_rows, n_features), dtype=np.float64)
    for row in prange(n_rows):
        for tree in range(roots.shape[0]):
            node = roots[tree]
            record = nodes[node]
            while not record.info & LEAF:
                right = _goes_right(
                    matrix[row, record.feature], record.threshold, record.info, cat_bounds,
                    cat_bits,
                )  # fmt: skip
                child = children[node, np.uint32(right)]
                out[row, record.feature] += values[child] - values[node]
                node = child
                record = nodes[node]
    return out


def max_threads() -> int:
    """Return the size of numba's thread pool (``NUMBA_NUM_THREADS``, default: every core)."""
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]


def _as_matrix(matrix: np.ndarray, n_features: int) -> np.ndarray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != n_features:
        raise ValueError(f"expected a (rows, {n_features}) matrix, got shape {matrix.shape}")
    return matrix


def predict(
    flat: FlatEnsemble,
    matrix: np.ndarray,
    *,
    raw_margin: bool = False,
    num_threads: int | None = None,
) -> np.ndarray:
    """Propensities (or raw margins) of every row of ``matrix``.

    Parameters
    ----------
    flat
        The flattened ensemble.
    matrix
        ``(rows, n_features)`` values in ``feature_names`` order, categorical codes as floats.
    raw_margin
        Return the summed leaf values instead of probabilities.
    num_threads
        Threads for the batch (``None``: numba's configured count; ``1``: serial kernel).
        Batches under :data:`PARALLEL_MIN_ROWS` rows always run serially.
    """
    matrix = _as_matrix(matrix, flat.n_features)
    out = np.empty(matrix.shape[0], dtype=np.float64)
    if matrix.shape[0] == 0:
        return out
    arguments = (
        matrix,
        flat.roots,
        flat.depths,
        flat.nodes,
        flat.children,
        flat.values,
        flat.cat_bounds,
        flat.cat_bits,
        0.0 if raw_margin else flat.sigmoid,
        out,
    )
    most = max_threads()
    threads = most if num_threads is None else int(num_threads)
    if threads <= 1 or matrix.shape[0] < PARALLEL_MIN_ROWS:
        _score_serial(*arguments)
        return out
    with _parallel_launch:
        previous = numba.get_num_threads()
        numba.set_num_threads(min(threads, most))
        try:
            _score_parallel(*arguments)
        finally:
            numba.set_num_threads(previous)
    return out


def predict_one(flat: FlatEnsemble, row: np.ndarray, *, raw_margin: bool = False) -> float:
    """Score one record: a float64 vector of ``n_features`` values (propensity or margin).

    The caller guarantees the length (the kernel does not check bounds).
    """
    return float(
        _score_one(
            row,
            flat.roots,
            flat.depths,
            flat.nodes,
            flat.children,
            flat.values,
            flat.cat_bounds,
            flat.cat_bits,
            0.0 if raw_margin else flat.sigmoid,
        )
    )


def path_contributions(flat: FlatEnsemble, matrix: np.ndarray) -> np.ndarray:
    """Saabas path contributions per row and feature, in margin (log-odds) units.

    Along each tree's decision path, the change of the node value from parent to child is
    credited to the parent's split feature; the sum over trees plus
    :meth:`~.flat.FlatEnsemble.bias` is the raw margin.
    """
    matrix = _as_matrix(matrix, flat.n_features)
    if matrix.shape[0] == 0:
        return np.zeros((0, flat.n_features), dtype=np.float64)
    with _parallel_launch:
        result = _path_contributions(
            matrix,
            flat.roots,
            flat.nodes,
            flat.children,
            flat.values,
            flat.cat_bounds,
            flat.cat_bits,
            flat.n_features,
        )
    return np.asarray(result, dtype=np.float64)
