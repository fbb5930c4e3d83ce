"""Memory accounting while a dataset is read: refuse it before it can crash the worker."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from mlworker.errors import DatasetTooLarge

# pandas before 3.0 turns every Arrow string into a Python object: ~50 bytes of object header
# plus an 8-byte pointer per value on top of the characters Arrow already counted.
_OBJECT_STRING_OVERHEAD = 58 if int(pd.__version__.split(".")[0]) < 3 else 0


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


@dataclass
class MemoryBudget:
    """Bytes a single dataset load may use (``MLWORKER_DATASET_MEMORY_BUDGET``).

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
    used_bytes: int = field(default=0)

    def charge(self, size: int) -> None:
        """Add ``size`` bytes; raise :class:`DatasetTooLarge` once past the limit."""
        self.used_bytes += size
        if self.used_bytes > self.limit_bytes:
            raise DatasetTooLarge(
                f"dataset {self.source} needs more than {_format_bytes(self.limit_bytes)} in "
                "memory (MLWORKER_DATASET_MEMORY_BUDGET); select fewer columns, filter rows, "
                "or raise the budget",
                field="dataset",
                limit_bytes=self.limit_bytes,
            )

    def charge_data(self, data: pa.Table | pa.RecordBatch) -> None:
        """Charge what ``data`` will occupy as a pandas frame."""
        self.charge(in_memory_bytes(data))
