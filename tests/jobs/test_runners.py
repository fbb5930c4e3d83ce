"""The runner contract: every runner gives the same job semantics.

Runs against the inline runner, the local process pool (SQLite), and Celery over Redis and over
RabbitMQ (PostgreSQL store, a real ``mlworker worker`` process).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa

from tests.jobs.conftest import Deployment
from tests.support import live_server, wait_for


def test_job_completes_with_progress_and_timestamps(deployment: Deployment) -> None:
    job_id = deployment.submit("diagnostics.sleep", {"seconds": 2.0, "steps": 20})
    running = wait_for(
        lambda: (
            (job := deployment.status(job_id))["status"] == "running"
            and 0 < job["progress"]["fraction"] < 1
            and job
        ),
        timeout=30,
    )
    assert running["progress"]["message"].startswith("step ")
    assert running["startedAt"] is not None and running["finishedAt"] is None
    done = deployment.wait_finished(job_id)
    assert done["status"] == "completed", done
    assert done["result"] == {"slept": 2.0, "steps": 20, "attempt": 1}
    assert done["attempts"] == 1 and done["error"] is None
    assert done["progress"]["fraction"] == 1.0
    assert done["createdAt"] <= done["startedAt"] <= done["finishedAt"]


def test_failing_job_records_why(deployment: Deployment) -> None:
    job_id = deployment.submit("diagnostics.sleep", {"seconds": 0, "fail_with": "bad column"})
    done = deployment.wait_finished(job_id)
    assert done["status"] == "failed"
    assert done["error"] == {
        "code": "invalid_input",
        "message": "bad column",
        "field": "params.fail_with",
    }
    assert deployment.client.get("/health").status_code == 200


def test_cancel_running_job_stops_it(deployment: Deployment) -> None:
    job_id = deployment.submit("diagnostics.sleep", {"seconds": 60, "steps": 600})
    wait_for(lambda: deployment.status(job_id)["status"] == "running", timeout=30)
    response = deployment.client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] in ("running", "cancelled")
    done = deployment.wait_finished(job_id, timeout=15)
    assert done["status"] == "cancelled"
    assert done["error"]["code"] == "cancelled"
    again = deployment.client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "job_not_cancellable"


def test_cancel_queued_job_never_runs(deployment: Deployment) -> None:
    blockers = [
        deployment.submit("diagnostics.sleep", {"seconds": 60, "steps": 600})
        for _ in range(deployment.settings.workers)
    ]
    for blocker in blockers:
        wait_for(lambda b=blocker: deployment.status(b)["status"] == "running", timeout=30)
    queued = deployment.submit("diagnostics.sleep", {"seconds": 0})
    assert deployment.status(queued)["status"] == "queued"
    response = deployment.client.post(f"/jobs/{queued}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    for blocker in blockers:
        deployment.client.post(f"/jobs/{blocker}/cancel")
    for blocker in blockers:
        assert deployment.wait_finished(blocker, timeout=15)["status"] == "cancelled"
    final = deployment.status(queued)
    assert final["status"] == "cancelled" and final["attempts"] == 0 and final["startedAt"] is None


def test_crashed_process_is_retried(deployment: Deployment) -> None:
    if deployment.kind == "inline":
        pytest.skip("inline jobs share the test process; a crash would end the test run")
    job_id = deployment.submit("diagnostics.sleep", {"seconds": 0.2, "crash_on_attempts": 1})
    done = deployment.wait_finished(job_id, timeout=60)
    assert done["status"] == "completed", done
    assert done["attempts"] == 2 and done["result"]["attempt"] == 2
    assert deployment.client.get("/health").status_code == 200


def test_job_crashing_every_time_fails_with_worker_lost(deployment: Deployment) -> None:
    if deployment.kind == "inline":
        pytest.skip("inline jobs share the test process; a crash would end the test run")
    job_id = deployment.submit("diagnostics.sleep", {"seconds": 0, "crash_on_attempts": 99})
    done = deployment.wait_finished(job_id, timeout=90)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "worker_lost"
    assert done["attempts"] == deployment.settings.job_max_attempts
    # The server and the runner keep working.
    assert deployment.wait_finished(deployment.submit("diagnostics.noop"))["status"] == "completed"


def test_thousand_concurrent_jobs_all_complete_exactly_once(deployment: Deployment) -> None:
    """1,000 submissions at once over real HTTP: none lost, none duplicated."""
    settings = deployment.settings
    with live_server(settings) as url:

        async def submit(client: httpx.AsyncClient, key: str) -> httpx.Response:
            # A careful client sends an Idempotency-Key and repeats the request when the
            # connection drops before the answer, or after Retry-After when the server sheds
            # load (503 overloaded): the key must still give one job.
            for attempt in range(60):
                try:
                    response = await client.post(
                        "/jobs", json={"type": "diagnostics.noop"}, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    if attempt >= 2:
                        raise
                    continue
                if response.status_code != 503:
                    return response
                await asyncio.sleep(float(response.headers["retry-after"]))
            raise AssertionError(f"{key}: still shed after 60 tries")

        async def submit_all() -> list[str]:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
                responses = await asyncio.gather(
                    *(submit(client, f"burst-{n:04d}") for n in range(1000))
                )
            assert {r.status_code for r in responses} <= {200, 202}
            return [r.json()["jobId"] for r in responses]

        job_ids = asyncio.run(submit_all())
        assert len(set(job_ids)) == 1000

        engine = sa.create_engine(
            settings.database_url,
            connect_args=(
                {"options": f"-csearch_path={settings.database_schema}"}
                if settings.database_schema
                else {}
            ),
        )

        def finished() -> bool:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.text("SELECT status, attempts FROM mlw_jobs WHERE id IN :ids").bindparams(
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": job_ids},
                ).all()
            return len(rows) == 1000 and all(status == "completed" for status, _ in rows)

        wait_for(finished, timeout=240, interval=0.5)
        with engine.connect() as connection:
            attempts = (
                connection.execute(
                    sa.text("SELECT attempts FROM mlw_jobs WHERE id IN :ids").bindparams(
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": job_ids},
                )
                .scalars()
                .all()
            )
        engine.dispose()
        assert sorted(set(attempts)) == [1]  # each ran once: nothing lost, nothing repeated
