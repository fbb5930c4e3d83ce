"""The ``dataset_profile`` job: load any dataset spec and report what it holds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from mlworker.data.spec import DatasetSpec
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type
from mlworker.services.datasets import build_loader


class ProfileParams(BaseModel):
    """Parameters of ``dataset_profile``: just the dataset."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )

    dataset: DatasetSpec


@job_type("dataset_profile", params=ProfileParams)
def profile_dataset(params: ProfileParams, context: JobContext) -> dict[str, Any]:
    """Load the dataset with the memory budget and return row count, column kinds, fingerprint."""
    loader = build_loader(context.settings, context.db)
    loaded = loader.load(params.dataset, tenant=context.tenant, progress=context.report)
    context.report(1.0, f"profiled {loaded.row_count} rows")
    return loaded.summary()
