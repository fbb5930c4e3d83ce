"""Request and response models of the core API families (camelCase dialect)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mlworker.data.spec import DatasetSpec
from mlworker.data.values import UploadInfo
from mlworker.jobs.values import Job


class CamelModel(BaseModel):
    """Accepts snake_case and camelCase; answers in camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, serialize_by_alias=True
    )


class ProgressRead(CamelModel):
    """Share of the work done and what the job is doing."""

    fraction: float
    message: str


class JobErrorRead(CamelModel):
    """Why a job failed."""

    code: str
    message: str
    field: str | None = None


class JobRead(CamelModel):
    """``GET /status/{job_id}``."""

    job_id: str
    type: str
    status: str
    progress: ProgressRead
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    result: dict[str, Any] | None
    error: JobErrorRead | None

    @classmethod
    def of(cls, job: Job) -> JobRead:
        """Build from a job value."""
        return cls(
            job_id=job.id,
            type=job.type,
            status=job.status.value,
            progress=ProgressRead(fraction=job.progress_fraction, message=job.progress_message),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            attempts=job.attempts,
            result=job.result,
            error=JobErrorRead(**job.error.to_dict()) if job.error else None,
        )


class JobSubmitted(CamelModel):
    """202 answer to any job-creating request."""

    job_id: str
    status: str
    type: str

    @classmethod
    def of(cls, job: Job) -> JobSubmitted:
        """Build from a job value."""
        return cls(job_id=job.id, status=job.status.value, type=job.type)


class JobList(CamelModel):
    """``GET /jobs``: one page, newest first, and the cursor to the next page."""

    items: list[JobRead]
    next_cursor: str | None


class JobCreate(CamelModel):
    """``POST /jobs``: submit any declared job type with its parameters."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class ColumnRead(CamelModel):
    """One profiled column."""

    name: str
    kind: str
    dtype: str
    missing: int
    distinct: int


class DatasetRead(CamelModel):
    """An uploaded dataset."""

    dataset_id: str
    name: str
    format: str
    size_bytes: int
    row_count: int
    columns: list[ColumnRead]
    fingerprint: str
    sha256: str
    created_at: datetime

    @classmethod
    def of(cls, info: UploadInfo) -> DatasetRead:
        """Build from an upload record."""
        return cls(
            dataset_id=info.id,
            name=info.name,
            format=info.file_format,
            size_bytes=info.size_bytes,
            row_count=info.row_count,
            columns=[ColumnRead(**column.to_dict()) for column in info.columns],
            fingerprint=info.fingerprint,
            sha256=info.sha256,
            created_at=info.created_at,
        )


class DatasetList(CamelModel):
    """``GET /datasets``."""

    items: list[DatasetRead]


class DatasetProfileRequest(CamelModel):
    """``POST /datasets/profile``: which dataset to load and profile as a job."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetSpec


class HealthRead(BaseModel):
    """``GET /health``: exactly ``{"status": "ok", "capabilities": [...]}``."""

    status: str
    capabilities: list[str]


class ReadinessRead(BaseModel):
    """``GET /health/ready`` when every check passes."""

    status: str
    checks: dict[str, str]
