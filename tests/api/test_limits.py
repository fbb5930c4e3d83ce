"""Request size limits and CORS defaults."""

from __future__ import annotations

from collections.abc import Iterator

from tests.api.conftest import assert_problem


def test_oversized_json_body_is_413(app_client) -> None:
    with app_client(max_request_bytes=1024) as client:
        big = {"type": "diagnostics.noop", "params": {}, "pad": "x" * 4096}
        assert_problem(client.post("/jobs", json=big), 413, "payload_too_large")


def test_oversized_chunked_body_is_413(app_client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"type": "diagnostics.noop", "pad": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    with app_client(max_request_bytes=4096) as client:
        response = client.post(
            "/jobs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")
        assert client.get("/health").status_code == 200


def test_cors_is_off_by_default(client) -> None:
    response = client.options(
        "/jobs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
    plain = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_cors_allow_list(app_client) -> None:
    with app_client(cors_origins=("https://app.example",)) as client:
        allowed = client.get("/health", headers={"Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        denied = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in denied.headers
