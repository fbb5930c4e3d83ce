"""Extra workers of one search (``n_workers > 1``): started, awaited and stopped by the leader.

Each extra worker is an ``optimize_worker`` job of its own (another pool process, or another
machine under Celery) that attaches to the leader's study through the shared Optuna storage
and runs trials until the study's budget, the shared deadline, or the leader closes the study.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from pydantic import Field

from mlworker.errors import InvalidInput, JobNotCancellable, MLWorkerError
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type
from mlworker.services.datasets import build_loader
from mlworker.services.optimize_request import (
    STORE_SECONDS,
    OptimizeParams,
    build_search,
    finish_reserve,
)
from mlworker.services.training import SnakeModel
from mlworker.store.optuna_storage import open_storage
from mlworker.store.studies import StudyRepository
from mlworker.training.study_values import STUDY_ID
from mlworker.training.tuning import Clock, attach_study, run_trials

log = structlog.get_logger(__name__)

_WAIT_POLL_SECONDS = 0.1


class OptimizeWorkerParams(SnakeModel):
    """Parameters of an ``optimize_worker`` job: the request, the study, the shared deadline."""

    request: OptimizeParams
    study_id: str = Field(pattern=STUDY_ID.pattern)
    worker: int = Field(ge=1, le=64)
    deadline: float | None = Field(None, description="Wall-clock (epoch) end of the search.")
    dataset_fingerprint: str = Field(min_length=1, max_length=64)


def start_workers(
    params: OptimizeParams, context: JobContext, study_id: str, clock: Clock, fingerprint: str
) -> list[str]:
    """Start ``n_workers - 1`` worker jobs on the study; they stop before the leader does."""
    if params.n_workers <= 1:
        return []
    deadline = None
    if clock.deadline is not None:
        budget = clock.deadline - clock.started
        remaining = clock.deadline - finish_reserve(budget) - time.monotonic()
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


def finish_workers(context: JobContext, workers: list[str], clock: Clock) -> list[dict[str, Any]]:
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
            stop_workers(context, sorted(pending))
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


def stop_workers(context: JobContext, workers: list[str]) -> None:
    """Ask the workers to stop (best effort: they also stop at the deadline)."""
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
    dataset = request.load_dataset(
        build_loader(context.settings, context.db), tenant=context.tenant, progress=None
    )
    if dataset.fingerprint != params.dataset_fingerprint:
        raise InvalidInput("the dataset changed since the search started", field="dataset")
    search = build_search(request, dataset)
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
