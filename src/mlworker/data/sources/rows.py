"""Rows sent inline in the request (``{"rows": [...]}``)."""

from __future__ import annotations

import math
import re
from typing import Any

import pyarrow as pa

from mlworker.data.budget import MemoryBudget
from mlworker.data.spec import RowsDataset
from mlworker.data.values import SourceData
from mlworker.errors import InvalidInput, UnknownColumn
from mlworker.serialization import canonical_hash

_SCALARS = (str, int, float, bool, type(None))
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _column_names(spec: RowsDataset) -> list[str]:
    names: dict[str, None] = {}
    for row in spec.rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _column(values: list[Any]) -> pa.Array[Any]:
    try:
        array: pa.Array[Any] = pa.array(values)
        return array
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed types in one column (1 and "one"): keep every value, as text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _problem(key: str, value: object) -> str | None:
    """Say what is wrong with one cell, if anything.

    Text with a lone surrogate cannot be encoded (Arrow, hashing, the database all fail on
    it), and a non-finite number is no JSON value; both are the request's fault.
    """
    if _LONE_SURROGATE.search(key):
        return "column name contains a lone surrogate (\\ud800-\\udfff), which is not Unicode"
    if not isinstance(value, _SCALARS):
        return f"value of {key!r} must be a string, number, boolean or null"
    if isinstance(value, str) and _LONE_SURROGATE.search(value):
        return f"value of {key!r} contains a lone surrogate (\\ud800-\\udfff), which is not Unicode"
    if isinstance(value, float) and not math.isfinite(value):
        return f"value of {key!r} must be a finite number (not NaN or Infinity)"
    return None


class RowsSource:
    """Inline rows: scalar values only, columns united across rows."""

    def validate(self, spec: RowsDataset, *, tenant: str) -> None:
        """Check values are valid scalars and requested columns exist."""
        for index, row in enumerate(spec.rows):
            for key, value in row.items():
                problem = _problem(key, value)
                if problem is not None:
                    # A key that is not Unicode cannot be named in the message either.
                    shown = key if not _LONE_SURROGATE.search(key) else ascii(key)
                    raise InvalidInput(problem, field=f"dataset.rows.{index}.{shown}")
        names = _column_names(spec)
        for column in spec.columns or ():
            if column not in names:
                raise UnknownColumn(
                    f"unknown column {column!r}; available: {', '.join(names)}",
                    field="dataset.columns",
                    column=column,
                )

    def read(self, spec: RowsDataset, *, tenant: str, budget: MemoryBudget) -> SourceData:
        """Build an Arrow table from the rows."""
        self.validate(spec, tenant=tenant)
        names = list(spec.columns) if spec.columns else _column_names(spec)
        table = pa.table({name: _column([row.get(name) for row in spec.rows]) for name in names})
        budget.charge_data(table)
        description = {"kind": "rows", "sha256": canonical_hash([list(spec.rows), names])}
        return SourceData(table=table, description=description)
