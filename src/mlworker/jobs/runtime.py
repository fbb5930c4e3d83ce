"""Per-process resources of whatever executes jobs (pool worker, Celery worker, inline thread)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlworker.config import Settings
from mlworker.errors import BrokerUnavailable, MLWorkerError
from mlworker.jobs.values import Job
from mlworker.serialization import canonical_hash
from mlworker.store.db import Database
from mlworker.store.jobs import JobRepository


def worker_identity(runner: str, *parts: object) -> str:
    """Return ``runner:host:pid[:extra…]``: enough to tell whether the process still lives."""
    pieces = [runner, socket.gethostname(), str(os.getpid()), *(str(p) for p in parts)]
    return ":".join(pieces)


@dataclass
class WorkerRuntime:
    """What one executing process holds open: settings, the store and its identity.

    ``runner`` and ``dispatch`` let a running job start further jobs (a search's extra workers)
    through the same runner that runs it: the local pool's dispatcher, Celery, or inline threads.
    """

    settings: Settings
    db: Database
    jobs: JobRepository
    worker_id: str
    runner: str = ""
    dispatch: Callable[[Job], None] | None = None

    @classmethod
    def create(
        cls, settings: Settings, *, worker_id: str, db: Database | None = None
    ) -> WorkerRuntime:
        """Open the store (or reuse ``db``) for a process that will run jobs."""
        database = db or Database(settings.database_url, schema=settings.database_schema)
        return cls(
            settings=settings, db=database, jobs=JobRepository(database), worker_id=worker_id
        )

    def close(self) -> None:
        """Release pooled connections."""
        self.db.dispose()

    def spawn(self, *, tenant: str, job_type: str, params: dict[str, Any]) -> Job:
        """Create a job (one attempt) from inside a running job and hand it to this runner.

        ``params`` must already be valid for ``job_type``: nothing is checked again.

        Raises
        ------
        MLWorkerError
            This runner cannot start jobs from inside a job.
        BrokerUnavailable
            The runner could not take it; no job row is left behind.
        """
        if self.dispatch is None:
            raise MLWorkerError(f"the {self.runner or 'current'} runner cannot start jobs here")
        job, _ = self.jobs.create(
            tenant=tenant,
            job_type=job_type,
            params=params,
            params_hash=canonical_hash({"type": job_type, "params": params}),
            runner=self.runner,
            max_attempts=1,
        )
        try:
            self.dispatch(job)
        except BrokerUnavailable:
            self.jobs.delete(job.id)
            raise
        return job
