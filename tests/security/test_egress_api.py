"""Issue 10, defects 1 and 2 over HTTP: create, PUT and ``POST /api/v1/score``.

The app runs with API keys set and with every proxy variable pointing at a dead loopback port
(see :mod:`tests.security.test_egress`). Only loopback listeners are ever contacted; every
other probe is refused before any connection (the audit hook records none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlworker.main import create_app
from tests.engines.scoring_server import LOOPBACK_ALLOW, ScoringServer
from tests.security.test_egress import (
    FAKE_KEY_ID,
    FAKE_TOKEN,
    PROBES,
    _dead_proxies,
    connections,
    server_aws_credentials,
)
from tests.support import free_port

__all__ = ["_dead_proxies", "server_aws_credentials"]  # fixtures, imported for pytest

BASE = "/api/v1/algorithm-models"
KEY = "egress-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SAFE_URL = "https://models.example.com/score"  # a name: saved without any lookup


@pytest.fixture
def app(make_settings: Callable[..., Any]) -> Callable[..., Any]:
    """``with app(**settings) as client``: the real app with API keys; same database each time."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[TestClient]:
        settings = make_settings(api_keys={KEY: "tenant-a"}, **overrides)
        with TestClient(create_app(settings), headers=AUTH) as client:
            yield client

    return start


@pytest.fixture
def listeners() -> Iterator[tuple[ScoringServer, ScoringServer]]:
    with ScoringServer() as four, ScoringServer(host="::1") as six:
        yield four, six


def _external(url: str, **config: Any) -> dict[str, Any]:
    return {
        "key": "ext",
        "name": "ext",
        "modelType": "external_endpoint",
        "config": {"endpointUrl": url, "timeoutMs": 2000, **config},
    }


def _score_request(explain: bool = True) -> dict[str, Any]:
    return {
        "customerId": "c1",
        "customerAttributes": {"tier": "gold"},
        "offers": [{"id": "o1", "priority": 50, "precomputedPropensity": 0.2}],
        "resolution": {"defaultModel": "ext"},
        "explain": explain,
        "seed": 1,
    }


def _assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field, response.json()


@pytest.mark.parametrize("template", PROBES)
def test_create_refuses_every_probe_without_connecting(
    app: Callable[..., Any], listeners: tuple[ScoringServer, ScoringServer], template: str
) -> None:
    four, six = listeners
    with app() as client, connections() as made:
        response = client.post(BASE, json=_external(template.format(p=four.port, p6=six.port)))
    _assert_refused(response, "config.endpointUrl")
    assert made == [] and four.accepted_connections == 0 and six.accepted_connections == 0


@pytest.mark.parametrize("template", PROBES)
def test_put_refuses_every_probe_without_connecting(
    app: Callable[..., Any], listeners: tuple[ScoringServer, ScoringServer], template: str
) -> None:
    four, six = listeners
    with app() as client:
        created = client.post(BASE, json=_external(SAFE_URL))
        assert created.status_code == 201, created.text
        body = created.json()
        body["config"]["endpointUrl"] = template.format(p=four.port, p6=six.port)
        with connections() as made:
            response = client.put(f"{BASE}/{body['id']}", json=body)
        _assert_refused(response, "config.endpointUrl")
        stored = client.get(f"{BASE}/{body['id']}").json()
    assert stored["config"]["endpointUrl"] == SAFE_URL
    assert made == [] and four.accepted_connections == 0 and six.accepted_connections == 0


def test_the_operator_allow_list_admits_a_loopback_model_server(
    app: Callable[..., Any], listeners: tuple[ScoringServer, ScoringServer]
) -> None:
    four, _ = listeners
    with app(egress_allow=LOOPBACK_ALLOW) as client:
        assert client.post(BASE, json=_external(four.url)).status_code == 201
        row = client.post("/api/v1/score", json=_score_request()).json()["scores"][0]
    assert not row["degraded"] and row["source"] == "model"
    assert four.accepted_connections >= 1 and four.request_count == 1


def test_score_never_calls_a_target_the_policy_now_denies(
    app: Callable[..., Any], listeners: tuple[ScoringServer, ScoringServer]
) -> None:
    """A model saved while loopback was allowed, scored after the operator removed it."""
    four, _ = listeners
    four.configure(
        explanations_path="internal",
        explainer=lambda instance: {"secret": "internal-answer-content"},
    )
    with app(egress_allow=LOOPBACK_ALLOW) as client:
        created = client.post(
            BASE, json=_external(four.url, responseMapping={"explanationPath": "internal"})
        )
        assert created.status_code == 201, created.text
    with app() as client, connections() as made:
        response = client.post("/api/v1/score", json=_score_request())
    assert response.status_code == 200, response.text
    row = response.json()["scores"][0]
    assert row["degraded"] and row["source"] == "precomputed"
    assert made == [] and four.accepted_connections == 0
    assert "internal-answer-content" not in response.text
    assert str(four.port) not in response.text and "127.0.0.1" not in response.text


def test_tenants_cannot_tell_open_ports_from_closed_ones(
    app: Callable[..., Any], listeners: tuple[ScoringServer, ScoringServer]
) -> None:
    four, _ = listeners
    answers = []
    for port in (four.port, free_port()):
        with app(egress_allow=LOOPBACK_ALLOW) as client:
            body = _external(f"http://127.0.0.1:{port}/invocations")
            body["key"] = body["name"] = f"ext{port}"
            assert client.post(BASE, json=body).status_code == 201
        with app() as client:
            request = _score_request()
            request["resolution"] = {"defaultModel": f"ext{port}"}
            row = client.post("/api/v1/score", json=request).json()["scores"][0]
        answers.append((row["degradedReason"], row.get("modelExplanation")))
    assert answers[0] == answers[1]
    assert answers[0][0] == "endpoint fallback: endpoint_refused_by_egress_policy"
    assert four.accepted_connections == 0


def test_network_error_text_never_reaches_the_tenant(app: Callable[..., Any]) -> None:
    """Allowed but unreachable: the tenant sees a category, not the socket error."""
    with app(egress_allow=LOOPBACK_ALLOW) as client:
        assert client.post(BASE, json=_external(f"http://127.0.0.1:{free_port()}/x")).is_success
        response = client.post("/api/v1/score", json=_score_request())
    row = response.json()["scores"][0]
    assert row["degradedReason"] == "endpoint fallback: endpoint_unreachable"
    assert "Connect" not in response.text and "refused" not in response.text.lower()


SIGV4 = {"authType": "aws_sigv4", "authConfig": {"awsRegion": "us-east-1"}}


@pytest.mark.usefixtures("server_aws_credentials")
def test_sigv4_without_keys_is_refused_on_create_and_put(
    app: Callable[..., Any], listeners: tuple[ScoringServer, ScoringServer]
) -> None:
    four, _ = listeners
    with app(egress_allow=LOOPBACK_ALLOW) as client:
        for url in (four.url, "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/x"):
            _assert_refused(client.post(BASE, json=_external(url, **SIGV4)), "config.authConfig")
        created = client.post(BASE, json=_external(four.url)).json()
        created["config"].update(SIGV4)
        _assert_refused(client.put(f"{BASE}/{created['id']}", json=created), "config.authConfig")
        client.post("/api/v1/score", json=_score_request())
    seen = repr([request.headers for request in four.requests])
    assert FAKE_KEY_ID not in seen and FAKE_TOKEN not in seen


@pytest.mark.usefixtures("server_aws_credentials")
def test_server_credentials_sign_only_for_operator_listed_hosts(
    app: Callable[..., Any], listeners: tuple[ScoringServer, ScoringServer]
) -> None:
    four, _ = listeners
    listed = {"egress_allow": LOOPBACK_ALLOW, "egress_aws_credential_hosts": "127.0.0.1"}
    with app(**listed) as client:
        assert client.post(BASE, json=_external(four.url, **SIGV4)).status_code == 201
    # The operator withdraws the listing: the stored model is never signed for again.
    with app(egress_allow=LOOPBACK_ALLOW) as client:
        row = client.post("/api/v1/score", json=_score_request()).json()["scores"][0]
    assert row["degraded"] and four.request_count == 0
    with app(**listed) as client:
        row = client.post("/api/v1/score", json=_score_request()).json()["scores"][0]
    assert not row["degraded"]
    assert f"Credential={FAKE_KEY_ID}/" in (four.requests[0].header("authorization") or "")
