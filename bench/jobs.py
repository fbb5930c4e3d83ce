"""Job overhead of each runner: how long an empty job waits before it runs, and until it ends.

For every selected runner the script starts real processes (``python -m mlworker serve``, and
``python -m mlworker worker`` for Celery), submits ``diagnostics.noop`` jobs one at a time over
HTTP, waits for each to complete before submitting the next (so the figures measure overhead,
not queueing), and reads the job row's own timestamps:

- submit → running: ``startedAt - createdAt``
- submit → completed: ``finishedAt - createdAt``
- POST round trip: the client-observed duration of ``POST /jobs``

Runners
-------
local
    The embedded topology: the server's process pool on a SQLite file in a temporary directory.
    Target: p99 submit → running <= 50 ms.
celery-redis, celery-amqp
    The scaled-out topology: Celery over Redis or RabbitMQ, on a fresh PostgreSQL schema
    (``MLWORKER_DATABASE_SCHEMA``) dropped at the end. Target: p99 submit → running <= 100 ms.

Every subprocess runs in its own process group and is stopped on exit, Ctrl+C and SIGTERM
included. The exit status is 1 when a target fails.

Examples
--------
::

    .venv/bin/python bench/jobs.py --jobs 500
    .venv/bin/python bench/jobs.py --runners local,celery-redis,celery-amqp --jobs 200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import sqlalchemy as sa

NOOP = "diagnostics.noop"
RUNNERS = ("local", "celery-redis", "celery-amqp")
TARGET_MS = {"local": 50.0, "celery-redis": 100.0, "celery-amqp": 100.0}
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672//"
# Settings a developer's shell may carry; the benchmark sets what it needs and nothing else.
_INHERITED_SETTINGS = ("DATABASE_URL", "ML_WORKER_PORT", "PORT", "HOST", "LOG_LEVEL", "MODELS_DIR")


class BenchmarkError(RuntimeError):
    """A process did not start or a job did not complete."""


# --- processes -----------------------------------------------------------------------------------
@dataclass
class Service:
    """One ``python -m mlworker …`` subprocess in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        """Return the end of the process's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        """Raise when the process has exited."""
        if self.process.poll() is not None:
            raise BenchmarkError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the main process to shut down, then kill whatever is left of its group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        # Pool children (forkserver, Celery prefork) live in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


@dataclass
class Processes:
    """Every subprocess started, stopped in reverse order."""

    services: list[Service] = field(default_factory=list)

    def start(self, name: str, args: Sequence[str], env: dict[str, str], cwd: Path) -> Service:
        """Start ``python -m mlworker ARGS`` in ``cwd`` with exactly ``env``."""
        log_path = cwd / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlworker", *args],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C reaches us only; we stop them in order
            )
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        """Stop every service, newest first."""
        while self.services:
            self.services.pop().stop()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def base_environment(root: Path) -> dict[str, str]:
    """Return the caller's environment minus ML Worker settings, plus the common ones."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MLWORKER_") and key not in _INHERITED_SETTINGS
    }
    env.update(
        {
            "HOST": "127.0.0.1",
            "MLWORKER_DIAGNOSTIC_JOBS": "true",
            "MLWORKER_LOG_FORMAT": "json",
            "MLWORKER_DATA_ROOT": str(root / "data"),
            "MLWORKER_ARTIFACTS": str(root / "artifacts"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def free_port() -> int:
    """Return an unused TCP port on the loopback interface."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, services: Sequence[Service]
) -> None:
    """Poll ``condition`` until true; fail early when one of ``services`` dies."""
    deadline = time.monotonic() + timeout
    while not condition():
        for service in services:
            service.check_alive()
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {s.name}\n{s.log_tail()}" for s in services)
            raise BenchmarkError(f"{what} within {timeout:g} s\n{tails}")
        time.sleep(0.1)


def server_ready(url: str) -> bool:
    """Whether ``GET /health/ready`` answers 200 (database and runner usable)."""
    try:
        return httpx.get(f"{url}/health/ready", timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


# --- measurement ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One job's latencies in milliseconds."""

    to_running: float
    to_completed: float
    post_round_trip: float


def _ms(later: str, earlier: str) -> float:
    delta = datetime.fromisoformat(later) - datetime.fromisoformat(earlier)
    return delta.total_seconds() * 1000


def run_one(client: httpx.Client, *, timeout: float) -> Sample:
    """Submit one empty job and wait until it completes; return its latencies."""
    started = time.perf_counter()
    response = client.post("/jobs", json={"type": NOOP, "params": {}})
    post_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 202:
        raise BenchmarkError(f"POST /jobs answered {response.status_code}: {response.text}")
    job_id = response.json()["jobId"]
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        job = client.get(f"/status/{job_id}").json()
        if job["status"] == "completed":
            break
        if job["status"] in ("failed", "cancelled"):
            raise BenchmarkError(f"job {job_id} ended {job['status']}: {job['error']}")
        if time.monotonic() > deadline:
            raise BenchmarkError(f"job {job_id} still {job['status']} after {timeout:g} s")
        # Back off so polling does not compete for the CPU with what it measures.
        time.sleep(pause)
        pause = min(pause * 1.5, 0.02)
    return Sample(
        to_running=_ms(job["startedAt"], job["createdAt"]),
        to_completed=_ms(job["finishedAt"], job["createdAt"]),
        post_round_trip=post_ms,
    )


def measure(url: str, *, jobs: int, warmup: int, timeout: float) -> list[Sample]:
    """Run ``warmup`` uncounted jobs, then ``jobs`` counted ones, strictly one at a time."""
    samples: list[Sample] = []
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        for index in range(warmup + jobs):
            sample = run_one(client, timeout=timeout)
            if index >= warmup:
                samples.append(sample)
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile, interpolating linearly (numpy's default method).

    Examples
    --------
    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([1.0, 2.0, 3.0, 4.0], 100)
    4.0
    """
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(runner: str, samples: Sequence[Sample]) -> dict[str, Any]:
    """Return median, p99 and max of each latency, the target and whether it is met."""
    figures: dict[str, Any] = {"jobs": len(samples)}
    for name in ("to_running", "to_completed", "post_round_trip"):
        values = [getattr(sample, name) for sample in samples]
        figures[f"{name}_ms"] = {
            "median": round(statistics.median(values), 2),
            "p99": round(percentile(values, 99), 2),
            "max": round(max(values), 2),
        }
    target = TARGET_MS[runner]
    figures["target_p99_to_running_ms"] = target
    figures["pass"] = figures["to_running_ms"]["p99"] <= target
    return figures


# --- runners -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """Command-line options."""

    jobs: int
    warmup: int
    runners: tuple[str, ...]
    broker: str
    amqp: str
    postgres: str
    workers: int
    job_timeout: float


def bench_local(options: Options, processes: Processes) -> list[Sample]:
    """Embedded topology: ``mlworker serve`` with its process pool on SQLite."""
    with tempfile.TemporaryDirectory(prefix="mlworker-bench-") as directory:
        root = Path(directory)
        port = free_port()
        env = base_environment(root)
        env.update(
            {
                "ML_WORKER_PORT": str(port),
                "DATABASE_URL": f"sqlite:///{root / 'var' / 'mlworker.db'}",
                "MLWORKER_EXECUTOR": "local",
                "MLWORKER_WORKERS": str(options.workers),
            }
        )
        server = processes.start("local-server", ["serve"], env, root)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: server_ready(url), timeout=60, what="server not ready", services=[server]
            )
            return measure(
                url, jobs=options.jobs, warmup=options.warmup, timeout=options.job_timeout
            )
        finally:
            processes.stop_all()


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """Yield a fresh PostgreSQL schema name; drop the schema (the server creates it) after."""
    schema = f"mlwb_{secrets.token_hex(4)}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        yield schema
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def delete_amqp_queue(broker: str, queue: str) -> None:
    """Remove the benchmark's private queue from RabbitMQ (Redis drops empty lists itself)."""
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(broker, connect_timeout=3) as connection:
        channel: Any = connection.default_channel  # kombu's stubs type it too narrowly
        channel.queue_delete(queue)


def bench_celery(options: Options, processes: Processes, broker: str) -> list[Sample]:
    """Scaled-out topology: ``mlworker serve`` + one ``mlworker worker`` on PostgreSQL."""
    queue = f"mlwb-{secrets.token_hex(4)}"
    with (
        tempfile.TemporaryDirectory(prefix="mlworker-bench-") as directory,
        postgres_schema(options.postgres) as schema,
    ):
        root = Path(directory)
        port = free_port()
        env = base_environment(root)
        env.update(
            {
                "ML_WORKER_PORT": str(port),
                "DATABASE_URL": options.postgres,
                "MLWORKER_DATABASE_SCHEMA": schema,
                "MLWORKER_EXECUTOR": "celery",
                "MLWORKER_BROKER_URL": broker,
                "MLWORKER_QUEUE": queue,
                "MLWORKER_WORKERS": str(options.workers),
            }
        )
        try:
            server = processes.start("celery-server", ["serve"], env, root)
            url = f"http://127.0.0.1:{port}"
            wait_until(
                lambda: server_ready(url), timeout=60, what="server not ready", services=[server]
            )
            worker = processes.start(
                "celery-worker", ["worker", "--concurrency", str(options.workers)], env, root
            )
            wait_until(
                lambda: " ready." in worker.log_tail(100_000),
                timeout=60,
                what="celery worker not ready",
                services=[server, worker],
            )
            return measure(
                url, jobs=options.jobs, warmup=options.warmup, timeout=options.job_timeout
            )
        finally:
            processes.stop_all()
            if broker.startswith(("amqp", "pyamqp")):
                delete_amqp_queue(broker, queue)


def run_runner(runner: str, options: Options, processes: Processes) -> list[Sample]:
    """Dispatch to the runner's benchmark."""
    if runner == "local":
        return bench_local(options, processes)
    broker = options.broker if runner == "celery-redis" else options.amqp
    return bench_celery(options, processes, broker)


# --- report --------------------------------------------------------------------------------------
def render_table(results: dict[str, dict[str, Any]], jobs: int) -> str:
    """Render one line per runner and latency, with the target and the verdict."""
    lines = [
        f"Job overhead, {NOOP}, {jobs} jobs submitted one at a time (milliseconds)",
        "",
        f"{'runner':<14}{'measure':<24}{'median':>9}{'p99':>9}{'max':>9}  {'target (p99)':<14}"
        "result",
        "-" * 86,
    ]
    labels = {
        "to_running_ms": "submit -> running",
        "to_completed_ms": "submit -> completed",
        "post_round_trip_ms": "POST /jobs round trip",
    }
    for runner, figures in results.items():
        for key, label in labels.items():
            row = figures[key]
            target, verdict = "", ""
            if key == "to_running_ms":
                target = f"<= {figures['target_p99_to_running_ms']:g} ms"
                verdict = "PASS" if figures["pass"] else "FAIL"
            lines.append(
                f"{runner:<14}{label:<24}{row['median']:>9.2f}{row['p99']:>9.2f}"
                f"{row['max']:>9.2f}  {target:<14}{verdict}"
            )
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=500, help="jobs measured per runner")
    parser.add_argument(
        "--warmup", type=int, default=10, help="jobs run first and not counted (default 10)"
    )
    parser.add_argument(
        "--runners",
        default="local,celery-redis",
        help=f"comma-separated, from {','.join(RUNNERS)} (default local,celery-redis)",
    )
    parser.add_argument("--broker", default=DEFAULT_REDIS, help="Redis broker for celery-redis")
    parser.add_argument("--amqp", default=DEFAULT_AMQP, help="RabbitMQ broker for celery-amqp")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL for Celery")
    parser.add_argument(
        "--workers", type=int, default=2, help="pool processes / Celery concurrency (default 2)"
    )
    parser.add_argument(
        "--job-timeout", type=float, default=30.0, help="seconds one job may take (default 30)"
    )
    args = parser.parse_args(argv)
    runners = tuple(name.strip() for name in args.runners.split(",") if name.strip())
    unknown = sorted(set(runners) - set(RUNNERS))
    if unknown or not runners:
        parser.error(f"--runners: unknown {', '.join(unknown) or '(none given)'}")
    if args.jobs < 1 or args.warmup < 0 or args.workers < 1:
        parser.error("--jobs and --workers must be positive, --warmup not negative")
    return Options(
        jobs=args.jobs,
        warmup=args.warmup,
        runners=runners,
        broker=args.broker,
        amqp=args.amqp,
        postgres=args.postgres,
        workers=args.workers,
        job_timeout=args.job_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected runners; print the table and one JSON line; 1 if a target fails."""
    options = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGHUP, _raise_keyboard_interrupt)
    processes = Processes()
    results: dict[str, dict[str, Any]] = {}
    try:
        for runner in options.runners:
            print(f"running {runner} ({options.jobs} jobs) ...", file=sys.stderr, flush=True)
            results[runner] = summarise(runner, run_runner(runner, options, processes))
    except KeyboardInterrupt:
        print("interrupted; stopping every process", file=sys.stderr)
        return 130
    except (BenchmarkError, sa.exc.SQLAlchemyError, httpx.HTTPError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        processes.stop_all()
    print(render_table(results, options.jobs))
    print(json.dumps({"benchmark": "jobs", "jobs": options.jobs, "results": results}))
    return 0 if all(figures["pass"] for figures in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
