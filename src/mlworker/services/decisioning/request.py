"""The body of ``POST /api/v1/score`` (camelCase; seed 003's fields and defaults)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

#: Candidate offers one request may carry.
MAX_OFFERS = 1000


class _Body(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class ScoreOffer(_Body):
    """A candidate offer."""

    id: str = Field(min_length=1, max_length=255)
    attributes: dict[str, Any] = Field(default_factory=dict)
    priority: float = Field(50.0, ge=0, le=100, description="0–100; the prior is priority/100.")
    category: str | None = Field(None, max_length=255)
    channel: str | None = Field(None, max_length=255)
    precomputed_propensity: float | None = Field(None, ge=0, le=1)
    interactions: int | None = Field(None, ge=0, description="Evidence; else the outcome log's.")
    positives: int | None = Field(None, ge=0, description="Positive responses (Wilson ramp).")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.positives is not None and self.positives > (self.interactions or 0):
            raise ValueError("positives cannot exceed interactions")
        return self


class OverrideBody(_Body):
    """Score one offer, category or channel with ``modelKey``."""

    scope: Literal["offer", "category", "channel"]
    key: str = Field(min_length=1, max_length=255)
    model_key: str = Field(min_length=1, max_length=255)


class ResolutionBody(_Body):
    """The default model and the overrides."""

    default_model: str | None = Field(None, min_length=1, max_length=255)
    overrides: list[OverrideBody] = Field(default_factory=list, max_length=MAX_OFFERS)


class VariantBody(_Body):
    """One arm of a champion/challenger split."""

    model_key: str = Field(min_length=1, max_length=255)
    weight: float = Field(gt=0, description="Relative traffic; must be positive.")


class ChampionChallengerBody(_Body):
    """Deterministic split of customers between a champion and challengers."""

    enabled: bool = True
    champion: VariantBody
    challengers: list[VariantBody] = Field(default_factory=list, max_length=20)
    override_bypass: bool = False

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        keys = [self.champion.model_key, *(c.model_key for c in self.challengers)]
        if len(set(keys)) != len(keys):
            raise ValueError("champion and challengers must be different models")
        return self


class ScoreRequest(_Body):
    """``POST /api/v1/score``: one customer, the candidate offers, how to score them."""

    customer_id: str = Field(min_length=1, max_length=255)
    customer_attributes: dict[str, Any] = Field(default_factory=dict)
    offers: list[ScoreOffer] = Field(max_length=MAX_OFFERS)
    resolution: ResolutionBody = Field(default_factory=ResolutionBody)
    champion_challenger: ChampionChallengerBody | None = None
    propensity_smoothing_weight: float = Field(25, gt=0)
    model_maturity_threshold: float = Field(100, gt=0)
    maturity: Literal["linear", "wilson"] = "linear"
    day: date | None = Field(None, alias="date", description="Day of the exposure draw (UTC).")
    explain: bool = False
    seed: int | None = Field(None, ge=0, lt=2**63, description="Drawn and returned if omitted.")

    @model_validator(mode="after")
    def _unique_offers(self) -> Self:
        seen: set[str] = set()
        for index, offer in enumerate(self.offers):
            if offer.id in seen:
                raise ValueError(f"offer id {offer.id!r} appears twice (offers.{index}.id)")
            seen.add(offer.id)
        return self
