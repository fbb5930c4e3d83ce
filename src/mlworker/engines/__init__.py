"""Propensity scoring engines (seed 003): one module per engine behind :class:`ScoringEngine`.

``ENGINES`` maps the seed's ``modelType`` to the module implementing it; modules are imported
on first use, so a process that never scores with gradient-boosted trees never loads their
compiled kernel, nor an HTTP client for the external endpoint.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, cast

from mlworker.egress import EgressPolicy
from mlworker.engines._base import (
    CUSTOMER_ID,
    OFFER_ID,
    EngineConfig,
    Explanation,
    IncrementalEngine,
    ScoringEngine,
    as_outcomes,
    candidate_frame,
    feature_columns,
    sigmoid,
)

#: ``modelType`` → module defining ``Engine`` (a :class:`ScoringEngine`).
ENGINES: dict[str, str] = {
    "scorecard": "mlworker.engines.scorecard",
    "bayesian": "mlworker.engines.bayesian",
    "logistic_regression": "mlworker.engines.logistic_regression",
    "gradient_boosted": "mlworker.engines.gradient_boosted",
    "thompson_bandit": "mlworker.engines.thompson_bandit",
    "epsilon_greedy": "mlworker.engines.epsilon_greedy",
    "neural_cf": "mlworker.engines.neural_cf",
    "online_learner": "mlworker.engines.online_learner",
    "external_endpoint": "mlworker.engines.external_endpoint",
}


def engine_class(kind: str) -> type[ScoringEngine]:
    """Return the engine class of ``kind``.

    Raises
    ------
    KeyError
        ``kind`` is not one of :data:`ENGINES`.
    """
    module = importlib.import_module(ENGINES[kind])
    return cast(type[ScoringEngine], module.Engine)


def config_of(
    kind: str,
    config: Mapping[str, Any] | None = None,
    *,
    egress: EgressPolicy | None = None,
    check_egress: bool = True,
) -> EngineConfig:
    """Validate ``config`` (camelCase or snake_case) against ``kind``'s config model.

    ``egress`` is the operator's policy for engines that call out (it travels in the
    validation context); without it such engines get the default, deny-internal policy.
    ``check_egress=False`` skips the checks made when a tenant saves a config (for stored
    configs: the policy still refuses their calls at connect time).

    Raises
    ------
    pydantic.ValidationError
        A field is unknown or has a bad value (or names a target the policy denies).
    """
    context: dict[str, Any] = {"check_egress": check_egress}
    if egress is not None:
        context["egress"] = egress
    return engine_class(kind).Config.model_validate(dict(config or {}), context=context)


def build_engine(
    kind: str,
    config: Mapping[str, Any] | EngineConfig | None = None,
    *,
    state: Mapping[str, Any] | None = None,
    random_state: int = 0,
    egress: EgressPolicy | None = None,
) -> ScoringEngine:
    """Construct an engine of ``kind``, restoring ``state`` when given.

    ``egress`` is the operator's egress policy (see :func:`config_of`); a config already
    validated is validated again under it. The config is taken as saved: what the policy
    refuses fails at connect time (with a stable reason), not here.
    """
    cls = engine_class(kind)
    if isinstance(config, EngineConfig) and egress is None:
        validated = config
    else:
        raw = config.model_dump(by_alias=True) if isinstance(config, EngineConfig) else config
        validated = config_of(kind, raw, egress=egress, check_egress=False)
    engine = cast(Any, cls)(validated, random_state=random_state)
    if state:
        engine.load_state(state)
    return cast(ScoringEngine, engine)


__all__ = [
    "CUSTOMER_ID",
    "ENGINES",
    "OFFER_ID",
    "EngineConfig",
    "Explanation",
    "IncrementalEngine",
    "ScoringEngine",
    "as_outcomes",
    "build_engine",
    "candidate_frame",
    "config_of",
    "engine_class",
    "feature_columns",
    "sigmoid",
]
