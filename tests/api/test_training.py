"""``POST /train`` and ``/algorithms``: the seed's requests, async submission, and bad input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.api.training_support import (
    CHURN_ROWS,
    assert_nothing_internal,
    train_body,
    wait_for_job,
    write_tables,
)
from tests.training.tables import telco_churn


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    settings: Settings = make_settings()
    write_tables(settings)
    return settings


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_seed_request_trains_and_answers_in_the_seed_shape(
    api: TestClient, settings: Settings
) -> None:
    body = {
        "dataset_path": str(settings.data_root / "churn.csv"),
        "target_column": "Churn",
        "algorithm": "RandomForestClassifier",
        "test_size": 0.2,
        "random_state": 42,
    }

    response = api.post("/train", json=body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["success"] is True
    assert re.fullmatch(r"model-[0-9a-f]{12}", answer["model_id"])
    assert {"accuracy", "precision", "recall", "f1_score"} <= set(answer["metrics"])
    assert answer["metrics"]["accuracy"] > 0.7  # the table's planted signal
    assert answer["message"] == "Model trained successfully"
    assert answer["algorithm"] == "RandomForestClassifier"
    assert answer["task"] == "classification"
    assert (answer["n_train"], answer["n_test"]) == (CHURN_ROWS * 4 // 5, CHURN_ROWS // 5)
    assert answer["training_time"] >= 0
    assert answer["params"]["n_estimators"] == 200  # our default, reported
    assert "customerID" in answer["features"]["dropped"]
    assert answer["job_id"].startswith("job-")


def test_camel_case_fields_and_seed_aliases_are_accepted(api: TestClient) -> None:
    body = {
        "datasetPath": "churn.csv",
        "targetColumn": "Churn",
        "algorithm": "XGBoostClassifier",
        "testSize": 0.25,
        "hyperparams": {"n_estimators": 10},
    }

    answer = api.post("/train", json=body).json()

    assert answer["algorithm"] == "XGBClassifier"
    assert answer["n_test"] == CHURN_ROWS // 4


def test_same_request_same_metrics(api: TestClient) -> None:
    first = api.post("/train", json=train_body()).json()
    second = api.post("/train", json=train_body()).json()

    assert first["model_id"] != second["model_id"]
    assert first["metrics"] == second["metrics"]


@pytest.mark.parametrize(
    ("body", "headers"),
    [({"async": True}, {}), ({}, {"Prefer": "respond-async"})],
    ids=["async-flag", "prefer-header"],
)
def test_async_submission_answers_202_and_the_job_completes(
    api: TestClient, body: dict[str, Any], headers: dict[str, str]
) -> None:
    response = api.post("/train", json=train_body(**body), headers=headers)

    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["type"] == "train"
    assert response.headers["location"] == f"/status/{submitted['jobId']}"
    status = wait_for_job(api, submitted["jobId"])
    assert status["status"] == "completed", status
    model_id = status["result"]["model_id"]
    assert api.get(f"/model/{model_id}").json()["job_id"] == submitted["jobId"]


def test_an_all_missing_feature_is_dropped_and_reported(
    api: TestClient, settings: Settings
) -> None:
    telco_churn(200).assign(Empty=np.nan).to_csv(settings.data_root / "gaps.csv", index=False)

    answer = api.post("/train", json=train_body(dataset_path="gaps.csv")).json()

    assert answer["features"]["dropped"]["Empty"] == "all values missing"
    assert any("Empty (all values missing)" in warning for warning in answer["warnings"])


def write_bad_files(settings: Settings) -> None:
    root = settings.data_root
    (root / "empty.csv").write_text("")
    (root / "header.csv").write_text("tenure,Contract,Churn\n")
    (root / "garbage.csv").write_bytes(bytes(range(256)) * 64)
    telco_churn(120).assign(Churn="Yes").to_csv(root / "one_class.csv", index=False)
    pd.DataFrame({"x": [np.nan] * 40, "Churn": ["Yes", "No"] * 20}).to_csv(
        root / "nan_only.csv", index=False
    )
    continuous = telco_churn(200)
    continuous["Churn"] = continuous["MonthlyCharges"] * 1.37
    continuous.to_csv(root / "continuous.csv", index=False)


BAD_REQUESTS = [
    ("missing-file", {"dataset_path": "missing.csv"}, 400, "dataset_not_found", "dataset_path"),
    ("outside-root", {"dataset_path": "/etc/passwd"}, 400, "path_not_allowed", "dataset_path"),
    ("unknown-target", {"target_column": "Nope"}, 400, "invalid_input", "target_column"),
    ("unknown-algorithm", {"algorithm": "DeepMagic"}, 400, "invalid_input", "algorithm"),
    ("empty-file", {"dataset_path": "empty.csv"}, 400, "unreadable_dataset", "dataset_path"),
    ("header-only", {"dataset_path": "header.csv"}, 400, "invalid_input", "dataset"),
    ("binary-garbage", {"dataset_path": "garbage.csv"}, 400, "unreadable_dataset", None),
    ("one-class", {"dataset_path": "one_class.csv"}, 400, "invalid_input", "target_column"),
    ("only-nan-feature", {"dataset_path": "nan_only.csv"}, 400, "invalid_input", "dataset"),
    ("test-size", {"test_size": 0.9}, 422, "validation_error", "test_size"),
    ("continuous", {"dataset_path": "continuous.csv"}, 400, "invalid_input", "target_column"),
    ("unknown-param", {"hyperparams": {"foo": 1}}, 400, "invalid_input", "hyperparams.foo"),
    (
        "huge-param",
        {"hyperparams": {"n_estimators": 10**8}},
        400,
        "invalid_input",
        "hyperparams.n_estimators",
    ),
    ("worker-param", {"hyperparams": {"n_jobs": 64}}, 400, "invalid_input", "hyperparams.n_jobs"),
    ("wrong-task", {"algorithm": "Ridge", "task": "classification"}, 400, "invalid_input", "task"),
]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_is_a_4xx_problem_that_names_it(
    api: TestClient,
    settings: Settings,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    write_bad_files(settings)

    response = api.post("/train", json=train_body(**change))

    problem = assert_problem(response, status, code, field)
    assert_nothing_internal(response.text, settings)
    assert len(problem["detail"]) > 10
    assert api.get("/health").status_code == 200  # and the server keeps serving


def test_detail_says_what_is_wrong(api: TestClient, settings: Settings) -> None:
    write_bad_files(settings)
    details = {
        name: api.post("/train", json=train_body(**change)).json()["detail"]
        for name, change, *_ in BAD_REQUESTS
        if name in ("unknown-target", "one-class", "continuous", "only-nan-feature", "huge-param")
    }

    assert "'Nope' is not in the dataset" in details["unknown-target"]
    assert "single class ('Yes')" in details["one-class"]
    assert "continuous" in details["continuous"] and "regression" in details["continuous"]
    assert "x (all values missing)" in details["only-nan-feature"]
    assert "n_estimators=100000000" in details["huge-param"]


def test_a_dataset_beyond_the_memory_budget_is_refused(make_settings: Any) -> None:
    settings: Settings = make_settings(dataset_memory_budget=20_000)
    write_tables(settings)
    with TestClient(create_app(settings)) as client:
        response = client.post("/train", json=train_body())

    assert_problem(response, 413, "dataset_too_large", "dataset")
    assert_nothing_internal(response.text, settings)


def test_settings_the_estimator_refuses_are_a_400_naming_hyperparams(
    api: TestClient, settings: Settings
) -> None:
    iris = pd.DataFrame(np.random.default_rng(0).normal(size=(90, 2)), columns=["a", "b"]).assign(
        kind=["x", "y", "z"] * 30
    )
    iris.to_csv(settings.data_root / "three.csv", index=False)
    body = train_body(
        dataset_path="three.csv",
        target_column="kind",
        algorithm="LogisticRegression",
        hyperparams={"solver": "liblinear", "penalty": "l1"},
    )

    response = api.post("/train", json=body)

    problem = assert_problem(response, 400, "invalid_input", "hyperparams")
    assert "liblinear" in problem["detail"]


def test_algorithms_are_listed_by_task(api: TestClient) -> None:
    listed = api.get("/algorithms").json()

    assert "RandomForestClassifier" in listed["classification"]
    assert "LinearRegression" in listed["regression"]
    described = api.get("/algorithms/LogisticRegression").json()
    assert described["task"] == "classification"
    assert {item["name"] for item in described["search_space"]} >= {"C", "solver", "penalty"}
    assert_problem(api.get("/algorithms/DeepMagic"), 404, "not_found")


def test_the_job_runs_out_of_process_with_the_local_pool(make_settings: Any) -> None:
    settings: Settings = make_settings(executor="local", workers=1)
    write_tables(settings)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/train", json=train_body())
        assert answer.status_code == 200, answer.text
        model_id = answer.json()["model_id"]

        evaluation = client.get(f"/model/{model_id}/evaluate")
        assert evaluation.status_code == 200
        rows = telco_churn(3, random_state=5).drop(columns=["Churn"]).to_dict("records")
        predicted = client.post(f"/model/{model_id}/predict", json={"rows": rows}).json()
        assert set(predicted["predictions"]) <= {"Yes", "No"}
