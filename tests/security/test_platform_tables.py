"""ML Worker's own schemas and tables are never platform data (issue 10, defects 5 and 9).

The default topology shares one PostgreSQL database between the metadata store (``mlw_*``
tables), Optuna's studies (schema ``mlw_optuna``) and the platform's tables. Whatever
``MLWORKER_PLATFORM_TABLES`` says, a dataset spec never reads the former two or the system
catalogues; patterns name schemas as ``schema.table``, and a bare pattern means the default
schema only. Long ``in`` filters travel as one bound array, not one parameter per value.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pyarrow as pa
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.data.budget import MemoryBudget
from mlworker.data.sources import TableSource
from mlworker.data.spec import TableDataset
from mlworker.errors import DatabaseUnavailable, UnknownTable, UnreadableDataset
from mlworker.main import create_app
from mlworker.store import platform
from mlworker.store.optuna_storage import open_storage, storage_schema
from tests.api.conftest import assert_problem
from tests.api.training_support import wait_for_job
from tests.support import free_port

pytestmark = pytest.mark.postgres

KEYS = {"key-a": "tenant-a"}
A = {"Authorization": "Bearer key-a"}
ROWS = 100
MANY = 70_000


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def public_table(engine: sa.Engine) -> Iterator[str]:
    """A platform table in ``public`` (the default schema), dropped afterwards."""
    name = f"ds_h3_{secrets.token_hex(4)}"
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE TABLE public."{name}" (id integer PRIMARY KEY)')
        connection.exec_driver_sql(f'INSERT INTO public."{name}" VALUES (1), (2)')
    yield name
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP TABLE IF EXISTS public."{name}"')


@pytest.fixture
def platform_schema(pg_schema: str, engine: sa.Engine) -> str:
    """Platform tables in a schema of their own: ``ds_numbers`` (100 rows) and ``other``."""
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        run(f'CREATE TABLE "{pg_schema}".ds_numbers (id integer PRIMARY KEY, label text)')
        connection.execute(
            sa.text(f'INSERT INTO "{pg_schema}".ds_numbers VALUES (:id, :label)'),
            [{"id": i, "label": f"n{i}"} for i in range(ROWS)],
        )
        run(f'CREATE TABLE "{pg_schema}".other (id integer PRIMARY KEY)')
    return pg_schema


@pytest.fixture
def shared(
    make_settings: Any, postgres_url: str, platform_schema: str, engine: sa.Engine
) -> Iterator[Settings]:
    """The default topology: metadata, Optuna studies and platform tables in one database."""
    settings: Settings = make_settings(
        database_url=postgres_url, database_schema=platform_schema, api_keys=KEYS
    )
    names = []
    # Optuna's default schema (mlw_optuna) and the one beside a configured schema.
    for storage_settings in (Settings(_env_file=None, database_url=postgres_url), settings):
        storage = open_storage(storage_settings)
        name = f"h3-{secrets.token_hex(4)}"
        optuna.create_study(study_name=name, storage=storage)
        names.append((storage, name))
    yield settings
    for storage, name in names:
        optuna.delete_study(study_name=name, storage=storage)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{storage_schema(settings)}" CASCADE')


def _source(url: str, *patterns: str, **kwargs: Any) -> TableSource:
    return TableSource(platform.PlatformTables(url, allowed=patterns, **kwargs), row_cap=10**6)


def _read(source: TableSource, **spec: Any) -> pa.Table:
    budget = MemoryBudget(limit_bytes=1 << 28, source="test")
    return source.read(TableDataset.model_validate(spec), tenant="t", budget=budget).table


def _own_and_system(settings: Settings) -> list[dict[str, Any]]:
    own_schema = settings.database_schema
    assert own_schema is not None
    return [
        {"table": "studies", "schema": "mlw_optuna"},
        {"table": "trials", "schema": "mlw_optuna"},
        {"table": "alembic_version", "schema": "mlw_optuna"},
        {"table": "studies", "schema": storage_schema(settings)},
        {"table": "mlw_jobs", "schema": own_schema},
        {"table": "mlw_models", "schema": own_schema},
        {"table": "mlw_alembic_version", "schema": own_schema},
        {"table": "pg_class", "schema": "pg_catalog"},
        {"table": "pg_authid", "schema": "pg_catalog"},
        {"table": "tables", "schema": "information_schema"},
        {"table": "pg_class"},
        {"table": "pg_stat_activity"},
    ]


@pytest.mark.parametrize(
    "patterns",
    [
        ("*",),
        ("*.*",),
        ("*", "*.*", "mlw_optuna.*", "pg_catalog.*", "information_schema.*", "mlwt_*_optuna.*"),
    ],
)
def test_own_and_system_tables_are_never_platform_tables(
    shared: Settings, patterns: tuple[str, ...]
) -> None:
    url = shared.database_url
    source = _source(url, *patterns, hidden_schema=shared.database_schema)
    for spec in _own_and_system(shared):
        with pytest.raises(UnknownTable):
            source.validate(TableDataset.model_validate(spec), tenant="t")


def test_the_api_refuses_them_with_the_default_pattern(shared: Settings) -> None:
    assert shared.platform_tables == ("*",) and shared.platform_url == shared.database_url
    with TestClient(create_app(shared)) as client:
        for spec in _own_and_system(shared):
            response = client.post("/datasets/profile", json={"dataset": spec}, headers=A)
            assert_problem(response, 400, "unknown_table")


def test_a_bare_pattern_reaches_the_default_schema_only(
    postgres_url: str, platform_schema: str, public_table: str
) -> None:
    source = _source(postgres_url, "*")
    assert _read(source, table=public_table).num_rows == 2
    assert _read(source, table=public_table, schema="public").num_rows == 2
    with pytest.raises(UnknownTable):
        source.validate(TableDataset(table="ds_numbers", schema_=platform_schema), tenant="t")


def test_patterns_name_schemas(postgres_url: str, platform_schema: str, public_table: str) -> None:
    public_only = _source(postgres_url, "public.ds_h3_*")
    assert _read(public_only, table=public_table).num_rows == 2
    with pytest.raises(UnknownTable):
        public_only.validate(TableDataset(table="ds_numbers", schema_=platform_schema), tenant="t")

    theirs = _source(postgres_url, f"{platform_schema}.ds_*")
    assert _read(theirs, table="ds_numbers", schema=platform_schema).num_rows == ROWS
    with pytest.raises(UnknownTable):
        theirs.validate(TableDataset(table="other", schema_=platform_schema), tenant="t")
    with pytest.raises(UnknownTable):
        theirs.validate(TableDataset(table=public_table), tenant="t")

    every = _source(postgres_url, "*.*")
    assert _read(every, table="other", schema=platform_schema).num_rows == 0


@pytest.mark.parametrize(
    ("op", "column", "values", "expected"),
    [
        ("in", "id", list(range(MANY)), ROWS),
        ("in", "id", list(range(MANY, 2 * MANY)), 0),
        ("not_in", "id", list(range(MANY)), 0),
        ("in", "label", [f"n{i}" for i in range(MANY)], ROWS),
        ("in", "id", [*range(MANY), "7"], ROWS),  # text parsed as the column's type
    ],
)
def test_long_in_filters_travel_as_one_parameter(
    postgres_url: str, platform_schema: str, op: str, column: str, values: list[Any], expected: int
) -> None:
    table = _read(
        _source(postgres_url, f"{platform_schema}.*"),
        table="ds_numbers",
        schema=platform_schema,
        filters=[{"column": column, "op": op, "value": values}],
    )
    assert table.num_rows == expected


def test_long_in_filter_through_the_api(
    make_settings: Any, postgres_url: str, platform_schema: str
) -> None:
    settings = make_settings(
        api_keys=KEYS,
        platform_database_url=postgres_url,
        platform_tables=(f"{platform_schema}.ds_*",),
    )
    dataset = {
        "table": "ds_numbers",
        "schema": platform_schema,
        "filters": [{"column": "id", "op": "in", "value": list(range(MANY))}],
    }
    with TestClient(create_app(settings)) as client:
        response = client.post("/datasets/profile", json={"dataset": dataset}, headers=A)
        assert response.status_code == 202, response.text
        status = wait_for_job(client, response.json()["jobId"], A)
        assert status["status"] == "completed", status
        assert status["result"]["rowCount"] == ROWS


def test_a_statement_the_driver_refuses_is_not_an_outage(engine: sa.Engine) -> None:
    """Connected, a refused statement is the request's problem (4xx), never a 503."""
    too_many = sa.select(sa.literal(1)).where(sa.literal(1).in_(list(range(MANY))))
    with pytest.raises(UnreadableDataset), platform._translate_errors(), engine.connect() as c:
        c.execute(too_many)  # psycopg: "number of parameters must be between 0 and 65535"


def test_an_unreachable_database_is_an_outage() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    with pytest.raises(DatabaseUnavailable):
        _source(url, "*").validate(TableDataset(table="ds_numbers"), tenant="t")


def test_long_in_filter_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE ds_numbers (id integer PRIMARY KEY, label text)")
        connection.execute(
            sa.text("INSERT INTO ds_numbers VALUES (:id, :label)"),
            [{"id": i, "label": f"n{i}"} for i in range(ROWS)],
        )
    engine.dispose()
    source = _source(url, "*")
    for op, values, expected in (
        ("in", list(range(MANY)), ROWS),
        ("not_in", list(range(MANY)), 0),
        ("in", ["3", 4, 5.0], 3),
    ):
        table = _read(
            source, table="ds_numbers", filters=[{"column": "id", "op": op, "value": values}]
        )
        assert table.num_rows == expected, (op, values[:3])
    with pytest.raises(UnknownTable):
        _source(url, "*", "*.*").validate(TableDataset(table="mlw_jobs"), tenant="t")
