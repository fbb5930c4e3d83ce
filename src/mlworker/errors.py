"""The one error hierarchy.

Every error ML Worker raises on purpose is an :class:`MLWorkerError` with a stable ``code``.
Subclasses also inherit the matching builtin so plain Python callers can catch ``ValueError`` or
``LookupError``. The HTTP mapping (status and RFC 9457 body) lives in exactly one place,
``mlworker.api.problems``; job failures record ``code`` and ``message`` on the job row.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MLWorkerError(Exception):
    """Base of every deliberate ML Worker error.

    Parameters
    ----------
    message
        Human-readable explanation, shown as the problem ``detail``.
    field
        The offending input field, dotted (``dataset.path``), when there is one.
    extra
        Further machine-readable members for the problem body.
    """

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (pool workers); keyword-only arguments need help.
        return (_rebuild_error, (type(self), self.message, self.field, self.extra))


def _rebuild_error(
    cls: type[MLWorkerError], message: str, field: str | None, extra: dict[str, Any]
) -> MLWorkerError:
    return cls(message, field=field, **extra)


class ConfigurationError(MLWorkerError, ValueError):
    """Settings are invalid; start-up stops."""

    code = "configuration_error"
    title = "Invalid configuration"


class InvalidInput(MLWorkerError, ValueError):
    """The request or job parameters are wrong."""

    code = "invalid_input"
    status = 400
    title = "Invalid input"


class ValidationFailed(InvalidInput):
    """A request body or job parameters failed schema validation (422, every error listed)."""

    code = "validation_error"
    status = 422
    title = "Validation failed"


class PathNotAllowed(InvalidInput):
    """A dataset path escapes the data root or is a URL."""

    code = "path_not_allowed"
    title = "Path not allowed"


class UnknownTable(InvalidInput):
    """A table named in a dataset spec is not in the platform database."""

    code = "unknown_table"
    title = "Unknown table"


class UnknownColumn(InvalidInput):
    """A column named in a dataset spec does not exist."""

    code = "unknown_column"
    title = "Unknown column"


class UnreadableDataset(InvalidInput):
    """A file could not be parsed as the format it claims to be."""

    code = "unreadable_dataset"
    title = "Unreadable dataset"


class DatasetNotFound(InvalidInput):
    """A file or uploaded dataset named in a request does not exist (for this tenant)."""

    code = "dataset_not_found"
    title = "Dataset not found"


class DatasetTooLarge(MLWorkerError, ValueError):
    """A dataset exceeds the configured memory budget or row cap."""

    code = "dataset_too_large"
    status = 413
    title = "Dataset too large"


class PayloadTooLarge(MLWorkerError, ValueError):
    """A request body or upload exceeds its size limit."""

    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class NotFound(MLWorkerError, LookupError):
    """The record does not exist, or belongs to another tenant (never distinguished)."""

    code = "not_found"
    status = 404
    title = "Not found"


class Unauthorized(MLWorkerError, PermissionError):
    """No valid API key was presented."""

    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Conflict(MLWorkerError, ValueError):
    """The request contradicts the record's current state."""

    code = "conflict"
    status = 409
    title = "Conflict"


class IdempotencyKeyReused(Conflict):
    """The same ``Idempotency-Key`` was sent with a different request."""

    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class JobNotCancellable(Conflict):
    """The job already finished."""

    code = "job_not_cancellable"
    title = "Job not cancellable"


class ArtifactCorrupt(MLWorkerError):
    """An artifact's bytes no longer match the checksum recorded when it was written."""

    code = "artifact_corrupt"
    title = "Artifact corrupt"


class ServiceUnavailable(MLWorkerError, ConnectionError):
    """A dependency (database, broker) is down; retry later."""

    code = "service_unavailable"
    status = 503
    title = "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The metadata or platform database cannot be reached."""

    code = "database_unavailable"
    title = "Database unavailable"


class BrokerUnavailable(ServiceUnavailable):
    """The Celery broker cannot be reached."""

    code = "broker_unavailable"
    title = "Broker unavailable"


class JobCancelled(MLWorkerError):
    """Raised inside a running job at its next progress report after a cancel request."""

    code = "cancelled"
    status = 409
    title = "Job cancelled"


class JobTimeLimitExceeded(MLWorkerError):
    """A job ran past its time limit and was stopped."""

    code = "time_limit"
    status = 500
    title = "Job time limit exceeded"


class WorkerLost(MLWorkerError):
    """The process running a job died (killed, crashed, out of memory)."""

    code = "worker_lost"
    status = 500
    title = "Worker lost"


class OutOfMemory(MLWorkerError):
    """A job ran out of memory."""

    code = "out_of_memory"
    status = 500
    title = "Out of memory"


class SearchFailed(MLWorkerError, ValueError):
    """No trial of a hyperparameter search completed: each one failed, or time ran out."""

    code = "no_trial_completed"
    status = 422
    title = "No trial completed"


class ExportUnavailable(InvalidInput):
    """A model cannot be exported in the requested format."""

    code = "export_unavailable"
    title = "Export unavailable"


class NoUsableColumns(InvalidInput):
    """After excluding identifiers, constant, empty and unsupported columns nothing is left."""

    code = "no_usable_columns"
    title = "No usable columns"


class NotEnoughData(InvalidInput):
    """Too few rows (or events) for the analysis asked for, e.g. fewer rows than clusters."""

    code = "not_enough_data"
    title = "Not enough data"


def _subclasses(cls: type[MLWorkerError]) -> list[type[MLWorkerError]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def error_from_code(code: str, message: str, field: str | None = None) -> MLWorkerError:
    """Rebuild the error a job recorded (``code`` + ``message``) as its exception class.

    Examples
    --------
    >>> error = error_from_code("unknown_column", "no column 'x'", "dataset.columns")
    >>> type(error).__name__, error.status, error.field
    ('UnknownColumn', 400, 'dataset.columns')
    """
    for cls in _subclasses(MLWorkerError):
        if cls.code == code:
            return cls(message, field=field)
    return MLWorkerError(message, field=field)


class InvalidTransition(Conflict):
    """A registry lifecycle change the state machine does not allow (draft → champion, …)."""

    code = "invalid_transition"
    title = "Invalid lifecycle transition"


class EngineUnavailable(ServiceUnavailable):
    """A scoring engine cannot answer now (external endpoint down, circuit breaker open)."""

    code = "engine_unavailable"
    title = "Scoring engine unavailable"
