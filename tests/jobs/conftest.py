"""One running ML Worker (app + executors) per runner kind, shared by a test module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.support import (
    AMQP_URL,
    POSTGRES_URL,
    REDIS_URL,
    CeleryWorker,
    require_service,
    settings_for,
    wait_for,
)

RUNNER_KINDS = ["inline", "local", "celery-redis", "celery-amqp"]
FINISHED = {"completed", "failed", "cancelled"}


@dataclass
class Deployment:
    """A started app (TestClient) and, for Celery, its worker process."""

    kind: str
    settings: Settings
    client: TestClient
    worker: CeleryWorker | None = None

    def submit(self, job_type: str, params: dict[str, Any] | None = None, **headers: str) -> str:
        response = self.client.post(
            "/jobs", json={"type": job_type, "params": params or {}}, headers=headers
        )
        assert response.status_code == 202, response.text
        return str(response.json()["jobId"])

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/status/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_finished(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        return dict(
            wait_for(
                lambda: (job := self.status(job_id))["status"] in FINISHED and job,
                timeout=timeout,
                interval=0.1,
            )
        )


@pytest.fixture(scope="module", params=RUNNER_KINDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    if not kind.startswith("celery"):
        settings = settings_for(root, executor=kind)
        with TestClient(create_app(settings)) as client:
            yield Deployment(kind, settings, client)
        return
    broker = REDIS_URL if kind == "celery-redis" else AMQP_URL
    require_service("PostgreSQL", POSTGRES_URL)
    require_service("Redis" if kind == "celery-redis" else "RabbitMQ", broker)
    schema = f"mlwt_{secrets.token_hex(4)}"
    queue = f"mlwt-{secrets.token_hex(4)}"
    settings = settings_for(
        root,
        executor="celery",
        database_url=POSTGRES_URL,
        database_schema=schema,
        broker_url=broker,
        queue_name=queue,
    )
    worker = None
    try:
        with TestClient(create_app(settings)) as client:
            worker = CeleryWorker(settings, root / "worker.log", concurrency=2)
            worker.wait_ready()
            yield Deployment(kind, settings, client, worker)
    finally:
        if worker is not None:
            worker.stop()
        drop_schema(schema)
        if kind == "celery-amqp":
            delete_amqp_queue(queue)


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def delete_amqp_queue(queue: str) -> None:
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=2) as connection:
            connection.default_channel.queue_delete(queue)
    except Exception:
        pass
