"""Diagnostic job types for tests and benchmarks (``MLWORKER_DIAGNOSTIC_JOBS=true`` only).

They exercise the machinery every real job relies on: progress, cancellation, failures, a
crashing process, and an observable side effect for exactly-once checks.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlworker.errors import InvalidInput
from mlworker.jobs.context import JobContext
from mlworker.jobs.registry import job_type


class NoopParams(BaseModel):
    """No parameters: the empty job used to measure job overhead."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SleepParams(BaseModel):
    """Sleep in steps, reporting progress; optionally fail, crash, or leave a marker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float = Field(1.0, ge=0, le=3600)
    steps: int = Field(10, ge=1, le=10_000)
    fail_with: str | None = Field(None, max_length=500)
    crash_on_attempts: int = Field(0, ge=0, le=100)
    marker: str | None = Field(None, pattern=r"^[A-Za-z0-9_\-]{1,100}$")


@job_type("diagnostics.noop", params=NoopParams, diagnostic=True)
def noop(params: NoopParams, context: JobContext) -> dict[str, Any]:
    """Do nothing."""
    return {}


@job_type("diagnostics.sleep", params=SleepParams, diagnostic=True)
def sleep(params: SleepParams, context: JobContext) -> dict[str, Any]:
    """Sleep ``seconds`` in ``steps``; crash the process while ``attempt <= crash_on_attempts``.

    With ``marker``, append ``"<job id> <attempt>"`` to ``<data root>/_diagnostics/<marker>``
    once the sleep is over: the side effect exactly-once tests count.
    """
    if context.attempt <= params.crash_on_attempts:
        os._exit(13)
    for step in range(params.steps):
        context.report(step / params.steps, f"step {step + 1} of {params.steps}")
        time.sleep(params.seconds / params.steps)
    if params.fail_with is not None:
        raise InvalidInput(params.fail_with, field="params.fail_with")
    if params.marker is not None:
        directory = context.settings.data_root / "_diagnostics"
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / params.marker, "a", encoding="utf-8") as marker:
            marker.write(f"{context.job_id} {context.attempt}\n")
    context.report(1.0, "done")
    return {"slept": params.seconds, "steps": params.steps, "attempt": context.attempt}
