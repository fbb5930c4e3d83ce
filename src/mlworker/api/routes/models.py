"""Trained models: metadata, evaluation, prediction, export, deletion (snake_case)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field, model_validator
from starlette.concurrency import run_in_threadpool

from mlworker.api.routes.jobs import IdempotencyKey
from mlworker.api.routes.training import PreferHeader
from mlworker.api.security import ServicesDep, TenantDep, authenticate
from mlworker.api.waiting import respond, wants_async
from mlworker.data.spec import DatasetSpec
from mlworker.registry.values import RegisteredModel
from mlworker.services.models import ExportFormat
from mlworker.services.training import SnakeModel

router = APIRouter(tags=["models"], dependencies=[Depends(authenticate)])

_MEDIA_TYPES = {
    "zip": "application/zip",
    "skops": "application/octet-stream",
    "joblib": "application/octet-stream",
    "onnx": "application/octet-stream",
}


def model_read(model: RegisteredModel) -> dict[str, Any]:
    """Metadata of a trained model, snake_case."""
    version = model.version
    config = model.config
    return {
        "model_id": model.id,
        "name": model.name,
        "algorithm": config.get("algorithm"),
        "task": config.get("task"),
        "target": config.get("target"),
        "classes": config.get("classes"),
        "params": version.params if version else {},
        "metrics": version.metrics if version else {},
        "features": config.get("features"),
        "n_train": config.get("n_train"),
        "n_test": config.get("n_test"),
        "training_time": config.get("training_time"),
        "dataset_fingerprint": version.dataset_fingerprint if version else None,
        "dataset": config.get("dataset"),
        "job_id": version.job_id if version else None,
        "study_id": config.get("study_id"),
        "version": model.latest_version,
        "registry_status": model.registry_status,
        "artifact_sha256": version.artifact_sha256 if version else None,
        "library_versions": config.get("libraries"),
        "created_at": model.created_at.isoformat(),
    }


@router.get("/models")
def list_models(
    tenant: TenantDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """List the tenant's trained models, newest first."""
    models = services.models.list_models(tenant=tenant, limit=limit)
    return {"models": [model_read(model) for model in models]}


@router.get("/model/{model_id}")
def get_model(model_id: str, tenant: TenantDep, services: ServicesDep) -> dict[str, Any]:
    """Algorithm, parameters (defaults included), metrics, lineage, library versions."""
    return model_read(services.models.get(model_id, tenant=tenant))


@router.delete("/model/{model_id}", status_code=204)
def delete_model(model_id: str, tenant: TenantDep, services: ServicesDep) -> Response:
    """Delete a model, its versions and their files (the audit log keeps the record)."""
    services.models.delete(model_id, tenant=tenant)
    return Response(status_code=204)


@router.get("/model/{model_id}/evaluate")
def evaluate(model_id: str, tenant: TenantDep, services: ServicesDep) -> dict[str, Any]:
    """Metrics, confusion matrix, report, importances and curves on the stored held-out rows."""
    return services.models.evaluate(model_id, tenant=tenant)


RowScalar = str | bool | int | float | None


#: One cell of an inline row: a JSON scalar, ``null`` for a missing value. Non-finite and
#: overflowing numbers never get here: the strict-JSON middleware refuses them for every body.
RowValue = RowScalar


class PredictRequest(SnakeModel):
    """Rows to predict inline, or a dataset to predict as a job."""

    rows: list[dict[str, RowValue]] | None = Field(None, min_length=1, max_length=100_000)
    dataset: DatasetSpec | None = None
    output_format: str = Field("parquet", pattern="^(parquet|csv)$")
    run_async: bool = Field(True, alias="async")

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.rows is None) == (self.dataset is None):
            raise ValueError("give exactly one of rows or dataset")
        return self


@router.post("/model/{model_id}/predict")
async def predict(
    model_id: str,
    body: PredictRequest,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Predictions and class probabilities for rows; a dataset becomes a job writing a file."""
    await run_in_threadpool(services.models.get, model_id, tenant=tenant)
    if body.rows is not None:
        return await run_in_threadpool(
            services.models.predict_rows, model_id, body.rows, tenant=tenant
        )
    params = {
        "model_id": model_id,
        "dataset": body.dataset.model_dump(by_alias=True) if body.dataset else None,
        "output_format": body.output_format,
    }
    submission = await run_in_threadpool(
        lambda: services.jobs.submit(
            tenant=tenant,
            job_type="predict",
            params=params,
            idempotency_key=idempotency_key,
            field_prefix="",
        )
    )
    run_async = wants_async(body.run_async, prefer)
    return await respond(
        services, submission, tenant=tenant, run_async=run_async, response=response
    )


@router.get(
    "/model/{model_id}/artifact",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def export(
    model_id: str,
    tenant: TenantDep,
    services: ServicesDep,
    format: Annotated[ExportFormat, Query(description="zip, skops, joblib or onnx")] = "zip",  # noqa: A002
) -> Response:
    """Download the model: our zip (default), skops, joblib or ONNX."""
    data = services.models.export(model_id, tenant=tenant, file_format=format)
    extension = {"zip": "zip", "skops": "skops", "joblib": "joblib", "onnx": "onnx"}[format]
    return Response(
        data,
        media_type=_MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{model_id}.{extension}"'},
    )
