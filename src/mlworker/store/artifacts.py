"""The artifact store: files written by workers, read back only after their checksum matches.

The root is a local directory (``./var/artifacts``) or any fsspec URL every node can reach
(an NFS mount, ``s3://bucket/prefix``). Keys are relative, slash-separated and never contain
``..``; a URI is the root joined with a key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import IO, Any

import fsspec  # type: ignore[import-untyped]  # fsspec ships no type information
from fsspec.core import url_to_fs  # type: ignore[import-untyped]

from mlworker.errors import ArtifactCorrupt

_KEY = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """Where an artifact lives and what its bytes hash to."""

    uri: str
    sha256: str
    size_bytes: int


class ArtifactStore:
    """Write and verify artifacts under ``root``.

    Parameters
    ----------
    root
        Directory path or fsspec URL.
    """

    def __init__(self, root: str) -> None:
        self._fs: fsspec.AbstractFileSystem
        self._fs, self._root = url_to_fs(root)
        self._fs.makedirs(self._root, exist_ok=True)

    def _path(self, key: str) -> str:
        if not _KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"invalid artifact key {key!r}")
        return f"{self._root.rstrip('/')}/{key}"

    def _check_inside(self, uri: str) -> str:
        path = self._fs._strip_protocol(uri)
        root = self._root.rstrip("/") + "/"
        if not str(path).startswith(root) or ".." in str(path).split("/"):
            raise ValueError("artifact URI outside the artifact root")
        return str(path)

    def uri(self, key: str) -> str:
        """Full URI of ``key``."""
        return str(self._fs.unstrip_protocol(self._path(key)))

    def put(self, key: str, source: IO[bytes]) -> StoredArtifact:
        """Copy ``source`` (from its current position) to ``key``, hashing as it goes."""
        path = self._path(key)
        parent = path.rsplit("/", 1)[0]
        self._fs.makedirs(parent, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with self._fs.open(path, "wb") as target:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                target.write(chunk)
        return StoredArtifact(uri=self.uri(key), sha256=digest.hexdigest(), size_bytes=size)

    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        """Write ``data`` to ``key``."""
        import io

        return self.put(key, io.BytesIO(data))

    def open_verified(self, uri: str, sha256: str) -> IO[bytes]:
        """Open an artifact for reading once its bytes hash to ``sha256``; the caller closes it.

        Raises
        ------
        ArtifactCorrupt
            The bytes changed since they were written.
        """
        path = self._check_inside(uri)
        handle: Any = self._fs.open(path, "rb")
        try:
            digest = hashlib.sha256()
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
            if digest.hexdigest() != sha256:
                raise ArtifactCorrupt(f"artifact {uri} does not match its recorded checksum")
            handle.seek(0)
        except BaseException:
            handle.close()
            raise
        return handle  # type: ignore[no-any-return]

    def delete(self, uri: str) -> None:
        """Remove an artifact if it exists."""
        path = self._check_inside(uri)
        if self._fs.exists(path):
            self._fs.rm(path)
        # Leave no empty directory behind (object stores have none; rmdir there is a no-op).
        parent = path.rsplit("/", 1)[0]
        try:
            if parent.rstrip("/") != self._root.rstrip("/") and not self._fs.ls(parent):
                self._fs.rmdir(parent)
        except (FileNotFoundError, NotImplementedError, OSError):
            pass
