"""SIGKILL a Celery worker mid-job: the job is redelivered and completes exactly once."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlworker.main import create_app
from tests.jobs.conftest import delete_amqp_queue, drop_schema
from tests.support import (
    AMQP_URL,
    POSTGRES_URL,
    REDIS_URL,
    CeleryWorker,
    require_service,
    settings_for,
    wait_for,
)


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_sigkilled_worker_job_completes_exactly_once(broker: str, tmp_path: Path) -> None:
    broker_url = REDIS_URL if broker == "redis" else AMQP_URL
    require_service("PostgreSQL", POSTGRES_URL)
    require_service(broker, broker_url)
    schema = f"mlwt_{secrets.token_hex(4)}"
    queue = f"mlwt-{secrets.token_hex(4)}"
    settings = settings_for(
        tmp_path,
        executor="celery",
        database_url=POSTGRES_URL,
        database_schema=schema,
        broker_url=broker_url,
        queue_name=queue,
    )
    marker = f"kill-{broker}-{secrets.token_hex(3)}"
    marker_file = settings.data_root / "_diagnostics" / marker
    workers: list[CeleryWorker] = []
    try:
        with TestClient(create_app(settings)) as client:
            first = CeleryWorker(settings, tmp_path / "worker1.log", concurrency=1)
            workers.append(first)
            first.wait_ready()
            response = client.post(
                "/jobs",
                json={
                    "type": "diagnostics.sleep",
                    "params": {"seconds": 3, "steps": 30, "marker": marker},
                },
            )
            job_id = response.json()["jobId"]

            def status() -> dict:
                return client.get(f"/status/{job_id}").json()

            wait_for(lambda: status()["progress"]["fraction"] >= 0.2, timeout=30)
            first.kill()
            assert status()["status"] == "running"  # the row still says so: nobody told it

            second = CeleryWorker(settings, tmp_path / "worker2.log", concurrency=1)
            workers.append(second)
            second.wait_ready()
            done = wait_for(lambda: (s := status())["status"] == "completed" and s, timeout=90)
            assert done["attempts"] == 2
            assert done["result"]["attempt"] == 2

            # Let any redelivered or re-published copy arrive: it must not run again.
            time.sleep(settings.heartbeat_timeout_seconds + 2)
            assert status()["attempts"] == 2 and status()["status"] == "completed"
            assert marker_file.read_text().splitlines() == [f"{job_id} 2"]
    finally:
        for worker in workers:
            worker.stop()
        drop_schema(schema)
        if broker == "amqp":
            delete_amqp_queue(queue)
