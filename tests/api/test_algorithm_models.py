"""``/api/v1/algorithm-models`` end to end: CRUD, training jobs, scoring, lifecycle, advice."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlworker.store.algorithm_models import AlgorithmModelRepository
from tests.api.conftest import assert_problem
from tests.api.training_support import wait_for_job

BASE = "/api/v1/algorithm-models"
KEYS = {"key-a": "tenant-a", "key-b": "tenant-b"}
A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
#: The seed's Starbucks scorecard ("Scorecard" and "Worked Example").
STARBUCKS_RULES = [
    {"field": "reward_tier", "operator": "eq", "value": "gold", "points": 20, "description": "g"},
    {"field": "visit_frequency", "operator": "gte", "value": 3, "points": 15},
    {"field": "age", "operator": "gte", "value": 25, "points": 10},
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, app_client: Any) -> Iterator[TestClient]:
    """The app on each metadata store."""
    overrides: dict[str, Any] = {}
    if request.param == "postgres":
        overrides = {
            "database_url": request.getfixturevalue("postgres_url"),
            "database_schema": request.getfixturevalue("pg_schema"),
        }
    with app_client(**overrides) as client:
        yield client


def create(
    client: TestClient,
    key: str,
    model_type: str = "scorecard",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Any:
    response = client.post(
        BASE,
        json={"key": key, "name": key.title(), "modelType": model_type, **fields},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def promote(client: TestClient, model_id: str, to: str, **body: Any) -> Any:
    return client.post(f"{BASE}/{model_id}/promote", json={"to": to, **body})


def planted_rows(n: int, seed: int) -> pd.DataFrame:
    """Interactions where gold members and frequent visitors convert more."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["gold", "silver", "bronze"], size=n)
    visits = rng.poisson(3, size=n)
    logit = -0.8 + 1.6 * (tier == "gold") - 1.2 * (tier == "bronze") + 0.6 * (visits - 3)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "offer": rng.choice(["bogo", "stars"], size=n),
            "reward_tier": tier,
            "visit_frequency": visits,
            "converted": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


def train(client: TestClient, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{BASE}/{model_id}/train", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/status/{response.json()['jobId']}"
    return wait_for_job(client, response.json()["jobId"])


def test_create_read_update_list_delete(api: TestClient) -> None:
    response = api.post(
        BASE,
        json={
            "key": "starbucks",
            "name": "Starbucks scorecard",
            "modelType": "scorecard",
            "config": {"rules": STARBUCKS_RULES},
            "targetField": "converted",
            "predictors": [{"field": "reward_tier", "schemaKey": "ds_customers"}],
            "registryFamily": "rewards",
        },
    )
    assert response.status_code == 201, response.text
    model = response.json()
    assert response.headers["location"] == f"{BASE}/{model['id']}"
    assert model["status"] == "draft" and model["registryStatus"] == "draft"
    assert model["config"]["baseScore"] == 50 and model["config"]["normalization"] == "sigmoid"
    assert model["predictors"] == [
        {
            "field": "reward_tier",
            "schemaKey": "ds_customers",
            "importance": None,
            "bins": None,
            "selected": True,
        }
    ]
    assert (model["registryFamily"], model["version"], model["metrics"]) == ("rewards", 0, {})
    assert "modelState" not in model
    assert api.get(f"{BASE}/{model['id']}").json() == model
    assert api.get(f"{BASE}/{model['id']}?includeState=true").json()["modelState"] == {}

    unchanged = api.put(f"{BASE}/{model['id']}", json=model)
    assert unchanged.status_code == 200 and unchanged.json() == model  # no write, no audit row
    sent_back = {**model, "description": "the seed's example", "status": "paused"}
    updated = api.put(f"{BASE}/{model['id']}", json=sent_back)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["description"], updated.json()["status"]) == (
        "the seed's example",
        "paused",
    )
    assert updated.json()["stateRevision"] == model["stateRevision"]

    create(api, "nb", "bayesian")
    create(api, "lr", "logistic_regression", registryFamily="rewards")
    listed = api.get(BASE, params={"limit": 2}).json()
    assert listed["total"] == 3 and [m["key"] for m in listed["items"]] == ["lr", "nb"]
    assert [m["key"] for m in api.get(BASE, params={"offset": 2}).json()["items"]] == ["starbucks"]
    family = api.get(BASE, params={"registryFamily": "rewards", "modelType": "scorecard"}).json()
    assert [m["key"] for m in family["items"]] == ["starbucks"]
    assert api.get("/models").json()["models"] == []  # trained estimators are another kind

    assert api.delete(f"{BASE}/{model['id']}").status_code == 204
    assert_problem(api.get(f"{BASE}/{model['id']}"), 404, "not_found")
    other = api.get(BASE, params={"modelType": "bayesian"}).json()["items"][0]
    assert api.delete(BASE, params={"id": other["id"]}).status_code == 204
    assert api.get(BASE).json()["total"] == 1
    assert_problem(api.delete(BASE), 400, "invalid_input", field="id")
    audit = api.get(f"{BASE}/{model['id']}/audit").json()["items"]
    assert [row["action"] for row in audit] == [
        "algorithm_model.created",
        "algorithm_model.updated",
        "algorithm_model.deleted",
    ]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"name": "n", "modelType": "scorecard"}, 422, "validation_error", "key"),
        ({"key": "k" * 256, "name": "n", "modelType": "scorecard"}, 422, "validation_error", "key"),
        ({"key": " padded", "name": "n", "modelType": "scorecard"}, 422, "validation_error", "key"),
        ({"key": "k", "name": "n", "modelType": "svm"}, 422, "validation_error", "modelType"),
        (
            {"key": "k", "name": "n", "modelType": "scorecard", "config": {"baseScor": 5}},
            422,
            "validation_error",
            "config.baseScor",
        ),
        (
            {"key": "k", "name": "n", "modelType": "bayesian", "config": {"binCount": "many"}},
            422,
            "validation_error",
            "config.binCount",
        ),
        (
            {
                "key": "k",
                "name": "n",
                "modelType": "scorecard",
                "predictors": [{"field": "a"}, {"field": "a"}],
            },
            422,
            "validation_error",
            "predictors",
        ),
        (
            {
                "key": "k",
                "name": "n",
                "modelType": "bayesian",
                "learningConfig": {"schedule": "0 25 * * *"},
            },
            422,
            "validation_error",
            "learningConfig.schedule",
        ),
        (
            {
                "key": "k",
                "name": "n",
                "modelType": "bayesian",
                "learningConfig": {"batchThreshold": 0},
            },
            422,
            "validation_error",
            "learningConfig.batchThreshold",
        ),
        (
            {"key": "k", "name": "n", "modelType": "scorecard", "registryStatus": "champion"},
            422,
            "validation_error",
            "registryStatus",
        ),
        (
            {"key": "k", "name": "n", "modelType": "scorecard", "status": "training"},
            400,
            "invalid_input",
            "status",
        ),
    ],
)
def test_invalid_bodies_name_the_field(
    client: TestClient, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    assert_problem(client.post(BASE, json=body), status, code, field=field)


def test_a_key_is_unique_per_tenant_and_models_are_invisible_across_tenants(
    app_client: Any,
) -> None:
    with app_client(api_keys=KEYS) as client:
        model = create(client, "shared", headers=A)
        assert (
            client.post(
                BASE, json={"key": "shared", "name": "x", "modelType": "scorecard"}, headers=B
            ).status_code
            == 201
        )
        assert_problem(
            client.post(
                BASE, json={"key": "shared", "name": "x", "modelType": "bayesian"}, headers=A
            ),
            409,
            "conflict",
            field="key",
        )
        path = f"{BASE}/{model['id']}"
        for method, suffix, body in [
            ("GET", "", None),
            ("PUT", "", {"name": "stolen"}),
            ("DELETE", "", None),
            ("POST", "/score", {"offers": [{"id": "o"}]}),
            ("POST", "/train", {}),
            ("POST", "/promote", {"to": "challenger"}),
            ("POST", "/reset-learning", None),
            ("GET", "/recommendations", None),
            ("GET", "/audit", None),
        ]:
            response = client.request(method, path + suffix, json=body, headers=B)
            assert_problem(response, 404, "not_found")
        assert [m["key"] for m in client.get(BASE, headers=B).json()["items"]] == ["shared"]
        assert client.get(BASE, headers=B).json()["items"][0]["id"] != model["id"]
        assert client.get(path, headers=A).json()["name"] == "Shared"
        assert_problem(client.get(BASE), 401, "unauthorized")


def test_scores_come_sorted_with_every_scorecard_rule_explained(client: TestClient) -> None:
    model = create(client, "starbucks", config={"rules": STARBUCKS_RULES})
    body = {
        "customerId": "member-1",
        "customerAttributes": {"income": 75000, "reward_tier": "gold", "visit_frequency": 4},
        "offers": [
            {"id": "offer_bogo", "attributes": {"discount_pct": 50}},
            {"id": "offer_silver", "attributes": {"reward_tier": "silver"}},
            {"id": "offer_adult", "attributes": {"age": 30}},
        ],
        "explain": True,
    }
    response = client.post(f"{BASE}/{model['id']}/score", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["modelId"], answer["modelKey"], answer["modelType"]) == (
        model["id"],
        "starbucks",
        "scorecard",
    )

    def sigmoid(points: float) -> float:
        return 1 / (1 + math.exp(-6 * (points - 50) / 100))

    assert [(row["offerId"], row["score"]) for row in answer["scores"]] == [
        ("offer_adult", pytest.approx(sigmoid(95))),
        ("offer_bogo", pytest.approx(0.8909, abs=1e-4)),  # the seed's 85 points
        ("offer_silver", pytest.approx(sigmoid(65))),
    ]
    explanation = answer["scores"][1]["modelExplanation"]
    assert (
        explanation["engine"] == "scorecard"
        and explanation["score"] == answer["scores"][1]["score"]
    )
    rules = [d for d in explanation["details"] if "operator" in d]
    assert [(d["field"], d["matched"], d["actual"], d["points"]) for d in rules] == [
        ("reward_tier", True, "gold", 20),
        ("visit_frequency", True, 4, 15),
        ("age", False, None, 10),
    ]
    plain = client.post(f"{BASE}/{model['id']}/score", json={**body, "explain": False}).json()
    assert all("modelExplanation" not in row for row in plain["scores"])
    empty = client.post(f"{BASE}/{model['id']}/score", json={"offers": []}).json()
    assert empty["scores"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"offers": [{"id": f"o{i}"} for i in range(1001)]}, "offers"),
        ({"offers": [{"id": "o"}, {"id": "o"}]}, "offers"),
        ({"offers": [{"id": "o", "attributes": {"tags": {"a": 1}}}]}, "offers.0.attributes.tags"),
        ({"customerAttributes": {"nested": [1]}, "offers": []}, "customerAttributes.nested"),
        ({"offers": [{"attributes": {}}]}, "offers.0.id"),
        ({}, "offers"),
    ],
)
def test_badly_shaped_score_requests_are_422(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    model = create(client, "sc")
    assert_problem(
        client.post(f"{BASE}/{model['id']}/score", json=body), 422, "validation_error", field=field
    )


def test_training_finds_a_planted_signal_and_each_retraining_is_a_version(
    client: TestClient,
) -> None:
    model = create(client, "nb", "bayesian", targetField="converted")
    csv = planted_rows(800, seed=1).to_csv(index=False).encode()
    uploaded = client.post("/datasets", files={"file": ("rewards.csv", csv, "text/csv")})
    assert uploaded.status_code == 201, uploaded.text
    job = train(
        client,
        model["id"],
        {
            "dataset": {"datasetId": uploaded.json()["datasetId"]},
            "customerIdColumn": "customer_id",
            "offerIdColumn": "offer",
        },
    )
    assert job["status"] == "completed", job["error"]
    result = job["result"]
    assert result["version"] == 1 and result["warnings"] == []
    assert result["metrics"]["auc"] > 0.7 and result["metrics"]["evidence"] == 800
    trained = client.get(f"{BASE}/{model['id']}").json()
    assert (trained["status"], trained["version"]) == ("active", 1)
    assert trained["metrics"] == result["metrics"]
    assert len(trained["metricsHistory"]) == 1
    assert trained["stateRevision"] == model["stateRevision"] + 1

    scores = client.post(
        f"{BASE}/{model['id']}/score",
        json={
            "offers": [
                {"id": "bronze", "attributes": {"reward_tier": "bronze", "visit_frequency": 1}},
                {"id": "gold", "attributes": {"reward_tier": "gold", "visit_frequency": 6}},
            ]
        },
    ).json()
    assert [row["offerId"] for row in scores["scores"]] == ["gold", "bronze"]

    rows = planted_rows(300, seed=2).rename(
        columns={"customer_id": "customerId", "offer": "offerId"}
    )
    again = train(client, model["id"], {"dataset": {"rows": rows.to_dict("records")}})
    assert again["status"] == "completed", again["error"]
    retrained = client.get(f"{BASE}/{model['id']}").json()
    assert retrained["version"] == 2 and len(retrained["metricsHistory"]) == 2
    assert [entry["version"] for entry in retrained["metricsHistory"]] == [1, 2]
    assert retrained["metricsHistory"][1]["metrics"]["evidence"] == 300
    versions = AlgorithmModelRepository(client.app.state.services.db).versions(  # type: ignore[attr-defined]
        model["id"], tenant="default"
    )
    assert [(v.version, v.artifact_format, v.job_id) for v in versions] == [
        (1, "engine-state+json", job["jobId"]),
        (2, "engine-state+json", again["jobId"]),
    ]


def test_a_failed_training_leaves_the_model_in_error_with_the_reason(client: TestClient) -> None:
    model = create(client, "lr", "logistic_regression")
    rows = planted_rows(30, seed=3).rename(columns={"converted": "outcome"})
    job = train(client, model["id"], {"dataset": {"rows": rows.to_dict("records")}})
    assert job["status"] == "failed" and job["error"]["code"] == "not_enough_data"
    assert "at least 50" in job["error"]["message"]
    failed = client.get(f"{BASE}/{model['id']}").json()
    assert (failed["status"], failed["version"]) == ("error", 0)
    last = client.get(f"{BASE}/{model['id']}/audit").json()["items"][-1]
    assert last["action"] == "algorithm_model.training_failed"
    assert job["jobId"] in last["reason"] and "at least 50" in last["reason"]

    named = train(
        client,
        model["id"],
        {"dataset": {"rows": rows.to_dict("records")}, "outcomeColumn": "clicked"},
    )
    assert named["error"]["code"] == "unknown_column"
    assert named["error"]["field"] == "outcomeColumn"

    external = create(
        client,
        "ext",
        "external_endpoint",
        config={"endpointUrl": "https://models.example.com/score"},
    )
    assert_problem(
        client.post(f"{BASE}/{external['id']}/train", json={"dataset": {"rows": [{"a": 1}]}}),
        400,
        "invalid_input",
        field="modelType",
    )
    assert_problem(
        client.post(f"{BASE}/{model['id']}/train", json={"validationFraction": 0.9}),
        422,
        "validation_error",
        field="validationFraction",
    )


def test_promotions_keep_one_champion_per_family_with_audit_rows(api: TestClient) -> None:
    first = create(api, "first", registryFamily="rewards")
    second = create(api, "second", registryFamily="rewards")
    other = create(api, "other", registryFamily="loans")

    refused = promote(api, first["id"], "champion")
    body = assert_problem(refused, 409, "invalid_transition", field="to")
    assert (body["from"], body["to"]) == ("draft", "champion")
    for model in (first, second, other):
        assert promote(api, model["id"], "challenger").status_code == 200
    assert promote(api, first["id"], "champion", reason="launch").json()["registryStatus"] == (
        "champion"
    )
    assert promote(api, other["id"], "champion").status_code == 200

    won = promote(api, second["id"], "champion", reason="higher AUC", demoteTo="challenger")
    assert won.status_code == 200 and won.json()["registryStatus"] == "champion"
    statuses = {
        m["key"]: m["registryStatus"]
        for m in api.get(BASE, params={"registryStatus": "champion"}).json()["items"]
    }
    assert statuses == {"second": "champion", "other": "champion"}
    assert api.get(f"{BASE}/{first['id']}").json()["registryStatus"] == "challenger"

    trail = [
        row
        for row in api.get(f"{BASE}/{first['id']}/audit").json()["items"]
        if row["action"] == "registry_promote"
    ]
    assert [(r["before"]["registryStatus"], r["after"]["registryStatus"]) for r in trail] == [
        ("draft", "challenger"),
        ("challenger", "champion"),
        ("champion", "challenger"),
    ]
    assert "higher AUC" in trail[-1]["reason"] and trail[1]["reason"] == "launch"

    assert_problem(promote(api, second["id"], "draft"), 409, "invalid_transition")
    assert_problem(api.delete(f"{BASE}/{second['id']}"), 409, "conflict")
    assert promote(api, second["id"], "archived").json()["registryStatus"] == "archived"
    assert_problem(
        api.post(f"{BASE}/{second['id']}/score", json={"offers": [{"id": "o"}]}), 409, "conflict"
    )
    assert promote(api, second["id"], "draft").json()["registryStatus"] == "draft"
    assert_problem(promote(api, first["id"], "retired"), 422, "validation_error", field="to")
    assert_problem(
        promote(api, first["id"], "champion", demoteTo="draft"),
        422,
        "validation_error",
        field="demoteTo",
    )


def test_reset_learning_forgets_the_trained_state(client: TestClient) -> None:
    model = create(client, "nb", "bayesian")
    rows = planted_rows(200, seed=4).rename(columns={"converted": "outcome"})
    assert (
        train(client, model["id"], {"dataset": {"rows": rows.to_dict("records")}})["status"]
        == "completed"
    )
    trained = client.get(f"{BASE}/{model['id']}?includeState=true").json()
    fresh = create(client, "fresh", "bayesian")
    untrained_state = client.get(f"{BASE}/{fresh['id']}?includeState=true").json()["modelState"]
    assert trained["modelState"] != untrained_state
    reset = client.post(f"{BASE}/{model['id']}/reset-learning")
    assert (
        reset.status_code == 200 and reset.json()["stateRevision"] == trained["stateRevision"] + 1
    )
    after = client.get(f"{BASE}/{model['id']}?includeState=true").json()
    assert after["modelState"] == untrained_state
    probe = {"offers": [{"id": "a", "attributes": {"reward_tier": "gold"}}]}
    assert client.post(f"{BASE}/{model['id']}/score", json=probe).json()["scores"][0][
        "score"
    ] == pytest.approx(0.5)
    assert after["metricsHistory"] == trained["metricsHistory"]  # history is kept


def test_recommendations_fire_for_a_scorecard_that_has_outgrown_its_rules(
    client: TestClient,
) -> None:
    rows = planted_rows(150, seed=5).rename(columns={"converted": "outcome"})
    six = [*STARBUCKS_RULES, *STARBUCKS_RULES]
    grown = create(client, "grown", config={"rules": six})
    small = create(client, "small", config={"rules": STARBUCKS_RULES})
    for model in (grown, small):
        job = train(client, model["id"], {"dataset": {"rows": rows.to_dict("records")}})
        assert job["status"] == "completed", job["error"]
        assert job["result"]["metrics"]["evidence"] == 150
    advice = client.get(f"{BASE}/{grown['id']}/recommendations").json()
    assert advice["recommendation"]["upgradeTo"] == "bayesian"
    assert advice["inputs"]["rules"] == 6 and advice["inputs"]["samples"] == 150
    scorecard_rule = advice["rules"][0]
    assert scorecard_rule["applies"] and scorecard_rule["fires"]
    assert [c["input"] for c in scorecard_rule["conditions"]] == ["rules", "samples"]
    quiet = client.get(f"{BASE}/{small['id']}/recommendations").json()
    assert quiet["recommendation"] is None and quiet["rules"][0]["fires"] is False


def test_an_uploaded_csv_keeps_working_after_the_model_is_renamed(client: TestClient) -> None:
    """A PUT of part of the fields leaves the rest, the learned state included, untouched."""
    model = create(client, "nb", "bayesian")
    rows = planted_rows(120, seed=6).rename(columns={"converted": "outcome"})
    frame = io.BytesIO(rows.to_csv(index=False).encode())
    uploaded = client.post("/datasets", files={"file": ("r.csv", frame.getvalue(), "text/csv")})
    job = train(client, model["id"], {"dataset": {"datasetId": uploaded.json()["datasetId"]}})
    assert job["status"] == "completed", job["error"]
    assert job["result"]["warnings"] == [
        "no 'customerId' column: rows carry no customerId",
        "no 'offerId' column: rows carry no offerId",
    ]
    before = client.get(f"{BASE}/{model['id']}?includeState=true").json()
    renamed = client.put(f"{BASE}/{model['id']}", json={"name": "Renamed"}).json()
    after = client.get(f"{BASE}/{model['id']}?includeState=true").json()
    assert renamed["name"] == "Renamed" and after["modelState"] == before["modelState"]
    assert after["stateRevision"] == before["stateRevision"]
    assert after["metrics"] == before["metrics"]
