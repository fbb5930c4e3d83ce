"""Error hygiene at the API edge (issue 10, defects 8 and 10).

- After an unexpected error the keep-alive connection stays usable: the 500 is answered inside
  the app, so uvicorn does not drop the connection (the next request used to fail).
- Every error carries the request id, in the ``X-Request-ID`` header and as ``requestId``.
- Non-finite numbers and lone surrogates in any JSON body are refused with 422 naming the field.
- With API keys set, the API documentation needs a key too (Bearer, or Basic for browsers).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request

from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.security.live_server import LiveServer
from tests.support import settings_for

KEY = "contract-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _app(root: Path, **overrides: Any) -> Any:
    app = create_app(settings_for(root, api_keys={KEY: "tenant-a"}, **overrides))

    @app.get("/test/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug nobody mapped to an error")

    @app.get("/test/peer", include_in_schema=False)
    def peer(request: Request) -> dict[str, Any]:
        assert request.client is not None
        return {"port": request.client.port}

    return app


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = _app(tmp_path_factory.mktemp("contract"), max_request_bytes=4096)
    with LiveServer(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=base_url, limits=limits, trust_env=False, timeout=30) as started:
        yield started


def _peer_port(client: httpx.Client) -> int:
    answer = client.get("/test/peer")
    assert answer.status_code == 200
    return int(answer.json()["port"])


def test_a_500_keeps_the_keep_alive_connection_usable(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    port = _peer_port(client)
    answer = client.get("/test/boom", headers={"X-Request-ID": "req-500"})
    body = assert_problem(answer, 500, "internal_error")
    assert "connection" not in answer.headers or answer.headers["connection"] != "close"
    assert answer.headers["x-request-id"] == "req-500" and body["requestId"] == "req-500"
    assert "nobody mapped" not in answer.text  # no internals reach the client
    # The same TCP connection answers the next request (uvicorn used to close it silently).
    assert _peer_port(client) == port
    logged = [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "unhandled error"
    ]
    assert len(logged) == 1 and logged[0]["request_id"] == "req-500"
    assert isinstance(logged[0]["exc_info"], RuntimeError)  # rendered with its traceback
    assert logged[0]["exc_info"].__traceback__ is not None


def test_a_413_keeps_the_connection_usable_or_says_close(client: httpx.Client) -> None:
    port = _peer_port(client)
    answer = client.post("/api/v1/score", content=b"[" + b"1," * 4096 + b"1]", headers=AUTH)
    assert_problem(answer, 413, "payload_too_large")
    if answer.headers.get("connection") != "close":
        assert _peer_port(client) == port


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code"),
    [
        ("GET", "/jobs", {}, None, 401, "unauthorized"),
        ("GET", "/status/no-such-job", AUTH, None, 404, "not_found"),
        ("GET", "/jobs?limit=-1", AUTH, None, 422, "validation_error"),
        ("POST", "/api/v1/score", AUTH, {"offers": []}, 422, "validation_error"),
        ("POST", "/api/v1/score", AUTH, {"customerId": "x" * 5000}, 413, "payload_too_large"),
    ],
)
def test_every_error_carries_the_request_id(
    client: httpx.Client,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    status: int,
    code: str,
) -> None:
    answer = client.request(method, path, headers=headers, json=body)
    problem = assert_problem(answer, status, code)
    assert problem["requestId"] == answer.headers["x-request-id"] != ""
    echoed = client.request(method, path, headers={**headers, "X-Request-ID": "abc"}, json=body)
    assert echoed.headers["x-request-id"] == "abc" and echoed.json()["requestId"] == "abc"


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (
            "/api/v1/score",
            b'{"customerId": "c", "offers": [{"offerId": "o", "priority": Infinity}]}',
            "offers.0.priority",
        ),
        (
            "/api/v1/score",
            b'{"customerId": "c", "propensitySmoothingWeight": NaN}',
            "propensitySmoothingWeight",
        ),
        ("/api/v1/score", b'{"customerId": "c", "seed": -Infinity}', "seed"),
        (
            "/api/v1/score",
            b'{"customerId": "c", "modelMaturityThreshold": 1e400}',
            "modelMaturityThreshold",
        ),
        ("/api/v1/score", b'{"customerId": "\\ud800", "offers": []}', "customerId"),
        ("/api/v1/score", b'{"customerAttributes": {"\\udfff": 1}}', "customerAttributes"),
        ("/model/m/predict", b'{"rows": [{"x": 1.0}, {"x": Infinity}]}', "rows.1.x"),
        ("/model/m/predict", b'{"rows": [{"text": "ok \\udc00"}]}', "rows.0.text"),
        ("/api/v1/outcomes", b'{"outcomes": [{"value": NaN}]}', "outcomes.0.value"),
        ("/train", b'{"dataset": {"rows": [{"y": Infinity}]}}', "dataset.rows.0.y"),
    ],
)
def test_non_finite_numbers_and_lone_surrogates_are_refused_naming_the_field(
    client: httpx.Client, path: str, raw: bytes, field: str
) -> None:
    answer = client.post(path, content=raw, headers={**AUTH, "Content-Type": "application/json"})
    problem = assert_problem(answer, 422, "validation_error", field=field)
    assert problem["errors"][0]["field"] == field
    assert problem["requestId"] == answer.headers["x-request-id"]


def test_look_alikes_of_refused_values_pass_through(client: httpx.Client) -> None:
    raw = (
        '{"customerId": "NaN Infinity \\ud83d\\ude00 \\u00e9", "offers": [],'
        ' "propensitySmoothingWeight": 1e30}'
    )
    answer = client.post(
        "/api/v1/score", content=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    # Whatever the scoring route makes of it, the strict-JSON check did not object.
    assert answer.status_code != 500
    assert answer.status_code != 422 or answer.json().get("field") not in (
        "customerId",
        "propensitySmoothingWeight",
    )


DOCS = ["/openapi.json", "/docs", "/redoc"]


@pytest.mark.parametrize("path", DOCS)
def test_docs_need_the_api_key_when_keys_are_set(client: httpx.Client, path: str) -> None:
    refused = client.get(path)
    assert_problem(refused, 401, "unauthorized")
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200
    basic = base64.b64encode(f"anyone:{KEY}".encode()).decode()
    assert client.get(path, headers={"Authorization": f"Basic {basic}"}).status_code == 200
    wrong = base64.b64encode(b"anyone:nope").decode()
    assert client.get(path, headers={"Authorization": f"Basic {wrong}"}).status_code == 401


@pytest.mark.parametrize("overrides", [{"public_docs": True}, {"api_keys": {}}])
def test_docs_are_open_when_public_or_without_keys(
    tmp_path: Path, overrides: dict[str, Any]
) -> None:
    from fastapi.testclient import TestClient

    settings = settings_for(tmp_path, **{"api_keys": {KEY: "tenant-a"}, **overrides})
    with TestClient(create_app(settings)) as open_client:
        for path in DOCS:
            assert open_client.get(path).status_code == 200


def test_the_document_describes_problem_answers_on_every_operation(client: httpx.Client) -> None:
    document = client.get("/openapi.json", headers=AUTH).json()
    assert "Problem" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            errors = {code for code in operation["responses"] if code[0] in "45"}
            assert "500" in errors, (method, path)
            for code in errors:
                content = operation["responses"][code]["content"]
                assert list(content) == ["application/problem+json"], (method, path, code)
            if not path.startswith(("/health", "/metrics")):
                assert {"401", "503"} <= errors, (method, path)
                assert operation["security"], (method, path)
    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_a_chunked_body_is_checked_whole(client: httpx.Client) -> None:
    chunks = [b'{"customerId": "c", "offers": [', b'{"id": "o", "priority": NaN}]}']
    answer = client.post(
        "/api/v1/score",
        content=iter(chunks),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert_problem(answer, 422, "validation_error", field="offers.0.priority")
