"""The embedded runner: a bounded pool of worker processes owned by the server.

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its processes dies, the whole
executor breaks and every job in it fails with it, and it cannot say which job killed the
process. This pool gives each process its own pipe, so a death costs exactly the job that
process held: that job is retried or failed with ``worker_lost``, a fresh process takes the
slot, and everything else goes on. The same slot bookkeeping enforces the time limit.

Worker processes start from a fork server (the server itself has threads, so a plain ``fork``
is unsafe) and exit on their own when the server dies, so a restarted server can safely re-run
what they held.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import connection as mp_connection
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import structlog

from mlworker.config import Settings
from mlworker.errors import MLWorkerError
from mlworker.jobs.execution import execute_job
from mlworker.jobs.registry import JOB_MODULES, load_job_types
from mlworker.jobs.runtime import WorkerRuntime
from mlworker.jobs.values import Job, JobError, JobStatus, RecoveryOutcome
from mlworker.store.db import Database
from mlworker.store.jobs import JobRepository

log = structlog.get_logger(__name__)

#: Seconds :meth:`LocalPoolRunner.close` waits for each step (a shutdown has a grace period).
CLOSE_SECONDS = 2.0


@dataclass
class _Slot:
    """One worker process and the job it holds, if any."""

    index: int
    process: BaseProcess
    conn: Connection
    lifeline: Connection
    job_id: str | None = None
    deadline: float = float("inf")
    kill_reason: str | None = None
    jobs_done: int = field(default=0)
    spawned_at: float = field(default_factory=time.monotonic)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_when_server_dies(lifeline: Connection) -> None:
    # Only the server holds the other end: EOF means it is gone. (Watching our parent pid
    # would not do: our parent is the fork server, which outlives the server while we run.)
    try:
        lifeline.recv()
    except (EOFError, OSError):
        pass
    os._exit(3)


def _child_main(
    conn: Connection, lifeline: Connection, settings: Settings, server_pid: int
) -> None:
    """Entry point of a pool process: run job ids received on ``conn`` until told to stop."""
    from mlworker.logs import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle
    # Jobs may start short-lived processes of their own (a search's trial process), which
    # multiprocessing forbids a daemon; the lifeline, not the flag, ties us to the server.
    multiprocessing.current_process().daemon = False
    configure_logging(settings)
    threading.Thread(
        target=_exit_when_server_dies, args=(lifeline,), daemon=True, name="lifeline"
    ).start()
    load_job_types()
    # The server's pid sits where other runners put their own: recovery checks it is alive.
    worker_id = f"local:{socket.gethostname()}:{server_pid}:{os.getpid()}"
    runtime = WorkerRuntime.create(settings, worker_id=worker_id)
    runtime.runner = LocalPoolRunner.name
    # A job's own jobs go to the server's dispatcher over our pipe, ahead of "done".
    runtime.dispatch = lambda job: conn.send(("submit", job.id))
    while True:
        try:
            job_id = conn.recv()
        except (EOFError, OSError):
            break
        if job_id is None:
            break
        try:
            # The time limit counts from here: not while this process was still starting.
            conn.send(("started", job_id))
            execute_job(job_id, runtime)
        except Exception:  # e.g. the database is down: the reaper retries the job later
            structlog.get_logger(__name__).exception("job execution failed", job_id=job_id)
        try:
            conn.send(job_id)
        except (BrokenPipeError, OSError):
            break
    runtime.close()


class LocalPoolRunner:
    """Bounded process pool owned by the server (``MLWORKER_EXECUTOR=local``).

    Parameters
    ----------
    settings
        Pool size (``workers``), time limit and attempts come from here.
    db
        The server's store handle, for recovery bookkeeping.
    """

    name = "local"

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._jobs = JobRepository(db)
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._slots: list[_Slot] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._mp = multiprocessing.get_context("forkserver")
        self._failed_starts = 0

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the processes, recover jobs a dead predecessor held, re-submit queued jobs."""
        self._mp.set_forkserver_preload(["mlworker.jobs.local", *JOB_MODULES])
        self._recover_orphans()
        # With several server processes, each runs its share of the pool (claims keep any job
        # offered to more than one of them running once).
        size = -(-self._settings.workers // self._settings.server_workers)
        self._slots = [self._spawn(index) for index in range(size)]
        for job_id in self._jobs.ids_with_status(JobStatus.QUEUED, runner=self.name):
            self._enqueue(job_id)
        self._thread = threading.Thread(target=self._loop, name="local-pool", daemon=True)
        self._thread.start()
        log.info("local pool started", workers=len(self._slots))

    def submit(self, job: Job) -> None:
        """Queue ``job``; a free process picks it up at once."""
        self._enqueue(job.id)

    def check(self) -> None:
        """Raise when the dispatcher is not running."""
        if self._thread is None or not self._thread.is_alive():
            raise MLWorkerError("the local job pool is not running")

    def close(self) -> None:
        """Stop the pool within a few seconds; running jobs go back to the queue.

        A job cannot finish inside a shutdown grace period of seconds, so its process is killed
        and the job released without counting the attempt: the next server start runs it again.
        """
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_SECONDS)
        busy = [slot for slot in self._slots if slot.job_id is not None]
        for slot in self._slots:
            if slot.job_id is not None:
                slot.process.kill()
            else:
                try:
                    slot.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + CLOSE_SECONDS
        for slot in self._slots:
            slot.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=1)
        for slot in busy:
            assert slot.job_id is not None
            attempt = self._held_attempt(slot)
            if attempt is None:
                continue
            try:
                self._jobs.release(slot.job_id, attempt=attempt)
            except MLWorkerError as exc:
                log.warning(
                    "could not re-queue job at shutdown", job_id=slot.job_id, error=str(exc)
                )
        for slot in self._slots:
            slot.conn.close()
            slot.lifeline.close()
        self._slots = []
        self._wake_reader.close()
        self._wake_writer.close()

    def _held_attempt(self, slot: _Slot) -> int | None:
        """Return the attempt of ``slot.job_id`` that the slot's process claimed, if it did.

        A job can be offered to several slots (a re-submission, another server process's start);
        only the process that won the claim may release or recover it.
        """
        job = self._lookup(slot)
        worker_id = f"local:{socket.gethostname()}:{os.getpid()}:{slot.process.pid}"
        if job is None or job.status is not JobStatus.RUNNING or job.worker_id != worker_id:
            return None
        return job.attempts

    def _lookup(self, slot: _Slot) -> Job | None:
        if slot.job_id is None:
            return None
        try:
            return self._jobs.get(slot.job_id, tenant=None)
        except MLWorkerError:
            return None

    # --- internals -----------------------------------------------------------------------------
    def _spawn(self, index: int) -> _Slot:
        parent_end, child_end = self._mp.Pipe(duplex=True)
        lifeline_reader, lifeline_writer = self._mp.Pipe(duplex=False)
        process = self._mp.Process(
            target=_child_main,
            args=(child_end, lifeline_reader, self._settings, os.getpid()),
            name=f"mlworker-pool-{index}",
            daemon=True,
        )
        process.start()
        child_end.close()
        lifeline_reader.close()
        return _Slot(index=index, process=process, conn=parent_end, lifeline=lifeline_writer)

    def _enqueue(self, job_id: str) -> None:
        with self._lock:
            self._queue.append(job_id)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are closing

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _dispatch(self) -> None:
        for slot in self._slots:
            if slot.job_id is not None:
                continue
            with self._lock:
                if not self._queue:
                    return
                job_id = self._queue.popleft()
            try:
                slot.conn.send(job_id)
            except OSError:
                with self._lock:
                    self._queue.appendleft(job_id)
                continue
            slot.job_id = job_id

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._dispatch()
                self._wait_and_handle()
            except Exception:
                log.exception("local pool dispatcher error")
                time.sleep(0.5)

    def _wait_and_handle(self) -> None:
        now = time.monotonic()
        next_deadline = min((s.deadline for s in self._slots), default=float("inf"))
        timeout = max(0.0, min(1.0, next_deadline - now))
        waitables: list[object] = [self._wake_reader]
        for slot in self._slots:
            waitables.append(slot.conn)
            waitables.append(slot.process.sentinel)
        ready = mp_connection.wait(waitables, timeout)  # type: ignore[arg-type]
        if self._wake_reader in ready:
            self._drain_wakeups()
        for position, slot in enumerate(list(self._slots)):
            if slot.conn in ready:
                try:
                    while slot.conn.poll():
                        message = slot.conn.recv()
                        if isinstance(message, tuple) and message[0] == "submit":
                            self._enqueue(message[1])
                            continue
                        if isinstance(message, tuple) and message[0] == "started":
                            limit = self._settings.job_time_limit_seconds
                            slot.deadline = time.monotonic() + limit
                            continue
                        slot.job_id = None
                        slot.deadline = float("inf")
                        slot.jobs_done += 1
                except (EOFError, OSError):
                    pass  # the sentinel tells us it died
            if slot.process.sentinel in ready or not slot.process.is_alive():
                if not self._stopping.is_set():
                    self._slots[position] = self._replace(slot)
        self._enforce_time_limits()

    def _enforce_time_limits(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.job_id is not None and now >= slot.deadline and slot.kill_reason is None:
                log.warning("job exceeded its time limit; killing its process", job_id=slot.job_id)
                slot.kill_reason = "time_limit"
                slot.process.kill()

    def _replace(self, slot: _Slot) -> _Slot:
        slot.process.join(timeout=5)
        exit_code = slot.process.exitcode
        slot.conn.close()
        slot.lifeline.close()
        if slot.job_id is None and slot.jobs_done == 0 and time.monotonic() - slot.spawned_at < 5:
            # A process that dies before doing anything will die again: back off, don't spin.
            self._failed_starts += 1
            delay = min(30.0, 0.25 * 2**self._failed_starts)
            log.error("pool process failed to start", exit_code=exit_code, retry_in=delay)
            self._stopping.wait(delay)
        else:
            self._failed_starts = 0
        replacement = self._spawn(slot.index)
        if slot.job_id is not None:
            attempt = self._held_attempt(slot)
            if attempt is not None:
                self._recover(slot.job_id, slot.kill_reason, exit_code, attempt)
            elif (job := self._lookup(slot)) is not None and job.status is JobStatus.QUEUED:
                self._enqueue(job.id)  # the process died before it claimed the job
        return replacement

    def _recover(
        self, job_id: str, kill_reason: str | None, exit_code: int | None, attempt: int
    ) -> None:
        if kill_reason == "time_limit":
            limit = self._settings.job_time_limit_seconds
            error = JobError("time_limit", f"stopped after its time limit of {limit:g} s")
        else:
            error = JobError(
                "worker_lost",
                f"the process running the job died (exit code {exit_code}); "
                "it may have run out of memory or crashed",
            )
        try:
            outcome = self._jobs.recover(
                job_id, attempt=attempt, error=error, retry=kill_reason != "time_limit"
            )
        except MLWorkerError as exc:
            log.error("could not record a lost job; the reaper will", job_id=job_id, error=str(exc))
            return
        log.warning(
            "worker process died", job_id=job_id, exit_code=exit_code, outcome=outcome.value
        )
        if outcome is RecoveryOutcome.REQUEUED:
            self._enqueue(job_id)

    def _recover_orphans(self) -> None:
        """Recover jobs left ``running`` by a pool whose server is gone (crash, kill -9)."""
        host = socket.gethostname()
        for job in self._jobs.running():
            parts = (job.worker_id or "").split(":")
            if job.runner != self.name or len(parts) < 3 or parts[0] != "local":
                continue
            if parts[1] != host or not parts[2].isdigit():
                continue
            server_pid = int(parts[2])
            if server_pid == os.getpid() or _pid_alive(server_pid):
                continue
            error = JobError("worker_lost", "the server running the job stopped")
            outcome = self._jobs.recover(job.id, attempt=job.attempts, error=error)
            log.warning("recovered job from a dead pool", job_id=job.id, outcome=outcome.value)
