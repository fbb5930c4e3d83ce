"""Where job outputs go, and which files of this machine no dataset path may read.

The composition of :class:`~mlworker.data.sources.PathSource` from settings lives here, so the
server, the workers and every job writing outputs agree on one outputs root and one list of
locations reserved for ML Worker's own files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mlworker.config import Settings
from mlworker.data.outputs import TenantOutputs
from mlworker.data.sources.path import PathSource
from mlworker.store.optuna_storage import storage_url

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def tenant_outputs(settings: Settings) -> TenantOutputs:
    """Return the tenant outputs root (``MLWORKER_OUTPUTS``)."""
    return TenantOutputs(settings.outputs)


def _sqlite_file(url: str | None) -> Path | None:
    if not url or not url.startswith("sqlite:///"):
        return None
    database = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(database) if database and database != ":memory:" else None


def reserved_files(settings: Settings) -> tuple[Path, ...]:
    """Return the metadata and Optuna SQLite files (their ``-wal``/``-shm`` share the name).

    Examples
    --------
    >>> settings = Settings(_env_file=None, database_url="sqlite:///./var/m.db")
    >>> [path.name for path in reserved_files(settings)]
    ['m.db', 'm-optuna.db']
    """
    candidates = (_sqlite_file(settings.database_url), _sqlite_file(storage_url(settings)))
    return tuple(path for path in candidates if path is not None)


def reserved_folders(settings: Settings) -> tuple[Path, ...]:
    """Return the folders of ML Worker's own files: the local artifact store."""
    artifacts = settings.artifacts.removeprefix("file://")
    return () if _URL.match(artifacts) else (Path(artifacts),)


def path_source(settings: Settings) -> PathSource:
    """Build the ``{"path": …}`` source: data root, the caller's outputs, reserved places."""
    return PathSource(
        settings.data_root,
        outputs=tenant_outputs(settings),
        reserved_folders=reserved_folders(settings),
        reserved_files=reserved_files(settings),
    )


def write_output(
    frame: pd.DataFrame, *, settings: Settings, tenant: str, kind: str, file_name: str
) -> str:
    """Write ``frame`` as one of ``tenant``'s outputs; return the path that reads it back.

    The format follows the file name (``.parquet`` or ``.csv``). The file appears whole or not
    at all: readers never see half of it.
    """
    path, readable = tenant_outputs(settings).destination(tenant, kind, file_name)
    partial = path.with_name(f"{path.name}.partial")
    if path.suffix == ".csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(path)
    return readable
