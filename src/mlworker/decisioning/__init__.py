"""Decisioning: what turns engine scores into served propensities (seed 003).

Cold-start smoothing toward the offer's prior, the maturity ramp that limits a new offer's
exposure, deterministic champion/challenger assignment, and the model resolution hierarchy with
its fallbacks. Plain functions over numbers and strings: no framework, no I/O.
"""

from mlworker.decisioning.assignment import Variant, assign_variant, fnv1a_32
from mlworker.decisioning.maturity import (
    exposure_probability,
    is_exposed,
    wilson_exposure_probability,
)
from mlworker.decisioning.resolution import (
    ModelOverride,
    Resolution,
    ResolutionConfig,
    resolve_model,
    score_with_fallback,
)
from mlworker.decisioning.smoothing import prior_from_priority, propensity_smoothing

__all__ = [
    "ModelOverride",
    "Resolution",
    "ResolutionConfig",
    "Variant",
    "assign_variant",
    "exposure_probability",
    "fnv1a_32",
    "is_exposed",
    "prior_from_priority",
    "propensity_smoothing",
    "resolve_model",
    "score_with_fallback",
    "wilson_exposure_probability",
]
