"""Hyperparameters as data: domains, conditions, client checks and sampling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from mlworker.training.algorithms import available_algorithms
from mlworker.training.model import validate_hyperparams
from mlworker.training.space import (
    Choice,
    FloatRange,
    Hyperparameter,
    HyperparameterError,
    IntRange,
    check,
    sample,
)


class SeededTrial:
    """Just enough of ``optuna.Trial``: seeded draws, and a record of each name's domain."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.domains: dict[str, Any] = {}

    def _remember(self, name: str, domain: Any) -> None:
        assert self.domains.setdefault(name, domain) == domain, f"{name} changed distribution"

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        self._remember(name, ("int", low, high, log))
        return int(self.rng.integers(low, high + 1))

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self._remember(name, ("float", low, high, log))
        if log:
            return float(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        return float(self.rng.uniform(low, high))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self._remember(name, ("categorical", tuple(choices)))
        return choices[int(self.rng.integers(len(choices)))]


SOLVER = Hyperparameter("solver", Choice(("lbfgs", "saga")))
PENALTY_LBFGS = Hyperparameter(
    "penalty", Choice(("l2", None)), when={"solver": ("lbfgs",)}, nullable=True
)
PENALTY_SAGA = Hyperparameter("penalty", Choice(("l1", "elasticnet")), when={"solver": ("saga",)})
RATIO = Hyperparameter(
    "l1_ratio", FloatRange(0.1, 0.9), allowed=FloatRange(0, 1), when={"penalty": ("elasticnet",)}
)
TREES = Hyperparameter("n_estimators", IntRange(50, 500), allowed=IntRange(1, 5000))
SPACE = (SOLVER, PENALTY_LBFGS, PENALTY_SAGA, RATIO, TREES)


@pytest.mark.parametrize(
    ("domain", "inside", "outside"),
    [
        (IntRange(1, 10), [1, 10, 5], [0, 11, 2.0, True, "3"]),
        (FloatRange(0.0, 1.0), [0, 0.5, 1.0], [-0.1, 1.01, math.nan, math.inf, False, "0.5"]),
        (Choice(("a", None, True)), ["a", None, True], ["b", 1, False]),
    ],
)
def test_domains_contain_exactly_their_values(
    domain: Any, inside: list[Any], outside: list[Any]
) -> None:
    assert all(domain.contains(value) for value in inside)
    assert not any(domain.contains(value) for value in outside)


def test_check_accepts_values_in_bounds_and_under_their_condition() -> None:
    check(SPACE, {"solver": "saga", "penalty": "elasticnet", "l1_ratio": 0.0, "n_estimators": 1})
    check(SPACE, {"penalty": None}, defaults={"solver": "lbfgs"})


def test_check_leaves_parameters_it_does_not_describe_to_the_estimator() -> None:
    check(SPACE, {"criterion": "entropy"})


@pytest.mark.parametrize(
    ("values", "defaults", "name", "message"),
    [
        ({"n_estimators": 10**8}, {}, "n_estimators", "outside"),
        ({"n_estimators": None}, {}, "n_estimators", "outside"),
        ({"solver": "lbfgs", "penalty": "l1"}, {}, "penalty", "outside"),
        ({"penalty": "l1"}, {}, "penalty", "applies only when solver in"),
        ({"l1_ratio": 0.5}, {"solver": "lbfgs"}, "l1_ratio", "applies only when penalty in"),
    ],
)
def test_check_names_the_offending_parameter(
    values: dict[str, Any], defaults: dict[str, Any], name: str, message: str
) -> None:
    with pytest.raises(HyperparameterError, match=message) as caught:
        check(SPACE, values, defaults=defaults)
    assert caught.value.name == name


def test_sample_honours_conditions_and_stays_in_the_search_domain() -> None:
    for seed in range(30):
        chosen = sample(SPACE, SeededTrial(seed))
        assert 50 <= chosen["n_estimators"] <= 500
        if chosen["solver"] == "lbfgs":
            assert chosen["penalty"] in ("l2", None)
        else:
            assert chosen["penalty"] in ("l1", "elasticnet")
        assert ("l1_ratio" in chosen) == (chosen["penalty"] == "elasticnet")
        check(SPACE, chosen)


def test_describe_is_json_ready() -> None:
    assert RATIO.describe() == {
        "name": "l1_ratio",
        "allowed": {"type": "float", "low": 0, "high": 1, "log": False},
        "search": {"type": "float", "low": 0.1, "high": 0.9, "log": False},
        "when": {"penalty": ["elasticnet"]},
    }


def _inside(search: Any, allowed: Any) -> bool:
    if isinstance(search, Choice):
        return all(allowed.contains(option) for option in search.options)
    return bool(allowed.contains(search.low) and allowed.contains(search.high))


@pytest.mark.parametrize("name", sorted(available_algorithms()))
def test_every_search_space_samples_what_train_accepts(name: str) -> None:
    algorithm = available_algorithms()[name]
    for parameter in algorithm.space:
        if parameter.search is not None:
            assert _inside(parameter.search, parameter.domain), parameter.name
    for seed in range(5):
        chosen = sample(algorithm.space, SeededTrial(seed))
        assert validate_hyperparams(algorithm, chosen) == chosen
