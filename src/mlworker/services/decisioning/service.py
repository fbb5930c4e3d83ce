"""The scoring use case behind ``POST /api/v1/score``."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import structlog

from mlworker.decisioning import (
    ResolutionConfig,
    Variant,
    assign_variant,
    exposure_probability,
    fnv1a_32,
    is_exposed,
    prior_from_priority,
    propensity_smoothing,
    resolve_model,
    score_with_fallback,
    wilson_exposure_probability,
)
from mlworker.engines import IncrementalEngine, ScoringEngine, candidate_frame
from mlworker.errors import MLWorkerError
from mlworker.registry.values import AlgorithmModel
from mlworker.services.decisioning.registry import RegistryCache
from mlworker.services.decisioning.request import ScoreOffer, ScoreRequest
from mlworker.services.decisioning.shadows import ShadowLog
from mlworker.store.outcomes import OutcomeRepository, ShadowScore

if TYPE_CHECKING:
    from mlworker.services.algorithm_models import AlgorithmModelService

log = structlog.get_logger(__name__)

#: Registry statuses whose models are scored alongside a served family member, never served.
SHADOW_STATUSES = ("shadow", "challenger")
#: Model statuses that are never served.
_UNSERVED = {"paused": "model paused", "archived": "model archived", "deleted": "model deleted"}


@dataclass(slots=True)
class _Group:
    """The candidates one model scores, and what it said."""

    model_key: str
    indexes: list[int]
    model: AlgorithmModel | None = None
    frame: pd.DataFrame | None = None
    scores: np.ndarray | None = None
    reasons: list[str | None] = field(default_factory=list)
    explanations: list[dict[str, Any] | None] = field(default_factory=list)


class DecisioningService:
    """Score candidate offers for one customer (``POST /api/v1/score``).

    Parameters
    ----------
    models
        The algorithm model service (lookups and live engines).
    outcomes
        The outcome log (offer evidence).
    shadow_log
        Where shadow scores are queued.
    registry_ttl
        Seconds a model's configuration and its family stay cached (0: read every time).
    """

    def __init__(
        self,
        *,
        models: AlgorithmModelService,
        outcomes: OutcomeRepository,
        shadow_log: ShadowLog,
        registry_ttl: float = 1.0,
    ) -> None:
        self._models = models
        self._outcomes = outcomes
        self._registry = RegistryCache(models, ttl=registry_ttl)
        self.shadow_log = shadow_log

    def score(
        self, request: ScoreRequest, *, tenant: str, request_id: str | None = None
    ) -> dict[str, Any]:
        """Score, smooth, ramp and rank the request's offers; log shadow scores.

        Returns
        -------
        dict
            ``{customerId, scores, requestId, seed}``; ``scores`` sorted by ``score``
            descending, each ``{offerId, score, modelScore, source, modelKey, modelType,
            variant, degraded, degradedReason?, evidence, exposure, exposed,
            modelExplanation?}``. ``modelScore`` is what was smoothed: the model's score, or
            the fallback's when ``source`` is ``precomputed`` or ``priority``.
        """
        request_id = request_id or uuid.uuid4().hex
        seed = request.seed if request.seed is not None else secrets.randbits(63)
        answer: dict[str, Any] = {
            "customerId": request.customer_id,
            "scores": [],
            "requestId": request_id,
            "seed": seed,
        }
        offers = request.offers
        if not offers:
            return answer
        keys, variants = self._resolve(request)
        groups: dict[str, _Group] = {}
        for index, key in enumerate(keys):
            if key is not None:
                groups.setdefault(key, _Group(model_key=key, indexes=[])).indexes.append(index)
        for group in groups.values():
            self._score_group(group, request, tenant=tenant, seed=seed)

        count = len(offers)
        model_scores: list[float | None] = [None] * count
        reasons: list[str | None] = [None] * count
        explanations: list[dict[str, Any] | None] = [None] * count
        model_types: list[str | None] = [None] * count
        for group in groups.values():
            for position, index in enumerate(group.indexes):
                reasons[index] = group.reasons[position]
                if group.model is not None:
                    model_types[index] = group.model.model_type
                if group.scores is not None and reasons[index] is None:
                    model_scores[index] = float(group.scores[position])
                    explanations[index] = group.explanations[position]
        served = [
            score_with_fallback(
                model_key=keys[i],
                model_score=model_scores[i],
                unavailable_reason=reasons[i],
                precomputed=offers[i].precomputed_propensity,
                priority=offers[i].priority,
            )
            for i in range(count)
        ]
        base = np.array([resolution.score for resolution in served], dtype=np.float64)
        evidence, positives = self._evidence(offers, base, tenant=tenant)
        smoothed = propensity_smoothing(
            base,
            evidence,
            prior_from_priority([offer.priority for offer in offers]),
            request.propensity_smoothing_weight,
        )
        if request.maturity == "wilson":
            exposure = wilson_exposure_probability(positives, evidence)
        else:
            exposure = exposure_probability(evidence, request.model_maturity_threshold)
        day = request.day or datetime.now(UTC).date()
        rows = []
        for i, offer in enumerate(offers):
            resolution = served[i]
            row: dict[str, Any] = {
                "offerId": offer.id,
                "score": float(smoothed[i]),
                "modelScore": resolution.score,
                "source": resolution.source,
                "modelKey": keys[i],
                "modelType": model_types[i],
                "variant": variants[i],
                "degraded": resolution.degraded,
                "evidence": int(evidence[i]),
                "exposure": float(exposure[i]),
                "exposed": is_exposed(request.customer_id, offer.id, day, float(exposure[i])),
            }
            if resolution.degraded:
                row["degradedReason"] = resolution.reason
            if request.explain and explanations[i] is not None:
                row["modelExplanation"] = explanations[i]
            rows.append(row)
        rows.sort(key=lambda row: -row["score"])  # stable: ties keep the request's order
        answer["scores"] = rows
        self._shadow(groups, request, keys, tenant=tenant, seed=seed, request_id=request_id)
        return answer

    # --- resolution --------------------------------------------------------------------------
    @staticmethod
    def _resolve(request: ScoreRequest) -> tuple[list[str | None], list[str | None]]:
        """Each candidate's model key and champion/challenger variant label."""
        resolution = ResolutionConfig.from_dict(request.resolution.model_dump(by_alias=True))
        split = request.champion_challenger
        variant: Variant | None = None
        label: str | None = None
        if split is not None and split.enabled:
            arms = [Variant(split.champion.model_key, split.champion.weight)]
            arms += [Variant(c.model_key, c.weight) for c in split.challengers]
            variant = assign_variant(request.customer_id, arms)
            champion = variant.model_key == split.champion.model_key
            label = "champion" if champion else f"challenger:{variant.model_key}"
        keys: list[str | None] = []
        labels: list[str | None] = []
        for offer in request.offers:
            key, matched = resolve_model(
                resolution, offer_id=offer.id, category=offer.category, channel=offer.channel
            )
            # The split replaces the default model; with overrideBypass, every override too.
            if variant is not None and split is not None:
                if split.override_bypass or matched in ("default", "none"):
                    keys.append(variant.model_key)
                    labels.append(label)
                    continue
            keys.append(key)
            labels.append(None)
        return keys, labels

    # --- scoring -----------------------------------------------------------------------------
    def _score_group(self, group: _Group, request: ScoreRequest, *, tenant: str, seed: int) -> None:
        size = len(group.indexes)
        group.reasons = [None] * size
        group.explanations = [None] * size

        def unavailable(reason: str) -> None:
            group.reasons = [reason] * size

        model = self._registry.model(group.model_key, tenant=tenant)
        if model is None:
            unavailable("model not found")
            return
        group.model = model
        if model.status in _UNSERVED or model.registry_status == "archived":
            unavailable(_UNSERVED.get(model.status, "model archived"))
            return
        try:
            engine = self._models.engine(model)
        except Exception as exc:  # a broken state must degrade the answer, not fail it
            log.warning("engine unavailable", model_key=model.key, error=str(exc))
            unavailable(_reason("engine unavailable", exc))
            return
        if not getattr(engine, "available", True):
            unavailable("circuit breaker open")
            return
        if not engine.is_trained and not isinstance(engine, IncrementalEngine):
            unavailable("model not trained")
            return
        offers = [
            {"id": request.offers[i].id, "attributes": request.offers[i].attributes}
            for i in group.indexes
        ]
        frame = candidate_frame(
            request.customer_attributes, offers, customer_id=request.customer_id
        )
        try:
            scores, failures, explanations = _engine_scores(
                engine, frame, _rng(seed, model.key), explain=request.explain
            )
        except Exception as exc:  # any engine failure falls back, and says so
            log.warning("engine failed", model_key=model.key, error=str(exc))
            unavailable(_reason("engine error", exc))
            return
        group.frame = frame
        group.scores = scores
        group.reasons = failures
        group.explanations = explanations

    def _evidence(
        self, offers: Sequence[ScoreOffer], base: np.ndarray, *, tenant: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Interactions and positives per offer: the request's, else the outcome log's.

        Where the request gives interactions without positives, the positive rate needed by
        the Wilson ramp is taken to be the served score.
        """
        missing = [offer.id for offer in offers if offer.interactions is None]
        tallies = self._outcomes.offer_tallies(tenant=tenant, offer_ids=missing) if missing else {}
        evidence = np.zeros(len(offers), dtype=np.float64)
        positives = np.zeros(len(offers), dtype=np.float64)
        for i, offer in enumerate(offers):
            if offer.interactions is None:
                evidence[i], positives[i] = tallies.get(offer.id, (0, 0))
            else:
                evidence[i] = offer.interactions
                positives[i] = (
                    offer.positives if offer.positives is not None else base[i] * evidence[i]
                )
        return evidence, positives

    # --- shadows -----------------------------------------------------------------------------
    def _shadow(
        self,
        groups: dict[str, _Group],
        request: ScoreRequest,
        keys: Sequence[str | None],
        *,
        tenant: str,
        seed: int,
        request_id: str,
    ) -> None:
        """Score each served model's candidates with its family's shadows; queue the scores."""
        serving = {key for key in keys if key is not None}
        logged: list[ShadowScore] = []
        for group in groups.values():
            model, frame, served_scores = group.model, group.frame, group.scores
            if model is None or frame is None or served_scores is None:
                continue
            served = [p for p, reason in enumerate(group.reasons) if reason is None]
            try:
                members = self._registry.family(model.family, tenant=tenant)
            except MLWorkerError as exc:
                log.warning("family lookup failed", family=model.family, error=str(exc))
                continue
            for shadow in members:
                if (
                    not served
                    or shadow.key in serving
                    or shadow.registry_status not in SHADOW_STATUSES
                    or shadow.status in _UNSERVED
                ):
                    continue
                try:
                    engine = self._models.engine(shadow)
                    scores = np.asarray(engine.score(frame, rng=_rng(seed, shadow.key)))
                except Exception as exc:  # a shadow never affects what is served
                    log.warning("shadow scoring failed", model_key=shadow.key, error=str(exc))
                    continue
                for p in served:
                    logged.append(
                        ShadowScore(
                            request_id=request_id,
                            customer_id=request.customer_id,
                            offer_id=request.offers[group.indexes[p]].id,
                            model_key=shadow.key,
                            model_id=shadow.id,
                            score=float(scores[p]),
                            served_model_key=model.key,
                            served_score=float(served_scores[p]),
                        )
                    )
        if logged:
            self.shadow_log.add(logged, tenant=tenant)


def _rng(seed: int, model_key: str) -> np.random.Generator:
    """One generator per model and request: scores do not depend on which models ran first."""
    return np.random.default_rng([seed, fnv1a_32(model_key)])


def _reason(prefix: str, exc: Exception) -> str:
    detail = exc.message if isinstance(exc, MLWorkerError) else type(exc).__name__
    return f"{prefix}: {detail}"


def _engine_scores(
    engine: ScoringEngine, frame: Any, rng: np.random.Generator, *, explain: bool
) -> tuple[np.ndarray, list[str | None], list[dict[str, Any] | None]]:
    """Scores, per-candidate failure reasons and explanations from one engine call.

    An engine that reports per-candidate fallbacks (the external endpoint's
    ``score_detailed``) has those candidates marked failed, so the decisioning fallback
    chain answers for them instead of the engine's constant.
    """
    size = len(frame)
    reasons: list[str | None] = [None] * size
    explanations: list[dict[str, Any] | None] = [None] * size
    if explain:
        explained = engine.explain(frame, rng=rng)
        scores = np.array([e.score for e in explained], dtype=np.float64)
        for i, explanation in enumerate(explained):
            explanations[i] = explanation.to_dict()
            for detail in explanation.details:
                if detail.get("fallback") is True:
                    reasons[i] = f"endpoint fallback: {detail.get('reason', 'no score')}"
    elif hasattr(engine, "score_detailed"):
        detailed = engine.score_detailed(frame)
        scores = np.asarray(detailed.scores, dtype=np.float64)
        for i, failed in enumerate(np.asarray(detailed.fallback).tolist()):
            if failed:
                reasons[i] = f"endpoint fallback: {detailed.reasons[i] or 'no score'}"
    else:
        scores = np.asarray(engine.score(frame, rng=rng), dtype=np.float64)
    if scores.shape != (size,):
        raise ValueError(f"the engine returned {scores.shape} scores for {size} candidates")
    for i in np.flatnonzero(~np.isfinite(scores)).tolist():
        reasons[i] = "engine returned no score"
    return np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0), reasons, explanations
