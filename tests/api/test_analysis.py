"""``/analyze/*`` end to end: platform PostgreSQL tables and files in, job results out."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import adjusted_rand_score

from tests.api.analysis_support import creatives, customers, finished, interactions
from tests.api.conftest import assert_problem

ANALYSES = ("policy_analysis", "segmentation", "content_analysis")


@pytest.fixture
def platform_customers(postgres_url: str, pg_schema: str) -> Iterator[tuple[str, Any]]:
    """A ``ds_customers`` table in the platform database with planted segments."""
    frame, truth = customers(n=600, seed=1)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f'CREATE TABLE "{pg_schema}".ds_customers (customer_id text PRIMARY KEY, '
            "income numeric(12, 2), age double precision, orders_per_year double precision, "
            "tier text, signup_note text)"
        )
        rows = frame.assign(signup_note=None).to_dict("records")
        connection.execute(
            sa.text(
                f'INSERT INTO "{pg_schema}".ds_customers VALUES '
                "(:customer_id, :income, :age, :orders_per_year, :tier, :signup_note)"
            ),
            rows,
        )
    engine.dispose()
    yield pg_schema, dict(zip(frame["customer_id"], truth, strict=True))


@pytest.fixture
def store_schema(postgres_url: str) -> Iterator[str]:
    """A second schema for ML Worker's own tables: the platform reader never sees our schema."""
    schema = f"mlwt_store_{secrets.token_hex(4)}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield schema
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def _all_assignments(client: Any, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.get(
            f"/analyze/segments/{job_id}/assignments", params={"offset": len(items), "limit": 250}
        )
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        if len(items) >= body["total"]:
            return items


def test_health_lists_the_three_analyses(client) -> None:
    assert set(ANALYSES) <= set(client.get("/health").json()["capabilities"])


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_segments_from_a_platform_table_with_assignments_in_the_store(
    app_client, platform_customers, postgres_url, request, store
) -> None:
    schema, truth = platform_customers
    settings: dict[str, Any] = {
        "platform_database_url": postgres_url,
        "platform_tables": ("mlwt_*.*",),  # the test's own schema; bare patterns mean public
    }
    if store == "postgres":
        own = request.getfixturevalue("store_schema")
        settings.update(database_url=postgres_url, database_schema=own)
    with app_client(**settings) as client:
        response = client.post(
            "/analyze/segments",
            json={
                "tenantId": "ignored-the-key-decides",
                "dataset": {"table": "ds_customers", "schema": schema},
                "config": {"idColumn": "customer_id", "writeAssignments": "table"},
            },
        )
        assert response.status_code == 202, response.text
        submitted = response.json()
        assert submitted["type"] == "segmentation" and submitted["status"] == "queued"
        assert response.headers["Location"] == f"/status/{submitted['jobId']}"

        status = finished(client, submitted["jobId"])
        assert status["status"] == "completed", status["error"]
        result = status["result"]
        assert result["k"] == 3
        assert result["rowCount"] == 600
        excluded = {e["column"] for e in result["preprocessing"]["excluded"]}
        assert {"customer_id", "signup_note"} <= excluded
        assert sum(s["size"] for s in result["segments"]) == 600
        assert result["assignments"]["kind"] == "table"
        assert result["assignments"]["rows"] == 600
        assert result["dataset"]["source"]["table"] == "ds_customers"

        assigned = _all_assignments(client, submitted["jobId"])
        assert [a["rowNumber"] for a in assigned] == list(range(600))
        predicted = [a["clusterId"] for a in assigned]
        planted = [truth[a["rowKey"]] for a in assigned]
        assert adjusted_rand_score(planted, predicted) >= 0.9
        names = {s["clusterId"]: s["name"] for s in result["segments"]}
        assert all(a["segmentName"] == names[a["clusterId"]] for a in assigned)


def test_segments_from_parquet_write_a_parquet_file_under_the_data_root(
    client, tmp_path: Path
) -> None:
    frame, truth = customers(n=500, seed=2)
    frame.to_parquet(tmp_path / "data" / "customers.parquet")
    job = client.post(
        "/analyze/segments",
        json={
            "dataset": {"path": "customers.parquet"},
            "config": {"idColumn": "customer_id", "writeAssignments": "file", "maxClusters": 5},
        },
    ).json()
    status = finished(client, job["jobId"])
    assert status["status"] == "completed", status["error"]
    written = status["result"]["assignments"]
    assert written["kind"] == "file" and written["rows"] == 500
    assert written["path"] == f"outputs/segments/{job['jobId']}.parquet"
    # Written to the tenant's own outputs folder, never under the shared data root.
    stored = pd.read_parquet(
        tmp_path / "var" / "outputs" / "default" / "segments" / f"{job['jobId']}.parquet"
    )
    assert not list((tmp_path / "data").rglob(f"{job['jobId']}*"))
    assert list(stored["row_key"]) == list(frame["customer_id"])
    assert adjusted_rand_score(truth, stored["cluster_id"]) >= 0.9
    page = client.get(f"/analyze/segments/{job['jobId']}/assignments", params={"limit": 3}).json()
    assert [item["rowKey"] for item in page["items"]] == list(frame["customer_id"][:3])


def test_policies_from_csv_recover_the_planted_weekly_sweet_spot(client, tmp_path: Path) -> None:
    interactions().to_csv(tmp_path / "data" / "interactions.csv", index=False)
    job = client.post(
        "/analyze/policies",
        json={"dataset": {"path": "interactions.csv"}, "config": {"weeklyCap": 10}},
    ).json()
    status = finished(client, job["jobId"])
    assert status["status"] == "completed", status["error"]
    result = status["result"]
    assert result["sweetSpot"]["frequency"] == 3
    caps = [
        r["payload"]
        for r in result["recommendations"]
        if r["payload"]["ruleType"] == "frequency_cap" and "maxPerWeek" in r["payload"]["config"]
    ]
    assert caps and caps[0]["config"]["maxPerWeek"] == 3 and caps[0]["status"] == "draft"
    assert {c["channel"] for c in result["channels"]} == {"email", "sms"}


def test_content_from_csv_ranks_the_planted_word_first(client, tmp_path: Path) -> None:
    creatives().to_csv(tmp_path / "data" / "creatives.csv", index=False)
    job = client.post(
        "/analyze/content", json={"dataset": {"path": "creatives.csv"}, "config": {}}
    ).json()
    status = finished(client, job["jobId"])
    assert status["status"] == "completed", status["error"]
    top = status["result"]["featureImportance"][0]
    assert "free" in top["feature"] and top["direction"] == "+"


@pytest.mark.postgres
def test_unknown_table_and_column_are_refused_before_queuing(
    app_client, platform_customers, postgres_url
) -> None:
    schema, _ = platform_customers
    with app_client(platform_database_url=postgres_url, platform_tables=("mlwt_*.*",)) as client:
        missing = client.post(
            "/analyze/segments", json={"dataset": {"table": "ds_nope", "schema": schema}}
        )
        assert_problem(missing, 400, "unknown_table")
        column = client.post(
            "/analyze/segments",
            json={
                "dataset": {"table": "ds_customers", "schema": schema},
                "config": {"fields": ["income", "loyalty"]},
            },
        )
        assert_problem(column, 400, "unknown_column", field="config.fields.1")
        assert client.get("/jobs").json()["items"] == []


def test_bad_requests_name_the_field(client, tmp_path: Path) -> None:
    customers(n=50)[0].to_csv(tmp_path / "data" / "c.csv", index=False)
    cases = [
        ("/analyze/segments", {"dataset": {"path": "c.csv"}, "config": {"minClusters": 9}}),
        ("/analyze/segments", {"dataset": {"path": "c.csv"}, "config": {"clusters": 3}}),
        ("/analyze/policies", {"dataset": {"path": "c.csv"}, "config": {"lookbackDays": 0}}),
        ("/analyze/content", {"dataset": {"path": "c.csv"}, "config": {"target": "ctrx"}}),
        ("/analyze/content", {"config": {}}),
    ]
    for path, body in cases:
        response = client.post(path, json=body)
        problem = assert_problem(response, 422, "validation_error")
        assert problem["field"].startswith(("config", "dataset")), problem
    escape = client.post("/analyze/segments", json={"dataset": {"path": "../etc/passwd"}})
    assert_problem(escape, 400, "path_not_allowed")
    column = client.post(
        "/analyze/policies",
        json={"dataset": {"path": "c.csv"}, "config": {"customerColumn": "who"}},
    )
    assert_problem(column, 400, "unknown_column", field="config.customerColumn")


def test_failures_are_recorded_with_a_stable_code(client, tmp_path: Path) -> None:
    data = tmp_path / "data"
    customers(n=5)[0].to_csv(data / "tiny.csv", index=False)
    pd.DataFrame({"customer_id": [f"k{i}" for i in range(20)], "flat": [1] * 20}).to_csv(
        data / "flat.csv", index=False
    )
    pd.DataFrame(
        {"creativeId": ["a", "b"], "title": ["x y", "z"], "impressions": [0, 0], "clicks": [0, 0]}
    ).to_csv(data / "dark.csv", index=False)
    (data / "latin1.csv").write_bytes(
        b"creativeId,title,impressions,clicks\n"
        + b"".join(
            f"c{i},Caf\xe9 cr\xe8me offer {i % 7},{1000 + i},{i % 50}\n".encode("latin-1")
            for i in range(300)
        )
    )
    expected = {
        ("/analyze/segments", "tiny.csv"): ("not_enough_data", "config.maxClusters"),
        ("/analyze/segments", "flat.csv"): ("no_usable_columns", "config.fields"),
        ("/analyze/content", "dark.csv"): ("not_enough_data", "config.minImpressions"),
    }
    for (path, name), (code, field) in expected.items():
        job = client.post(path, json={"dataset": {"path": name}}).json()
        status = finished(client, job["jobId"])
        assert status["status"] == "failed", status
        assert status["error"]["code"] == code and status["error"]["field"] == field, status
    # Text that is not UTF-8 is read as Windows-1252 (Latin-1 exports), not a crash.
    job = client.post("/analyze/content", json={"dataset": {"path": "latin1.csv"}}).json()
    status = finished(client, job["jobId"])
    assert status["status"] == "completed", status["error"]
    assert status["result"]["creativeCount"] == 300
    assert client.get("/health").status_code == 200


def test_assignments_are_tenant_scoped(app_client, tmp_path: Path) -> None:
    keys = {"key-a": "tenant-a", "key-b": "tenant-b"}
    (tmp_path / "data").mkdir(exist_ok=True)
    customers(n=200)[0].to_csv(tmp_path / "data" / "c.csv", index=False)
    with app_client(api_keys=keys) as client:
        a = {"Authorization": "Bearer key-a"}
        b = {"Authorization": "Bearer key-b"}
        job = client.post(
            "/analyze/segments",
            json={"dataset": {"path": "c.csv"}, "config": {"writeAssignments": "table"}},
            headers=a,
        ).json()
        client.headers.update(a)
        assert finished(client, job["jobId"])["status"] == "completed"
        url = f"/analyze/segments/{job['jobId']}/assignments"
        assert client.get(url, headers=a).json()["total"] == 200
        assert_problem(client.get(url, headers=b), 404, "not_found")
