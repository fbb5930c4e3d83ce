"""Reading the platform's PostgreSQL tables: whitelisted names, quoted identifiers, bound values."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from mlworker.data.budget import MemoryBudget
from mlworker.data.loader import DatasetLoader
from mlworker.data.sources import TableSource
from mlworker.data.spec import TableDataset
from mlworker.data.values import ColumnKind
from mlworker.errors import DatabaseUnavailable, DatasetTooLarge, UnknownColumn, UnknownTable
from mlworker.store import migrate, platform
from mlworker.store.db import Database
from tests.support import free_port

pytestmark = pytest.mark.postgres

COLUMNS = ("id", "name", "age", "plan", "score", "active")
CUSTOMERS = [
    (5, "Eve", 51, "gold", 12.5, True),
    (3, "Carol", 34, "silver", 7.25, False),
    (1, "Alice", 23, "gold", 3.0, True),
    (4, "Dan", None, None, 9.0, None),
    (2, "Bob", 45, "bronze", 1.5, True),
]


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def schema(pg_schema: str, engine: sa.Engine) -> str:
    """A fresh schema holding the platform tables these tests read."""
    s = pg_schema
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        run(
            f'CREATE TABLE "{s}".ds_customers (id integer PRIMARY KEY, name text, age integer, '
            "plan text, score numeric(8, 2), active boolean)"
        )
        connection.execute(
            sa.text(
                f'INSERT INTO "{s}".ds_customers VALUES (:id, :name, :age, :plan, :score, :active)'
            ),
            [dict(zip(COLUMNS, row, strict=True)) for row in CUSTOMERS],
        )
        run(
            f'CREATE TABLE "{s}"."Customer Events" ("eventId" integer PRIMARY KEY, '
            '"customerId" text NOT NULL, "Event Kind" text, "occurredAt" timestamptz)'
        )
        connection.execute(
            sa.text(f'INSERT INTO "{s}"."Customer Events" VALUES (:e, :c, :k, :t)'),
            [
                {"e": 1, "c": "c-1", "k": "login", "t": datetime(2024, 1, 1, 9, tzinfo=UTC)},
                {"e": 2, "c": "c-2", "k": "purchase", "t": datetime(2024, 2, 1, 9, tzinfo=UTC)},
                {"e": 3, "c": "c-1", "k": "purchase", "t": datetime(2024, 3, 1, 9, tzinfo=UTC)},
            ],
        )
        run(
            f'CREATE TABLE "{s}".ds_types (id integer PRIMARY KEY, amount numeric(12, 4), '
            "at timestamptz, local_at timestamp, day date, flag boolean, doc jsonb, "
            "ref uuid, big bigint, ratio double precision)"
        )
        connection.execute(
            sa.text(
                f'INSERT INTO "{s}".ds_types VALUES '
                "(:id, :amount, :at, :local_at, :day, :flag, CAST(:doc AS jsonb), :ref, :big, "
                ":ratio)"
            ),
            [
                {
                    "id": 1,
                    "amount": "1234.5678",
                    "at": "2024-06-01T12:00:00+02:00",
                    "local_at": datetime(2024, 6, 1, 12),
                    "day": date(2024, 6, 1),
                    "flag": True,
                    "doc": json.dumps({"tier": "gold", "tags": [1, 2]}),
                    "ref": uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
                    "big": 2**40,
                    "ratio": 0.25,
                },
                {
                    "id": 2,
                    "amount": None,
                    "at": None,
                    "local_at": None,
                    "day": None,
                    "flag": None,
                    "doc": None,
                    "ref": None,
                    "big": None,
                    "ratio": None,
                },
            ],
        )
        run(f'CREATE TABLE "{s}".ds_nokey (a integer, b text)')
        connection.execute(
            sa.text(f'INSERT INTO "{s}".ds_nokey VALUES (:a, :b)'),
            [{"a": 2, "b": "y"}, {"a": 1, "b": "z"}, {"a": 1, "b": "x"}, {"a": 3, "b": "w"}],
        )
        run(f'CREATE TABLE "{s}".other_table (id integer PRIMARY KEY)')
        run(f'CREATE TABLE "{s}".mlw_jobs (id text PRIMARY KEY, tenant text)')
        run(f"INSERT INTO \"{s}\".mlw_jobs VALUES ('job-1', 'tenant-b')")
        run(f'CREATE TABLE "{s}".mlw_alembic_version (version_num text)')
        run(
            f'CREATE VIEW "{s}".ds_gold AS SELECT id, name FROM "{s}".ds_customers '
            "WHERE plan = 'gold'"
        )
    return s


def _source(url: str, *, row_cap: int = 1000, **kwargs: Any) -> TableSource:
    # The tables live in the test's own schema: a bare pattern reaches the default schema only.
    kwargs.setdefault("allowed", ("*", "mlwt_*.*"))
    return TableSource(platform.PlatformTables(url, **kwargs), row_cap=row_cap)


def _read(source: TableSource, **spec: Any) -> pa.Table:
    budget = MemoryBudget(limit_bytes=1 << 28, source="test")
    return source.read(TableDataset.model_validate(spec), tenant="t", budget=budget).table


def _table_exists(engine: sa.Engine, schema: str, table: str) -> bool:
    return sa.inspect(engine).has_table(table, schema=schema)


# --- names ---------------------------------------------------------------------------------------


def test_reads_a_table(postgres_url: str, schema: str) -> None:
    table = _read(_source(postgres_url), table="ds_customers", schema=schema)
    assert table.column_names == ["id", "name", "age", "plan", "score", "active"]
    assert table.column("id").to_pylist() == [1, 2, 3, 4, 5]  # ordered by primary key


def test_reads_a_view(postgres_url: str, schema: str) -> None:
    table = _read(_source(postgres_url), table="ds_gold", schema=schema)
    assert sorted(table.column("name").to_pylist()) == ["Alice", "Eve"]


def test_unknown_table(postgres_url: str, schema: str) -> None:
    source = _source(postgres_url)
    with pytest.raises(UnknownTable) as caught:
        source.validate(TableDataset(table="ds_nope", schema_=schema), tenant="t")
    assert caught.value.field == "dataset.table"
    assert caught.value.code == "unknown_table"
    assert "ds_nope" in caught.value.message


def test_unknown_schema(postgres_url: str, schema: str) -> None:
    with pytest.raises(UnknownTable) as caught:
        _source(postgres_url).validate(
            TableDataset(table="ds_customers", schema_=f"{schema}_nope"), tenant="t"
        )
    assert caught.value.field == "dataset.schema"


def test_table_names_are_case_sensitive(postgres_url: str, schema: str) -> None:
    with pytest.raises(UnknownTable):
        _source(postgres_url).validate(
            TableDataset(table="DS_CUSTOMERS", schema_=schema), tenant="t"
        )


def test_unknown_column_in_columns(postgres_url: str, schema: str) -> None:
    spec = TableDataset(table="ds_customers", schema_=schema, columns=("id", "salary"))
    with pytest.raises(UnknownColumn) as caught:
        _source(postgres_url).validate(spec, tenant="t")
    assert caught.value.field == "dataset.columns"
    assert caught.value.extra["column"] == "salary"


def test_unknown_column_in_a_filter(postgres_url: str, schema: str) -> None:
    spec = TableDataset.model_validate(
        {
            "table": "ds_customers",
            "schema": schema,
            "filters": [
                {"column": "age", "op": ">", "value": 1},
                {"column": "salary", "op": ">", "value": 1},
            ],
        }
    )
    with pytest.raises(UnknownColumn) as caught:
        _source(postgres_url).validate(spec, tenant="t")
    assert caught.value.field == "dataset.filters.1.column"
    assert caught.value.extra["column"] == "salary"


def test_injection_as_table_name_is_harmless(
    postgres_url: str, schema: str, engine: sa.Engine
) -> None:
    source = _source(postgres_url)
    for name in (
        "ds_customers; DROP TABLE ds_customers",
        f'ds_customers"; DROP TABLE "{schema}".ds_customers; --',
        "ds_customers WHERE 1=1",
    ):
        with pytest.raises(UnknownTable):
            source.validate(TableDataset(table=name, schema_=schema), tenant="t")
    assert _table_exists(engine, schema, "ds_customers")


def test_injection_as_column_name_is_harmless(
    postgres_url: str, schema: str, engine: sa.Engine
) -> None:
    spec = TableDataset.model_validate(
        {
            "table": "ds_customers",
            "schema": schema,
            "filters": [{"column": 'id"; DROP TABLE ds_customers; --', "op": "=", "value": 1}],
        }
    )
    with pytest.raises(UnknownColumn):
        _source(postgres_url).validate(spec, tenant="t")
    assert _table_exists(engine, schema, "ds_customers")


def test_injection_as_filter_value_is_data(
    postgres_url: str, schema: str, engine: sa.Engine
) -> None:
    payload = f"x' OR '1'='1'; DROP TABLE \"{schema}\".ds_customers; --"
    for condition in (
        {"column": "name", "op": "eq", "value": payload},
        {"column": "name", "op": "in", "value": [payload, "Alice"]},
        {"column": "name", "op": "like", "value": payload},
    ):
        table = _read(
            _source(postgres_url), table="ds_customers", schema=schema, filters=[condition]
        )
        assert table.column("name").to_pylist() in ([], ["Alice"])
    assert _table_exists(engine, schema, "ds_customers")
    assert _read(_source(postgres_url), table="ds_customers", schema=schema).num_rows == 5


def test_quoted_mixed_case_and_spaced_identifiers(postgres_url: str, schema: str) -> None:
    table = _read(
        _source(postgres_url),
        table="Customer Events",
        schema=schema,
        columns=["customerId", "Event Kind", "occurredAt"],
        filters=[{"column": "customerId", "op": "=", "value": "c-1"}],
    )
    assert table.column_names == ["customerId", "Event Kind", "occurredAt"]
    assert table.column("Event Kind").to_pylist() == ["login", "purchase"]
    assert table.schema.field("occurredAt").type == pa.timestamp("us", tz="UTC")


# --- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "ids"),
    [
        ({"column": "plan", "op": "eq", "value": "gold"}, [1, 5]),
        ({"column": "plan", "op": "!=", "value": "gold"}, [2, 3]),  # SQL: NULL is not "not gold"
        ({"column": "age", "op": "<", "value": 34}, [1]),
        ({"column": "age", "op": "<=", "value": 34}, [1, 3]),
        ({"column": "age", "op": ">", "value": 45}, [5]),
        ({"column": "age", "op": ">=", "value": 45}, [2, 5]),
        ({"column": "plan", "op": "in", "value": ["gold", "bronze"]}, [1, 2, 5]),
        ({"column": "plan", "op": "not_in", "value": ["gold", "bronze"]}, [3]),
        ({"column": "age", "op": "is_null"}, [4]),
        ({"column": "age", "op": "not_null"}, [1, 2, 3, 5]),
        ({"column": "age", "op": "between", "value": [30, 50]}, [2, 3]),
        ({"column": "name", "op": "like", "value": "%a%"}, [3, 4]),
        ({"column": "active", "op": "eq", "value": True}, [1, 2, 5]),
        ({"column": "score", "op": ">", "value": 7.25}, [4, 5]),
        ({"column": "score", "op": ">=", "value": "7.25"}, [3, 4, 5]),  # text cast to numeric
        ({"column": "age", "op": "eq", "value": "23"}, [1]),
    ],
)
def test_filter_operators(
    postgres_url: str, schema: str, condition: dict[str, Any], ids: list[int]
) -> None:
    table = _read(_source(postgres_url), table="ds_customers", schema=schema, filters=[condition])
    assert table.column("id").to_pylist() == ids


def test_filters_combine_with_and(postgres_url: str, schema: str) -> None:
    table = _read(
        _source(postgres_url),
        table="ds_customers",
        schema=schema,
        filters=[
            {"column": "plan", "op": "=", "value": "gold"},
            {"column": "age", "op": ">", "value": 30},
        ],
    )
    assert table.column("id").to_pylist() == [5]


def test_timestamp_filter_with_iso_text(postgres_url: str, schema: str) -> None:
    table = _read(
        _source(postgres_url),
        table="Customer Events",
        schema=schema,
        filters=[{"column": "occurredAt", "op": ">=", "value": "2024-02-01T00:00:00Z"}],
    )
    assert table.column("eventId").to_pylist() == [2, 3]
    between = _read(
        _source(postgres_url),
        table="Customer Events",
        schema=schema,
        filters=[{"column": "occurredAt", "op": "between", "value": ["2024-01-15", "2024-02-15"]}],
    )
    assert between.column("eventId").to_pylist() == [2]


def test_filter_value_that_does_not_fit_its_column_is_invalid_input(
    postgres_url: str, schema: str
) -> None:
    from mlworker.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        _read(
            _source(postgres_url),
            table="ds_customers",
            schema=schema,
            filters=[{"column": "age", "op": "=", "value": "not a number"}],
        )
    assert caught.value.field == "dataset.filters"


def test_empty_result_keeps_column_types(postgres_url: str, schema: str) -> None:
    table = _read(
        _source(postgres_url),
        table="ds_customers",
        schema=schema,
        filters=[{"column": "plan", "op": "eq", "value": "platinum"}],
    )
    assert table.num_rows == 0
    assert table.schema.field("age").type == pa.int64()
    assert table.schema.field("score").type == pa.float64()


# --- what is never readable ----------------------------------------------------------------------


@pytest.mark.parametrize("table", ["mlw_jobs", "mlw_alembic_version"])
def test_our_own_tables_are_unknown(
    postgres_url: str, schema: str, engine: sa.Engine, table: str
) -> None:
    assert _table_exists(engine, schema, table)  # it is there ...
    with pytest.raises(UnknownTable) as caught:  # ... and still unknown
        _source(postgres_url).validate(TableDataset(table=table, schema_=schema), tenant="t")
    assert caught.value.field == "dataset.table"


def test_metadata_store_tables_are_unknown_when_databases_are_shared(
    postgres_url: str, pg_schema: str
) -> None:
    db = Database(postgres_url, schema=pg_schema)
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()
    source = _source(postgres_url)
    for table in ("mlw_jobs", "mlw_datasets", "mlw_models", "mlw_alembic_version"):
        with pytest.raises(UnknownTable):
            source.validate(TableDataset(table=table, schema_=pg_schema), tenant="t")


@pytest.mark.parametrize(
    ("table", "schema_name"),
    [
        ("pg_class", "pg_catalog"),
        ("pg_authid", "pg_catalog"),
        ("pg_user", "pg_catalog"),
        ("tables", "information_schema"),
        ("columns", "information_schema"),
        ("pg_class", None),
    ],
)
def test_system_catalogues_are_unknown(
    postgres_url: str, engine: sa.Engine, table: str, schema_name: str | None
) -> None:
    with pytest.raises(UnknownTable):
        _source(postgres_url).validate(TableDataset(table=table, schema_=schema_name), tenant="t")


def test_hidden_schema_is_unreadable(postgres_url: str, schema: str) -> None:
    source = _source(postgres_url, hidden_schema=schema)
    with pytest.raises(UnknownTable):
        source.validate(TableDataset(table="ds_customers", schema_=schema), tenant="t")


@pytest.fixture
def search_path_url(postgres_url: str, schema: str) -> Iterator[str]:
    """A URL whose connections default to the test schema (unqualified names resolve there)."""
    url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    yield url
    engine = platform._ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def test_unqualified_names_use_the_default_schema(search_path_url: str) -> None:
    table = _read(_source(search_path_url), table="ds_customers")
    assert table.num_rows == 5
    with pytest.raises(UnknownTable):
        _source(search_path_url).validate(TableDataset(table="mlw_jobs"), tenant="t")


def test_hidden_schema_as_default_schema_is_unreadable(search_path_url: str, schema: str) -> None:
    source = _source(search_path_url, hidden_schema=schema)
    with pytest.raises(UnknownTable):
        source.validate(TableDataset(table="ds_customers"), tenant="t")


def test_allow_list_patterns(postgres_url: str, schema: str) -> None:
    source = _source(postgres_url, allowed=(f"{schema}.ds_*",))
    source.validate(TableDataset(table="ds_customers", schema_=schema), tenant="t")
    with pytest.raises(UnknownTable):
        source.validate(TableDataset(table="other_table", schema_=schema), tenant="t")
    with pytest.raises(UnknownTable):
        source.validate(TableDataset(table="Customer Events", schema_=schema), tenant="t")
    both = _source(postgres_url, allowed=(f"{schema}.ds_*", f"{schema}.Customer *"))
    both.validate(TableDataset(table="Customer Events", schema_=schema), tenant="t")
    with pytest.raises(UnknownTable):  # an allow-list never opens our own tables
        _source(postgres_url, allowed=("*.*",)).validate(
            TableDataset(table="mlw_jobs", schema_=schema), tenant="t"
        )


# --- size and order ------------------------------------------------------------------------------


def test_row_cap(postgres_url: str, schema: str) -> None:
    with pytest.raises(DatasetTooLarge) as caught:
        _read(_source(postgres_url, row_cap=4), table="ds_customers", schema=schema)
    assert caught.value.code == "dataset_too_large"
    assert "MLWORKER_TABLE_ROW_CAP" in caught.value.message
    # Filters and limits bring it under the cap.
    assert _read(_source(postgres_url, row_cap=4), table="ds_customers", schema=schema, limit=4)
    filtered = _read(
        _source(postgres_url, row_cap=4),
        table="ds_customers",
        schema=schema,
        filters=[{"column": "plan", "op": "eq", "value": "gold"}],
    )
    assert filtered.num_rows == 2


def test_limit_takes_the_first_rows_by_primary_key(postgres_url: str, schema: str) -> None:
    for _ in range(3):
        table = _read(_source(postgres_url), table="ds_customers", schema=schema, limit=3)
        assert table.column("id").to_pylist() == [1, 2, 3]  # inserted as 5, 3, 1, 4, 2


def test_limit_without_primary_key_orders_by_every_column(postgres_url: str, schema: str) -> None:
    table = _read(_source(postgres_url), table="ds_nokey", schema=schema, limit=3)
    pairs = zip(table.column("a").to_pylist(), table.column("b").to_pylist(), strict=True)
    assert list(pairs) == [
        (1, "x"),
        (1, "z"),
        (2, "y"),
    ]


def test_small_batches_are_concatenated(postgres_url: str, schema: str) -> None:
    tables = platform.PlatformTables(postgres_url, allowed=(f"{schema}.*",))
    source = TableSource(tables, row_cap=100, batch_rows=2)
    table = _read(source, table="ds_customers", schema=schema)
    assert table.column("id").to_pylist() == [1, 2, 3, 4, 5]


def test_memory_budget_applies_to_tables(postgres_url: str, schema: str) -> None:
    spec = TableDataset(table="ds_customers", schema_=schema)
    with pytest.raises(DatasetTooLarge):
        _source(postgres_url).read(spec, tenant="t", budget=MemoryBudget(limit_bytes=16))


# --- types ---------------------------------------------------------------------------------------


def test_column_types_convert_sensibly(postgres_url: str, schema: str) -> None:
    table = _read(_source(postgres_url), table="ds_types", schema=schema)
    types = {field.name: field.type for field in table.schema}
    assert types == {
        "id": pa.int64(),
        "amount": pa.float64(),
        "at": pa.timestamp("us", tz="UTC"),
        "local_at": pa.timestamp("us"),
        "day": pa.date32(),
        "flag": pa.bool_(),
        "doc": pa.string(),
        "ref": pa.string(),
        "big": pa.int64(),
        "ratio": pa.float64(),
    }
    first = table.to_pylist()[0]
    assert first["amount"] == pytest.approx(1234.5678)
    assert first["at"] == datetime(2024, 6, 1, 10, tzinfo=UTC)  # +02:00 → UTC
    assert first["local_at"] == datetime(2024, 6, 1, 12)
    assert first["day"] == date(2024, 6, 1)
    assert first["flag"] is True
    assert json.loads(first["doc"]) == {"tier": "gold", "tags": [1, 2]}
    assert first["ref"] == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert first["big"] == 2**40
    assert all(value is None for key, value in table.to_pylist()[1].items() if key != "id")


def test_loaded_table_kinds_and_fingerprint(postgres_url: str, schema: str) -> None:
    loader = DatasetLoader({"table": _source(postgres_url)}, memory_budget=1 << 26)
    spec = TableDataset(table="ds_types", schema_=schema)
    loaded = loader.load(spec, tenant="t")
    kinds = loaded.kinds()
    assert kinds["amount"] is ColumnKind.NUMERIC
    assert kinds["at"] is ColumnKind.DATETIME
    assert kinds["flag"] is ColumnKind.BOOLEAN
    assert loaded.source["kind"] == "table" and loaded.source["table"] == "ds_types"
    assert loader.load(spec, tenant="t").fingerprint == loaded.fingerprint
    limited = loader.load(TableDataset(table="ds_types", schema_=schema, limit=1), tenant="t")
    assert limited.fingerprint != loaded.fingerprint


# --- outages -------------------------------------------------------------------------------------


def test_outage_is_database_unavailable() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    source = _source(url)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            source.validate(TableDataset(table="ds_customers"), tenant="t")
        assert caught.value.code == "database_unavailable"
        assert caught.value.status == 503
    finally:
        engine = platform._ENGINES.pop(url, None)
        if engine is not None:
            engine.dispose()
