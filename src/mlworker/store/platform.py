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
from sqlalchemy.dialects.postgresql import ARRAY

from mlworker.data.sources.table import TableDescription, TableQuery
from mlworker.data.spec import Filter
from mlworker.errors import DatabaseUnavailable, InvalidInput, UnknownTable, UnreadableDataset
from mlworker.store.db import create_db_engine
from mlworker.store.migrate import VERSION_TABLE

_HIDDEN_SCHEMAS = frozenset({"information_schema", "pg_catalog", "pg_toast"})
#: Prefix of ML Worker's own tables and schemas (``mlw_optuna`` holds every tenant's studies).
_OWN_PREFIX = "mlw_"
#: Tables of ML Worker and of Optuna's own migrations, in whatever schema they are found.
_HIDDEN_TABLES = frozenset({VERSION_TABLE, "alembic_version"})
#: Optuna's schema beside a configured ``MLWORKER_DATABASE_SCHEMA`` (store/optuna_storage.py).
_OPTUNA_SUFFIX = "_optuna"
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


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _membership(
    column: sa.ColumnElement[Any], values: list[Any], *, negate: bool, dialect: str
) -> sa.ColumnElement[bool]:
    """``column [NOT] IN values`` with the whole list as *one* bound parameter.

    One placeholder per value would stop at the driver's parameter limit (65,535 for
    PostgreSQL), so the list travels as one array that the server parses as the column's type
    (PostgreSQL: ``= ANY(CAST(:values AS type[]))``) or as one JSON text (SQLite:
    ``IN (SELECT value FROM json_each(:values))``, compared under the column's affinity).
    """
    if dialect == "postgresql":
        array: Any = sa.bindparam(None, [_text(v) for v in values], type_=ARRAY(sa.Text()))
        if not isinstance(column.type, sa_types.NullType):
            array = sa.cast(array, ARRAY(column.type))
        return column != sa.all_(array) if negate else column == sa.any_(array)
    if dialect == "sqlite":
        each = sa.func.json_each(sa.literal(json.dumps(values))).table_valued("value")
        listed: Any = sa.select(each.c.value)
    else:  # one parameter per value, within what the driver accepts
        listed = [_bound(column, item, cast=True) for item in values]
    return column.not_in(listed) if negate else column.in_(listed)


def _condition(
    column: sa.ColumnElement[Any], condition: Filter, *, dialect: str
) -> sa.ColumnElement[bool]:
    value = condition.value
    values = value if isinstance(value, list) else [value]
    if condition.op in ("in", "not_in"):
        return _membership(column, values, negate=condition.op == "not_in", dialect=dialect)
    # SQLite compares values as they are; elsewhere the value is cast to the column's type.
    bound = [_bound(column, item, cast=dialect != "sqlite") for item in values]
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


def table_allowed(
    patterns: tuple[str, ...], *, table: str, schema: str | None, default_schema: str | None
) -> bool:
    """Whether ``schema.table`` matches one of the platform-table patterns.

    A pattern with a dot is ``<schema glob>.<table glob>``; a bare pattern names tables of the
    default schema only (``public`` on PostgreSQL), so ``*`` never reaches other schemas.

    Examples
    --------
    >>> table_allowed(("ds_*",), table="ds_a", schema="public", default_schema="public")
    True
    >>> table_allowed(("*",), table="ds_a", schema="sales", default_schema="public")
    False
    >>> table_allowed(("sales.ds_*",), table="ds_a", schema="sales", default_schema="public")
    True
    """
    for pattern in patterns:
        schema_glob, dot, table_glob = pattern.partition(".")
        if not dot:
            schema_glob, table_glob = "", pattern
        if not fnmatch.fnmatchcase(table, table_glob):
            continue
        if not dot and schema == default_schema:
            return True
        if dot and schema is not None and fnmatch.fnmatchcase(schema, schema_glob):
            return True
    return False


class PlatformTables:
    """:class:`~mlworker.data.sources.PlatformCatalog` over a SQLAlchemy engine.

    Parameters
    ----------
    url
        Platform database URL.
    allowed
        Patterns a table must match (``MLWORKER_PLATFORM_TABLES``): ``fnmatch`` globs, either
        ``schema.table`` or a bare ``table`` of the default schema (see :func:`table_allowed`).
    hidden_schema
        Schema holding ML Worker's own tables, if any; never readable, nor is its Optuna
        schema (``<schema>_optuna``).

    Notes
    -----
    Whatever the patterns say, these are never readable: tables named ``mlw_*`` or
    ``alembic_version``; schemas named ``mlw_*`` (``mlw_optuna``), ``pg_*``,
    ``information_schema`` and the hidden schema with its Optuna schema.
    """

    def __init__(
        self, url: str, *, allowed: tuple[str, ...] = ("*",), hidden_schema: str | None = None
    ) -> None:
        self._url = url
        self._allowed = allowed
        own = {hidden_schema, f"{hidden_schema}{_OPTUNA_SUFFIX}"} if hidden_schema else set()
        self._hidden_schemas = _HIDDEN_SCHEMAS | own

    def _hidden(self, table: str, schema: str | None) -> bool:
        if table.startswith(_OWN_PREFIX) or table in _HIDDEN_TABLES:
            return True
        return schema is not None and (
            schema in self._hidden_schemas or schema.startswith(("pg_", _OWN_PREFIX))
        )

    def _visible(self, table: str, schema: str | None, default_schema: str | None) -> bool:
        if self._hidden(table, schema):
            return False
        return table_allowed(
            self._allowed, table=table, schema=schema, default_schema=default_schema
        )

    @contextmanager
    def _connected(self) -> Iterator[sa.Connection]:
        """Open a connection, telling errors apart: failing to connect is always an outage.

        Once connected, a failing statement is an outage only when the server says so (or the
        connection was lost); a statement the database refuses is the request's problem.
        """
        try:
            connection = _engine(self._url).connect()
        except sa_exc.DBAPIError as exc:
            raise DatabaseUnavailable("the platform database is unavailable") from exc
        try:
            with _translate_errors():
                yield connection
        finally:
            connection.close()

    def describe(self, table: str, schema: str | None) -> TableDescription:
        """Check ``schema.table`` exists and is readable; return its columns and primary key."""
        with self._connected() as connection:
            inspector = sa.inspect(connection)
            if schema is not None and schema not in inspector.get_schema_names():
                raise UnknownTable(f"unknown schema {schema!r}", field="dataset.schema")
            # An unqualified name lives in the connection's default schema, which must be
            # checked too: a search_path may point at ML Worker's own schema.
            default_schema = inspector.default_schema_name
            effective_schema = schema if schema is not None else default_schema
            names = set(inspector.get_table_names(schema=schema))
            names.update(inspector.get_view_names(schema=schema))
            if table not in names or not self._visible(table, effective_schema, default_schema):
                raise UnknownTable(f"unknown table {table!r}", field="dataset.table", table=table)
            columns = tuple(
                column["name"] for column in inspector.get_columns(table, schema=schema)
            )
            primary_key = inspector.get_pk_constraint(table, schema=schema) or {}
        return TableDescription(
            columns=columns, primary_key=tuple(primary_key.get("constrained_columns") or ())
        )

    def _table(self, query: TableQuery, connection: sa.Connection) -> sa.Table:
        try:
            return sa.Table(
                query.table, sa.MetaData(), autoload_with=connection, schema=query.schema
            )
        except sa_exc.NoSuchTableError as exc:  # dropped since it was described
            raise UnknownTable(
                f"unknown table {query.table!r}", field="dataset.table", table=query.table
            ) from exc

    def _select(self, table: sa.Table, query: TableQuery, *what: Any) -> sa.Select[Any]:
        dialect = _engine(self._url).dialect.name
        statement = sa.select(*what).select_from(table)
        for condition in query.filters:
            column = table.c[condition.column]
            statement = statement.where(_condition(column, condition, dialect=dialect))
        return statement

    def count(self, query: TableQuery) -> int:
        """Count matching rows (before the limit)."""
        with self._connected() as connection:
            table = self._table(query, connection)
            statement = self._select(table, query, sa.func.count())
            return int(connection.execute(statement).scalar_one())

    def read(self, query: TableQuery, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream rows with a server-side cursor, ``batch_rows`` at a time.

        At least one batch is produced, so an empty result still carries the column types.
        """
        with self._connected() as connection:
            table = self._table(query, connection)
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


#: SQLSTATE classes of a server that cannot serve now: connection exception, insufficient
#: resources, operator intervention (shutdown, cancelled), system error.
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58"})
_SQLITE_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")


def _server_unavailable(exc: sa_exc.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate:
        return str(sqlstate)[:2] in _UNAVAILABLE_CLASSES
    return str(getattr(exc.orig, "sqlite_errorname", "")).startswith(_SQLITE_UNAVAILABLE)


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().split("\n", 1)[0]


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Turn driver errors of a statement into ML Worker's: an outage, a value, a query."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if _server_unavailable(exc):
            raise DatabaseUnavailable("the platform database is unavailable") from exc
        if str(getattr(exc.orig, "sqlstate", "") or "").startswith("22") or isinstance(
            exc, sa_exc.DataError
        ):
            raise InvalidInput(
                f"a filter value does not fit its column: {_first_line(exc.orig)}",
                field="dataset.filters",
            ) from exc
        raise UnreadableDataset(
            f"the platform database refused the query: {_first_line(exc.orig)}", field="dataset"
        ) from exc
    except sa_exc.StatementError as exc:  # a value the driver could not bind
        raise InvalidInput(
            f"a filter value does not fit its column: {_first_line(exc.orig)}",
            field="dataset.filters",
        ) from exc
