"""Jobs: the runner protocol, its implementations, the execution wrapper and the reaper.

The only package that imports Celery (lazily: only the ``celery`` runner loads it).
"""

from __future__ import annotations

import importlib

from mlworker.config import Settings
from mlworker.jobs.base import JobRunner
from mlworker.store.db import Database

#: Runner implementations by ``MLWORKER_EXECUTOR`` value, imported on first use.
RUNNERS: dict[str, str] = {
    "local": "mlworker.jobs.local:LocalPoolRunner",
    "celery": "mlworker.jobs.celery_runner:CeleryRunner",
    "inline": "mlworker.jobs.inline:InlineRunner",
}


def create_runner(settings: Settings, db: Database) -> JobRunner:
    """Instantiate the runner ``settings.executor`` names."""
    module_name, _, class_name = RUNNERS[settings.executor].partition(":")
    runner_class = getattr(importlib.import_module(module_name), class_name)
    runner: JobRunner = runner_class(settings, db)
    return runner


__all__ = ["RUNNERS", "JobRunner", "create_runner"]
