"""Job use cases: submit (with idempotency), read, list, cancel."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from mlworker.config import Settings
from mlworker.data.spec import PathDataset, RowsDataset, TableDataset, UploadedDataset
from mlworker.errors import BrokerUnavailable, IdempotencyKeyReused, ValidationFailed
from mlworker.jobs.base import JobRunner
from mlworker.jobs.registry import get_job_type
from mlworker.jobs.values import Job, JobPage, JobStatus
from mlworker.serialization import canonical_hash
from mlworker.services.datasets import DatasetService
from mlworker.store.jobs import JobRepository
from mlworker.validation import field_path

_DATASET_SPECS = (PathDataset, TableDataset, RowsDataset, UploadedDataset)


@runtime_checkable
class NamesDatasets(Protocol):
    """Parameters that name a dataset outside a spec field (the seed's ``dataset_path``)."""

    def check_datasets(self, validate: Callable[[BaseModel], None]) -> None:
        """Validate each such dataset with ``validate``; errors name the request's field."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A submitted job and whether this request created it (false: idempotent replay)."""

    job: Job
    created: bool


def validation_failed(exc: ValidationError, *, prefix: str) -> ValidationFailed:
    """Turn pydantic's errors into one :class:`ValidationFailed` naming the first field."""
    errors = []
    for error in exc.errors(include_url=False):
        errors.append({"field": field_path(error["loc"], prefix=prefix), "message": error["msg"]})
    first = errors[0]
    return ValidationFailed(
        f"{first['field']}: {first['message']}", field=first["field"], errors=errors
    )


class JobService:
    """Submit and manage jobs; the only place that hands work to a runner."""

    def __init__(
        self,
        *,
        settings: Settings,
        repository: JobRepository,
        runner: JobRunner,
        datasets: DatasetService,
    ) -> None:
        self._settings = settings
        self._repository = repository
        self._runner = runner
        self._datasets = datasets

    def submit(
        self,
        *,
        tenant: str,
        job_type: str,
        params: BaseModel | Mapping[str, Any],
        idempotency_key: str | None = None,
        field_prefix: str = "params",
    ) -> Submission:
        """Validate ``params`` for ``job_type``, record the job and hand it to the runner.

        Raises
        ------
        InvalidInput
            Unknown job type, invalid parameters, or a dataset that cannot load.
        IdempotencyKeyReused
            ``idempotency_key`` already names a job with different parameters.
        ServiceUnavailable
            The database or broker is down; nothing is left behind.
        """
        declared = get_job_type(job_type, allow_diagnostic=self._settings.diagnostic_jobs)
        if isinstance(params, declared.params):
            model = params
        else:
            raw = params.model_dump() if isinstance(params, BaseModel) else dict(params)
            try:
                model = declared.params.model_validate(raw)
            except ValidationError as exc:
                raise validation_failed(exc, prefix=field_prefix) from exc
        if declared.check is not None:
            model = declared.check(model)
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, _DATASET_SPECS):
                self._datasets.validate(value, tenant=tenant)
        if isinstance(model, NamesDatasets):
            model.check_datasets(partial(self._datasets.validate, tenant=tenant))
        payload = model.model_dump(mode="json", by_alias=True)
        params_hash = canonical_hash({"type": job_type, "params": payload})
        job, created = self._repository.create(
            tenant=tenant,
            job_type=job_type,
            params=payload,
            params_hash=params_hash,
            runner=self._runner.name,
            max_attempts=declared.max_attempts or self._settings.job_max_attempts,
            idempotency_key=idempotency_key,
        )
        if not created:
            if job.params_hash != params_hash:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was already used for a different request",
                    field="Idempotency-Key",
                )
            return Submission(job=job, created=False)
        try:
            self._runner.submit(job)
        except BrokerUnavailable:
            self._repository.delete(job.id)
            raise
        return Submission(job=job, created=True)

    def get(self, job_id: str, *, tenant: str) -> Job:
        """Return one of the tenant's jobs."""
        return self._repository.get(job_id, tenant=tenant)

    def list(
        self,
        *,
        tenant: str,
        statuses: Sequence[JobStatus] = (),
        types: Sequence[str] = (),
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Return a page of the tenant's jobs, newest first."""
        return self._repository.list_page(
            tenant=tenant, statuses=statuses, types=types, limit=limit, cursor=cursor
        )

    def cancel(self, job_id: str, *, tenant: str) -> Job:
        """Cancel a queued job, or ask a running one to stop at its next progress report."""
        return self._repository.request_cancel(job_id, tenant=tenant)
