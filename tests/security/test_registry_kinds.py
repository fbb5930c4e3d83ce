"""Kind-safe registry routes: each route family serves only its own kind of model.

The training registry (``/model/{id}…``, ``/models``) serves trained estimators; the decisioning
family (``/api/v1/algorithm-models/{id}…``) serves algorithm models. Both live in one table, so
an id of the other kind must be answered 404 exactly like an unknown id: no skeleton answer, no
500, and above all no delete that skips the other family's lifecycle and audit log.

Also here: non-finite numbers (``Infinity``, ``NaN``) in predict rows are a 4xx naming the
field, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.api.training_support import assert_nothing_internal, train, write_tables
from tests.training.tables import telco_churn

BASE = "/api/v1/algorithm-models"
RULES = [{"field": "tenure", "operator": "gte", "value": 12, "points": 20}]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from tests.support import settings_for

    settings = settings_for(tmp_path_factory.mktemp("registry-kinds"))
    write_tables(settings)
    return settings


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def estimator_id(api: TestClient) -> str:
    return train(api)


@pytest.fixture(scope="module")
def algorithm_model(api: TestClient) -> dict[str, Any]:
    body = {"key": "kinds", "name": "Kinds", "modelType": "scorecard", "config": {"rules": RULES}}
    response = api.post(BASE, json=body)
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    return model


def _rows() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = (
        telco_churn(2, random_state=3).drop(columns=["Churn"]).to_dict("records")
    )
    return records


TRAINING_ROUTES = [
    ("GET", "", None),
    ("GET", "/evaluate", None),
    ("GET", "/artifact", None),
    ("GET", "/artifact?format=zip", None),
    ("GET", "/artifact?format=skops", None),
    ("GET", "/artifact?format=joblib", None),
    ("GET", "/artifact?format=onnx", None),
    ("POST", "/predict", "rows"),
    ("POST", "/predict", "dataset-async"),
    ("POST", "/predict", "dataset-sync"),
    ("DELETE", "", None),
]


def _predict_body(kind: str | None) -> dict[str, Any] | None:
    if kind == "rows":
        return {"rows": _rows()}
    if kind == "dataset-async":
        return {"dataset": {"path": "churn.csv"}, "async": True}
    if kind == "dataset-sync":
        return {"dataset": {"path": "churn.csv"}, "async": False}
    return None


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    TRAINING_ROUTES,
    ids=[f"{m}{s or '/'}{'-' + b if b else ''}" for m, s, b in TRAINING_ROUTES],
)
def test_training_routes_answer_404_for_an_algorithm_model(
    api: TestClient,
    settings: Settings,
    algorithm_model: dict[str, Any],
    method: str,
    suffix: str,
    body: str | None,
) -> None:
    model_id = algorithm_model["id"]
    audit_before = api.get(f"{BASE}/{model_id}/audit").json()["items"]

    response = api.request(method, f"/model/{model_id}{suffix}", json=_predict_body(body))

    assert_problem(response, 404, "not_found", field="model_id")
    assert_nothing_internal(response.text, settings)
    still = api.get(f"{BASE}/{model_id}")
    assert still.status_code == 200 and still.json() == algorithm_model
    assert api.get(f"{BASE}/{model_id}/audit").json()["items"] == audit_before


def test_the_training_list_shows_estimators_only(
    api: TestClient, estimator_id: str, algorithm_model: dict[str, Any]
) -> None:
    listed = [model["model_id"] for model in api.get("/models").json()["models"]]

    assert estimator_id in listed and algorithm_model["id"] not in listed


ALGORITHM_ROUTES = [
    ("GET", "", None),
    ("GET", "?includeState=true", None),
    ("PUT", "", {"name": "renamed"}),
    ("POST", "/train", {}),
    ("POST", "/score", {"customerAttributes": {"tenure": 3}, "offers": [{"id": "o1"}]}),
    ("POST", "/reset-learning", None),
    ("POST", "/promote", {"to": "challenger"}),
    ("GET", "/recommendations", None),
    ("GET", "/audit", None),
    ("DELETE", "", None),
]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    ALGORITHM_ROUTES,
    ids=[f"{m}{s or '/'}" for m, s, _ in ALGORITHM_ROUTES],
)
def test_algorithm_model_routes_answer_404_for_an_estimator(
    api: TestClient,
    settings: Settings,
    estimator_id: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    before = api.get(f"/model/{estimator_id}").json()

    response = api.request(method, f"{BASE}/{estimator_id}{suffix}", json=body)

    assert response.status_code == 404, response.text
    assert_nothing_internal(response.text, settings)
    assert api.get(f"/model/{estimator_id}").json() == before


def test_delete_by_query_answers_404_for_an_estimator(api: TestClient, estimator_id: str) -> None:
    response = api.delete(BASE, params={"id": estimator_id})

    assert_problem(response, 404, "not_found", field="id")
    assert api.get(f"/model/{estimator_id}").status_code == 200


@pytest.mark.parametrize("field", ["modelId", "modelKey"])
def test_outcomes_for_an_estimator_answer_404(
    api: TestClient, estimator_id: str, field: str
) -> None:
    outcome = {field: estimator_id, "customerId": "c1", "offerId": "o1", "outcome": 1}

    response = api.post("/api/v1/outcomes", json={"outcomes": [outcome]})

    assert_problem(response, 404, "not_found", field=f"outcomes.0.{field}")


def test_decisioning_never_scores_with_an_estimator(api: TestClient, estimator_id: str) -> None:
    body = {
        "customerId": "c1",
        "offers": [{"id": "o1", "priority": 50}],
        "resolution": {"defaultModel": estimator_id},
    }

    response = api.post("/api/v1/score", json=body)

    assert response.status_code == 200, response.text
    [score] = response.json()["scores"]
    assert score["degraded"] and score["degradedReason"] == "model not found"


def test_the_algorithm_model_list_shows_algorithm_models_only(
    api: TestClient, estimator_id: str, algorithm_model: dict[str, Any]
) -> None:
    listed = [model["id"] for model in api.get(BASE).json()["items"]]

    assert algorithm_model["id"] in listed and estimator_id not in listed


@pytest.mark.parametrize(
    "literal",
    ["Infinity", "-Infinity", "NaN", "1e999", "-1" + "0" * 400],
    ids=["Infinity", "-Infinity", "NaN", "float-overflow", "int-overflow"],
)
def test_non_finite_numbers_in_predict_rows_are_a_4xx_naming_the_field(
    api: TestClient, settings: Settings, estimator_id: str, literal: str
) -> None:
    rows = _rows()
    rows[1]["tenure"] = "<probe>"
    # Written as text: the literal is what the probe sent, and strict encoders refuse it.
    content = json.dumps({"rows": rows}).replace('"<probe>"', literal)

    response = api.post(
        f"/model/{estimator_id}/predict",
        content=content,
        headers={"Content-Type": "application/json"},
    )

    assert 400 <= response.status_code < 500, response.text
    problem = response.json()
    assert problem["field"] == "rows.1.tenure", problem
    assert_nothing_internal(response.text, settings)
