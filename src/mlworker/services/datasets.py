"""Dataset use cases: build the loader, validate specs at submission, accept uploads."""

from __future__ import annotations

import re
import time
import traceback
from typing import IO

import pyarrow as pa
from pydantic import BaseModel

from mlworker.config import Settings
from mlworker.data.budget import MemoryBudget, MemoryPool
from mlworker.data.files import FileFormat, detect_format, read_file
from mlworker.data.loader import DatasetLoader
from mlworker.data.profile import fingerprint, profile_columns
from mlworker.data.sources import (
    RowsSource,
    StoredUpload,
    TableSource,
    UploadSource,
)
from mlworker.data.values import ColumnProfile, LoadedDataset, UploadInfo
from mlworker.errors import DatasetNotFound, NotFound
from mlworker.services.outputs import path_source
from mlworker.store.artifacts import ArtifactStore
from mlworker.store.datasets import DatasetRepository, new_dataset_id
from mlworker.store.db import Database
from mlworker.store.platform import PlatformTables

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")
_STORED_NAME_CHARS = 100


def safe_file_name(name: str, *, fallback: str) -> str:
    """Make ``name`` safe as one path component: odd characters become ``_``, at most 100.

    Examples
    --------
    >>> safe_file_name("../Q3 report (final).csv", fallback="upload")
    'Q3_report_final_.csv'
    >>> safe_file_name("..", fallback="tenant")
    'tenant'
    """
    return _UNSAFE_NAME.sub("_", name).strip("._")[-_STORED_NAME_CHARS:] or fallback


_NAME_CHARS = 255  # the dataset record's name column


class StoredUploads:
    """:class:`~mlworker.data.sources.UploadStore` over the dataset table and artifact store."""

    def __init__(self, repository: DatasetRepository, artifacts: ArtifactStore) -> None:
        self._repository = repository
        self._artifacts = artifacts

    def find_upload(self, dataset_id: str, *, tenant: str) -> StoredUpload:
        """Return the tenant's upload, or raise :class:`DatasetNotFound`."""
        try:
            info = self._repository.get(dataset_id, tenant=tenant)
        except NotFound as exc:
            raise DatasetNotFound(
                f"no uploaded dataset {dataset_id!r}", field="dataset.datasetId"
            ) from exc
        return StoredUpload(
            dataset_id=info.id,
            # The stored file name keeps the extension (compression is detected from it).
            name=info.uri.rsplit("/", 1)[-1],
            file_format=info.file_format,  # type: ignore[arg-type]
            sha256=info.sha256,
            column_names=tuple(column.name for column in info.columns),
            open=lambda: self._artifacts.open_verified(info.uri, info.sha256),
        )


def process_memory_pool(settings: Settings) -> MemoryPool:
    """Return the pool all concurrent loads and uploads of this process share."""
    return MemoryPool.for_process(
        int(settings.api_memory_budget), wait_seconds=settings.api_memory_wait_seconds
    )


def build_loader(settings: Settings, db: Database) -> DatasetLoader:
    """Assemble the dataset loader for ``settings`` (server and workers alike)."""
    artifacts = ArtifactStore(settings.artifacts)
    platform = PlatformTables(
        settings.platform_url,
        allowed=settings.platform_tables,
        hidden_schema=settings.database_schema,
    )
    return DatasetLoader(
        {
            "path": path_source(settings),
            "table": TableSource(platform, row_cap=settings.table_row_cap),
            "rows": RowsSource(),
            "upload": UploadSource(StoredUploads(DatasetRepository(db), artifacts)),
        },
        memory_budget=int(settings.dataset_memory_budget),
        pool=process_memory_pool(settings),
        max_decompressed_bytes=int(settings.max_upload_decompressed_bytes),
        max_compression_ratio=settings.max_upload_compression_ratio,
    )


class DatasetService:
    """Uploads and dataset validation for the API."""

    def __init__(self, settings: Settings, db: Database, artifacts: ArtifactStore) -> None:
        self._settings = settings
        self._repository = DatasetRepository(db)
        self._artifacts = artifacts
        self.loader = build_loader(settings, db)

    def validate(self, spec: BaseModel, *, tenant: str) -> None:
        """Refuse a spec that cannot load (bad path, unknown table or column) before queuing."""
        self.loader.validate(spec, tenant=tenant)

    def load(self, spec: BaseModel, *, tenant: str) -> LoadedDataset:
        """Load a dataset in this process."""
        return self.loader.load(spec, tenant=tenant)

    def upload(
        self,
        *,
        tenant: str,
        filename: str,
        content: IO[bytes],
        declared_format: str | None = None,
        name: str | None = None,
    ) -> UploadInfo:
        """Store an uploaded CSV/Parquet file after checking it parses; return its record."""
        file_format = detect_format(filename, declared_format, field="file")  # type: ignore[arg-type]
        dataset_id = new_dataset_id()
        # The stored name keeps the suffixes (format and compression are read from it) and
        # stays short enough for any file system.
        safe_name = safe_file_name(filename, fallback="upload")
        stored = self._artifacts.put(f"uploads/{tenant}/{dataset_id}/{safe_name}", content)
        try:
            rows, schema, columns = self._parse(
                filename, file_format, uri=stored.uri, sha256=stored.sha256
            )
            description = {"kind": "upload", "datasetId": dataset_id, "sha256": stored.sha256}
            return self._repository.add(
                dataset_id=dataset_id,
                tenant=tenant,
                name=name or filename[:_NAME_CHARS],
                file_format=file_format,
                uri=stored.uri,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                row_count=rows,
                columns=columns,
                fingerprint=fingerprint(description, schema, rows),
            )
        except BaseException as exc:
            # Whatever went wrong (a parse error, a full database, a bug), nothing is kept, and
            # the finished frames the traceback still references let go of the rows they read.
            traceback.clear_frames(exc.__traceback__)
            self._artifacts.delete(stored.uri)
            raise

    def _parse(
        self, filename: str, file_format: FileFormat, *, uri: str, sha256: str
    ) -> tuple[int, pa.Schema, tuple[ColumnProfile, ...]]:
        """Parse and profile a stored upload under the process-wide memory pool.

        Decompression is capped while it streams, the parse has a deadline, and every byte the
        rows occupy is reserved from the pool all concurrent uploads and loads share.
        """
        settings = self._settings
        budget = MemoryBudget(
            int(settings.dataset_memory_budget),
            source=filename,
            pool=process_memory_pool(settings),
            max_decompressed_bytes=int(settings.max_upload_decompressed_bytes),
            max_compression_ratio=settings.max_upload_compression_ratio,
            deadline=time.monotonic() + settings.upload_parse_seconds,
            time_limit_seconds=settings.upload_parse_seconds,
            field="file",
            parallel=False,
        )
        with budget, self._artifacts.open_verified(uri, sha256) as handle:
            table = read_file(
                handle,
                name=filename,
                file_format=file_format,
                columns=None,
                budget=budget,
                field="file",
                reopen=lambda: self._artifacts.open_verified(uri, sha256),
            )
            rows, schema = table.num_rows, table.schema
            frame = table.to_pandas(split_blocks=True, self_destruct=True)
            del table
            budget.check_deadline()
            return rows, schema, profile_columns(frame)

    def get(self, dataset_id: str, *, tenant: str) -> UploadInfo:
        """Return one of the tenant's uploads."""
        return self._repository.get(dataset_id, tenant=tenant)

    def list(self, *, tenant: str, limit: int) -> list[UploadInfo]:
        """List the tenant's uploads, newest first."""
        return self._repository.list(tenant=tenant, limit=limit)

    def delete(self, dataset_id: str, *, tenant: str) -> None:
        """Delete the record, then its file."""
        info = self._repository.delete(dataset_id, tenant=tenant)
        self._artifacts.delete(info.uri)
