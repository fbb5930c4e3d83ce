"""What a running job sees: its identity, a progress callback, and the process's resources."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import TYPE_CHECKING

import structlog

from mlworker.errors import JobCancelled

if TYPE_CHECKING:
    from mlworker.config import Settings
    from mlworker.jobs.runtime import WorkerRuntime
    from mlworker.jobs.values import Job
    from mlworker.store.db import Database
    from mlworker.store.jobs import Ownership

log = structlog.get_logger(__name__)

#: Progress is written at most this often (seconds); a report of 1.0 is always written.
PROGRESS_WRITE_INTERVAL = 0.25


class JobLost(Exception):  # noqa: N818 - a signal, not an error a user sees
    """Signal that this attempt lost its job (the reaper re-queued it): stop, write nothing."""


class JobContext:
    """Handed to every job function.

    ``report(fraction, message)`` is the progress callback domain code receives. It is cheap to
    call often: writes are throttled. It is also where cooperative cancellation happens: when a
    cancel was requested, the next report raises :class:`~mlworker.errors.JobCancelled`.
    """

    def __init__(self, job: Job, runtime: WorkerRuntime) -> None:
        self.job = job
        self.runtime = runtime
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._last_write = 0.0
        self._lock = threading.Lock()

    @property
    def job_id(self) -> str:
        """Id of the running job."""
        return self.job.id

    @property
    def tenant(self) -> str:
        """Tenant that owns the job; every record the job writes carries it."""
        return self.job.tenant

    @property
    def attempt(self) -> int:
        """Attempt number of this execution (the fencing token on the job row)."""
        return self.job.attempts

    @property
    def settings(self) -> Settings:
        """The process's settings."""
        return self.runtime.settings

    @property
    def db(self) -> Database:
        """The process's metadata store."""
        return self.runtime.db

    def observe(self, ownership: Ownership) -> None:
        """Take note of what a heartbeat or progress write learned about the job row."""
        if not ownership.owned:
            self._lost.set()
        elif ownership.cancel_requested:
            self._cancel.set()

    def check(self) -> None:
        """Raise if the job was cancelled or taken away from this attempt."""
        if self._lost.is_set():
            raise JobLost(self.job.id)
        if self._cancel.is_set():
            raise JobCancelled("cancelled on request")

    def report(self, fraction: float, message: str = "") -> None:
        """Record progress in ``[0, 1]``; raise if the job should stop.

        Parameters
        ----------
        fraction
            Share of the work done.
        message
            What the job is doing now, shown by ``/status`` and ``mlworker jobs watch``.
        """
        self.check()
        now = time.monotonic()
        with self._lock:
            due = fraction >= 1.0 or now - self._last_write >= PROGRESS_WRITE_INTERVAL
            if due:
                self._last_write = now
        if due:
            ownership = self.runtime.jobs.heartbeat(
                self.job.id, attempt=self.attempt, fraction=fraction, message=message
            )
            self.observe(ownership)
            self.check()


class Heartbeat:
    """Background thread refreshing the job's heartbeat and noticing cancel requests."""

    def __init__(self, context: JobContext, interval: float) -> None:
        self._context = context
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        # Run in a copy of the caller's context so its log lines carry job id and tenant.
        variables = contextvars.copy_context()
        self._thread = threading.Thread(
            target=variables.run,
            args=(self._run,),
            name=f"heartbeat-{self._context.job_id}",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 5)

    def _run(self) -> None:
        context = self._context
        while not self._stop.wait(self._interval):
            try:
                context.observe(
                    context.runtime.jobs.heartbeat(context.job_id, attempt=context.attempt)
                )
            except Exception as exc:  # the job goes on; the reaper judges a long silence
                log.warning("heartbeat failed", error=str(exc))
