"""Online learner: logistic regression updated by one SGD step per observed outcome.

The seed's "Online Learner": weights start at zero and every outcome moves them by one
stochastic gradient step on the log-loss with the decaying learning rate

    ``lr_t = learningRate / (1 + decayRate * step)``,

where ``step`` counts the updates applied so far. With ``l2 > 0`` each step also shrinks the
weights (not the bias) as SGD on ``logloss + l2 * ||w||^2 / 2`` does.

Features are learned from the stream itself, so no batch pass is ever needed: a numeric field
(the first value seen decides; booleans and numeric text count as numbers) is standardised with
its running mean and variance (Welford's algorithm), updated with each example before that
example is encoded, which bounds an early ``|z|`` by ``sqrt(count - 1)``; a categorical field
gets one ``"field=value"`` feature per value the first time it is seen (at most
:data:`~mlworker.engines._features.MAX_LEVELS` per field), with a weight starting at zero. A
missing value, or text in a numeric field, contributes nothing. Scoring encodes candidates with
the current statistics.

Examples
--------
>>> engine = Engine(OnlineLearnerConfig(learningRate=0.5))
>>> engine.score(pd.DataFrame({"tier": ["gold"]})).tolist()
[0.5]
>>> for _ in range(20):
...     engine.learn_one({"tier": "gold", "offerId": "o1"}, 1)
...     engine.learn_one({"tier": "bronze", "offerId": "o1"}, 0)
>>> gold, bronze = engine.score(pd.DataFrame({"tier": ["gold", "bronze"]}))
>>> bool(gold > 0.7 > 0.3 > bronze), engine.state()["step"]
(True, 40)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from pydantic import Field

from mlworker.engines._base import (
    RESERVED_COLUMNS,
    EngineConfig,
    Explanation,
    as_outcomes,
    sigmoid,
)
from mlworker.engines._features import (
    MAX_LEVELS,
    CategoricalField,
    FeatureEncoder,
    NumericField,
    canonical_text,
)

#: Below this the lazily applied L2 shrinkage factor is folded back into the weights.
_SMALLEST_WEIGHT_SCALE = 1e-9


class OnlineLearnerConfig(EngineConfig):
    """Online learner configuration (seed "Online Learner").

    ``l2`` (weight decay per step) and ``epochs`` (passes over the rows in :meth:`Engine.fit`)
    are ML Worker additions; their defaults reproduce the seed's plain single-pass SGD.
    """

    learning_rate: float = Field(default=0.01, gt=0, allow_inf_nan=False)
    decay_rate: float = Field(default=0.001, ge=0, allow_inf_nan=False)
    l2: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    epochs: int = Field(default=1, ge=1, le=10_000)


def _number(value: Any) -> float | None:
    """Read a streamed value as a finite number, when it is one."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _logistic(margin: float) -> float:
    """Return the logistic function of one margin without overflow."""
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    exp = math.exp(margin)
    return exp / (1.0 + exp)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


@dataclass(slots=True)
class _RunningField:
    """One streamed field: Welford statistics if numeric, else the levels seen so far."""

    numeric: bool
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    levels: list[str] = field(default_factory=list)

    @property
    def scale(self) -> float:
        spread = math.sqrt(self.m2 / self.count) if self.count else 0.0
        # Same guard as the batch encoder: summation noise is not a spread.
        return spread if spread > 1e-12 * max(1.0, abs(self.mean)) else 1.0

    def observe(self, number: float) -> float:
        """Fold ``number`` into the statistics and return it standardised."""
        self.count += 1
        delta = number - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (number - self.mean)
        return (number - self.mean) / self.scale


class Engine:
    """Streaming SGD logistic regression (implements :class:`IncrementalEngine`).

    Parameters
    ----------
    config
        Validated :class:`OnlineLearnerConfig`.
    random_state
        Stored for the engine contract; updates follow the stream's order, nothing is random.

    Attributes
    ----------
    fields_ : dict
        Running statistics per field, in order of first appearance.
    feature_index_ : dict[str, int]
        Feature name → position in the weight vector, in order of creation.
    bias_ : float
        Intercept on the logit scale.
    step_ : int
        Updates applied (drives the learning-rate decay).
    """

    kind: ClassVar[str] = "online_learner"
    Config: ClassVar[type[EngineConfig]] = OnlineLearnerConfig

    def __init__(self, config: OnlineLearnerConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state

    @property
    def is_trained(self) -> bool:
        """Whether at least one outcome has been learned."""
        return getattr(self, "step_", 0) > 0

    def _reset(self) -> None:
        self.fields_: dict[str, _RunningField] = {}
        self.feature_index_: dict[str, int] = {}
        self.feature_owner_: list[str] = []
        # Effective weights are weight_scale_ * raw weights, so L2 shrinkage costs O(1) a step.
        self.raw_weights_: list[float] = []
        self.weight_scale_ = 1.0
        self.bias_ = 0.0
        self.step_ = 0
        self._snapshot: tuple[FeatureEncoder, np.ndarray] | None = None

    def _feature(self, name: str, owner: str) -> int | None:
        """Return the position of feature ``name`` of ``owner``, created at weight 0 if new."""
        position = self.feature_index_.get(name)
        if position is None:
            position = len(self.raw_weights_)
            self.feature_index_[name] = position
            self.feature_owner_.append(owner)
            self.raw_weights_.append(0.0)
        # A name another field already owns (a field literally called "tier=gold") is skipped.
        return position if self.feature_owner_[position] == owner else None

    def _observe(self, candidate: Mapping[str, Any]) -> list[tuple[int, float]]:
        """Update the field statistics with one example and encode it sparsely."""
        active: list[tuple[int, float]] = []
        for key, value in candidate.items():
            name = str(key)
            if name in RESERVED_COLUMNS or _is_missing(value):
                continue
            number = _number(value)
            running = self.fields_.get(name)
            if running is None:
                if number is not None and name in self.feature_index_:
                    continue  # the name is taken by a one-hot feature
                running = self.fields_[name] = _RunningField(numeric=number is not None)
            if running.numeric:
                position = self._feature(name, name)
                if number is not None and position is not None:
                    active.append((position, running.observe(number)))
                continue
            level = canonical_text(value)
            feature = f"{name}={level}"
            if feature not in self.feature_index_ and len(running.levels) >= MAX_LEVELS:
                continue
            position = self._feature(feature, name)
            if position is not None:
                if level not in running.levels:
                    running.levels.append(level)
                active.append((position, 1.0))
        return active

    def learn_one(self, candidate: Mapping[str, Any], outcome: float) -> None:
        """Take one SGD step on a candidate (attributes, ids ignored) and its 0/1 outcome.

        Raises
        ------
        ValueError
            ``outcome`` is not 0 or 1.
        """
        try:
            label = float(outcome)
        except (TypeError, ValueError):
            label = math.nan
        if label not in (0.0, 1.0):
            raise ValueError(f"outcome must be 0 or 1, got {outcome!r}")
        self._learn(candidate, label)

    def _learn(self, candidate: Mapping[str, Any], label: float) -> None:
        if not hasattr(self, "step_"):
            self._reset()
        active = self._observe(candidate)
        weights, scale = self.raw_weights_, self.weight_scale_
        margin = self.bias_ + scale * sum(weights[i] * value for i, value in active)
        error = _logistic(margin) - label
        rate = self.config.learning_rate / (1.0 + self.config.decay_rate * self.step_)
        if self.config.l2 > 0:
            scale *= max(0.0, 1.0 - rate * self.config.l2)
            if scale < _SMALLEST_WEIGHT_SCALE:
                weights[:] = [weight * scale for weight in weights]
                scale = 1.0
        for position, value in active:
            weights[position] -= rate * error * value / scale
        self.weight_scale_ = scale
        self.bias_ -= rate * error
        self.step_ += 1
        self._snapshot = None

    def update(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> None:
        """Learn from each row in order, keeping what was learned before."""
        labels = as_outcomes(outcomes, len(interactions))
        for record, label in zip(interactions.to_dict("records"), labels, strict=True):
            self._learn({str(key): value for key, value in record.items()}, float(label))

    def fit(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> Self:
        """Forget everything, then stream the rows ``epochs`` times in order."""
        labels = as_outcomes(outcomes, len(interactions))
        self._reset()
        for _ in range(self.config.epochs):
            self.update(interactions, labels)
        return self

    def _weights(self) -> np.ndarray:
        return np.asarray(self.raw_weights_, dtype=np.float64) * self.weight_scale_

    def _encoder(self) -> tuple[FeatureEncoder, np.ndarray]:
        """Return an encoder over the current statistics and the weights in its feature order."""
        if self._snapshot is None:
            specs: list[NumericField | CategoricalField] = [
                NumericField(name, running.mean, running.scale)
                if running.numeric
                else CategoricalField(name, tuple(running.levels))
                for name, running in self.fields_.items()
                if not running.numeric or name in self.feature_index_
            ]
            encoder = FeatureEncoder(specs)
            weights = self._weights()
            order = [self.feature_index_[name] for name in encoder.feature_names]
            self._snapshot = (encoder, weights[order])
        return self._snapshot

    def _contributions(self, candidates: pd.DataFrame) -> tuple[FeatureEncoder, np.ndarray]:
        encoder, weights = self._encoder()
        return encoder, np.asarray(encoder.transform(candidates) * weights)

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Propensities under the current weights; 0.5 before any outcome."""
        if not self.is_trained:
            return np.full(len(candidates), 0.5)
        _, contributions = self._contributions(candidates)
        return sigmoid(contributions.sum(axis=1) + self.bias_)

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Per-field ``{"field", "contribution"}`` on the logit scale, largest first.

        The seed leaves online-learner explanations out; they are given here as for the
        logistic regression engine (logit = bias + contributions). None while untrained.
        """
        if not self.is_trained:
            return [Explanation(self.kind, 0.5) for _ in range(len(candidates))]
        encoder, contributions = self._contributions(candidates)
        scores = sigmoid(contributions.sum(axis=1) + self.bias_)
        return [
            Explanation(self.kind, float(score), details)
            for score, details in zip(scores, encoder.explain_rows(contributions), strict=True)
        ]

    def state(self) -> dict[str, Any]:
        """Return ``weights`` by feature name, ``bias``, ``step`` and the field statistics."""
        if not hasattr(self, "step_"):
            return {}
        return {
            "weights": dict(zip(self.feature_index_, self._weights().tolist(), strict=True)),
            "bias": float(self.bias_),
            "step": int(self.step_),
            "fields": [
                {
                    "name": name,
                    "kind": "numeric",
                    "count": running.count,
                    "mean": running.mean,
                    "m2": running.m2,
                }
                if running.numeric
                else {"name": name, "kind": "categorical", "levels": list(running.levels)}
                for name, running in self.fields_.items()
            ],
        }

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Restore what :meth:`state` returned; ``{}`` leaves the engine untrained.

        Raises
        ------
        ValueError
            The state is malformed or names weights no field owns.
        """
        self._reset()
        if not state:
            return self
        try:
            owners: dict[str, str] = {}
            for entry in state["fields"]:
                name = str(entry["name"])
                if entry["kind"] == "numeric":
                    running = _RunningField(
                        numeric=True,
                        count=int(entry["count"]),
                        mean=float(entry["mean"]),
                        m2=float(entry["m2"]),
                    )
                    owners[name] = name
                elif entry["kind"] == "categorical":
                    levels = [str(level) for level in entry["levels"]]
                    running = _RunningField(numeric=False, levels=levels)
                    owners.update({f"{name}={level}": name for level in levels})
                else:
                    raise ValueError(f"unknown field kind {entry['kind']!r}")
                self.fields_[name] = running
            for feature, weight in state["weights"].items():
                self.feature_index_[str(feature)] = len(self.raw_weights_)
                self.feature_owner_.append(owners[str(feature)])
                self.raw_weights_.append(float(weight))
            self.bias_ = float(state["bias"])
            self.step_ = int(state["step"])
        except (KeyError, TypeError) as error:
            self._reset()
            raise ValueError(f"malformed online learner state: {error!r}") from error
        return self
