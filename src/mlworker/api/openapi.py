"""The OpenAPI document, and the routes that serve it (``/openapi.json``, ``/docs``, ``/redoc``).

FastAPI documents what a route returns when it succeeds. Every error ML Worker answers is an RFC
9457 problem (``api/problems.py``), produced by mechanisms shared by many routes: the API key,
request validation, the body limit and strict JSON, the error hierarchy, the admission
controller, the catch-all for bugs. So the error answers are documented here, in one pass over
the generated document, from what each operation declares: a security requirement brings 401
and 503, a body brings 400/413/422, a path parameter 404, and so on. One rule per mechanism keeps
the document true when routes are added, without a ``responses=`` list on every route.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from mlworker.api.problems import PROBLEM_MEDIA_TYPE
from mlworker.api.security import authenticate_docs

OPENAPI_URL = "/openapi.json"

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `detail` is for people.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "`urn:mlworker:problem:<code>`"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "field": {"type": "string", "description": "Dotted path of the offending input."},
        "instance": {"type": "string", "description": "Path of the request."},
        "requestId": {"type": "string", "description": "The request's `X-Request-ID`."},
        "errors": {
            "type": "array",
            "description": "Every validation error (422).",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    400: "Invalid input (`invalid_input` and its kin: `path_not_allowed`, `unknown_column`, …)",
    401: "No valid API key (`unauthorized`)",
    404: "No such record for this tenant (`not_found`)",
    409: "The request contradicts the record's state (`conflict`, `idempotency_key_reused`, …)",
    413: "Request body or dataset too large (`payload_too_large`, `dataset_too_large`)",
    422: "Validation failed (`validation_error`; every error under `errors`)",
    500: "Unexpected server error (`internal_error`; quote `requestId`)",
    503: "Overloaded or a dependency is down (`overloaded`, `database_unavailable`, …); "
    "retry after `Retry-After` seconds",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    503: {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}},
}

#: Statuses no declaration reveals: a create that collides with a unique key, a body that names
#: a record (an outcome's model, the study a training links to).
_EXTRA_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/v1/algorithm-models"): (409,),
    ("post", "/api/v1/outcomes"): (404,),
    ("post", "/train"): (404,),
}

#: Successful answers that are not JSON, which a ``response_class=Response`` route leaves blank.
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_SUCCESS_MEDIA_TYPES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/metrics"): {"text/plain": {"schema": {"type": "string"}}},
    # format=zip is the portable bundle; skops, joblib and onnx are single binary files.
    ("get", "/model/{model_id}/artifact"): {
        "application/zip": _BINARY,
        "application/octet-stream": _BINARY,
    },
}

_WRITES = ("post", "put", "delete", "patch")


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith(("Id", "_id", "Ids", "_ids"))


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """Return the error statuses one operation can answer, from what it declares.

    Examples
    --------
    >>> sorted(error_statuses("get", "/health", {}))
    [500]
    >>> sorted(error_statuses("delete", "/jobs/{job_id}", {
    ...     "security": [{"HTTPBearer": []}],
    ...     "parameters": [{"in": "path", "name": "job_id"}],
    ... }))
    [400, 401, 404, 409, 422, 500, 503]
    """
    statuses = {500}
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        statuses |= {401, 503}
    if parameters or "requestBody" in operation:
        statuses |= {400, 422}
    if "requestBody" in operation:
        statuses.add(413)
    has_path_parameter = any(parameter["in"] == "path" for parameter in parameters)
    names_a_record = any(
        parameter["in"] == "query" and _is_id(parameter["name"]) for parameter in parameters
    )
    if has_path_parameter or names_a_record:
        statuses.add(404)
    idempotent = any(
        parameter["in"] == "header" and parameter["name"].lower() == "idempotency-key"
        for parameter in parameters
    )
    if idempotent or (method in _WRITES and has_path_parameter):
        statuses.add(409)
    statuses.update(_EXTRA_STATUSES.get((method, path), ()))
    return statuses


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem schema and every operation's error answers to an OpenAPI document."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    # FastAPI's own validation-error shapes are never sent: ours is a problem.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(code) for code in responses if code[0] in "45"}
            for status in sorted(declared | error_statuses(method, path, operation)):
                answer = responses.setdefault(str(status), {})
                answer.setdefault("description", _DESCRIPTIONS.get(status, "Error"))
                if status == 422:
                    answer["description"] = _DESCRIPTIONS[422]
                answer["content"] = problem_content
                if status in _HEADERS:
                    answer["headers"] = _HEADERS[status]
            media_types = _SUCCESS_MEDIA_TYPES.get((method, path))
            if media_types is not None:
                responses["200"]["content"] = media_types
    return schema


def install_api_docs(app: FastAPI) -> None:
    """Serve the document, the Swagger UI and ReDoc, behind the API key when keys are set.

    Build the app with ``openapi_url=None, docs_url=None, redoc_url=None``: FastAPI's own
    routes for these take no dependencies.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = document_errors(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    guard = [Depends(authenticate_docs)]

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=guard)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} API")

    @app.get("/redoc", include_in_schema=False, dependencies=guard)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{app.title} API")
