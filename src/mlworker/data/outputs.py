"""What jobs write for a tenant (predictions, segment assignments): one private folder each.

Outputs live under ``MLWORKER_OUTPUTS`` as ``<outputs>/<tenant>/<kind>/<file>``, never under
the shared data root, so no spelling of a data-root path reaches them. A tenant names its own
outputs in a dataset spec as ``{"path": "outputs/<kind>/<file>"}``: the ``outputs/`` prefix is
resolved inside the *caller's* folder only, so another tenant's output is simply not there.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath

from mlworker.data.paths import confined_file

#: The prefix a dataset path starts with to name one of the caller's own outputs.
OUTPUTS_PREFIX = "outputs"
_PLAIN_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def tenant_folder(tenant: str) -> str:
    """Return the folder name of ``tenant``: the id itself when it is a plain name.

    Anything else (a separator, a leading dot, a long id) becomes a digest under a prefix no
    plain name can have, so two tenants never share a folder.

    Examples
    --------
    >>> tenant_folder("tenant-a")
    'tenant-a'
    >>> tenant_folder("../b")[:1]
    '~'
    """
    if _PLAIN_TENANT.match(tenant):
        return tenant
    return "~" + hashlib.sha256(tenant.encode()).hexdigest()[:32]


def output_relative(data_root: Path, raw: str) -> PurePosixPath | None:
    """Return the part of ``raw`` after ``outputs/`` when it names an output, else ``None``.

    The test is lexical (``..`` folded, symlinks not followed), against the data root the path
    would otherwise be relative to: ``outputs/x``, ``./outputs/x``, ``a/../outputs/x`` and the
    absolute ``<data root>/outputs/x`` all name output ``x``.

    Examples
    --------
    >>> output_relative(Path("/srv/data"), "./outputs/segments/../segments/j.parquet")
    PurePosixPath('segments/j.parquet')
    >>> output_relative(Path("/srv/data"), "outputs/../customers.csv") is None
    True
    """
    if "\x00" in raw:
        return None
    root = Path(os.path.abspath(data_root.expanduser()))
    candidate = Path(raw) if Path(raw).is_absolute() else root / raw
    normal = Path(os.path.normpath(candidate))
    marker = root / OUTPUTS_PREFIX
    if normal != marker and not normal.is_relative_to(marker):
        # The resolved root may differ from the spelled one (a symlinked data root).
        resolved_marker = data_root.expanduser().resolve() / OUTPUTS_PREFIX
        if normal != resolved_marker and not normal.is_relative_to(resolved_marker):
            return None
        marker = resolved_marker
    return PurePosixPath(normal.relative_to(marker).as_posix())


class TenantOutputs:
    """The outputs root, handing each tenant its own folder.

    Parameters
    ----------
    root
        ``MLWORKER_OUTPUTS``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, tenant: str) -> Path:
        """Return the resolved folder holding ``tenant``'s outputs."""
        return self.root.expanduser().resolve() / tenant_folder(tenant)

    def destination(self, tenant: str, kind: str, file_name: str) -> tuple[Path, str]:
        """Return where a job writes ``file_name`` of ``kind``, and the path that reads it back.

        The folder is created; the second value is what a dataset spec names
        (``outputs/<kind>/<file_name>``) and what a job's result reports.
        """
        path = self.folder(tenant) / kind / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, f"{OUTPUTS_PREFIX}/{kind}/{file_name}"

    def resolve(self, tenant: str, relative: PurePosixPath | str, *, field: str) -> Path:
        """Return the existing file ``relative`` names inside ``tenant``'s folder.

        Raises
        ------
        PathNotAllowed
            The path escapes the tenant's folder (through a symbolic link, say).
        DatasetNotFound
            No such output *for this tenant* (whether or not another tenant has one).
        """
        folder = self.folder(tenant)
        shown = f"{OUTPUTS_PREFIX}/{PurePosixPath(relative)}"
        return confined_file(
            folder / relative,
            folder,
            field=field,
            shown=shown,
            outside=f"{shown!r} is not one of your outputs",
            missing=f"no output {shown!r} for this tenant",
        )
