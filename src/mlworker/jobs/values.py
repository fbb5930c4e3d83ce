"""Frozen values describing a job, shared by the store, the runners and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """Lifecycle ``queued → running → completed | failed | cancelled`` (ARCHITECTURE.md §5)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the job reached a terminal state."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed: a stable ``code`` and a human ``message``."""

    code: str
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored on the job row and returned by the API."""
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            data["field"] = self.field
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobError:
        """Inverse of :meth:`to_dict`."""
        return cls(code=str(data["code"]), message=str(data["message"]), field=data.get("field"))


@dataclass(frozen=True, slots=True)
class Job:
    """One job row as the rest of the code sees it."""

    id: str
    tenant: str
    type: str
    params: dict[str, Any]
    status: JobStatus
    progress_fraction: float
    progress_message: str
    attempts: int
    max_attempts: int
    runner: str
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker_id: str | None = None
    result: dict[str, Any] | None = None
    error: JobError | None = None
    idempotency_key: str | None = None
    params_hash: str = ""


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing and the cursor to the next (``None`` at the end)."""

    items: tuple[Job, ...]
    next_cursor: str | None


class RecoveryOutcome(StrEnum):
    """What the store did with a job whose worker disappeared."""

    REQUEUED = "requeued"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNCHANGED = "unchanged"
