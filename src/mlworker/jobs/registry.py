"""Job types: a name, a frozen parameter model and one top-level function.

A job function is ``load → compute → persist``; it receives its validated parameters and a
:class:`~mlworker.jobs.context.JobContext` and returns a JSON-serialisable result. Status
transitions, heartbeats, retries, time limits and logging are the wrapper's business
(:mod:`mlworker.jobs.execution`), never the function's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mlworker.errors import InvalidInput

if TYPE_CHECKING:
    from mlworker.jobs.context import JobContext

JobFunction = Callable[[Any, "JobContext"], Mapping[str, Any]]

#: Modules that declare job types; imported by every process that runs or submits jobs.
JOB_MODULES: tuple[str, ...] = (
    "mlworker.services.diagnostics",
    "mlworker.services.dataset_jobs",
    "mlworker.services.training",
    "mlworker.services.models",
    "mlworker.services.tuning",
    "mlworker.services.search_workers",
    "mlworker.services.analysis",
    "mlworker.services.algorithm_training",
)


@dataclass(frozen=True, slots=True)
class JobType:
    """A declared kind of job.

    Attributes
    ----------
    name
        Stable identifier stored on the job row (``segmentation``, ``train`` …).
    func
        Top-level function ``func(params, context) -> result``.
    params
        Frozen pydantic model the parameters are validated against at submission.
    max_attempts
        Attempts allowed when a worker is lost; ``None`` uses the configured default.
    check
        Runs at submission after schema validation: checks what a schema cannot (an
        algorithm's real hyperparameters) and may return normalised parameters.
    diagnostic
        Job types used only by tests and benchmarks; refused unless enabled in settings.
    """

    name: str
    func: JobFunction
    params: type[BaseModel]
    max_attempts: int | None = None
    diagnostic: bool = False
    check: Callable[[Any], Any] | None = None


JOB_TYPES: dict[str, JobType] = {}


def job_type(
    name: str,
    *,
    params: type[BaseModel],
    max_attempts: int | None = None,
    diagnostic: bool = False,
    check: Callable[[Any], Any] | None = None,
) -> Callable[[JobFunction], JobFunction]:
    """Register the decorated top-level function as job type ``name``.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class EchoParams(BaseModel):
    ...     text: str
    >>> @job_type("doc.echo", params=EchoParams, diagnostic=True)
    ... def echo(params, context):
    ...     return {"text": params.text}
    >>> JOB_TYPES["doc.echo"].params is EchoParams
    True
    """

    def register(func: JobFunction) -> JobFunction:
        existing = JOB_TYPES.get(name)
        # The same function imported again (a module reloaded) may re-register; another may not.
        if existing is not None and _qualified(existing.func) != _qualified(func):
            raise ValueError(f"job type {name!r} is declared twice")
        JOB_TYPES[name] = JobType(
            name=name,
            func=func,
            params=params,
            max_attempts=max_attempts,
            diagnostic=diagnostic,
            check=check,
        )
        return func

    return register


def _qualified(func: JobFunction) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def load_job_types() -> Mapping[str, JobType]:
    """Import every module in :data:`JOB_MODULES` so their job types are registered."""
    for module in JOB_MODULES:
        importlib.import_module(module)
    return JOB_TYPES


def get_job_type(name: str, *, allow_diagnostic: bool) -> JobType:
    """Look up a job type by name for submission or execution.

    Raises
    ------
    InvalidInput
        Unknown type, or a diagnostic type while those are disabled.
    """
    load_job_types()
    declared = JOB_TYPES.get(name)
    if declared is None or (declared.diagnostic and not allow_diagnostic):
        known = sorted(n for n, t in JOB_TYPES.items() if allow_diagnostic or not t.diagnostic)
        raise InvalidInput(f"unknown job type {name!r}; known: {', '.join(known)}", field="type")
    return declared
