"""``POST /api/v1/score`` over HTTP: shape, smoothing table, validation, tenants, fallbacks."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from mlworker.decisioning import is_exposed
from tests.api.conftest import assert_problem

TABLE = [(0, 0.7), (10, 0.629), (25, 0.575), (100, 0.5), (500, 0.462)]


def create_scorecard(client: Any, key: str, score: float, headers: Any = None) -> dict[str, Any]:
    response = client.post(
        "/api/v1/algorithm-models",
        json={
            "key": key,
            "name": key,
            "modelType": "scorecard",
            "config": {"baseScore": score * 100, "normalization": "linear"},
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_smoothing_table_and_response_shape(client) -> None:
    create_scorecard(client, "m045", 0.45)
    response = client.post(
        "/api/v1/score",
        json={
            "customerId": "cust-1",
            "customerAttributes": {"tier": "gold"},
            "offers": [{"id": f"o{n}", "priority": 70, "interactions": n} for n, _ in TABLE],
            "resolution": {"defaultModel": "m045"},
            "date": "2026-11-22",
            "seed": 7,
        },
        headers={"X-Request-ID": "req-42"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customerId"] == "cust-1" and body["seed"] == 7
    assert body["requestId"] == "req-42"
    assert [(row["offerId"], round(row["score"], 3)) for row in body["scores"]] == [
        (f"o{n}", expected) for n, expected in TABLE
    ]
    first = body["scores"][0]
    assert set(first) == {
        "offerId",
        "score",
        "modelScore",
        "source",
        "modelKey",
        "modelType",
        "variant",
        "degraded",
        "evidence",
        "exposure",
        "exposed",
    }
    assert first["modelScore"] == pytest.approx(0.45) and first["modelKey"] == "m045"
    assert first["exposure"] == 0.02 and first["evidence"] == 0
    assert first["exposed"] == is_exposed("cust-1", "o0", date(2026, 11, 22), 0.02)


def test_unexposed_offers_are_flagged_not_dropped(client) -> None:
    create_scorecard(client, "m", 0.5)
    exposed = []
    for n in range(200):
        body = client.post(
            "/api/v1/score",
            json={
                "customerId": f"c{n}",
                "offers": [{"id": "brand-new", "interactions": 0}],
                "resolution": {"defaultModel": "m"},
            },
        ).json()
        assert len(body["scores"]) == 1
        exposed.append(body["scores"][0]["exposed"])
    assert 0 < sum(exposed) < 20  # about 2 % of customers see a brand-new offer's model


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customerId": ""}, "customerId"),
        ({"offers": [{"id": "o1", "priority": 101}]}, "offers.0.priority"),
        (
            {"offers": [{"id": "o1", "precomputedPropensity": 1.5}]},
            "offers.0.precomputedPropensity",
        ),
        ({"offers": [{"id": "o1", "interactions": -1}]}, "offers.0.interactions"),
        ({"offers": [{"id": f"o{i}"} for i in range(1001)]}, "offers"),
        (
            {
                "championChallenger": {
                    "champion": {"modelKey": "a", "weight": 80},
                    "challengers": [{"modelKey": "b", "weight": 0}],
                }
            },
            "championChallenger.challengers.0.weight",
        ),
        (
            {"championChallenger": {"champion": {"modelKey": "a", "weight": -5}}},
            "championChallenger.champion.weight",
        ),
        ({"propensitySmoothingWeight": 0}, "propensitySmoothingWeight"),
        ({"modelMaturityThreshold": -1}, "modelMaturityThreshold"),
        ({"maturity": "exponential"}, "maturity"),
        (
            {"resolution": {"overrides": [{"scope": "region", "key": "x", "modelKey": "m"}]}},
            "resolution.overrides.0.scope",
        ),
        ({"offerz": []}, "offerz"),
    ],
)
def test_invalid_requests_name_the_field(client, change: dict[str, Any], field: str) -> None:
    body = {"customerId": "c1", "offers": [{"id": "o1"}], **change}
    assert_problem(client.post("/api/v1/score", json=body), 422, "validation_error", field)


def test_duplicate_offers_are_refused(client) -> None:
    response = client.post(
        "/api/v1/score", json={"customerId": "c1", "offers": [{"id": "o1"}, {"id": "o1"}]}
    )
    problem = assert_problem(response, 422, "validation_error")
    assert "offers.1.id" in problem["detail"]


def test_models_of_another_tenant_are_not_found(app_client) -> None:
    keys = {"key-a": "tenant-a", "key-b": "tenant-b"}
    with app_client(api_keys=keys) as client:
        create_scorecard(client, "m", 0.9, headers={"Authorization": "Bearer key-a"})
        body = {
            "customerId": "c1",
            "offers": [{"id": "o1", "priority": 30}],
            "resolution": {"defaultModel": "m"},
        }
        own = client.post("/api/v1/score", json=body, headers={"Authorization": "Bearer key-a"})
        other = client.post("/api/v1/score", json=body, headers={"Authorization": "Bearer key-b"})
        assert own.json()["scores"][0]["modelScore"] == pytest.approx(0.9)
        row = other.json()["scores"][0]
        assert row["degraded"] and row["degradedReason"] == "model not found"
        assert row["score"] == pytest.approx(0.3)
        assert_problem(client.post("/api/v1/score", json=body), 401, "unauthorized")


def test_degraded_answers_and_explanations_over_http(client) -> None:
    create_scorecard(client, "m", 0.25)
    response = client.post(
        "/api/v1/score",
        json={
            "customerId": "c1",
            "offers": [
                {"id": "scored", "priority": 10, "interactions": 10**6},
                {"id": "gone", "priority": 90, "category": "x", "precomputedPropensity": 0.6},
            ],
            "resolution": {
                "defaultModel": "m",
                "overrides": [{"scope": "category", "key": "x", "modelKey": "deleted"}],
            },
            "explain": True,
        },
    )
    rows = {row["offerId"]: row for row in response.json()["scores"]}
    assert rows["gone"]["degraded"] and rows["gone"]["source"] == "precomputed"
    assert rows["gone"]["degradedReason"] == "model not found"
    assert "modelExplanation" not in rows["gone"]
    assert rows["scored"]["modelExplanation"]["engine"] == "scorecard"
    assert rows["scored"]["modelExplanation"]["score"] == pytest.approx(0.25)
