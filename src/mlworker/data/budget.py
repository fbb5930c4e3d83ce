"""Memory, size and time accounting while a dataset is read: refuse it before it can hurt.

Two levels of accounting:

- :class:`MemoryBudget` is one load: the bytes its rows occupy
  (``MLWORKER_DATASET_MEMORY_BUDGET``), the bytes decompression may produce
  (``MLWORKER_MAX_UPLOAD_DECOMPRESSED_BYTES`` and a compression-ratio guard), and a deadline
  (``MLWORKER_UPLOAD_PARSE_SECONDS``).
- :class:`MemoryPool` is one process: every concurrent load reserves its bytes from the same pool
  (``MLWORKER_API_MEMORY_BUDGET``), so memory is bounded per process, not per request. A load
  that could never fit is refused with 413; one that would fit once others finish waits a moment,
  then is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import cast

import pandas as pd
import pyarrow as pa

from mlworker.errors import DatasetTooLarge, PayloadTooLarge, ServiceUnavailable

# pandas before 3.0 turns every Arrow string into a Python object: ~50 bytes of object header
# plus an 8-byte pointer per value on top of the characters Arrow already counted.
_OBJECT_STRING_OVERHEAD = 58 if int(pd.__version__.split(".")[0]) < 3 else 0
#: Below this many decompressed bytes the ratio guard stays quiet: a small file of zeros is
#: harmless however well it compresses.
RATIO_GRACE_BYTES = 16 * 1024 * 1024
#: What the allocators hold per byte of rows (page rounding, fragmentation; measured with
#: bench/upload_memory.py): the process-wide pool reserves this much more than the rows.
ALLOCATOR_OVERHEAD = 1.25
#: Returning freed memory to the system costs a little; only worth it after a big load.
_TRIM_AFTER_BYTES = 32 * 1024 * 1024


def _format_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def in_memory_bytes(data: pa.Table | pa.RecordBatch) -> int:
    """Estimate the bytes ``data`` occupies once loaded as a pandas frame."""
    extra = 0
    if _OBJECT_STRING_OVERHEAD:
        for column in data.schema:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                extra += _OBJECT_STRING_OVERHEAD * data.num_rows
    return int(data.nbytes) + extra


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


_MALLOC_TRIM = _load_malloc_trim()


def return_free_memory() -> None:
    """Hand memory freed by a finished load back to the system.

    Arrow's allocator and glibc's per-thread arenas keep freed pages for reuse; after a big
    parse in a request thread that would leave the process gigabytes larger than it needs.
    """
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class MemoryPool:
    """Bytes all concurrent loads of one process may hold together.

    Thread-safe. :meth:`reserve` grants at once when the bytes are free, waits up to
    ``wait_seconds`` for other loads to release theirs, then raises 503; a load whose own total
    exceeds the whole pool is refused with 413 at once, since no wait can help it.

    Examples
    --------
    >>> pool = MemoryPool(limit_bytes=100, wait_seconds=0)
    >>> pool.reserve(60, held=0)
    >>> pool.used_bytes
    60
    >>> pool.reserve(60, held=0)
    Traceback (most recent call last):
    ...
    mlworker.errors.ServiceUnavailable: the server is reading other datasets ...
    >>> pool.release(60)
    >>> pool.used_bytes
    0
    """

    _shared: dict[tuple[int, float], MemoryPool] = {}
    _shared_lock = threading.Lock()

    def __init__(self, limit_bytes: int, *, wait_seconds: float = 5.0) -> None:
        self.limit_bytes = limit_bytes
        self.wait_seconds = wait_seconds
        self._used = 0
        self._changed = threading.Condition()

    @classmethod
    def for_process(cls, limit_bytes: int, *, wait_seconds: float = 5.0) -> MemoryPool:
        """Return the pool every loader of this process with these settings shares."""
        key = (limit_bytes, wait_seconds)
        with cls._shared_lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = cls(limit_bytes, wait_seconds=wait_seconds)
            return pool

    @property
    def used_bytes(self) -> int:
        """Bytes reserved now, all loads together."""
        return self._used

    def reserve(
        self, size: int, *, held: int, source: str = "dataset", field: str = "dataset"
    ) -> None:
        """Reserve ``size`` more bytes for a load that already holds ``held``.

        Raises
        ------
        DatasetTooLarge
            ``held + size`` exceeds the whole pool (413: it can never fit).
        ServiceUnavailable
            Other loads hold the bytes and did not release them within ``wait_seconds`` (503).
        """
        if held + size > self.limit_bytes:
            raise DatasetTooLarge(
                f"dataset {source} needs more than {_format_bytes(self.limit_bytes)} in memory, "
                "all this server process may hold for datasets (MLWORKER_API_MEMORY_BUDGET); "
                "select fewer columns, filter rows, or split the file",
                field=field,
                limit_bytes=self.limit_bytes,
            )
        deadline = time.monotonic() + self.wait_seconds
        with self._changed:
            while self._used + size > self.limit_bytes:
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    raise ServiceUnavailable(
                        "the server is reading other datasets and has no memory to spare for "
                        f"{source} now (MLWORKER_API_MEMORY_BUDGET); retry shortly",
                        field=field,
                        limit_bytes=self.limit_bytes,
                    )
            self._used += size

    def release(self, size: int) -> None:
        """Give back ``size`` bytes and wake the loads waiting for them."""
        if size <= 0:
            return
        with self._changed:
            self._used = max(0, self._used - size)
            self._changed.notify_all()


@dataclass
class MemoryBudget:
    """What a single dataset load may use: memory, decompressed bytes and time.

    Use it as a context manager (or call :meth:`close`) when it draws from a shared
    :class:`MemoryPool`, so the reservation is returned when the load is done.

    Examples
    --------
    >>> budget = MemoryBudget(limit_bytes=100, source="t.csv")
    >>> budget.charge(60)
    >>> budget.charge(60)
    Traceback (most recent call last):
    ...
    mlworker.errors.DatasetTooLarge: dataset t.csv needs more than 100.0 B in memory ...
    """

    limit_bytes: int
    source: str = "dataset"
    used_bytes: int = 0
    #: The process-wide pool this load reserves from (none: only the per-load limit applies).
    pool: MemoryPool | None = None
    #: Most bytes decompression may produce (none: no cap).
    max_decompressed_bytes: int | None = None
    #: Most decompressed bytes per compressed byte, past :data:`RATIO_GRACE_BYTES` (0: off).
    max_compression_ratio: float = 0.0
    #: ``time.monotonic()`` after which reading stops (none: no deadline).
    deadline: float | None = None
    #: Seconds the deadline allowed, for the message.
    time_limit_seconds: float | None = None
    #: Request field named when a limit of the file itself is hit.
    field: str = "dataset"
    #: Whether the parser may use Arrow's thread pool. Its read-ahead holds blocks no charge has
    #: seen yet, so the API parses uploads on one thread: concurrent requests are its parallelism.
    parallel: bool = True
    reserved_bytes: int = 0

    def __enter__(self) -> MemoryBudget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def charge(self, size: int) -> None:
        """Add ``size`` bytes; raise :class:`DatasetTooLarge` once past the limit."""
        self.check_deadline()
        self.used_bytes += size
        if self.used_bytes > self.limit_bytes:
            raise DatasetTooLarge(
                f"dataset {self.source} needs more than {_format_bytes(self.limit_bytes)} in "
                "memory (MLWORKER_DATASET_MEMORY_BUDGET); select fewer columns, filter rows, "
                "or raise the budget",
                field=self.field,
                limit_bytes=self.limit_bytes,
            )
        if self.pool is not None and size > 0:
            reserved = int(size * ALLOCATOR_OVERHEAD)
            self.pool.reserve(
                reserved, held=self.reserved_bytes, source=self.source, field=self.field
            )
            self.reserved_bytes += reserved

    def reserve_working_memory(self, size: int) -> None:
        """Reserve what the parser itself holds (blocks, decoders) from the pool, not the rows."""
        if self.pool is not None:
            self.pool.reserve(size, held=self.reserved_bytes, source=self.source, field=self.field)
            self.reserved_bytes += size

    def charge_data(self, data: pa.Table | pa.RecordBatch) -> None:
        """Charge what ``data`` will occupy as a pandas frame."""
        self.charge(in_memory_bytes(data))

    def check_fits(self, size: int) -> None:
        """Refuse at once an estimate that exceeds this load's limit or the whole pool."""
        MemoryBudget(self.limit_bytes, self.source, field=self.field).charge(size)
        if self.pool is not None and size > self.pool.limit_bytes:
            # Raises at once: it could never fit, however long it waited.
            self.pool.reserve(size, held=0, source=self.source, field=self.field)

    def reset(self) -> None:
        """Forget what was charged (the data was dropped, a new attempt starts)."""
        self.used_bytes = 0
        self._release()

    def close(self) -> None:
        """Return the reservation to the pool, and freed memory to the system after big loads."""
        held = self.reserved_bytes or self.used_bytes
        self.used_bytes = 0
        self._release()
        if held >= _TRIM_AFTER_BYTES:
            return_free_memory()

    def _release(self) -> None:
        if self.pool is not None:
            self.pool.release(self.reserved_bytes)
        self.reserved_bytes = 0

    def check_deadline(self) -> None:
        """Raise :class:`DatasetTooLarge` once the load has run past its deadline."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DatasetTooLarge(
                f"reading {self.source} took longer than {self.time_limit_seconds:g} s "
                "(MLWORKER_UPLOAD_PARSE_SECONDS); split the file or submit it as a dataset path",
                field=self.field,
                limit_seconds=self.time_limit_seconds,
            )

    def count_decompressed(self, decompressed: int, compressed: int) -> None:
        """Check the totals a compressed stream has produced so far against the caps."""
        cap = self.max_decompressed_bytes
        if cap is not None and decompressed > cap:
            raise PayloadTooLarge(
                f"{self.source} decompresses to more than {_format_bytes(cap)} "
                "(MLWORKER_MAX_UPLOAD_DECOMPRESSED_BYTES)",
                field=self.field,
                limit_bytes=cap,
            )
        ratio = self.max_compression_ratio
        if ratio and decompressed > RATIO_GRACE_BYTES and decompressed > ratio * compressed:
            raise PayloadTooLarge(
                f"{self.source} decompresses to more than {ratio:g} times its compressed size "
                "(MLWORKER_MAX_UPLOAD_COMPRESSION_RATIO): refused as a decompression bomb",
                field=self.field,
                limit_bytes=cap,
                max_compression_ratio=ratio,
            )
        self.check_deadline()
