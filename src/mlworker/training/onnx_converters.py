"""What skl2onnx needs beyond its own converters to translate every estimator we train.

- XGBoost and LightGBM converters come from onnxmltools and are registered with skl2onnx once
  (:func:`register_converters`), so a booster converts inside the same graph as the column
  transformer.
- A booster loaded from its own format (:class:`~mlworker.training.native.NativeBooster`) is
  turned back into something those converters read (:func:`convertible_estimator`): XGBoost's
  own scikit-learn wrapper loads the booster; a LightGBM booster is wrapped in the few
  attributes onnxmltools reads (:class:`LightGbmBoosterClassifier`), because LightGBM's wrapper
  cannot load one.
- HistGradientBoosting and LightGBM compare inputs with ``float64`` thresholds, which the
  converters round to the *nearest* ``float32``: an input just above a threshold then lands on
  the wrong side. :func:`custom_converters` runs those converters (and the imputer feeding
  them) with thresholds and fill values rounded *down* instead, which keeps every ``float32``
  input on the side the model puts it (:func:`float32_thresholds`). It also turns the booleans
  skl2onnx's HistGradientBoosting converter writes into an integer attribute (recent ``onnx``
  releases reject them) into ints.
- Configurations the converters translate wrongly (XGBoost's linear and DART boosters,
  LightGBM's random-forest mode and linear trees, HistGradientBoosting's Poisson and Gamma
  losses) are refused with :class:`ConversionRefused`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from mlworker.training.algorithms import Task
from mlworker.training.native import NativeBooster

_registered = False
_registration_lock = threading.Lock()
#: Integer attributes of ONNX tree-ensemble nodes that skl2onnx may fill with booleans.
_INTEGER_FLAGS = ("nodes_missing_value_tracks_true",)
#: HistGradientBoostingRegressor losses predicted through ``exp``, which skl2onnx omits.
_LINKED_LOSSES = ("poisson", "gamma")


class ConversionRefused(ValueError):
    """The estimator's configuration has no faithful ONNX translation."""


class _LightGbmBooster(BaseEstimator):  # type: ignore[misc]
    """A fitted LightGBM booster with the attributes onnxmltools' converter reads.

    Parameters
    ----------
    booster
        A ``lightgbm.Booster``.
    n_classes
        Number of classes (classification only).
    """

    def __init__(self, booster: Any = None, n_classes: int | None = None) -> None:
        self.booster = booster
        self.n_classes = n_classes

    def fit(self, X: Any = None, y: Any = None) -> _LightGbmBooster:
        """Adopt the booster as the fitted model (no training happens)."""
        self.booster_ = self.booster
        dump = self.booster.dump_model(num_iteration=1)
        # Named as LightGBM's constructor parameter, which is what onnxmltools reads.
        self.boosting_type = "rf" if dump.get("average_output") else "gbdt"
        if self.n_classes is not None:
            self.classes_ = np.arange(self.n_classes)
        return self


class LightGbmBoosterClassifier(ClassifierMixin, _LightGbmBooster):  # type: ignore[misc]
    """A LightGBM classification booster, for conversion only."""


class LightGbmBoosterRegressor(RegressorMixin, _LightGbmBooster):  # type: ignore[misc]
    """A LightGBM regression booster, for conversion only."""


def register_converters() -> None:
    """Register onnxmltools' XGBoost and LightGBM converters with skl2onnx (once)."""
    global _registered
    with _registration_lock:
        if _registered:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes as classifier_shapes,
        )
        from skl2onnx.common.shape_calculator import (
            calculate_linear_regressor_output_shapes as regressor_shapes,
        )

        options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
        try:
            import xgboost
            from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        except ImportError:  # XGBoost not installed: nothing of it to convert
            pass
        else:
            update_registered_converter(
                xgboost.XGBClassifier,
                "XGBoostXGBClassifier",
                classifier_shapes,
                convert_xgboost,
                options=options,
            )
            update_registered_converter(
                xgboost.XGBRegressor, "XGBoostXGBRegressor", regressor_shapes, convert_xgboost
            )
        try:
            from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
                convert_lightgbm,
            )
        except ImportError:  # LightGBM not installed
            pass
        else:
            update_registered_converter(
                LightGbmBoosterClassifier,
                "MLWorkerLightGbmClassifier",
                classifier_shapes,
                convert_lightgbm,
                options=options,
            )
            update_registered_converter(
                LightGbmBoosterRegressor,
                "MLWorkerLightGbmRegressor",
                regressor_shapes,
                convert_lightgbm,
                options={"split": None},
            )
        _registered = True


def _xgboost_wrapper(booster: Any, task: Task) -> Any:
    import xgboost

    learner = json.loads(booster.save_config())["learner"]
    kind = learner["gradient_booster"]["name"]
    if kind != "gbtree":
        raise ConversionRefused(
            f"onnxmltools converts tree boosters (booster=gbtree) only, not booster={kind}"
        )
    classification = task is Task.CLASSIFICATION
    wrapper: Any = xgboost.XGBClassifier() if classification else xgboost.XGBRegressor()
    wrapper.load_model(bytearray(booster.save_raw(raw_format="json")))
    return wrapper


def _lightgbm_adapter(booster: Any, task: Task, n_classes: int | None) -> Any:
    if str(booster.params.get("linear_tree", "false")).lower() in ("true", "1"):
        raise ConversionRefused("onnxmltools cannot convert linear trees (linear_tree=true)")
    adapter: _LightGbmBooster
    if task is Task.CLASSIFICATION:
        adapter = LightGbmBoosterClassifier(booster, n_classes).fit()
    else:
        adapter = LightGbmBoosterRegressor(booster).fit()
    if adapter.boosting_type == "rf":
        # onnxmltools divides the summed trees by a fixed 100 instead of averaging them.
        raise ConversionRefused(
            "onnxmltools does not average random-forest boosting (boosting_type=rf) correctly"
        )
    return adapter


def convertible_estimator(estimator: Any, task: Task, n_classes: int | None) -> Any:
    """Return ``estimator`` in a form skl2onnx converts (boosters through onnxmltools).

    Raises
    ------
    ConversionRefused
        A booster configuration onnxmltools cannot translate.
    """
    if isinstance(estimator, NativeBooster):
        if estimator.kind == "xgboost":
            return _xgboost_wrapper(estimator.booster, task)
        return _lightgbm_adapter(estimator.booster, task, n_classes)
    if getattr(estimator, "loss", None) in _LINKED_LOSSES and hasattr(estimator, "_predictors"):
        raise ConversionRefused(
            f"skl2onnx's HistGradientBoostingRegressor converter leaves out the exponential "
            f"link of loss={estimator.loss}"
        )
    module = type(estimator).__module__.split(".")[0]
    if module == "lightgbm":
        return _lightgbm_adapter(estimator.booster_, task, n_classes)
    if module == "xgboost":
        return _xgboost_wrapper(estimator.get_booster(), task)
    return estimator


def float32_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """Round each threshold down to the largest ``float32`` not above it.

    For a ``float32`` input ``x`` and a ``float64`` threshold ``t``, ``x <= t`` holds exactly
    when ``x <= float32_thresholds(t)`` does, whereas rounding ``t`` to the nearest ``float32``
    sends ``x`` just above ``t`` to the wrong side.

    Examples
    --------
    >>> t = np.array([0.1708, 0.5])
    >>> float(float32_thresholds(t)[0]) <= 0.1708 < float(np.float32(0.1708))
    True
    >>> float(float32_thresholds(t)[1])
    0.5
    """
    nearest = np.asarray(thresholds, dtype="float64").astype("float32")
    above = nearest.astype("float64") > thresholds
    nearest[above] = np.nextafter(nearest[above], np.float32(-np.inf))
    return nearest


class _RoundedDown:
    """A skl2onnx container that keeps ``float64`` comparisons exact for ``float32`` inputs.

    Estimators that compare inputs with ``float64`` thresholds (``x <= t``) are converted with
    every threshold rounded down to ``float32`` (see :func:`float32_thresholds`), and so are the
    values the imputer fills in, which are often a threshold themselves (the median is a
    quantile): from ``exact`` when given (the converter has already rounded them to nearest),
    else from the values the converter passes. Boolean node flags become the integers ONNX
    requires.
    """

    def __init__(self, container: Any, exact: np.ndarray | None = None) -> None:
        self._container = container
        self._exact = exact

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, op_type: str, *args: Any, **attributes: Any) -> Any:
        """Add a node, with thresholds, fill values and flags fixed."""
        for name in _INTEGER_FLAGS:
            if name in attributes:
                attributes[name] = [int(flag) for flag in attributes[name]]
        if op_type.startswith("TreeEnsemble") and "nodes_values" in attributes:
            modes = np.asarray(attributes.get("nodes_modes", []), dtype=object)
            branches = modes == "BRANCH_LEQ"
            attributes["nodes_values"] = self._round(attributes["nodes_values"], branches)
        elif op_type == "Imputer" and "imputed_value_floats" in attributes:
            attributes["imputed_value_floats"] = self._round(attributes["imputed_value_floats"])
        return self._container.add_node(op_type, *args, **attributes)

    def _round(self, values: Any, which: np.ndarray | None = None) -> Any:
        given = np.asarray(values, dtype="float64").ravel()
        exact = given if self._exact is None else np.asarray(self._exact, "float64").ravel()
        which = np.ones(given.shape, dtype=bool) if which is None else which
        if (
            exact.shape != given.shape
            or which.shape != given.shape
            or not np.array_equal(exact.astype("float32"), given.astype("float32"))
        ):
            return values  # not the values we expected: leave them be
        rounded = exact.astype("float32")
        rounded[which] = float32_thresholds(exact[which])
        return rounded


def _hist_gradient_boosting_thresholds(estimator: Any) -> np.ndarray:
    """Split thresholds of every tree, in the order skl2onnx writes the nodes (0 for leaves)."""
    parts = [
        np.where(predictor.nodes["is_leaf"], 0.0, predictor.nodes["num_threshold"])
        for iteration in estimator._predictors
        for predictor in iteration
    ]
    return np.concatenate(parts).astype("float64")


def _rounded_down(
    converter: Callable[..., Any], exact: Callable[[Any], np.ndarray] | None = None
) -> Callable[..., Any]:
    def convert(scope: Any, operator: Any, container: Any) -> Any:
        values = exact(operator.raw_operator) if exact is not None else None
        return converter(scope, operator, _RoundedDown(container, values))

    return convert


def compares_in_float64(estimator: Any) -> bool:
    """Whether the estimator compares its inputs with ``float64`` thresholds.

    HistGradientBoosting and LightGBM do; scikit-learn's other trees and XGBoost round their
    inputs to ``float32`` first, which the graph's ``float32`` inputs already are.
    """
    return hasattr(estimator, "_predictors") or isinstance(estimator, _LightGbmBooster)


def custom_converters(*, float64_splits: bool) -> dict[type[Any], Callable[..., Any]]:
    """Per-call converter overrides for :func:`skl2onnx.convert_sklearn`.

    ``float64_splits`` (see :func:`compares_in_float64`) also rounds the imputer's fill values
    down, as the thresholds they meet are.
    """
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
        convert_sklearn_random_forest_regressor_converter,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer

    converters: dict[type[Any], Callable[..., Any]] = {
        HistGradientBoostingClassifier: _rounded_down(
            convert_sklearn_random_forest_classifier, _hist_gradient_boosting_thresholds
        ),
        HistGradientBoostingRegressor: _rounded_down(
            convert_sklearn_random_forest_regressor_converter, _hist_gradient_boosting_thresholds
        ),
    }
    if float64_splits:
        converters[SimpleImputer] = _rounded_down(
            convert_sklearn_imputer, lambda imputer: imputer.statistics_
        )
    try:
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
            convert_lightgbm,
        )
    except ImportError:  # LightGBM not installed
        return converters
    converters[LightGbmBoosterClassifier] = _rounded_down(convert_lightgbm)
    converters[LightGbmBoosterRegressor] = _rounded_down(convert_lightgbm)
    return converters
