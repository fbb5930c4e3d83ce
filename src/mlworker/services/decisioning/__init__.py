"""Propensity scoring for decisioning (``POST /api/v1/score``, seed 003).

Per candidate offer: resolve the model (champion/challenger, then offer → category → channel →
default), score every model's candidates in one engine call, fall back to the pre-computed
propensity and then the priority where a model cannot answer (saying so), smooth toward the
offer's prior by its evidence, and draw the maturity ramp's exposure. Shadow and challenger
models of a served model's registry family score the same candidates; their scores are logged,
never served.

This is the hot path: the database is read a fixed number of times per request (one lookup per
distinct model, one for the evidence of every offer, one per served family), never per
candidate, and shadow scores are written by a background thread.
"""

from mlworker.services.decisioning.request import (
    MAX_OFFERS,
    ChampionChallengerBody,
    OverrideBody,
    ResolutionBody,
    ScoreOffer,
    ScoreRequest,
    VariantBody,
)
from mlworker.services.decisioning.service import SHADOW_STATUSES, DecisioningService
from mlworker.services.decisioning.shadows import ShadowLog

__all__ = [
    "MAX_OFFERS",
    "SHADOW_STATUSES",
    "ChampionChallengerBody",
    "DecisioningService",
    "OverrideBody",
    "ResolutionBody",
    "ScoreOffer",
    "ScoreRequest",
    "ShadowLog",
    "VariantBody",
]
