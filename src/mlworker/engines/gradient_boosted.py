"""Gradient-boosted trees (seed 003, "Gradient Boosted"): LightGBM trains, tree JSON scores.

``fit`` encodes the interactions (numeric columns as they are, other columns as integer codes
passed to LightGBM as categorical features), trains a binary LightGBM booster in-process and
exports it at once to portable tree JSON (:mod:`mlworker.engines.trees`). The booster is then
dropped: every score, here or in another service that loads :meth:`Engine.state`, comes from
that JSON through a compiled kernel and equals ``booster.predict`` to within 1e-9. An
untrained engine scores 0.5 ("All scores are 0.5: the model has no trained trees yet").

Explanations are Saabas path contributions in log-odds, one ``{"field", "contribution"}`` per
feature the paths split on, largest first; no confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from mlworker.engines._base import EngineConfig, Explanation, as_outcomes, feature_columns
from mlworker.engines.trees import (
    Ensemble,
    FeatureEncoder,
    FlatEnsemble,
    contribution_details,
    export_booster,
    path_contributions,
    predict,
    predict_one,
)
from mlworker.errors import EngineUnavailable, InvalidInput, NoUsableColumns

#: LightGBM threads while training. Column-wise histograms with ``deterministic`` make the
#: trees independent of this number; it stays small because the worker runs jobs side by side.
FIT_THREADS = 2
#: Score of an engine without trees (the seed's cold start).
UNTRAINED_SCORE = 0.5


class GradientBoostedConfig(EngineConfig):
    """LightGBM hyperparameters, named and defaulted as in the seed's table.

    Examples
    --------
    >>> GradientBoostedConfig(numLeaves=15).model_dump(by_alias=True)["numLeaves"]
    15
    """

    num_leaves: int = Field(31, ge=2, le=131_072, description="Maximum leaves per tree.")
    max_depth: int = Field(-1, ge=-1, description="Depth cap; -1 leaves it to numLeaves.")
    learning_rate: float = Field(
        0.05, gt=0.0, le=1.0, allow_inf_nan=False, description="Shrinkage per tree."
    )
    n_estimators: int = Field(100, ge=1, le=10_000, description="Number of boosting trees.")
    min_child_samples: int = Field(20, ge=0, description="Minimum rows per leaf.")
    reg_alpha: float = Field(0, ge=0.0, allow_inf_nan=False, description="L1 on leaf weights.")
    reg_lambda: float = Field(0, ge=0.0, allow_inf_nan=False, description="L2 on leaf weights.")
    subsample: float = Field(
        1.0, gt=0.0, le=1.0, allow_inf_nan=False, description="Row sampling ratio per tree."
    )
    colsample_bytree: float = Field(
        1.0, gt=0.0, le=1.0, allow_inf_nan=False, description="Feature sampling ratio per tree."
    )

    @field_validator("max_depth")
    @classmethod
    def _depth_is_positive_or_unlimited(cls, value: int) -> int:
        if value == 0:
            raise ValueError("maxDepth must be -1 (no cap) or at least 1")
        return value


def lightgbm_params(config: GradientBoostedConfig, random_state: int = 0) -> dict[str, Any]:
    """LightGBM training parameters for ``config`` (seeded, deterministic, quiet).

    Examples
    --------
    >>> params = lightgbm_params(GradientBoostedConfig(subsample=0.8), random_state=3)
    >>> params["bagging_fraction"], params["bagging_freq"], params["seed"]
    (0.8, 1, 3)
    """
    return {
        "objective": "binary",
        "num_leaves": config.num_leaves,
        "max_depth": config.max_depth,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_child_samples,
        "lambda_l1": config.reg_alpha,
        "lambda_l2": config.reg_lambda,
        "bagging_fraction": config.subsample,
        # LightGBM only bags when a frequency is set; the seed's subsample means "every tree".
        "bagging_freq": 1 if config.subsample < 1.0 else 0,
        "feature_fraction": config.colsample_bytree,
        "seed": random_state % 2**31,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": FIT_THREADS,
        "verbose": -1,
    }


def train_booster(
    matrix: np.ndarray,
    outcomes: np.ndarray,
    categorical_indices: list[int],
    config: GradientBoostedConfig,
    *,
    random_state: int = 0,
    extra_params: Mapping[str, Any] | None = None,
) -> Any:
    """Train a binary ``lightgbm.Booster`` on an encoded matrix.

    Parameters
    ----------
    matrix
        ``(rows, features)`` float64, categorical columns as non-negative codes or NaN.
    outcomes
        0/1 per row.
    categorical_indices
        Columns LightGBM treats as categorical.
    config
        The engine's hyperparameters.
    random_state
        LightGBM's ``seed``.
    extra_params
        LightGBM parameters added on top (e.g. ``zero_as_missing``), for experiments and tests.

    Raises
    ------
    EngineUnavailable
        LightGBM is not installed (the ``boosting`` extra).
    """
    try:
        import lightgbm
    except ImportError as error:  # pragma: no cover - the extra is installed where we test
        raise EngineUnavailable(
            "gradient_boosted training needs LightGBM: install mlworker[boosting]"
        ) from error
    params = {**lightgbm_params(config, random_state), **(extra_params or {})}
    dataset = lightgbm.Dataset(
        matrix,
        label=outcomes,
        feature_name=[f"f{index}" for index in range(matrix.shape[1])],
        categorical_feature=categorical_indices,
        params={"verbose": -1},
        free_raw_data=True,
    )
    return lightgbm.train(params, dataset, num_boost_round=config.n_estimators)


class Engine:
    """The ``gradient_boosted`` scoring engine.

    Parameters
    ----------
    config
        Hyperparameters (:class:`GradientBoostedConfig`).
    random_state
        Seed of LightGBM's bagging and feature sampling.

    Attributes
    ----------
    ensemble_
        The portable tree ensemble once trained (or loaded), else ``None``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"visits": rng.integers(0, 10, 400)})
    >>> outcomes = (frame["visits"].to_numpy() >= 5).astype(float)
    >>> config = GradientBoostedConfig(nEstimators=20, learningRate=0.3)
    >>> engine = Engine(config).fit(frame, outcomes)
    >>> engine.score(pd.DataFrame({"visits": [1, 8]})).round(3).tolist()
    [0.001, 0.999]
    """

    kind: ClassVar[str] = "gradient_boosted"
    Config: ClassVar[type[EngineConfig]] = GradientBoostedConfig

    def __init__(self, config: GradientBoostedConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state
        self.ensemble_: Ensemble | None = None
        self._flat: FlatEnsemble | None = None

    @property
    def is_trained(self) -> bool:
        """Whether the engine has trees."""
        return self.ensemble_ is not None

    @property
    def feature_names(self) -> list[str]:
        """Columns of :meth:`encode`'s matrix (empty while untrained)."""
        return [] if self.ensemble_ is None else list(self.ensemble_.encoder.feature_names)

    def fit(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> Self:
        """Train LightGBM on the interactions and keep only its tree JSON.

        Raises
        ------
        ValueError
            Outcomes are not 0/1 or do not match the rows; there are no rows or no features.
        """
        labels = as_outcomes(outcomes, len(interactions))
        if len(interactions) == 0:
            raise InvalidInput("gradient_boosted needs at least one interaction to learn from")
        columns = feature_columns(interactions)
        if not columns:
            raise NoUsableColumns(
                "gradient_boosted needs feature columns besides customerId and offerId"
            )
        encoder = FeatureEncoder.fit(interactions, columns)
        matrix = encoder.transform(interactions)
        booster = train_booster(
            matrix,
            labels,
            encoder.categorical_indices,
            self.config,
            random_state=self.random_state,
        )
        self._use(Ensemble.from_json(export_booster(booster, encoder)))
        return self

    def _use(self, ensemble: Ensemble | None) -> None:
        self.ensemble_ = ensemble
        self._flat = None if ensemble is None else FlatEnsemble.from_ensemble(ensemble)

    def encode(self, candidates: pd.DataFrame) -> np.ndarray:
        """Candidates as the float64 matrix the trees read (``feature_names`` order)."""
        if self.ensemble_ is None:
            return np.empty((len(candidates), 0), dtype=np.float64)
        return self.ensemble_.encoder.transform(candidates)

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Propensities from the tree JSON; 0.5 for every candidate while untrained."""
        if self._flat is None:
            return np.full(len(candidates), UNTRAINED_SCORE, dtype=np.float64)
        return predict(self._flat, self.encode(candidates))

    def score_matrix(self, matrix: np.ndarray, *, num_threads: int | None = None) -> np.ndarray:
        """Propensities of an already encoded ``(rows, features)`` matrix.

        ``num_threads`` bounds the kernel's threads (``1``: serial); small batches run serially.
        """
        if self._flat is None:
            return np.full(np.shape(matrix)[0], UNTRAINED_SCORE, dtype=np.float64)
        return predict(self._flat, matrix, num_threads=num_threads)

    def score_row(self, values: np.ndarray) -> float:
        """Propensity of one encoded record (float64 values in ``feature_names`` order).

        The single-record hot path: no frame, no allocation beyond the result.
        """
        flat = self._flat
        if flat is None:
            return UNTRAINED_SCORE
        if (
            not isinstance(values, np.ndarray)
            or values.shape != (flat.n_features,)
            or values.dtype != np.float64
        ):
            values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
            if values.shape[0] != flat.n_features:
                raise ValueError(f"expected {flat.n_features} values, got {values.shape[0]}")
        return predict_one(flat, values)

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Per-feature path contributions (log-odds) for every candidate, largest first."""
        if self._flat is None or self.ensemble_ is None:
            return [Explanation(self.kind, UNTRAINED_SCORE) for _ in range(len(candidates))]
        matrix = self.encode(candidates)
        scores = predict(self._flat, matrix)
        _, contributions = path_contributions(self._flat, matrix)
        names = self.ensemble_.encoder.feature_names
        return [
            Explanation(self.kind, float(score), contribution_details(row, names))
            for score, row in zip(scores, contributions, strict=True)
        ]

    def state(self) -> dict[str, Any]:
        """Return the portable tree JSON (``{}`` while untrained)."""
        return {} if self.ensemble_ is None else self.ensemble_.to_json()

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Restore from :meth:`state`'s JSON (``{}`` makes the engine untrained).

        Raises
        ------
        InvalidInput
            The JSON is not a well-formed tree ensemble.
        """
        if not state:
            self._use(None)
            return self
        try:
            ensemble = Ensemble.from_json(state)
        except (ValueError, TypeError, KeyError) as error:
            raise InvalidInput(
                f"invalid gradient_boosted model state: {error}", field="modelState"
            ) from error
        self._use(ensemble)
        return self
