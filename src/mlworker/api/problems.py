"""RFC 9457 problem details: the one place errors become HTTP responses.

Every error body is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail``, a stable ``code``, ``requestId`` (the ``X-Request-ID`` of the request, to quote in a
support ticket and to find the server's log lines), and ``field`` (dotted path of the offending
input) where there is one. Validation failures also list every error under ``errors``.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlworker.errors import MLWorkerError
from mlworker.serialization import json_safe
from mlworker.validation import field_path

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


def current_request_id() -> str | None:
    """Return the id the request-context middleware bound to the current request, if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:mlworker:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    if instance is not None:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id is not None:
        body["requestId"] = request_id
    body.update(json_safe(extra))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _on_mlworker_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MLWorkerError)
    if exc.status >= 500:
        log.error("request failed", code=exc.code, detail=exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 503:
        headers = {"Retry-After": "5"}
    return problem(
        exc.status,
        exc.code,
        exc.title,
        exc.message,
        field=exc.field,
        instance=request.url.path,
        headers=headers,
        **exc.extra,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": field_path(error.get("loc", ())), "message": error.get("msg", "invalid")}
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return problem(
        422,
        "validation_error",
        "Validation failed",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        instance=request.url.path,
        errors=errors,
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    return problem(
        exc.status_code,
        code,
        title,
        str(exc.detail),
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Last resort for errors raised outside the request-context middleware, which answers every
    # other unexpected error itself so that the server keeps the connection open.
    log.error("unhandled error", exc_info=exc, path=request.url.path)
    return problem(
        500,
        "internal_error",
        "Internal error",
        "an unexpected error occurred; it has been logged",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem+json on ``app``."""
    app.add_exception_handler(MLWorkerError, _on_mlworker_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
