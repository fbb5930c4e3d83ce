"""Estimators that misbehave on purpose, imported by the trial process through the table's
``module:Class`` path (the child process cannot see monkeypatching done in the test)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from mlworker.training.algorithms import Algorithm, Task
from mlworker.training.space import Choice, FloatRange, Hyperparameter


class SignalClassifier(ClassifierMixin, BaseEstimator):
    """A logistic model whose probabilities are blended with ``noise`` (seeded) uniform noise."""

    def __init__(self, noise: float = 0.0, random_state: int | None = None) -> None:
        self.noise = noise
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> SignalClassifier:
        self.classes_ = np.unique(y)
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        proba = np.asarray(self.model_.predict_proba(X))
        rng = np.random.default_rng(len(X))
        noisy = (1 - self.noise) * proba[:, 1] + self.noise * rng.random(len(X))
        return np.column_stack([1 - noisy, noisy])

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.predict_proba(X).argmax(axis=1))


class FlakyClassifier(SignalClassifier):
    """Refuses to fit when ``fail`` is true; with ``crash`` the whole process dies."""

    def __init__(
        self,
        fail: bool = False,
        crash: bool = False,
        strength: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.fail = fail
        self.crash = crash
        self.strength = strength
        self.random_state = random_state
        self.noise = 0.0

    def fit(self, X: Any, y: Any) -> FlakyClassifier:
        if self.crash:
            os._exit(17)
        if self.fail:
            raise ValueError("flaky estimator refused to fit")
        super().fit(X, y)
        return self


SIGNAL = Algorithm(
    "SignalClassifier",
    Task.CLASSIFICATION,
    "tests.training.estimators:SignalClassifier",
    "test estimator",
    cost=1,
    defaults={"noise": 0.0},
    space=(Hyperparameter("noise", FloatRange(0.0, 1.0)),),
)

FLAKY = Algorithm(
    "FlakyClassifier",
    Task.CLASSIFICATION,
    "tests.training.estimators:FlakyClassifier",
    "test estimator",
    cost=1,
    defaults={"fail": False},
    space=(
        Hyperparameter("fail", Choice((False, True))),
        Hyperparameter("strength", FloatRange(0.1, 1.0)),
    ),
)

CRASHING = Algorithm(
    "FlakyClassifier",
    Task.CLASSIFICATION,
    "tests.training.estimators:FlakyClassifier",
    "test estimator",
    cost=1,
    defaults={"crash": False},
    space=(
        Hyperparameter("crash", Choice((False, True))),
        Hyperparameter("strength", FloatRange(0.1, 1.0)),
    ),
)
