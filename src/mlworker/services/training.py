"""The ``train`` job: load the dataset, train, evaluate, store the model in the registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mlworker.data.loader import DatasetLoader
from mlworker.data.spec import DatasetSpec, PathDataset
from mlworker.data.values import LoadedDataset
from mlworker.errors import InvalidInput, MLWorkerError
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type
from mlworker.registry.values import ModelVersion, new_model_id
from mlworker.services.datasets import build_loader
from mlworker.store.artifacts import ArtifactStore
from mlworker.store.models import ModelRepository
from mlworker.store.records import utcnow
from mlworker.store.studies import StudyRepository
from mlworker.training import bundle
from mlworker.training.algorithms import Algorithm, Task, available_algorithms, resolve
from mlworker.training.model import validate_hyperparams
from mlworker.training.trainer import TrainingResult, train

ESTIMATOR_KIND = "estimator"
MODEL_FILE_FORMAT = "mlworker-model-zip"


def snake_or_camel(name: str) -> AliasChoices:
    """Accept a field under its snake_case name (the seed's) and its camelCase one."""
    return AliasChoices(name, to_camel(name))


class SnakeModel(BaseModel):
    """Request models of the training family: snake_case first, camelCase accepted too.

    No number may be infinite or NaN: ``"Infinity"`` and ``"NaN"`` as strings would otherwise
    pass as floats and fail inside an estimator.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=snake_or_camel),
        allow_inf_nan=False,
    )


class DatasetRequest(SnakeModel):
    """Either the seed's ``dataset_path`` or any dataset spec under ``dataset``."""

    dataset_path: str | None = Field(None, min_length=1, max_length=4096)
    dataset: DatasetSpec | None = None

    @model_validator(mode="after")
    def _one_dataset(self) -> DatasetRequest:
        if (self.dataset_path is None) == (self.dataset is None):
            raise ValueError("give exactly one of dataset_path or dataset")
        return self

    def dataset_spec(self) -> Any:
        """Return the dataset as a spec (``dataset_path`` becomes ``{"path": …}``)."""
        return self.dataset if self.dataset is not None else PathDataset(path=self.dataset_path)

    @contextmanager
    def naming_dataset_field(self) -> Iterator[None]:
        """Make dataset errors name the field the client used.

        A spec under ``dataset`` already reports ``dataset.path`` and the like; for the seed's
        ``dataset_path`` the same errors name ``dataset_path``.
        """
        try:
            yield
        except MLWorkerError as exc:
            field = exc.field or ""
            if self.dataset_path is None or not field.startswith("dataset."):
                raise
            raise type(exc)(exc.message, field="dataset_path", **exc.extra) from exc

    def check_datasets(self, validate: Callable[[BaseModel], None]) -> None:
        """Check ``dataset_path`` at submission, as a spec under ``dataset`` is checked.

        Confinement to the data root, existence, a regular file, a known format: a bad path
        is a 4xx naming ``dataset_path`` and no job row is created.
        """
        if self.dataset_path is not None:
            with self.naming_dataset_field():
                validate(self.dataset_spec())

    def load_dataset(
        self,
        loader: DatasetLoader,
        *,
        tenant: str,
        progress: Callable[[float, str], None] | None,
    ) -> LoadedDataset:
        """Load the dataset in a job; errors name the request's field."""
        with self.naming_dataset_field():
            return loader.load(self.dataset_spec(), tenant=tenant, progress=progress)


#: Weights per class label; a table has at most this many classes worth weighting.
ClassWeights = Annotated[dict[str, float], Field(max_length=1000)]


class TrainParams(DatasetRequest):
    """Parameters of ``POST /train`` (and of the ``train`` job)."""

    target_column: str = Field(min_length=1, max_length=255)
    algorithm: str = Field("RandomForestClassifier", min_length=1, max_length=100)
    test_size: float = Field(0.2, ge=0.1, le=0.5)
    random_state: int = Field(42, ge=0, le=2**32 - 1)
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    task: Literal["classification", "regression"] | None = None
    stratify: bool = True
    class_weight: Literal["balanced"] | ClassWeights | None = None
    name: str | None = Field(None, max_length=255)
    study_id: str | None = Field(None, max_length=40)


def algorithm_for(name: str, task: str | None) -> Algorithm:
    """Return the algorithm ``name``, checked against the requested task.

    Raises
    ------
    InvalidInput
        Unknown or not installed (``field="algorithm"``), or for the other task (``task``).
    """
    try:
        algorithm = resolve(name)
    except KeyError as exc:
        known = ", ".join(sorted(available_algorithms()))
        raise InvalidInput(
            f"unknown algorithm {name!r}; available: {known}", field="algorithm"
        ) from exc
    if task is not None and algorithm.task.value != task:
        raise InvalidInput(
            f"{algorithm.name} is a {algorithm.task.value} algorithm, but task={task!r}",
            field="task",
        )
    return algorithm


def check_train_params(params: TrainParams) -> TrainParams:
    """Submission-time checks the schema cannot express: algorithm, task, hyperparameters."""
    algorithm = algorithm_for(params.algorithm, params.task)
    if params.class_weight is not None and algorithm.task is Task.REGRESSION:
        raise InvalidInput("class_weight applies to classification only", field="class_weight")
    hyperparams = validate_hyperparams(algorithm, params.hyperparams)
    return params.model_copy(update={"algorithm": algorithm.name, "hyperparams": hyperparams})


def store_model(
    context: JobContext,
    result: TrainingResult,
    *,
    name: str,
    dataset_fingerprint: str,
    extra_config: dict[str, Any],
) -> str:
    """Write the model file, register the model and its first version; return its id."""
    model_id = new_model_id()
    model = result.model
    data = bundle.dump(
        model,
        holdout=result.holdout,
        evaluation=result.evaluation,
        metadata={"model_id": model_id, "job_id": context.job_id},
    )
    artifacts = ArtifactStore(context.settings.artifacts)
    stored = artifacts.put_bytes(f"models/{context.tenant}/{model_id}/v1/model.zip", data)
    config = {
        "algorithm": model.algorithm,
        "task": model.task.value,
        "target": model.target.name,
        "classes": list(model.target.classes) if model.target.classes is not None else None,
        "features": result.features,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "training_time": result.training_time,
        "libraries": bundle.library_versions(),
        **extra_config,
    }
    version = ModelVersion(
        model_id=model_id,
        version=1,
        artifact_uri=stored.uri,
        artifact_sha256=stored.sha256,
        artifact_format=MODEL_FILE_FORMAT,
        params=model.params,
        metrics=result.metrics,
        dataset_fingerprint=dataset_fingerprint,
        job_id=context.job_id,
        created_at=utcnow(),
    )
    ModelRepository(context.db).register(
        model_id=model_id,
        tenant=context.tenant,
        name=name,
        kind=ESTIMATOR_KIND,
        family=model_id,
        config=config,
        version=version,
        actor=f"job:{context.job_id}",
        reason="trained",
    )
    return model_id


@job_type("train", params=TrainParams, check=check_train_params)
def train_job(params: TrainParams, context: JobContext) -> dict[str, Any]:
    """Train one model and register it; the result is the seed's ``/train`` answer."""
    if params.study_id is not None:
        # Submission checked it too (``/train``); a job sent through ``POST /jobs`` is checked
        # here, before anything is stored, so no model ever links another tenant's study.
        StudyRepository(context.db).get(params.study_id, tenant=context.tenant)
    dataset = params.load_dataset(
        build_loader(context.settings, context.db),
        tenant=context.tenant,
        progress=lambda fraction, message: context.report(0.1 * fraction, message),
    )

    def progress(fraction: float, message: str) -> None:
        context.report(0.1 + 0.8 * fraction, message)

    return train_dataset(params, dataset, context, progress=progress)


def train_dataset(
    params: TrainParams,
    dataset: LoadedDataset,
    context: JobContext,
    *,
    progress: Callable[[float, str], None],
    fit: Callable[..., TrainingResult] = train,
) -> dict[str, Any]:
    """Train on a loaded dataset, store the model, answer as ``/train`` does.

    ``fit`` runs :func:`~mlworker.training.trainer.train` (``optimize`` passes one that runs it
    in a killable process, bounded by the search's deadline).
    """
    algorithm = algorithm_for(params.algorithm, params.task)
    result = fit(
        dataset.frame,
        params.target_column,
        algorithm,
        params.hyperparams,
        test_size=params.test_size,
        stratify=params.stratify,
        random_state=params.random_state,
        class_weight=params.class_weight,
        n_jobs=context.settings.job_threads,
        progress=progress,
    )
    context.report(0.92, "saving the model")
    model_id = store_model(
        context,
        result,
        name=params.name or f"{algorithm.name} → {params.target_column}",
        dataset_fingerprint=dataset.fingerprint,
        extra_config={
            "study_id": params.study_id,
            "test_size": params.test_size,
            "random_state": params.random_state,
            "stratify": params.stratify,
            "class_weight": params.class_weight,
            "dataset": dataset.source,
        },
    )
    return {
        "success": True,
        "model_id": model_id,
        "metrics": result.metrics,
        "message": "Model trained successfully",
        "algorithm": algorithm.name,
        "task": algorithm.task.value,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "training_time": round(result.training_time, 4),
        "params": result.model.params,
        "features": result.features,
        "warnings": list(result.warnings),
        "dataset_fingerprint": dataset.fingerprint,
    }
