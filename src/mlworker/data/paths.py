"""Paths a client names: confinement to the data root (or another folder) on the resolved path.

Confinement happens on the *resolved* path, so ``..`` segments, absolute paths and symbolic
links that point outside the folder are all refused the same way. URLs are refused by their
form, before anything could open a connection.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlworker.errors import DatasetNotFound, PathNotAllowed

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def resolve_data_path(data_root: Path, raw: str, *, field: str = "dataset.path") -> Path:
    """Resolve ``raw`` to an existing file inside ``data_root``.

    Raises
    ------
    PathNotAllowed
        A URL (``http:``, ``file:``, ``s3:`` …), or a path resolving outside the root.
    DatasetNotFound
        Inside the root, but no such file.
    """
    if "\x00" in raw:
        raise PathNotAllowed("path contains a NUL byte", field=field)
    if _URL.match(raw) or raw.startswith("//") or raw.startswith("\\\\"):
        raise PathNotAllowed(
            "URLs are not accepted; give a path relative to the data root", field=field
        )
    root = data_root.expanduser().resolve()
    # The client's path is relative to the root: ``~`` means nothing special here.
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = root / candidate
    return confined_file(
        candidate,
        root,
        field=field,
        shown=raw,
        outside="path resolves outside the data root (MLWORKER_DATA_ROOT)",
        missing=f"no file {raw!r} under the data root",
    )


def confined_file(
    candidate: Path, root: Path, *, field: str, shown: str, outside: str, missing: str
) -> Path:
    """Resolve ``candidate`` (symbolic links included) and return it if it is a file in ``root``.

    The one confinement check of every path a client names (the data root, a tenant's outputs).

    Parameters
    ----------
    candidate
        Path to resolve.
    root
        Resolved folder the file must lie in.
    field
        Request field named in errors.
    shown
        How the client wrote the path, for messages.
    outside, missing
        Messages for a path that resolves outside ``root`` and for one that is no file.

    Raises
    ------
    PathNotAllowed
        The path cannot be resolved or resolves outside ``root``.
    DatasetNotFound
        No such file inside ``root``.
    """
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise PathNotAllowed(f"cannot resolve {shown!r}", field=field) from exc
    if not resolved.is_relative_to(root):
        raise PathNotAllowed(outside, field=field)
    try:
        is_file = resolved.is_file()
    except OSError:
        is_file = False
    if not is_file:
        raise DatasetNotFound(missing, field=field)
    return resolved
