"""What this installation can do, as ``GET /health`` reports it.

A capability is listed only when its code and every module it needs import here; heavy optional
dependencies (installed through extras) therefore switch capabilities on and off by themselves.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Capability:
    """A named feature and the modules it needs."""

    name: str
    modules: tuple[str, ...]


#: Every capability ML Worker knows, in the order ``/health`` lists them. Each feature issue
#: adds its entry together with the code that implements it.
CAPABILITIES: tuple[Capability, ...] = (
    Capability("policy_analysis", ("statsmodels", "mlworker.analysis.policies")),
    Capability("segmentation", ("sklearn", "mlworker.analysis.segmentation")),
    Capability("content_analysis", ("sklearn", "mlworker.analysis.content")),
    Capability("training", ("sklearn", "skops")),
    Capability("optimization", ("sklearn", "optuna", "skops")),
    Capability("propensity_scoring", ("mlworker.engines", "mlworker.decisioning")),
    # Gradient-boosted scoring models train with LightGBM (the boosting extra); they score
    # from their exported tree JSON with the compiled kernel, so scoring needs only numba.
    Capability("gradient_boosted_training", ("lightgbm", "numba")),
)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_capabilities(catalogue: tuple[Capability, ...] = CAPABILITIES) -> list[str]:
    """Names of the capabilities whose modules all import.

    Examples
    --------
    >>> available_capabilities((Capability("json", ("json",)), Capability("x", ("no_such",))))
    ['json']
    """
    return [c.name for c in catalogue if all(_importable(m) for m in c.modules)]
