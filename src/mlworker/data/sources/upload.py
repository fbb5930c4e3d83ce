"""Datasets uploaded with ``POST /datasets`` (``{"datasetId": …}``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol

from mlworker.data.budget import MemoryBudget
from mlworker.data.files import FileFormat, read_file
from mlworker.data.spec import UploadedDataset
from mlworker.data.values import SourceData
from mlworker.errors import UnknownColumn


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """An uploaded file as the store knows it."""

    dataset_id: str
    name: str
    file_format: FileFormat
    sha256: str
    column_names: tuple[str, ...]
    open: Callable[[], IO[bytes]]


class UploadStore(Protocol):
    """Finds a tenant's uploaded files (database row + artifact)."""

    def find_upload(self, dataset_id: str, *, tenant: str) -> StoredUpload:
        """Return the upload; raise ``DatasetNotFound`` when absent or another tenant's."""


class UploadSource:
    """Reads uploads through an :class:`UploadStore`, verifying their checksum first."""

    def __init__(self, uploads: UploadStore) -> None:
        self._uploads = uploads

    def validate(self, spec: UploadedDataset, *, tenant: str) -> None:
        """Check the upload exists for this tenant and has the requested columns."""
        upload = self._uploads.find_upload(spec.dataset_id, tenant=tenant)
        for column in spec.columns or ():
            if column not in upload.column_names:
                raise UnknownColumn(
                    f"unknown column {column!r} in dataset {spec.dataset_id!r}",
                    field="dataset.columns",
                    column=column,
                )

    def read(self, spec: UploadedDataset, *, tenant: str, budget: MemoryBudget) -> SourceData:
        """Read the stored file."""
        upload = self._uploads.find_upload(spec.dataset_id, tenant=tenant)
        with upload.open() as handle:
            table = read_file(
                handle,
                name=upload.name,
                file_format=upload.file_format,
                columns=spec.columns,
                budget=budget,
                field="dataset.datasetId",
                reopen=upload.open,
            )
        description = {"kind": "upload", "datasetId": upload.dataset_id, "sha256": upload.sha256}
        return SourceData(table=table, description=description)
