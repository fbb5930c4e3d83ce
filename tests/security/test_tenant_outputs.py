"""Job outputs are private to their tenant (issue 10, defect 4; ARCHITECTURE.md §7.7).

Tenant A writes predictions and segment assignments; tenant B tries every spelling of those
files a dataset spec allows (relative, ``./``, ``..``, absolute, symbolic links, the legacy
locations under the data root) to profile, train on and page through them, and is refused
each time. Tenant A still reads its own outputs back, by the path its job's result names.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.api.analysis_support import customers
from tests.api.training_support import QUICK, train, wait_for_job, write_tables

KEYS = {"key-a": "tenant-a", "key-b": "tenant-b"}
A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
REFUSALS = {"path_not_allowed", "dataset_not_found"}


@dataclass(frozen=True)
class Written:
    """What tenant A's jobs wrote: result paths, real files, ids."""

    model_id: str
    predict_job: str
    segment_job: str
    predictions: str  # the result's path, e.g. outputs/predictions/<job>.parquet
    segments: str
    prediction_file: Path
    segment_file: Path


def _run(client: TestClient, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    status = wait_for_job(client, response.json()["jobId"], A)
    assert status["status"] == "completed", status
    return status


def _write_outputs(client: TestClient, settings: Settings) -> Written:
    model_id = train(client, headers=A)
    predicted = _run(
        client,
        client.post(
            f"/model/{model_id}/predict",
            json={"dataset": {"path": "churn.csv"}, "output_format": "parquet"},
            headers=A,
        ),
    )
    segmented = _run(
        client,
        client.post(
            "/analyze/segments",
            json={
                "dataset": {"path": "customers.parquet"},
                "config": {"idColumn": "customer_id", "writeAssignments": "file"},
            },
            headers=A,
        ),
    )
    predict_job, segment_job = predicted["jobId"], segmented["jobId"]
    folder = settings.outputs.resolve() / "tenant-a"
    return Written(
        model_id=model_id,
        predict_job=predict_job,
        segment_job=segment_job,
        predictions=predicted["result"]["path"],
        segments=segmented["result"]["assignments"]["path"],
        prediction_file=folder / "predictions" / f"{predict_job}.parquet",
        segment_file=folder / "segments" / f"{segment_job}.parquet",
    )


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    settings: Settings = make_settings(api_keys=KEYS)
    write_tables(settings)
    customers(n=300, seed=1)[0].to_parquet(settings.data_root / "customers.parquet")
    return settings


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, Written]]:
    with TestClient(create_app(settings)) as client:
        yield client, _write_outputs(client, settings)


def _spellings(settings: Settings, written: Written) -> list[str]:
    """Every way tenant B could name tenant A's output files."""
    root = settings.data_root.resolve()
    names = []
    for result_path, real in (
        (written.predictions, written.prediction_file),
        (written.segments, written.segment_file),
    ):
        inside = result_path.removeprefix("outputs/")
        climb = os.path.relpath(real, root)  # ../var/outputs/tenant-a/…
        names += [
            result_path,
            f"./{result_path}",
            f"outputs/../{result_path}",
            f"outputs/{inside.split('/')[0]}/../{inside}",
            str(root / result_path),  # absolute, spelled under the data root
            str(real),  # absolute, the real place
            climb,
            f"./{climb}",
            f"outputs/../{climb}",
            f"outputs/../../{climb}",
            f"outputs/../tenant-a/{inside}",
            f"outputs/../../var/outputs/tenant-a/{inside}",
        ]
    return names


def _refused(response: Any) -> None:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] in REFUSALS, response.text


def test_outputs_are_written_outside_the_data_root(
    world: tuple[TestClient, Written], settings: Settings
) -> None:
    _, written = world
    assert written.predictions == f"outputs/predictions/{written.predict_job}.parquet"
    assert written.segments == f"outputs/segments/{written.segment_job}.parquet"
    assert written.prediction_file.is_file() and written.segment_file.is_file()
    data_root = settings.data_root.resolve()
    assert not written.prediction_file.is_relative_to(data_root)
    assert not written.segment_file.is_relative_to(data_root)
    assert not any(data_root.rglob(f"{written.predict_job}*"))
    assert not any(data_root.rglob(f"{written.segment_job}*"))


def test_another_tenant_cannot_profile_or_train_on_outputs_by_any_spelling(
    world: tuple[TestClient, Written], settings: Settings
) -> None:
    client, written = world
    for path in _spellings(settings, written):
        _refused(client.post("/datasets/profile", json={"dataset": {"path": path}}, headers=B))
        _refused(
            client.post(
                "/train",
                json={
                    "dataset": {"path": path},
                    "target_column": "prediction",
                    "algorithm": "RandomForestClassifier",
                    "hyperparams": dict(QUICK),
                },
                headers=B,
            )
        )


def test_another_tenant_cannot_reach_outputs_through_a_symlink(
    world: tuple[TestClient, Written], settings: Settings
) -> None:
    client, written = world
    root = settings.data_root
    (root / "shared").symlink_to(settings.outputs.resolve(), target_is_directory=True)
    (root / "latest.parquet").symlink_to(written.segment_file)
    (root / "outputs-link").symlink_to(root / "outputs", target_is_directory=True)
    for path in (
        f"shared/tenant-a/segments/{written.segment_job}.parquet",
        "latest.parquet",
        f"outputs-link/segments/{written.segment_job}.parquet",
    ):
        for headers in (A, B):  # a link is no way in, not even for the owner
            _refused(
                client.post("/datasets/profile", json={"dataset": {"path": path}}, headers=headers)
            )


def test_another_tenant_cannot_page_assignments(world: tuple[TestClient, Written]) -> None:
    client, written = world
    url = f"/analyze/segments/{written.segment_job}/assignments"
    assert client.get(url, headers=B).status_code == 404
    page = client.get(url, headers=A, params={"limit": 5})
    assert page.status_code == 200 and len(page.json()["items"]) == 5


def test_the_owner_reads_its_outputs_back_by_the_result_path(
    world: tuple[TestClient, Written],
) -> None:
    client, written = world
    for path, rows in ((written.predictions, None), (f"./{written.segments}", 300)):
        response = client.post("/datasets/profile", json={"dataset": {"path": path}}, headers=A)
        assert response.status_code == 202, response.text
        status = wait_for_job(client, response.json()["jobId"], A)
        assert status["status"] == "completed", status
        if rows is not None:
            assert status["result"]["rowCount"] == rows, status["result"]
    model = client.post(
        "/train",
        json={
            "dataset": {"path": written.segments},
            "target_column": "segment_name",
            "algorithm": "RandomForestClassifier",
            "hyperparams": dict(QUICK),
        },
        headers=A,
    )
    assert model.status_code == 200, model.text


def test_legacy_output_folders_under_the_data_root_are_reserved(
    world: tuple[TestClient, Written], settings: Settings
) -> None:
    """Earlier versions wrote every tenant's outputs here; what is left there stays shut."""
    client, written = world
    root = settings.data_root
    legacy = [
        f"predictions/{written.model_id}/{written.predict_job}.parquet",
        f"results/tenant-a/segments/{written.segment_job}.parquet",
        "_diagnostics/marker.csv",
        "outputs/../results/tenant-a/segments/x.csv",
    ]
    for path in legacy:
        target = root / os.path.normpath(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(written.segment_file, target)
    for path in legacy:
        for headers in (A, B):
            response = client.post(
                "/datasets/profile", json={"dataset": {"path": path}}, headers=headers
            )
            _refused(response)
            assert response.json()["code"] == "path_not_allowed"


def test_outputs_root_inside_the_data_root_is_still_private(make_settings: Any) -> None:
    settings: Settings = make_settings(api_keys=KEYS)
    settings = make_settings(api_keys=KEYS, outputs=settings.data_root / "private")
    write_tables(settings)
    customers(n=300, seed=1)[0].to_parquet(settings.data_root / "customers.parquet")
    with TestClient(create_app(settings)) as client:
        written = _write_outputs(client, settings)
        assert written.segment_file.is_relative_to(settings.data_root.resolve())
        spelled = f"private/tenant-a/segments/{written.segment_job}.parquet"
        for headers in (A, B):
            _refused(
                client.post(
                    "/datasets/profile", json={"dataset": {"path": spelled}}, headers=headers
                )
            )
        own = client.post(
            "/datasets/profile", json={"dataset": {"path": written.segments}}, headers=A
        )
        assert own.status_code == 202, own.text
        _refused(
            client.post(
                "/datasets/profile", json={"dataset": {"path": written.segments}}, headers=B
            )
        )


def test_service_files_under_the_data_root_are_reserved(make_settings: Any, tmp_path: Path) -> None:
    """A data root holding ``var/`` (the database, outputs) and the artifact store."""
    settings: Settings = make_settings(api_keys=KEYS, data_root=tmp_path)
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    (tmp_path / "artifacts" / "x.csv").write_text("a,b\n1,2\n")
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n")
    with TestClient(create_app(settings)) as client:
        assert (tmp_path / "var" / "mlworker.db").is_file()
        for path in ("var/mlworker.db", "var/mlworker.db-wal", "artifacts/x.csv"):
            if not (tmp_path / path).exists():
                continue
            response = client.post(
                "/datasets/profile",
                json={"dataset": {"path": path, "format": "csv"}},
                headers=A,
            )
            _refused(response)
            assert response.json()["code"] == "path_not_allowed", path
        ok = client.post("/datasets/profile", json={"dataset": {"path": "ok.csv"}}, headers=A)
        assert ok.status_code == 202, ok.text
