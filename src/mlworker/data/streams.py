"""Byte streams for the file readers: decompression by suffix, metered against a budget.

Every byte a reader takes passes :class:`Metered`, so a compressed file's decompressed size, its
compression ratio and the parse deadline are checked while it streams, before the parser has
seen more than the caps allow: a gzip bomb is refused long before it is inflated.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa

from mlworker.data.budget import MemoryBudget

Compression = Literal["gzip", "bz2", "zstd", "lz4"]
COMPRESSIONS: dict[str, Compression] = {
    ".gz": "gzip",
    ".bz2": "bz2",
    ".zst": "zstd",
    ".lz4": "lz4",
}
#: Compressed bytes handed to the decompressor at a time (at most ~4 MiB of gzip output).
_COMPRESSED_READ_BYTES = 4096


def compression_of(name: str) -> Compression | None:
    """Return the compression ``name``'s suffix names (``None`` for a plain file)."""
    suffix = Path(name).suffix.lower()
    return COMPRESSIONS.get(suffix)


def open_stream(
    source: str | Path | IO[bytes] | io.RawIOBase,
    name: str,
    budget: MemoryBudget | None = None,
) -> Any:
    """Open ``source`` as an Arrow stream, decompressing by ``name``'s suffix under ``budget``.

    The compression comes from ``name`` alone: pyarrow would otherwise also detect it from a
    path's suffix, and a gzipped file would be decompressed twice. Every byte passes
    :class:`Metered`, so the decompressed size, the compression ratio and the deadline are
    checked while streaming, before the parser sees more than the caps allow.
    """
    compression: Any = compression_of(name)  # None means "not compressed"; the stubs omit it
    if budget is None:
        stream: Any = str(source) if isinstance(source, Path) else source
        return pa.input_stream(stream, compression=compression)
    raw: Any = open(source, "rb") if isinstance(source, str | Path) else source  # noqa: SIM115
    if compression is None:
        return pa.input_stream(Metered(raw, budget))
    # Arrow inflates each compressed read whole: 64 KiB of a bomb is 64 MiB in one buffer.
    # Small compressed reads keep that buffer small whatever the ratio.
    counted = Metered(raw, budget, max_read=_COMPRESSED_READ_BYTES)
    decompressed = pa.input_stream(counted, compression=compression)
    return pa.input_stream(Metered(decompressed, budget, compressed=counted))


class Metered(io.RawIOBase):
    """A stream that counts what passes and stops at the budget's caps and deadline.

    Without ``compressed`` it is the raw side (only the deadline applies); with it, the
    decompressed side, whose total is compared with the raw bytes ``compressed`` has counted.
    """

    def __init__(
        self,
        inner: Any,
        budget: MemoryBudget,
        *,
        compressed: Metered | None = None,
        max_read: int | None = None,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._budget = budget
        self._compressed = compressed
        self._max_read = max_read
        self.count = 0

    def readable(self) -> bool:
        """Return ``True``: the stream is read-only."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``, then check the budget's caps and deadline."""
        if self._max_read is not None and len(buffer) > self._max_read:
            buffer = memoryview(buffer)[: self._max_read]
        readinto = getattr(self._inner, "readinto", None)
        if readinto is not None:
            size = int(readinto(buffer))
        else:
            data = self._inner.read(len(buffer))
            size = len(data)
            buffer[:size] = data
        self.count += size
        if self._compressed is None:
            self._budget.check_deadline()
        else:
            self._budget.count_decompressed(self.count, self._compressed.count)
        return size

    def close(self) -> None:
        """Close the wrapped stream."""
        if not self.closed:
            self._inner.close()
        super().close()


class Borrowed(io.RawIOBase):
    """Read-only view of a file object whose ``close`` leaves the file open."""

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self._handle = handle

    def readable(self) -> bool:
        """Return ``True``: the stream is read-only."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` from the borrowed file."""
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
