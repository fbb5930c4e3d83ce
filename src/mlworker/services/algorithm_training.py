"""The ``algorithm_training`` job: train an algorithm model, record a version, go live.

``load → compute → persist``: the interactions come from a dataset spec or, without one, from
the outcomes logged for the model; a stratified, seeded hold-out measures AUC, accuracy,
precision, recall and F1 (threshold 0.5); the engine is then fitted again on **every** row, so
the live model uses all the evidence while the metrics stay an honest out-of-sample estimate
(of a model trained on slightly less data, hence a little pessimistic). The learned state is
written as a checksummed JSON artifact with a new ``mlw_model_versions`` row, and replaces the
live state (next revision) in the same transaction that appends ``metricsHistory`` and makes the
model ``active``. A failure leaves the model in ``error``, with the reason on the job and in the
audit log.

Engines that learn nothing from data (the scorecard) are evaluated on every row instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mlworker.config import Settings
from mlworker.engines import CUSTOMER_ID, OFFER_ID, build_engine
from mlworker.errors import (
    ArtifactCorrupt,
    InvalidInput,
    JobCancelled,
    MLWorkerError,
    NotEnoughData,
    NotFound,
    UnknownColumn,
)
from mlworker.jobs.context import JobContext, JobLost
from mlworker.jobs.registry import job_type
from mlworker.registry.values import AlgorithmModel, ModelVersion
from mlworker.serialization import canonical_hash
from mlworker.services.algorithm_requests import AlgorithmTrainingParams
from mlworker.services.datasets import build_loader
from mlworker.store.algorithm_models import AlgorithmModelRepository, EngineStateRepository
from mlworker.store.artifacts import ArtifactStore

TRAINING_JOB = "algorithm_training"
ARTIFACT_FORMAT = "engine-state+json"
#: Interactions a data-driven engine needs before training means anything (the seed: 50+).
MIN_TRAINING_ROWS = 50
#: Engines whose ``fit`` learns nothing from data: evaluated on every row, no minimum.
EVALUATED_ONLY = frozenset({"scorecard"})
#: Engines trained outside ML Worker.
NOT_TRAINABLE = frozenset({"external_endpoint"})
THRESHOLD = 0.5

_TRUE = frozenset({"1", "1.0", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "0.0", "false", "f", "no", "n"})

Report = Callable[[float, str], None]


def binary_metrics(outcomes: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """Measure AUC and the threshold-0.5 classification metrics of ``scores``.

    AUC is ``None`` when only one class is present (it is undefined there).

    Examples
    --------
    >>> binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    {'auc': 0.75, 'accuracy': 0.5, 'precision': 0.5, 'recall': 0.5, 'f1': 0.5}
    """
    truth = np.asarray(outcomes, dtype=np.int64)
    predicted = (np.asarray(scores, dtype=np.float64) >= THRESHOLD).astype(np.int64)
    auc = float(roc_auc_score(truth, scores)) if len(np.unique(truth)) == 2 else None
    return {
        "auc": auc,
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
    }


def binary_outcomes(values: pd.Series, *, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Read an outcome column as 0/1; return the outcomes and which rows had one.

    Booleans, the numbers 0 and 1 and the words true/false, yes/no, 1/0 are understood; a
    missing outcome drops its row.

    Raises
    ------
    InvalidInput
        A value is none of these (the error names the column and shows examples).

    Examples
    --------
    >>> outcomes, kept = binary_outcomes(pd.Series(["yes", None, "0", True]), column="o")
    >>> outcomes.tolist(), kept.tolist()
    ([1.0, 0.0, 1.0], [True, False, True, True])
    """
    present = values.notna().to_numpy()
    kept = values[present]
    if pd.api.types.is_bool_dtype(kept.dtype) or pd.api.types.is_numeric_dtype(kept.dtype):
        numbers = kept.astype(np.float64).to_numpy()
        bad = ~np.isin(numbers, (0.0, 1.0))
        words = kept.astype(str)
    else:
        words = kept.astype(str).str.strip().str.lower()
        numbers = np.where(words.isin(_TRUE), 1.0, 0.0)
        bad = ~(words.isin(_TRUE) | words.isin(_FALSE)).to_numpy()
    if bad.any():
        examples = ", ".join(sorted({repr(v) for v in words[bad].head(50).tolist()})[:3])
        raise InvalidInput(
            f"outcome column {column!r} must hold 0/1 (or true/false, yes/no); found {examples}",
            field="outcomeColumn",
        )
    return numbers.astype(np.float64), present


def stored_state(settings: Settings, version: ModelVersion) -> dict[str, Any]:
    """Read the learned state a training wrote for ``version``, once its checksum matches.

    Raises
    ------
    ArtifactCorrupt
        The artifact changed, disappeared or is not the JSON a training writes.
    """
    artifacts = ArtifactStore(settings.artifacts)
    try:
        with artifacts.open_verified(version.artifact_uri, version.artifact_sha256) as handle:
            document = json.loads(handle.read())
        state: dict[str, Any] = document["state"]
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactCorrupt(
            f"the stored state of model {version.model_id} version {version.version} is "
            "missing or unreadable",
            field="version",
        ) from exc
    return state


def _stage(report: Report, start: float, end: float) -> Report:
    def scaled(fraction: float, message: str = "") -> None:
        report(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return scaled


def _interactions_from_dataset(
    model: AlgorithmModel, params: AlgorithmTrainingParams, context: JobContext
) -> tuple[pd.DataFrame, np.ndarray, str, list[str]]:
    """Read candidate-shaped interactions, outcomes, fingerprint and warnings from a dataset."""
    assert params.dataset is not None
    loaded = build_loader(context.settings, context.db).load(
        params.dataset, tenant=context.tenant, progress=_stage(context.report, 0.0, 0.25)
    )
    frame = loaded.frame
    warnings: list[str] = []
    outcome_column = params.outcome_column or model.spec.get("targetField") or "outcome"
    if outcome_column not in frame.columns:
        raise UnknownColumn(
            f"the dataset has no outcome column {outcome_column!r}",
            field="outcomeColumn",
            column=outcome_column,
        )
    renames: dict[str, str] = {}
    for reserved, named, name in (
        (CUSTOMER_ID, params.customer_id_column, "customerIdColumn"),
        (OFFER_ID, params.offer_id_column, "offerIdColumn"),
    ):
        source = named or reserved
        if source in frame.columns:
            if source != reserved and reserved in frame.columns:
                raise InvalidInput(
                    f"the dataset has a column {reserved!r} besides {source!r} named by {name}",
                    field=name,
                )
            renames[source] = reserved
        elif named is not None:
            raise UnknownColumn(
                f"the dataset has no column {source!r} (named by {name})", field=name, column=source
            )
        else:
            warnings.append(f"no {source!r} column: rows carry no {reserved}")
    outcomes, present = binary_outcomes(frame[outcome_column], column=outcome_column)
    if not present.all():
        warnings.append(f"{int((~present).sum())} rows without an outcome were left out")
    frame = frame.loc[present].drop(columns=[outcome_column]).rename(columns=renames)
    for reserved in (CUSTOMER_ID, OFFER_ID):
        if reserved in frame.columns:
            ids = frame[reserved]
            frame[reserved] = ids.astype(object).where(ids.isna(), ids.astype(str))
        else:
            frame[reserved] = None
    return frame.reset_index(drop=True), outcomes, loaded.fingerprint, warnings


def _interactions_from_outcome_log(
    model: AlgorithmModel, context: JobContext
) -> tuple[pd.DataFrame, np.ndarray, str, list[str]]:
    """Read the outcomes logged for the model (``POST /api/v1/outcomes``)."""
    from mlworker.store.outcomes import OutcomeRepository

    context.report(0.05, "reading the outcome log")
    frame, outcomes = OutcomeRepository(context.db).training_frame(
        tenant=context.tenant, model_key=model.key, since=None
    )
    fingerprint = canonical_hash(
        {
            "source": "outcome-log",
            "model": model.key,
            "columns": [str(column) for column in frame.columns],
            "rows": len(frame),
            "positives": float(np.sum(outcomes)),
        }
    )
    return frame, np.asarray(outcomes, dtype=np.float64), fingerprint, []


def selected_predictors(frame: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Keep the ids and the model's selected ``predictors`` (every column when none are given).

    Raises
    ------
    UnknownColumn
        A selected predictor is not a column (the error names ``predictors.<i>.field``).
    """
    predictors = spec.get("predictors") or []
    chosen = [(i, p["field"]) for i, p in enumerate(predictors) if p.get("selected", True)]
    if not chosen:
        return frame
    for index, name in chosen:
        if name not in frame.columns:
            raise UnknownColumn(
                f"predictor {name!r} is not a column of the training data",
                field=f"predictors.{index}.field",
                column=name,
            )
    return frame[[CUSTOMER_ID, OFFER_ID, *[name for _, name in chosen]]]


def _check_amount(model: AlgorithmModel, outcomes: np.ndarray) -> None:
    rows = len(outcomes)
    if model.model_type not in EVALUATED_ONLY and rows < MIN_TRAINING_ROWS:
        raise NotEnoughData(
            f"{model.model_type} needs at least {MIN_TRAINING_ROWS} interactions to train; "
            f"got {rows}",
            field="dataset",
        )
    positives = int(outcomes.sum())
    if min(positives, rows - positives) < 2:
        raise NotEnoughData(
            f"training needs at least 2 positive and 2 negative outcomes; got {positives} "
            f"positive of {rows}",
            field="dataset",
        )


def fit_and_evaluate(
    model: AlgorithmModel,
    frame: pd.DataFrame,
    outcomes: np.ndarray,
    *,
    validation_fraction: float,
    random_state: int,
    report: Report,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure on a stratified hold-out, then fit on every row; return (state, metrics)."""
    rows = len(outcomes)
    if model.model_type in EVALUATED_ONLY:
        engine = build_engine(model.model_type, model.config, random_state=random_state)
        engine.fit(frame, outcomes)
        scores = engine.score(frame, rng=np.random.default_rng(random_state))
        metrics: dict[str, Any] = binary_metrics(outcomes, scores)
        metrics.update(evidence=rows, trainingRows=0, validationRows=rows)
    else:
        positions = np.arange(rows)
        fitted, held_out = train_test_split(
            positions,
            test_size=validation_fraction,
            stratify=outcomes,
            random_state=random_state,
        )
        report(0.1, f"fitting on {len(fitted)} rows, holding out {len(held_out)}")
        probe = build_engine(model.model_type, model.config, random_state=random_state)
        probe.fit(frame.iloc[fitted].reset_index(drop=True), outcomes[fitted])
        scores = probe.score(
            frame.iloc[held_out].reset_index(drop=True), rng=np.random.default_rng(random_state)
        )
        metrics = binary_metrics(outcomes[held_out], scores)
        metrics.update(evidence=rows, trainingRows=len(fitted), validationRows=len(held_out))
        report(0.55, f"fitting on all {rows} rows")
        engine = build_engine(model.model_type, model.config, random_state=random_state)
        engine.fit(frame, outcomes)
    metrics.update(positiveRate=float(outcomes.mean()), threshold=THRESHOLD)
    return engine.state(), metrics


def _train(
    model: AlgorithmModel, params: AlgorithmTrainingParams, context: JobContext
) -> dict[str, Any]:
    if params.dataset is not None:
        frame, outcomes, fingerprint, warnings = _interactions_from_dataset(model, params, context)
    else:
        frame, outcomes, fingerprint, warnings = _interactions_from_outcome_log(model, context)
    frame = selected_predictors(frame, model.spec)
    _check_amount(model, outcomes)
    context.report(0.3, f"training on {len(outcomes)} interactions")
    try:
        state, metrics = fit_and_evaluate(
            model,
            frame,
            outcomes,
            validation_fraction=params.validation_fraction,
            random_state=params.random_state,
            report=_stage(context.report, 0.3, 0.85),
        )
    except ValueError as exc:
        if isinstance(exc, MLWorkerError):
            raise
        raise InvalidInput(f"{model.model_type} could not learn from this data: {exc}") from exc
    context.report(0.9, "saving the learned state")
    document = {
        "format": ARTIFACT_FORMAT,
        "modelId": model.id,
        "modelKey": model.key,
        "modelType": model.model_type,
        "config": model.config,
        "state": state,
        "metrics": metrics,
        "datasetFingerprint": fingerprint,
        "jobId": context.job_id,
    }
    data = json.dumps(document, sort_keys=True, allow_nan=False).encode()
    key = f"algorithm-models/{context.tenant}/{model.id}/{context.job_id}-{context.attempt}.json"
    stored = ArtifactStore(context.settings.artifacts).put_bytes(key, data)
    trained = EngineStateRepository(context.db).record_training(
        model.id,
        tenant=context.tenant,
        actor=params.actor,
        artifact_uri=stored.uri,
        artifact_sha256=stored.sha256,
        artifact_format=ARTIFACT_FORMAT,
        params={"config": model.config, "randomState": params.random_state},
        metrics=metrics,
        dataset_fingerprint=fingerprint,
        job_id=context.job_id,
        state=state,
    )
    context.report(1.0, f"version {trained.latest_version} is live")
    return {
        "modelId": model.id,
        "modelKey": model.key,
        "modelType": model.model_type,
        "version": trained.latest_version,
        "stateRevision": trained.state_revision,
        "metrics": metrics,
        "datasetFingerprint": fingerprint,
        "warnings": warnings,
    }


@job_type(TRAINING_JOB, params=AlgorithmTrainingParams)
def algorithm_training_job(params: AlgorithmTrainingParams, context: JobContext) -> dict[str, Any]:
    """Train an algorithm model; on failure leave it in ``error`` with the reason audited."""
    repository = AlgorithmModelRepository(context.db)
    try:
        model = repository.get(params.model_id, tenant=context.tenant)
    except NotFound as exc:
        raise InvalidInput(f"algorithm model {params.model_id} not found", field="modelId") from exc
    if model.model_type in NOT_TRAINABLE:
        raise InvalidInput(f"{model.model_type} models are trained outside ML Worker")
    started = repository.set_status(
        model.id,
        tenant=context.tenant,
        status="training",
        actor=params.actor,
        action="algorithm_model.training_started",
        reason=f"job {context.job_id}",
    )
    try:
        return _train(started, params, context)
    except JobLost:
        raise  # another attempt owns the job (and the model's status) now
    except JobCancelled:
        repository.set_status(
            model.id,
            tenant=context.tenant,
            status=model.status,
            actor=params.actor,
            action="algorithm_model.training_cancelled",
            reason=f"job {context.job_id} cancelled",
        )
        raise
    except Exception as exc:
        reason = exc.message if isinstance(exc, MLWorkerError) else type(exc).__name__
        repository.set_status(
            model.id,
            tenant=context.tenant,
            status="error",
            actor=params.actor,
            action="algorithm_model.training_failed",
            reason=f"job {context.job_id}: {reason}",
        )
        raise
