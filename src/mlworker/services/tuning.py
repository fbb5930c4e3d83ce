"""The ``optimize`` job (``POST /optimize``) and its extra workers (``optimize_worker``).

``optimize`` loads the dataset, records the study, creates it in the Optuna storage, starts
``n_workers - 1`` extra workers as jobs of their own (other pool processes, or other machines
under Celery, all attached to the same study through the shared storage), runs trials itself,
waits for the workers, and answers with the best parameters. With ``train_best`` it trains them
through the ``train`` job's own code path and returns the model id.

``timeout`` bounds the whole job, from its start: loading, search, waiting for workers and the
final training. Trials stop early enough to leave room for what comes after them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import structlog
from optuna.trial import FrozenTrial, TrialState
from pydantic import Field

from mlworker.data.values import LoadedDataset
from mlworker.errors import InvalidInput, JobNotCancellable, MLWorkerError, ValidationFailed
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type
from mlworker.services.datasets import build_loader
from mlworker.services.training import (
    DatasetRequest,
    SnakeModel,
    TrainParams,
    algorithm_for,
    check_train_params,
    train_dataset,
)
from mlworker.store.optuna_storage import delete_study, open_storage
from mlworker.store.studies import StudyRepository
from mlworker.training.algorithms import Task
from mlworker.training.scoring import SCORERS, check_scoring_name
from mlworker.training.study_report import TuningResult, close_study, summarize
from mlworker.training.study_values import STUDY_ID, study_id_for
from mlworker.training.trainer import TrainingResult, train
from mlworker.training.trial_process import TrialCrashed, TrialError, TrialProcess, TrialStopped
from mlworker.training.tuning import (
    Clock,
    Search,
    attach_study,
    create_study,
    prepare_search,
    run_trials,
)

log = structlog.get_logger(__name__)

#: Budget of an ``auto`` search that names no ``timeout``.
AUTO_TIMEOUT_SECONDS = 60.0
#: Seconds kept for writing the model file and registry rows after the final training.
STORE_SECONDS = 0.5
#: Seconds a fresh training process needs before it fits (start, receive the table).
PROCESS_START_SECONDS = 0.3
_WAIT_POLL_SECONDS = 0.1


class OptimizeParams(DatasetRequest):
    """Parameters of ``POST /optimize`` (and of the ``optimize`` job)."""

    target_column: str = Field(min_length=1, max_length=255)
    algorithm: str = Field("RandomForestClassifier", min_length=1, max_length=100)
    n_trials: int = Field(100, ge=1, description="At most MAX_TRIALS.")
    timeout: float | None = Field(None, gt=0, le=7 * 24 * 3600)
    cv_folds: int = Field(5, ge=2, le=20)
    scoring: str | None = Field(None, min_length=1, max_length=64)
    random_state: int = Field(42, ge=0, le=2**31 - 1)
    n_workers: int = Field(1, ge=1, le=32)
    train_best: bool = False
    pruner: Literal["median", "hyperband", "none"] = "median"
    task: Literal["classification", "regression"] | None = None
    test_size: float = Field(0.2, ge=0.1, le=0.5)


def check_optimize_params(params: OptimizeParams) -> OptimizeParams:
    """Submission-time checks: the algorithm exists for the task, the score is whitelisted."""
    check_scoring_name(params.scoring)
    if params.algorithm == "auto":
        return params
    algorithm = algorithm_for(params.algorithm, params.task)
    if params.scoring is not None and SCORERS[params.scoring].task is not algorithm.task:
        raise InvalidInput(
            f"scoring {params.scoring!r} does not apply to {algorithm.task.value} "
            f"({algorithm.name})",
            field="scoring",
        )
    return params.model_copy(update={"algorithm": algorithm.name})


def check_trial_budget(params: OptimizeParams, max_trials: int) -> None:
    """Refuse ``n_trials`` above ``MAX_TRIALS``.

    Raises
    ------
    ValidationFailed
        ``field="n_trials"``.
    """
    if params.n_trials > max_trials:
        message = f"n_trials: at most {max_trials} (MAX_TRIALS), got {params.n_trials}"
        raise ValidationFailed(
            message, field="n_trials", errors=[{"field": "n_trials", "message": message}]
        )


def _search(params: OptimizeParams, dataset: LoadedDataset) -> Search:
    algorithm = None if params.algorithm == "auto" else algorithm_for(params.algorithm, params.task)
    return prepare_search(
        dataset.frame,
        params.target_column,
        algorithm=algorithm,
        task=Task(params.task) if params.task else None,
        scoring=params.scoring,
        cv_folds=params.cv_folds,
        random_state=params.random_state,
        pruner=params.pruner,
    )


def _budget(params: OptimizeParams) -> float | None:
    return params.timeout or (AUTO_TIMEOUT_SECONDS if params.algorithm == "auto" else None)


def _finish_reserve(budget: float) -> float:
    """Seconds kept after the search for the summary, the records and the answer's way back.

    5 % of the budget, 0.5 s to 3 s: on a loaded machine, closing the study and writing the
    records took up to 0.4 s, and the waiting request polls the job row every 0.1 s.
    """
    return min(3.0, max(0.5, 0.05 * budget))


class _Reserve:
    """Time to keep free at the end, re-estimated as trials finish."""

    def __init__(self, params: OptimizeParams, budget: float | None) -> None:
        self._params, self._budget = params, budget

    def __call__(self, trials: Sequence[FrozenTrial]) -> float:
        if self._budget is None:
            return 0.0
        reserve = _finish_reserve(self._budget)
        if not self._params.train_best:
            return reserve
        completed = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
        best = max(completed, key=lambda t: float(t.value or 0.0), default=None)
        fold_seconds = float(best.user_attrs.get("fit_seconds", 0.0)) if best else 0.0
        k = self._params.cv_folds
        rows = (1 - self._params.test_size) / ((k - 1) / k)  # final fit rows / fold fit rows
        # Fit, then evaluate (importances can cost another fit's worth), then store; before
        # any trial has finished, a tenth of the budget stands in for the estimate.
        final = max(0.1 * self._budget, PROCESS_START_SECONDS + 2.0 * fold_seconds * rows)
        return reserve + STORE_SECONDS + final


@job_type("optimize", params=OptimizeParams, check=check_optimize_params)
def optimize_job(params: OptimizeParams, context: JobContext) -> dict[str, Any]:
    """Search hyperparameters; answer as the seed's ``/optimize`` does (and more)."""
    check_trial_budget(params, context.settings.max_trials)
    budget = _budget(params)
    started = time.monotonic()
    clock = Clock(started, None if budget is None else started + budget)
    dataset = build_loader(context.settings, context.db).load(
        params.dataset_spec(),
        tenant=context.tenant,
        progress=lambda fraction, message: context.report(0.05 * fraction, message),
    )
    search = _search(params, dataset)
    study_id = study_id_for(context.job_id)
    storage = open_storage(context.settings)
    delete_study(storage, study_id)  # a retried attempt starts over
    studies = StudyRepository(context.db)
    studies.start(
        study_id=study_id,
        tenant=context.tenant,
        algorithm=params.algorithm,
        task=search.target.task.value,
        target=params.target_column,
        scoring=search.scorer.name,
        n_trials=params.n_trials,
        dataset_fingerprint=dataset.fingerprint,
        job_id=context.job_id,
    )
    workers: list[str] = []
    try:
        study = create_study(search, storage=storage, study_name=study_id, n_trials=params.n_trials)
        workers = _start_workers(params, context, study_id, clock, dataset.fingerprint)
        stats = run_trials(
            search,
            study,
            n_trials=params.n_trials,
            clock=clock,
            n_jobs=context.settings.job_threads,
            progress=lambda fraction, message: context.report(0.05 + 0.85 * fraction, message),
            reserve=_Reserve(params, budget),
        )
        study.set_user_attr("closed", True)
        helpers = _finish_workers(context, workers, clock)
        close_study(study)
        result = summarize(search, study, clock=clock, stats=[stats])
        answer = _answer(result, dataset, helpers, len(workers) + 1)
        model_id = None
        if params.train_best:
            model_id = _train_best(params, result, dataset, context, clock, answer)
            answer["elapsed"] = round(time.monotonic() - started, 3)
    except BaseException as exc:
        _stop_workers(context, workers)
        studies.finish(study_id, status="failed", summary={"error": str(exc)[:2000]})
        raise
    studies.finish(
        study_id,
        status="completed",
        best_value=result.best_score,
        best_params=result.best_params,
        summary={k: v for k, v in answer.items() if k not in ("best_params", "metrics")},
        model_id=model_id,
    )
    return answer


def _answer(
    result: TuningResult, dataset: LoadedDataset, helpers: list[dict[str, Any]], workers: int
) -> dict[str, Any]:
    answer: dict[str, Any] = {"success": True, **result.to_dict()}
    if answer["leaderboard"] is None:
        del answer["leaderboard"]
    answer["n_workers"] = workers
    answer["workers"] = helpers
    answer["dataset_fingerprint"] = dataset.fingerprint
    answer["warnings"] = []
    return answer


def _train_best(
    params: OptimizeParams,
    result: TuningResult,
    dataset: LoadedDataset,
    context: JobContext,
    clock: Clock,
    answer: dict[str, Any],
) -> str | None:
    """Train the best parameters as ``/train`` would, in a killable process bounded by time."""
    train_params = check_train_params(
        TrainParams(
            dataset_path=params.dataset_path,
            dataset=params.dataset,
            target_column=params.target_column,
            algorithm=result.algorithm,
            test_size=params.test_size,
            random_state=params.random_state,
            hyperparams=result.best_params,
            task=params.task,
            study_id=result.study_name,
        )
    )
    process = TrialProcess(
        None, context.settings.job_threads, tick=lambda: context.report(0.93, "training the best")
    )
    until = None if clock.deadline is None else clock.deadline - STORE_SECONDS
    log.info("training the best parameters", seconds_left=clock.remaining(STORE_SECONDS))

    def fit(*args: Any, **kwargs: Any) -> TrainingResult:
        kwargs.pop("progress", None)  # a callback cannot cross into the child process
        trained: TrainingResult = process.call(train, *args, until=until, **kwargs)
        return trained

    try:
        trained = train_dataset(
            train_params,
            dataset,
            context,
            progress=lambda fraction, message: context.report(0.92, message),
            fit=fit,
        )
    except TrialStopped:
        answer["warnings"].append(
            "the best parameters could not be trained before the deadline; "
            "send best_params to /train"
        )
        return None
    except (TrialError, TrialCrashed) as exc:
        answer["warnings"].append(f"training the best parameters failed: {exc}")
        return None
    finally:
        process.close()
    answer["model_id"] = trained["model_id"]
    answer["metrics"] = trained["metrics"]
    answer["warnings"].extend(trained["warnings"])
    model_id: str = trained["model_id"]
    return model_id


# --- extra workers ---------------------------------------------------------------------------
class OptimizeWorkerParams(SnakeModel):
    """Parameters of an ``optimize_worker`` job: the request, the study, the shared deadline."""

    request: OptimizeParams
    study_id: str = Field(pattern=STUDY_ID.pattern)
    worker: int = Field(ge=1, le=64)
    deadline: float | None = Field(None, description="Wall-clock (epoch) end of the search.")
    dataset_fingerprint: str = Field(min_length=1, max_length=64)


def _start_workers(
    params: OptimizeParams, context: JobContext, study_id: str, clock: Clock, fingerprint: str
) -> list[str]:
    if params.n_workers <= 1:
        return []
    deadline = None
    if clock.deadline is not None:
        budget = clock.deadline - clock.started
        remaining = clock.deadline - _finish_reserve(budget) - time.monotonic()
        if params.train_best:
            remaining -= STORE_SECONDS + 0.1 * budget
        deadline = time.time() + remaining
    started = []
    for worker in range(1, params.n_workers):
        payload = OptimizeWorkerParams(
            request=params,
            study_id=study_id,
            worker=worker,
            deadline=deadline,
            dataset_fingerprint=fingerprint,
        ).model_dump(mode="json")
        try:
            job = context.runtime.spawn(
                tenant=context.tenant, job_type="optimize_worker", params=payload
            )
        except MLWorkerError as exc:
            log.warning("could not start an extra search worker", error=exc.message)
            break
        started.append(job.id)
    return started


def _finish_workers(context: JobContext, workers: list[str], clock: Clock) -> list[dict[str, Any]]:
    """Wait for the workers still running (the study is closed); cancel those never started."""
    jobs = context.runtime.jobs
    limit = None if clock.deadline is None else clock.deadline
    pending = set(workers)
    while pending:
        for job_id in sorted(pending):
            job = jobs.get(job_id, tenant=None)
            if job.status.finished:
                pending.discard(job_id)
            elif job.status.value == "queued":
                _cancel(context, job_id)
        if not pending:
            break
        if limit is not None and time.monotonic() >= limit:
            _stop_workers(context, sorted(pending))
            break
        context.report(0.9, f"waiting for {len(pending)} search worker(s)")
        time.sleep(_WAIT_POLL_SECONDS)
    results = []
    for job_id in workers:
        job = jobs.get(job_id, tenant=None)
        results.append({"job_id": job_id, "status": job.status.value, **(job.result or {})})
    return results


def _cancel(context: JobContext, job_id: str) -> None:
    try:
        context.runtime.jobs.request_cancel(job_id, tenant=None)
    except JobNotCancellable:
        pass


def _stop_workers(context: JobContext, workers: list[str]) -> None:
    for job_id in workers:
        try:
            _cancel(context, job_id)
        except MLWorkerError as exc:  # best effort: the workers also stop at the deadline
            log.warning("could not cancel a search worker", job_id=job_id, error=exc.message)


@job_type("optimize_worker", params=OptimizeWorkerParams, max_attempts=1)
def optimize_worker_job(params: OptimizeWorkerParams, context: JobContext) -> dict[str, Any]:
    """Run trials of another job's study until its budget, deadline, or it is closed."""
    request = params.request
    StudyRepository(context.db).get(params.study_id, tenant=context.tenant)  # same tenant only
    idle = {"study_id": params.study_id, "worker": params.worker, "trials": 0}
    if params.deadline is not None and time.time() >= params.deadline:
        return {**idle, "stopped": "timeout"}
    started = time.monotonic()
    deadline = None
    if params.deadline is not None:
        deadline = started + params.deadline - time.time()
    dataset = build_loader(context.settings, context.db).load(
        request.dataset_spec(), tenant=context.tenant
    )
    if dataset.fingerprint != params.dataset_fingerprint:
        raise InvalidInput("the dataset changed since the search started", field="dataset")
    search = _search(request, dataset)
    study = attach_study(
        search,
        storage=open_storage(context.settings),
        study_name=params.study_id,
        worker=params.worker,
    )
    if study.user_attrs.get("closed"):
        return {**idle, "stopped": "closed"}
    stats = run_trials(
        search,
        study,
        n_trials=request.n_trials,
        clock=Clock(started, deadline),
        n_jobs=context.settings.job_threads,
        progress=context.report,
        watch_closed=True,
    )
    return {
        **idle,
        "trials": stats.trials,
        "stopped": stats.stopped,
        "isolation": stats.isolation.to_dict(),
    }
