"""Load any dataset spec into a profiled, fingerprinted pandas frame."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel

from mlworker.data.budget import MemoryBudget, MemoryPool
from mlworker.data.files import check_unique_columns
from mlworker.data.profile import fingerprint, profile_columns
from mlworker.data.sources.base import DatasetSource
from mlworker.data.spec import spec_kind
from mlworker.data.values import LoadedDataset

Progress = Callable[[float, str], None]


def _describe(spec: BaseModel) -> str:
    for attribute in ("path", "table", "dataset_id"):
        value = getattr(spec, attribute, None)
        if value:
            return str(value)
    return "inline rows"


class DatasetLoader:
    """Dispatch a spec to its source, then profile and fingerprint the result.

    Parameters
    ----------
    sources
        Source for each spec kind (``path``, ``table``, ``rows``, ``upload``).
    memory_budget
        Bytes one load may occupy (``MLWORKER_DATASET_MEMORY_BUDGET``).
    pool
        The process-wide pool every concurrent load reserves from (``MLWORKER_API_MEMORY_BUDGET``);
        ``None``: only the per-load budget applies.
    max_decompressed_bytes, max_compression_ratio
        Caps on what a compressed file may expand to while it streams.
    """

    def __init__(
        self,
        sources: Mapping[str, DatasetSource],
        *,
        memory_budget: int,
        pool: MemoryPool | None = None,
        max_decompressed_bytes: int | None = None,
        max_compression_ratio: float = 0.0,
    ) -> None:
        self._sources = dict(sources)
        self._memory_budget = memory_budget
        self._pool = pool
        self._max_decompressed_bytes = max_decompressed_bytes
        self._max_compression_ratio = max_compression_ratio

    def _source(self, spec: BaseModel) -> DatasetSource:
        return self._sources[spec_kind(spec)]

    def validate(self, spec: BaseModel, *, tenant: str) -> None:
        """Cheap checks at submission: paths, names, existence. No rows are read."""
        self._source(spec).validate(spec, tenant=tenant)

    def load(
        self,
        spec: BaseModel,
        *,
        tenant: str,
        progress: Progress | None = None,
        categorical_strings: bool = False,
    ) -> LoadedDataset:
        """Read, convert to pandas, profile and fingerprint the dataset ``spec`` names.

        ``categorical_strings`` turns string columns into pandas categoricals: one code per row
        instead of one Python object, for analyses of millions of rows with few distinct values.
        """
        name = _describe(spec)
        if progress:
            progress(0.0, f"reading {name}")
        budget = MemoryBudget(
            limit_bytes=self._memory_budget,
            source=name,
            pool=self._pool,
            max_decompressed_bytes=self._max_decompressed_bytes,
            max_compression_ratio=self._max_compression_ratio,
        )
        # The reservation covers the peak: Arrow data, its pandas copy and the profile.
        with budget:
            data = self._source(spec).read(spec, tenant=tenant, budget=budget)
            description = data.description
            schema = data.table.schema
            check_unique_columns(schema.names, field="dataset")
            rows = data.table.num_rows
            if progress:
                progress(0.6, f"read {rows} rows; profiling")
            frame = data.table.to_pandas(
                split_blocks=True, self_destruct=True, strings_to_categorical=categorical_strings
            )
            del data
            columns = profile_columns(frame)
        return LoadedDataset(
            frame=frame,
            columns=columns,
            row_count=rows,
            fingerprint=fingerprint(description, schema, rows),
            source=description,
        )
