"""Auto-learning settings of a model, and the scheduler that retrains scheduled learners.

A model's ``learningConfig`` (seed 003, "Auto-Learning Modes") says how outcomes teach it:
``per_outcome`` applies each recorded outcome at once, ``incremental`` buffers them and applies
a batch every ``batchThreshold`` outcomes, ``scheduled`` only logs them and retrains the model
from the outcome log on its ``schedule``.

:class:`LearningScheduler` runs the schedules. Each :meth:`~LearningScheduler.tick` finds the
scheduled learners whose latest schedule slot is later than their last run, claims that slot
(a conditional write: of many replicas ticking at once, one wins) and submits the training job
with an idempotency key made of the model id and the slot, so a slot never trains twice. In the
embedded topology a daemon thread of the server ticks; scaled out, Celery beat runs the tick as
a task (``mlworker worker --beat``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import structlog

from mlworker.decisioning.schedule import Schedule, parse_schedule
from mlworker.store.outcomes import (
    OutcomeRepository,
    ScheduledModel,
    ScheduledTrainingRepository,
)
from mlworker.store.records import utcnow

if TYPE_CHECKING:
    from mlworker.config import Settings
    from mlworker.services.algorithm_models import AlgorithmModelService

log = structlog.get_logger(__name__)

LearnMode = Literal["per_outcome", "incremental", "scheduled"]
#: The seed's buffer size for incremental learners.
DEFAULT_BATCH_THRESHOLD = 50
#: Seconds between two scheduler ticks unless the settings say otherwise.
DEFAULT_TICK_SECONDS = 60.0
#: Who the audit trail names for trainings the scheduler starts.
SCHEDULER_ACTOR = "scheduler"


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """A model's ``learningConfig``, read leniently (the registry validated it on write)."""

    auto_learn: bool = False
    learn_mode: LearnMode | None = None
    batch_threshold: int = DEFAULT_BATCH_THRESHOLD
    schedule: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> LearningConfig:
        """Read ``spec["learningConfig"]`` (camelCase; snake_case accepted).

        Examples
        --------
        >>> LearningConfig.from_spec({"learningConfig": {"autoLearn": True,
        ...                                               "learnMode": "incremental"}})
        LearningConfig(auto_learn=True, learn_mode='incremental', batch_threshold=50, schedule=None)
        >>> LearningConfig.from_spec({}).buffers
        False
        """
        raw = (spec or {}).get("learningConfig") or {}

        def pick(camel: str, snake: str) -> Any:
            return raw.get(camel, raw.get(snake))

        mode = pick("learnMode", "learn_mode")
        threshold = pick("batchThreshold", "batch_threshold")
        schedule = raw.get("schedule")
        return cls(
            auto_learn=bool(pick("autoLearn", "auto_learn")),
            learn_mode=mode if mode in ("per_outcome", "incremental", "scheduled") else None,
            batch_threshold=int(threshold) if threshold else DEFAULT_BATCH_THRESHOLD,
            schedule=str(schedule) if schedule else None,
        )

    @property
    def buffers(self) -> bool:
        """Whether recorded outcomes wait in the buffer for :meth:`apply_outcomes`."""
        return self.auto_learn and self.learn_mode in ("per_outcome", "incremental")

    @property
    def apply_threshold(self) -> int:
        """Pending outcomes that trigger an application: 1 per outcome, else the batch size."""
        return 1 if self.learn_mode == "per_outcome" else max(self.batch_threshold, 1)

    @property
    def scheduled(self) -> bool:
        """Whether the scheduler retrains this model."""
        return self.auto_learn and self.learn_mode == "scheduled" and self.schedule is not None


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """A training the scheduler submitted: the model, the slot, the job."""

    model_id: str
    tenant: str
    model_key: str
    slot: datetime
    job_id: str


def training_idempotency_key(model_id: str, slot: datetime) -> str:
    """Return the job idempotency key of a model's scheduled training for ``slot``.

    Examples
    --------
    >>> from datetime import UTC
    >>> training_idempotency_key("model-0123456789ab", datetime(2026, 11, 22, 3, tzinfo=UTC))
    'scheduled-training:model-0123456789ab:2026-11-22T03:00:00Z'
    """
    return f"scheduled-training:{model_id}:{slot.strftime('%Y-%m-%dT%H:%M:%SZ')}"


class LearningScheduler:
    """Submit the retraining of every scheduled learner whose schedule slot has come.

    Parameters
    ----------
    models
        The algorithm model service (submits trainings).
    outcomes
        The outcome log: a model with no outcome since its last run is not retrained.
    schedules
        Scheduled learners and their claimed slots.
    tick_seconds
        Interval of the background thread (:meth:`start`).
    """

    def __init__(
        self,
        *,
        models: AlgorithmModelService,
        outcomes: OutcomeRepository,
        schedules: ScheduledTrainingRepository,
        tick_seconds: float = DEFAULT_TICK_SECONDS,
    ) -> None:
        self._models = models
        self._outcomes = outcomes
        self._schedules = schedules
        self._tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._parsed: dict[str, Schedule] = {}

    def tick(self, now: datetime | None = None) -> list[ScheduledRun]:
        """Submit every due scheduled training once; return what was submitted.

        A failure for one model (bad schedule, broker down) is logged and does not stop the
        others; a slot whose submission failed is released and tried again next tick.
        """
        moment = now or utcnow()
        runs: list[ScheduledRun] = []
        for candidate in self._schedules.candidates():
            config = LearningConfig.from_spec(candidate.spec)
            if not config.scheduled:
                continue
            try:
                run = self._run_if_due(candidate, config, moment)
            except Exception as exc:  # one model's failure must not stop the others
                log.warning(
                    "scheduled training not submitted",
                    model_id=candidate.model_id,
                    tenant=candidate.tenant,
                    error=str(exc),
                )
                continue
            if run is not None:
                runs.append(run)
        return runs

    def _schedule(self, text: str) -> Schedule:
        parsed = self._parsed.get(text)
        if parsed is None:
            parsed = self._parsed[text] = parse_schedule(text)
        return parsed

    def _run_if_due(
        self, candidate: ScheduledModel, config: LearningConfig, now: datetime
    ) -> ScheduledRun | None:
        assert config.schedule is not None
        # A training slower than the schedule would otherwise overlap the next on the same data.
        if candidate.last_job_active:
            return None
        last_run = max(
            moment
            for moment in (candidate.created_at, candidate.last_trained_at, candidate.last_slot)
            if moment is not None
        )
        slot = self._schedule(config.schedule).due_run(last_run=last_run, now=now)
        if slot is None:
            return None
        # Retraining on the very data of the last training changes nothing: wait for outcomes.
        if not self._outcomes.has_outcomes(
            tenant=candidate.tenant,
            model_key=candidate.key,
            recorded_after=candidate.last_trained_at,
        ):
            return None
        claim = self._schedules.claim_slot(
            model_id=candidate.model_id, tenant=candidate.tenant, slot=slot
        )
        if claim is None:
            return None
        try:
            submission = self._models.submit_training(
                candidate.model_id,
                tenant=candidate.tenant,
                actor=SCHEDULER_ACTOR,
                dataset=None,
                idempotency_key=training_idempotency_key(candidate.model_id, slot),
            )
        except Exception:
            self._schedules.release_slot(claim)
            raise
        job_id = submission.job.id
        self._schedules.set_job(claim, job_id=job_id)
        log.info(
            "scheduled training submitted",
            model_id=candidate.model_id,
            tenant=candidate.tenant,
            slot=slot.isoformat(),
            job_id=job_id,
        )
        return ScheduledRun(
            model_id=candidate.model_id,
            tenant=candidate.tenant,
            model_key=candidate.key,
            slot=slot,
            job_id=job_id,
        )

    def start(self) -> None:
        """Tick every ``tick_seconds`` on a daemon thread until :meth:`close`."""
        self._thread = threading.Thread(target=self._loop, name="learning-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._tick_seconds):
            try:
                self.tick()
            except Exception as exc:  # a database outage must not kill the scheduler
                log.warning("learning scheduler tick failed", error=str(exc))

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def tick_seconds(settings: Settings) -> float:
    """Return how often the scheduler looks for due retraining (``learning_tick_seconds``)."""
    return settings.learning_tick_seconds


def run_learning_tick(settings: Settings) -> list[ScheduledRun]:
    """Run one tick outside a server (Celery beat's task): build what it needs, tick, close."""
    from mlworker.services.container import Services

    services = Services(settings)
    try:
        return services.learning.tick()
    finally:
        services.close()
