"""Run jobs on threads inside the server process: no extra processes, for tests and notebooks."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from mlworker.config import Settings
from mlworker.jobs.execution import execute_job
from mlworker.jobs.runtime import WorkerRuntime, worker_identity
from mlworker.jobs.values import Job, JobStatus
from mlworker.store.db import Database

log = structlog.get_logger(__name__)


class InlineRunner:
    """Execute jobs on a thread pool sharing the server's database handle."""

    name = "inline"

    def __init__(self, settings: Settings, db: Database) -> None:
        self._runtime = WorkerRuntime.create(settings, worker_id=worker_identity("inline"), db=db)
        self._runtime.runner = self.name
        self._runtime.dispatch = lambda job: self._execute(job.id)
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="mlworker-job")
        self._futures: set[Future[JobStatus | None]] = set()

    def start(self) -> None:
        """Nothing to start; queued jobs left over are re-submitted."""
        for job_id in self._runtime.jobs.ids_with_status(JobStatus.QUEUED, runner=self.name):
            self._execute(job_id)

    def submit(self, job: Job) -> None:
        """Run ``job`` on the next free thread."""
        self._execute(job.id)

    def _execute(self, job_id: str) -> None:
        future = self._pool.submit(execute_job, job_id, self._runtime)
        self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[JobStatus | None]) -> None:
        self._futures.discard(future)
        if future.exception() is not None:
            log.error("inline job execution failed", error=str(future.exception()))

    def check(self) -> None:
        """Report ready: threads live as long as the process."""

    def close(self) -> None:
        """Wait for running jobs, then stop the threads."""
        self._pool.shutdown(wait=True, cancel_futures=False)
