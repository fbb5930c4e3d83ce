"""Frozen values of the model registry (ARCHITECTURE.md §5)."""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlworker.errors import InvalidTransition

#: ``model-`` and 12 lower-case hex digits; anything else is answered 404 without a lookup.
MODEL_ID = re.compile(r"^model-[0-9a-f]{12}$")


def new_model_id() -> str:
    """Return a fresh model id."""
    return f"model-{secrets.token_hex(6)}"


def is_model_id(value: str) -> bool:
    """Whether ``value`` has the model id format.

    Examples
    --------
    >>> is_model_id("model-0123456789ab"), is_model_id("model-../../etc")
    (True, False)
    """
    return bool(MODEL_ID.fullmatch(value))


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable version of a model and the artifact holding it."""

    model_id: str
    version: int
    artifact_uri: str
    artifact_sha256: str
    artifact_format: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    dataset_fingerprint: str | None
    job_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A model in the registry, with its latest version."""

    id: str
    tenant: str
    key: str
    name: str
    kind: str
    family: str
    config: dict[str, Any]
    status: str
    registry_status: str
    latest_version: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    version: ModelVersion | None = None


#: ``mlw_models.kind`` of the seed's algorithm models (scoring engines).
ALGORITHM_MODEL_KIND = "algorithm_model"

#: The registry lifecycle: from each ``registryStatus``, the statuses a promotion may reach.
REGISTRY_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"challenger", "shadow", "archived"}),
    "shadow": frozenset({"challenger", "draft", "archived"}),
    "challenger": frozenset({"champion", "draft", "archived"}),
    "champion": frozenset({"archived", "challenger"}),
    "archived": frozenset({"draft"}),
}

#: What a displaced champion may become when another model of its family is promoted.
DEMOTION_TARGETS = ("archived", "challenger")

#: Shown instead of a secret configuration value.
REDACTED = "***"

# Used only when the external endpoint engine (which names its secrets) cannot be imported.
_SECRET_NAME = re.compile(r"key|token|secret|password|credential|signature", re.IGNORECASE)


def check_transition(current: str, target: str) -> None:
    """Refuse a registry change the lifecycle does not allow.

    Raises
    ------
    InvalidTransition
        ``current → target`` is not in :data:`REGISTRY_TRANSITIONS` (the error names both).

    Examples
    --------
    >>> check_transition("challenger", "champion")
    >>> check_transition("draft", "champion")
    Traceback (most recent call last):
    ...
    mlworker.errors.InvalidTransition: a model cannot go from 'draft' to 'champion'; \
from 'draft' it may go to archived, challenger, shadow
    """
    allowed = REGISTRY_TRANSITIONS.get(current, frozenset())
    if target not in allowed:
        raise InvalidTransition(
            f"a model cannot go from {current!r} to {target!r}; from {current!r} it may go to "
            f"{', '.join(sorted(allowed)) or 'nowhere'}",
            field="to",
            **{"from": current, "to": target},
        )


def _secret_paths(model_type: str) -> tuple[str, ...] | None:
    if model_type != "external_endpoint":
        return ()
    try:
        from mlworker.engines.external_endpoint import SECRET_FIELDS
    except ImportError:
        return None
    return tuple(SECRET_FIELDS)


def _redact_path(config: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    node: Any = config
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and node.get(leaf) not in (None, ""):
        node[leaf] = REDACTED


def _redact_named(node: Any) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            if isinstance(value, dict | list):
                _redact_named(value)
            elif _SECRET_NAME.search(name) and value not in (None, ""):
                node[name] = REDACTED
    elif isinstance(node, list):
        for item in node:
            _redact_named(item)


def redacted_config(model_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``config`` with every secret value replaced by :data:`REDACTED`.

    Secrets are the external endpoint engine's ``SECRET_FIELDS`` (dotted paths); should that
    engine be missing, every value whose name looks secret (key, token, password, ...) is hidden.

    Examples
    --------
    >>> redacted_config("scorecard", {"baseScore": 50})
    {'baseScore': 50}
    """
    copied: dict[str, Any] = copy.deepcopy(dict(config))
    paths = _secret_paths(model_type)
    if paths is None:
        _redact_named(copied)
    else:
        for path in paths:
            _redact_path(copied, path)
    return copied


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def restore_secrets(
    model_type: str, incoming: Mapping[str, Any], stored: Mapping[str, Any]
) -> dict[str, Any]:
    """Put back the stored secret wherever ``incoming`` sends :data:`REDACTED` for it.

    A client that reads a model (secrets shown as ``"***"``) and sends its config back must not
    overwrite the real credentials with the placeholder.

    Examples
    --------
    >>> restore_secrets("external_endpoint", {"authConfig": {"token": "***"}},
    ...                 {"authConfig": {"token": "s3cr3t"}})
    {'authConfig': {'token': 's3cr3t'}}
    """
    restored: dict[str, Any] = copy.deepcopy(dict(incoming))
    paths = _secret_paths(model_type)
    for path in paths or ():
        *parents, leaf = path.split(".")
        new_node: Any = restored
        old_node: Any = stored
        for part in parents:
            new_node = next(
                (
                    new_node[k]
                    for k in (part, _snake(part))
                    if isinstance(new_node, dict) and k in new_node
                ),
                None,
            )
            old_node = old_node.get(part) if isinstance(old_node, dict) else None
        if not isinstance(new_node, dict):
            continue
        for name in (leaf, _snake(leaf)):
            if new_node.get(name) == REDACTED and isinstance(old_node, dict):
                new_node[name] = old_node.get(leaf)
    return restored


@dataclass(frozen=True, slots=True)
class AlgorithmModel:
    """A propensity scoring model (seed 003's algorithm model) as the registry holds it.

    ``spec`` carries the seed's descriptive fields under their camelCase names
    (``targetField``, ``targetSchemaKey``, ``predictors``, ``learningConfig``,
    ``outcomeWeights``, ``interactionFeatures``, ``evolutionConfig``); ``metrics`` are the latest
    version's; ``state_revision`` counts changes to the live learned state.
    """

    id: str
    tenant: str
    key: str
    name: str
    description: str
    model_type: str
    family: str
    config: dict[str, Any]
    status: str
    registry_status: str
    spec: dict[str, Any]
    state_revision: int
    latest_version: int
    metrics: dict[str, Any]
    metrics_history: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    pending_updates: int = field(default=0)

    def to_api(self, *, model_state: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return the camelCase body of the seed's Field Reference, secrets redacted.

        Parameters
        ----------
        model_state
            The live learned parameters, included as ``modelState`` when given.
        """
        spec = self.spec
        body: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "modelType": self.model_type,
            "status": self.status,
            "config": redacted_config(self.model_type, self.config),
            "targetField": spec.get("targetField", ""),
            "targetSchemaKey": spec.get("targetSchemaKey", ""),
            "predictors": spec.get("predictors", []),
            "metrics": self.metrics,
            "metricsHistory": self.metrics_history,
            "learningConfig": spec.get("learningConfig", {}),
            "outcomeWeights": spec.get("outcomeWeights"),
            "interactionFeatures": spec.get("interactionFeatures"),
            "evolutionConfig": spec.get("evolutionConfig"),
            "registryStatus": self.registry_status,
            "registryFamily": self.family,
            "stateRevision": self.state_revision,
            "pendingUpdates": self.pending_updates,
            "version": self.latest_version,
            "createdBy": self.created_by,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
        }
        if model_state is not None:
            body["modelState"] = dict(model_state)
        return body
