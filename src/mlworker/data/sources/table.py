"""Tables in the platform database (``{"table": "ds_customers", …}``).

The source never builds SQL. It checks every name against the live catalogue and hands a
structured :class:`TableQuery` to a :class:`PlatformCatalog` (implemented in ``store/``, the
only package that speaks SQL), which quotes identifiers and binds values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from mlworker.data.budget import MemoryBudget
from mlworker.data.spec import Filter, TableDataset
from mlworker.data.values import SourceData
from mlworker.errors import DatasetTooLarge, UnknownColumn


@dataclass(frozen=True, slots=True)
class TableDescription:
    """What the catalogue says about a table."""

    columns: tuple[str, ...]
    primary_key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TableQuery:
    """A whitelisted read: every name here was checked against the catalogue."""

    table: str
    schema: str | None
    columns: tuple[str, ...]
    filters: tuple[Filter, ...]
    limit: int | None
    order_by: tuple[str, ...]


class PlatformCatalog(Protocol):
    """Read access to the platform database's tables."""

    def describe(self, table: str, schema: str | None) -> TableDescription:
        """Columns and primary key; raise :class:`~mlworker.errors.UnknownTable` if absent."""

    def count(self, query: TableQuery) -> int:
        """Rows the query would return."""

    def read(self, query: TableQuery, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream the query's rows as Arrow batches."""


class TableSource:
    """Platform tables, with whitelisted names, structured filters and a row cap."""

    def __init__(self, catalog: PlatformCatalog, *, row_cap: int, batch_rows: int = 50_000) -> None:
        self._catalog = catalog
        self._row_cap = row_cap
        self._batch_rows = batch_rows

    def _query(self, spec: TableDataset) -> TableQuery:
        description = self._catalog.describe(spec.table, spec.schema_)
        available = description.columns
        for column in spec.columns or ():
            if column not in available:
                raise UnknownColumn(
                    f"unknown column {column!r} in table {spec.table!r}",
                    field="dataset.columns",
                    column=column,
                )
        for index, condition in enumerate(spec.filters):
            if condition.column not in available:
                raise UnknownColumn(
                    f"unknown column {condition.column!r} in table {spec.table!r}",
                    field=f"dataset.filters.{index}.column",
                    column=condition.column,
                )
        columns = tuple(dict.fromkeys(spec.columns)) if spec.columns else available
        # A stable order makes "the same request gives the same result" hold for LIMIT too.
        order_by = description.primary_key or (columns if spec.limit else ())
        return TableQuery(
            table=spec.table,
            schema=spec.schema_,
            columns=columns,
            filters=spec.filters,
            limit=spec.limit,
            order_by=order_by,
        )

    def validate(self, spec: TableDataset, *, tenant: str) -> None:
        """Check table and column names against the live catalogue."""
        self._query(spec)

    def read(self, spec: TableDataset, *, tenant: str, budget: MemoryBudget) -> SourceData:
        """Count, enforce the row cap, then stream the rows."""
        query = self._query(spec)
        matching = self._catalog.count(query)
        rows = min(matching, query.limit) if query.limit else matching
        if rows > self._row_cap:
            raise DatasetTooLarge(
                f"table {spec.table!r} has {matching} matching rows, above the row cap of "
                f"{self._row_cap} (MLWORKER_TABLE_ROW_CAP); add filters or a limit",
                field="dataset",
            )
        batches = []
        for batch in self._catalog.read(query, batch_rows=self._batch_rows):
            budget.charge_data(batch)
            batches.append(batch)
        if batches:
            table = pa.Table.from_batches(batches)
        else:
            table = pa.table({column: pa.array([], type=pa.null()) for column in query.columns})
        description = {
            "kind": "table",
            "table": spec.table,
            "schema": spec.schema_,
            "columns": list(query.columns),
            "filters": [f.model_dump(mode="json") for f in spec.filters],
            "limit": spec.limit,
        }
        return SourceData(table=table, description=description)
