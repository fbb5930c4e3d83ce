"""Admission control: bounded execution, a bounded FIFO queue, the rest shed with ``503``.

Without it every request that reaches the server is accepted and waits for a thread: under 500
requests in flight the threads contend for the interpreter, each answer takes seconds, and
``/health`` waits behind the backlog. Admitting only as many requests as the process can run
well keeps throughput at its closed-loop maximum; a short queue absorbs bursts; beyond it a
client learns within milliseconds, with ``Retry-After``, when to come back (ARCHITECTURE.md §7.8).

Health, metrics and the API documentation bypass admission: a liveness probe must answer however
busy the scoring routes are. Uploads have slots of their own: an upload holds its slot while the
client sends the file, which takes as long as the client's network does, and two slow uploads
in the shared slots would shut scoring out for minutes. Their parse is bounded by the
process-wide memory pool besides (``data/budget.py``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from contextvars import ContextVar

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from mlworker.api.problems import problem

#: Paths never queued or shed (probes, scrapes, documentation).
EXEMPT_PATHS = frozenset(
    {"/health", "/health/ready", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc"}
    | {"/openapi.json"}
)
#: Weight of the newest request in the moving average of slot time.
SERVICE_SMOOTHING = 0.05
#: Fraction of the queue wait that the queue is sized to fill at the measured service rate.
QUEUE_MARGIN = 0.5
#: Threads kept free of admitted work for exempt routes that run in the thread pool (/metrics).
THREADPOOL_RESERVE = 8


def is_exempt(path: str) -> bool:
    """Whether ``path`` bypasses admission (the seed text clients' ``{prefix}/health`` too).

    Examples
    --------
    >>> is_exempt("/health/ready"), is_exempt("/ml/health"), is_exempt("/api/v1/score")
    (True, True, False)
    """
    return path in EXEMPT_PATHS or path.endswith("/health")


class AdmissionController:
    """Admission slots: ``max_concurrent`` holders, ``max_queued`` FIFO waiters of ``max_wait`` s.

    Used from one event loop only, so plain counters need no lock. A released slot passes
    straight to the oldest waiter, so a newcomer never overtakes the queue.

    Parameters
    ----------
    max_concurrent
        Requests executing at once.
    max_queued
        Requests waiting for a slot; one more is refused at once.
    max_wait
        Seconds a request waits in the queue before it is refused.
    """

    def __init__(self, *, max_concurrent: int, max_queued: int, max_wait: float) -> None:
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.max_wait = max_wait
        self.active = 0
        #: Moving average of how long an admitted request holds its slot (seconds).
        self.service_seconds = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._waiters)

    async def acquire(self) -> bool:
        """Take a slot, queueing if needed; ``False`` when refused (queue full, waited out)."""
        if self.active < self.max_concurrent and not self._waiters:
            self.active += 1
            return True
        if len(self._waiters) >= self.queue_limit():
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait):
                await waiter
            return True
        except TimeoutError:
            self._leave(waiter)
            return False
        except asyncio.CancelledError:  # the client went away while waiting
            self._leave(waiter)
            raise

    def queue_limit(self) -> int:
        """Return how many may wait now: those whose turn is expected to come within the wait.

        A request that would only time out in the queue is refused at once instead, so a shed
        answer takes milliseconds, not the whole wait; ``max_queued`` caps it either way.
        """
        if self.max_wait <= 0:
            return 0
        if self.service_seconds <= 0:
            return self.max_queued
        # Half the wait: the estimate is an average, and a waiter at the back of a queue sized
        # for exactly the wait would time out whenever requests run a little slower.
        expected = QUEUE_MARGIN * self.max_wait * self.max_concurrent / self.service_seconds
        return min(self.max_queued, max(1, int(expected)))

    def record(self, seconds: float) -> None:
        """Fold the slot time of one finished request into :attr:`service_seconds`."""
        if self.service_seconds <= 0:
            self.service_seconds = seconds
        else:
            self.service_seconds += SERVICE_SMOOTHING * (seconds - self.service_seconds)

    def _leave(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.release()  # the slot arrived just as we gave up: pass it on
            return
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass

    def release(self) -> None:
        """Give a slot back: to the oldest waiter still waiting, else to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1


class _Slot:
    """One admitted request's hold on the controller, given back once."""

    __slots__ = ("controller", "held", "started")

    def __init__(self, controller: AdmissionController) -> None:
        self.controller = controller
        self.held = True
        self.started = time.perf_counter()

    def leave(self) -> None:
        if self.held:
            self.held = False
            self.controller.record(time.perf_counter() - self.started)
            self.controller.release()


_SLOT: ContextVar[_Slot | None] = ContextVar("mlworker_admission_slot", default=None)


def leave_admission() -> None:
    """Give the current request's slot back before it ends: it now only waits.

    For a request that waits on something outside this process, e.g. the synchronous answer of
    ``/train`` polling its job (``api/waiting.py``): holding the slot for the minutes a training
    takes would shut scoring out while the process has nothing to do. Outside an admitted
    request (exempt path, tests) this does nothing.
    """
    slot = _SLOT.get()
    if slot is not None:
        slot.leave()


class AdmissionMiddleware:
    """Pure ASGI middleware around every non-exempt HTTP request (see the module docstring).

    Parameters
    ----------
    app
        The wrapped application.
    max_concurrent, max_queued, queue_wait_seconds
        Limits of the :class:`AdmissionController`
        (``MLWORKER_MAX_CONCURRENT_REQUESTS``, ``MLWORKER_MAX_QUEUED_REQUESTS``,
        ``MLWORKER_QUEUE_WAIT_SECONDS``).
    max_concurrent_uploads
        Uploads admitted at once (``MLWORKER_MAX_CONCURRENT_UPLOADS``), in slots of their own.
    upload_paths
        Paths whose ``POST`` is an upload.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int,
        max_queued: int,
        queue_wait_seconds: float,
        max_concurrent_uploads: int = 2,
        upload_paths: tuple[str, ...] = ("/datasets",),
    ) -> None:
        self.app = app
        self.controller = AdmissionController(
            max_concurrent=max_concurrent, max_queued=max_queued, max_wait=queue_wait_seconds
        )
        # No queue: an upload that finds every upload slot taken is told at once to come back.
        self.uploads = AdmissionController(
            max_concurrent=max_concurrent_uploads, max_queued=0, max_wait=0
        )
        self.upload_paths = upload_paths
        retry_after = str(max(1, math.ceil(queue_wait_seconds)))
        # Built once: shedding must stay cheap when it is most of what the server does.
        shed = problem(
            503,
            "overloaded",
            "Overloaded",
            "the server is at capacity; retry after the number of seconds in Retry-After",
            headers={"Retry-After": retry_after},
        )
        self._shed_headers = tuple(shed.raw_headers)
        self._shed_body = bytes(shed.body)
        self._threadpool_sized = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self._threadpool_sized:
            self._size_threadpool()
        is_upload = scope["method"] == "POST" and scope["path"] in self.upload_paths
        controller = self.uploads if is_upload else self.controller
        if not await controller.acquire():
            await self._shed(send)
            return
        slot = _Slot(controller)
        token = _SLOT.set(slot)
        try:
            await self.app(scope, receive, send)
        finally:
            slot.leave()
            _SLOT.reset(token)

    def _size_threadpool(self) -> None:
        # Sync routes and dependencies run in anyio's thread pool (40 threads by default). Each
        # admitted request holds at most one thread at a time, so this many threads mean an
        # admitted request never waits for one and exempt routes always find one free.
        limiter = anyio.to_thread.current_default_thread_limiter()
        wanted = self.controller.max_concurrent + self.uploads.max_concurrent + THREADPOOL_RESERVE
        if limiter.total_tokens < wanted:
            limiter.total_tokens = wanted
        self._threadpool_sized = True

    async def _shed(self, send: Send) -> None:
        # Fresh messages: outer middleware appends its headers to the one it is given.
        headers = list(self._shed_headers)
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": self._shed_body})
