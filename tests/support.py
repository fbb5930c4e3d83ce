"""Test helpers: service checks, settings as environment, live servers, workers, a TCP proxy."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from pydantic import AliasChoices

from mlworker.config import Settings

REQUIRE_SERVICES = os.environ.get("MLWORKER_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get(
    "MLWORKER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MLWORKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("MLWORKER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Skip (or, with MLWORKER_REQUIRE_SERVICES=1, fail) when the service is unreachable."""
    parsed = urlparse(url.replace("+psycopg", ""))
    host, port = parsed.hostname or "127.0.0.1", parsed.port
    assert port is not None, url
    if not reachable(host, port):
        message = f"{name} is not reachable at {host}:{port}"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message} and MLWORKER_REQUIRE_SERVICES=1")
        pytest.skip(message)


def settings_for(root: Path, **overrides: Any) -> Settings:
    """Settings for a test: private SQLite file, data root and artifacts under ``root``."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{root}/var/mlworker.db",
        "artifacts": str(root / "artifacts"),
        "data_root": root / "data",
        "executor": "inline",
        "workers": 2,
        "diagnostic_jobs": True,
        "heartbeat_seconds": 0.5,
        "heartbeat_timeout_seconds": 3.0,
        "log_format": "json",
        # Inline jobs change models in the test's own process a moment before it scores them;
        # the scoring cache has its own tests.
        "scoring_cache_seconds": 0.0,
    }
    values.update(overrides)
    Path(values["data_root"]).mkdir(parents=True, exist_ok=True)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` in a subprocess."""
    env: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        variable = str(alias.choices[0])
        value: Any = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, dict):
            value = ",".join(f"{k}:{v}" for k, v in value.items())
        elif isinstance(value, tuple):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[variable] = str(value)
    return env


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Run the real app under uvicorn on a free port in a thread; yield its base URL."""
    import uvicorn

    from mlworker.main import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=60)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


class CeleryWorker:
    """A ``mlworker worker`` subprocess in its own process group."""

    def __init__(
        self, settings: Settings, log_path: Path, concurrency: int = 2, *, beat: bool = False
    ) -> None:
        self.log_path = log_path
        env = {**os.environ, **settings_env(settings), "MLWORKER_LOG_FORMAT": "json"}
        self._log = log_path.open("ab")
        command = [sys.executable, "-m", "mlworker", "worker", "--concurrency", str(concurrency)]
        self.process = subprocess.Popen(
            [*command, *(["--beat"] if beat else [])],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"celery worker exited:\n{self.log_path.read_text()[-4000:]}")
            return " ready." in self.log_path.read_text(errors="replace")

        wait_for(ready, timeout=timeout, interval=0.1)

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class TcpProxy:
    """Forward a local port to a target; ``stop()`` cuts every connection (a database outage)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)
        except (OSError, ValueError):  # ValueError: stop() closed a socket under select()
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            self._connections.clear()
