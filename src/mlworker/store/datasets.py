"""Uploaded datasets in the metadata store."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select

from mlworker.data.values import ColumnProfile, UploadInfo
from mlworker.errors import NotFound
from mlworker.store.db import Database
from mlworker.store.records import DatasetRecord, utcnow


def new_dataset_id() -> str:
    """Return a fresh dataset id: ``ds-`` and 12 hex digits."""
    return f"ds-{secrets.token_hex(6)}"


def _to_info(row: DatasetRecord) -> UploadInfo:
    return UploadInfo(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        file_format=row.format,
        uri=row.uri,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        row_count=row.row_count,
        columns=tuple(ColumnProfile.from_dict(c) for c in row.columns["items"]),
        fingerprint=row.fingerprint,
        created_at=row.created_at,
    )


class DatasetRepository:
    """Uploaded datasets, always scoped to a tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        dataset_id: str,
        tenant: str,
        name: str,
        file_format: str,
        uri: str,
        sha256: str,
        size_bytes: int,
        row_count: int,
        columns: tuple[ColumnProfile, ...],
        fingerprint: str,
    ) -> UploadInfo:
        """Record an upload whose file is already in the artifact store."""
        row = DatasetRecord(
            id=dataset_id,
            tenant=tenant,
            name=name,
            format=file_format,
            uri=uri,
            sha256=sha256,
            size_bytes=size_bytes,
            row_count=row_count,
            columns={"items": [column.to_dict() for column in columns]},
            fingerprint=fingerprint,
            created_at=utcnow(),
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            return _to_info(row)

    def get(self, dataset_id: str, *, tenant: str) -> UploadInfo:
        """Return the upload; :class:`NotFound` when absent or another tenant's."""
        with self._db.session(write=False) as session:
            row = session.get(DatasetRecord, dataset_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"dataset {dataset_id!r} not found", field="dataset_id")
            return _to_info(row)

    def list(self, *, tenant: str, limit: int = 100) -> list[UploadInfo]:
        """List a tenant's uploads, newest first."""
        query = (
            select(DatasetRecord)
            .where(DatasetRecord.tenant == tenant)
            .order_by(DatasetRecord.created_at.desc(), DatasetRecord.id.desc())
            .limit(limit)
        )
        with self._db.session(write=False) as session:
            return [_to_info(row) for row in session.scalars(query)]

    def delete(self, dataset_id: str, *, tenant: str) -> UploadInfo:
        """Remove the record and return what it held (the caller removes the file)."""
        with self._db.session() as session:
            row = session.get(DatasetRecord, dataset_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"dataset {dataset_id!r} not found", field="dataset_id")
            info = _to_info(row)
            session.execute(delete(DatasetRecord).where(DatasetRecord.id == dataset_id))
            return info
