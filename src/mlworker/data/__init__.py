"""Datasets: the spec every job shares, sources for each form, and the budgeted loader.

Plain library code over pyarrow and pandas; database access arrives through the
:class:`~mlworker.data.sources.PlatformCatalog` protocol, implemented in ``store/``.
"""

from mlworker.data.budget import MemoryBudget
from mlworker.data.loader import DatasetLoader
from mlworker.data.spec import (
    DatasetSpec,
    Filter,
    PathDataset,
    RowsDataset,
    TableDataset,
    UploadedDataset,
)
from mlworker.data.values import ColumnKind, ColumnProfile, LoadedDataset

__all__ = [
    "ColumnKind",
    "ColumnProfile",
    "DatasetLoader",
    "DatasetSpec",
    "Filter",
    "LoadedDataset",
    "MemoryBudget",
    "PathDataset",
    "RowsDataset",
    "TableDataset",
    "UploadedDataset",
]
