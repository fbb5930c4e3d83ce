"""Trained LightGBM boosters covering every kind of split, and held-out rows full of edge cases.

Each model is trained once per test session on planted data chosen to make LightGBM emit the
split kind under test (categorical bitsets, ``missing_type`` None / NaN / Zero), then exported.
Held-out rows mix ordinary values with NaN, exact zeros, ``±kZeroThreshold``, infinities and,
for categorical columns, unseen, negative, fractional and beyond-``int32`` codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from mlworker.engines.gradient_boosted import GradientBoostedConfig, train_booster
from mlworker.engines.trees import Ensemble, FeatureEncoder, FlatEnsemble, export_booster
from mlworker.engines.trees.kernel import K_ZERO_THRESHOLD

N_CATEGORIES = 12


@dataclass(frozen=True)
class Model:
    """A booster, its export, and held-out rows to compare them on."""

    name: str
    booster: Any
    ensemble: Ensemble
    flat: FlatEnsemble
    holdout: np.ndarray


def _numeric_edges(rng: np.random.Generator, rows: int) -> np.ndarray:
    column = rng.normal(size=rows)
    edges = np.array(
        [np.nan, 0.0, -0.0, K_ZERO_THRESHOLD, -K_ZERO_THRESHOLD, 1e-40, -1e-40, np.inf, -np.inf]
    )
    picks = rng.random(rows) < 0.3
    column[picks] = rng.choice(edges, picks.sum())
    return column


def _categorical_edges(rng: np.random.Generator, rows: int) -> np.ndarray:
    column = rng.integers(0, N_CATEGORIES, rows).astype(np.float64)
    edges = np.array(
        [np.nan, N_CATEGORIES, N_CATEGORIES + 40, -1.0, -0.5, -3.0, 2.7, 3e9, 2147483647.0, 1e-40]
    )
    picks = rng.random(rows) < 0.3
    column[picks] = rng.choice(edges, picks.sum())
    return column


def _holdout(rng: np.random.Generator, categorical: list[int], width: int) -> np.ndarray:
    rows = 3000
    columns = [
        _categorical_edges(rng, rows) if index in categorical else _numeric_edges(rng, rows)
        for index in range(width)
    ]
    return np.column_stack(columns)


def _train(
    name: str,
    matrix: np.ndarray,
    outcomes: np.ndarray,
    categorical: list[int],
    config: GradientBoostedConfig,
    extra: dict[str, Any] | None = None,
) -> Model:
    names = tuple(f"x{index}" for index in range(matrix.shape[1]))
    codes = {str(value): value for value in range(N_CATEGORIES)}
    encoder = FeatureEncoder(names, {names[index]: codes for index in categorical})
    booster = train_booster(matrix, outcomes, categorical, config, extra_params=extra)
    ensemble = Ensemble.from_json(export_booster(booster, encoder))
    rng = np.random.default_rng(len(name))
    holdout = _holdout(rng, categorical, matrix.shape[1])
    return Model(name, booster, ensemble, FlatEnsemble.from_ensemble(ensemble), holdout)


def build_model(name: str) -> Model:
    """Train the model called ``name`` (see :data:`MODEL_NAMES`)."""
    rng = np.random.default_rng(7)
    rows = 4000
    small = GradientBoostedConfig(nEstimators=40, numLeaves=15)
    if name == "numeric":
        # The default 100 trees x 31 leaves; no missing values, so every split says "None".
        matrix = rng.normal(size=(rows, 6))
        margin = matrix[:, 0] + matrix[:, 1] * matrix[:, 2] - np.abs(matrix[:, 3])
        outcomes = (margin + rng.normal(size=rows) > 0).astype(np.float64)
        return _train(name, matrix, outcomes, [], GradientBoostedConfig())
    if name == "categorical":
        matrix = np.column_stack(
            [rng.normal(size=rows), rng.integers(0, N_CATEGORIES, rows), rng.normal(size=rows)]
        ).astype(np.float64)
        matrix[rng.random(rows) < 0.05, 1] = np.nan
        effect = np.array([1.5, -1.0, 0.5, 2.0, -2.0, 0.0, 1.0, -0.5, 0.8, -1.5, 0.3, 1.2])
        category_effect = effect[np.nan_to_num(matrix[:, 1], nan=5).astype(int)]
        margin = matrix[:, 0] + category_effect
        outcomes = (margin + rng.normal(size=rows) > 0.3).astype(np.float64)
        return _train(name, matrix, outcomes, [1], small)
    matrix = rng.normal(size=(rows, 4))
    matrix[rng.random((rows, 4)) < 0.3] = 0.0
    matrix[rng.random((rows, 4)) < 0.08] = np.nan
    margin = np.nan_to_num(matrix[:, 0], nan=1.0) + (matrix[:, 1] == 0) - matrix[:, 2]
    outcomes = (margin + rng.normal(size=rows) > 0.3).astype(np.float64)
    extra = {
        "nan_missing": {},
        "zero_missing": {"zero_as_missing": True},
        "missing_ignored": {"use_missing": False},
    }[name]
    return _train(name, matrix, outcomes, [], small, extra)


#: Models by the split kind they exercise.
MODEL_NAMES = ("numeric", "categorical", "nan_missing", "zero_missing", "missing_ignored")
_CACHE: dict[str, Model] = {}


@pytest.fixture(params=MODEL_NAMES)
def model(request: pytest.FixtureRequest) -> Model:
    """Each trained model in turn (trained once per session)."""
    name = str(request.param)
    if name not in _CACHE:
        _CACHE[name] = build_model(name)
    return _CACHE[name]


@pytest.fixture
def categorical_model() -> Model:
    """The model with categorical splits."""
    if "categorical" not in _CACHE:
        _CACHE["categorical"] = build_model("categorical")
    return _CACHE["categorical"]
