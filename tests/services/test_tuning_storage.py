"""Optuna's storage: beside the metadata, never "database is locked", its own PostgreSQL schema."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from mlworker.config import Settings
from mlworker.services.container import Services
from mlworker.services.optimize_request import OptimizeParams
from mlworker.store import migrate
from mlworker.store.db import Database
from mlworker.store.optuna_storage import open_storage, storage_schema, storage_url
from mlworker.training.study_values import study_id_for
from tests.conftest import SettingsFactory
from tests.services.optuna_workers import TRIALS_PER_PROCESS, hammer
from tests.support import CeleryWorker, wait_for
from tests.training.data import classification

optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_sqlite_studies_live_in_a_file_beside_the_metadata(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    url = storage_url(settings)
    metadata = Path(sa.engine.make_url(settings.database_url).database or "")
    assert Path(sa.engine.make_url(url).database or "") == metadata.with_name("mlworker-optuna.db")
    assert storage_url(make_settings(optuna_storage="sqlite:///elsewhere.db")) == (
        "sqlite:///elsewhere.db"
    )
    postgres = make_settings(database_url="postgresql://u:p@db:5432/app")
    assert storage_url(postgres) == "postgresql+psycopg://u:p@db:5432/app"
    assert storage_schema(postgres) == "mlw_optuna"


def test_sqlite_storage_waits_for_the_write_lock(make_settings: SettingsFactory) -> None:
    storage = open_storage(make_settings())
    assert isinstance(storage, optuna.storages.RDBStorage)
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert connection.connection.dbapi_connection.isolation_level == "IMMEDIATE"  # type: ignore[union-attr]


def _contend(settings: Settings | None, url: str, processes: int = 4) -> list[str]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=hammer, args=(settings, url, worker, results))
        for worker in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return outcomes


def test_processes_running_one_study_never_hit_database_is_locked(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # The control: the same workload on a storage that does not wait for locks fails.
    control_url = f"sqlite:///{tmp_path}/control.db"
    optuna.create_study(study_name="contended", storage=control_url)
    control = _contend(None, control_url)
    assert any("locked" in outcome or "commit" in outcome for outcome in control), control

    settings = make_settings()
    storage = open_storage(settings)
    optuna.create_study(study_name="contended", storage=storage)
    assert _contend(settings, storage_url(settings)) == ["ok"] * 4
    trials = optuna.load_study(study_name="contended", storage=storage).get_trials()
    assert len(trials) == 4 * TRIALS_PER_PROCESS
    assert all(t.state is optuna.trial.TrialState.COMPLETE for t in trials)


@pytest.mark.postgres
def test_postgres_keeps_optuna_tables_in_their_own_schema(
    make_settings: SettingsFactory, postgres_url: str, pg_schema: str
) -> None:
    settings = make_settings(database_url=postgres_url, database_schema=pg_schema)
    optuna_schema = storage_schema(settings)
    assert optuna_schema == f"{pg_schema}_optuna"
    engine = sa.create_engine(postgres_url)
    try:
        migrate.upgrade(Database(postgres_url, schema=pg_schema))
        study = optuna.create_study(study_name="study-00000000abcd", storage=open_storage(settings))
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema IN (:ours, :optuna)"
                ),
                {"ours": pg_schema, "optuna": optuna_schema},
            ).all()
            ours = {name for schema, name in rows if schema == pg_schema}
            theirs = {name for schema, name in rows if schema == optuna_schema}
            assert {"studies", "trials", "trial_params", "alembic_version"} <= theirs
            assert {"mlw_jobs", "mlw_studies", "mlw_alembic_version"} <= ours
            assert not {"studies", "trials"} & ours
            assert not any(name.startswith("mlw_") for name in theirs)
            versions = {
                schema: connection.execute(
                    sa.text(f'SELECT version_num FROM "{schema}".{table}')
                ).scalar()
                for schema, table in (
                    (pg_schema, "mlw_alembic_version"),
                    (optuna_schema, "alembic_version"),
                )
            }
        assert versions[pg_schema] == migrate.head_revision()
        assert versions[optuna_schema] != versions[pg_schema]  # Optuna's own revision
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{optuna_schema}" CASCADE'))
        engine.dispose()


@pytest.mark.postgres
def test_extra_workers_run_trials_of_one_study_through_postgres(
    make_settings: SettingsFactory, postgres_url: str, pg_schema: str
) -> None:
    settings = make_settings(database_url=postgres_url, database_schema=pg_schema, workers=3)
    classification(300).to_csv(settings.data_root / "table.csv", index=False)
    services = Services(settings)
    services.start()
    try:
        params = OptimizeParams(
            dataset_path="table.csv",
            target_column="y",
            algorithm="LogisticRegression",
            n_trials=12,
            n_workers=3,
            pruner="none",
        )
        job = services.studies.submit(tenant="default", params=params).job
        done = wait_for(
            lambda: (j := services.jobs.get(job.id, tenant="default")).status.finished and j,
            timeout=120,
        )
        assert done.status.value == "completed", done.error
        result = done.result
        assert result["n_trials"] == 12 and result["n_workers"] == 3
        helped = [w for w in result["workers"] if w["status"] == "completed" and w["trials"] > 0]
        assert helped, result["workers"]
        trials = optuna.load_study(study_name=study_id_for(job.id), storage=open_storage(settings))
        assert all(t.state.is_finished() for t in trials.get_trials())
    finally:
        services.close()
        engine = sa.create_engine(postgres_url)
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{pg_schema}_optuna" CASCADE'))
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.redis
def test_celery_workers_on_two_machines_share_one_study(
    make_settings: SettingsFactory,
    postgres_url: str,
    pg_schema: str,
    redis_url: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        executor="celery",
        database_url=postgres_url,
        database_schema=pg_schema,
        broker_url=redis_url,
        queue_name=queue_name,
    )
    classification(300).to_csv(settings.data_root / "table.csv", index=False)
    services = Services(settings)
    services.start()
    machines = [CeleryWorker(settings, tmp_path / f"worker{i}.log", concurrency=1) for i in (1, 2)]
    try:
        for machine in machines:
            machine.wait_ready()
        params = OptimizeParams(
            dataset_path="table.csv",
            target_column="y",
            algorithm="LogisticRegression",
            n_trials=10,
            n_workers=2,
            pruner="none",
        )
        job = services.studies.submit(tenant="default", params=params).job
        done = wait_for(
            lambda: (j := services.jobs.get(job.id, tenant="default")).status.finished and j,
            timeout=180,
        )
        assert done.status.value == "completed", done.error
        helper_id = done.result["workers"][0]["job_id"]
        helper = services.jobs.get(helper_id, tenant="default")
        assert helper.status.value == "completed" and helper.result["trials"] >= 1
        assert helper.worker_id != done.worker_id  # another process ran it
        assert done.result["n_trials"] == 10
    finally:
        for machine in machines:
            machine.stop()
        services.close()
        engine = sa.create_engine(postgres_url)
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{pg_schema}_optuna" CASCADE'))
        engine.dispose()
