"""Dataset sources, one module per way of naming data; the loader maps spec kinds to them."""

from mlworker.data.sources.base import DatasetSource
from mlworker.data.sources.path import PathSource
from mlworker.data.sources.rows import RowsSource
from mlworker.data.sources.table import PlatformCatalog, TableDescription, TableQuery, TableSource
from mlworker.data.sources.upload import StoredUpload, UploadSource, UploadStore

__all__ = [
    "DatasetSource",
    "PathSource",
    "PlatformCatalog",
    "RowsSource",
    "StoredUpload",
    "TableDescription",
    "TableQuery",
    "TableSource",
    "UploadSource",
    "UploadStore",
]
