"""Hyperparameters as data: search ranges for Optuna, validation bounds for ``/train``.

Each :class:`Hyperparameter` says how Optuna samples it (``search``), which values a client may
pass (``allowed``, usually wider than the search range), and when it applies (``when``: a
condition on earlier choices, e.g. ``l1_ratio`` only for the elastic-net penalty). The same
description is shown by ``GET /algorithms/{name}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Trial(Protocol):
    """The part of ``optuna.Trial`` a search space uses."""

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        """Sample an integer."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        """Sample a float."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """Sample one of ``choices``."""


@dataclass(frozen=True)
class IntRange:
    """Integers in ``[low, high]``, optionally sampled on a log scale."""

    low: int
    high: int
    log: bool = False

    def describe(self) -> dict[str, Any]:
        """JSON form for ``/algorithms/{name}``."""
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log}

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is an integer in range."""
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )


@dataclass(frozen=True)
class FloatRange:
    """Reals in ``[low, high]``, optionally sampled on a log scale."""

    low: float
    high: float
    log: bool = False

    def describe(self) -> dict[str, Any]:
        """JSON form for ``/algorithms/{name}``."""
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a finite number in range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return math.isfinite(value) and self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (``None`` allowed as a value)."""

    options: tuple[Any, ...]

    def describe(self) -> dict[str, Any]:
        """JSON form for ``/algorithms/{name}``."""
        return {"type": "categorical", "choices": list(self.options)}

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the options (type-exact for booleans)."""
        return any(value == option and type(value) is type(option) for option in self.options)


Domain = IntRange | FloatRange | Choice


@dataclass(frozen=True)
class Hyperparameter:
    """One tunable parameter.

    Attributes
    ----------
    name
        Parameter name as ``/train`` accepts it.
    search
        What Optuna samples (``None``: never tuned, only validated).
    allowed
        What a client may set; defaults to the search domain.
    when
        Applies only when each named earlier parameter has one of the listed values.
    nullable
        ``None`` is also accepted (e.g. ``max_depth: null`` for unlimited depth).
    """

    name: str
    search: Domain | None
    allowed: Domain | None = None
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    nullable: bool = False

    @property
    def domain(self) -> Domain:
        """The domain client values are checked against."""
        domain = self.allowed or self.search
        assert domain is not None, f"{self.name} has neither a search nor an allowed domain"
        return domain

    def applies(self, chosen: Mapping[str, Any]) -> bool:
        """Whether the conditions on earlier parameters hold for ``chosen``."""
        return all(chosen.get(name) in values for name, values in self.when.items())

    def describe(self) -> dict[str, Any]:
        """JSON form for ``/algorithms/{name}``."""
        data: dict[str, Any] = {"name": self.name, "allowed": self.domain.describe()}
        if self.search is not None:
            data["search"] = self.search.describe()
        if self.when:
            data["when"] = {name: list(values) for name, values in self.when.items()}
        if self.nullable:
            data["nullable"] = True
        return data


def optuna_name(parameter: Hyperparameter, *, prefix: str = "") -> str:
    """Name of ``parameter`` inside an Optuna study.

    Optuna requires one fixed distribution per name; a parameter whose choices depend on an
    earlier one gets a name per condition (``penalty|solver=saga``). ``prefix`` keeps the
    parameters of different algorithms apart when one study searches several.

    Examples
    --------
    >>> optuna_name(Hyperparameter("penalty", Choice(("l1",)), when={"solver": ("saga",)}))
    'penalty|solver=saga'
    >>> optuna_name(Hyperparameter("C", FloatRange(0.1, 1.0)), prefix="SVC:")
    'SVC:C'
    """
    if not parameter.when or not isinstance(parameter.search, Choice):
        return prefix + parameter.name
    condition = ",".join(f"{k}={'/'.join(map(str, v))}" for k, v in sorted(parameter.when.items()))
    return f"{prefix}{parameter.name}|{condition}"


def optuna_values(
    space: Sequence[Hyperparameter], values: Mapping[str, Any], *, prefix: str = ""
) -> dict[str, Any]:
    """Translate ``/train`` parameter values into Optuna's names (to enqueue a known trial).

    Values outside a parameter's search domain, and parameters that are not searched or whose
    condition does not hold, are left out: Optuna samples those instead.
    """
    chosen: dict[str, Any] = {}
    named: dict[str, Any] = {}
    for parameter in space:
        if parameter.search is None or not parameter.applies(chosen):
            continue
        if parameter.name in values and parameter.search.contains(values[parameter.name]):
            chosen[parameter.name] = values[parameter.name]
            named[optuna_name(parameter, prefix=prefix)] = values[parameter.name]
    return named


def sample(space: Sequence[Hyperparameter], trial: Trial, *, prefix: str = "") -> dict[str, Any]:
    """Sample parameters from ``space`` in order, honouring conditions.

    Returns the parameters under their ``/train`` names, ready to be passed back as
    ``hyperparams``; ``prefix`` only changes the names the study stores them under.
    """
    chosen: dict[str, Any] = {}
    for parameter in space:
        if parameter.search is None or not parameter.applies(chosen):
            continue
        name = optuna_name(parameter, prefix=prefix)
        domain = parameter.search
        if isinstance(domain, IntRange):
            chosen[parameter.name] = trial.suggest_int(
                name, domain.low, domain.high, log=domain.log
            )
        elif isinstance(domain, FloatRange):
            chosen[parameter.name] = trial.suggest_float(
                name, domain.low, domain.high, log=domain.log
            )
        else:
            chosen[parameter.name] = trial.suggest_categorical(name, list(domain.options))
    return chosen


class HyperparameterError(ValueError):
    """A client-supplied hyperparameter is unknown or out of bounds."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def check(
    space: Sequence[Hyperparameter],
    values: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Check client values against the domains and conditions of ``space``.

    A name may be described several times with different conditions (``penalty`` per
    ``solver``); the description whose condition holds, given ``values`` over ``defaults``,
    applies. Parameters ``space`` does not describe are left to the estimator's own validation.

    Raises
    ------
    HyperparameterError
        Naming the first offending parameter.
    """
    context = {**(defaults or {}), **values}
    for name, value in values.items():
        candidates = [parameter for parameter in space if parameter.name == name]
        if not candidates:
            continue
        applicable = [parameter for parameter in candidates if parameter.applies(context)]
        if not applicable:
            conditions = " or ".join(
                ", ".join(f"{k} in {list(v)}" for k, v in parameter.when.items())
                for parameter in candidates
            )
            raise HyperparameterError(name, f"{name} applies only when {conditions}")
        parameter = applicable[0]
        if value is None and parameter.nullable:
            continue
        if not parameter.domain.contains(value):
            bounds = parameter.domain.describe()
            raise HyperparameterError(name, f"{name}={value!r} is outside {bounds}")
