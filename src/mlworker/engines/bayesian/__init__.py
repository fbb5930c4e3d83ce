"""The Bayesian (naive Bayes) propensity engine (seed 003, "Bayesian (Naive Bayes)").

``Engine`` is the engine behind :class:`mlworker.engines.ScoringEngine` and
:class:`mlworker.engines.IncrementalEngine`; ``BayesianConfig`` its settings. The package is
split by concern: count statistics (``_statistics``), one predictor's bins and counts
(``_predictors``), reading candidate frames (``_frames``) and the model (``_engine``).
"""

from __future__ import annotations

from mlworker.engines.bayesian._config import BayesianConfig
from mlworker.engines.bayesian._engine import Engine

__all__ = ["BayesianConfig", "Engine"]
