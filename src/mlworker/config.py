"""The one settings class.

Every tunable of ML Worker is a field here, read from the environment (and a ``.env`` file) when
the composition root builds :class:`Settings`. Nothing else reads the environment. Environment
names from the seed documents stay valid (``DATABASE_URL``, ``ML_WORKER_PORT``, ``PORT``,
``HOST``, ``LOG_LEVEL``, ``OPTUNA_STORAGE``, ``MAX_TRIALS``, ``MODELS_DIR``); our own carry the
``MLWORKER_`` prefix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    ByteSize,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mlworker.egress import EgressPolicy
from mlworker.errors import ConfigurationError

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def _env(*names: str) -> AliasChoices:
    """Accept the field under each environment name, first one winning."""
    return AliasChoices(*names)


def memory_limit_bytes() -> int | None:
    """Return the memory this process may use: its cgroup's limit, else the machine's."""
    for path, unlimited in (
        ("/sys/fs/cgroup/memory.max", "max"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", None),
    ):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text != unlimited and text.isdigit() and int(text) < 1 << 60:
            return int(text)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def default_process_memory_budget() -> int:
    """Return a quarter of :func:`memory_limit_bytes`, within 256 MiB..4 GiB (1 GiB if unknown).

    A 4 GiB pod gets 1 GiB for the datasets its server process parses at once, leaving room for
    the worker processes; a 24 GiB machine gets 4 GiB.
    """
    limit = memory_limit_bytes()
    if limit is None:
        return 1024**3
    return max(256 * 1024**2, min(limit // 4, 4 * 1024**3))


class Settings(BaseSettings):
    """Configuration of one ML Worker process (server or worker).

    Build it once in the composition root (``mlworker serve``, ``mlworker worker``, tests) and
    pass it down. Invalid values raise :class:`~mlworker.errors.ConfigurationError` naming the
    environment variable when built through :func:`load_settings`.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- network -------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", validation_alias=_env("HOST", "MLWORKER_HOST", "host"))
    port: int = Field(
        8000,
        ge=1,
        le=65535,
        validation_alias=_env("ML_WORKER_PORT", "PORT", "MLWORKER_PORT", "port"),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", validation_alias=_env("LOG_LEVEL", "MLWORKER_LOG_LEVEL", "log_level")
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", validation_alias=_env("MLWORKER_LOG_FORMAT", "log_format")
    )

    # --- storage -------------------------------------------------------------------------------
    database_url: str = Field(
        "sqlite:///./var/mlworker.db",
        validation_alias=_env("DATABASE_URL", "MLWORKER_DATABASE_URL", "database_url"),
    )
    database_schema: str | None = Field(
        None, validation_alias=_env("MLWORKER_DATABASE_SCHEMA", "database_schema")
    )
    platform_database_url: str | None = Field(
        None, validation_alias=_env("MLWORKER_PLATFORM_DATABASE_URL", "platform_database_url")
    )
    platform_tables: Annotated[tuple[str, ...], NoDecode] = Field(
        ("*",), validation_alias=_env("MLWORKER_PLATFORM_TABLES", "platform_tables")
    )
    data_root: Path = Field(
        Path("./data"), validation_alias=_env("MLWORKER_DATA_ROOT", "data_root")
    )
    artifacts: str = Field(
        "./var/artifacts",
        validation_alias=_env("MLWORKER_ARTIFACTS", "MODELS_DIR", "artifacts"),
    )
    optuna_storage: str | None = Field(
        None, validation_alias=_env("OPTUNA_STORAGE", "optuna_storage")
    )
    max_trials: int = Field(1000, ge=1, validation_alias=_env("MAX_TRIALS", "max_trials"))

    # --- jobs ----------------------------------------------------------------------------------
    executor: Literal["local", "celery", "inline"] = Field(
        "local", validation_alias=_env("MLWORKER_EXECUTOR", "executor")
    )
    broker_url: str | None = Field(None, validation_alias=_env("MLWORKER_BROKER_URL", "broker_url"))
    queue_name: str = Field(
        "mlworker", min_length=1, validation_alias=_env("MLWORKER_QUEUE", "queue_name")
    )
    requeue_queued_after_seconds: float = Field(
        900.0,
        ge=0,
        validation_alias=_env(
            "MLWORKER_REQUEUE_QUEUED_AFTER_SECONDS", "requeue_queued_after_seconds"
        ),
    )
    workers: int = Field(
        default_factory=lambda: max(1, min(os.cpu_count() or 1, 8)),
        ge=1,
        le=256,
        validation_alias=_env("MLWORKER_WORKERS", "workers"),
    )
    job_threads: int = Field(
        default_factory=lambda: max(
            1, (os.cpu_count() or 1) // max(1, min(os.cpu_count() or 1, 8))
        ),
        ge=1,
        le=256,
        validation_alias=_env("MLWORKER_JOB_THREADS", "job_threads"),
    )
    sync_wait_seconds: float = Field(
        3600.0,
        gt=0,
        validation_alias=_env("MLWORKER_SYNC_WAIT_SECONDS", "sync_wait_seconds"),
    )
    job_max_attempts: int = Field(
        3, ge=1, le=20, validation_alias=_env("MLWORKER_JOB_MAX_ATTEMPTS", "job_max_attempts")
    )
    job_time_limit_seconds: float = Field(
        6 * 3600,
        gt=0,
        validation_alias=_env("MLWORKER_JOB_TIME_LIMIT_SECONDS", "job_time_limit_seconds"),
    )
    heartbeat_seconds: float = Field(
        10.0, gt=0, validation_alias=_env("MLWORKER_HEARTBEAT_SECONDS", "heartbeat_seconds")
    )
    heartbeat_timeout_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("MLWORKER_HEARTBEAT_TIMEOUT_SECONDS", "heartbeat_timeout_seconds"),
    )
    diagnostic_jobs: bool = Field(
        False, validation_alias=_env("MLWORKER_DIAGNOSTIC_JOBS", "diagnostic_jobs")
    )
    scoring_cache_seconds: float = Field(
        0.5,
        ge=0,
        validation_alias=_env("MLWORKER_SCORING_CACHE_SECONDS", "scoring_cache_seconds"),
    )
    learning_tick_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("MLWORKER_LEARNING_TICK_SECONDS", "learning_tick_seconds"),
    )

    # --- API -----------------------------------------------------------------------------------
    api_keys: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("MLWORKER_API_KEYS", "api_keys")
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("MLWORKER_CORS_ORIGINS", "cors_origins")
    )
    max_request_bytes: ByteSize = Field(
        ByteSize(16 * 1024**2),
        validation_alias=_env("MLWORKER_MAX_REQUEST_BYTES", "max_request_bytes"),
    )
    max_upload_bytes: ByteSize = Field(
        ByteSize(1024**3), validation_alias=_env("MLWORKER_MAX_UPLOAD_BYTES", "max_upload_bytes")
    )

    # --- datasets ------------------------------------------------------------------------------
    dataset_memory_budget: ByteSize = Field(
        ByteSize(2 * 1024**3),
        validation_alias=_env("MLWORKER_DATASET_MEMORY_BUDGET", "dataset_memory_budget"),
    )
    table_row_cap: int = Field(
        5_000_000, ge=1, validation_alias=_env("MLWORKER_TABLE_ROW_CAP", "table_row_cap")
    )

    # --- egress: outbound calls made on a tenant's behalf ----------------------------------------
    #: Hosts (exact or ``.suffix``) and CIDRs that tenants' outbound calls may reach although
    #: they are internal (private model servers); everything internal is denied otherwise.
    egress_allow: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("MLWORKER_EGRESS_ALLOW", "egress_allow")
    )
    #: Hosts (exact or ``.suffix``) for which a SigV4 model config without keys may be signed
    #: with the server's own AWS credentials; empty means never.
    egress_aws_credential_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        validation_alias=_env(
            "MLWORKER_EGRESS_AWS_CREDENTIAL_HOSTS", "egress_aws_credential_hosts"
        ),
    )

    @field_validator("egress_allow", "egress_aws_credential_hosts", mode="before")
    @classmethod
    def _parse_egress_entries(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            value = tuple(entry.strip() for entry in value.split(",") if entry.strip())
        if isinstance(value, list | tuple):
            entries = [str(entry) for entry in value]
            if info.field_name == "egress_allow":  # refuse bad entries at startup
                EgressPolicy.from_entries(entries)
            else:
                EgressPolicy.from_entries(aws_credential_hosts=entries)
        return value

    @property
    def egress_policy(self) -> EgressPolicy:
        """The egress policy these settings describe (build once, in the composition root)."""
        return EgressPolicy.from_entries(
            self.egress_allow, aws_credential_hosts=self.egress_aws_credential_hosts
        )

    # --- tenant outputs and platform tables ----------------------------------------------------
    # Job outputs live per tenant (<outputs>/<tenant>/<kind>/<job>.<ext>), apart from the shared
    # data root; a tenant reads its own back as {"path": "outputs/<kind>/<file>"}.
    outputs: Path = Field(
        Path("./var/outputs"), validation_alias=_env("MLWORKER_OUTPUTS", "outputs")
    )

    # --- uploads and process-wide memory -------------------------------------------------------
    max_upload_decompressed_bytes: ByteSize = Field(
        ByteSize(4 * 1024**3),
        gt=0,
        validation_alias=_env(
            "MLWORKER_MAX_UPLOAD_DECOMPRESSED_BYTES", "max_upload_decompressed_bytes"
        ),
    )
    max_upload_compression_ratio: float = Field(
        200.0,
        ge=0,
        validation_alias=_env(
            "MLWORKER_MAX_UPLOAD_COMPRESSION_RATIO", "max_upload_compression_ratio"
        ),
    )
    api_memory_budget: ByteSize = Field(
        default_factory=lambda: ByteSize(default_process_memory_budget()),
        gt=0,
        validation_alias=_env("MLWORKER_API_MEMORY_BUDGET", "api_memory_budget"),
    )
    api_memory_wait_seconds: float = Field(
        5.0,
        ge=0,
        validation_alias=_env("MLWORKER_API_MEMORY_WAIT_SECONDS", "api_memory_wait_seconds"),
    )
    upload_parse_seconds: float = Field(
        120.0,
        gt=0,
        validation_alias=_env("MLWORKER_UPLOAD_PARSE_SECONDS", "upload_parse_seconds"),
    )

    # --- overload, server processes and shutdown -----------------------------------------------
    server_workers: int = Field(
        1, ge=1, le=64, validation_alias=_env("MLWORKER_SERVER_WORKERS", "server_workers")
    )
    max_concurrent_requests: int = Field(
        2,
        ge=1,
        le=10_000,
        validation_alias=_env("MLWORKER_MAX_CONCURRENT_REQUESTS", "max_concurrent_requests"),
    )
    max_concurrent_uploads: int = Field(
        2,
        ge=1,
        le=1_000,
        validation_alias=_env("MLWORKER_MAX_CONCURRENT_UPLOADS", "max_concurrent_uploads"),
    )
    max_queued_requests: int = Field(
        128,
        ge=0,
        le=100_000,
        validation_alias=_env("MLWORKER_MAX_QUEUED_REQUESTS", "max_queued_requests"),
    )
    queue_wait_seconds: float = Field(
        1.5,
        ge=0,
        le=600,
        validation_alias=_env("MLWORKER_QUEUE_WAIT_SECONDS", "queue_wait_seconds"),
    )
    shutdown_grace_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        validation_alias=_env("MLWORKER_SHUTDOWN_GRACE_SECONDS", "shutdown_grace_seconds"),
    )

    # --- API documentation and error contract --------------------------------------------------
    #: With API keys set, /docs, /redoc and /openapi.json need a key too unless this is true.
    public_docs: bool = Field(False, validation_alias=_env("MLWORKER_PUBLIC_DOCS", "public_docs"))

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        keys: dict[str, str] = {}
        for pair in filter(None, (item.strip() for item in value.split(","))):
            key, sep, tenant = (part.strip() for part in pair.partition(":"))
            if not sep or not key or not tenant:
                raise ValueError("expected comma-separated 'key:tenant' pairs")
            if not _TENANT.match(tenant):
                raise ValueError(
                    f"tenant {tenant!r} must start with a letter or digit and use only "
                    "letters, digits, '_', '.', '-'"
                )
            keys[key] = tenant
        return keys

    @field_validator("cors_origins", "platform_tables", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("database_url", "platform_database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalise_database_url(value)

    @field_validator("database_schema")
    @classmethod
    def _check_schema(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError("schema name may only contain letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.executor == "celery" and not self.broker_url:
            raise ValueError(
                "MLWORKER_BROKER_URL is required when MLWORKER_EXECUTOR=celery "
                "(e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//)"
            )
        if self.heartbeat_timeout_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError(
                "MLWORKER_HEARTBEAT_TIMEOUT_SECONDS must exceed twice MLWORKER_HEARTBEAT_SECONDS"
            )
        return self

    # --- derived values ------------------------------------------------------------------------
    @property
    def platform_url(self) -> str:
        """Database holding the platform's own tables (``ds_*``); defaults to ``database_url``."""
        return self.platform_database_url or self.database_url

    @property
    def auth_enabled(self) -> bool:
        """Whether requests must carry an API key."""
        return bool(self.api_keys)

    @property
    def visibility_timeout_seconds(self) -> int:
        """Broker visibility timeout: longer than the longest job, so no job is redelivered live."""
        return int(self.job_time_limit_seconds + 3600)


def normalise_database_url(url: str) -> str:
    """Map the URL forms people paste (``postgres://``, ``postgresql://``) onto psycopg 3.

    Examples
    --------
    >>> normalise_database_url("postgresql://u:p@db:5432/app")
    'postgresql+psycopg://u:p@db:5432/app'
    >>> normalise_database_url("sqlite:///./var/x.db")
    'sqlite:///./var/x.db'
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _variable_name(loc: tuple[int | str, ...]) -> str:
    """Name the environment variable a validation error location refers to."""
    if not loc:
        return "configuration"
    field = Settings.model_fields.get(str(loc[0]))
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return str(loc[0])


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings` from the environment, naming the variable on failure.

    Parameters
    ----------
    **overrides
        Field values that take precedence over the environment (used by the CLI options).

    Raises
    ------
    ConfigurationError
        One line per invalid variable, e.g. ``MLWORKER_EXECUTOR: Input should be 'local' …``.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{_variable_name(tuple(error['loc']))}: {message}")
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(lines)) from exc
