"""Auto-upgrade advice: when a model has outgrown its engine (seed 003, "Auto-Upgrade").

=================== ===================== ============================================
Current engine      Upgrade to            Trigger
=================== ===================== ============================================
scorecard           bayesian              more than 5 rules AND more than 100 samples
bayesian            logistic_regression   more than 500 samples AND AUC below 0.75
logistic_regression gradient_boosted      more than 5,000 samples AND AUC below 0.90
=================== ===================== ============================================

The last needs LightGBM (the ``boosting`` extra) to train. A model's ``evolutionConfig``
(``minRules``, ``minSamples``, ``maxAuc``) overrides the thresholds of its own engine's rule.
The advice lists every rule with its inputs and whether each condition holds; only the rule of
the model's engine can fire. Nothing is changed automatically.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class UpgradeRule:
    """One row of the Auto-Upgrade table: strict thresholds, as the seed words them."""

    source: str
    target: str
    min_samples: int
    min_rules: int | None = None
    max_auc: float | None = None
    requires: str | None = None


UPGRADE_RULES = (
    UpgradeRule("scorecard", "bayesian", min_samples=100, min_rules=5),
    UpgradeRule("bayesian", "logistic_regression", min_samples=500, max_auc=0.75),
    UpgradeRule(
        "logistic_regression",
        "gradient_boosted",
        min_samples=5000,
        max_auc=0.90,
        requires="lightgbm",
    ),
)


def installed(module: str) -> bool:
    """Tell whether ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def _condition(name: str, value: Any, operator: str, threshold: Any, met: bool) -> dict[str, Any]:
    return {"input": name, "value": value, "operator": operator, "threshold": threshold, "met": met}


def upgrade_advice(
    model_type: str,
    *,
    rules: int | None,
    samples: int,
    auc: float | None,
    evolution: Mapping[str, Any] | None = None,
    available: Callable[[str], bool] = installed,
) -> dict[str, Any]:
    """Evaluate the Auto-Upgrade table for one model.

    Parameters
    ----------
    model_type
        The model's engine.
    rules
        Number of scorecard rules (``None`` for other engines).
    samples
        Interactions the model has learned from.
    auc
        The latest measured AUC, ``None`` if never measured.
    evolution
        The model's ``evolutionConfig`` (camelCase), overriding its own rule's thresholds.
    available
        Says whether a required module is installed.

    Examples
    --------
    >>> advice = upgrade_advice("bayesian", rules=None, samples=800, auc=0.7)
    >>> advice["recommendation"]["upgradeTo"], advice["rules"][1]["fires"]
    ('logistic_regression', True)
    >>> upgrade_advice("bayesian", rules=None, samples=800, auc=0.8)["recommendation"] is None
    True
    """
    evolution = evolution or {}
    evaluated = []
    recommendation = None
    for rule in UPGRADE_RULES:
        applies = rule.source == model_type
        overrides = evolution if applies else {}
        conditions = []
        if rule.min_rules is not None:
            threshold = overrides.get("minRules")
            threshold = rule.min_rules if threshold is None else threshold
            conditions.append(
                _condition("rules", rules, ">", threshold, rules is not None and rules > threshold)
            )
        min_samples = overrides.get("minSamples")
        min_samples = rule.min_samples if min_samples is None else min_samples
        conditions.append(_condition("samples", samples, ">", min_samples, samples > min_samples))
        if rule.max_auc is not None:
            max_auc = overrides.get("maxAuc")
            max_auc = rule.max_auc if max_auc is None else max_auc
            conditions.append(
                _condition("auc", auc, "<", max_auc, auc is not None and auc < max_auc)
            )
        if rule.requires is not None:
            present = available(rule.requires)
            conditions.append(
                _condition(f"{rule.requires} installed", present, "==", True, present)
            )
        fires = applies and all(condition["met"] for condition in conditions)
        evaluated.append(
            {
                "from": rule.source,
                "to": rule.target,
                "applies": applies,
                "fires": fires,
                "conditions": conditions,
            }
        )
        if fires:
            recommendation = {
                "upgradeTo": rule.target,
                "reason": " and ".join(
                    f"{c['input']} {c['value']} {c['operator']} {c['threshold']}"
                    for c in conditions
                ),
            }
    return {
        "modelType": model_type,
        "inputs": {"rules": rules, "samples": samples, "auc": auc},
        "rules": evaluated,
        "recommendation": recommendation,
    }
