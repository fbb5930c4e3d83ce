"""Health, readiness, metrics, and what the API does when its database or broker is down."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from tests.api.conftest import assert_problem
from tests.support import TcpProxy, wait_for


def test_health_is_exactly_status_and_capabilities(client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "capabilities"}
    assert body["status"] == "ok" and isinstance(body["capabilities"], list)


def test_ready_checks_database_and_runner(client) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "runner": "ok"}}


def test_metrics_expose_requests_and_jobs(client) -> None:
    job_id = client.post("/jobs", json={"type": "diagnostics.noop"}).json()["jobId"]
    wait_for(lambda: client.get(f"/status/{job_id}").json()["status"] == "completed")
    text = client.get("/metrics").text
    assert 'mlworker_jobs{status="completed",type="diagnostics.noop"} 1.0' in text
    assert "mlworker_database_up 1.0" in text
    assert 'mlworker_http_requests_total{method="POST",route="/jobs",status="202"} 1.0' in text


def _proxied(url: str, proxy: TcpProxy) -> str:
    parsed = urlparse(url)
    netloc = parsed.netloc.replace(f"{parsed.hostname}:{parsed.port}", f"127.0.0.1:{proxy.port}")
    return parsed._replace(netloc=netloc).geturl()


def test_database_outage_gives_503_and_recovers(app_client, postgres_url, pg_schema) -> None:
    parsed = urlparse(postgres_url.replace("+psycopg", ""))
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432)
    proxy.start()
    try:
        with app_client(
            database_url=_proxied(postgres_url, proxy), database_schema=pg_schema
        ) as client:
            assert client.get("/health/ready").status_code == 200
            proxy.stop()

            ready = assert_problem(client.get("/health/ready"), 503, "not_ready")
            assert ready["checks"]["database"] != "ok" and ready["checks"]["runner"] == "ok"
            submit = assert_problem(
                client.post("/jobs", json={"type": "diagnostics.noop"}), 503, "database_unavailable"
            )
            assert "database" in submit["detail"]
            assert client.get("/health").status_code == 200  # the process keeps serving
            assert "mlworker_database_up 0.0" in client.get("/metrics").text

            proxy.start()
            wait_for(lambda: client.get("/health/ready").status_code == 200, timeout=30)
            job_id = client.post("/jobs", json={"type": "diagnostics.noop"}).json()["jobId"]
            wait_for(lambda: client.get(f"/status/{job_id}").json()["status"] == "completed")
    finally:
        proxy.stop()


def test_broker_outage_gives_503_and_leaves_nothing_behind(
    app_client, redis_url, postgres_url, pg_schema, queue_name
) -> None:
    parsed = urlparse(redis_url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    proxy.start()
    try:
        with app_client(
            executor="celery",
            broker_url=_proxied(redis_url, proxy),
            queue_name=queue_name,
            database_url=postgres_url,
            database_schema=pg_schema,
        ) as client:
            accepted = client.post("/jobs", json={"type": "diagnostics.noop"})
            assert accepted.status_code == 202  # queued in the broker; no worker needed here
            proxy.stop()
            started = time.monotonic()
            body = assert_problem(
                client.post(
                    "/jobs", json={"type": "diagnostics.noop"}, headers={"Idempotency-Key": "k"}
                ),
                503,
                "broker_unavailable",
            )
            assert time.monotonic() - started < 15
            assert "nothing was queued" in body["detail"]
            ready = assert_problem(client.get("/health/ready"), 503, "not_ready")
            assert ready["checks"]["runner"] != "ok" and ready["checks"]["database"] == "ok"
            items = client.get("/jobs").json()["items"]
            assert [job["jobId"] for job in items] == [accepted.json()["jobId"]]

            proxy.start()
            retried = client.post(
                "/jobs", json={"type": "diagnostics.noop"}, headers={"Idempotency-Key": "k"}
            )
            assert retried.status_code == 202
            assert len(client.get("/jobs").json()["items"]) == 2
    finally:
        proxy.stop()


def test_broker_unreachable_from_the_start(app_client, postgres_url, pg_schema, queue_name) -> None:
    with app_client(
        executor="celery",
        broker_url="redis://127.0.0.1:1/0",
        queue_name=queue_name,
        database_url=postgres_url,
        database_schema=pg_schema,
    ) as client:
        assert_problem(
            client.post("/jobs", json={"type": "diagnostics.noop"}), 503, "broker_unavailable"
        )
        assert client.get("/jobs").json()["items"] == []
        assert client.get("/health").status_code == 200


def test_start_creates_the_data_root(make_settings, tmp_path) -> None:
    import shutil

    from fastapi.testclient import TestClient

    from mlworker.main import create_app

    root = tmp_path / "fresh" / "data"
    settings = make_settings(data_root=root)
    shutil.rmtree(root)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
    assert root.is_dir()
