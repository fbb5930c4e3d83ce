"""Estimators, the saved pipeline, and the trained model every endpoint uses.

A model is ``FeaturePreparer → ColumnTransformer (impute, scale, one-hot) → estimator``, trained
on class codes ``0..k-1`` and decoded back to the original labels on prediction. The estimator is
either a scikit-learn object or, for XGBoost and LightGBM, the library's own booster.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from mlworker.errors import InvalidInput
from mlworker.training.algorithms import WORKER_PARAMETERS, Algorithm, Task
from mlworker.training.features import ColumnPlan, FeaturePreparer, plan_to_dicts
from mlworker.training.space import HyperparameterError, check
from mlworker.training.target import Target

_INVALID_PARAMETER = re.compile(r"The '(\w+)' parameter")
#: "[12:00:00] /src/gbm/gbm.cc:24: " (XGBoost) and " at /path/file.hpp, line 37 ." (LightGBM).
_NATIVE_LOCATION = re.compile(r"^\[[0-9:]+\]\s+\S+:\d+:\s*")
_NATIVE_SUFFIX = re.compile(r"\s+at\s+/\S+(,\s*line\s+\d+)?\s*\.?$")
#: Rounds without improvement before boosting stops, when tuning uses early stopping.
EARLY_STOPPING_ROUNDS = 30


class Estimator(Protocol):
    """What prediction needs from a fitted estimator (scikit-learn or native booster)."""

    def predict(self, X: Any) -> Any:
        """Class codes or values."""


def _estimator_params(algorithm: Algorithm) -> set[str]:
    return set(algorithm.estimator_class()().get_params())


def validate_hyperparams(algorithm: Algorithm, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check client hyperparameters against the estimator and our bounds.

    Returns the values with integral floats turned into ints (``250.0`` → ``250``).

    Raises
    ------
    InvalidInput
        ``field`` names the parameter: unknown to the estimator, set by the worker, out of
        bounds, not applicable, or refused by the estimator's own validation.
    """
    known = _estimator_params(algorithm) | {parameter.name for parameter in algorithm.space}
    normalized: dict[str, Any] = {}
    for name, value in values.items():
        field_name = f"hyperparams.{name}"
        if name in WORKER_PARAMETERS or name in algorithm.fixed or name in algorithm.owned:
            raise InvalidInput(f"{name} is set by the worker, not the request", field=field_name)
        if name not in known:
            raise InvalidInput(
                f"{algorithm.name} has no hyperparameter {name!r}; known: "
                + ", ".join(
                    sorted(known - WORKER_PARAMETERS - set(algorithm.fixed) - algorithm.owned)
                ),
                field=field_name,
            )
        if isinstance(value, float) and value.is_integer() and _is_int_parameter(algorithm, name):
            value = int(value)
        normalized[name] = value
    # Conditions are judged against what the estimator will use: the library's defaults
    # (LogisticRegression's solver is lbfgs unless the request says otherwise), then ours.
    defaults = {**algorithm.estimator_class()().get_params(), **algorithm.defaults}
    try:
        check(algorithm.space, normalized, defaults=defaults)
    except HyperparameterError as exc:
        raise InvalidInput(str(exc), field=f"hyperparams.{exc.name}") from exc
    estimator = build_estimator(algorithm, normalized, random_state=0, n_jobs=1)
    inner = getattr(estimator, "estimator", estimator)
    validate = getattr(inner, "_validate_params", None)
    # XGBoost and LightGBM inherit _validate_params from scikit-learn but declare no
    # constraints for it to check; calling it raises AttributeError.
    if validate is not None and hasattr(inner, "_parameter_constraints"):
        try:
            validate()
        except ValueError as exc:
            match = _INVALID_PARAMETER.search(str(exc))
            name = match.group(1) if match else "hyperparams"
            raise InvalidInput(str(exc), field=f"hyperparams.{name}") from exc
    return normalized


def _is_int_parameter(algorithm: Algorithm, name: str) -> bool:
    from mlworker.training.space import IntRange

    return any(
        parameter.name == name and isinstance(parameter.domain, IntRange)
        for parameter in algorithm.space
    )


def effective_params(algorithm: Algorithm, params: Mapping[str, Any]) -> dict[str, Any]:
    """Our defaults overlaid with the request's parameters (what ``/train`` reports)."""
    return {**algorithm.defaults, **params}


def build_estimator(
    algorithm: Algorithm,
    params: Mapping[str, Any],
    *,
    random_state: int,
    n_jobs: int,
    early_stopping: bool = False,
) -> Any:
    """Instantiate the estimator with defaults, request parameters and worker settings."""
    kwargs = effective_params(algorithm, params)
    if algorithm.translate is not None:
        kwargs = algorithm.translate(kwargs)
    kwargs.update(algorithm.fixed)
    accepted = _estimator_params(algorithm)
    if "random_state" in accepted:
        kwargs["random_state"] = random_state
    if "n_jobs" in accepted and algorithm.parallel:
        kwargs["n_jobs"] = n_jobs
    if early_stopping and algorithm.early_stopping == "xgboost":
        kwargs["early_stopping_rounds"] = EARLY_STOPPING_ROUNDS
    estimator = algorithm.estimator_class()(**kwargs)
    if algorithm.name == "SVC":
        # scikit-learn ≥ 1.9 calibrates SVC probabilities this way (SVC(probability=True) is gone).
        return CalibratedClassifierCV(estimator, ensemble=False, cv=3)
    return estimator


def build_preprocessor(plan: tuple[ColumnPlan, ...], *, scale: bool) -> Pipeline:
    """``FeaturePreparer`` then impute (and scale) numbers, one-hot categories."""
    # keep_empty_features: a column with no value in the training split stays (imputed 0), so
    # the estimator's inputs line up with the prepared columns (importances, ONNX export).
    imputer = SimpleImputer(strategy="median", keep_empty_features=True)
    numeric_steps: list[tuple[str, Any]] = [("impute", imputer)]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    columns = ColumnTransformer(
        [
            ("num", Pipeline(numeric_steps), make_column_selector(dtype_include="number")),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                make_column_selector(dtype_exclude="number"),
            ),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("prepare", FeaturePreparer(plan_to_dicts(plan))), ("preprocess", columns)])


@dataclass
class TrainedModel:
    """A fitted model with everything needed to predict from raw rows.

    Attributes
    ----------
    algorithm
        Algorithm name.
    target
        Target name, task and classes.
    plan
        How input columns are used.
    params
        Effective hyperparameters (our defaults overlaid with the request's).
    preprocessor
        Fitted ``FeaturePreparer`` + ``ColumnTransformer``.
    estimator
        Fitted estimator (scikit-learn, or a native booster wrapper after loading).
    """

    algorithm: str
    target: Target
    plan: tuple[ColumnPlan, ...]
    params: dict[str, Any]
    preprocessor: Pipeline
    estimator: Any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Task:
        """Classification or regression."""
        return self.target.task

    @property
    def input_columns(self) -> list[str]:
        """Raw columns the model reads."""
        return [column.name for column in self.plan if column.used]

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw rows → prepared columns (numbers coerced, categories normalised)."""
        try:
            prepared: pd.DataFrame = self.preprocessor.named_steps["prepare"].transform(frame)
        except KeyError as exc:
            missing = exc.args[0] if exc.args else []
            raise InvalidInput(
                f"missing input columns: {', '.join(map(str, missing))}", field="rows"
            ) from exc
        return prepared

    def predict_prepared(self, prepared: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Predicted codes (or values) and class probabilities from prepared columns."""
        columns = self.preprocessor.named_steps["preprocess"]
        matrix = np.asarray(columns.transform(prepared), dtype="float64")
        if self.task is Task.REGRESSION:
            return np.asarray(self.estimator.predict(matrix), dtype="float64"), None
        proba = np.asarray(self.estimator.predict_proba(matrix), dtype="float64")
        proba = proba / proba.sum(axis=1, keepdims=True)  # float32 boosters drift from 1
        return proba.argmax(axis=1), proba

    def predict_codes(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Predicted class codes (or values) and class probabilities (classification)."""
        return self.predict_prepared(self.prepare(frame))

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        """Predicted labels (classification) or values (regression)."""
        codes, _ = self.predict_codes(frame)
        return self.target.decode(codes)


def sample_weights(
    target: Target, codes: np.ndarray, class_weight: str | Mapping[Any, float] | None
) -> np.ndarray | None:
    """Per-row weights for ``class_weight`` ('balanced' or label → weight), or ``None``."""
    if class_weight is None:
        return None
    if target.task is Task.REGRESSION:
        raise InvalidInput("class_weight applies to classification only", field="class_weight")
    if class_weight == "balanced":
        return np.asarray(compute_sample_weight("balanced", codes), dtype="float64")
    assert isinstance(class_weight, Mapping) and target.classes is not None
    by_label = {str(label): code for code, label in enumerate(target.classes)}
    weights = np.ones(len(target.classes))
    for label, weight in class_weight.items():
        if str(label) not in by_label:
            raise InvalidInput(f"class_weight names unknown class {label!r}", field="class_weight")
        weights[by_label[str(label)]] = float(weight)
    return np.asarray(weights[codes], dtype="float64")


def fit_model(
    algorithm: Algorithm,
    params: Mapping[str, Any],
    *,
    target: Target,
    plan: tuple[ColumnPlan, ...],
    features: pd.DataFrame,
    codes: np.ndarray,
    weights: np.ndarray | None = None,
    random_state: int,
    n_jobs: int,
    early_stopping: bool = False,
) -> TrainedModel:
    """Fit preprocessing and estimator on raw ``features`` and encoded target ``codes``.

    With ``early_stopping`` (boosting only), a stratified tenth of the rows is held back to stop
    adding trees once the validation loss stops improving; the number of trees actually kept
    is recorded in ``extra["best_iteration"]``.
    """
    preprocessor = build_preprocessor(plan, scale=algorithm.scale)
    stop_early = early_stopping and algorithm.early_stopping is not None and len(codes) >= 50
    estimator = build_estimator(
        algorithm, params, random_state=random_state, n_jobs=n_jobs, early_stopping=stop_early
    )
    extra: dict[str, Any] = {}
    fit_kwargs: dict[str, Any] = {}
    if not stop_early:
        matrix = preprocessor.fit_transform(features, codes)
        if weights is not None:
            fit_kwargs["sample_weight"] = weights
        _fit(algorithm, estimator, np.asarray(matrix, dtype="float64"), codes, **fit_kwargs)
    else:
        stratify = codes if target.task is Task.CLASSIFICATION and _stratifiable(codes) else None
        fit_rows, stop_rows = train_test_split(
            np.arange(len(codes)), test_size=0.1, random_state=random_state, stratify=stratify
        )
        matrix = np.asarray(preprocessor.fit_transform(features.iloc[fit_rows], codes[fit_rows]))
        validation = np.asarray(preprocessor.transform(features.iloc[stop_rows]))
        fit_kwargs["eval_set"] = [(validation, codes[stop_rows])]
        if weights is not None:
            fit_kwargs["sample_weight"] = weights[fit_rows]
        if algorithm.early_stopping == "lightgbm":
            import lightgbm

            if "eval_X" in inspect.signature(estimator.fit).parameters:
                # LightGBM ≥ 4.7 deprecates eval_set for these two.
                fit_kwargs.pop("eval_set")
                fit_kwargs["eval_X"] = (validation,)
                fit_kwargs["eval_y"] = (codes[stop_rows],)
            fit_kwargs["callbacks"] = [
                lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)
            ]
            _fit(algorithm, estimator, matrix, codes[fit_rows], **fit_kwargs)
            extra["best_iteration"] = int(estimator.best_iteration_ or estimator.n_estimators)
        else:
            _fit(algorithm, estimator, matrix, codes[fit_rows], verbose=False, **fit_kwargs)
            extra["best_iteration"] = int(estimator.best_iteration) + 1
    return TrainedModel(
        algorithm=algorithm.name,
        target=target,
        plan=plan,
        params=effective_params(algorithm, params),
        preprocessor=preprocessor,
        estimator=estimator,
        extra=extra,
    )


def _library_message(exc: Exception) -> str:
    """First line of a library error, without the native code locations some prefix it with."""
    lines = str(exc).strip().splitlines()
    text = _NATIVE_LOCATION.sub("", lines[0] if lines else type(exc).__name__)
    return _NATIVE_SUFFIX.sub("", text).strip()[:300]


def _fit(algorithm: Algorithm, estimator: Any, X: Any, y: np.ndarray, **kwargs: Any) -> None:
    """Fit ``estimator``; a refusal of the settings for this data is the request's fault.

    The estimators check most settings only when fitting, against the data (liblinear on three
    classes, an unknown XGBoost booster, LightGBM's random-forest mode without bagging).

    Raises
    ------
    InvalidInput
        ``field="hyperparams"``, with the library's reason.
    """
    try:
        estimator.fit(X, y, **kwargs)
    except Exception as exc:
        library = type(exc).__module__.split(".")[0]
        if not isinstance(exc, ValueError) and library != "lightgbm":
            raise
        raise InvalidInput(
            f"{algorithm.name} cannot be fitted with these settings: {_library_message(exc)}",
            field="hyperparams",
        ) from exc


def _stratifiable(codes: np.ndarray) -> bool:
    counts = np.bincount(codes)
    return bool(counts[counts > 0].min() >= 2)
