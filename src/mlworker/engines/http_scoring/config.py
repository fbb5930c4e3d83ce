"""Configuration of the ``external_endpoint`` engine (seed 003, "External Model Endpoint").

The seed's SageMaker example is the reference::

    {
      "endpointUrl":
        "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/churn-model/invocations",
      "authType": "aws_sigv4",
      "authConfig": {"awsRegion": "us-east-1", "awsService": "sagemaker"},
      "scoringMode": "batch",
      "responseMapping": {"batchScoresPath": "scores", "fallbackScore": 0.5},
      "timeoutMs": 200
    }

Secret fields are listed in :data:`SECRET_FIELDS` so the API can redact them; they are also
hidden from every ``repr``.

The operator's :class:`~mlworker.egress.EgressPolicy` comes in through the validation context
(``model_validate(raw, context={"egress": policy})``, which
:func:`mlworker.engines.config_of` does). When a tenant saves a config, ``endpointUrl`` is
checked against it and a SigV4 config without keys is refused unless the policy lets the
server's own AWS credentials sign for the host. The validated config keeps the policy
(:attr:`ExternalEndpointConfig.egress`) for the connect-time checks, which apply to every call,
also of configs stored before the policy changed. Without a context the default policy
applies: every internal target denied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mlworker.egress import EgressPolicy
from mlworker.engines._base import EngineConfig
from mlworker.engines.http_scoring.mapping import parse_path

#: Dotted (camelCase) paths of the config values that are secrets.
SECRET_FIELDS = (
    "authConfig.apiKey",
    "authConfig.token",
    "authConfig.secretAccessKey",
    "authConfig.sessionToken",
)
REDACTED = "***"
#: Key of the :class:`~mlworker.egress.EgressPolicy` in the pydantic validation context.
EGRESS_CONTEXT_KEY = "egress"
#: Context key: ``False`` skips the checks made when a tenant saves a config (a stored config
#: being rebuilt); the same rules still hold at connect time, with a stable failure category.
CHECK_EGRESS_CONTEXT_KEY = "check_egress"
_DEFAULT_POLICY = EgressPolicy()

_HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"


class _Section(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class AuthConfig(_Section):
    """Credentials for ``authType``; only the fields of the chosen type are used."""

    api_key: str | None = Field(default=None, min_length=1, repr=False)
    header_name: str = Field(default="x-api-key", pattern=_HEADER_NAME)
    token: str | None = Field(default=None, min_length=1, repr=False)
    aws_region: str | None = Field(default=None, min_length=1)
    aws_service: str = Field(default="sagemaker", min_length=1)
    access_key_id: str | None = Field(default=None, min_length=1)
    secret_access_key: str | None = Field(default=None, min_length=1, repr=False)
    session_token: str | None = Field(default=None, min_length=1, repr=False)


class ResponseMapping(_Section):
    """Where the scores (and optional explanations) are in the endpoint's JSON answer.

    Paths are dot paths (``predictions[0].score``, ``data.items.2.p``; ``""`` is the whole
    answer). In batch mode ``batchScoresPath`` names an array with one item per instance; an
    item that is an object or array holds its score at ``scorePath``. In single mode
    ``scorePath`` names the score. ``explanationPath`` names, per answer, an array with one
    explanation per instance (batch) or the instance's explanation (single).
    """

    batch_scores_path: str = "scores"
    score_path: str = "score"
    fallback_score: float = Field(default=0.5, ge=0.0, le=1.0)
    explanation_path: str | None = None

    @field_validator("batch_scores_path", "score_path", "explanation_path")
    @classmethod
    def _valid_path(cls, path: str | None) -> str | None:
        if path is not None:
            parse_path(path)
        return path


class RequestFormat(_Section):
    """The request body.

    Batch mode sends ``{instancesKey: [instance, ...]}`` (a bare array when ``instancesKey`` is
    ``null``); single mode sends the instance object itself, or ``{singleKey: instance}``. An
    instance holds ``customerId``, ``offerId`` and the candidate's attributes, only those in
    ``fields`` when it is set.
    """

    instances_key: str | None = Field(default="instances", min_length=1)
    single_key: str | None = Field(default=None, min_length=1)
    fields: tuple[str, ...] | None = None


class CacheConfig(_Section):
    """Response cache keyed by a hash of the instance sent."""

    enabled: bool = False
    ttl_seconds: float = Field(default=60, gt=0)
    max_entries: int = Field(default=10_000, ge=1)


class CircuitBreakerConfig(_Section):
    """Open after ``failureThreshold`` consecutive failures; one trial after the reset timeout."""

    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout_ms: int = Field(default=30_000, ge=0)


class ExternalEndpointConfig(EngineConfig):
    """Configuration of the ``external_endpoint`` engine.

    Examples
    --------
    >>> config = ExternalEndpointConfig.model_validate({
    ...     "endpointUrl": "https://models.example.com/score", "authType": "bearer",
    ...     "authConfig": {"token": "s3cr3t"}})
    >>> config.timeout_ms, config.scoring_mode, config.response_mapping.fallback_score
    (200, 'batch', 0.5)
    >>> "s3cr3t" in repr(config)
    False
    """

    endpoint_url: str
    auth_type: Literal["none", "api_key", "bearer", "aws_sigv4"] = "none"
    auth_config: AuthConfig = Field(default_factory=AuthConfig)
    scoring_mode: Literal["batch", "single"] = "batch"
    response_mapping: ResponseMapping = Field(default_factory=ResponseMapping)
    timeout_ms: int = Field(default=200, ge=1, le=60_000)
    request_format: RequestFormat = Field(default_factory=RequestFormat)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    #: Parallel requests in single mode (one request per candidate).
    max_concurrency: int = Field(default=8, ge=1, le=64)
    _egress: EgressPolicy = PrivateAttr(default=_DEFAULT_POLICY)

    @property
    def egress(self) -> EgressPolicy:
        """The egress policy this config was validated against (connect-time checks use it)."""
        return self._egress

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, url: str, info: ValidationInfo) -> str:
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(
                f"endpointUrl must be an http or https URL, got scheme {parts.scheme!r}"
            )
        if not parts.hostname:
            raise ValueError("endpointUrl has no host")
        if parts.username is not None or parts.password is not None:
            # Credentials in the URL would end up in logs; they belong in authConfig.
            raise ValueError("endpointUrl must not carry credentials; use authType/authConfig")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as error:
            raise ValueError(f"endpointUrl has an invalid port: {error}") from None
        try:
            if _checks_on_save(info):
                _policy(info).check_url(url)
        except ValueError as error:
            raise ValueError(f"endpointUrl is refused by the egress policy: {error}") from None
        return url

    @field_validator("auth_config")
    @classmethod
    def _no_server_credentials_for_tenant_hosts(
        cls, auth: AuthConfig, info: ValidationInfo
    ) -> AuthConfig:
        url = info.data.get("endpoint_url")
        if info.data.get("auth_type") != "aws_sigv4" or auth.access_key_id is not None or not url:
            return auth
        if not _checks_on_save(info):
            return auth
        host = urlsplit(url).hostname or ""
        if not _policy(info).may_use_server_credentials(host):
            raise ValueError(
                "authType 'aws_sigv4' needs authConfig.accessKeyId and "
                f"authConfig.secretAccessKey: the server's own AWS credentials are not used "
                f"for {host!r} (the operator lists the hosts that may use them)"
            )
        return auth

    @model_validator(mode="after")
    def _credentials_for_auth_type(self) -> Self:
        auth = self.auth_config
        required = {
            "api_key": [("apiKey", auth.api_key)],
            "bearer": [("token", auth.token)],
            "aws_sigv4": [("awsRegion", auth.aws_region)],
        }.get(self.auth_type, [])
        missing = [f"authConfig.{name}" for name, value in required if value is None]
        if missing:
            raise ValueError(f"authType {self.auth_type!r} needs {', '.join(missing)}")
        if self.auth_type == "aws_sigv4":
            if (auth.access_key_id is None) != (auth.secret_access_key is None):
                raise ValueError(
                    "authConfig.accessKeyId and authConfig.secretAccessKey go together; give "
                    "both, or neither to use the server's credentials where the operator allows"
                )
            if auth.session_token is not None and auth.access_key_id is None:
                raise ValueError("authConfig.sessionToken needs accessKeyId and secretAccessKey")
        return self

    @model_validator(mode="after")
    def _keep_policy(self, info: ValidationInfo) -> Self:
        self._egress = _policy(info)
        return self


def _checks_on_save(info: ValidationInfo) -> bool:
    context = info.context
    return (
        not isinstance(context, Mapping) or context.get(CHECK_EGRESS_CONTEXT_KEY, True) is not False
    )


def _policy(info: ValidationInfo) -> EgressPolicy:
    context = info.context
    found = context.get(EGRESS_CONTEXT_KEY) if isinstance(context, Mapping) else None
    return found if isinstance(found, EgressPolicy) else _DEFAULT_POLICY


def redact_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a raw config, replacing every :data:`SECRET_FIELDS` value by ``"***"``.

    Accepts camelCase or snake_case keys, as the API does.

    Examples
    --------
    >>> redact_secrets({"endpointUrl": "https://m", "authConfig": {"token": "t", "x": 1}})
    {'endpointUrl': 'https://m', 'authConfig': {'token': '***', 'x': 1}}
    >>> redact_secrets({"auth_config": {"api_key": "k"}})
    {'auth_config': {'api_key': '***'}}
    """
    redacted = dict(config)
    for dotted in SECRET_FIELDS:
        section, name = dotted.split(".")
        for section_key in (section, _snake(section)):
            inner = redacted.get(section_key)
            if not isinstance(inner, Mapping):
                continue
            inner = dict(inner)
            for key in (name, _snake(name)):
                if inner.get(key) is not None:
                    inner[key] = REDACTED
            redacted[section_key] = inner
    return redacted


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
