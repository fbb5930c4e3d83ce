"""Recording outcomes (``POST /api/v1/outcomes``) and feeding them to the models that learn.

Every outcome is written to the log first, idempotently, and only then learned from, so a
learning failure never loses an outcome: the outcome stays pending and the next one retries
it. Per model, by its ``learningConfig``: ``per_outcome`` learners apply what is pending at once,
``incremental`` learners once ``batchThreshold`` outcomes wait, ``scheduled`` learners (and
models without ``autoLearn``) only log; the scheduler retrains those from the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from mlworker.errors import IdempotencyKeyReused, InvalidInput, MLWorkerError, NotFound
from mlworker.registry.values import AlgorithmModel
from mlworker.serialization import canonical_hash
from mlworker.services.learning import LearningConfig
from mlworker.store.outcomes import NewOutcome, OutcomeRepository
from mlworker.store.records import utcnow

if TYPE_CHECKING:
    from mlworker.services.algorithm_models import AlgorithmModelService

log = structlog.get_logger(__name__)

#: Outcomes one request may carry.
MAX_OUTCOMES = 1000
#: Outcomes handed to one ``apply_outcomes`` call; a larger backlog goes in several.
APPLY_BATCH = 10_000
#: ``outcomeType`` values understood without the model's ``outcomeWeights``.
POSITIVE_TYPES = frozenset(
    {"click", "conversion", "convert", "converted", "purchase", "accept", "accepted", "positive"}
)
NEGATIVE_TYPES = frozenset(
    {"impression", "ignore", "ignored", "dismiss", "dismissed", "reject", "rejected", "decline"}
    | {"declined", "negative", "no_response"}
)
_KEY_LIMIT = 255


class _Body(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class OutcomeItem(_Body):
    """One outcome: what a customer did with an offer a model scored."""

    idempotency_key: str | None = Field(None, min_length=1, max_length=_KEY_LIMIT)
    model_key: str | None = Field(None, min_length=1, max_length=255)
    model_id: str | None = Field(None, min_length=1, max_length=40)
    customer_id: str = Field(min_length=1, max_length=255)
    offer_id: str = Field(min_length=1, max_length=255)
    outcome: float | None = Field(None, description="1 for a positive response, 0 for none.")
    outcome_type: str | None = Field(None, min_length=1, max_length=100)
    customer_attributes: dict[str, Any] = Field(default_factory=dict)
    offer_attributes: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = Field(None, description="When it happened (UTC if no offset).")

    @field_validator("outcome")
    @classmethod
    def _binary(cls, value: float | None) -> float | None:
        if value is not None and value not in (0.0, 1.0):
            raise ValueError("outcome must be 0 or 1")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.model_key is None and self.model_id is None:
            raise ValueError("give modelKey or modelId")
        if self.outcome is None and self.outcome_type is None:
            raise ValueError("give outcome (0 or 1) or outcomeType")
        return self


class OutcomesRequest(_Body):
    """``POST /api/v1/outcomes``."""

    outcomes: list[OutcomeItem] = Field(min_length=1, max_length=MAX_OUTCOMES)


def derived_key(batch_key: str, index: int) -> str:
    """Per-outcome key from a batch's ``Idempotency-Key``: the key and the outcome's position.

    Examples
    --------
    >>> derived_key("batch-7", 3)
    'batch-7:3'
    >>> len(derived_key("k" * 255, 0))
    71
    """
    key = f"{batch_key}:{index}"
    if len(key) <= _KEY_LIMIT:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def outcome_label(item: OutcomeItem, weights: Mapping[str, Any] | None, *, field: str) -> float:
    """Return the 0/1 label of an outcome: ``outcome`` itself, else its type via the weights.

    A type whose weight in the model's ``outcomeWeights`` is positive is a positive response;
    a weight of zero or less is not. Without weights the common types are understood
    (:data:`POSITIVE_TYPES`, :data:`NEGATIVE_TYPES`).

    Raises
    ------
    InvalidInput
        The type is unknown (named by ``field``).

    Examples
    --------
    >>> item = OutcomeItem(modelKey="m", customerId="c", offerId="o", outcomeType="click")
    >>> outcome_label(item, None, field="f"), outcome_label(item, {"click": 0}, field="f")
    (1.0, 0.0)
    """
    if item.outcome is not None:
        return float(item.outcome)
    kind = str(item.outcome_type)
    if weights:
        weight = weights.get(kind, weights.get(kind.lower()))
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise InvalidInput(
                f"outcome type {kind!r} is not in the model's outcomeWeights "
                f"({', '.join(sorted(map(str, weights)))})",
                field=field,
            )
        return 1.0 if weight > 0 else 0.0
    if kind.lower() in POSITIVE_TYPES:
        return 1.0
    if kind.lower() in NEGATIVE_TYPES:
        return 0.0
    raise InvalidInput(
        f"outcome type {kind!r} is not understood; give outcome 0/1, use one of "
        f"{', '.join(sorted(POSITIVE_TYPES | NEGATIVE_TYPES))}, or set the model's outcomeWeights",
        field=field,
    )


class OutcomeService:
    """Record outcomes and apply them to the models that learn from them."""

    def __init__(self, *, models: AlgorithmModelService, outcomes: OutcomeRepository) -> None:
        self._models = models
        self._outcomes = outcomes

    def record(
        self, request: OutcomesRequest, *, tenant: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Record a batch of outcomes, then learn from them; return what happened.

        Returns
        -------
        dict
            ``{recorded, duplicates, applied: {modelKey: n}, buffered: {modelKey: pending}}``
            and ``learningErrors: {modelKey: message}`` when a model could not learn (its
            outcomes stay recorded and pending).

        Raises
        ------
        NotFound
            An outcome names a model the tenant does not have (``outcomes.<i>.modelKey``).
        InvalidInput
            An ``outcomeType`` the model cannot map to 0/1.
        IdempotencyKeyReused
            A key already names a different outcome; nothing is recorded.
        """
        models = self._models_of(request, tenant)
        now = utcnow()
        batch: list[NewOutcome] = []
        for index, item in enumerate(request.outcomes):
            model = models[index]
            label = outcome_label(
                item,
                model.spec.get("outcomeWeights"),
                field=f"outcomes.{index}.{'outcomeType' if item.outcome is None else 'outcome'}",
            )
            key = item.idempotency_key
            if key is None and idempotency_key is not None:
                key = derived_key(idempotency_key, index)
            batch.append(
                NewOutcome(
                    model_key=model.key,
                    model_id=model.id,
                    customer_id=item.customer_id,
                    offer_id=item.offer_id,
                    outcome=label,
                    outcome_type=item.outcome_type,
                    customer_attributes=item.customer_attributes,
                    offer_attributes=item.offer_attributes,
                    occurred_at=item.occurred_at or now,
                    idempotency_key=key,
                    # What the client sent, so a replay with the same body is a duplicate.
                    content_hash=canonical_hash(
                        item.model_dump(mode="json", by_alias=True, exclude_none=True)
                    ),
                    buffered=LearningConfig.from_spec(model.spec).buffers,
                )
            )
        try:
            result = self._outcomes.record(batch, tenant=tenant)
        except IdempotencyKeyReused as exc:
            index = int(exc.extra.get("index", 0))
            own = request.outcomes[index].idempotency_key is not None
            raise IdempotencyKeyReused(
                exc.message, field=f"outcomes.{index}.idempotencyKey" if own else "Idempotency-Key"
            ) from exc
        answer: dict[str, Any] = {
            "recorded": result.recorded,
            "duplicates": result.duplicates,
            "applied": {},
            "buffered": {},
        }
        errors: dict[str, str] = {}
        learners = {model.key: model for model in models}
        for key, model in learners.items():
            config = LearningConfig.from_spec(model.spec)
            if not config.buffers:
                continue
            try:
                applied = self.apply_pending(model, tenant=tenant, threshold=config.apply_threshold)
            except Exception as exc:  # the outcomes are safe in the log; report and go on
                log.warning("learning from outcomes failed", model_key=key, error=str(exc))
                errors[key] = exc.message if isinstance(exc, MLWorkerError) else str(exc)
                applied = 0
            if applied:
                answer["applied"][key] = applied
            pending = self._outcomes.pending(key, tenant)
            if config.learn_mode == "incremental" or pending:
                answer["buffered"][key] = pending
        if errors:
            answer["learningErrors"] = errors
        return answer

    def apply_pending(self, model: AlgorithmModel, *, tenant: str, threshold: int = 1) -> int:
        """Apply the model's pending outcomes if at least ``threshold`` wait; return how many.

        Outcomes are claimed first, so concurrent requests never apply one twice; if applying
        fails they are released for the next attempt and the error propagates.
        """
        total = 0
        while True:
            batch = self._outcomes.claim_pending(
                tenant=tenant, model_key=model.key, min_count=threshold, limit=APPLY_BATCH
            )
            if batch is None:
                return total
            try:
                revision = self._models.apply_outcomes(
                    model.id, batch.interactions, batch.outcomes, tenant=tenant
                )
            except BaseException:
                self._outcomes.release(batch.ids)
                raise
            self._outcomes.mark_applied(batch.ids, revision=revision)
            total += len(batch.ids)
            if len(batch.ids) < APPLY_BATCH:
                return total

    def _models_of(self, request: OutcomesRequest, tenant: str) -> list[AlgorithmModel]:
        """Each outcome's model, looked up once per distinct key or id."""
        by_key: dict[str, AlgorithmModel] = {}
        by_id: dict[str, AlgorithmModel] = {}
        found: list[AlgorithmModel] = []
        for index, item in enumerate(request.outcomes):
            if item.model_id is not None:
                model = by_id.get(item.model_id)
                if model is None:
                    model = self._lookup(
                        lambda i=item.model_id: self._models.get(i, tenant=tenant),
                        field=f"outcomes.{index}.modelId",
                        label=f"model {item.model_id!r}",
                    )
                if item.model_key is not None and item.model_key != model.key:
                    raise InvalidInput(
                        f"modelKey {item.model_key!r} is not the key of model {model.id!r} "
                        f"({model.key!r})",
                        field=f"outcomes.{index}.modelKey",
                    )
            else:
                assert item.model_key is not None
                model = by_key.get(item.model_key)
                if model is None:
                    model = self._lookup(
                        lambda k=item.model_key: self._models.get_by_key(k, tenant=tenant),
                        field=f"outcomes.{index}.modelKey",
                        label=f"model key {item.model_key!r}",
                    )
            by_id[model.id], by_key[model.key] = model, model
            found.append(model)
        return found

    @staticmethod
    def _lookup(fetch: Any, *, field: str, label: str) -> AlgorithmModel:
        try:
            model: AlgorithmModel = fetch()
        except NotFound as exc:
            raise NotFound(f"{label} not found", field=field) from exc
        return model
