"""Files under the data root (``{"path": …}``)."""

from __future__ import annotations

from pathlib import Path

from mlworker.data.budget import MemoryBudget
from mlworker.data.files import (
    FileFormat,
    detect_format,
    read_column_names,
    read_file,
    resolve_data_path,
)
from mlworker.data.spec import PathDataset
from mlworker.data.values import SourceData
from mlworker.errors import UnknownColumn


class PathSource:
    """CSV, TSV and Parquet files confined to ``data_root``."""

    def __init__(self, data_root: Path) -> None:
        self._root = data_root

    def _locate(self, spec: PathDataset) -> tuple[Path, FileFormat]:
        path = resolve_data_path(self._root, spec.path)
        # The name the client gave decides the format, even when it is a link to another name.
        return path, detect_format(self._name(spec), spec.format, field="dataset.path")

    @staticmethod
    def _name(spec: PathDataset) -> str:
        return Path(spec.path).name

    def validate(self, spec: PathDataset, *, tenant: str) -> None:
        """Check confinement, existence, format and requested columns (header only)."""
        path, file_format = self._locate(spec)
        if spec.columns is None:
            return
        names = read_column_names(
            path, name=self._name(spec), file_format=file_format, field="dataset.path"
        )
        for column in spec.columns:
            if column not in names:
                raise UnknownColumn(
                    f"unknown column {column!r} in {spec.path}; available: {', '.join(names)}",
                    field="dataset.columns",
                    column=column,
                )

    def read(self, spec: PathDataset, *, tenant: str, budget: MemoryBudget) -> SourceData:
        """Read the file."""
        path, file_format = self._locate(spec)
        stat = path.stat()
        table = read_file(
            path,
            name=self._name(spec),
            file_format=file_format,
            columns=spec.columns,
            budget=budget,
            field="dataset.path",
        )
        description = {
            "kind": "path",
            "path": str(path.relative_to(self._root.expanduser().resolve())),
            "format": file_format,
            "sizeBytes": stat.st_size,
            "modifiedNs": stat.st_mtime_ns,
        }
        return SourceData(table=table, description=description)
