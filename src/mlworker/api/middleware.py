"""Pure ASGI middleware: request context and access log, and request body limits.

Pure ASGI (not ``BaseHTTPMiddleware``) so the route runs in the same task: context variables the
authentication dependency binds (``tenant``) are visible to the access log line.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlworker.api.metrics import ApiMetrics
from mlworker.api.problems import problem

log = structlog.get_logger("mlworker.access")


class RequestContextMiddleware:
    """Bind a request id, log one line per request, record request metrics."""

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

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
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
