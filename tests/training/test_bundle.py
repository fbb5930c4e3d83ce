"""The model file: safe formats only, and anything that is not exactly ours is refused."""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache

import numpy as np
import pytest
import skops.io as sio

from mlworker.errors import ArtifactCorrupt
from mlworker.training import bundle
from mlworker.training.algorithms import available_algorithms, resolve
from mlworker.training.model import fit_model
from mlworker.training.trainer import TrainingResult, prepare_data, train
from tests.training.tables import telco_churn


class Payload:
    """A type no model file contains (skops would rebuild it from its module and name)."""

    def __init__(self) -> None:
        self.command = "echo pwned"


@cache
def trained() -> TrainingResult:
    return train(telco_churn(150), "Churn", resolve("RandomForestClassifier"), {"n_estimators": 5})


def model_file() -> bytes:
    result = trained()
    return bundle.dump(
        result.model,
        holdout=result.holdout,
        evaluation=result.evaluation,
        metadata={"model_id": "model-0123456789ab"},
    )


def rewrite(data: bytes, **members: bytes | None) -> bytes:
    """Copy a model file, replacing (bytes) or removing (None) members."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            if name not in members:
                target.writestr(name, source.read(name))
        for name, content in members.items():
            if content is not None:
                target.writestr(name, content)
    return buffer.getvalue()


def test_model_file_holds_only_json_skops_and_parquet() -> None:
    names = set(zipfile.ZipFile(io.BytesIO(model_file())).namelist())

    assert names == {
        "manifest.json",
        "preprocessor.skops",
        "estimator.skops",
        "holdout.parquet",
        "evaluation.json",
    }


def test_manifest_records_what_the_model_is() -> None:
    manifest = bundle.load(model_file()).manifest

    assert manifest["format"] == bundle.FORMAT
    assert manifest["algorithm"] == "RandomForestClassifier"
    assert manifest["task"] == "classification"
    assert manifest["target"] == "Churn"
    assert manifest["classes"] == ["No", "Yes"]
    assert manifest["params"] == {"n_estimators": 5}
    assert manifest["metadata"] == {"model_id": "model-0123456789ab"}
    assert {"scikit-learn", "numpy", "skops"} <= set(manifest["libraries"])


def test_load_without_holdout_skips_it() -> None:
    assert bundle.load(model_file(), with_holdout=False).holdout is None


def test_a_foreign_type_in_a_skops_member_is_refused_before_it_is_built() -> None:
    foreign = sio.dumps({"steps": Payload()})

    with pytest.raises(ArtifactCorrupt, match="types a model file never contains") as caught:
        bundle.load(rewrite(model_file(), **{"estimator.skops": foreign}))

    assert "Payload" in str(caught.value)


def test_a_numpy_function_is_not_trusted_just_for_its_module() -> None:
    foreign = sio.dumps({"run": np.testing.assert_array_equal})

    with pytest.raises(ArtifactCorrupt, match="never contains"):
        bundle.load(rewrite(model_file(), **{"preprocessor.skops": foreign}))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"PK\x03\x04" + bytes(200),  # not a zip at all
        lambda data: rewrite(data, **{"manifest.json": None}),
        lambda data: rewrite(data, **{"estimator.skops": None}),
        lambda data: rewrite(data, **{"manifest.json": b"{not json"}),
        lambda data: rewrite(data, **{"manifest.json": json.dumps({"format": "other"}).encode()}),
        lambda data: rewrite(data, **{"estimator.skops": b"garbage"}),
        lambda data: rewrite(data, **{"evaluation.json": b"\xff\xfe"}),
    ],
    ids=[
        "truncated",
        "not-a-zip",
        "no-manifest",
        "no-estimator",
        "bad-manifest",
        "other-format",
        "bad-skops",
        "bad-evaluation",
    ],
)
def test_damaged_model_files_are_refused_as_corrupt(damage: object) -> None:
    assert callable(damage)
    with pytest.raises(ArtifactCorrupt):
        bundle.load(damage(model_file()))


@pytest.mark.skipif("XGBClassifier" not in available_algorithms(), reason="needs xgboost")
def test_an_early_stopped_booster_is_saved_as_it_predicts() -> None:
    algorithm = resolve("XGBClassifier")
    data = prepare_data(telco_churn(400), "Churn", task=algorithm.task)
    model = fit_model(
        algorithm,
        {"n_estimators": 300, "learning_rate": 0.5},
        target=data.target,
        plan=data.plan,
        features=data.features,
        codes=data.codes,
        random_state=0,
        n_jobs=1,
        early_stopping=True,
    )
    assert model.extra["best_iteration"] < 300  # stopped early: later rounds exist, unused

    loaded = bundle.load(bundle.dump(model)).model

    _, proba = model.predict_codes(data.features)
    _, loaded_proba = loaded.predict_codes(data.features)
    np.testing.assert_allclose(loaded_proba, proba, atol=1e-6)


@pytest.mark.skipif("LGBMClassifier" not in available_algorithms(), reason="needs lightgbm")
def test_native_boosters_are_stored_in_their_own_format() -> None:
    result = train(telco_churn(150), "Churn", resolve("LGBMClassifier"), {"n_estimators": 5})

    names = zipfile.ZipFile(io.BytesIO(bundle.dump(result.model))).namelist()

    assert "estimator.lightgbm" in names and "estimator.skops" not in names
