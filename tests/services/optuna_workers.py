"""Process bodies for the storage tests: light imports, so spawned processes start quickly."""

from __future__ import annotations

from typing import Any

import optuna

from mlworker.config import Settings
from mlworker.store.optuna_storage import open_storage

TRIALS_PER_PROCESS = 25


def hammer(settings: Settings | None, url: str, worker: int, results: Any) -> None:
    """Ask, report three steps, tell: as many writes per trial as a search makes.

    ``settings=None`` is the control: a storage on ``url`` that does not wait for locks.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        if settings is not None:
            storage = open_storage(settings)
        else:
            kwargs = {"connect_args": {"timeout": 0.001}}
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        sampler = optuna.samplers.RandomSampler(seed=worker)
        study = optuna.load_study(study_name="contended", storage=storage, sampler=sampler)
        for _ in range(TRIALS_PER_PROCESS):
            trial = study.ask()
            x = trial.suggest_float("x", 0, 1)
            for step in range(3):
                trial.report(x, step)
            study.tell(trial, x)
        results.put("ok")
    except Exception as exc:
        results.put(repr(exc))
