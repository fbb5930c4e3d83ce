"""Load any dataset spec into a profiled, fingerprinted pandas frame."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel

from mlworker.data.budget import MemoryBudget
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
    """

    def __init__(self, sources: Mapping[str, DatasetSource], *, memory_budget: int) -> None:
        self._sources = dict(sources)
        self._memory_budget = memory_budget

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
        budget = MemoryBudget(limit_bytes=self._memory_budget, source=name)
        data = self._source(spec).read(spec, tenant=tenant, budget=budget)
        schema = data.table.schema
        rows = data.table.num_rows
        if progress:
            progress(0.6, f"read {rows} rows; profiling")
        frame = data.table.to_pandas(
            split_blocks=True, self_destruct=True, strings_to_categorical=categorical_strings
        )
        columns = profile_columns(frame)
        return LoadedDataset(
            frame=frame,
            columns=columns,
            row_count=rows,
            fingerprint=fingerprint(data.description, schema, rows),
            source=data.description,
        )
