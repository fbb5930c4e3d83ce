"""Analysis jobs (``/analyze/*``): segmentation, contact-policy analysis, content analysis.

Each job is ``load → analyse → persist``: read only the columns the analysis needs (through the
same dataset loader as every job), run the domain analysis with progress, and for segmentation
write every row's segment to a Parquet file under the data root or to ``mlw_segment_assignments``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from mlworker.analysis.content import ContentConfig, analyze_content
from mlworker.analysis.content import columns_needed as content_columns
from mlworker.analysis.policies import PolicyConfig, analyze_policies
from mlworker.analysis.policies import columns_needed as policy_columns
from mlworker.analysis.segmentation import SegmentationConfig, SegmentationResult, analyze_segments
from mlworker.analysis.segmentation import columns_needed as segmentation_columns
from mlworker.data.outputs import OUTPUTS_PREFIX, TenantOutputs
from mlworker.data.spec import DatasetSpec
from mlworker.data.values import LoadedDataset
from mlworker.errors import InvalidInput, NotFound, UnknownColumn
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type
from mlworker.jobs.values import JobStatus
from mlworker.services.datasets import DatasetService, build_loader
from mlworker.services.jobs import JobService, Submission, validation_failed
from mlworker.services.outputs import write_output
from mlworker.store.segments import SegmentAssignmentRepository

Report = Callable[[float, str], None]

#: Share of a job's progress bar spent reading data; the analysis reports the rest.
_LOADING_SHARE = 0.2


class AnalysisParams(BaseModel):
    """What every analysis request carries: the dataset and the analysis ``config``.

    ``tenantId`` is accepted for compatibility with clients that send it, and ignored: the
    tenant always comes from the API key.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )

    dataset: DatasetSpec
    tenant_id: str | None = Field(None, max_length=100, exclude=True)


class SegmentationParams(AnalysisParams):
    """``POST /analyze/segments``."""

    config: SegmentationConfig = Field(default_factory=SegmentationConfig)


class PolicyParams(AnalysisParams):
    """``POST /analyze/policies``."""

    config: PolicyConfig = Field(default_factory=PolicyConfig)


class ContentParams(AnalysisParams):
    """``POST /analyze/content``."""

    config: ContentConfig = Field(default_factory=ContentConfig)


#: Job type → (parameters, the columns its config needs or ``None`` for all).
ANALYSES: dict[str, tuple[type[AnalysisParams], Callable[[Any], tuple[str, ...] | None]]] = {
    "segmentation": (SegmentationParams, segmentation_columns),
    "policy_analysis": (PolicyParams, policy_columns),
    "content_analysis": (ContentParams, content_columns),
}


def narrowed_dataset(params: AnalysisParams, job: str) -> Any:
    """Restrict the dataset spec to the columns the analysis reads (unless the client chose)."""
    spec = params.dataset
    needed = ANALYSES[job][1](getattr(params, "config"))  # noqa: B009 - each subclass has one
    if needed is None or getattr(spec, "columns", None) is not None:
        return spec
    return spec.model_copy(update={"columns": tuple(dict.fromkeys(needed))})


def config_field_of(config: BaseModel, column: str) -> str | None:
    """Name the ``config`` member (dotted, camelCase) that asked for ``column``, if any.

    Examples
    --------
    >>> config_field_of(SegmentationConfig(fields=["age", "income"]), "income")
    'config.fields.1'
    """
    for name, value in config.model_dump(by_alias=True).items():
        if value == column:
            return f"config.{name}"
        if isinstance(value, list) and column in value:
            return f"config.{name}.{value.index(column)}"
    return None


def explicit_columns(config: BaseModel) -> tuple[str, ...]:
    """Every column the client named in ``config`` (``…Column`` members, ``fields``, …).

    Examples
    --------
    >>> explicit_columns(SegmentationConfig(fields=["age"], idColumn="customer_id"))
    ('age', 'customer_id')
    """
    named: list[str] = []
    for name, value in config.model_dump(by_alias=True).items():
        if name.endswith("Column") and isinstance(value, str):
            named.append(value)
        elif name in ("fields", "textFields") and isinstance(value, list):
            named.extend(str(item) for item in value)
    return tuple(dict.fromkeys(named))


def _blame_config(exc: UnknownColumn, config: BaseModel) -> UnknownColumn:
    column = exc.extra.get("column")
    field = config_field_of(config, column) if isinstance(column, str) else None
    if field is None:
        return exc
    return UnknownColumn(f"{exc.message} (named by {field})", field=field, column=column)


def _stage(report: Report, start: float, end: float) -> Report:
    """Make a progress callback for one stage, mapping its ``[0, 1]`` onto ``[start, end]``."""

    def scaled(fraction: float, message: str = "") -> None:
        report(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return scaled


def _load(
    params: AnalysisParams, job: str, context: JobContext, *, categorical_strings: bool
) -> LoadedDataset:
    config: BaseModel = getattr(params, "config")  # noqa: B009
    loader = build_loader(context.settings, context.db)
    try:
        return loader.load(
            narrowed_dataset(params, job),
            tenant=context.tenant,
            progress=_stage(context.report, 0.0, _LOADING_SHARE),
            categorical_strings=categorical_strings,
        )
    except UnknownColumn as exc:
        raise _blame_config(exc, config) from exc


def _with_lineage(answer: dict[str, Any], loaded: LoadedDataset) -> dict[str, Any]:
    answer["dataset"] = {"fingerprint": loaded.fingerprint, "source": loaded.source}
    return answer


@job_type("segmentation", params=SegmentationParams)
def segmentation_job(params: SegmentationParams, context: JobContext) -> dict[str, Any]:
    """Segment the dataset's rows; optionally write every row's segment."""
    loaded = _load(params, "segmentation", context, categorical_strings=True)
    result = analyze_segments(
        loaded.frame, params.config, progress=_stage(context.report, _LOADING_SHARE, 0.95)
    )
    answer = _with_lineage(result.to_dict(), loaded)
    if params.config.write_assignments != "none":
        context.report(0.95, f"writing {loaded.row_count} assignments")
        answer["assignments"] = write_assignments(
            result, loaded.frame, params.config, context=context
        )
    context.report(1.0, f"{result.to_dict()['k']} segments")
    return answer


def write_assignments(
    result: SegmentationResult,
    frame: pd.DataFrame,
    config: SegmentationConfig,
    *,
    context: JobContext,
) -> dict[str, Any]:
    """Write each row's segment to a Parquet file or the store; return where it went."""
    labels = result.labels
    names = [result.segment_names[int(label)] for label in labels.tolist()]
    id_column = config.id_column
    if config.write_assignments == "file":
        table = pd.DataFrame({"row_number": range(len(labels))})
        table["row_key"] = frame[id_column].to_numpy() if id_column is not None else None
        table["cluster_id"] = labels
        table["segment_name"] = names
        relative = write_output(
            table,
            settings=context.settings,
            tenant=context.tenant,
            kind="segments",
            file_name=f"{context.job_id}.parquet",
        )
        return {
            "kind": "file",
            "path": relative,
            "rows": len(labels),
            "format": "parquet",
            "url": f"/analyze/segments/{context.job_id}/assignments",
        }
    keys = None
    if id_column is not None:
        values = frame[id_column]
        keys = [None if pd.isna(v) else str(v)[:255] for v in values.tolist()]
    written = SegmentAssignmentRepository(context.db).replace(
        job_id=context.job_id,
        tenant=context.tenant,
        cluster_ids=labels.tolist(),
        segment_names=names,
        row_keys=keys,
    )
    return {
        "kind": "table",
        "table": "mlw_segment_assignments",
        "jobId": context.job_id,
        "rows": written,
        "url": f"/analyze/segments/{context.job_id}/assignments",
    }


@job_type("policy_analysis", params=PolicyParams)
def policy_analysis_job(params: PolicyParams, context: JobContext) -> dict[str, Any]:
    """Analyse contact frequency and response; recommend contact policies."""
    loaded = _load(params, "policy_analysis", context, categorical_strings=True)
    result = analyze_policies(
        loaded.frame, params.config, progress=_stage(context.report, _LOADING_SHARE, 1.0)
    )
    context.report(1.0, "policy analysis done")
    return _with_lineage(result.to_dict(), loaded)


@job_type("content_analysis", params=ContentParams)
def content_analysis_job(params: ContentParams, context: JobContext) -> dict[str, Any]:
    """Rank what drives the creatives' performance; per-creative comparisons and insights."""
    loaded = _load(params, "content_analysis", context, categorical_strings=False)
    result = analyze_content(
        loaded.frame, params.config, progress=_stage(context.report, _LOADING_SHARE, 1.0)
    )
    context.report(1.0, "content analysis done")
    return _with_lineage(result.to_dict(), loaded)


class AnalysisService:
    """Submit analysis jobs and read what they wrote."""

    def __init__(
        self,
        *,
        jobs: JobService,
        datasets: DatasetService,
        assignments: SegmentAssignmentRepository,
    ) -> None:
        self._jobs = jobs
        self._datasets = datasets
        self._assignments = assignments

    def submit(
        self,
        job: str,
        body: Mapping[str, Any],
        *,
        tenant: str,
        idempotency_key: str | None = None,
    ) -> Submission:
        """Validate an analysis request (columns included) and queue its job.

        Raises
        ------
        InvalidInput
            Invalid config, unknown table, or a column the config names that the dataset lacks
            (the error names the config field).
        """
        params_class = ANALYSES[job][0]
        try:
            params = params_class.model_validate(dict(body))
        except ValidationError as exc:
            raise validation_failed(exc, prefix="") from exc
        config: BaseModel = getattr(params, "config")  # noqa: B009
        checked = narrowed_dataset(params, job)
        named = explicit_columns(config)
        if checked is params.dataset and named and getattr(checked, "columns", None) is None:
            checked = checked.model_copy(update={"columns": named})
        if checked is not params.dataset:
            try:
                self._datasets.validate(checked, tenant=tenant)
            except UnknownColumn as exc:
                raise _blame_config(exc, config) from exc
        return self._jobs.submit(
            tenant=tenant,
            job_type=job,
            params=params,
            idempotency_key=idempotency_key,
            field_prefix="",
        )

    def assignments(
        self,
        job_id: str,
        *,
        tenant: str,
        offset: int,
        limit: int,
        data_root: Path,
        outputs: Path,
    ) -> dict[str, Any]:
        """Return a page of a segmentation job's assignments, from the table or its file.

        The file is read from the tenant's own outputs folder (``outputs``); results of
        earlier versions name a path under ``data_root``, which the job's own tenant check
        (the job was found for this tenant) makes safe to read.
        """
        job = self._jobs.get(job_id, tenant=tenant)
        if job.type != "segmentation":
            raise NotFound(f"job {job_id!r} is not a segmentation job", field="jobId")
        if job.status is not JobStatus.COMPLETED:
            raise InvalidInput(
                f"job {job_id!r} is {job.status.value}; assignments exist once it completes",
                field="jobId",
            )
        written = (job.result or {}).get("assignments")
        if not written:
            raise NotFound(
                f"job {job_id!r} did not write assignments (writeAssignments was 'none')",
                field="jobId",
            )
        total = int(written["rows"])
        if written["kind"] == "table":
            rows = [
                {
                    "rowNumber": a.row_number,
                    "rowKey": a.row_key,
                    "clusterId": a.cluster_id,
                    "segmentName": a.segment_name,
                }
                for a in self._assignments.page(
                    job_id=job_id, tenant=tenant, offset=offset, limit=limit
                )
            ]
        else:
            table = pq.read_table(
                _assignments_file(
                    written["path"], tenant=tenant, data_root=data_root, outputs=outputs
                )
            ).slice(offset, limit)
            rows = [
                {
                    "rowNumber": row["row_number"],
                    "rowKey": None if row["row_key"] is None else str(row["row_key"]),
                    "clusterId": row["cluster_id"],
                    "segmentName": row["segment_name"],
                }
                for row in table.to_pylist()
            ]
        return {"jobId": job_id, "total": total, "offset": offset, "items": rows}


def _assignments_file(path: str, *, tenant: str, data_root: Path, outputs: Path) -> Path:
    """Locate the assignments file a segmentation result names (for this tenant only)."""
    prefix = f"{OUTPUTS_PREFIX}/"
    if not path.startswith(prefix):  # a result written before MLWORKER_OUTPUTS existed
        return data_root / path
    return TenantOutputs(outputs).resolve(tenant, path.removeprefix(prefix), field="jobId")
