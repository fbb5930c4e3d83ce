"""ONNX export: every algorithm converts and agrees with the model, or is refused with a reason."""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlworker.errors import ExportUnavailable
from mlworker.training import bundle
from mlworker.training.algorithms import Task, available_algorithms, resolve
from mlworker.training.model import TrainedModel, validate_hyperparams
from mlworker.training.onnx_converters import float32_thresholds
from mlworker.training.onnx_export import PROBABILITY_TOLERANCE, to_onnx
from mlworker.training.trainer import TrainingResult, train
from tests.training.tables import bundled, quick_params, telco_churn

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

DATASETS = {"churn": "Churn", "iris": "target", "diabetes": "target"}
CASES = [
    (name, dataset)
    for name, algorithm in sorted(available_algorithms().items())
    for dataset in (("churn", "iris") if algorithm.task is Task.CLASSIFICATION else ("diabetes",))
]


def table(dataset: str) -> pd.DataFrame:
    return telco_churn(300) if dataset == "churn" else bundled(dataset)


@cache
def trained(name: str, dataset: str, **params: Any) -> TrainingResult:
    algorithm = resolve(name)
    settings = validate_hyperparams(algorithm, {**quick_params(algorithm), **params})
    return train(table(dataset), DATASETS[dataset], algorithm, settings, random_state=1)


def metadata(data: bytes) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load_from_string(data).metadata_props}


def run_graph(data: bytes, prepared: pd.DataFrame) -> list[np.ndarray]:
    """Feed prepared columns to the graph the way a client would: from the metadata alone."""
    feeds = {}
    for item in json.loads(metadata(data)["mlworker.inputs"]):
        column = prepared[item["column"]]
        if item["type"] == "float32":
            values = column.to_numpy(dtype="float32")
        else:
            values = column.astype(str).to_numpy(dtype=object)
        feeds[item["name"]] = values.reshape(-1, 1)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    outputs: list[np.ndarray] = session.run(None, feeds)
    return outputs


def as_float32(model: TrainedModel, prepared: pd.DataFrame) -> pd.DataFrame:
    """The prepared rows as the graph sees them: numbers rounded to float32."""
    rounded = prepared.copy()
    for column in model.preprocessor.named_steps["prepare"].numeric_columns_:
        rounded[column] = rounded[column].astype("float32").astype("float64")
    return rounded


@pytest.mark.parametrize("loaded", [False, True], ids=["fitted", "reloaded"])
@pytest.mark.parametrize(("name", "dataset"), CASES)
def test_graph_reproduces_the_model(name: str, dataset: str, loaded: bool) -> None:
    result = trained(name, dataset)
    model = result.model
    if loaded:
        model = bundle.load(bundle.dump(model)).model

    data = to_onnx(model, sample=result.holdout)

    prepared = as_float32(model, model.prepare(result.holdout))
    outputs = run_graph(data, prepared)
    codes, proba = model.predict_prepared(prepared)
    if proba is None:
        values = outputs[0].reshape(-1)
        np.testing.assert_allclose(values, codes, rtol=1e-4, atol=1e-4 * np.abs(codes).max())
    else:
        np.testing.assert_allclose(outputs[1], proba, atol=PROBABILITY_TOLERANCE)
        assert (outputs[0] == codes).mean() >= 0.99  # only near-ties may differ


def test_graph_takes_prepared_columns_and_says_how_to_prepare_them() -> None:
    result = trained("RandomForestClassifier", "churn")
    data = to_onnx(result.model)
    graph = onnx.load_from_string(data).graph
    props = metadata(data)

    inputs = json.loads(props["mlworker.inputs"])
    assert [item["name"] for item in inputs] == [graph_input.name for graph_input in graph.input]
    types = {item["column"]: item["type"] for item in inputs}
    assert types["TotalCharges"] == "float32"  # a string column before preparation
    assert types["Partner"] == "float32"  # Yes/No as 1/0
    assert types["Contract"] == "string"
    assert "customerID" not in types  # dropped as an identifier
    element = {item.name: item.type.tensor_type.elem_type for item in graph.input}
    by_column = {item["column"]: element[item["name"]] for item in inputs}
    assert by_column["TotalCharges"] == onnx.TensorProto.FLOAT
    assert by_column["Contract"] == onnx.TensorProto.STRING

    preparation = json.loads(props["mlworker.preparation"])
    assert preparation["missing"] == "__missing__" and preparation["other"] == "__other__"
    contract = next(c for c in preparation["columns"] if c["column"] == "Contract")
    assert contract == {
        "column": "Contract",
        "role": "categorical",
        "categories": ["Month-to-month", "One year", "Two year"],
    }
    assert json.loads(props["mlworker.classes"]) == ["No", "Yes"]
    assert json.loads(props["mlworker.outputs"]) == ["label", "probabilities"]
    assert props["mlworker.task"] == "classification"
    assert props["mlworker.target"] == "Churn"
    assert [output.name for output in graph.output] == ["label", "probabilities"]


def test_graph_imputes_missing_numbers_and_handles_unknown_categories() -> None:
    result = trained("LogisticRegression", "churn")
    model = result.model
    rows = result.holdout.head(4).copy()
    rows["tenure"] = [None, "7", None, 12]
    rows["Contract"] = ["Month-to-month", None, "Three year", "One year"]
    prepared = as_float32(model, model.prepare(rows))

    outputs = run_graph(to_onnx(model), prepared)

    _, proba = model.predict_prepared(prepared)
    np.testing.assert_allclose(outputs[1], proba, atol=PROBABILITY_TOLERANCE)


@pytest.mark.parametrize(
    ("name", "dataset", "params", "reason"),
    [
        ("XGBClassifier", "churn", {"booster": "gblinear"}, "booster=gblinear"),
        ("XGBClassifier", "churn", {"booster": "dart"}, "booster=dart"),
        ("LGBMClassifier", "churn", {"boosting_type": "rf", "subsample": 0.8}, "boosting_type=rf"),
        ("HistGradientBoostingRegressor", "diabetes", {"loss": "poisson"}, "loss=poisson"),
    ],
)
def test_configurations_without_a_faithful_converter_are_refused(
    name: str, dataset: str, params: dict[str, Any], reason: str
) -> None:
    if name not in available_algorithms():
        pytest.skip(f"{name} is not installed")
    result = trained(name, dataset, **params)

    for model in (result.model, bundle.load(bundle.dump(result.model)).model):
        with pytest.raises(ExportUnavailable, match=reason) as caught:
            to_onnx(model)
        assert caught.value.field == "format"
        assert caught.value.code == "export_unavailable"
        assert str(caught.value).startswith(f"{name} cannot be exported to ONNX")


class Unconvertible:
    """An estimator no converter knows."""

    classes_ = np.array([0, 1])

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.full((len(matrix), 2), 0.5)


def test_an_estimator_without_a_converter_is_refused() -> None:
    model = trained("LogisticRegression", "churn").model
    odd = TrainedModel(
        algorithm=model.algorithm,
        target=model.target,
        plan=model.plan,
        params=model.params,
        preprocessor=model.preprocessor,
        estimator=Unconvertible(),
    )

    with pytest.raises(ExportUnavailable, match="no faithful converter"):
        to_onnx(odd)


def test_a_graph_that_disagrees_with_the_model_is_not_shipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = trained("LogisticRegression", "churn").model
    genuine = model.predict_prepared

    def shifted(prepared: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        codes, proba = genuine(prepared)
        assert proba is not None
        return codes, np.clip(proba + np.array([0.01, -0.01]), 0, 1)

    monkeypatch.setattr(model, "predict_prepared", shifted)

    with pytest.raises(ExportUnavailable, match="disagrees with the model: probabilities differ"):
        to_onnx(model)


def test_missing_onnx_libraries_are_reported_as_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)

    with pytest.raises(ExportUnavailable, match="onnx extra"):
        to_onnx(trained("LogisticRegression", "churn").model)


def test_float32_thresholds_keep_every_float32_on_its_side() -> None:
    rng = np.random.default_rng(0)
    thresholds = rng.normal(scale=100, size=2000)
    rounded = float32_thresholds(thresholds)
    # Inputs right at each threshold: its float32 neighbours and the nearest float32.
    nearest = thresholds.astype("float32")
    for inputs in (
        nearest,
        np.nextafter(nearest, np.float32(np.inf)),
        np.nextafter(nearest, np.float32(-np.inf)),
    ):
        exact = inputs.astype("float64") <= thresholds
        assert np.array_equal(inputs <= rounded, exact)
    assert rounded.dtype == np.float32
