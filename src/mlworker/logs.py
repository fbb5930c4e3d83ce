"""Structured logging: JSON lines (or a readable console in a terminal), one pipeline for all.

structlog's context variables carry ``job_id``, ``tenant`` and ``request_id``; the job wrapper
and the request middleware bind them, so every line written while a job or request runs, ours or
a library's (uvicorn, Celery, SQLAlchemy through the standard library), names them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from mlworker.config import Settings

_NOISY = (
    "uvicorn.access",
    "httpx",
    "httpcore",
    "alembic.runtime.migration",
    "celery.worker.strategy",
    "kombu",
    "amqp",
)


def _final_processors(log_format: str) -> list[Any]:
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    if use_console:
        return [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]


def configure_logging(settings: Settings) -> None:
    """Route structlog and standard-library logging through one renderer on stderr."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_final_processors(settings.log_format),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "celery"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
