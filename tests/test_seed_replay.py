"""The Auto-DataScientist seed's README, replayed against a real ``mlworker serve`` process.

The three curl examples run through the real ``curl`` exactly as the seed prints them; only the
host (``localhost:8002`` → this test's port) and the data directory (``/data/`` → this test's
data root, which is what ``MLWORKER_DATA_ROOT=/data`` gives a deployment) are substituted. The
orchestrator snippet's request is sent with ``httpx`` as the snippet does, with ``best_params``
from a real ``/optimize`` on the same file, and the model it trains is then evaluated: the
seed's optimize → train → evaluate loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from tests.support import free_port, wait_for
from tests.training.data import churn

pytestmark = pytest.mark.slow

#: The seed README's curl examples, verbatim.
SEED_TRAIN = """curl -X POST "http://localhost:8002/train" \\
  -H "Content-Type: application/json" \\
  -d '{
    "dataset_path": "/data/churn.csv",
    "target_column": "Churn",
    "algorithm": "RandomForestClassifier",
    "test_size": 0.2,
    "random_state": 42
  }'"""
SEED_OPTIMIZE = """curl -X POST "http://localhost:8002/optimize" \\
  -H "Content-Type: application/json" \\
  -d '{
    "dataset_path": "/data/churn.csv",
    "target_column": "Churn",
    "algorithm": "RandomForestClassifier",
    "n_trials": 100
  }'"""
SEED_EVALUATE = 'curl "http://localhost:8002/model/model-abc123/evaluate"'
SEED_ALGORITHMS = 'curl "http://localhost:8002/algorithms"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``mlworker serve`` on the embedded default (SQLite, local pool), as ``make serve`` does."""
    root = tmp_path_factory.mktemp("seed")
    data = root / "data"
    data.mkdir()
    churn(300).to_csv(data / "churn.csv", index=False)
    cancer = load_breast_cancer(as_frame=True).frame
    cancer.to_csv(data / "breast_cancer.csv", index=False)
    port = free_port()
    env = {
        **os.environ,
        "ML_WORKER_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{root}/var/mlworker.db",
        "MLWORKER_DATA_ROOT": str(data),
        "MLWORKER_ARTIFACTS": str(root / "models"),
        "MLWORKER_WORKERS": "2",
        "MLWORKER_LOG_FORMAT": "json",
    }
    log_path = root / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlworker", "serve"],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"serve exited early:\n{log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=90, interval=0.2)
        yield url, data
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-5000:]


def curl(command: str, url: str, data_root: Path, **replace: str) -> tuple[int, Any]:
    """Run a seed curl command; answer ``(HTTP status, JSON body)``."""
    command = command.replace("http://localhost:8002", url).replace("/data/", f"{data_root}/")
    for old, new in replace.items():
        command = command.replace(old, new)
    # A shell parses the README's quoting and line continuations exactly as a user's would.
    arguments = shlex.split(command.replace("\\\n", " "))
    assert arguments[0] == "curl"
    completed = subprocess.run(
        [*arguments, "--silent", "--show-error", "--write-out", "\n%{http_code}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    body, _, status = completed.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_seed_curl_examples_work_verbatim(server: tuple[str, Path]) -> None:
    url, data_root = server

    status, trained = curl(SEED_TRAIN, url, data_root)
    assert status == 200, trained
    assert trained["success"] is True
    assert re.fullmatch(r"model-[0-9a-f]{12}", trained["model_id"])
    assert trained["message"] == "Model trained successfully"
    for key in ("accuracy", "precision", "recall", "f1_score"):
        assert 0.5 < trained["metrics"][key] <= 1.0, (key, trained["metrics"])

    status, optimized = curl(SEED_OPTIMIZE, url, data_root)
    assert status == 200, optimized
    assert optimized["success"] is True
    assert re.fullmatch(r"study-[0-9a-f]{12}", optimized["study_id"])
    assert optimized["n_trials"] == 100
    assert optimized["n_completed"] + optimized["n_pruned"] + optimized["n_failed"] == 100
    assert 0.5 < optimized["best_score"] <= 1.0
    assert {"n_estimators", "max_depth", "min_samples_split"} <= set(optimized["best_params"])

    status, evaluation = curl(
        SEED_EVALUATE, url, data_root, **{"model-abc123": trained["model_id"]}
    )
    assert status == 200, evaluation
    assert evaluation["metrics"]["accuracy"] == pytest.approx(trained["metrics"]["accuracy"])
    matrix = evaluation["confusion_matrix"]
    assert len(matrix) == 2 and sum(map(sum, matrix)) == trained["n_test"] == 60
    assert isinstance(evaluation["classification_report"], (str, dict))
    importance = evaluation["feature_importance"]
    assert "tenure" in importance and "customerID" not in importance
    assert list(importance.values()) == sorted(importance.values(), reverse=True)

    status, algorithms = curl(SEED_ALGORITHMS, url, data_root)
    assert status == 200
    assert "RandomForestClassifier" in algorithms["classification"]
    assert "LinearRegression" in algorithms["regression"]


async def _orchestrator_train(url: str, file_path: str, best_params: dict[str, Any]) -> Any:
    # The seed's snippet awaits the module-level ``httpx.post`` (which is synchronous); an
    # orchestrator runs the same request through an async client.
    async with httpx.AsyncClient(timeout=600) as client:
        return await client.post(
            f"{url}/train",
            json={
                "dataset_path": file_path,
                "target_column": "target",
                "algorithm": "RandomForestClassifier",
                "hyperparams": best_params,  # From optimization
            },
        )


def test_the_orchestrator_loop_optimize_train_evaluate(server: tuple[str, Path]) -> None:
    url, data_root = server
    file_path = str(data_root / "breast_cancer.csv")
    optimized = httpx.post(
        f"{url}/optimize",
        json={
            "dataset_path": file_path,
            "target_column": "target",
            "algorithm": "RandomForestClassifier",
            "n_trials": 8,
        },
        timeout=600,
    )
    assert optimized.status_code == 200, optimized.text
    best_params = optimized.json()["best_params"]

    response = asyncio.run(_orchestrator_train(url, file_path, best_params))
    assert response.status_code == 200, response.text
    result = response.json()
    model_id = result["model_id"]
    assert result["metrics"]["accuracy"] > 0.9

    model = httpx.get(f"{url}/model/{model_id}").json()
    for name, value in best_params.items():
        assert model["params"][name] == value, name
    evaluation = httpx.get(f"{url}/model/{model_id}/evaluate").json()
    assert evaluation["metrics"]["accuracy"] == pytest.approx(result["metrics"]["accuracy"])
    assert evaluation["roc_curve"] is not None
