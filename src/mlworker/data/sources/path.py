"""Files under the data root (``{"path": …}``), and the caller's own job outputs.

A path starting with ``outputs/`` names one of the caller's outputs and resolves inside its
tenant folder of ``MLWORKER_OUTPUTS`` (see :mod:`mlworker.data.outputs`). Any other path is
confined to the data root, and refused when it resolves into a location ML Worker keeps for
itself: the outputs root, the artifact store, the metadata database files, and the folders
earlier versions wrote every tenant's outputs to (``predictions/``, ``results/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlworker.data.budget import MemoryBudget
from mlworker.data.files import (
    FileFormat,
    detect_format,
    read_column_names,
    read_file,
)
from mlworker.data.outputs import TenantOutputs, output_relative
from mlworker.data.paths import resolve_data_path
from mlworker.data.spec import PathDataset
from mlworker.data.values import SourceData
from mlworker.errors import PathNotAllowed, UnknownColumn

#: Folders of the data root ML Worker wrote to (outputs of every tenant before
#: ``MLWORKER_OUTPUTS``, diagnostics), and file name prefixes it writes there.
RESERVED_FOLDERS = ("predictions", "results", "_diagnostics", "outputs")
RESERVED_FILE_PREFIXES = ("celerybeat-schedule",)
_FIELD = "dataset.path"


class PathSource:
    """CSV, TSV and Parquet files confined to ``data_root``, and the caller's outputs.

    Parameters
    ----------
    data_root
        ``MLWORKER_DATA_ROOT``.
    outputs
        The tenant outputs root; without it ``outputs/…`` paths are refused.
    reserved_folders
        Further folders never readable, wherever they are (the outputs root, artifacts).
    reserved_files
        Files never readable, also under any suffix (``mlworker.db`` covers ``-wal``, ``-shm``).
    """

    def __init__(
        self,
        data_root: Path,
        *,
        outputs: TenantOutputs | None = None,
        reserved_folders: Sequence[Path] = (),
        reserved_files: Sequence[Path] = (),
    ) -> None:
        self._root = data_root
        self._outputs = outputs
        resolved_root = data_root.expanduser().resolve()
        extra = [*reserved_folders, *([outputs.root] if outputs else [])]
        extra_resolved = [folder.expanduser().resolve() for folder in extra]
        # A folder holding the whole data root (artifacts at ".") would refuse every path.
        self._reserved_folders = tuple(
            [resolved_root / name for name in RESERVED_FOLDERS]
            + [folder for folder in extra_resolved if not resolved_root.is_relative_to(folder)]
        )
        self._reserved_files = tuple(
            [resolved_root / name for name in RESERVED_FILE_PREFIXES]
            + [file.expanduser().resolve() for file in reserved_files]
        )

    def _reserved(self, path: Path) -> bool:
        if any(path.is_relative_to(folder) for folder in self._reserved_folders):
            return True
        return any(
            path.parent == file.parent and path.name.startswith(file.name)
            for file in self._reserved_files
        )

    def _resolve(self, spec: PathDataset, tenant: str) -> tuple[Path, str]:
        """Return the file and the name it is described by (relative, never the server's)."""
        relative = output_relative(self._root, spec.path)
        if relative is not None:
            if self._outputs is None:
                raise PathNotAllowed("job outputs are not readable here", field=_FIELD)
            path = self._outputs.resolve(tenant, relative, field=_FIELD)
            return path, f"outputs/{relative}"
        path = resolve_data_path(self._root, spec.path, field=_FIELD)
        if self._reserved(path):
            raise PathNotAllowed(
                f"{spec.path!r} is in a location reserved for ML Worker's own files",
                field=_FIELD,
            )
        return path, str(path.relative_to(self._root.expanduser().resolve()))

    def _locate(self, spec: PathDataset, tenant: str) -> tuple[Path, str, FileFormat]:
        path, shown = self._resolve(spec, tenant)
        # The name the client gave decides the format, even when it is a link to another name.
        return path, shown, detect_format(self._name(spec), spec.format, field=_FIELD)

    @staticmethod
    def _name(spec: PathDataset) -> str:
        return Path(spec.path).name

    def validate(self, spec: PathDataset, *, tenant: str) -> None:
        """Check confinement, existence, format and requested columns (header only)."""
        path, _, file_format = self._locate(spec, tenant)
        if spec.columns is None:
            return
        names = read_column_names(
            path, name=self._name(spec), file_format=file_format, field=_FIELD
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
        path, shown, file_format = self._locate(spec, tenant)
        stat = path.stat()
        table = read_file(
            path,
            name=self._name(spec),
            file_format=file_format,
            columns=spec.columns,
            budget=budget,
            field=_FIELD,
        )
        description = {
            "kind": "path",
            "path": shown,
            "format": file_format,
            "sizeBytes": stat.st_size,
            "modifiedNs": stat.st_mtime_ns,
        }
        return SourceData(table=table, description=description)
