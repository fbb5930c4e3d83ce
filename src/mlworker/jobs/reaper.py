"""The reaper: no job stays ``running`` forever (ARCHITECTURE.md §7.1).

A running job refreshes its heartbeat every ``MLWORKER_HEARTBEAT_SECONDS``. When a heartbeat is
older than ``MLWORKER_HEARTBEAT_TIMEOUT_SECONDS`` its worker is presumed dead: the job is
re-queued (attempts left) or failed with ``worker_lost``. Every server runs a reaper; concurrent
reapers are safe because each recovery is a conditional update on the job row.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import structlog

from mlworker.config import Settings
from mlworker.errors import MLWorkerError
from mlworker.jobs.base import JobRunner
from mlworker.jobs.values import JobError, RecoveryOutcome
from mlworker.store.jobs import JobRepository
from mlworker.store.records import utcnow

log = structlog.get_logger(__name__)


class Reaper:
    """Periodically recover jobs whose worker went silent.

    Parameters
    ----------
    jobs
        The job repository.
    runner
        Where re-queued jobs are submitted again.
    settings
        Heartbeat interval and timeout.
    """

    def __init__(self, jobs: JobRepository, runner: JobRunner, settings: Settings) -> None:
        self._jobs = jobs
        self._runner = runner
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reap_once(self) -> dict[str, RecoveryOutcome]:
        """Recover every job with a stale heartbeat; return what happened to each."""
        timeout = self._settings.heartbeat_timeout_seconds
        cutoff = utcnow() - timedelta(seconds=timeout)
        outcomes: dict[str, RecoveryOutcome] = {}
        for job in self._jobs.running(heartbeat_before=cutoff):
            error = JobError(
                "worker_lost", f"no heartbeat for {timeout:g} s; its worker is presumed dead"
            )
            outcome = self._jobs.recover(job.id, attempt=job.attempts, error=error)
            outcomes[job.id] = outcome
            if outcome is RecoveryOutcome.UNCHANGED:
                continue
            log.warning("reaped job", job_id=job.id, tenant=job.tenant, outcome=outcome.value)
            if outcome is RecoveryOutcome.REQUEUED:
                self._resubmit(job.id)
        self._republish_stale_queued()
        return outcomes

    def _republish_stale_queued(self) -> None:
        after = self._settings.requeue_queued_after_seconds
        if after <= 0 or self._runner.name != "celery":
            return
        cutoff = utcnow() - timedelta(seconds=after)
        for job in self._jobs.touch_queued(runner=self._runner.name, updated_before=cutoff):
            log.info("re-publishing long-queued job", job_id=job.id)
            self._resubmit(job.id)

    def _resubmit(self, job_id: str) -> None:
        try:
            self._runner.submit(self._jobs.get(job_id, tenant=None))
        except MLWorkerError as exc:
            # The job stays queued; the stale-queue sweep publishes it again later.
            log.error("could not re-submit job", job_id=job_id, error=str(exc))

    def start(self) -> None:
        """Run :meth:`reap_once` every heartbeat interval on a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="job-reaper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.heartbeat_seconds):
            try:
                self.reap_once()
            except Exception as exc:  # a database outage must not kill the reaper
                log.warning("reaper pass failed", error=str(exc))

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
