"""The embedded process pool: time limits, orderly shutdown, recovery after a server crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from mlworker.main import create_app
from tests.support import free_port, settings_env, settings_for, wait_for


def test_job_past_its_time_limit_is_killed_and_failed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, executor="local", job_time_limit_seconds=1.5)
    with TestClient(create_app(settings)) as client:
        job_id = client.post(
            "/jobs", json={"type": "diagnostics.sleep", "params": {"seconds": 30, "steps": 300}}
        ).json()["jobId"]
        started = time.monotonic()
        done = wait_for(
            lambda: (j := client.get(f"/status/{job_id}").json())["status"] == "failed" and j,
            timeout=30,
        )
        assert time.monotonic() - started < 15
        assert done["error"]["code"] == "time_limit"
        assert done["attempts"] == 1  # a time limit is not retried
        quick = client.post("/jobs", json={"type": "diagnostics.noop"}).json()["jobId"]
        wait_for(lambda: client.get(f"/status/{quick}").json()["status"] == "completed")


def test_orderly_shutdown_requeues_running_jobs_without_counting(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, executor="local")
    with TestClient(create_app(settings)) as client:
        job_id = client.post(
            "/jobs", json={"type": "diagnostics.sleep", "params": {"seconds": 3, "steps": 30}}
        ).json()["jobId"]
        wait_for(lambda: client.get(f"/status/{job_id}").json()["status"] == "running")
    with TestClient(create_app(settings)) as client:
        job = client.get(f"/status/{job_id}").json()
        assert job["status"] in ("queued", "running")
        done = wait_for(
            lambda: (j := client.get(f"/status/{job_id}").json())["status"] == "completed" and j,
            timeout=60,
        )
        assert done["attempts"] == 1


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent, the fork server, may not have reaped it).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _serve(settings_environment: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_environment, "ML_WORKER_PORT": str(port)}
    return subprocess.Popen(
        [sys.executable, "-m", "mlworker", "serve"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_jobs_of_a_killed_server_are_recovered_on_restart(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, executor="local", workers=1)
    environment = settings_env(settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(environment, port, tmp_path / "server1.log")
    try:
        wait_for(lambda: _healthy(url), timeout=60, interval=0.2)
        running = httpx.post(
            f"{url}/jobs",
            json={"type": "diagnostics.sleep", "params": {"seconds": 3, "steps": 30}},
        ).json()["jobId"]
        waiting = httpx.post(f"{url}/jobs", json={"type": "diagnostics.noop"}).json()["jobId"]
        job = wait_for(
            lambda: (j := httpx.get(f"{url}/status/{running}").json())["status"] == "running" and j
        )
        assert httpx.get(f"{url}/status/{waiting}").json()["status"] == "queued"
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()

    # The pool process that held the job notices its server is gone and exits on its own.
    import sqlalchemy as sa

    engine = sa.create_engine(settings.database_url)
    with engine.connect() as connection:
        worker_id = connection.execute(
            sa.text("SELECT worker_id FROM mlw_jobs WHERE id = :id"), {"id": running}
        ).scalar_one()
    engine.dispose()
    child_pid = int(worker_id.rsplit(":", 1)[1])
    wait_for(lambda: not _pid_alive(child_pid), timeout=10, interval=0.1)
    assert job["attempts"] == 1

    restarted = _serve(environment, port, tmp_path / "server2.log")
    try:
        wait_for(lambda: _healthy(url), timeout=60, interval=0.2)
        recovered = wait_for(
            lambda: (
                (j := httpx.get(f"{url}/status/{running}").json())["status"] == "completed" and j
            ),
            timeout=60,
        )
        assert recovered["attempts"] == 2
        left_behind = wait_for(
            lambda: (
                (j := httpx.get(f"{url}/status/{waiting}").json())["status"] == "completed" and j
            ),
            timeout=30,
        )
        assert left_behind["attempts"] == 1
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
