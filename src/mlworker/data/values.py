"""Frozen values produced by loading a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
import pyarrow as pa


class ColumnKind(StrEnum):
    """What a column holds, as analysis and training code needs to know it."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    TEXT = "text"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """One column: name, inferred kind, stored type and simple counts."""

    name: str
    kind: ColumnKind
    dtype: str
    missing: int
    distinct: int

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form used by the API and stored with uploads."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "dtype": self.dtype,
            "missing": self.missing,
            "distinct": self.distinct,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            kind=ColumnKind(data["kind"]),
            dtype=str(data["dtype"]),
            missing=int(data["missing"]),
            distinct=int(data["distinct"]),
        )


@dataclass(frozen=True, slots=True)
class SourceData:
    """What a source hands the loader: Arrow data and a description for lineage."""

    table: pa.Table
    description: dict[str, Any]


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset in memory, with its profile and fingerprint.

    Attributes
    ----------
    frame
        The rows, as a pandas frame.
    columns
        Profile of each column, in frame order.
    row_count
        Number of rows.
    fingerprint
        SHA-256 of source description, schema and row count: the lineage key.
    source
        Where the rows came from (kind, path or table, sizes).
    """

    frame: pd.DataFrame
    columns: tuple[ColumnProfile, ...]
    row_count: int
    fingerprint: str
    source: dict[str, Any]

    def kinds(self) -> dict[str, ColumnKind]:
        """Map column name to kind."""
        return {column.name: column.kind for column in self.columns}

    def summary(self) -> dict[str, Any]:
        """JSON summary: row count, columns with kinds, fingerprint, source."""
        return {
            "rowCount": self.row_count,
            "columns": [column.to_dict() for column in self.columns],
            "fingerprint": self.fingerprint,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class UploadInfo:
    """An uploaded dataset as recorded in the store."""

    id: str
    tenant: str
    name: str
    file_format: str
    uri: str
    sha256: str
    size_bytes: int
    row_count: int
    columns: tuple[ColumnProfile, ...]
    fingerprint: str
    created_at: datetime
