"""The execution wrapper: claim, outcome recording, fencing, cancellation, logging context."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
from pydantic import BaseModel

from mlworker.errors import DatasetTooLarge
from mlworker.jobs.context import JobContext
from mlworker.jobs.execution import execute_job
from mlworker.jobs.registry import JOB_TYPES, job_type
from mlworker.jobs.runtime import WorkerRuntime
from mlworker.jobs.values import JobError, JobStatus
from mlworker.logs import configure_logging
from mlworker.store import migrate


class _Params(BaseModel):
    value: int = 0


_gate = threading.Event()
_release = threading.Event()


@job_type("test.exec.echo", params=_Params, diagnostic=True)
def _echo(params: _Params, context: JobContext) -> dict[str, object]:
    logging.getLogger("some.library").info("library line inside a job")
    return {"value": params.value, "nan": float("nan")}


@job_type("test.exec.boom", params=_Params, diagnostic=True)
def _boom(params: _Params, context: JobContext) -> dict[str, object]:
    raise ZeroDivisionError("division by zero")


@job_type("test.exec.too_big", params=_Params, diagnostic=True)
def _too_big(params: _Params, context: JobContext) -> dict[str, object]:
    raise DatasetTooLarge("too big", field="dataset")


@job_type("test.exec.blocking", params=_Params, diagnostic=True)
def _blocking(params: _Params, context: JobContext) -> dict[str, object]:
    _gate.set()
    _release.wait(10)
    context.report(0.5, "after the gate")
    return {}


@pytest.fixture
def runtime(make_settings):
    settings = make_settings()
    runtime = WorkerRuntime.create(settings, worker_id="test:host:1")
    migrate.upgrade(runtime.db)
    yield runtime
    runtime.close()


def _submit(runtime: WorkerRuntime, job_type_name: str, params: dict | None = None) -> str:
    job, _ = runtime.jobs.create(
        tenant="acme",
        job_type=job_type_name,
        params=params or {},
        params_hash="h",
        runner="inline",
        max_attempts=3,
    )
    return job.id


def test_result_is_strict_json(runtime) -> None:
    job_id = _submit(runtime, "test.exec.echo", {"value": 3})
    assert execute_job(job_id, runtime) is JobStatus.COMPLETED
    assert runtime.jobs.get(job_id, tenant=None).result == {"value": 3, "nan": None}


def test_second_execution_of_a_finished_job_is_a_no_op(runtime) -> None:
    job_id = _submit(runtime, "test.exec.echo")
    assert execute_job(job_id, runtime) is JobStatus.COMPLETED
    assert execute_job(job_id, runtime) is None
    assert runtime.jobs.get(job_id, tenant=None).attempts == 1


def test_unexpected_exception_is_recorded_as_internal_error(runtime) -> None:
    job_id = _submit(runtime, "test.exec.boom")
    assert execute_job(job_id, runtime) is JobStatus.FAILED
    error = runtime.jobs.get(job_id, tenant=None).error
    assert error is not None and error.code == "internal_error"
    assert "ZeroDivisionError: division by zero" in error.message


def test_domain_error_keeps_its_code_and_field(runtime) -> None:
    job_id = _submit(runtime, "test.exec.too_big")
    execute_job(job_id, runtime)
    assert runtime.jobs.get(job_id, tenant=None).error == JobError(
        "dataset_too_large", "too big", "dataset"
    )


def test_invalid_stored_params_fail_cleanly(runtime) -> None:
    job_id = _submit(runtime, "test.exec.echo", {"value": "not a number"})
    assert execute_job(job_id, runtime) is JobStatus.FAILED
    error = runtime.jobs.get(job_id, tenant=None).error
    assert error is not None and error.code == "invalid_input" and error.field == "value"


def test_attempt_that_lost_its_job_writes_nothing(runtime) -> None:
    _gate.clear()
    _release.clear()
    job_id = _submit(runtime, "test.exec.blocking")
    outcome: list[JobStatus | None] = []
    thread = threading.Thread(target=lambda: outcome.append(execute_job(job_id, runtime)))
    thread.start()
    assert _gate.wait(10)
    # Meanwhile the reaper judged this attempt dead and another worker took the job.
    runtime.jobs.recover(job_id, attempt=1, error=JobError("worker_lost", "silent"))
    assert runtime.jobs.claim(job_id, worker_id="other") is not None
    _release.set()
    thread.join(10)
    assert outcome == [None]
    job = runtime.jobs.get(job_id, tenant=None)
    assert job.status is JobStatus.RUNNING and job.attempts == 2 and job.worker_id == "other"


def test_every_log_line_of_a_job_names_job_and_tenant(runtime, capsys) -> None:
    settings = runtime.settings
    configure_logging(settings)
    job_id = _submit(runtime, "test.exec.echo")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    execute_job(job_id, runtime)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert {line["event"] for line in lines} >= {
        "job started",
        "library line inside a job",
        "job ended",
    }
    for line in lines:
        assert line["job_id"] == job_id and line["tenant"] == "acme"


def test_unknown_job_type_is_refused_at_submission() -> None:
    from mlworker.errors import InvalidInput
    from mlworker.jobs.registry import get_job_type

    with pytest.raises(InvalidInput) as error:
        get_job_type("nope", allow_diagnostic=False)
    assert error.value.field == "type"
    with pytest.raises(InvalidInput):
        get_job_type("diagnostics.noop", allow_diagnostic=False)
    assert get_job_type("diagnostics.noop", allow_diagnostic=True) is JOB_TYPES["diagnostics.noop"]
