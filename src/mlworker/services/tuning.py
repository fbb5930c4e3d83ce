"""The ``optimize`` job (``POST /optimize``).

``optimize`` loads the dataset, records the study, creates it in the Optuna storage, starts
``n_workers - 1`` extra workers (:mod:`~mlworker.services.search_workers`), runs trials itself,
waits for the workers, and answers with the best parameters. With ``train_best`` it trains them
through the ``train`` job's own code path and returns the model id.

``timeout`` bounds the whole job, from its start: loading, search, waiting for workers and the
final training. Trials stop early enough to leave room for what comes after them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from optuna.trial import FrozenTrial, TrialState

from mlworker.data.values import LoadedDataset
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type
from mlworker.services.datasets import build_loader
from mlworker.services.optimize_request import (
    PROCESS_START_SECONDS,
    STORE_SECONDS,
    OptimizeParams,
    build_search,
    check_optimize_params,
    check_trial_budget,
    finish_reserve,
    time_budget,
)
from mlworker.services.search_workers import finish_workers, start_workers, stop_workers
from mlworker.services.training import TrainParams, check_train_params, train_dataset
from mlworker.store.optuna_storage import delete_study, open_storage
from mlworker.store.studies import StudyRepository
from mlworker.training.study_report import TuningResult, close_study, summarize
from mlworker.training.study_values import study_id_for
from mlworker.training.trainer import TrainingResult, train
from mlworker.training.trial_process import TrialCrashed, TrialError, TrialProcess, TrialStopped
from mlworker.training.tuning import Clock, create_study, run_trials

log = structlog.get_logger(__name__)

__all__ = ["OptimizeParams", "optimize_job"]


class _Reserve:
    """Time to keep free at the end, re-estimated as trials finish."""

    def __init__(self, params: OptimizeParams, budget: float | None) -> None:
        self._params, self._budget = params, budget

    def __call__(self, trials: Sequence[FrozenTrial]) -> float:
        if self._budget is None:
            return 0.0
        reserve = finish_reserve(self._budget)
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
    budget = time_budget(params)
    started = time.monotonic()
    clock = Clock(started, None if budget is None else started + budget)
    dataset = params.load_dataset(
        build_loader(context.settings, context.db),
        tenant=context.tenant,
        progress=lambda fraction, message: context.report(0.05 * fraction, message),
    )
    search = build_search(params, dataset)
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
        workers = start_workers(params, context, study_id, clock, dataset.fingerprint)
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
        helpers = finish_workers(context, workers, clock)
        close_study(study)
        result = summarize(search, study, clock=clock, stats=[stats])
        answer = _answer(result, dataset, helpers, len(workers) + 1)
        model_id = None
        if params.train_best:
            model_id = _train_best(params, result, dataset, context, clock, answer)
            answer["elapsed"] = round(time.monotonic() - started, 3)
    except BaseException as exc:
        stop_workers(context, workers)
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
