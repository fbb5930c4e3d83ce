"""Job API: status shape, listing with cursors, cancellation, idempotency, bad input."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem
from tests.support import wait_for

STATUS_KEYS = {
    "jobId",
    "type",
    "status",
    "progress",
    "createdAt",
    "startedAt",
    "finishedAt",
    "attempts",
    "result",
    "error",
}


def _finish(client, job_id: str) -> dict:
    return wait_for(
        lambda: (
            (j := client.get(f"/status/{job_id}").json())["status"]
            in ("completed", "failed", "cancelled")
            and j
        )
    )


def test_submit_then_status_has_exactly_the_documented_shape(client) -> None:
    response = client.post("/jobs", json={"type": "diagnostics.noop"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"jobId", "status", "type"}
    assert body["status"] == "queued" and body["type"] == "diagnostics.noop"
    assert response.headers["location"] == f"/status/{body['jobId']}"
    job = _finish(client, body["jobId"])
    assert set(job) == STATUS_KEYS
    assert set(job["progress"]) == {"fraction", "message"}
    assert job["status"] == "completed" and job["result"] == {}


def test_unknown_job_is_404_problem(client) -> None:
    assert_problem(client.get("/status/job-0000000000000000"), 404, "not_found", "job_id")
    assert_problem(client.post("/jobs/job-0000000000000000/cancel"), 404, "not_found")


def test_malformed_json_is_422_naming_the_field(client) -> None:
    response = client.post(
        "/jobs",
        content=b'{"type": "diagnostics.noop",',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["field"]  # the position of the syntax error
    missing = client.post("/jobs", json={"params": {}})
    assert_problem(missing, 422, "validation_error", "type")
    wrong = client.post("/jobs", json={"type": "diagnostics.sleep", "params": {"seconds": "x"}})
    assert_problem(wrong, 422, "validation_error", "params.seconds")
    extra = client.post("/jobs", json={"type": "diagnostics.sleep", "params": {"sekonds": 1}})
    assert_problem(extra, 422, "validation_error", "params.sekonds")


def test_unknown_job_type_is_400_naming_it(client) -> None:
    body = assert_problem(client.post("/jobs", json={"type": "nope"}), 400, "invalid_input", "type")
    assert "nope" in body["detail"]


def test_diagnostic_jobs_are_refused_unless_enabled(app_client) -> None:
    with app_client(diagnostic_jobs=False) as client:
        assert_problem(
            client.post("/jobs", json={"type": "diagnostics.noop"}), 400, "invalid_input"
        )


def test_idempotency_key_returns_the_existing_job(client) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/jobs", json={"type": "diagnostics.noop"}, headers=headers)
    second = client.post("/jobs", json={"type": "diagnostics.noop"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["jobId"] == second.json()["jobId"]
    assert second.headers["idempotent-replayed"] == "true"
    different = client.post(
        "/jobs", json={"type": "diagnostics.sleep", "params": {"seconds": 0}}, headers=headers
    )
    assert_problem(different, 409, "idempotency_key_reused", "Idempotency-Key")
    assert len(client.get("/jobs").json()["items"]) == 1


def test_list_filters_and_cursor_pagination(client) -> None:
    ids = [
        client.post("/jobs", json={"type": "diagnostics.noop"}).json()["jobId"] for _ in range(5)
    ]
    failing = client.post(
        "/jobs", json={"type": "diagnostics.sleep", "params": {"seconds": 0, "fail_with": "x"}}
    ).json()["jobId"]
    for job_id in [*ids, failing]:
        _finish(client, job_id)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/jobs", params=params).json()
        seen += [job["jobId"] for job in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [failing, *reversed(ids)]
    failed = client.get("/jobs", params={"status": "failed"}).json()["items"]
    assert [job["jobId"] for job in failed] == [failing]
    by_type = client.get("/jobs", params={"type": "diagnostics.noop"}).json()["items"]
    assert len(by_type) == 5
    assert_problem(
        client.get("/jobs", params={"status": "bogus"}), 422, "validation_error", "status.0"
    )
    assert_problem(client.get("/jobs", params={"limit": 0}), 422, "validation_error", "limit")
    assert_problem(
        client.get("/jobs", params={"cursor": "garbage"}), 400, "invalid_input", "cursor"
    )


@pytest.mark.parametrize("path", ["/nope", "/status"])
def test_unknown_route_is_a_problem_too(client, path: str) -> None:
    assert_problem(client.get(path), 404, "not_found")


def test_wrong_method_is_405_problem(client) -> None:
    assert_problem(client.delete("/jobs"), 405, "method_not_allowed")


def test_openapi_docs_are_served(client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/status/{job_id}", "/jobs", "/jobs/{job_id}/cancel", "/health"} <= set(spec["paths"])


def test_field_names_carry_no_union_labels(client) -> None:
    bad_operator = {"dataset": {"table": "t", "filters": [{"column": "a", "op": "bogus"}]}}
    response = client.post("/datasets/profile", json=bad_operator)
    assert_problem(response, 422, "validation_error", "dataset.filters.0.op")
    ambiguous = client.post("/datasets/profile", json={"dataset": {"path": "a", "table": "b"}})
    assert_problem(ambiguous, 422, "validation_error", "dataset")
    generic = client.post(
        "/jobs", json={"type": "dataset_profile", "params": {"dataset": {"rows": []}}}
    )
    assert_problem(generic, 422, "validation_error", "params.dataset.rows")
