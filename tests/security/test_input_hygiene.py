"""Hostile input to training, tuning, list routes and decisioning configs: 4xx naming the field.

Each test is a probe of the hardening review (issue 10, defects 8 and 9): an infinite number in a
training table, integer query parameters beyond any database integer, seed-dialect dataset paths
that only failed once the job ran, a ``study_id`` of another tenant, and megabyte strings in a
scorecard. None may answer 500, fail a job as ``internal_error``, or leave a job row behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.api.training_support import QUICK, wait_for_job
from tests.training.tables import telco_churn

KEYS = {"key-a": "tenant-a", "key-b": "tenant-b"}
A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
#: Beyond every 64-bit integer a database takes; was a 500 (``OverflowError``) as an offset.
HUGE = str(10**20)
#: Under the 16 MiB body limit, so the field limit answers (not the body-size limit).
MEGABYTE = "x" * 1_000_000


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    settings: Settings = make_settings(api_keys=KEYS)
    root = settings.data_root
    telco_churn(200).to_csv(root / "churn.csv", index=False)
    (root / "a-directory.csv").mkdir()
    return settings


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _jobs(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/jobs", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _train_body(**overrides: Any) -> dict[str, Any]:
    return {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "RandomForestClassifier",
        "hyperparams": dict(QUICK),
        **overrides,
    }


def _optimize_body(**overrides: Any) -> dict[str, Any]:
    return {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "LogisticRegression",
        "n_trials": 2,
        **overrides,
    }


# --- infinite numbers in a training table ------------------------------------------------------


def _write_infinite(settings: Settings) -> None:
    table = telco_churn(200)
    table.loc[7, "MonthlyCharges"] = np.inf
    table.to_csv(settings.data_root / "infinite.csv", index=False)


def test_inf_in_a_training_csv_fails_the_job_as_bad_input_naming_the_column(
    api: TestClient, settings: Settings
) -> None:
    _write_infinite(settings)

    body = _train_body(dataset_path="infinite.csv", **{"async": True})
    submitted = api.post("/train", json=body, headers=A)

    assert submitted.status_code == 202, submitted.text
    job = wait_for_job(api, submitted.json()["jobId"], headers=A)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_input", job["error"]
    assert "'MonthlyCharges'" in job["error"]["message"]
    assert "infinite" in job["error"]["message"]


def test_inf_in_a_training_csv_is_a_400_naming_the_column_when_synchronous(
    api: TestClient, settings: Settings
) -> None:
    _write_infinite(settings)

    response = api.post("/train", json=_train_body(dataset_path="infinite.csv"), headers=A)

    problem = assert_problem(response, 400, "invalid_input", "dataset")
    assert "'MonthlyCharges'" in problem["detail"] and "row 7" in problem["detail"]


def test_an_infinite_target_is_refused_naming_target_column(
    api: TestClient, settings: Settings
) -> None:
    table = telco_churn(200)
    table["Spend"] = table["MonthlyCharges"] * 1.5
    table.loc[3, "Spend"] = -np.inf
    table.to_csv(settings.data_root / "target.csv", index=False)
    body = _train_body(
        dataset_path="target.csv", target_column="Spend", algorithm="Ridge", hyperparams={}
    )

    response = api.post("/train", json=body, headers=A)

    problem = assert_problem(response, 400, "invalid_input", "target_column")
    assert "'Spend'" in problem["detail"]


def test_inf_in_an_optimize_table_is_bad_input_not_internal_error(
    api: TestClient, settings: Settings
) -> None:
    _write_infinite(settings)

    response = api.post("/optimize", json=_optimize_body(dataset_path="infinite.csv"), headers=A)

    problem = assert_problem(response, 400, "invalid_input", "dataset")
    assert "'MonthlyCharges'" in problem["detail"]


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN"])
def test_a_non_finite_class_weight_is_a_422_naming_it(api: TestClient, number: str) -> None:
    body = _train_body(class_weight={"Yes": number, "No": 1.0})

    response = api.post("/train", json=body, headers=A)

    assert_problem(response, 422, "validation_error", "class_weight")
    assert _jobs(api, A) == []


def test_predicting_on_rows_with_inf_is_bad_input_naming_the_column(
    api: TestClient, settings: Settings
) -> None:
    trained = api.post("/train", json=_train_body(), headers=A)
    assert trained.status_code == 200, trained.text
    _write_infinite(settings)
    model_id = trained.json()["model_id"]

    response = api.post(
        f"/model/{model_id}/predict",
        json={"dataset": {"path": "infinite.csv"}, "async": False},
        headers=A,
    )

    assert response.status_code in (400, 422), response.text
    assert "MonthlyCharges" in response.text and "internal" not in response.text


# --- integer query parameters --------------------------------------------------------------------

LIST_PARAMETERS = [
    ("/api/v1/algorithm-models", "offset"),
    ("/api/v1/algorithm-models", "limit"),
    ("/jobs", "limit"),
    ("/models", "limit"),
    ("/datasets", "limit"),
    ("/analyze/segments/job-0123456789abcdef/assignments", "offset"),
    ("/analyze/segments/job-0123456789abcdef/assignments", "limit"),
]


@pytest.mark.parametrize("value", [HUGE, "1e20", str(2**63), "-1"])
@pytest.mark.parametrize(("path", "parameter"), LIST_PARAMETERS)
def test_out_of_range_paging_is_a_422_naming_the_parameter(
    api: TestClient, path: str, parameter: str, value: str
) -> None:
    response = api.get(path, params={parameter: value}, headers=A)

    assert_problem(response, 422, "validation_error", parameter)
    assert api.get("/health").status_code == 200


def test_the_deepest_offset_allowed_still_answers(api: TestClient) -> None:
    response = api.get("/api/v1/algorithm-models", params={"offset": 10**9}, headers=A)

    assert response.status_code == 200, response.text


# --- seed-dialect dataset paths, checked at submission -----------------------------------------

BAD_PATHS = [
    ("missing-file", "missing.csv", "dataset_not_found"),
    ("parent-escape", "../etc/passwd", "path_not_allowed"),
    ("absolute-outside", "/etc/passwd", "path_not_allowed"),
    ("directory", "a-directory.csv", "dataset_not_found"),
    ("url", "http://127.0.0.1:9/x.csv", "path_not_allowed"),
]


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("route", ["/train", "/optimize"])
@pytest.mark.parametrize(
    ("path", "code"), [case[1:] for case in BAD_PATHS], ids=[case[0] for case in BAD_PATHS]
)
def test_a_bad_dataset_path_is_a_4xx_naming_it_and_creates_no_job(
    api: TestClient, route: str, run_async: bool, path: str, code: str
) -> None:
    make_body = _train_body if route == "/train" else _optimize_body

    response = api.post(route, json=make_body(dataset_path=path, **{"async": run_async}), headers=A)

    assert_problem(response, 400, code, "dataset_path")
    assert _jobs(api, A) == []


def test_a_dataset_path_inside_the_root_given_as_absolute_still_trains(
    api: TestClient, settings: Settings
) -> None:
    body = _train_body(dataset_path=str(settings.data_root / "churn.csv"))

    response = api.post("/train", json=body, headers=A)

    assert response.status_code == 200, response.text


def test_a_file_with_no_known_format_is_a_400_naming_dataset_path(
    api: TestClient, settings: Settings
) -> None:
    (settings.data_root / "table.xlsx").write_bytes(b"PK\x03\x04")

    response = api.post("/train", json=_train_body(dataset_path="table.xlsx"), headers=A)

    assert_problem(response, 400, "invalid_input", "dataset_path")
    assert _jobs(api, A) == []


def test_generic_job_submission_checks_dataset_path_too(api: TestClient) -> None:
    body = {"type": "train", "params": _train_body(dataset_path="../etc/passwd")}

    response = api.post("/jobs", json=body, headers=A)

    assert_problem(response, 400, "path_not_allowed", "dataset_path")
    assert _jobs(api, A) == []


# --- study_id on /train -------------------------------------------------------------------------


def test_a_study_id_of_another_tenant_is_404_and_creates_no_job(api: TestClient) -> None:
    study_id = api.post("/optimize", json=_optimize_body(), headers=A).json()["study_id"]
    jobs_before = _jobs(api, B)

    response = api.post("/train", json=_train_body(study_id=study_id), headers=B)

    assert_problem(response, 404, "not_found", "study_id")
    assert _jobs(api, B) == jobs_before == []


@pytest.mark.parametrize("study_id", ["study-0123456789ab", "study-../../etc", "x"])
def test_an_unknown_study_id_is_404(api: TestClient, study_id: str) -> None:
    response = api.post("/train", json=_train_body(study_id=study_id, **{"async": True}), headers=A)

    assert_problem(response, 404, "not_found", "study_id")
    assert _jobs(api, A) == []


def test_a_generic_train_job_never_links_another_tenants_study(api: TestClient) -> None:
    study_id = api.post("/optimize", json=_optimize_body(), headers=A).json()["study_id"]
    body = {"type": "train", "params": _train_body(study_id=study_id)}

    submitted = api.post("/jobs", json=body, headers=B)

    job = wait_for_job(api, submitted.json()["jobId"], headers=B)
    assert job["status"] == "failed" and job["error"]["code"] == "not_found"
    assert api.get("/models", headers=B).json()["models"] == []


def test_a_study_id_of_the_same_tenant_links_the_model(api: TestClient) -> None:
    study_id = api.post("/optimize", json=_optimize_body(), headers=A).json()["study_id"]

    response = api.post("/train", json=_train_body(study_id=study_id), headers=A)

    assert response.status_code == 200, response.text
    model = api.get(f"/model/{response.json()['model_id']}", headers=A).json()
    assert model["study_id"] == study_id


# --- free text in decisioning configs -------------------------------------------------------------

BASE = "/api/v1/algorithm-models"
RULE = {"field": "tier", "operator": "eq", "value": "gold", "points": 20}


def _scorecard(**fields: Any) -> dict[str, Any]:
    return {"key": "card", "name": "Card", "modelType": "scorecard", **fields}


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({**RULE, "field": MEGABYTE}, "config.rules.0.field"),
        ({**RULE, "value": MEGABYTE}, "config.rules.0.value"),
        ({**RULE, "operator": "in", "value": ["gold", MEGABYTE]}, "config.rules.0.value"),
        ({**RULE, "operator": "in", "value": ["v"] * 1001}, "config.rules.0.value"),
        ({**RULE, "description": MEGABYTE}, "config.rules.0.description"),
    ],
    ids=["field", "value", "listed-value", "many-values", "description"],
)
def test_a_megabyte_scorecard_string_is_a_422_naming_the_field(
    api: TestClient, rule: dict[str, Any], field: str
) -> None:
    response = api.post(BASE, json=_scorecard(config={"rules": [rule]}), headers=A)

    problem = assert_problem(response, 422, "validation_error", field)
    assert len(response.content) < 10_000, "the answer must not echo the string back"
    assert "at most" in problem["detail"]
    assert api.get(BASE, headers=A).json()["total"] == 0


def test_a_megabyte_rule_string_is_refused_on_update_too(api: TestClient) -> None:
    created = api.post(BASE, json=_scorecard(config={"rules": [RULE]}), headers=A)
    assert created.status_code == 201, created.text
    model_id = created.json()["id"]

    response = api.put(
        f"{BASE}/{model_id}", json={"config": {"rules": [{**RULE, "field": MEGABYTE}]}}, headers=A
    )

    assert_problem(response, 422, "validation_error", "config.rules.0.field")
    stored = api.get(f"{BASE}/{model_id}", headers=A).json()
    assert stored["config"]["rules"][0]["field"] == "tier"


def test_too_many_rules_are_a_422_naming_rules(api: TestClient) -> None:
    rules = [{**RULE, "field": f"f{i}"} for i in range(1001)]

    response = api.post(BASE, json=_scorecard(config={"rules": rules}), headers=A)

    assert_problem(response, 422, "validation_error", "config.rules")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": MEGABYTE}, "name"),
        ({"key": MEGABYTE}, "key"),
        ({"description": MEGABYTE}, "description"),
        ({"targetField": MEGABYTE}, "targetField"),
        ({"registryFamily": MEGABYTE}, "registryFamily"),
        ({"predictors": [{"field": MEGABYTE}]}, "predictors.0.field"),
        ({"outcomeWeights": {MEGABYTE: 1.0}}, "outcomeWeights"),
        ({"outcomeWeights": {f"o{i}": 1.0 for i in range(1001)}}, "outcomeWeights"),
        ({"interactionFeatures": {"pair": [MEGABYTE]}}, "interactionFeatures"),
        ({"learningConfig": {"schedule": MEGABYTE}}, "learningConfig.schedule"),
        ({"evolutionConfig": {"minSamples": 10**20}}, "evolutionConfig.minSamples"),
        ({"evolutionConfig": {"minRules": 10**6}}, "evolutionConfig.minRules"),
    ],
    ids=[
        "name",
        "key",
        "description",
        "target-field",
        "registry-family",
        "predictor",
        "weight-key",
        "many-weights",
        "interaction-features",
        "schedule",
        "min-samples",
        "min-rules",
    ],
)
def test_every_model_field_is_bounded(api: TestClient, fields: dict[str, Any], field: str) -> None:
    response = api.post(BASE, json=_scorecard(**fields), headers=A)

    problem = assert_problem(response, 422, "validation_error")
    assert problem["field"].startswith(field), problem


@pytest.mark.parametrize(
    ("model_type", "config", "field"),
    [
        ("neural_cf", {"embeddingDim": 10**9}, "config.embeddingDim"),
        ("neural_cf", {"epochs": 10**9}, "config.epochs"),
        ("logistic_regression", {"maxIterations": 10**12}, "config.maxIterations"),
        ("bayesian", {"maxPredictors": 10**9}, "config.maxPredictors"),
        ("neural_cf", {"learningRate": "Infinity"}, "config.learningRate"),
        ("thompson_bandit", {"priorAlpha": "Infinity"}, "config.priorAlpha"),
    ],
)
def test_engine_sizes_and_numbers_are_bounded(
    api: TestClient, model_type: str, config: dict[str, Any], field: str
) -> None:
    body = {"key": "m", "name": "M", "modelType": model_type, "config": config}

    response = api.post(BASE, json=body, headers=A)

    assert_problem(response, 422, "validation_error", field)


def test_the_seed_scorecard_still_validates(api: TestClient) -> None:
    rules = [
        {**RULE, "description": "d" * 1000},
        {"field": "f" * 255, "operator": "in", "value": ["a"] * 1000, "points": 1},
    ]

    response = api.post(BASE, json=_scorecard(config={"rules": rules}), headers=A)

    assert response.status_code == 201, response.text


def test_the_data_root_is_never_in_a_dataset_path_answer(
    api: TestClient, settings: Settings, tmp_path: Path
) -> None:
    response = api.post("/train", json=_train_body(dataset_path="missing.csv"), headers=A)

    assert str(settings.data_root) not in response.text
    assert str(tmp_path) not in response.text
