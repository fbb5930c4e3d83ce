"""Which model scores a candidate, and what is served when that model cannot answer.

Per candidate the first matching override wins — offer, then category, then channel — else
the default model. When the resolved model is unavailable (missing, not trained, circuit breaker
open) the candidate falls back to its pre-computed propensity, then to its priority, and the
answer says that it degraded and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["offer", "category", "channel"]
#: Scopes in the order they are consulted: the most specific first.
SCOPE_ORDER: tuple[Scope, ...] = ("offer", "category", "channel")


@dataclass(frozen=True, slots=True)
class ModelOverride:
    """Score candidates of one offer, category or channel with ``model_key``."""

    scope: Scope
    key: str
    model_key: str


@dataclass(frozen=True, slots=True)
class ResolutionConfig:
    """The default model and the overrides (the seed's ``{defaultModel, overrides}``)."""

    default_model: str | None
    overrides: tuple[ModelOverride, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolutionConfig:
        """Read the seed's camelCase JSON.

        Examples
        --------
        >>> config = ResolutionConfig.from_dict({"defaultModel": "m_default", "overrides": [
        ...     {"scope": "channel", "key": "chan_email", "modelKey": "m_email"}]})
        >>> config.overrides[0].model_key
        'm_email'
        """
        overrides = []
        for item in data.get("overrides") or ():
            scope = item["scope"]
            if scope not in SCOPE_ORDER:
                raise ValueError(f"unknown override scope {scope!r}; use offer, category, channel")
            overrides.append(
                ModelOverride(scope=scope, key=str(item["key"]), model_key=str(item["modelKey"]))
            )
        default = data.get("defaultModel")
        return cls(
            default_model=None if default is None else str(default), overrides=tuple(overrides)
        )


def resolve_model(
    config: ResolutionConfig,
    *,
    offer_id: str,
    category: str | None = None,
    channel: str | None = None,
) -> tuple[str | None, str]:
    """Return ``(model_key, matched_by)`` for one candidate.

    ``matched_by`` is the scope that matched or ``"default"``; ``(None, "none")`` when nothing
    applies.

    Examples
    --------
    >>> config = ResolutionConfig.from_dict({"defaultModel": "model_bayesian_v3", "overrides": [
    ...     {"scope": "channel", "key": "chan_email", "modelKey": "model_email_bayesian"},
    ...     {"scope": "offer", "key": "offer_premium_cc", "modelKey": "model_premium_scorecard"},
    ...     {"scope": "category", "key": "cat_loans", "modelKey": "model_loan_gb"}]})
    >>> resolve_model(config, offer_id="offer_premium_cc", category="cat_loans",
    ...               channel="chan_email")
    ('model_premium_scorecard', 'offer')
    >>> resolve_model(config, offer_id="o2", category="cat_loans", channel="chan_email")
    ('model_loan_gb', 'category')
    >>> resolve_model(config, offer_id="o3", channel="chan_sms")
    ('model_bayesian_v3', 'default')
    """
    wanted: dict[Scope, str | None] = {"offer": offer_id, "category": category, "channel": channel}
    for scope in SCOPE_ORDER:
        key = wanted[scope]
        if key is None:
            continue
        for override in config.overrides:
            if override.scope == scope and override.key == key:
                return override.model_key, scope
    if config.default_model is not None:
        return config.default_model, "default"
    return None, "none"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The propensity served for a candidate and where it came from."""

    score: float
    source: Literal["model", "precomputed", "priority"]
    model_key: str | None
    degraded: bool
    reason: str | None = None


def score_with_fallback(
    *,
    model_key: str | None,
    model_score: float | None,
    unavailable_reason: str | None = None,
    precomputed: float | None = None,
    priority: float,
) -> Resolution:
    """Serve the model's score, else the pre-computed propensity, else ``priority / 100``.

    Parameters
    ----------
    model_key
        The resolved model (``None`` when none applies).
    model_score
        Its score, or ``None`` when it could not answer.
    unavailable_reason
        Why it could not (``"circuit breaker open"``, ``"model not trained"``, …).
    precomputed
        A propensity computed earlier for this offer, if any.
    priority
        The offer's priority, 0–100.

    Examples
    --------
    >>> score_with_fallback(model_key="m", model_score=0.31, priority=70).source
    'model'
    >>> fallback = score_with_fallback(model_key="m", model_score=None,
    ...     unavailable_reason="circuit breaker open", precomputed=None, priority=70)
    >>> fallback.score, fallback.source, fallback.degraded
    (0.7, 'priority', True)
    """
    if model_score is not None:
        return Resolution(
            score=float(model_score), source="model", model_key=model_key, degraded=False
        )
    reason = unavailable_reason or ("no model applies" if model_key is None else "no score")
    if precomputed is not None:
        return Resolution(
            score=float(precomputed),
            source="precomputed",
            model_key=model_key,
            degraded=True,
            reason=reason,
        )
    prior = min(1.0, max(0.0, priority / 100.0))
    return Resolution(
        score=prior, source="priority", model_key=model_key, degraded=True, reason=reason
    )
