"""The composition root's object graph: one of each service, built from one Settings."""

from __future__ import annotations

import structlog

from mlworker.config import Settings
from mlworker.errors import MLWorkerError
from mlworker.jobs import JobRunner, create_runner
from mlworker.jobs.reaper import Reaper
from mlworker.services.algorithm_models import AlgorithmModelService
from mlworker.services.analysis import AnalysisService
from mlworker.services.datasets import DatasetService
from mlworker.services.decisioning import DecisioningService, ShadowLog
from mlworker.services.jobs import JobService
from mlworker.services.learning import LearningScheduler, tick_seconds
from mlworker.services.models import ModelService
from mlworker.services.outcomes import OutcomeService
from mlworker.services.studies import StudyService
from mlworker.store import migrate
from mlworker.store.artifacts import ArtifactStore
from mlworker.store.db import Database
from mlworker.store.jobs import JobRepository
from mlworker.store.outcomes import (
    OutcomeRepository,
    ScheduledTrainingRepository,
    ShadowScoreRepository,
)
from mlworker.store.segments import SegmentAssignmentRepository

log = structlog.get_logger(__name__)


class Services:
    """Everything a server process holds; built in the app's lifespan, closed on shutdown.

    Parameters
    ----------
    settings
        The one settings object.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, schema=settings.database_schema)
        self.artifacts = ArtifactStore(settings.artifacts)
        self.job_repository = JobRepository(self.db)
        self.runner: JobRunner = create_runner(settings, self.db)
        self.datasets = DatasetService(settings, self.db, self.artifacts)
        self.jobs = JobService(
            settings=settings,
            repository=self.job_repository,
            runner=self.runner,
            datasets=self.datasets,
        )
        self.reaper = Reaper(self.job_repository, self.runner, settings)
        self.models = ModelService(settings, self.db)
        self.studies = StudyService(settings, self.db, self.jobs)
        self.analysis = AnalysisService(
            jobs=self.jobs,
            datasets=self.datasets,
            assignments=SegmentAssignmentRepository(self.db),
        )
        # One egress policy, from the operator's settings, for every call made for a tenant.
        self.egress = settings.egress_policy
        self.algorithm_models = AlgorithmModelService(
            settings, self.db, self.jobs, egress=self.egress
        )
        outcome_log = OutcomeRepository(self.db)
        self.decisioning = DecisioningService(
            models=self.algorithm_models,
            outcomes=outcome_log,
            shadow_log=ShadowLog(ShadowScoreRepository(self.db)),
            registry_ttl=settings.scoring_cache_seconds,
        )
        self.outcomes = OutcomeService(models=self.algorithm_models, outcomes=outcome_log)
        self.learning = LearningScheduler(
            models=self.algorithm_models,
            outcomes=outcome_log,
            schedules=ScheduledTrainingRepository(self.db),
            tick_seconds=tick_seconds(settings),
        )

    def start(self) -> None:
        """Create the data root, migrate the store, start the runner and the reaper."""
        self.settings.data_root.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(self.db)
        self.runner.start()
        self.reaper.start()
        self.decisioning.shadow_log.start()
        if self.settings.executor != "celery":
            # Scaled out, Celery beat ticks the scheduler (`mlworker worker --beat`).
            self.learning.start()
        log.info(
            "services started",
            executor=self.settings.executor,
            database=self.db.redacted_url,
            auth=self.settings.auth_enabled,
        )

    def readiness(self) -> dict[str, str]:
        """Check the database and the runner (broker); ``"ok"`` or the reason per check."""
        checks: dict[str, str] = {}
        for name, check in (("database", self.db.ping), ("runner", self.runner.check)):
            try:
                check()
                checks[name] = "ok"
            except MLWorkerError as exc:
                checks[name] = exc.message
        return checks

    def close(self) -> None:
        """Stop the reaper and the runner, close connections."""
        self.learning.close()
        self.decisioning.shadow_log.close()
        self.reaper.close()
        self.runner.close()
        self.db.dispose()
