"""Read access to the platform's own tables (``MLWORKER_PLATFORM_DATABASE_URL``).

Names are checked against the live catalogue before any query is built; queries are SQLAlchemy
Core expressions, so identifiers are quoted by the dialect and every value is a bound parameter.
ML Worker's own tables (``mlw_*``) and the system schemas are never readable through here, even
when the platform and the metadata store share one database: they hold every tenant's records.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy import types as sa_types

from mlworker.data.sources.table import TableDescription, TableQuery
from mlworker.data.spec import Filter
from mlworker.errors import DatabaseUnavailable, InvalidInput, UnknownTable
from mlworker.store.db import create_db_engine
from mlworker.store.migrate import VERSION_TABLE

_HIDDEN_SCHEMAS = frozenset({"information_schema", "pg_catalog", "pg_toast"})
_ENGINES: dict[str, sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> sa.Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = create_db_engine(url)
        return engine


def _arrow_type(column_type: sa_types.TypeEngine[Any]) -> tuple[pa.DataType, Callable[[Any], Any]]:
    """Arrow type for a SQL column and the conversion its Python values need."""
    if isinstance(column_type, sa_types.Boolean):
        return pa.bool_(), bool
    if isinstance(column_type, sa_types.Integer):
        return pa.int64(), int
    # DECIMAL/NUMERIC/REAL/DOUBLE PRECISION, analysed as floats. Float is not a Numeric
    # subclass in SQLAlchemy 2.1, so both are named.
    if isinstance(column_type, sa_types.Numeric | sa_types.Float):
        return pa.float64(), float
    if isinstance(column_type, sa_types.DateTime):
        if getattr(column_type, "timezone", False):
            return pa.timestamp("us", tz="UTC"), lambda v: v
        return pa.timestamp("us"), lambda v: v
    if isinstance(column_type, sa_types.Date):
        return pa.date32(), lambda v: v
    return pa.string(), _as_text


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if isinstance(value, uuid.UUID | Decimal | datetime | date):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


def _bound(column: sa.ColumnElement[Any], value: Any, *, cast: bool) -> sa.ColumnElement[Any]:
    """Bind ``value`` for comparison with ``column``, as the column's own type.

    SQLAlchemy types a bind by its Python value when that disagrees with the column (a string
    against a timestamp), and the PostgreSQL dialect renders that type as a cast
    (``$1::VARCHAR``), which PostgreSQL then refuses to compare. Casting the bound value to the
    column's type lets the server parse ``"2024-01-01"`` as a timestamp or ``"42"`` as a number,
    and still treats the value as data, never as SQL.
    """
    bound = sa.literal(value)
    if not cast or isinstance(column.type, sa_types.NullType):
        return bound
    return sa.cast(bound, column.type)


def _condition(
    column: sa.ColumnElement[Any], condition: Filter, *, cast: bool
) -> sa.ColumnElement[bool]:
    value = condition.value
    values = value if isinstance(value, list) else [value]
    bound = [_bound(column, item, cast=cast) for item in values]
    match condition.op:
        case "eq":
            return column == bound[0]
        case "ne":
            return column != bound[0]
        case "lt":
            return column < bound[0]
        case "le":
            return column <= bound[0]
        case "gt":
            return column > bound[0]
        case "ge":
            return column >= bound[0]
        case "in":
            return column.in_(bound)
        case "not_in":
            return column.not_in(bound)
        case "is_null":
            return column.is_(None)
        case "not_null":
            return column.is_not(None)
        case "between":
            low, high = bound
            return column.between(low, high)
        case "like":
            return column.like(sa.literal(str(value)))
    raise InvalidInput(f"unsupported operator {condition.op!r}", field="dataset.filters")


class PlatformTables:
    """:class:`~mlworker.data.sources.PlatformCatalog` over a SQLAlchemy engine.

    Parameters
    ----------
    url
        Platform database URL.
    allowed
        ``fnmatch`` patterns a table name must match (``MLWORKER_PLATFORM_TABLES``).
    hidden_schema
        Schema holding ML Worker's own tables, if any; never readable.
    """

    def __init__(
        self, url: str, *, allowed: tuple[str, ...] = ("*",), hidden_schema: str | None = None
    ) -> None:
        self._url = url
        self._allowed = allowed
        self._hidden_schemas = _HIDDEN_SCHEMAS | ({hidden_schema} if hidden_schema else set())

    def _visible(self, table: str, schema: str | None) -> bool:
        if table.startswith("mlw_") or table == VERSION_TABLE:
            return False
        if schema is not None and (schema in self._hidden_schemas or schema.startswith("pg_")):
            return False
        return any(fnmatch.fnmatchcase(table, pattern) for pattern in self._allowed)

    def describe(self, table: str, schema: str | None) -> TableDescription:
        """Check ``schema.table`` exists and is readable; return its columns and primary key."""
        with _translate_errors():
            inspector = sa.inspect(_engine(self._url))
            if schema is not None and schema not in inspector.get_schema_names():
                raise UnknownTable(f"unknown schema {schema!r}", field="dataset.schema")
            # An unqualified name lives in the connection's default schema, which must be
            # checked too: a search_path may point at ML Worker's own schema.
            effective_schema = schema if schema is not None else inspector.default_schema_name
            names = set(inspector.get_table_names(schema=schema))
            names.update(inspector.get_view_names(schema=schema))
            if table not in names or not self._visible(table, effective_schema):
                raise UnknownTable(f"unknown table {table!r}", field="dataset.table", table=table)
            columns = tuple(
                column["name"] for column in inspector.get_columns(table, schema=schema)
            )
            primary_key = inspector.get_pk_constraint(table, schema=schema) or {}
        return TableDescription(
            columns=columns, primary_key=tuple(primary_key.get("constrained_columns") or ())
        )

    def _table(self, query: TableQuery) -> sa.Table:
        try:
            return sa.Table(
                query.table, sa.MetaData(), autoload_with=_engine(self._url), schema=query.schema
            )
        except sa_exc.NoSuchTableError as exc:  # dropped since it was described
            raise UnknownTable(
                f"unknown table {query.table!r}", field="dataset.table", table=query.table
            ) from exc

    def _select(self, table: sa.Table, query: TableQuery, *what: Any) -> sa.Select[Any]:
        cast = _engine(self._url).dialect.name != "sqlite"  # SQLite compares values as they are
        statement = sa.select(*what).select_from(table)
        for condition in query.filters:
            column = table.c[condition.column]
            statement = statement.where(_condition(column, condition, cast=cast))
        return statement

    def count(self, query: TableQuery) -> int:
        """Count matching rows (before the limit)."""
        with _translate_errors():
            table = self._table(query)
            statement = self._select(table, query, sa.func.count())
            with _engine(self._url).connect() as connection:
                return int(connection.execute(statement).scalar_one())

    def read(self, query: TableQuery, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream rows with a server-side cursor, ``batch_rows`` at a time.

        At least one batch is produced, so an empty result still carries the column types.
        """
        with _translate_errors():
            table = self._table(query)
            columns = [table.c[name] for name in query.columns]
            statement = self._select(table, query, *columns)
            if query.order_by:
                statement = statement.order_by(*(table.c[name] for name in query.order_by))
            if query.limit:
                statement = statement.limit(query.limit)
            types = [_arrow_type(column.type) for column in columns]
            schema = pa.schema(
                [(name, arrow) for name, (arrow, _) in zip(query.columns, types, strict=True)]
            )
            produced = False
            with _engine(self._url).connect() as connection:
                result = connection.execution_options(stream_results=True).execute(statement)
                while chunk := result.fetchmany(batch_rows):
                    arrays = []
                    for index, (arrow, convert) in enumerate(types):
                        values = [None if r[index] is None else convert(r[index]) for r in chunk]
                        arrays.append(pa.array(values, type=arrow))
                    produced = True
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            if not produced:
                yield pa.RecordBatch.from_pylist([], schema=schema)


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Turn driver errors into ML Worker's: an outage, or a value that does not fit."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise DatabaseUnavailable("the platform database is unavailable") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable("the connection to the platform database was lost") from exc
        raise InvalidInput(
            f"a filter value does not fit its column: {exc.orig}", field="dataset.filters"
        ) from exc
    except sa_exc.StatementError as exc:  # a value the driver could not bind
        raise InvalidInput(
            f"a filter value does not fit its column: {exc.orig}", field="dataset.filters"
        ) from exc
