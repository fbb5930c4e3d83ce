"""API fixtures: a started app behind a TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlworker.main import create_app


@pytest.fixture
def app_client(make_settings) -> Callable[..., Any]:
    """``with app_client(**settings) as client``: the real app, started, inline runner."""

    @contextmanager
    def factory(**overrides: Any) -> Iterator[TestClient]:
        with TestClient(create_app(make_settings(**overrides))) as client:
            yield client

    return factory


@pytest.fixture
def client(app_client) -> Iterator[TestClient]:
    with app_client() as started:
        yield started


def assert_problem(response: Any, status: int, code: str, field: str | None = None) -> dict:
    """The response is RFC 9457 problem+json with this status, code and field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"urn:mlworker:problem:{code}"
    assert body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return dict(body)
