"""The datasets API through the real app: uploads, profiles as jobs, and every refusal."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.support import free_port, live_server

SettingsFactory = Callable[..., Settings]

CUSTOMERS_CSV = (
    "customerId,plan,churned,signup,totalCharges,review\n"
    "1,gold,Yes,2024-01-03,29.85,the delivery arrived two days late and damaged\n"
    "2,silver,No,2024-02-11, ,great product and friendly support staff overall\n"
    "3,gold,No,2024-03-01T10:00:00,108.15,never answered my three emails about billing\n"
    "4,bronze,Yes,2024-04-20,1840.75,okay value for the money but slow shipping times\n"
)
EXPECTED_KINDS = {
    "customerId": "numeric",
    "plan": "categorical",
    "churned": "boolean",
    "signup": "datetime",
    "totalCharges": "numeric",
    "review": "text",
}
DATASET_ID = re.compile(r"^ds-[0-9a-f]{12}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def open_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def upload(
    client: TestClient,
    content: bytes,
    filename: str = "customers.csv",
    headers: dict[str, str] | None = None,
    **form: str,
) -> httpx.Response:
    return client.post(
        "/datasets",
        files={"file": (filename, content, "application/octet-stream")},
        data=form or None,
        headers=headers,
    )


def wait_for_job(
    client: TestClient, job_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = client.get(f"/status/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        time.sleep(0.05)


def profile(
    client: TestClient, dataset: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.post("/datasets/profile", json={"dataset": dataset}, headers=headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["type"] == "dataset_profile"
    assert response.headers["location"] == f"/status/{body['jobId']}"
    return wait_for_job(client, body["jobId"], headers)


def kinds(columns: list[dict[str, Any]]) -> dict[str, str]:
    return {column["name"]: column["kind"] for column in columns}


def stored_files(settings: Settings) -> list[Path]:
    root = Path(settings.artifacts)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def job_count(client: TestClient, headers: dict[str, str] | None = None) -> int:
    response = client.get("/jobs", headers=headers)
    assert response.status_code == 200
    return len(response.json()["items"])


# --- uploads -------------------------------------------------------------------------------------


def test_upload_csv(client: TestClient, settings: Settings) -> None:
    response = upload(client, CUSTOMERS_CSV.encode())
    assert response.status_code == 201, response.text
    body = response.json()
    assert DATASET_ID.match(body["datasetId"])
    assert response.headers["location"] == f"/datasets/{body['datasetId']}"
    assert body["name"] == "customers.csv"
    assert body["format"] == "csv"
    assert body["rowCount"] == 4
    assert body["sizeBytes"] == len(CUSTOMERS_CSV.encode())
    assert kinds(body["columns"]) == EXPECTED_KINDS
    assert HEX64.match(body["fingerprint"])
    assert HEX64.match(body["sha256"])
    assert body["sha256"] == hashlib.sha256(CUSTOMERS_CSV.encode()).hexdigest()
    assert len(stored_files(settings)) == 1


def test_upload_parquet_and_gzip_csv(client: TestClient) -> None:
    buffer = io.BytesIO()
    pq.write_table(
        pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [True, False, None]}), buffer
    )
    response = upload(client, buffer.getvalue(), "table.parquet")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["format"] == "parquet" and body["rowCount"] == 3
    assert kinds(body["columns"]) == {"a": "numeric", "b": "categorical", "c": "boolean"}

    gz = upload(client, gzip.compress(CUSTOMERS_CSV.encode()), "customers.csv.gz")
    assert gz.status_code == 201, gz.text
    assert gz.json()["rowCount"] == 4
    assert kinds(gz.json()["columns"]) == EXPECTED_KINDS


def test_upload_with_declared_format_and_name(client: TestClient) -> None:
    response = upload(client, b"a\tb\n1\t2\n", "export.dat", format="tsv", name="Q3 export")
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Q3 export"
    assert response.json()["format"] == "tsv"
    assert [c["name"] for c in response.json()["columns"]] == ["a", "b"]


def test_upload_with_long_or_odd_file_names(client: TestClient, settings: Settings) -> None:
    long_name = "quarterly export " * 30 + ".csv.gz"
    response = upload(client, gzip.compress(b"a,b\n1,2\n"), long_name)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == long_name[:255]
    odd = upload(client, b"a\n1\n", "../../etc/C:\\fake path\\données.csv")
    assert odd.status_code == 201, odd.text
    for stored in stored_files(settings):
        assert stored.is_relative_to(Path(settings.artifacts))
        assert len(stored.name) <= 100
    job = profile(client, {"datasetId": response.json()["datasetId"]})
    assert job["status"] == "completed", job


def test_upload_with_mixed_timezone_offsets(client: TestClient) -> None:
    content = b"at\n2024-01-01T10:00:00Z\n2024-07-01T11:00:00+02:00\n2024-03-01T00:00:00-05:00\n"
    response = upload(client, content, "events.csv")
    assert response.status_code == 201, response.text
    assert kinds(response.json()["columns"]) == {"at": "datetime"}


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("garbage.csv", bytes(range(256)) * 64),
        ("binary-header.csv", b"\xff\xfe\x00\x80" * 100 + b"\n" + b"\xc3\x28abc" * 10),
        ("garbage.parquet", b"PAR1" + bytes(range(256)) * 8),
        ("fake.csv.gz", b"not gzip" * 100),
        ("empty.csv", b""),
    ],
)
def test_garbage_upload_is_refused_and_nothing_kept(
    client: TestClient, settings: Settings, filename: str, content: bytes
) -> None:
    assert_problem(upload(client, content, filename), 400, "unreadable_dataset", "file")
    assert client.get("/datasets").json()["items"] == []
    assert stored_files(settings) == []


def test_upload_of_unknown_format_is_refused(client: TestClient, settings: Settings) -> None:
    assert_problem(upload(client, b"a,b\n1,2\n", "data.bin"), 400, "invalid_input", "file")
    assert stored_files(settings) == []


def test_upload_over_memory_budget_is_refused_and_nothing_kept(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(dataset_memory_budget=2000)
    content = b"id,value\n" + b"".join(f"{i},{i}\n".encode() for i in range(2000))
    with open_client(settings) as client:
        assert_problem(upload(client, content, "big.csv"), 413, "dataset_too_large", "file")
        assert client.get("/datasets").json()["items"] == []
    assert stored_files(settings) == []


def test_upload_without_file_is_a_validation_error(client: TestClient) -> None:
    response = client.post("/datasets", data={"name": "x"})
    assert_problem(response, 422, "validation_error")


def test_get_list_delete(client: TestClient, settings: Settings) -> None:
    first = upload(client, CUSTOMERS_CSV.encode(), "one.csv").json()
    second = upload(client, b"x\n1\n2\n", "two.csv").json()
    fetched = client.get(f"/datasets/{first['datasetId']}")
    assert fetched.status_code == 200
    assert fetched.json() == first
    listed = client.get("/datasets").json()["items"]
    assert [item["datasetId"] for item in listed] == [second["datasetId"], first["datasetId"]]
    assert [i["datasetId"] for i in client.get("/datasets?limit=1").json()["items"]] == [
        second["datasetId"]
    ]
    assert len(stored_files(settings)) == 2

    deleted = client.delete(f"/datasets/{first['datasetId']}")
    assert deleted.status_code == 204
    assert_problem(client.get(f"/datasets/{first['datasetId']}"), 404, "not_found")
    assert_problem(client.delete(f"/datasets/{first['datasetId']}"), 404, "not_found")
    assert [i["datasetId"] for i in client.get("/datasets").json()["items"]] == [
        second["datasetId"]
    ]
    assert len(stored_files(settings)) == 1
    assert_problem(client.get("/datasets/ds-000000000000"), 404, "not_found")


def test_tenant_isolation(make_settings: SettingsFactory) -> None:
    settings = make_settings(api_keys={"ka": "tenant-a", "kb": "tenant-b"})
    a = {"Authorization": "Bearer ka"}
    b = {"Authorization": "Bearer kb"}
    with open_client(settings) as client:
        assert_problem(client.get("/datasets"), 401, "unauthorized")
        assert_problem(upload(client, CUSTOMERS_CSV.encode()), 401, "unauthorized")
        created = upload(client, CUSTOMERS_CSV.encode(), headers=a)
        assert created.status_code == 201, created.text
        dataset_id = created.json()["datasetId"]

        assert client.get(f"/datasets/{dataset_id}", headers=a).status_code == 200
        assert client.get("/datasets", headers=b).json()["items"] == []
        assert_problem(client.get(f"/datasets/{dataset_id}", headers=b), 404, "not_found")
        assert_problem(client.delete(f"/datasets/{dataset_id}", headers=b), 404, "not_found")
        # Tenant B cannot profile it either, and learns nothing about it.
        refused = client.post(
            "/datasets/profile", json={"dataset": {"datasetId": dataset_id}}, headers=b
        )
        assert_problem(refused, 400, "dataset_not_found", "dataset.datasetId")
        # Still there for its owner.
        assert client.get(f"/datasets/{dataset_id}", headers=a).status_code == 200
        job = profile(client, {"datasetId": dataset_id}, headers=a)
        assert job["status"] == "completed"
        assert_problem(client.get(f"/status/{job['jobId']}", headers=b), 404, "not_found")


# --- upload size limits --------------------------------------------------------------------------


def _multipart(content: bytes, boundary: str = "mlwtestboundary") -> tuple[bytes, str]:
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), boundary


BIG_CSV = b"id,text\n" + b"".join(f"{i},{'x' * 40}\n".encode() for i in range(2000))


@pytest.fixture
def small_uploads(make_settings: SettingsFactory) -> Settings:
    return make_settings(max_upload_bytes=4096)


def test_oversize_upload_with_content_length(small_uploads: Settings) -> None:
    with open_client(small_uploads) as client:
        response = upload(client, BIG_CSV, "big.csv")
        assert_problem(response, 413, "payload_too_large")
        assert client.get("/datasets").json()["items"] == []
        assert upload(client, b"a\n1\n", "small.csv").status_code == 201  # still serving
    assert len(stored_files(small_uploads)) == 1


def test_oversize_upload_chunked_without_content_length(small_uploads: Settings) -> None:
    body, boundary = _multipart(BIG_CSV)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1024):
            yield body[start : start + 1024]

    with open_client(small_uploads) as client:
        response = client.post(
            "/datasets",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "payload_too_large")
        assert client.get("/datasets").json()["items"] == []
    assert stored_files(small_uploads) == []


def test_oversize_upload_streamed_to_a_live_server(small_uploads: Settings) -> None:
    body, boundary = _multipart(BIG_CSV)
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1024):
            sent.append(start)
            yield body[start : start + 1024]

    with live_server(small_uploads) as base, httpx.Client(base_url=base, timeout=30) as http:
        response = http.post(
            "/datasets",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert_problem(response, 413, "payload_too_large")
        assert http.get("/datasets").json()["items"] == []
        small, small_boundary = _multipart(b"a\n1\n")
        ok = http.post(
            "/datasets",
            content=small,
            headers={"Content-Type": f"multipart/form-data; boundary={small_boundary}"},
        )
        assert ok.status_code == 201, ok.text
    assert len(stored_files(small_uploads)) == 1


# --- profiling jobs ------------------------------------------------------------------------------


def test_profile_a_path(client: TestClient, settings: Settings) -> None:
    (settings.data_root / "customers.csv").write_text(CUSTOMERS_CSV)
    job = profile(client, {"path": "customers.csv"})
    assert job["status"] == "completed", job
    result = job["result"]
    assert result["rowCount"] == 4
    assert kinds(result["columns"]) == EXPECTED_KINDS
    assert HEX64.match(result["fingerprint"])
    assert result["source"]["kind"] == "path"
    again = profile(client, {"path": "customers.csv"})
    assert again["result"]["fingerprint"] == result["fingerprint"]
    selected = profile(client, {"path": "customers.csv", "columns": ["plan"]})
    assert [c["name"] for c in selected["result"]["columns"]] == ["plan"]
    assert selected["result"]["fingerprint"] != result["fingerprint"]


def test_profile_a_parquet_path_in_a_subdirectory(client: TestClient, settings: Settings) -> None:
    (settings.data_root / "exports").mkdir()
    pq.write_table(pa.table({"x": [1.5, 2.5]}), settings.data_root / "exports" / "x.parquet")
    job = profile(client, {"path": "exports/x.parquet"})
    assert job["status"] == "completed", job
    assert job["result"]["rowCount"] == 2
    assert kinds(job["result"]["columns"]) == {"x": "numeric"}


def test_profile_inline_rows(client: TestClient) -> None:
    rows = [
        {"age": 31, "plan": "gold", "active": True},
        {"age": 45, "plan": "silver", "active": False},
        {"age": None, "plan": "gold"},
    ]
    job = profile(client, {"rows": rows})
    assert job["status"] == "completed", job
    assert job["result"]["rowCount"] == 3
    assert kinds(job["result"]["columns"]) == {
        "age": "numeric",
        "plan": "categorical",
        "active": "boolean",
    }
    assert HEX64.match(job["result"]["fingerprint"])


def test_profile_an_upload(client: TestClient) -> None:
    uploaded = upload(client, CUSTOMERS_CSV.encode()).json()
    for spelling in ("datasetId", "dataset_id"):
        job = profile(client, {spelling: uploaded["datasetId"]})
        assert job["status"] == "completed", job
        assert job["result"]["rowCount"] == 4
        assert kinds(job["result"]["columns"]) == EXPECTED_KINDS
        # Same bytes, same schema, same rows: the lineage key matches the upload's.
        assert job["result"]["fingerprint"] == uploaded["fingerprint"]


def test_profile_an_uploaded_gzip_csv(client: TestClient) -> None:
    uploaded = upload(client, gzip.compress(CUSTOMERS_CSV.encode()), "c.csv.gz").json()
    job = profile(client, {"datasetId": uploaded["datasetId"], "columns": ["plan"]})
    assert job["status"] == "completed", job
    assert job["result"]["rowCount"] == 4


@pytest.fixture
def platform_table(postgres_url: str, pg_schema: str) -> str:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f'CREATE TABLE "{pg_schema}".ds_customers ("customerId" integer PRIMARY KEY, '
                'plan text, "monthlyCharges" numeric(8, 2), churned boolean, '
                '"signedUpAt" timestamptz)'
            )
            connection.execute(
                sa.text(f'INSERT INTO "{pg_schema}".ds_customers VALUES (:i, :p, :m, :c, :s)'),
                [
                    {
                        "i": i,
                        "p": ["gold", "silver"][i % 2],
                        "m": 10 + i,
                        "c": i % 3 == 0,
                        "s": f"2024-01-{i + 1:02d}T00:00:00Z",
                    }
                    for i in range(6)
                ],
            )
            connection.exec_driver_sql(f'CREATE TABLE "{pg_schema}".mlw_jobs (id text)')
    finally:
        engine.dispose()
    return pg_schema


@pytest.fixture
def platform_client(
    make_settings: SettingsFactory, postgres_url: str, platform_table: str
) -> Iterator[TestClient]:
    # The tables live in the test's own schema; a bare pattern reaches the default one only.
    settings = make_settings(platform_database_url=postgres_url, platform_tables=("mlwt_*.*",))
    with open_client(settings) as client:
        yield client


def test_profile_a_postgres_table(platform_client: TestClient, platform_table: str) -> None:
    job = profile(platform_client, {"table": "ds_customers", "schema": platform_table})
    assert job["status"] == "completed", job
    result = job["result"]
    assert result["rowCount"] == 6
    assert kinds(result["columns"]) == {
        "customerId": "numeric",
        "plan": "categorical",
        "monthlyCharges": "numeric",
        "churned": "boolean",
        "signedUpAt": "datetime",
    }
    assert HEX64.match(result["fingerprint"])
    filtered = profile(
        platform_client,
        {
            "table": "ds_customers",
            "schema": platform_table,
            "columns": ["customerId", "plan"],
            "filters": [{"column": "plan", "op": "=", "value": "gold"}],
        },
    )
    assert filtered["status"] == "completed", filtered
    assert filtered["result"]["rowCount"] == 3
    assert filtered["result"]["fingerprint"] != result["fingerprint"]


def test_unknown_table_and_columns_are_refused_at_submission(
    platform_client: TestClient, platform_table: str
) -> None:
    def submit(dataset: dict[str, Any]) -> httpx.Response:
        return platform_client.post("/datasets/profile", json={"dataset": dataset})

    assert_problem(
        submit({"table": "ds_missing", "schema": platform_table}),
        400,
        "unknown_table",
        "dataset.table",
    )
    assert_problem(
        submit({"table": "mlw_jobs", "schema": platform_table}),
        400,
        "unknown_table",
        "dataset.table",
    )
    assert_problem(
        submit({"table": "ds_x; DROP TABLE ds_customers", "schema": platform_table}),
        400,
        "unknown_table",
        "dataset.table",
    )
    body = assert_problem(
        submit({"table": "ds_customers", "schema": platform_table, "columns": ["salary"]}),
        400,
        "unknown_column",
        "dataset.columns",
    )
    assert body["column"] == "salary"
    assert_problem(
        submit(
            {
                "table": "ds_customers",
                "schema": platform_table,
                "filters": [{"column": "customerid", "op": "=", "value": 1}],
            }
        ),
        400,
        "unknown_column",
        "dataset.filters.0.column",
    )
    assert job_count(platform_client) == 0


def test_platform_database_outage_is_503_at_submission(make_settings: SettingsFactory) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    with open_client(make_settings(platform_database_url=url)) as client:
        response = client.post("/datasets/profile", json={"dataset": {"table": "ds_customers"}})
        assert_problem(response, 503, "database_unavailable")
        assert response.headers["retry-after"]
        assert job_count(client) == 0
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["../secret.csv", "../../etc/passwd", "nested/../../secret.csv", "ABSOLUTE", "link.csv"],
)
def test_paths_escaping_the_root_are_refused_at_submission(
    client: TestClient, settings: Settings, path: str
) -> None:
    secret = settings.data_root.parent / "secret.csv"
    secret.write_text("password\nhunter2\n")
    (settings.data_root / "nested").mkdir(exist_ok=True)
    (settings.data_root / "link.csv").symlink_to(secret)
    path = str(secret) if path == "ABSOLUTE" else path
    response = client.post("/datasets/profile", json={"dataset": {"path": path}})
    body = assert_problem(response, 400, "path_not_allowed", "dataset.path")
    assert "hunter2" not in response.text
    assert body["instance"] == "/datasets/profile"
    assert job_count(client) == 0


@pytest.mark.parametrize(
    "url", ["http://x/a.csv", "file:///etc/passwd", "s3://b/k.csv", "//host/share/a.csv"]
)
def test_urls_are_refused_at_submission(client: TestClient, url: str) -> None:
    response = client.post("/datasets/profile", json={"dataset": {"path": url}})
    assert_problem(response, 400, "path_not_allowed", "dataset.path")
    assert job_count(client) == 0


def test_other_submission_refusals(client: TestClient, settings: Settings) -> None:
    def submit(dataset: object) -> httpx.Response:
        return client.post("/datasets/profile", json={"dataset": dataset})

    assert_problem(submit({"path": "missing.csv"}), 400, "dataset_not_found", "dataset.path")
    (settings.data_root / "c.csv").write_text(CUSTOMERS_CSV)
    body = assert_problem(
        submit({"path": "c.csv", "columns": ["nope"]}), 400, "unknown_column", "dataset.columns"
    )
    assert "nope" in body["detail"]
    (settings.data_root / "broken.parquet").write_bytes(b"nope")
    assert_problem(
        submit({"path": "broken.parquet", "columns": ["a"]}),
        400,
        "unreadable_dataset",
        "dataset.path",
    )
    assert_problem(
        submit({"rows": [{"a": 1}], "columns": ["b"]}), 400, "unknown_column", "dataset.columns"
    )
    assert_problem(
        submit({"rows": [{"a": {"nested": 1}}]}), 400, "invalid_input", "dataset.rows.0.a"
    )
    assert_problem(
        submit({"datasetId": "ds-000000000000"}), 400, "dataset_not_found", "dataset.datasetId"
    )
    assert_problem(submit({"path": "c.csv", "table": "t"}), 422, "validation_error")
    assert_problem(submit({"path": "c.csv", "sql": "select 1"}), 422, "validation_error")
    assert_problem(
        client.post("/datasets/profile", json={"dataset": {"path": "c.csv"}, "extra": 1}),
        422,
        "validation_error",
    )
    assert job_count(client) == 0


def test_dataset_over_memory_budget_fails_the_job_and_server_keeps_serving(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(dataset_memory_budget=20_000)
    with (settings.data_root / "big.csv").open("w") as handle:
        handle.write("id,segment\n")
        handle.writelines(f"{i},segment-{i % 7}\n" for i in range(20_000))
    (settings.data_root / "small.csv").write_text("id\n1\n2\n")
    with open_client(settings) as client:
        job = profile(client, {"path": "big.csv"})
        assert job["status"] == "failed"
        assert job["error"]["code"] == "dataset_too_large"
        assert "MLWORKER_DATASET_MEMORY_BUDGET" in job["error"]["message"]
        assert job["result"] is None
        assert client.get("/health").status_code == 200
        assert profile(client, {"path": "small.csv"})["status"] == "completed"
        rows = [{"text": "x" * 200} for _ in range(200)]
        assert profile(client, {"rows": rows})["error"]["code"] == "dataset_too_large"
