"""Algorithm models (seed 003): CRUD, the live engine, scoring, outcomes, lifecycle, advice.

The decisioning layer calls :class:`AlgorithmModelService` on its hot path: :meth:`engine`
returns a built engine with the model's live state, cached per process and keyed by
``(model id, state revision)``; a new revision (training, outcomes, reset, config edit) makes
the next call rebuild it. While the revision stays the same the same instance is reused, so an
external endpoint keeps its circuit breaker and response cache across requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from mlworker.config import Settings
from mlworker.data.spec import DatasetSpec
from mlworker.egress import EgressPolicy
from mlworker.engines import (
    IncrementalEngine,
    ScoringEngine,
    as_outcomes,
    build_engine,
    candidate_frame,
)
from mlworker.errors import (
    Conflict,
    EngineUnavailable,
    InvalidInput,
    MLWorkerError,
    NotFound,
)
from mlworker.registry.values import (
    AlgorithmModel,
    is_model_id,
    new_model_id,
)
from mlworker.services.algorithm_engines import (
    EngineCache,
    RecentReads,
    engine_config,
    initial_state,
    is_incremental,
    ranked_scores,
)
from mlworker.services.algorithm_requests import (
    SYSTEM_STATUSES,
    AlgorithmModelCreate,
    AlgorithmModelUpdate,
    AlgorithmTrainingParams,
    spec_of,
    update_changes,
    validated_request,
)
from mlworker.services.algorithm_training import NOT_TRAINABLE, TRAINING_JOB, stored_state
from mlworker.services.algorithm_upgrades import upgrade_advice
from mlworker.services.jobs import JobService, Submission
from mlworker.store.algorithm_models import (
    AlgorithmModelRepository,
    EngineStateRepository,
    PromotionRepository,
)
from mlworker.store.artifacts import ArtifactStore
from mlworker.store.db import Database


class AlgorithmModelService:
    """Algorithm models for the API and the decisioning layer; every call is tenant-scoped.

    Parameters
    ----------
    settings
        The process's settings (artifact root).
    db
        The metadata store.
    jobs
        Where training jobs are submitted.
    egress
        The operator's egress policy (default: the one ``settings`` describe).
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        jobs: JobService,
        *,
        egress: EgressPolicy | None = None,
    ) -> None:
        self._settings = settings
        # Every engine this service builds calls out (if at all) under the operator's policy.
        self._egress = settings.egress_policy if egress is None else egress
        self._repository = AlgorithmModelRepository(db)
        self._states = EngineStateRepository(db)
        self._promotions = PromotionRepository(db)
        self._jobs = jobs
        self._engines = EngineCache()
        # The scoring path's reads (model row, state revision), reused briefly: see RecentReads.
        self._recent_models: RecentReads[AlgorithmModel] = RecentReads(
            settings.scoring_cache_seconds
        )
        self._recent_revisions: RecentReads[int] = RecentReads(settings.scoring_cache_seconds)

    def _forget(self, model_id: str | None = None) -> None:
        """Drop what the scoring path remembers of ``model_id`` (of every model when ``None``)."""
        self._recent_models.discard(model_id)
        self._recent_revisions.discard(model_id)

    # --- CRUD ----------------------------------------------------------------------------------

    def create(
        self, body: Mapping[str, Any] | AlgorithmModelCreate, *, tenant: str, actor: str
    ) -> AlgorithmModel:
        """Create a model in registry status ``draft``, untrained.

        Raises
        ------
        ValidationFailed
            A field (``config.<field>`` included) is invalid.
        Conflict
            The tenant already has a model with this key.
        """
        request: AlgorithmModelCreate = validated_request(AlgorithmModelCreate, body)
        if request.status in SYSTEM_STATUSES:
            raise InvalidInput(
                f"status {request.status!r} is set by training jobs only", field="status"
            )
        config = engine_config(request.model_type, request.config, egress=self._egress)
        return self._repository.create(
            model_id=new_model_id(),
            tenant=tenant,
            key=request.key,
            name=request.name,
            description=request.description,
            model_type=request.model_type,
            family=request.registry_family or request.key,
            config=config,
            status=request.status,
            spec=spec_of(request.model_type, request),
            state=initial_state(request.model_type, config, egress=self._egress),
            actor=actor,
        )

    def get(self, model_id: str, *, tenant: str) -> AlgorithmModel:
        """Return one model; ids not shaped like ``model-<12 hex>`` are 404 without a lookup."""
        if not is_model_id(model_id):
            raise NotFound(f"algorithm model {model_id[:60]!r} not found", field="id")
        return self._repository.get(model_id, tenant=tenant)

    def get_by_key(self, key: str, *, tenant: str) -> AlgorithmModel:
        """Return the tenant's model with this key."""
        return self._repository.get_by_key(key, tenant=tenant)

    def page(
        self,
        *,
        tenant: str,
        model_type: str | None = None,
        registry_status: str | None = None,
        family: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AlgorithmModel], int]:
        """Return a page of matching models and how many match in all."""
        return self._repository.list_page(
            tenant=tenant,
            model_type=model_type,
            registry_status=registry_status,
            family=family,
            status=status,
            limit=limit,
            offset=offset,
        )

    def update(
        self,
        model_id: str,
        body: Mapping[str, Any] | AlgorithmModelUpdate,
        *,
        tenant: str,
        actor: str,
    ) -> AlgorithmModel:
        """Replace the fields ``body`` sends; a new ``config`` starts a new state revision.

        Raises
        ------
        InvalidInput
            ``key``, ``modelType`` or ``registryStatus`` differ from the stored ones, or a
            system status is requested.
        """
        current = self.get(model_id, tenant=tenant)
        request: AlgorithmModelUpdate = validated_request(AlgorithmModelUpdate, body)
        changes, new_revision = update_changes(current, request, egress=self._egress)
        if not changes:
            return current
        updated = self._repository.update(
            model_id, tenant=tenant, actor=actor, changes=changes, new_revision=new_revision
        )
        self._forget(model_id)
        return updated

    def delete(self, model_id: str, *, tenant: str, actor: str) -> None:
        """Delete the model, its state, versions and their artifacts (the audit log stays)."""
        self.get(model_id, tenant=tenant)
        uris = self._repository.delete(model_id, tenant=tenant, actor=actor)
        self._engines.discard(model_id)
        self._forget(model_id)
        artifacts = ArtifactStore(self._settings.artifacts)
        for uri in uris:
            artifacts.delete(uri)

    # --- engines and scoring -------------------------------------------------------------------

    def engine(self, model: AlgorithmModel) -> ScoringEngine:
        """Return ``model``'s engine with its live state (one small read when cached).

        Raises
        ------
        EngineUnavailable
            The engine cannot be built (not installed, or a state it cannot load).
        """
        revision = self._recent_revisions.get(model.id)
        if revision is None:
            revision = self._states.revision(model.id)
            if revision is None:
                raise NotFound(f"algorithm model {model.id} not found", field="id")
            self._recent_revisions.put(model.id, revision)
        return self._engine_at(model, revision)[0]

    def _engine_at(self, model: AlgorithmModel, revision: int) -> tuple[ScoringEngine, int]:
        cached = self._engines.get(model.id, revision)
        if cached is not None:
            return cached, revision
        # Config and state are read together: a config edit and its revision arrive as one.
        current, live = self._states.snapshot(model.id, tenant=model.tenant)
        revision = live.revision
        cached = self._engines.get(model.id, revision)
        if cached is not None:  # the caller's revision was stale; the current one is built
            return cached, revision
        try:
            engine = build_engine(
                model.model_type,
                current.config,
                state=live.state,
                random_state=revision,
                egress=self._egress,
            )
        except (ImportError, ValueError, KeyError, TypeError) as exc:
            raise EngineUnavailable(
                f"the {model.model_type} engine of model {model.key!r} cannot be built: {exc}",
                field="modelType",
            ) from exc
        self._engines.put(model.id, revision, engine)
        return engine, revision

    def score(
        self,
        model_id: str,
        customer_attributes: Mapping[str, Any],
        offers: Sequence[Mapping[str, Any]],
        *,
        tenant: str,
        explain: bool,
        customer_id: str | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Score every offer for one customer; scores sorted from the highest.

        ``seed`` makes stochastic engines (bandits) repeatable; without it each request draws
        afresh, as the seed document says Thompson sampling does.

        Raises
        ------
        Conflict
            The model is archived (archived models are never scored).
        """
        model = self._recent_models.get(model_id)
        if model is None or model.tenant != tenant:
            model = self.get(model_id, tenant=tenant)
            self._recent_models.put(model_id, model)
        if model.registry_status == "archived":
            raise Conflict(
                f"algorithm model {model.key!r} is archived; archived models are never scored",
                field="registryStatus",
            )
        engine, revision = self._engine_at(model, model.state_revision)
        frame = candidate_frame(customer_attributes, offers, customer_id=customer_id)
        offer_ids = [str(offer["id"]) for offer in offers]
        results = ranked_scores(
            engine, frame, offer_ids, explain=explain, rng=np.random.default_rng(seed)
        )
        return {
            "modelId": model.id,
            "modelKey": model.key,
            "modelType": model.model_type,
            "stateRevision": revision,
            "scores": results,
        }

    def apply_outcomes(
        self, model_id: str, interactions: pd.DataFrame, outcomes: np.ndarray, *, tenant: str
    ) -> int:
        """Update an incremental engine from outcomes; return the new state revision.

        The live state is read and written under a row lock, so concurrent batches each build
        on the other's result.

        Raises
        ------
        InvalidInput
            The engine does not learn from outcomes, or the outcomes are not 0/1.
        """
        model = self.get(model_id, tenant=tenant)
        if not is_incremental(model.model_type):
            raise InvalidInput(
                f"{model.model_type} engines do not learn from single outcomes; train them",
                field="modelType",
            )
        try:
            values = as_outcomes(outcomes, len(interactions))
        except ValueError as exc:
            raise InvalidInput(str(exc), field="outcomes") from exc
        if not len(values):
            return model.state_revision
        with self._states.locked_state(model_id, tenant=tenant) as live:
            engine = cast(
                IncrementalEngine,
                build_engine(
                    model.model_type,
                    live.model.config,
                    state=live.state,
                    random_state=live.revision,
                    egress=self._egress,
                ),
            )
            try:
                engine.update(interactions, values)
            except ValueError as exc:
                if isinstance(exc, MLWorkerError):
                    raise
                raise InvalidInput(
                    f"the outcomes cannot be learned: {exc}", field="interactions"
                ) from exc
            revision = live.replace(engine.state(), applied_updates=len(values))
        self._engines.put(model_id, revision, engine)
        self._forget(model_id)
        return revision

    # --- training ------------------------------------------------------------------------------

    def submit_training(
        self,
        model_id: str,
        *,
        tenant: str,
        actor: str,
        dataset: DatasetSpec | None,
        customer_id_column: str | None = None,
        offer_id_column: str | None = None,
        outcome_column: str | None = None,
        validation_fraction: float = 0.2,
        random_state: int = 0,
        idempotency_key: str | None = None,
    ) -> Submission:
        """Queue an ``algorithm_training`` job (from ``dataset``, or the outcome log if None)."""
        model = self.get(model_id, tenant=tenant)
        if model.model_type in NOT_TRAINABLE:
            raise InvalidInput(
                f"{model.model_type} models are trained outside ML Worker", field="modelType"
            )
        params = AlgorithmTrainingParams(
            model_id=model.id,
            actor=actor,
            dataset=dataset,
            customer_id_column=customer_id_column,
            offer_id_column=offer_id_column,
            outcome_column=outcome_column,
            validation_fraction=validation_fraction,
            random_state=random_state,
        )
        return self._jobs.submit(
            tenant=tenant,
            job_type=TRAINING_JOB,
            params=params,
            idempotency_key=idempotency_key,
            field_prefix="",
        )

    def version_state(self, model_id: str, version: int, *, tenant: str) -> dict[str, Any]:
        """Return the learned state stored with ``version``, once its checksum matches.

        Raises
        ------
        ArtifactCorrupt
            The artifact changed or disappeared since it was written.
        """
        versions = {v.version: v for v in self._repository.versions(model_id, tenant=tenant)}
        if version not in versions:
            raise NotFound(f"model {model_id} has no version {version}", field="version")
        return stored_state(self._settings, versions[version])

    # --- lifecycle -----------------------------------------------------------------------------

    def promote(
        self,
        model_id: str,
        *,
        to: str,
        tenant: str,
        actor: str,
        reason: str | None,
        demote_to: str = "archived",
    ) -> AlgorithmModel:
        """Move the model to registry status ``to`` (see the lifecycle in the registry values).

        Promoting to ``champion`` demotes the family's champion to ``demote_to`` in the same
        transaction; each change is audited.
        """
        self.get(model_id, tenant=tenant)
        promoted, _ = self._promotions.promote(
            model_id, tenant=tenant, to=to, actor=actor, reason=reason, demote_to=demote_to
        )
        self._forget()  # the promoted model and any champion it displaced
        return promoted

    def reset_learning(self, model_id: str, *, tenant: str, actor: str) -> AlgorithmModel:
        """Forget everything learned: the untrained state as a new revision, audited."""
        model = self.get(model_id, tenant=tenant)
        reset = self._states.replace_state(
            model_id,
            tenant=tenant,
            actor=actor,
            state=initial_state(model.model_type, model.config, egress=self._egress),
            action="algorithm_model.reset_learning",
            reason="learning reset on request",
        )
        self._forget(model_id)
        return reset

    def model_state(self, model_id: str, *, tenant: str) -> dict[str, Any]:
        """Return the model's live learned state (the seed's ``modelState``)."""
        self.get(model_id, tenant=tenant)
        return self._states.live_state(model_id, tenant=tenant).state

    def audit_trail(self, model_id: str, *, tenant: str) -> list[dict[str, Any]]:
        """Return the model's audit rows, oldest first (still readable once it is deleted)."""
        if not is_model_id(model_id):
            raise NotFound(f"algorithm model {model_id[:60]!r} not found", field="id")
        rows = self._repository.audit_trail(model_id, tenant=tenant)
        if not rows:
            raise NotFound(f"algorithm model {model_id} not found", field="id")
        return rows

    def champion(self, family: str, *, tenant: str) -> AlgorithmModel | None:
        """Return the family's champion, if any."""
        return self._repository.champion(family, tenant=tenant)

    def family_members(self, family: str, *, tenant: str) -> list[AlgorithmModel]:
        """Return every model of the family, oldest first."""
        return self._repository.family_members(family, tenant=tenant)

    def recommendations(self, model_id: str, *, tenant: str) -> dict[str, Any]:
        """Evaluate the seed's Auto-Upgrade table for the model.

        Samples are the interactions of the latest training (its ``evidence``) plus the
        outcomes applied since; AUC is the latest training's.
        """
        model = self.get(model_id, tenant=tenant)
        rules = model.config.get("rules")
        samples = int(model.metrics.get("evidence") or 0) + model.pending_updates
        advice = upgrade_advice(
            model.model_type,
            rules=len(rules) if isinstance(rules, list) else None,
            samples=samples,
            auc=model.metrics.get("auc"),
            evolution=model.spec.get("evolutionConfig"),
        )
        return {"modelId": model.id, "modelKey": model.key, **advice}
