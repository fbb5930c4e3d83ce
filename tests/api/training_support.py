"""Helpers for the training and model API tests: a data root with tables, training, waiting."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from mlworker.config import Settings
from tests.training.tables import telco_churn

CHURN_ROWS = 300
#: A small forest: every test trains in a fraction of a second.
QUICK = {"n_estimators": 20}


def write_tables(settings: Settings) -> None:
    """Put ``churn.csv`` (Telco-style, target ``Churn``) under the data root."""
    telco_churn(CHURN_ROWS).to_csv(settings.data_root / "churn.csv", index=False)


def train_body(**overrides: Any) -> dict[str, Any]:
    """A ``/train`` body on ``churn.csv`` with a quick forest."""
    return {
        "dataset_path": "churn.csv",
        "target_column": "Churn",
        "algorithm": "RandomForestClassifier",
        "hyperparams": dict(QUICK),
        **overrides,
    }


def train(client: TestClient, headers: dict[str, str] | None = None, **overrides: Any) -> str:
    """Train synchronously and return the model id."""
    response = client.post("/train", json=train_body(**overrides), headers=headers)
    assert response.status_code == 200, response.text
    model_id: str = response.json()["model_id"]
    return model_id


def wait_for_job(
    client: TestClient, job_id: str, headers: dict[str, str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Poll ``/status/{job_id}`` until the job finishes; return its status body."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/status/{job_id}", headers=headers).json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, f"job {job_id} still {body['status']}"
        time.sleep(0.05)


def assert_nothing_internal(text: str, settings: Settings) -> None:
    """No traceback, source location or server path in a response body."""
    assert "Traceback" not in text
    assert 'File "' not in text
    assert "site-packages" not in text
    assert str(settings.data_root) not in text
    assert str(settings.artifacts) not in text
    assert str(settings.data_root.parent) not in text
