"""``POST /optimize``, ``GET /study/{id}`` and ``GET /study/{id}/best`` over HTTP."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlworker.training.algorithms import ALGORITHMS
from mlworker.training.model import validate_hyperparams
from tests.api.conftest import assert_problem
from tests.support import wait_for
from tests.training.data import churn, classification

_STUDY_ID = re.compile(r"^study-[0-9a-f]{12}$")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    churn(300).to_csv(root / "churn.csv", index=False)
    return root


def _finished(client: TestClient, job_id: str, **headers: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = client.get(f"/status/{job_id}", headers=headers).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(done, timeout=120, interval=0.1)
    return result


def test_the_seed_curl_body_works_and_best_params_train(
    client: TestClient, data_root: Path
) -> None:
    body = {
        "dataset_path": str(data_root / "churn.csv"),
        "target_column": "Churn",
        "algorithm": "RandomForestClassifier",
        "n_trials": 3,
    }
    response = client.post("/optimize", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["success"] is True and _STUDY_ID.match(answer["study_id"])
    assert answer["n_trials"] == 3
    assert answer["n_completed"] + answer["n_pruned"] + answer["n_failed"] == 3
    assert answer["algorithm"] == "RandomForestClassifier" and answer["scoring"] == "roc_auc"
    assert 0.5 < answer["best_score"] <= 1.0 and answer["elapsed"] > 0
    assert "leaderboard" not in answer and "model_id" not in answer
    validate_hyperparams(ALGORITHMS["RandomForestClassifier"], answer["best_params"])
    train_body = {k: v for k, v in body.items() if k != "n_trials"}
    trained = client.post("/train", json={**train_body, "hyperparams": answer["best_params"]})
    assert trained.status_code == 200, trained.text
    assert trained.json()["params"].items() >= answer["best_params"].items()


def test_async_answers_202_with_a_job_whose_result_is_the_answer(
    client: TestClient, data_root: Path
) -> None:
    body = {
        "datasetPath": "churn.csv",
        "targetColumn": "Churn",
        "algorithm": "LogisticRegression",
        "nTrials": 2,
        "async": True,
    }
    response = client.post("/optimize", json=body)
    assert response.status_code == 202, response.text
    job = _finished(client, response.json()["jobId"])
    assert job["status"] == "completed", job
    assert _STUDY_ID.match(job["result"]["study_id"]) and job["result"]["n_trials"] == 2

    preferred = client.post(
        "/optimize",
        json={k: v for k, v in body.items() if k != "async"},
        headers={"Prefer": "respond-async"},
    )
    assert preferred.status_code == 202 and preferred.json()["jobId"]
    _finished(client, preferred.json()["jobId"])


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"n_trials": 0}, 422, "validation_error", "n_trials"),
        ({"n_trials": 11}, 422, "validation_error", "n_trials"),  # MAX_TRIALS=10 below
        ({"cv_folds": 1}, 422, "validation_error", "cv_folds"),
        ({"timeout": 0}, 422, "validation_error", "timeout"),
        ({"pruner": "sometimes"}, 422, "validation_error", "pruner"),
        ({"scoring": "made_up"}, 400, "invalid_input", "scoring"),
        ({"scoring": "r2"}, 400, "invalid_input", "scoring"),
        ({"algorithm": "NoSuchModel"}, 400, "invalid_input", "algorithm"),
        ({"dataset_path": "missing.csv"}, 400, "dataset_not_found", "dataset_path"),
        (
            {"dataset_path": None, "dataset": {"path": "missing.csv"}},
            400,
            "dataset_not_found",
            "dataset.path",
        ),
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    app_client: Any, data_root: Path, change: dict[str, Any], status: int, code: str, field: str
) -> None:
    body = {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "SVC",
        "n_trials": 5,
    } | change
    with app_client(max_trials=10) as client:
        assert_problem(client.post("/optimize", json=body), status, code, field)


def test_the_timeout_bounds_the_whole_request_training_included(
    client: TestClient, data_root: Path
) -> None:
    body = {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "LogisticRegression",
        "n_trials": 1000,
        "timeout": 5,
        "train_best": True,
    }
    started = time.monotonic()
    response = client.post("/optimize", json=body)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()
    assert elapsed <= 5 * 1.1, elapsed
    assert answer["stopped"] == "timeout" and answer["n_completed"] >= 1
    trained = str(answer.get("model_id")).startswith("model-")
    assert trained or any("deadline" in w for w in answer["warnings"]), answer


def test_train_best_returns_a_model_that_records_its_study(
    client: TestClient, data_root: Path
) -> None:
    body = {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "LGBMClassifier",
        "n_trials": 3,
        "train_best": True,
        "test_size": 0.25,
    }
    answer = client.post("/optimize", json=body).json()
    model = client.get(f"/model/{answer['model_id']}").json()
    assert model["study_id"] == answer["study_id"]
    assert answer["metrics"]["roc_auc"] > 0.5
    assert client.get(f"/study/{answer['study_id']}").json()["model_id"] == answer["model_id"]


def test_study_lists_every_trial_for_history_and_importance(
    client: TestClient, data_root: Path
) -> None:
    body = {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "LogisticRegression",
        "n_trials": 5,
        "pruner": "none",
    }
    answer = client.post("/optimize", json=body).json()
    study = client.get(f"/study/{answer['study_id']}").json()
    assert study["study_id"] == answer["study_id"] and study["status"] == "completed"
    assert study["algorithm"] == "LogisticRegression" and study["scoring"] == "roc_auc"
    assert study["best_score"] == answer["best_score"] and study["n_trials"] == 5
    assert [t["number"] for t in study["trials"]] == [0, 1, 2, 3, 4]
    for trial in study["trials"]:
        assert set(trial) >= {
            "number",
            "state",
            "params",
            "value",
            "duration",
            "intermediate_values",
            "failure",
        }
        assert trial["state"] == "complete" and trial["duration"] > 0
        assert list(trial["intermediate_values"]) == ["0", "1", "2", "3", "4"]
        assert not any("|" in name for name in trial["params"])
    assert study["param_importances"] and "C" in study["param_importances"]
    best = client.get(f"/study/{answer['study_id']}/best").json()
    assert best["best_params"] == answer["best_params"]
    assert best["best_score"] == answer["best_score"] and best["best_trial"] == study["best_trial"]


def test_another_tenant_sees_no_study(app_client: Any, data_root: Path) -> None:
    keys = {"key-a": "alpha", "key-b": "beta"}
    with app_client(api_keys=keys) as client:
        alpha = {"Authorization": "Bearer key-a"}
        beta = {"Authorization": "Bearer key-b"}
        body = {
            "dataset_path": "churn.csv",
            "target_column": "Churn",
            "algorithm": "LogisticRegression",
            "n_trials": 2,
        }
        study_id = client.post("/optimize", json=body, headers=alpha).json()["study_id"]
        assert client.get(f"/study/{study_id}", headers=alpha).status_code == 200
        assert_problem(client.get(f"/study/{study_id}", headers=beta), 404, "not_found")
        assert_problem(client.get(f"/study/{study_id}/best", headers=beta), 404, "not_found")


@pytest.mark.parametrize(
    "study_id",
    [
        "study-ABCDEF012345",
        "study-0123456789abc",
        "study-0123456789a",
        "' OR 1=1 --",
        "study-..%2F..%2Fetc",
        "x" * 300,
        "study-0123456789ab%00",
    ],
)
def test_hostile_study_ids_are_404(client: TestClient, study_id: str) -> None:
    assert_problem(client.get(f"/study/{study_id}"), 404, "not_found")
    assert_problem(client.get(f"/study/{study_id}/best"), 404, "not_found")


def test_health_answers_fast_while_a_search_runs_on_the_local_pool(
    app_client: Any, data_root: Path
) -> None:
    body = {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "auto",
        "n_trials": 1000,
        "timeout": 12,
        "n_workers": 2,
        "async": True,
    }
    with app_client(executor="local", workers=2) as client:
        job_id = client.post("/optimize", json=body).json()["jobId"]
        progress = re.compile(r"^trial \d+/1000( · best 0\.\d+)?$")
        wait_for(
            lambda: progress.match(client.get(f"/status/{job_id}").json()["progress"]["message"]),
            timeout=60,
        )
        slowest = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.2)
        assert slowest < 1.0
        job = _finished(client, job_id)
        assert job["status"] == "completed", job
        result = job["result"]
        assert result["n_workers"] == 2 and result["leaderboard"]
        helper = result["workers"][0]
        assert helper["status"] == "completed" and helper["trials"] >= 1, helper


def test_health_lists_training_and_optimization(client: TestClient) -> None:
    capabilities = client.get("/health").json()["capabilities"]
    assert {"training", "optimization"} <= set(capabilities)


def test_a_search_without_a_finished_trial_is_422_naming_the_timeout(
    client: TestClient, data_root: Path
) -> None:
    classification(6000, features=20).to_csv(data_root / "large.csv", index=False)
    body = {"dataset_path": "large.csv", "target_column": "y", "algorithm": "SVC", "timeout": 3}
    started = time.monotonic()
    response = client.post("/optimize", json=body)
    assert time.monotonic() - started <= 3 * 1.1
    problem = assert_problem(response, 422, "no_trial_completed", "timeout")
    match = re.search(r"study-[0-9a-f]{12}", problem["detail"])
    assert match is not None
    study = client.get(f"/study/{match.group(0)}").json()
    assert study["status"] == "failed"
    assert study["trials"][0]["state"] == "fail"
    assert "deadline" in study["trials"][0]["failure"]
