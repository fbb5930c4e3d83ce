"""Pure ASGI middleware: request context and access log, request body limits, strict JSON.

Pure ASGI (not ``BaseHTTPMiddleware``) so the route runs in the same task: context variables the
authentication dependency binds (``tenant``) are visible to the access log line.
"""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from typing import Any

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlworker.api.metrics import ApiMetrics
from mlworker.api.problems import problem

log = structlog.get_logger("mlworker.access")


class RequestContextMiddleware:
    """Bind a request id, log one line per request, record request metrics; never drop a 500.

    An exception no handler mapped becomes a 500 problem+json *here*, inside the server's own
    error middleware: Starlette's ``ServerErrorMiddleware`` would answer and then re-raise, and
    uvicorn closes a connection whose application raised, without ``Connection: close``, so the
    client's next keep-alive request failed. Caught here, the connection stays usable.
    """

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:100] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status = 499  # the client left while sending its body: nobody to answer
        except Exception as exc:
            if response_started:
                raise  # half an answer is on the wire: only closing the connection is honest
            log.error("unhandled error", exc_info=exc, path=scope["path"])
            response = problem(
                500,
                "internal_error",
                "Internal error",
                "an unexpected error occurred; it has been logged",
                instance=scope["path"],
            )
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(scope["method"], route, status, elapsed)
            if route not in ("/metrics", "/health", "/health/ready"):
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over a limit with 413, counting bytes as they arrive.

    A declared ``Content-Length`` over the limit is refused before the body is read; a chunked
    body is cut off the moment it passes the limit, whatever the route was doing with it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        upload_limit: int,
        upload_paths: tuple[str, ...] = ("/datasets",),
    ) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "POST" and scope["path"] in self.upload_paths
        limit = self.upload_limit if is_upload else self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        exceeded = False
        app_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal app_started
            if exceeded and not app_started:
                return  # the route's own reaction to the cut-off body is replaced by our 413
            app_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not app_started:
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"request body exceeds the limit of {limit} bytes",
            instance=scope["path"],
            limit_bytes=limit,
        )
        await response(scope, receive, send)


class _Rejected:
    """Stands in, in a parsed document, for a number JSON does not have."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _finite_float(text: str) -> float | _Rejected:
    value = float(text)
    return value if math.isfinite(value) else _Rejected(text)


def _float_sized_int(text: str) -> int | _Rejected:
    # Every number ends up a float64 somewhere (a feature column, a score); one past its range
    # would become infinite there. Compared exactly, without converting.
    value = int(text)
    return value if abs(value) <= sys.float_info.max else _Rejected(text)


# What can make Python's json module accept a body RFC 8259 forbids, or decode it into values
# the rest of the service cannot hold: the constants Infinity/-Infinity/NaN, \\u escapes (lone
# surrogates), and numbers that overflow a float (1e400: an exponent of three digits or more, or
# a run of 309 digits). Digits are mapped to "0" and exponent markers to "e", so two substring
# searches find the overflow candidates at memory speed (a regular expression took 3x longer).
def _number_shape_table() -> bytes:
    table = bytearray(b" " * 256)
    for digit in b"0123456789":
        table[digit] = ord("0")
    table[ord("e")] = table[ord("E")] = ord("e")
    table[ord("+")] = ord("+")
    return bytes(table)


_NUMBER_SHAPE = _number_shape_table()
_DIGIT_RUN = b"0" * 309


def _might_be_suspect(body: bytes) -> bool:
    if b"\\u" in body or b"Infinity" in body or b"NaN" in body:
        return True
    shape = body.translate(_NUMBER_SHAPE)
    return b"e000" in shape or b"e+000" in shape or _DIGIT_RUN in shape


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_invalid(document: Any) -> tuple[str, str] | None:
    """Return ``(field path, message)`` of the first value JSON cannot carry, in document order."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        where = ".".join(path) or "body"
        if isinstance(value, _Rejected):
            shown = value.text if len(value.text) <= 40 else value.text[:37] + "..."
            return where, f"{shown} is not a JSON number (only finite numbers are accepted)"
        if isinstance(value, str):
            if _has_surrogate(value):
                return where, "string contains a lone UTF-16 surrogate (\\ud800-\\udfff)"
        elif isinstance(value, dict):
            for key in value:
                if _has_surrogate(key):
                    return where, "object key contains a lone UTF-16 surrogate"
            stack.extend((path + (str(key),), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(
                (path + (str(index),), item) for index, item in reversed(list(enumerate(value)))
            )
    return None


def invalid_json_value(body: bytes) -> tuple[str, str] | None:
    r"""Find a non-finite number or a lone surrogate in a JSON body.

    Returns ``(field path, message)`` for the first one, ``None`` when the body holds none or is
    not JSON at all (FastAPI answers syntax errors itself). A cheap byte scan decides whether the
    body needs a second, strict parse, so ordinary bodies cost next to nothing.

    Examples
    --------
    >>> invalid_json_value(b'{"rows": [{"x": 1.5}, {"x": Infinity}]}')[0]
    'rows.1.x'
    >>> invalid_json_value(b'{"offers": [{"id": "\\ud800"}]}')[0]
    'offers.0.id'
    >>> invalid_json_value(b'{"limit": 1e400}')[0]
    'limit'
    >>> invalid_json_value(b'{"n": -1' + b"0" * 400 + b'}')[0]
    'n'
    >>> invalid_json_value(b'{"name": "NaN", "smile": "\\ud83d\\ude00", "x": 1e30}') is None
    True
    """
    if not _might_be_suspect(body):
        return None
    try:
        document = json.loads(
            body, parse_constant=_Rejected, parse_float=_finite_float, parse_int=_float_sized_int
        )
    except (ValueError, RecursionError):
        return None
    return _first_invalid(document)


class StrictJSONMiddleware:
    """Refuse JSON request bodies holding ``Infinity``/``NaN``/overflowing numbers or surrogates.

    Python's ``json`` module accepts these; no JSON client should send them and no code behind
    the API can hold them (a lone surrogate cannot be encoded, a non-finite number breaks NumPy,
    the database and JSON answers). One check for every route with a JSON body: 422 problem+json
    naming the field, before any route or service sees the body.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"").lower()
        media_type = content_type.split(b";", 1)[0].strip()
        # FastAPI parses a body as JSON only when it says so (strict content type).
        if not (media_type == b"application/json" or media_type.endswith(b"+json")):
            await self.app(scope, receive, send)
            return
        pending: list[Message] = []
        size = 0
        complete = False
        while True:
            message = await receive()
            pending.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the route sees the disconnect
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
            if size > self.limit:
                break  # no JSON route takes a body this large (upload route): not buffered
        if complete:
            body = b"".join(message.get("body", b"") for message in pending)
            found = invalid_json_value(body)
            if found is not None:
                field, message_text = found
                response = problem(
                    422,
                    "validation_error",
                    "Validation failed",
                    f"{field}: {message_text}",
                    field=field,
                    instance=scope["path"],
                    errors=[{"field": field, "message": message_text}],
                )
                await response(scope, receive, send)
                return
            pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay, send)
