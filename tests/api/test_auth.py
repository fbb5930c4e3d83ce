"""API keys and tenant scoping: 401 without a key, 404 (never 403) across tenants."""

from __future__ import annotations

from tests.api.conftest import assert_problem

KEYS = {"key-a": "tenant-a", "key-b": "tenant-b"}
A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}


def test_every_endpoint_but_health_and_metrics_needs_a_key(app_client) -> None:
    with app_client(api_keys=KEYS) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health/ready").status_code == 200
        assert client.get("/metrics").status_code == 200
        for method, path in [
            ("GET", "/jobs"),
            ("POST", "/jobs"),
            ("GET", "/status/job-0000000000000000"),
            ("POST", "/jobs/job-0000000000000000/cancel"),
            ("GET", "/datasets"),
            ("POST", "/datasets/profile"),
        ]:
            response = client.request(method, path)
            assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/jobs", headers={"Authorization": "Bearer nope"})
        assert_problem(wrong, 401, "unauthorized")
        basic = client.get("/jobs", headers={"Authorization": "Basic a2V5LWE6"})
        assert_problem(basic, 401, "unauthorized")
        for path in ("/openapi.json", "/docs", "/redoc"):
            refused = client.get(path)
            assert_problem(refused, 401, "unauthorized")
            assert refused.headers["www-authenticate"].startswith("Basic")  # a browser prompts
            assert client.get(path, headers=A).status_code == 200


def test_records_are_scoped_to_the_key_tenant(app_client) -> None:
    with app_client(api_keys=KEYS) as client:
        job_id = client.post("/jobs", json={"type": "diagnostics.noop"}, headers=A).json()["jobId"]
        assert client.get(f"/status/{job_id}", headers=A).status_code == 200
        assert_problem(client.get(f"/status/{job_id}", headers=B), 404, "not_found")
        assert_problem(client.post(f"/jobs/{job_id}/cancel", headers=B), 404, "not_found")
        assert client.get("/jobs", headers=B).json()["items"] == []
        assert [j["jobId"] for j in client.get("/jobs", headers=A).json()["items"]] == [job_id]


def test_idempotency_keys_are_per_tenant(app_client) -> None:
    with app_client(api_keys=KEYS) as client:
        body = {"type": "diagnostics.noop"}
        a = client.post("/jobs", json=body, headers={**A, "Idempotency-Key": "same"})
        b = client.post("/jobs", json=body, headers={**B, "Idempotency-Key": "same"})
        assert a.json()["jobId"] != b.json()["jobId"]


def test_without_keys_everyone_is_the_default_tenant(client) -> None:
    job_id = client.post("/jobs", json={"type": "diagnostics.noop"}).json()["jobId"]
    assert client.get(f"/status/{job_id}").status_code == 200
