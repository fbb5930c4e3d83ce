"""Frozen values of the model registry (ARCHITECTURE.md §5)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
