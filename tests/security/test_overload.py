"""Graceful overload (issue 10, defect 7): admission control, fast probes, bounded shutdown.

The review found that 500 requests in flight collapsed throughput, that ``/health`` took up to
6 s (one probe 30 s) behind scoring work, and that SIGTERM did not stop the server within 8 s.
These tests pin the mechanisms: a bounded admission queue that sheds with ``503`` +
``Retry-After`` at once, probes that never need a thread a route holds, and a shutdown bounded
by ``MLWORKER_SHUTDOWN_GRACE_SECONDS`` that leaves a running job queued, not failed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from mlworker.api.admission import AdmissionController, AdmissionMiddleware, leave_admission
from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.support import free_port, settings_env, settings_for, wait_for


# --- the admission controller ------------------------------------------------------------------
def test_slots_pass_to_waiters_in_arrival_order_and_a_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        gate = AdmissionController(max_concurrent=1, max_queued=2, max_wait=5)
        assert await gate.acquire()
        order: list[int] = []

        async def wait(n: int) -> None:
            assert await gate.acquire()
            order.append(n)
            gate.release()

        first = asyncio.ensure_future(wait(1))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(wait(2))
        await asyncio.sleep(0)
        assert gate.queued == 2
        began = time.perf_counter()
        assert not await gate.acquire()  # the queue is full: refused without waiting
        assert time.perf_counter() - began < 0.05
        gate.release()
        await asyncio.gather(first, second)
        assert order == [1, 2]
        assert gate.active == 0 and gate.queued == 0

    asyncio.run(scenario())


def test_a_waiter_is_refused_after_the_queue_wait_and_leaves_the_queue() -> None:
    async def scenario() -> None:
        gate = AdmissionController(max_concurrent=1, max_queued=5, max_wait=0.05)
        assert await gate.acquire()
        assert not await gate.acquire()
        assert gate.queued == 0
        gate.release()
        assert gate.active == 0
        assert await gate.acquire()  # the slot is free again

    asyncio.run(scenario())


def test_the_queue_admits_only_what_is_expected_to_start_within_the_wait() -> None:
    gate = AdmissionController(max_concurrent=2, max_queued=1000, max_wait=0.5)
    assert gate.queue_limit() == 1000  # nothing measured yet: the configured bound
    for _ in range(200):
        gate.record(0.01)  # 10 ms per request, 2 at once
    assert 45 <= gate.queue_limit() <= 50  # half the wait at 200 requests/s
    assert AdmissionController(max_concurrent=2, max_queued=10, max_wait=0).queue_limit() == 0


# --- the middleware ------------------------------------------------------------------------------
class _Blocking:
    """An ASGI app whose non-health requests wait for ``release`` (a scoring burst)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/health":
            self.entered += 1
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_beyond_the_queue_requests_get_503_overloaded_with_retry_after_at_once() -> None:
    async def scenario() -> None:
        inner = _Blocking()
        app = AdmissionMiddleware(inner, max_concurrent=1, max_queued=1, queue_wait_seconds=5)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            running = asyncio.ensure_future(client.post("/api/v1/score"))
            queued = asyncio.ensure_future(client.post("/api/v1/score"))
            while inner.entered < 1:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)
            began = time.perf_counter()
            shed = await client.post("/api/v1/score")
            elapsed = time.perf_counter() - began
            health = await client.get("/health")  # probes bypass admission
            inner.release.set()
            assert (await running).status_code == 200
            assert (await queued).status_code == 200
        assert elapsed < 0.05
        assert health.status_code == 200
        body = assert_problem(shed, 503, "overloaded")
        assert shed.headers["retry-after"] == "5"
        assert "capacity" in body["detail"]

    asyncio.run(scenario())


def test_a_request_that_only_waits_gives_its_slot_back() -> None:
    """A synchronous ``/train`` polls its job for minutes: it must not shut scoring out."""

    async def scenario() -> None:
        finished = asyncio.Event()

        async def waiting_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == "/train":
                leave_admission()
                await finished.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        app = AdmissionMiddleware(waiting_app, max_concurrent=1, max_queued=0, queue_wait_seconds=1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            training = asyncio.ensure_future(client.post("/train"))
            await asyncio.sleep(0.05)
            scored = await client.post("/api/v1/score")
            finished.set()
            assert (await training).status_code == 200
        assert scored.status_code == 200
        assert app.controller.active == 0

    asyncio.run(scenario())


def test_a_slow_upload_takes_an_upload_slot_not_one_scoring_needs() -> None:
    """An upload holds its slot while the client sends the file: minutes on a slow network."""

    async def scenario() -> None:
        inner = _Blocking()
        app = AdmissionMiddleware(
            inner,
            max_concurrent=1,
            max_queued=0,
            queue_wait_seconds=1,
            max_concurrent_uploads=1,
            upload_paths=("/datasets",),
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            uploading = asyncio.ensure_future(client.post("/datasets", content=b"a,b\n1,2\n"))
            while inner.entered < 1:
                await asyncio.sleep(0.001)
            second_upload = await client.post("/datasets", content=b"a,b\n1,2\n")
            scoring = asyncio.ensure_future(client.post("/api/v1/score"))
            while inner.entered < 2:
                await asyncio.sleep(0.001)
            inner.release.set()
            assert (await uploading).status_code == 200
            assert (await scoring).status_code == 200
        assert_problem(second_upload, 503, "overloaded")
        assert app.controller.active == 0 and app.uploads.active == 0

    asyncio.run(scenario())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path, max_concurrent_requests=1, max_queued_requests=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _admission(app: Any) -> AdmissionController:
    layer = app.middleware_stack
    while not isinstance(layer, AdmissionMiddleware):
        layer = layer.app
    return layer.controller


def test_the_app_sheds_scoring_but_answers_probes_when_every_slot_is_taken(client) -> None:
    client.get("/health")  # builds the middleware stack
    gate = _admission(client.app)
    assert client.portal is not None
    assert client.portal.call(gate.acquire)
    try:
        shed = client.post("/api/v1/score", json={"customerId": "c", "offers": [{"id": "o"}]})
        assert client.get("/health").status_code == 200
        assert client.get("/health/ready").status_code == 200
        assert client.get("/metrics").status_code == 200
    finally:
        client.portal.call(gate.release)
    assert_problem(shed, 503, "overloaded")
    assert shed.headers["retry-after"] == "2"  # the queue wait, 1.5 s, rounded up
    assert shed.headers["x-request-id"]
    scored = client.post("/api/v1/score", json={"customerId": "c", "offers": [{"id": "o"}]})
    assert scored.status_code == 200, scored.text


def test_probes_answer_while_every_thread_of_the_shared_pool_is_busy(client) -> None:
    """Readiness used a pool thread: behind 40 busy scoring threads it waited (6 s, 30 s)."""
    assert client.portal is not None
    holders: list[object] = []

    async def take_every_thread() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        for _ in range(int(limiter.total_tokens)):
            holders.append(object())
            await limiter.acquire_on_behalf_of(holders[-1])

    async def give_back() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        for holder in holders:
            limiter.release_on_behalf_of(holder)

    client.portal.call(take_every_thread)
    answers: dict[str, int] = {}

    def probe() -> None:
        answers["health"] = client.get("/health").status_code
        answers["ready"] = client.get("/health/ready").status_code

    prober = threading.Thread(target=probe, daemon=True)
    try:
        prober.start()
        prober.join(timeout=10)
        answered_while_busy = dict(answers)
    finally:
        client.portal.call(give_back)
        prober.join(timeout=10)
    assert answered_while_busy == {"health": 200, "ready": 200}


# --- SIGTERM under load --------------------------------------------------------------------------
def _stall_a_request(port: int) -> socket.socket:
    """Open a request whose body never arrives: uvicorn's drain would wait for it indefinitely."""
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(
        b"POST /api/v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    return stalled


def _hammer(url: str, stop: threading.Event, statuses: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
        while not stop.is_set():
            try:
                response = http.post(
                    "/api/v1/score", json={"customerId": "c", "offers": [{"id": "o"}]}
                )
                statuses.append(response.status_code)
            except httpx.HTTPError:
                return  # the server went away: what we are testing


@pytest.mark.slow
def test_sigterm_under_load_exits_within_the_grace_period_and_keeps_the_running_job(
    tmp_path: Path,
) -> None:
    grace = 5.0
    settings = settings_for(
        tmp_path, executor="local", workers=1, shutdown_grace_seconds=grace, log_format="json"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **settings_env(settings),
        "ML_WORKER_PORT": str(port),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    log_path = tmp_path / "serve.log"

    def serve() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "mlworker", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    process = serve()
    stop = threading.Event()
    stalled: socket.socket | None = None
    try:
        wait_for(healthy, timeout=90, interval=0.2)
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            job_id = http.post(
                "/jobs", json={"type": "diagnostics.sleep", "params": {"seconds": 6, "steps": 60}}
            ).json()["jobId"]
            wait_for(lambda: http.get(f"/status/{job_id}").json()["status"] == "running")
        statuses: list[int] = []
        loaders = [
            threading.Thread(target=_hammer, args=(url, stop, statuses), daemon=True)
            for _ in range(16)
        ]
        for loader in loaders:
            loader.start()
        stalled = _stall_a_request(port)
        wait_for(lambda: len(statuses) > 50, timeout=30)

        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
        took = time.monotonic() - began
    finally:
        stop.set()
        if stalled is not None:
            stalled.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    log = log_path.read_text(errors="replace")
    assert took <= grace, f"took {took:.1f} s\n{log[-3000:]}"
    assert exit_code == 0, log[-3000:]
    assert set(statuses) <= {200, 503}, statuses
    with sqlite3.connect(tmp_path / "var" / "mlworker.db") as db:
        status, attempts = db.execute(
            "SELECT status, attempts FROM mlw_jobs WHERE id = ?", (job_id,)
        ).fetchone()
    assert (status, attempts) == ("queued", 0)  # released, the attempt not counted

    process = serve()
    try:
        wait_for(healthy, timeout=90, interval=0.2)
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            done = wait_for(
                lambda: (j := http.get(f"/status/{job_id}").json())["status"] == "completed" and j,
                timeout=60,
                interval=0.2,
            )
        assert done["attempts"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
