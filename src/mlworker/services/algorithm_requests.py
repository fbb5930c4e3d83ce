"""Request bodies of the algorithm models API (seed 003's Field Reference), camelCase.

The same models validate HTTP bodies and the service's own callers (the decisioning layer, the
CLI), so a bad field is named the same way wherever it comes from. Engine ``config`` is checked
by the service against the engine's own config model, which these models cannot know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mlworker.data.spec import DatasetSpec
from mlworker.egress import EgressPolicy
from mlworker.errors import InvalidInput
from mlworker.registry.values import AlgorithmModel, restore_secrets
from mlworker.services.algorithm_engines import engine_config, is_incremental
from mlworker.services.jobs import validation_failed

ModelType = Literal[
    "scorecard",
    "bayesian",
    "logistic_regression",
    "gradient_boosted",
    "thompson_bandit",
    "epsilon_greedy",
    "neural_cf",
    "online_learner",
    "external_endpoint",
]

Status = Literal["draft", "training", "active", "paused", "archived", "error"]
#: Statuses only training jobs set; a client may not.
SYSTEM_STATUSES = frozenset({"training", "error"})
RegistryStatus = Literal["draft", "shadow", "challenger", "champion", "archived"]
LearnMode = Literal["per_outcome", "incremental", "scheduled"]
#: An attribute value the engines understand: a JSON scalar.
Scalar = str | int | float | bool | None

_KEY_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
#: Entries of a free-form map (``outcomeWeights``, ``interactionFeatures``).
MAX_MAP_ENTRIES = 1000
#: Characters of an outcome name in ``outcomeWeights``.
MAX_OUTCOME_NAME = 255
#: Bytes of ``interactionFeatures`` as JSON: it is stored with the model and read on every score.
MAX_FREE_JSON_BYTES = 65_536


class CamelRequest(BaseModel):
    """Frozen, camelCase (snake_case accepted), unknown fields refused."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Predictor(CamelRequest):
    """A feature the model uses (``predictors[]``): only ``selected`` ones are trained on."""

    field: str = Field(min_length=1, max_length=255)
    schema_key: str = Field("", max_length=255)
    importance: float | None = Field(None, allow_inf_nan=False)
    bins: int | list[float] | None = None
    selected: bool = True

    @field_validator("bins")
    @classmethod
    def _bins(cls, value: int | list[float] | None) -> int | list[float] | None:
        if isinstance(value, int) and not 1 <= value <= 1000:
            raise ValueError("bins must be between 1 and 1000")
        if isinstance(value, list) and not all(math.isfinite(edge) for edge in value):
            raise ValueError("bin edges must be finite numbers")
        return value


class LearningConfig(CamelRequest):
    """``learningConfig``: whether and how outcomes update the model.

    ``learnMode`` left out means the engine's natural mode (the seed's Auto-Learning table);
    ``schedule`` is an interval (``"24h"``, ``"7d"``) or a five-field cron expression.
    """

    auto_learn: bool = False
    learn_mode: LearnMode | None = None
    batch_threshold: int = Field(50, ge=1, le=1_000_000)
    schedule: str | None = Field(None, max_length=100)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Imported here: the decisioning package loads croniter, which only this check needs.
        from mlworker.decisioning.schedule import parse_schedule

        parse_schedule(value)
        return value

    @model_validator(mode="after")
    def _scheduled_needs_schedule(self) -> LearningConfig:
        if self.auto_learn and self.learn_mode == "scheduled" and self.schedule is None:
            raise ValueError("learnMode 'scheduled' with autoLearn needs a schedule, e.g. '24h'")
        return self


class EvolutionConfig(CamelRequest):
    """``evolutionConfig``: thresholds overriding the seed's Auto-Upgrade table for this model.

    They apply to the rule of the model's own engine: ``minRules`` (scorecard), ``minSamples``
    (every rule), ``maxAuc`` (Bayesian and logistic regression).
    """

    min_rules: int | None = Field(None, ge=0, le=1000)
    min_samples: int | None = Field(None, ge=0, le=1_000_000_000)
    max_auc: float | None = Field(None, ge=0.0, le=1.0)


class _ModelFields(CamelRequest):
    """Fields shared by create and update."""

    description: str = Field("", max_length=10_000)
    config: dict[str, Any] = Field(default_factory=dict)
    target_field: str = Field("", max_length=255)
    target_schema_key: str = Field("", max_length=255)
    predictors: list[Predictor] = Field(default_factory=list, max_length=1000)
    learning_config: LearningConfig = Field(default_factory=LearningConfig)
    outcome_weights: dict[str, float] | None = Field(None, max_length=MAX_MAP_ENTRIES)
    interaction_features: dict[str, Any] | None = Field(None, max_length=MAX_MAP_ENTRIES)
    evolution_config: EvolutionConfig | None = None

    @field_validator("predictors")
    @classmethod
    def _distinct_predictors(cls, value: list[Predictor]) -> list[Predictor]:
        seen: set[str] = set()
        for predictor in value:
            if predictor.field in seen:
                raise ValueError(f"predictor {predictor.field!r} is listed twice")
            seen.add(predictor.field)
        return value

    @field_validator("interaction_features")
    @classmethod
    def _bounded_features(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Free-form JSON: its nested strings and lists have no schema to bound them one by one.
        if value is not None and len(json.dumps(value).encode()) > MAX_FREE_JSON_BYTES:
            raise ValueError(f"at most {MAX_FREE_JSON_BYTES:,} bytes as JSON")
        return value

    @field_validator("outcome_weights", mode="before")
    @classmethod
    def _short_outcome_names(cls, value: Any) -> Any:
        # Checked here, not with a constrained key type: an error there would quote the key.
        if isinstance(value, dict) and any(len(str(name)) > MAX_OUTCOME_NAME for name in value):
            raise ValueError(f"an outcome name has at most {MAX_OUTCOME_NAME} characters")
        return value

    @field_validator("outcome_weights")
    @classmethod
    def _finite_weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and not all(math.isfinite(weight) for weight in value.values()):
            raise ValueError("outcome weights must be finite numbers")
        return value


class AlgorithmModelCreate(_ModelFields):
    """``POST /api/v1/algorithm-models``."""

    key: str = Field(min_length=1, max_length=255, pattern=_KEY_PATTERN)
    name: str = Field(min_length=1, max_length=255)
    model_type: ModelType
    status: Status = "draft"
    registry_family: str | None = Field(None, min_length=1, max_length=200)


class AlgorithmModelUpdate(_ModelFields):
    """``PUT /api/v1/algorithm-models/{id}``: the fields sent replace the stored ones.

    A body read with ``GET`` may be sent back as it is: the read-only fields are accepted and
    ignored when unchanged (``key``, ``modelType`` and ``registryStatus`` must not change here;
    promotions go through ``POST /{id}/promote``). Secrets shown as ``"***"`` keep their value.
    """

    key: str | None = Field(None, min_length=1, max_length=255)
    name: str | None = Field(None, min_length=1, max_length=255)
    model_type: ModelType | None = None
    status: Status | None = None
    registry_status: RegistryStatus | None = None
    registry_family: str | None = Field(None, min_length=1, max_length=200)
    # Read-only: accepted so that a body read with GET can be sent back, and ignored.
    id: str | None = None
    metrics: dict[str, Any] | None = None
    metrics_history: list[Any] | None = None
    model_state: dict[str, Any] | None = None
    state_revision: int | None = None
    pending_updates: int | None = None
    version: int | None = None
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class OfferToScore(CamelRequest):
    """One offer of a score request."""

    id: str = Field(min_length=1, max_length=255)
    attributes: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _numeric_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ScoreRequest(CamelRequest):
    """``POST /api/v1/algorithm-models/{id}/score``."""

    customer_id: str | None = Field(None, max_length=255)
    customer_attributes: dict[str, Scalar] = Field(default_factory=dict)
    offers: list[OfferToScore] = Field(max_length=1000)
    explain: bool = False
    seed: int | None = Field(None, ge=0, le=2**63 - 1)

    @field_validator("offers")
    @classmethod
    def _distinct_offers(cls, value: list[OfferToScore]) -> list[OfferToScore]:
        seen: set[str] = set()
        for offer in value:
            if offer.id in seen:
                raise ValueError(f"offer {offer.id!r} is listed twice")
            seen.add(offer.id)
        return value


class TrainRequest(CamelRequest):
    """``POST /api/v1/algorithm-models/{id}/train``.

    Without ``dataset`` the model trains on the outcomes logged for it. The outcome column
    defaults to the model's ``targetField`` when it has one, else ``outcome``. The id columns
    default to ``customerId`` and ``offerId``; a dataset may lack a defaulted one, but not one
    the request names.
    """

    dataset: DatasetSpec | None = None
    customer_id_column: str | None = Field(None, min_length=1, max_length=255)
    offer_id_column: str | None = Field(None, min_length=1, max_length=255)
    outcome_column: str | None = Field(None, min_length=1, max_length=255)
    validation_fraction: float = Field(0.2, ge=0.05, le=0.5)
    random_state: int = Field(0, ge=0, le=2**32 - 1)


class AlgorithmTrainingParams(TrainRequest):
    """Parameters of the ``algorithm_training`` job."""

    model_id: str = Field(pattern=r"^model-[0-9a-f]{12}$")
    actor: str = Field("system", max_length=200)


class PromoteRequest(CamelRequest):
    """``POST /api/v1/algorithm-models/{id}/promote``."""

    to: RegistryStatus
    reason: str | None = Field(None, max_length=2000)
    demote_to: Literal["archived", "challenger"] = "archived"


#: The seed's Auto-Learning table: how each engine learns when ``learnMode`` is left out.
NATURAL_LEARN_MODE: Mapping[str, str] = {
    "bayesian": "incremental",
    "logistic_regression": "scheduled",
    "gradient_boosted": "scheduled",
    "neural_cf": "scheduled",
    "thompson_bandit": "per_outcome",
    "epsilon_greedy": "per_outcome",
    "online_learner": "per_outcome",
}
_OUTCOME_MODES = frozenset({"per_outcome", "incremental"})
#: The seed's descriptive fields, kept together in ``mlw_models.spec``.
SPEC_FIELDS = (
    "targetField",
    "targetSchemaKey",
    "predictors",
    "learningConfig",
    "outcomeWeights",
    "interactionFeatures",
    "evolutionConfig",
)


def validated_request(model_class: type[BaseModel], body: Mapping[str, Any] | BaseModel) -> Any:
    """Validate ``body`` as ``model_class`` (a validated instance passes as it is)."""
    if isinstance(body, model_class):
        return body
    raw = (
        body.model_dump(by_alias=True, exclude_unset=True) if isinstance(body, BaseModel) else body
    )
    try:
        return model_class.model_validate(dict(raw))
    except ValidationError as exc:
        raise validation_failed(exc, prefix="") from exc


def _learning_config(model_type: str, body: Any) -> dict[str, Any]:
    learning: dict[str, Any] = body.learning_config.model_dump(mode="json", by_alias=True)
    mode = learning["learnMode"] or NATURAL_LEARN_MODE.get(model_type)
    if mode in _OUTCOME_MODES and not is_incremental(model_type):
        raise InvalidInput(
            f"learnMode {mode!r} needs an engine that learns from outcomes; {model_type} does "
            "not (use 'scheduled')",
            field="learningConfig.learnMode",
        )
    learning["learnMode"] = mode
    return learning


def spec_of(model_type: str, body: Any, fields: set[str] | None = None) -> dict[str, Any]:
    """Collect the descriptive fields of ``body`` (all, or only ``fields``), camelCase."""
    dumped = body.model_dump(mode="json", by_alias=True)
    spec = {name: dumped[name] for name in SPEC_FIELDS if fields is None or name in fields}
    if "learningConfig" in spec:
        spec["learningConfig"] = _learning_config(model_type, body)
    return spec


def update_changes(
    current: AlgorithmModel, request: AlgorithmModelUpdate, *, egress: EgressPolicy | None = None
) -> tuple[dict[str, Any], bool]:
    """Compare an update with the stored model: the columns to change, and whether ``config`` did.

    A new ``config`` is validated under ``egress``, the operator's egress policy.

    Raises
    ------
    InvalidInput
        ``key``, ``modelType`` or ``registryStatus`` differ from the stored ones, or a system
        status is requested.
    """
    sent = {type(request).model_fields[name].alias or name for name in request.model_fields_set}
    for name, value, stored in (
        ("key", request.key, current.key),
        ("modelType", request.model_type, current.model_type),
        ("registryStatus", request.registry_status, current.registry_status),
    ):
        if value is not None and value != stored:
            hint = "use POST /{id}/promote" if name == "registryStatus" else "create a model"
            raise InvalidInput(f"{name} cannot be changed here ({hint})", field=name)
    changes: dict[str, Any] = {}
    if request.name is not None:
        changes["name"] = request.name
    if "description" in sent:
        changes["description"] = request.description
    if request.registry_family is not None:
        changes["family"] = request.registry_family
    if request.status is not None and request.status != current.status:
        if request.status in SYSTEM_STATUSES:
            raise InvalidInput(
                f"status {request.status!r} is set by training jobs only", field="status"
            )
        changes["status"] = request.status
    new_revision = False
    if "config" in sent:
        incoming = restore_secrets(current.model_type, request.config, current.config)
        config = engine_config(current.model_type, incoming, egress=egress)
        if config != current.config:
            changes["config"] = config
            new_revision = True
    spec_fields = sent & set(SPEC_FIELDS)
    if spec_fields:
        changes["spec"] = {**current.spec, **spec_of(current.model_type, request, spec_fields)}
    current_values: dict[str, Any] = {
        "name": current.name,
        "description": current.description,
        "family": current.family,
        "spec": current.spec,
    }
    # A body read with GET and sent back unchanged changes nothing (and writes no audit row).
    unchanged = [name for name, value in changes.items() if current_values.get(name, ...) == value]
    for name in unchanged:
        del changes[name]
    return changes, new_revision
