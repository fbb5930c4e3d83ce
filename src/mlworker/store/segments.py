"""Segment assignments in the metadata store (``mlw_segment_assignments``).

A segmentation over a million rows writes a million assignments, so rows go in through each
driver's bulk path (PostgreSQL ``COPY``, SQLite ``executemany``) inside one transaction; writing
again for the same job replaces its rows, so a retried job leaves exactly one copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from sqlalchemy import delete, func, select

from mlworker.store.db import Database
from mlworker.store.records import SegmentAssignmentRecord

_COLUMNS = ("job_id", "row_number", "tenant", "row_key", "cluster_id", "segment_name")
_TABLE = SegmentAssignmentRecord.__tablename__


@dataclass(frozen=True, slots=True)
class Assignment:
    """One row's segment: its position in the dataset, its key, and the segment."""

    row_number: int
    row_key: str | None
    cluster_id: int
    segment_name: str


class SegmentAssignmentRepository:
    """Write and page through a job's assignments, always scoped to a tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def replace(
        self,
        *,
        job_id: str,
        tenant: str,
        cluster_ids: Sequence[int],
        segment_names: Sequence[str],
        row_keys: Sequence[str | None] | None = None,
    ) -> int:
        """Store one assignment per row (in dataset order), replacing the job's earlier ones.

        Returns the number of rows written.
        """
        keys: Iterable[str | None] = row_keys if row_keys is not None else repeat(None)
        rows: Iterator[tuple[Any, ...]] = zip(
            repeat(job_id),
            range(len(cluster_ids)),
            repeat(tenant),
            keys,
            cluster_ids,
            segment_names,
            strict=False,
        )
        with self._db.session() as session:
            session.execute(
                delete(SegmentAssignmentRecord).where(SegmentAssignmentRecord.job_id == job_id)
            )
            raw = session.connection().connection.driver_connection
            if self._db.is_sqlite:
                placeholders = ", ".join("?" for _ in _COLUMNS)
                raw.executemany(  # type: ignore[union-attr]
                    f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows
                )
            else:
                with (
                    raw.cursor() as cursor,  # type: ignore[union-attr]
                    cursor.copy(f"COPY {_TABLE} ({', '.join(_COLUMNS)}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
        return len(cluster_ids)

    def count(self, *, job_id: str, tenant: str) -> int:
        """Count the assignments the tenant's job wrote."""
        with self._db.session(write=False) as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        SegmentAssignmentRecord.job_id == job_id,
                        SegmentAssignmentRecord.tenant == tenant,
                    )
                )
                or 0
            )

    def page(self, *, job_id: str, tenant: str, offset: int, limit: int) -> list[Assignment]:
        """Return assignments ``offset .. offset + limit`` of the tenant's job, in order."""
        query = (
            select(SegmentAssignmentRecord)
            .where(
                SegmentAssignmentRecord.job_id == job_id,
                SegmentAssignmentRecord.tenant == tenant,
                SegmentAssignmentRecord.row_number >= offset,
            )
            .order_by(SegmentAssignmentRecord.row_number)
            .limit(limit)
        )
        with self._db.session(write=False) as session:
            return [
                Assignment(
                    row_number=row.row_number,
                    row_key=row.row_key,
                    cluster_id=row.cluster_id,
                    segment_name=row.segment_name,
                )
                for row in session.scalars(query)
            ]

    def delete(self, *, job_id: str, tenant: str) -> int:
        """Remove the tenant's assignments for a job; return how many there were."""
        with self._db.session() as session:
            result = session.execute(
                delete(SegmentAssignmentRecord).where(
                    SegmentAssignmentRecord.job_id == job_id,
                    SegmentAssignmentRecord.tenant == tenant,
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
