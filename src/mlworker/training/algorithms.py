"""The algorithm table: the single source for ``/algorithms``, validation and search spaces.

Each entry names its task, how to build the estimator, what preprocessing it needs, which
hyperparameters a client may set (with bounds) and which Optuna searches. The search spaces are
the seed's, made valid: ``LogisticRegression`` picks a solver first and then only a penalty that
solver supports.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlworker.training.space import Choice, FloatRange, Hyperparameter, IntRange


class Task(StrEnum):
    """What a model predicts."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


#: Parameters the worker decides (threads, seeds, logging); a client may not set them.
WORKER_PARAMETERS = frozenset(
    {
        "n_jobs",
        "random_state",
        "verbose",
        "verbosity",
        "nthread",
        "thread_count",
        "device",
        "seed",
        "silent",
        "warm_start",
        "probability",
    }
)


@dataclass(frozen=True)
class Algorithm:
    """One trainable algorithm.

    Attributes
    ----------
    name
        Name used by the API (``RandomForestClassifier``).
    task
        Classification or regression.
    estimator
        ``module:Class`` of the estimator.
    requires
        Modules that must import for the algorithm to be offered.
    scale
        Whether numeric inputs must be standardised (linear models, kernels).
    family
        ``tree``, ``boosting``, ``linear`` or ``kernel``: drives importances and costs.
    native_format
        ``xgboost`` or ``lightgbm`` when the fitted booster is stored in the library's own format.
    cost
        Relative training cost (1 cheap … 5 expensive), for ``auto`` ordering.
    defaults
        Our defaults where the library's are poor for a first fit.
    fixed
        Settings the worker always applies.
    space
        Hyperparameters (search ranges and client bounds).
    early_stopping
        How tuning stops boosting early: ``lightgbm``, ``xgboost`` or ``None``.
    parallel
        Whether the estimator takes ``n_jobs`` threads.
    owned
        Further parameters the worker decides for this estimator (a classifier's objective
        follows its classes, not the request).
    translate
        Maps request parameters onto the estimator's (the seed's ``penalty`` → ``l1_ratio``).
    """

    name: str
    task: Task
    estimator: str
    description: str
    requires: tuple[str, ...] = ()
    scale: bool = False
    family: str = "tree"
    native_format: str | None = None
    cost: int = 2
    defaults: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    space: tuple[Hyperparameter, ...] = ()
    early_stopping: str | None = None
    parallel: bool = True
    owned: frozenset[str] = frozenset()
    translate: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def available(self) -> bool:
        """Whether every module the algorithm needs is installed."""
        modules = (self.estimator.partition(":")[0].split(".")[0], *self.requires)
        return all(importlib.util.find_spec(module) is not None for module in modules)

    def estimator_class(self) -> type[Any]:
        """Import and return the estimator class."""
        module, _, name = self.estimator.partition(":")
        cls: type[Any] = getattr(importlib.import_module(module), name)
        return cls

    def describe(self) -> dict[str, Any]:
        """JSON form for ``GET /algorithms/{name}``."""
        return {
            "name": self.name,
            "task": self.task.value,
            "description": self.description,
            "estimator": self.estimator.replace(":", "."),
            "scaled_inputs": self.scale,
            "defaults": dict(self.defaults),
            "search_space": [parameter.describe() for parameter in self.space],
            "set_by_worker": sorted(
                set(self.fixed) | self.owned | (WORKER_PARAMETERS & self._params())
            ),
        }

    def _params(self) -> set[str]:
        try:
            return set(self.estimator_class()().get_params())
        except Exception:  # optional library missing
            return set()


# --- shared hyperparameter descriptions -----------------------------------------------------
def _forest(regression: bool) -> tuple[Hyperparameter, ...]:
    features: tuple[Any, ...] = ("sqrt", "log2", None) if not regression else (1.0, "sqrt", "log2")
    return (
        Hyperparameter("n_estimators", IntRange(50, 500), allowed=IntRange(1, 5000)),
        Hyperparameter("max_depth", IntRange(3, 20), allowed=IntRange(1, 200), nullable=True),
        Hyperparameter("min_samples_split", IntRange(2, 20), allowed=IntRange(2, 10_000)),
        Hyperparameter("min_samples_leaf", IntRange(1, 10), allowed=IntRange(1, 10_000)),
        Hyperparameter(
            "max_features",
            Choice(features),
            allowed=Choice(("sqrt", "log2", None, 1.0)),
            nullable=True,
        ),
    )


_GRADIENT_BOOSTING = (
    Hyperparameter("n_estimators", IntRange(50, 500), allowed=IntRange(1, 5000)),
    Hyperparameter(
        "learning_rate", FloatRange(0.001, 0.3, log=True), allowed=FloatRange(1e-5, 1.0)
    ),
    Hyperparameter("max_depth", IntRange(3, 10), allowed=IntRange(1, 50), nullable=True),
    Hyperparameter("subsample", FloatRange(0.5, 1.0), allowed=FloatRange(0.05, 1.0)),
)

_HIST_GRADIENT_BOOSTING = (
    Hyperparameter("max_iter", IntRange(50, 500), allowed=IntRange(1, 5000)),
    Hyperparameter("learning_rate", FloatRange(0.01, 0.3, log=True), allowed=FloatRange(1e-5, 1.0)),
    Hyperparameter("max_leaf_nodes", IntRange(15, 127, log=True), allowed=IntRange(2, 4096)),
    Hyperparameter("min_samples_leaf", IntRange(5, 100, log=True), allowed=IntRange(1, 100_000)),
    Hyperparameter(
        "l2_regularization", FloatRange(1e-8, 10.0, log=True), allowed=FloatRange(0.0, 1e4)
    ),
    Hyperparameter("max_depth", None, allowed=IntRange(1, 100), nullable=True),
)

_XGBOOST = (
    Hyperparameter("n_estimators", IntRange(50, 1000, log=True), allowed=IntRange(1, 10_000)),
    Hyperparameter(
        "learning_rate", FloatRange(0.005, 0.3, log=True), allowed=FloatRange(1e-5, 1.0)
    ),
    Hyperparameter("max_depth", IntRange(3, 10), allowed=IntRange(1, 30)),
    Hyperparameter("min_child_weight", FloatRange(0.5, 20.0, log=True), allowed=FloatRange(0, 1e4)),
    Hyperparameter("subsample", FloatRange(0.5, 1.0), allowed=FloatRange(0.05, 1.0)),
    Hyperparameter("colsample_bytree", FloatRange(0.5, 1.0), allowed=FloatRange(0.05, 1.0)),
    Hyperparameter("reg_lambda", FloatRange(1e-3, 10.0, log=True), allowed=FloatRange(0, 1e4)),
    Hyperparameter("reg_alpha", FloatRange(1e-3, 10.0, log=True), allowed=FloatRange(0, 1e4)),
)

_LIGHTGBM = (
    Hyperparameter("n_estimators", IntRange(50, 1000, log=True), allowed=IntRange(1, 10_000)),
    Hyperparameter(
        "learning_rate", FloatRange(0.005, 0.3, log=True), allowed=FloatRange(1e-5, 1.0)
    ),
    Hyperparameter("num_leaves", IntRange(8, 255, log=True), allowed=IntRange(2, 131_072)),
    Hyperparameter("min_child_samples", IntRange(5, 100, log=True), allowed=IntRange(1, 100_000)),
    Hyperparameter("subsample", FloatRange(0.5, 1.0), allowed=FloatRange(0.05, 1.0)),
    Hyperparameter("colsample_bytree", FloatRange(0.5, 1.0), allowed=FloatRange(0.05, 1.0)),
    Hyperparameter("reg_lambda", FloatRange(1e-3, 10.0, log=True), allowed=FloatRange(0, 1e4)),
    Hyperparameter("reg_alpha", FloatRange(1e-3, 10.0, log=True), allowed=FloatRange(0, 1e4)),
    Hyperparameter("max_depth", None, allowed=IntRange(-1, 100)),
)

_SOLVER_PENALTIES = {
    "lbfgs": ("l2", None),
    "liblinear": ("l1", "l2"),
    "saga": ("l1", "l2", "elasticnet", None),
}

_LOGISTIC = (
    Hyperparameter("C", FloatRange(0.001, 100.0, log=True), allowed=FloatRange(1e-8, 1e8)),
    Hyperparameter("solver", Choice(tuple(_SOLVER_PENALTIES))),
    *(
        Hyperparameter("penalty", Choice(penalties), when={"solver": (solver,)}, nullable=True)
        for solver, penalties in _SOLVER_PENALTIES.items()
    ),
    Hyperparameter(
        "l1_ratio",
        FloatRange(0.05, 0.95),
        allowed=FloatRange(0.0, 1.0),
        when={"penalty": ("elasticnet",)},
    ),
    Hyperparameter("max_iter", IntRange(100, 1000), allowed=IntRange(10, 100_000)),
)


def _logistic_penalty(params: dict[str, Any]) -> dict[str, Any]:
    """Map the seed's ``penalty`` onto scikit-learn ≥ 1.8's ``l1_ratio`` / ``C``."""
    params = dict(params)
    if "penalty" not in params:
        return params
    penalty = params.pop("penalty")
    if penalty is None:
        params["C"] = math.inf
        params.pop("l1_ratio", None)
    elif penalty == "l1":
        params["l1_ratio"] = 1.0
    elif penalty == "l2":
        params["l1_ratio"] = 0.0
    else:  # elasticnet keeps its l1_ratio (default 0.5)
        params.setdefault("l1_ratio", 0.5)
    return params


_SVM = (
    Hyperparameter("C", FloatRange(0.01, 100.0, log=True), allowed=FloatRange(1e-6, 1e6)),
    Hyperparameter("kernel", Choice(("rbf", "linear", "poly"))),
    Hyperparameter("degree", IntRange(2, 4), allowed=IntRange(1, 10), when={"kernel": ("poly",)}),
    Hyperparameter("gamma", Choice(("scale", "auto"))),
)

_BOOSTING_FIXED = {"n_jobs": 1}
_CLASSIFIER_OBJECTIVES = frozenset({"objective", "num_class", "eval_metric"})

_ALGORITHMS = (
    Algorithm(
        "RandomForestClassifier",
        Task.CLASSIFICATION,
        "sklearn.ensemble:RandomForestClassifier",
        "Ensemble of decision trees",
        cost=3,
        defaults={"n_estimators": 200},
        space=_forest(regression=False),
    ),
    Algorithm(
        "RandomForestRegressor",
        Task.REGRESSION,
        "sklearn.ensemble:RandomForestRegressor",
        "Ensemble regression trees",
        cost=3,
        defaults={"n_estimators": 200},
        space=_forest(regression=True),
    ),
    Algorithm(
        "LogisticRegression",
        Task.CLASSIFICATION,
        "sklearn.linear_model:LogisticRegression",
        "Linear classification",
        scale=True,
        family="linear",
        cost=1,
        defaults={"max_iter": 1000},
        space=_LOGISTIC,
        parallel=False,
        translate=_logistic_penalty,
    ),
    Algorithm(
        "GradientBoostingClassifier",
        Task.CLASSIFICATION,
        "sklearn.ensemble:GradientBoostingClassifier",
        "Boosted trees",
        cost=4,
        space=_GRADIENT_BOOSTING,
    ),
    Algorithm(
        "GradientBoostingRegressor",
        Task.REGRESSION,
        "sklearn.ensemble:GradientBoostingRegressor",
        "Boosted regression",
        cost=4,
        space=_GRADIENT_BOOSTING,
    ),
    Algorithm(
        "SVC",
        Task.CLASSIFICATION,
        "sklearn.svm:SVC",
        "Support vector classifier (probabilities calibrated by cross-validation)",
        scale=True,
        family="kernel",
        cost=5,
        space=_SVM,
    ),
    Algorithm(
        "SVR",
        Task.REGRESSION,
        "sklearn.svm:SVR",
        "Support vector regression",
        scale=True,
        family="kernel",
        cost=5,
        space=(
            *_SVM,
            Hyperparameter(
                "epsilon", FloatRange(0.01, 1.0, log=True), allowed=FloatRange(0.0, 1e6)
            ),
        ),
    ),
    Algorithm(
        "LinearRegression",
        Task.REGRESSION,
        "sklearn.linear_model:LinearRegression",
        "Ordinary least squares",
        scale=True,
        family="linear",
        cost=1,
        space=(Hyperparameter("fit_intercept", Choice((True, False))),),
    ),
    Algorithm(
        "Ridge",
        Task.REGRESSION,
        "sklearn.linear_model:Ridge",
        "Least squares with an L2 penalty",
        scale=True,
        family="linear",
        cost=1,
        space=(
            Hyperparameter("alpha", FloatRange(1e-3, 100.0, log=True), allowed=FloatRange(0, 1e8)),
        ),
    ),
    Algorithm(
        "HistGradientBoostingClassifier",
        Task.CLASSIFICATION,
        "sklearn.ensemble:HistGradientBoostingClassifier",
        "Histogram-based gradient boosting (fast on large tables)",
        family="boosting",
        cost=2,
        space=_HIST_GRADIENT_BOOSTING,
    ),
    Algorithm(
        "HistGradientBoostingRegressor",
        Task.REGRESSION,
        "sklearn.ensemble:HistGradientBoostingRegressor",
        "Histogram-based gradient boosting regression",
        family="boosting",
        cost=2,
        space=_HIST_GRADIENT_BOOSTING,
    ),
    Algorithm(
        "XGBClassifier",
        Task.CLASSIFICATION,
        "xgboost:XGBClassifier",
        "XGBoost gradient-boosted trees",
        family="boosting",
        native_format="xgboost",
        cost=2,
        defaults={"n_estimators": 200, "learning_rate": 0.1},
        fixed={**_BOOSTING_FIXED, "tree_method": "hist"},
        space=_XGBOOST,
        early_stopping="xgboost",
        owned=_CLASSIFIER_OBJECTIVES,
    ),
    Algorithm(
        "XGBRegressor",
        Task.REGRESSION,
        "xgboost:XGBRegressor",
        "XGBoost gradient-boosted regression trees",
        family="boosting",
        native_format="xgboost",
        cost=2,
        defaults={"n_estimators": 200, "learning_rate": 0.1},
        fixed={**_BOOSTING_FIXED, "tree_method": "hist"},
        space=_XGBOOST,
        early_stopping="xgboost",
    ),
    Algorithm(
        "LGBMClassifier",
        Task.CLASSIFICATION,
        "lightgbm:LGBMClassifier",
        "LightGBM gradient-boosted trees",
        family="boosting",
        native_format="lightgbm",
        cost=2,
        defaults={"n_estimators": 200},
        fixed={**_BOOSTING_FIXED, "verbosity": -1, "subsample_freq": 1, "importance_type": "gain"},
        space=_LIGHTGBM,
        early_stopping="lightgbm",
        owned=_CLASSIFIER_OBJECTIVES,
    ),
    Algorithm(
        "LGBMRegressor",
        Task.REGRESSION,
        "lightgbm:LGBMRegressor",
        "LightGBM gradient-boosted regression trees",
        family="boosting",
        native_format="lightgbm",
        cost=2,
        defaults={"n_estimators": 200},
        fixed={**_BOOSTING_FIXED, "verbosity": -1, "subsample_freq": 1, "importance_type": "gain"},
        space=_LIGHTGBM,
        early_stopping="lightgbm",
    ),
)

#: Every algorithm ML Worker knows, installed or not, by name.
ALGORITHMS: dict[str, Algorithm] = {algorithm.name: algorithm for algorithm in _ALGORITHMS}
#: Names the seed's clients use for the same estimators.
ALIASES = {
    "XGBoostClassifier": "XGBClassifier",
    "XGBoostRegressor": "XGBRegressor",
    "LightGBMClassifier": "LGBMClassifier",
    "LightGBMRegressor": "LGBMRegressor",
}


def available_algorithms() -> dict[str, Algorithm]:
    """Return the algorithms whose libraries are installed, by name."""
    return {name: algorithm for name, algorithm in ALGORITHMS.items() if algorithm.available}


def resolve(name: str) -> Algorithm:
    """Return the algorithm called ``name`` (or one of its aliases).

    Raises
    ------
    KeyError
        Unknown, or its library is not installed.
    """
    algorithm = ALGORITHMS.get(ALIASES.get(name, name))
    if algorithm is None or not algorithm.available:
        raise KeyError(name)
    return algorithm
