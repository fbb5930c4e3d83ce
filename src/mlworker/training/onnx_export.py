"""ONNX export of a trained model: the column transformer and the estimator in one graph.

The graph starts *after* :class:`~mlworker.training.features.FeaturePreparer`: it takes the
prepared columns, one graph input per column, each of shape ``[N, 1]``:

- numeric columns (numbers, Yes/No flags as 0/1, datetime parts) as ``float32``, ``NaN`` where
  the value is missing (the graph imputes the training median);
- categorical columns as strings, ``__missing__`` for a missing value and ``__other__`` for a
  category that was too rare at training time (any other unseen string is ignored, as the
  one-hot encoder does).

Preparing raw rows (coercing ``" 29.85"`` to a number, mapping rare categories) is left to the
caller, because ONNX has no faithful equivalent of it; the model's ``metadata_props`` say how:

``mlworker.inputs``
    JSON list of ``{"name", "column", "type"}``: the graph input, the prepared column it takes
    and its element type (``float32`` or ``string``), in graph order.
``mlworker.preparation``
    JSON object: the ``missing`` and ``other`` tokens, and ``columns``, the raw columns with
    their role (``numeric``, ``boolean``, ``datetime`` → ``<name>__year`` … ``__hour``,
    ``categorical``) and, for categorical columns, the categories kept (every other value
    becomes ``__other__``). In Python, :meth:`TrainedModel.prepare` does all of it.
``mlworker.outputs``, ``mlworker.classes``, ``mlworker.task``, ``mlworker.algorithm``,
``mlworker.target``
    Output names (classifiers: ``label`` as the class code, ``probabilities`` as ``[N, k]`` in
    code order; regressors: ``variable`` as ``[N, 1]``), the class label of each code, and what
    the model is.

Every graph is run with onnxruntime on a sample (the stored held-out rows when given, plus
synthetic rows covering every category and missing values) and compared with
:meth:`TrainedModel.predict_prepared`; an algorithm that converts but does not agree, or cannot
be converted at all, is refused with :class:`~mlworker.errors.ExportUnavailable` rather than
exported wrong. The comparison feeds both sides the same ``float32``-rounded inputs: the graph's
interface is ``float32``, and what is checked is the conversion, not that rounding. On those
inputs the graph routes every row through the trees exactly as the model does (see
:mod:`mlworker.training.onnx_converters`); a raw ``float64`` value that differs from a split
threshold only beyond ``float32`` precision (about seven significant digits) can still fall on
the other side once rounded, which is why exact parity needs the API's own predictions.

The converters come from skl2onnx (scikit-learn) and onnxmltools (XGBoost, LightGBM), imported
lazily: they are the optional ``onnx`` extra.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlworker.errors import ExportUnavailable
from mlworker.training.algorithms import Task
from mlworker.training.features import MISSING, OTHER, FeaturePreparer
from mlworker.training.model import TrainedModel
from mlworker.training.onnx_converters import (
    ConversionRefused,
    compares_in_float64,
    convertible_estimator,
    custom_converters,
    register_converters,
)

#: Operator sets of the graph: ONNX 17 and ONNX-ML 3 (onnxruntime ≥ 1.14 runs both).
OPSET = {"": 17, "ai.onnx.ml": 3}
#: Largest difference tolerated between the graph's and the model's class probabilities.
PROBABILITY_TOLERANCE = 1e-4
#: Largest difference tolerated for regression, relative to the largest predicted magnitude.
REGRESSION_TOLERANCE = 1e-4
_SYNTHETIC_ROWS = 64
_SAMPLE_ROWS = 1000


@dataclass(frozen=True)
class OnnxInput:
    """One graph input: its name, the prepared column it takes, and its element type."""

    name: str
    column: str
    type: str


def _unavailable(model: TrainedModel, reason: str) -> ExportUnavailable:
    return ExportUnavailable(
        f"{model.algorithm} cannot be exported to ONNX: {reason}", field="format"
    )


def _short(exc: BaseException) -> str:
    """First line of an exception, bounded: converter messages can run to pages."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}"


def _preparer(model: TrainedModel) -> FeaturePreparer:
    preparer: FeaturePreparer = model.preprocessor.named_steps["prepare"]
    return preparer


def graph_columns(model: TrainedModel) -> list[tuple[str, str]]:
    """List the prepared columns the graph takes, in order, with their element type."""
    columns = model.preprocessor.named_steps["preprocess"]
    numeric = set(_preparer(model).numeric_columns_)
    return [
        (str(name), "float32" if name in numeric else "string")
        for name in columns.feature_names_in_
    ]


def _initial_types(columns: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (name, FloatTensorType([None, 1]) if kind == "float32" else StringTensorType([None, 1]))
        for name, kind in columns
    ]


def feeds(prepared: pd.DataFrame, inputs: list[OnnxInput]) -> dict[str, np.ndarray]:
    """Build the graph's inputs from prepared rows: ``float32`` or string, shape ``[N, 1]``."""
    feed: dict[str, np.ndarray] = {}
    for item in inputs:
        values = prepared[item.column]
        if item.type == "float32":
            feed[item.name] = values.to_numpy(dtype="float32").reshape(-1, 1)
        else:
            feed[item.name] = values.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return feed


def synthetic_rows(model: TrainedModel, *, random_state: int = 0) -> pd.DataFrame:
    """Make prepared rows with every kept category, ``__missing__``, ``__other__`` and NaN.

    Numbers are drawn around each column's training median (the imputer's statistic), spread
    by the scaler's standard deviation where there is one.
    """
    rng = np.random.default_rng(random_state)
    columns = model.preprocessor.named_steps["preprocess"]
    preparer = _preparer(model)
    rows: dict[str, Any] = {}
    centres: dict[str, float] = {}
    spreads: dict[str, float] = {}
    for name, steps, selected in columns.transformers_:
        if name != "num" or not len(selected):
            continue  # an empty selection leaves its transformer unfitted
        imputer = steps.named_steps["impute"]
        scaler = steps.named_steps.get("scale")
        for index, column in enumerate(map(str, selected)):
            centres[column] = float(imputer.statistics_[index])
            spread = float(scaler.scale_[index]) if scaler is not None else 0.0
            spreads[column] = spread if spread > 0 else max(abs(centres[column]), 1.0)
    categories = dict(preparer.categories_)
    for name, kind in graph_columns(model):
        if kind == "float32":
            values = centres.get(name, 0.0) + spreads.get(name, 1.0) * rng.normal(
                size=_SYNTHETIC_ROWS
            )
            values[rng.random(_SYNTHETIC_ROWS) < 0.1] = np.nan
            rows[name] = values
        else:
            levels = [*categories.get(name, []), MISSING, OTHER]
            repeated = np.resize(np.asarray(levels, dtype=object), _SYNTHETIC_ROWS)
            rows[name] = rng.permutation(repeated)
    return pd.DataFrame(rows)


def _verification_rows(model: TrainedModel, sample: pd.DataFrame | None) -> pd.DataFrame:
    frames = [synthetic_rows(model)]
    if sample is not None and len(sample):
        frames.append(model.prepare(sample.head(_SAMPLE_ROWS)).reset_index(drop=True))
    prepared = pd.concat(frames, ignore_index=True)
    # Both sides see the float32 values the graph takes (see the module docstring).
    for name, kind in graph_columns(model):
        if kind == "float32":
            prepared[name] = prepared[name].astype("float32").astype("float64")
        else:
            prepared[name] = prepared[name].astype(str).astype(object)
    return prepared


def _disagreement(model: TrainedModel, outputs: list[np.ndarray], prepared: pd.DataFrame) -> str:
    """Describe how the graph's outputs differ from the model's; empty when they agree."""
    codes, proba = model.predict_prepared(prepared)
    if model.task is Task.REGRESSION:
        values = np.asarray(outputs[0], dtype="float64").reshape(-1)
        scale = max(1.0, float(np.max(np.abs(codes))))
        worst = float(np.max(np.abs(values - codes))) if len(codes) else 0.0
        if not np.isfinite(worst) or worst > REGRESSION_TOLERANCE * scale:
            tolerance = REGRESSION_TOLERANCE * scale
            return f"predictions differ by up to {worst:.3g} (tolerance {tolerance:.3g})"
        return ""
    assert proba is not None
    graph_proba = np.asarray(outputs[1], dtype="float64")
    if graph_proba.shape != proba.shape:
        return f"probabilities have shape {graph_proba.shape}, expected {proba.shape}"
    worst = float(np.max(np.abs(graph_proba - proba)))
    if not np.isfinite(worst) or worst > PROBABILITY_TOLERANCE:
        return f"probabilities differ by up to {worst:.3g} (tolerance {PROBABILITY_TOLERANCE})"
    labels = np.asarray(outputs[0]).reshape(-1)
    top_two = np.sort(proba, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > 2 * PROBABILITY_TOLERANCE  # ties may go either way
    wrong = int(np.sum((labels != codes) & decided))
    if wrong:
        return f"{wrong} of {len(codes)} predicted labels differ"
    return ""


def _metadata(model: TrainedModel, inputs: list[OnnxInput]) -> dict[str, str]:
    preparation = [
        {
            "column": column.name,
            "role": column.role,
            **(
                {"categories": _preparer(model).categories_.get(column.name, [])}
                if column.role == "categorical"
                else {}
            ),
        }
        for column in model.plan
        if column.used
    ]
    classification = model.task is Task.CLASSIFICATION
    return {
        "mlworker.algorithm": model.algorithm,
        "mlworker.task": model.task.value,
        "mlworker.target": model.target.name,
        "mlworker.classes": json.dumps(
            list(model.target.classes) if model.target.classes is not None else None
        ),
        "mlworker.inputs": json.dumps([asdict(item) for item in inputs]),
        "mlworker.preparation": json.dumps(
            {"missing": MISSING, "other": OTHER, "columns": preparation}
        ),
        "mlworker.outputs": json.dumps(
            ["label", "probabilities"] if classification else ["variable"]
        ),
    }


def _convert(model: TrainedModel) -> Any:
    """Convert the column transformer and the estimator into one ONNX ``ModelProto``."""
    from skl2onnx import convert_sklearn
    from sklearn.pipeline import Pipeline

    register_converters()
    n_classes = len(model.target.classes) if model.target.classes is not None else None
    try:
        estimator = convertible_estimator(model.estimator, model.task, n_classes)
    except ConversionRefused as exc:
        raise _unavailable(model, str(exc)) from exc
    pipeline = Pipeline(
        [("preprocess", model.preprocessor.named_steps["preprocess"]), ("model", estimator)]
    )
    classification = model.task is Task.CLASSIFICATION
    try:
        return convert_sklearn(
            pipeline,
            name=f"mlworker-{model.algorithm}",
            initial_types=_initial_types(graph_columns(model)),
            target_opset=OPSET,
            options={"zipmap": False} if classification else None,
            custom_conversion_functions=custom_converters(
                float64_splits=compares_in_float64(estimator)
            ),
        )
    except Exception as exc:  # converters raise every kind of error for what they lack
        raise _unavailable(model, f"no faithful converter ({_short(exc)})") from exc


def to_onnx(model: TrainedModel, *, sample: pd.DataFrame | None = None) -> bytes:
    """Serialise ``model`` (minus its feature preparation) as a verified ONNX graph.

    Parameters
    ----------
    model
        A trained model, freshly fitted or loaded from its model file.
    sample
        Raw rows to verify the graph on, besides synthetic ones (the held-out rows).

    Returns
    -------
    bytes
        The serialised ``onnx.ModelProto``; see the module docstring for its inputs, outputs
        and metadata.

    Raises
    ------
    ExportUnavailable
        The ONNX libraries are not installed, the estimator has no faithful converter, or the
        converted graph disagrees with the model (``field="format"``).
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise _unavailable(model, "the onnx extra is not installed (mlworker[onnx])") from exc
    proto = _convert(model)
    inputs = [
        OnnxInput(name=graph_input.name, column=column, type=kind)
        for graph_input, (column, kind) in zip(proto.graph.input, graph_columns(model), strict=True)
    ]
    onnx.helper.set_model_props(proto, _metadata(model, inputs))
    proto.producer_name = "mlworker"
    proto.doc_string = (
        f"{model.algorithm} predicting {model.target.name!r}. Inputs are the prepared columns "
        "(see metadata mlworker.inputs and mlworker.preparation), not the raw ones."
    )
    data: bytes = proto.SerializeToString()
    prepared = _verification_rows(model, sample)
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        outputs = session.run(None, feeds(prepared, inputs))
    except Exception as exc:  # onnxruntime lacks a kernel, or the graph is malformed
        raise _unavailable(model, f"onnxruntime cannot run the graph ({_short(exc)})") from exc
    problem = _disagreement(model, outputs, prepared)
    if problem:
        raise _unavailable(model, f"the converted graph disagrees with the model: {problem}")
    return data
