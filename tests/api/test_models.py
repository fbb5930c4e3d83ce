"""Trained models over HTTP: evaluation, metadata, listing, prediction, export, deletion.

Also what must never happen: a file in the artifact directory loaded without a registry row, a
changed file loaded at all, a hostile id reaching the store, one tenant seeing another's model.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.api.training_support import (
    CHURN_ROWS,
    assert_nothing_internal,
    train,
    train_body,
    wait_for_job,
    write_tables,
)
from tests.training.tables import telco_churn

ROWS = telco_churn(5, random_state=11).drop(columns=["Churn"])


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    settings: Settings = make_settings()
    write_tables(settings)
    return settings


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def model_id(api: TestClient) -> str:
    return train(api)


def artifact_files(settings: Settings, model_id: str) -> list[Path]:
    return list(Path(settings.artifacts).rglob(f"{model_id}/**/model.zip"))


def predict(api: TestClient, model_id: str, rows: pd.DataFrame = ROWS) -> Any:
    return api.post(f"/model/{model_id}/predict", json={"rows": rows.to_dict("records")})


def test_evaluation_has_the_seed_shape_and_more(api: TestClient, model_id: str) -> None:
    response = api.get(f"/model/{model_id}/evaluate")

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["model_id"] == model_id
    assert {"accuracy", "precision", "recall", "f1_score"} <= set(report["metrics"])
    matrix = np.asarray(report["confusion_matrix"])
    assert matrix.shape == (2, 2) and matrix.sum() == CHURN_ROWS // 5
    assert report["labels"] == ["No", "Yes"]
    assert "precision" in report["classification_report"]
    importance = report["feature_importance"]
    assert 0 < len(importance) <= 10 and "customerID" not in importance
    assert set(importance) <= set(telco_churn(1).columns)
    assert len(report["roc_curve"]["fpr"]) == len(report["roc_curve"]["tpr"])
    assert 0 <= report["pr_curve"]["average_precision"] <= 1
    assert "brier_score" in report["calibration"]


def test_evaluation_does_not_depend_on_the_csv_afterwards(
    api: TestClient, settings: Settings, model_id: str
) -> None:
    before = api.get(f"/model/{model_id}/evaluate").json()
    path = settings.data_root / "churn.csv"

    telco_churn(CHURN_ROWS, random_state=99).to_csv(path, index=False)  # edited
    edited = api.get(f"/model/{model_id}/evaluate").json()
    path.unlink()  # deleted
    deleted = api.get(f"/model/{model_id}/evaluate").json()

    assert edited == before
    assert deleted == before


def test_model_metadata_tells_its_lineage(api: TestClient, settings: Settings) -> None:
    trained = api.post("/train", json=train_body(hyperparams={})).json()

    model = api.get(f"/model/{trained['model_id']}").json()

    assert model["model_id"] == trained["model_id"]
    assert model["algorithm"] == "RandomForestClassifier"
    assert model["task"] == "classification"
    assert (model["target"], model["classes"]) == ("Churn", ["No", "Yes"])
    assert model["params"] == {"n_estimators": 200}  # our default, though the request set none
    assert model["metrics"] == trained["metrics"]
    assert model["dataset_fingerprint"] == trained["dataset_fingerprint"]
    assert len(model["dataset_fingerprint"]) == 64
    assert model["dataset"]["path"] == "churn.csv"
    assert model["job_id"] == trained["job_id"]
    assert {"scikit-learn", "numpy", "pandas"} <= set(model["library_versions"])
    assert datetime.fromisoformat(model["created_at"]).year >= 2024
    assert (model["n_train"], model["n_test"]) == (trained["n_train"], trained["n_test"])
    assert model["version"] == 1 and len(model["artifact_sha256"]) == 64


def test_models_are_listed_newest_first(api: TestClient) -> None:
    first = train(api)
    second = train(api, algorithm="LogisticRegression", hyperparams={})

    listed = api.get("/models").json()["models"]

    assert [model["model_id"] for model in listed] == [second, first]
    assert listed[0]["algorithm"] == "LogisticRegression"
    assert [m["model_id"] for m in api.get("/models", params={"limit": 1}).json()["models"]] == [
        second
    ]


def test_delete_removes_the_record_and_the_file(
    api: TestClient, settings: Settings, model_id: str
) -> None:
    assert api.get(f"/model/{model_id}/evaluate").status_code == 200  # loaded (and cached)
    files = artifact_files(settings, model_id)
    assert len(files) == 1

    assert api.delete(f"/model/{model_id}").status_code == 204

    assert not files[0].exists()
    for method, path in [
        ("GET", f"/model/{model_id}"),
        ("GET", f"/model/{model_id}/evaluate"),
        ("GET", f"/model/{model_id}/artifact"),
        ("DELETE", f"/model/{model_id}"),
    ]:
        assert_problem(api.request(method, path), 404, "not_found")
    assert_problem(predict(api, model_id), 404, "not_found")
    assert api.get("/models").json()["models"] == []


def test_rows_are_predicted_with_labels_and_probabilities(api: TestClient, model_id: str) -> None:
    response = predict(api, model_id)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_id"] == model_id
    assert len(answer["predictions"]) == len(ROWS)
    assert set(answer["predictions"]) <= {"Yes", "No"}
    assert answer["classes"] == ["No", "Yes"]
    for label, probabilities in zip(answer["predictions"], answer["probabilities"], strict=True):
        assert set(probabilities) == {"No", "Yes"}
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert label == max(probabilities, key=probabilities.get)


def test_rows_missing_a_column_are_a_400_naming_it(api: TestClient, model_id: str) -> None:
    response = predict(api, model_id, ROWS.drop(columns=["Contract"]))

    problem = assert_problem(response, 400, "invalid_input", "rows")
    assert "Contract" in problem["detail"]


def test_a_dataset_is_predicted_by_a_job_writing_to_the_tenant_outputs(
    api: TestClient, settings: Settings, model_id: str
) -> None:
    body = {"dataset": {"path": "churn.csv"}, "output_format": "csv"}

    response = api.post(f"/model/{model_id}/predict", json=body)

    assert response.status_code == 202, response.text
    status = wait_for_job(api, response.json()["jobId"])
    assert status["status"] == "completed", status
    result = status["result"]
    assert result["rows"] == CHURN_ROWS
    job_id = response.json()["jobId"]
    assert result["path"] == f"outputs/predictions/{job_id}.csv"
    written = pd.read_csv(settings.outputs / "default" / "predictions" / f"{job_id}.csv")
    assert list(written.columns) == ["prediction", "probability_No", "probability_Yes"]
    assert len(written) == CHURN_ROWS
    assert set(written["prediction"]) <= {"Yes", "No"}
    assert sum(result["class_counts"].values()) == CHURN_ROWS


def test_zip_export_is_the_stored_model_file(
    api: TestClient, settings: Settings, model_id: str
) -> None:
    response = api.get(f"/model/{model_id}/artifact")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert f"{model_id}.zip" in response.headers["content-disposition"]
    assert response.content == artifact_files(settings, model_id)[0].read_bytes()
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("manifest.json"))
    assert manifest["metadata"]["model_id"] == model_id


def test_joblib_export_loads_and_predicts_like_the_api(api: TestClient, model_id: str) -> None:
    data = api.get(f"/model/{model_id}/artifact", params={"format": "joblib"}).content

    model = joblib.load(io.BytesIO(data))

    assert model.predict(ROWS) == predict(api, model_id).json()["predictions"]


def test_skops_export_loads_with_the_allow_list(api: TestClient, model_id: str) -> None:
    data = api.get(f"/model/{model_id}/artifact", params={"format": "skops"}).content

    untrusted = sio.get_untrusted_types(data=data)
    allowed = {"numpy.dtype", "mlworker.training.features.FeaturePreparer"}
    assert all(name.startswith("sklearn.") or name in allowed for name in untrusted), untrusted
    pipeline = sio.loads(data, trusted=untrusted)

    expected = predict(api, model_id).json()["probabilities"]
    np.testing.assert_allclose(pipeline.predict_proba(ROWS)[:, 1], [p["Yes"] for p in expected])


def test_skops_export_of_a_native_booster_is_refused(api: TestClient) -> None:
    model_id = train(api, algorithm="LGBMClassifier", hyperparams={"n_estimators": 10})

    response = api.get(f"/model/{model_id}/artifact", params={"format": "skops"})

    assert_problem(response, 400, "export_unavailable", "format")


@pytest.mark.parametrize("algorithm", ["RandomForestClassifier", "XGBClassifier"])
def test_onnx_export_runs_in_onnxruntime(api: TestClient, algorithm: str) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    model_id = train(api, algorithm=algorithm, hyperparams={"n_estimators": 10})

    response = api.get(f"/model/{model_id}/artifact", params={"format": "onnx"})

    assert response.status_code == 200, response.text
    assert f"{model_id}.onnx" in response.headers["content-disposition"]
    props = {p.key: p.value for p in onnx.load_from_string(response.content).metadata_props}
    joblib_model = joblib.load(
        io.BytesIO(api.get(f"/model/{model_id}/artifact", params={"format": "joblib"}).content)
    )
    prepared = joblib_model.prepare(ROWS)  # the graph takes prepared columns
    feeds = {}
    for item in json.loads(props["mlworker.inputs"]):
        column = prepared[item["column"]]
        dtype = "float32" if item["type"] == "float32" else object
        feeds[item["name"]] = column.to_numpy(dtype).reshape(-1, 1)
    session = onnxruntime.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, feeds)
    expected = predict(api, model_id).json()
    classes = json.loads(props["mlworker.classes"])
    assert [classes[code] for code in labels] == expected["predictions"]
    np.testing.assert_allclose(
        probabilities[:, 1], [p["Yes"] for p in expected["probabilities"]], atol=1e-4
    )


def test_unknown_export_format_is_a_validation_error(api: TestClient, model_id: str) -> None:
    response = api.get(f"/model/{model_id}/artifact", params={"format": "pickle"})

    assert_problem(response, 422, "validation_error")


HOSTILE_IDS = ["..", "%2E%2E", "..%2F..%2Fetc", "model-..%2F..%2Fvar", "x" * 300, "model-XYZ"]


@pytest.mark.parametrize(
    "hostile",
    HOSTILE_IDS,
    ids=["dots", "encoded-dots", "slashes", "prefixed-slashes", "long", "not-hex"],
)
def test_hostile_model_ids_are_404(api: TestClient, settings: Settings, hostile: str) -> None:
    train(api)  # something to find, were the id to escape
    for method, suffix in [
        ("GET", ""),
        ("GET", "/evaluate"),
        ("GET", "/artifact"),
        ("DELETE", ""),
        ("POST", "/predict"),
    ]:
        body = {"rows": [{"tenure": 1}]} if method == "POST" else None
        response = api.request(method, f"/model/{hostile}{suffix}", json=body)
        assert_problem(response, 404, "not_found")
        assert_nothing_internal(response.text, settings)
    assert len(api.get("/models").json()["models"]) == 1


def test_a_planted_model_file_without_a_registry_row_is_never_loaded(
    api: TestClient, settings: Settings, model_id: str
) -> None:
    planted_id = "model-0123456789ab"
    source = artifact_files(settings, model_id)[0]
    planted = Path(str(source).replace(model_id, planted_id))
    planted.parent.mkdir(parents=True)
    planted.write_bytes(source.read_bytes())

    for path in ("", "/evaluate", "/artifact"):
        assert_problem(api.get(f"/model/{planted_id}{path}"), 404, "not_found")
    assert_problem(predict(api, planted_id), 404, "not_found")
    assert planted_id not in json.dumps(api.get("/models").json())


def test_a_changed_model_file_is_refused_not_loaded(
    api: TestClient, settings: Settings, model_id: str
) -> None:
    path = artifact_files(settings, model_id)[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    for response in (
        api.get(f"/model/{model_id}/evaluate"),
        predict(api, model_id),
        api.get(f"/model/{model_id}/artifact"),
        api.get(f"/model/{model_id}/artifact", params={"format": "onnx"}),
    ):
        problem = assert_problem(response, 500, "artifact_corrupt", "model_id")
        assert model_id in problem["detail"]
        assert_nothing_internal(response.text, settings)
    assert api.get(f"/model/{model_id}").status_code == 200  # the record itself still reads
    assert api.get("/health").status_code == 200


def test_a_removed_model_file_is_reported_not_crashed_on(
    api: TestClient, settings: Settings, model_id: str
) -> None:
    artifact_files(settings, model_id)[0].unlink()

    problem = assert_problem(api.get(f"/model/{model_id}/evaluate"), 500, "artifact_corrupt")

    assert "missing" in problem["detail"]


def test_models_are_invisible_across_tenants(make_settings: Any) -> None:
    settings: Settings = make_settings(api_keys={"key-a": "tenant-a", "key-b": "tenant-b"})
    write_tables(settings)
    a, b = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
    with TestClient(create_app(settings)) as client:
        model_id = train(client, headers=a)

        for method, path in [
            ("GET", f"/model/{model_id}"),
            ("GET", f"/model/{model_id}/evaluate"),
            ("GET", f"/model/{model_id}/artifact"),
            ("DELETE", f"/model/{model_id}"),
        ]:
            assert_problem(client.request(method, path, headers=b), 404, "not_found")
        rows = {"rows": ROWS.to_dict("records")}
        response = client.post(f"/model/{model_id}/predict", json=rows, headers=b)
        assert_problem(response, 404, "not_found")
        assert client.get("/models", headers=b).json()["models"] == []
        assert_problem(client.get("/models"), 401, "unauthorized")

        assert client.get(f"/model/{model_id}", headers=a).status_code == 200
        assert [m["model_id"] for m in client.get("/models", headers=a).json()["models"]] == [
            model_id
        ]
