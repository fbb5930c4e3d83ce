"""The job-runner protocol: how a submitted job id reaches a process that executes it."""

from __future__ import annotations

from typing import Protocol

from mlworker.jobs.values import Job


class JobRunner(Protocol):
    """Carries job ids to executors. The job row, not the runner, holds the job's state.

    Implementations: :mod:`~mlworker.jobs.local` (process pool owned by the server),
    :mod:`~mlworker.jobs.celery_runner` (Celery over Redis or RabbitMQ) and
    :mod:`~mlworker.jobs.inline` (threads in this process; tests).
    """

    name: str

    def start(self) -> None:
        """Start executors and re-submit work a previous server left behind."""

    def submit(self, job: Job) -> None:
        """Hand ``job`` to an executor; raise ``BrokerUnavailable`` if that is impossible."""

    def check(self) -> None:
        """Raise ``ServiceUnavailable`` when the runner cannot take work (readiness)."""

    def close(self) -> None:
        """Stop accepting work and release executors."""
