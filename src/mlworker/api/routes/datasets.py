"""Datasets: uploads, their profiles, and profiling any dataset spec as a job."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile

from mlworker.api.routes.jobs import IdempotencyKey, accepted
from mlworker.api.schemas import DatasetList, DatasetProfileRequest, DatasetRead, JobSubmitted
from mlworker.api.security import ServicesDep, TenantDep, authenticate

router = APIRouter(tags=["datasets"], dependencies=[Depends(authenticate)])


@router.post("/datasets", status_code=201, response_model=DatasetRead)
def upload_dataset(
    file: Annotated[UploadFile, File(description="CSV, TSV or Parquet file (may be gzipped)")],
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    name: Annotated[str | None, Form(max_length=255)] = None,
    format: Annotated[Literal["csv", "tsv", "parquet"] | None, Form()] = None,  # noqa: A002
) -> DatasetRead:
    """Upload a file; it is parsed and profiled before it is kept. Use its ``datasetId``."""
    info = services.datasets.upload(
        tenant=tenant,
        filename=file.filename or "upload.csv",
        content=file.file,
        declared_format=format,
        name=name,
    )
    response.headers["Location"] = f"/datasets/{info.id}"
    return DatasetRead.of(info)


@router.get("/datasets", response_model=DatasetList)
def list_datasets(
    tenant: TenantDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> DatasetList:
    """List the tenant's uploads, newest first."""
    return DatasetList(
        items=[DatasetRead.of(info) for info in services.datasets.list(tenant=tenant, limit=limit)]
    )


@router.get("/datasets/{dataset_id}", response_model=DatasetRead)
def get_dataset(dataset_id: str, tenant: TenantDep, services: ServicesDep) -> DatasetRead:
    """One upload with its column profile and fingerprint."""
    return DatasetRead.of(services.datasets.get(dataset_id, tenant=tenant))


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(dataset_id: str, tenant: TenantDep, services: ServicesDep) -> Response:
    """Delete an upload and its stored file."""
    services.datasets.delete(dataset_id, tenant=tenant)
    return Response(status_code=204)


@router.post("/datasets/profile", status_code=202, response_model=JobSubmitted)
def profile_dataset(
    body: DatasetProfileRequest,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobSubmitted:
    """Load any dataset spec as a job and report rows, column kinds and fingerprint."""
    submission = services.jobs.submit(
        tenant=tenant,
        job_type="dataset_profile",
        params=body.model_dump(by_alias=True),
        idempotency_key=idempotency_key,
        field_prefix="",
    )
    return accepted(submission, response)
