"""The scaled-out runner: Celery over Redis or RabbitMQ.

Messages carry only a job id; the worker runs the same :func:`execute_job` as the local pool and
writes the same job row. Delivery is at-least-once (late acknowledgement, rejection on worker
loss, prefetch of one); the conditional claim on the job row turns that into at-most-once
execution per attempt, so the whole is exactly-once for a job that completes.
"""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing import process as mp_process
from typing import Any

import structlog
from celery import Celery, signals
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import KombuError, OperationalError

from mlworker.config import Settings
from mlworker.errors import BrokerUnavailable, DatabaseUnavailable
from mlworker.jobs.execution import execute_job
from mlworker.jobs.registry import load_job_types
from mlworker.jobs.runtime import WorkerRuntime, worker_identity
from mlworker.jobs.values import Job
from mlworker.store.db import Database

log = structlog.get_logger(__name__)

TASK_NAME = "mlworker.execute_job"
#: Celery beat's periodic task: one tick of the learning scheduler (scheduled retraining).
LEARNING_TICK_TASK = "mlworker.learning_tick"
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

# Set by ``run_worker`` in the worker's main process; forked pool children inherit it and open
# their own database connections lazily, after the fork.
_worker_settings: Settings | None = None
_worker_runtime: WorkerRuntime | None = None
# The standard library's process object of the process importing this module (the worker's
# main process, before billiard forks its pool).
_STANDARD_PROCESS = mp_process.current_process()


def create_celery_app(settings: Settings) -> Celery:
    """Build the Celery app for ``settings.broker_url`` with ML Worker's delivery guarantees."""
    app = Celery("mlworker", broker=settings.broker_url, set_as_current=False)
    queue_arguments: dict[str, Any] = {}
    if (settings.broker_url or "").startswith(("amqp", "pyamqp")):
        # RabbitMQ closes a channel whose delivery stays unacknowledged past its consumer
        # timeout (30 min by default); with late acks that is any long job.
        queue_arguments["x-consumer-timeout"] = int(settings.visibility_timeout_seconds * 1000)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue_name,
        task_queues=None,
        task_create_missing_queues=True,
        task_default_queue_type="classic",
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_seconds},
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
        broker_pool_limit=20,
        task_soft_time_limit=settings.job_time_limit_seconds,
        task_time_limit=settings.job_time_limit_seconds + 60,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_disable_rate_limits=True,
    )
    if queue_arguments:
        from kombu import Queue

        app.conf.task_queues = [
            Queue(
                settings.queue_name,
                routing_key=settings.queue_name,
                queue_arguments=queue_arguments,
            )
        ]
    app.task(
        name=TASK_NAME,
        autoretry_for=(DatabaseUnavailable,),
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=30,
    )(_execute_job_task)
    app.task(name=LEARNING_TICK_TASK)(_learning_tick_task)
    from mlworker.services.learning import tick_seconds

    tick = tick_seconds(settings)
    # Ticks are idempotent (each due slot trains once), so a tick that waited behind long jobs
    # for a whole interval is dropped rather than run late next to the following one.
    app.conf.beat_schedule = {
        "learning-tick": {
            "task": LEARNING_TICK_TASK,
            "schedule": tick,
            "options": {"queue": settings.queue_name, "expires": tick},
        }
    }
    app.conf.beat_schedule_filename = str(settings.data_root / "celerybeat-schedule")
    return app


def _runtime() -> WorkerRuntime:
    global _worker_runtime
    if _worker_runtime is None:
        # Jobs may start short-lived processes of their own (a search's trial process) with
        # the standard library's multiprocessing, which in a pool child sees billiard's process
        # object: a daemon (no children allowed) holding a key it refuses to send. The standard
        # library's own object, kept from the worker's main process, fixes both; billiard keeps
        # its own record of this child.
        mp_process._current_process = _STANDARD_PROCESS  # type: ignore[attr-defined]
        if _worker_settings is None:
            raise RuntimeError("the Celery worker was not started through `mlworker worker`")
        load_job_types()
        _worker_runtime = WorkerRuntime.create(
            _worker_settings, worker_id=worker_identity("celery")
        )
        _worker_runtime.runner = CeleryRunner.name
        _worker_runtime.dispatch = _publisher(_worker_settings, _worker_runtime.db)
    return _worker_runtime


def _publisher(settings: Settings, db: Database) -> Callable[[Job], None]:
    """Publish jobs a running job starts, through a runner made on first use."""
    runner: list[CeleryRunner] = []

    def publish(job: Job) -> None:
        if not runner:
            runner.append(CeleryRunner(settings, db))
        runner[0].submit(job)

    return publish


def _execute_job_task(job_id: str) -> None:
    execute_job(job_id, _runtime(), time_limit_errors=(SoftTimeLimitExceeded,))


def _learning_tick_task() -> int:
    from mlworker.services.learning import run_learning_tick

    if _worker_settings is None:
        raise RuntimeError("the Celery worker was not started through `mlworker worker`")
    return len(run_learning_tick(_worker_settings))


@signals.worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    # A pool child must never reuse connections its parent opened.
    global _worker_runtime
    _worker_runtime = None


class CeleryRunner:
    """Publish job ids to the broker (``MLWORKER_EXECUTOR=celery``)."""

    name = "celery"

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._app = create_celery_app(settings)

    def start(self) -> None:
        """Nothing to start on the server side; workers run elsewhere."""

    def submit(self, job: Job) -> None:
        """Publish ``job``; raise :class:`BrokerUnavailable` when the broker cannot take it."""
        try:
            self._app.send_task(
                TASK_NAME,
                args=[job.id],
                queue=self._settings.queue_name,
                retry=True,
                retry_policy=_PUBLISH_RETRY,
            )
        except (OperationalError, KombuError, OSError) as exc:
            raise BrokerUnavailable(
                f"the job broker is unavailable ({type(exc).__name__}); nothing was queued"
            ) from exc

    def check(self) -> None:
        """Open (or reuse) a broker connection; raise :class:`BrokerUnavailable` if impossible."""
        try:
            with self._app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except (OperationalError, KombuError, OSError) as exc:
            raise BrokerUnavailable("the job broker is unavailable") from exc

    def close(self) -> None:
        """Release broker connections."""
        self._app.close()


def run_worker(settings: Settings, *, concurrency: int, loglevel: str, beat: bool = False) -> None:
    """Start a Celery worker consuming ML Worker jobs (``mlworker worker``).

    With ``beat`` the worker also runs Celery beat, which ticks the learning scheduler; run it
    on one worker (a second beat only repeats ticks, which submit nothing new).
    """
    global _worker_settings
    _worker_settings = settings
    app = create_celery_app(settings)
    if beat:
        # Beat keeps its schedule state in a file there.
        settings.data_root.mkdir(parents=True, exist_ok=True)

    @signals.setup_logging.connect
    def _keep_our_logging(**_: Any) -> None:
        """Keep the logging ``mlworker`` configured (connecting here stops Celery's own)."""

    load_job_types()
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--queues={settings.queue_name}",
            "--without-gossip",
            "--without-mingle",
            "--optimization=fair",
            *(["--beat"] if beat else []),
        ]
    )
