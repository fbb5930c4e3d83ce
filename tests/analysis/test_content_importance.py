from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import r2_score

from mlworker.analysis.content.importance import (
    MAX_DEPTH,
    MIN_SAMPLES_LEAF,
    contrast_values,
    fit_forest,
    forest_predict,
    permutation_importance,
    signed_effects,
    split_rows,
    weighted_r2,
)


def _planted(rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dense = rng.random((rows, 2))
    word = (rng.random(rows) < 0.2) * rng.uniform(0.3, 0.8, rows)  # a TF-IDF-like sparse column
    noise = (rng.random(rows) < 0.1) * rng.random(rows)
    flag = (rng.random(rows) < 0.5).astype(float)
    X = np.column_stack([dense, word, noise, flag])
    y = 1 + 2 * X[:, 0] + 3 * (word > 0) - 1 * flag + 0.1 * rng.standard_normal(rows)
    weights = rng.uniform(0.5, 2.0, rows)
    return X, y, weights


def test_permutation_importance_equals_sklearn_given_the_same_seed() -> None:
    X, y, weights = _planted()
    forest = RandomForestRegressor(n_estimators=15, random_state=0).fit(X[:300], y[:300])
    holdout, target, w = X[300:], y[300:], weights[300:]
    reference = sklearn_permutation_importance(
        forest, holdout, target, sample_weight=w, n_repeats=4, random_state=0, scoring="r2"
    )
    # sklearn draws one seed for every column's RandomState from random_state.
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max + 1))
    mean, std = permutation_importance(
        forest, sp.csr_matrix(holdout), target, w, [0, 2, 3, 4], n_repeats=4, seed=seed
    )
    np.testing.assert_allclose(mean, reference.importances_mean[[0, 2, 3, 4]], atol=1e-12)
    np.testing.assert_allclose(std, reference.importances_std[[0, 2, 3, 4]], atol=1e-12)
    assert mean[0] > 0.1 and mean[1] > 0.1 and abs(mean[2]) < 0.05


def test_weighted_r2_is_sklearns() -> None:
    rng = np.random.default_rng(1)
    observed, predicted, weights = rng.random(50), rng.random(50), rng.random(50)
    assert weighted_r2(observed, predicted, weights) == pytest.approx(
        r2_score(observed, predicted, sample_weight=weights)
    )
    assert weighted_r2(np.ones(4), np.zeros(4)) is None


def test_signed_effects_recover_the_planted_directions() -> None:
    X, y, _ = _planted(600)
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    matrix = sp.csr_matrix(X)
    low, high = contrast_values(matrix, [0, 2, 4], np.array([False, False, True, True, True]))
    difference, relative = signed_effects(forest, matrix, [0, 2, 4], low, high)
    assert difference[0] > 0.5  # x0: upper vs lower quartile, slope 2
    assert difference[1] == pytest.approx(3.0, abs=0.5)  # the word: +3
    assert difference[2] == pytest.approx(-1.0, abs=0.3)  # the flag: −1
    assert relative[1] > 0 > relative[2]


def test_contrast_values() -> None:
    matrix = sp.csr_matrix(
        np.array([[0.0, 0.0, 1.0], [0.3, 1.0, 2.0], [0.5, 0.0, 3.0], [0.7, 1.0, 4.0], [0, 0, 5]])
    )
    low, high = contrast_values(matrix, [0, 1, 2], np.array([True, True, False]))
    assert low.tolist() == [0.0, 0.0, 2.0]
    assert high.tolist() == [0.5, 1.0, 4.0]


def test_forest_is_bounded_seeded_and_scored_on_held_out_rows() -> None:
    X, y, weights = _planted(500)
    matrix = sp.csr_matrix(X)
    first = fit_forest(matrix, y, weights, random_state=3)
    second = fit_forest(matrix, y, weights, random_state=3)
    assert first.model.max_depth == MAX_DEPTH and first.model.min_samples_leaf == MIN_SAMPLES_LEAF
    assert first.holdout.size == 100 and np.intersect1d(first.train, first.holdout).size == 0
    assert first.r2_holdout is not None and first.r2_holdout > 0.8
    assert first.r2_out_of_bag is not None and first.r2_out_of_bag > 0.8
    repeated = [forest_predict(forest.model, matrix) for forest in (first, first, second)]
    np.testing.assert_array_equal(repeated[0], repeated[1])
    np.testing.assert_array_equal(repeated[0], repeated[2])
    np.testing.assert_allclose(repeated[0], first.model.predict(matrix), rtol=1e-12)
    assert first.parameters()["holdoutCount"] == 100


def test_split_rows_is_a_seeded_partition() -> None:
    train, holdout = split_rows(101, 7)
    assert np.array_equal(np.sort(np.concatenate([train, holdout])), np.arange(101))
    assert holdout.size == 20
    assert np.array_equal(split_rows(101, 7)[1], holdout)
    assert not np.array_equal(split_rows(101, 8)[1], holdout)
