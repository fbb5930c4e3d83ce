"""Trained-model use cases: metadata, evaluation, prediction, export, deletion."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from mlworker.config import Settings
from mlworker.data.spec import DatasetSpec
from mlworker.errors import ArtifactCorrupt, ExportUnavailable, InvalidInput, NotFound
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type
from mlworker.registry.values import RegisteredModel, is_model_id
from mlworker.serialization import json_safe
from mlworker.services.datasets import build_loader
from mlworker.services.outputs import write_output
from mlworker.services.training import ESTIMATOR_KIND, SnakeModel
from mlworker.store.artifacts import ArtifactStore
from mlworker.store.db import Database
from mlworker.store.models import ModelRepository
from mlworker.training import bundle
from mlworker.training.algorithms import Task

ExportFormat = Literal["zip", "skops", "joblib", "onnx"]
_CACHE_SIZE = 16
_cache: OrderedDict[str, bundle.ModelFile] = OrderedDict()
_cache_lock = threading.Lock()


def _stored_bytes(settings: Settings, model: RegisteredModel) -> bytes:
    """Read ``model``'s latest model file, once its bytes match the recorded checksum.

    Raises
    ------
    ArtifactCorrupt
        The file changed or disappeared since it was written (the message names the model,
        never the file's location).
    """
    version = model.version
    assert version is not None
    artifacts = ArtifactStore(settings.artifacts)
    try:
        with artifacts.open_verified(version.artifact_uri, version.artifact_sha256) as handle:
            return bytes(handle.read())
    except ArtifactCorrupt as exc:
        raise ArtifactCorrupt(
            f"the stored file of model {model.id} (version {version.version}) does not match "
            "its recorded checksum; it will not be loaded",
            field="model_id",
        ) from exc
    except (FileNotFoundError, ValueError) as exc:  # removed, or outside the artifact root
        raise ArtifactCorrupt(
            f"the stored file of model {model.id} (version {version.version}) is missing",
            field="model_id",
        ) from exc


def _read(settings: Settings, model: RegisteredModel) -> bundle.ModelFile:
    """Load (or reuse) the model file of ``model``'s latest version, checksum first."""
    version = model.version
    assert version is not None
    key = f"{model.id}:{version.version}:{version.artifact_sha256}"
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    loaded = bundle.load(_stored_bytes(settings, model))
    with _cache_lock:
        _cache[key] = loaded
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def _predictions(model_file: bundle.ModelFile, frame: pd.DataFrame) -> dict[str, Any]:
    model = model_file.model
    codes, proba = model.predict_codes(frame)
    answer: dict[str, Any] = {"predictions": model.target.decode(codes)}
    if proba is not None and model.target.classes is not None:
        classes = [str(label) for label in model.target.classes]
        answer["classes"] = list(model.target.classes)
        answer["probabilities"] = [dict(zip(classes, row, strict=True)) for row in proba.tolist()]
    return answer


class ModelService:
    """Trained models for the API; every call is scoped to a tenant."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._repository = ModelRepository(db)

    def get(self, model_id: str, *, tenant: str) -> RegisteredModel:
        """One model; ids not shaped like ``model-<12 hex>`` are 404 without a lookup."""
        if not is_model_id(model_id):
            raise NotFound(f"model {model_id[:60]!r} not found", field="model_id")
        return self._repository.get(model_id, tenant=tenant, kind=ESTIMATOR_KIND)

    def list_models(self, *, tenant: str, limit: int) -> list[RegisteredModel]:
        """List the tenant's trained models, newest first."""
        return self._repository.list_models(tenant=tenant, kind=ESTIMATOR_KIND, limit=limit)

    def delete(self, model_id: str, *, tenant: str) -> None:
        """Delete the model, its versions and their files."""
        self.get(model_id, tenant=tenant)
        uris = self._repository.delete(
            model_id,
            tenant=tenant,
            kind=ESTIMATOR_KIND,
            actor=f"tenant:{tenant}",
            reason="deleted on request",
        )
        artifacts = ArtifactStore(self._settings.artifacts)
        for uri in uris:
            artifacts.delete(uri)
        with _cache_lock:
            for key in [key for key in _cache if key.startswith(f"{model_id}:")]:
                del _cache[key]

    def evaluate(self, model_id: str, *, tenant: str) -> dict[str, Any]:
        """Return the evaluation computed on the held-out rows stored with the model."""
        model = self.get(model_id, tenant=tenant)
        loaded = _read(self._settings, model)
        if loaded.evaluation is None:  # pragma: no cover - every model file carries one
            raise NotFound(f"model {model_id!r} has no stored evaluation", field="model_id")
        return {"model_id": model_id, **loaded.evaluation}

    def predict_rows(
        self, model_id: str, rows: list[dict[str, Any]], *, tenant: str
    ) -> dict[str, Any]:
        """Predict inline rows; class probabilities for classifiers."""
        model = self.get(model_id, tenant=tenant)
        loaded = _read(self._settings, model)
        frame = pd.DataFrame.from_records(rows)
        return {"model_id": model_id, **json_safe(_predictions(loaded, frame))}

    def export(self, model_id: str, *, tenant: str, file_format: ExportFormat) -> bytes:
        """Serialise the model in ``file_format``; ``zip`` is the stored file itself."""
        model = self.get(model_id, tenant=tenant)
        if file_format == "zip":
            return _stored_bytes(self._settings, model)
        loaded = _read(self._settings, model)
        if file_format == "joblib":
            import joblib

            buffer = io.BytesIO()
            joblib.dump(loaded.model, buffer)
            return buffer.getvalue()
        if file_format == "skops":
            import skops.io as sio
            from sklearn.pipeline import Pipeline

            if loaded.manifest.get("native"):
                raise ExportUnavailable(
                    f"{loaded.model.algorithm} keeps its booster in "
                    f"{loaded.manifest['native']}'s own format; use format=zip",
                    field="format",
                )
            steps = [*loaded.model.preprocessor.steps, ("model", loaded.model.estimator)]
            return bytes(sio.dumps(Pipeline(steps)))
        from mlworker.training.onnx_export import to_onnx

        onnx_bytes: bytes = to_onnx(loaded.model, sample=loaded.holdout)
        return onnx_bytes


class PredictParams(SnakeModel):
    """Parameters of a dataset prediction job."""

    model_id: str = Field(pattern=r"^model-[0-9a-f]{12}$")
    dataset: DatasetSpec
    output_format: Literal["parquet", "csv"] = "parquet"


@job_type("predict", params=PredictParams)
def predict_job(params: PredictParams, context: JobContext) -> dict[str, Any]:
    """Predict every row of a dataset and write the predictions to the tenant's outputs.

    The result's ``path`` (``outputs/predictions/<job>.<ext>``) reads them back as a dataset,
    for this tenant only.
    """
    repository = ModelRepository(context.db)
    try:
        model = repository.get(params.model_id, tenant=context.tenant, kind=ESTIMATOR_KIND)
    except NotFound as exc:
        raise InvalidInput(f"model {params.model_id!r} not found", field="model_id") from exc
    loaded = _read(context.settings, model)
    dataset = build_loader(context.settings, context.db).load(
        params.dataset, tenant=context.tenant, progress=context.report
    )
    context.report(0.7, f"predicting {dataset.row_count} rows")
    answer = _predictions(loaded, dataset.frame)
    output = pd.DataFrame({"prediction": answer["predictions"]})
    if "probabilities" in answer:
        for label in answer["classes"]:
            output[f"probability_{label}"] = [row[str(label)] for row in answer["probabilities"]]
    relative = write_output(
        output,
        settings=context.settings,
        tenant=context.tenant,
        kind="predictions",
        file_name=f"{context.job_id}.{params.output_format}",
    )
    context.report(1.0, "predictions written")
    task = loaded.model.task
    summary: dict[str, Any] = {
        "rows": len(output),
        "path": relative,
        "format": params.output_format,
    }
    if task is Task.CLASSIFICATION:
        summary["class_counts"] = output["prediction"].astype(str).value_counts().to_dict()
    return {"model_id": params.model_id, "dataset_fingerprint": dataset.fingerprint, **summary}
