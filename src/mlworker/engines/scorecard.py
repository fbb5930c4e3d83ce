"""Scorecard: hand-written rules award points, the total is squashed into ``[0, 1]``.

The seed's transparent engine ("Scoring Engines", Scorecard): no training data, every rule
evaluation is returned in the explanation. The raw total is ``baseScore`` plus the points of
every matched rule, normalised either by a sigmoid centred on the point range,

    ``score = 1 / (1 + exp(-6 * (raw - mid) / range))``, ``mid = (min + max) / 2``,
    ``range = max - min``,

so ``minScore`` and ``maxScore`` map to about 0.05 and 0.95 and ``baseScore = 50`` gives 0.5,
or linearly, ``clip((raw - min) / range, 0, 1)``.

How rules compare (the same for every row, decided per column with vectorised NumPy):

* ``eq``/``neq``/``in``/``not_in``: numerically when both sides are numbers (strings that parse
  as numbers count, booleans are ``1``/``0``), otherwise by canonical text (``true``/``false`` for
  booleans, ``3`` for ``3.0``; see :func:`~mlworker.engines._features.canonical_text`); text
  comparison is case-sensitive.
* ``gt``/``gte``/``lt``/``lte``: the rule value is a number; a value that is not a number never
  matches.
* ``contains``: substring of the text, or, when the value is a list, an element equal to the
  rule value (as ``eq``); ``starts_with``: prefix of the text.
* A missing value (absent column, ``None``, NaN) matches **no** rule, ``neq`` and ``not_in``
  included: a rule only awards points on evidence the auditor can see in the explanation.

Examples
--------
>>> import pandas as pd
>>> config = ScorecardConfig(rules=[
...     {"field": "reward_tier", "operator": "eq", "value": "gold", "points": 20},
...     {"field": "visit_frequency", "operator": "gte", "value": 3, "points": 15},
...     {"field": "age", "operator": "gte", "value": 25, "points": 10}])
>>> candidates = pd.DataFrame({"reward_tier": ["gold", "silver"], "visit_frequency": [4, 1]})
>>> Engine(config).score(candidates).round(4).tolist()
[0.8909, 0.5]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlworker.engines._base import EngineConfig, Explanation, as_outcomes, sigmoid
from mlworker.engines._features import canonical_text, canonical_texts, column, numeric_values

Operator = Literal["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with"]
Scalar = bool | int | float | str
_ORDERED_COMPARISONS = {
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
}
_ORDERED = frozenset(_ORDERED_COMPARISONS)
_LISTED = frozenset({"in", "not_in"})
#: Slope of the sigmoid normalisation: the point range spans ``[-3, 3]`` on the logit scale.
SIGMOID_SLOPE = 6.0
#: Rules in one scorecard: far beyond a hand-written card, and each is evaluated for every row.
MAX_RULES = 1000
#: Values one ``in``/``not_in`` rule lists.
MAX_RULE_VALUES = 1000
#: Characters of a rule's text value and description.
MAX_RULE_TEXT = 1000
#: Characters of a column name (as for a model's predictors).
MAX_FIELD_NAME = 255


def _as_number(value: Any) -> float | None:
    """Read a rule value as a number, when it is one (booleans are 1/0, numeric text parses)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class Rule(EngineConfig):
    """One scorecard rule: ``points`` when ``field`` ``operator`` ``value`` holds."""

    field: str = Field(min_length=1, max_length=MAX_FIELD_NAME)
    operator: Operator
    value: Scalar | list[Scalar]
    points: float = Field(allow_inf_nan=False)
    description: str = Field("", max_length=MAX_RULE_TEXT)

    @field_validator("value", mode="before")
    @classmethod
    def _value_is_bounded(cls, value: Any) -> Any:
        # Before the union is tried: an oversized value gets one error naming ``value``, not
        # one per member type.
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_RULE_VALUES:
            raise ValueError(f"a rule lists at most {MAX_RULE_VALUES} values, got {len(values)}")
        if any(isinstance(item, str) and len(item) > MAX_RULE_TEXT for item in values):
            raise ValueError(f"a text value has at most {MAX_RULE_TEXT} characters")
        return value

    @field_validator("value")
    @classmethod
    def _value_fits_operator(
        cls, value: Scalar | list[Scalar], info: ValidationInfo
    ) -> Scalar | list[Scalar]:
        operator = info.data.get("operator")
        if operator is None:
            return value  # the operator error is reported on its own
        values = value if isinstance(value, list) else [value]
        if any(isinstance(item, float) and not math.isfinite(item) for item in values):
            raise ValueError("value must be finite")
        if operator in _LISTED:
            if not isinstance(value, list):
                raise ValueError(f"operator {operator!r} needs a list value")
            return value
        if isinstance(value, list):
            raise ValueError(f"operator {operator!r} needs a single value, not a list")
        if operator in _ORDERED:
            number = None if isinstance(value, bool) else _as_number(value)
            if number is None:
                raise ValueError(f"operator {operator!r} needs a number, got {value!r}")
            return value if isinstance(value, int | float) else number
        return value


class ScorecardConfig(EngineConfig):
    """Scorecard configuration (seed table "Scorecard")."""

    base_score: float = Field(default=50.0, allow_inf_nan=False)
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)
    normalization: Literal["sigmoid", "linear"] = "sigmoid"
    max_score: float = Field(default=100.0, allow_inf_nan=False)
    min_score: float = Field(default=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range_is_positive(self) -> Self:
        if not self.max_score > self.min_score:
            raise ValueError(
                f"maxScore ({self.max_score}) must be greater than minScore ({self.min_score})"
            )
        return self


class _Column:
    """One candidate column, read once per call for every rule on it."""

    def __init__(self, series: pd.Series) -> None:
        self.series = series
        self.missing = series.isna().to_numpy()
        self.numbers = numeric_values(series)
        self.texts = canonical_texts(series)
        if pd.api.types.is_object_dtype(series.dtype):
            self.is_list = np.array(
                [isinstance(v, list | tuple | set | frozenset) for v in series], dtype=bool
            )
        else:
            self.is_list = np.zeros(len(series), dtype=bool)

    def equals(self, expected: Any) -> np.ndarray:
        """Rows whose (non-list) value equals ``expected``."""
        by_text = self.texts == canonical_text(expected)
        number = _as_number(expected)
        if number is None:
            return np.asarray(by_text, dtype=bool)
        numeric = ~np.isnan(self.numbers)
        return np.asarray(np.where(numeric, self.numbers == number, by_text), dtype=bool)

    def contains(self, expected: Any) -> np.ndarray:
        """Rows whose text contains ``expected``, or whose list holds an element equal to it."""
        needle = canonical_text(expected)
        matched = np.array([needle in text for text in self.texts], dtype=bool)
        for row in np.flatnonzero(self.is_list):
            elements = pd.Series(list(self.series.iloc[row]), dtype=object)
            matched[row] = bool(len(elements)) and bool(
                (~elements.isna().to_numpy() & _Column(elements).equals(expected)).any()
            )
        return matched


def _matches(rule: Rule, values: _Column) -> np.ndarray:
    """Whether each row satisfies ``rule``; missing values never do."""
    operator, expected = rule.operator, rule.value
    scalar_rows = ~values.is_list
    if operator in _ORDERED:
        with np.errstate(invalid="ignore"):
            threshold = _as_number(expected)
            assert threshold is not None  # validated with the rule
            matched = _ORDERED_COMPARISONS[operator](values.numbers, threshold)
    elif operator in ("eq", "neq"):
        matched = values.equals(expected) & scalar_rows
        matched = ~matched if operator == "neq" else matched
    elif operator in _LISTED:
        options = expected if isinstance(expected, list) else [expected]
        matched = np.zeros(len(values.missing), dtype=bool)
        for option in options:
            matched |= values.equals(option)
        matched &= scalar_rows
        matched = ~matched if operator == "not_in" else matched
    elif operator == "contains":
        matched = values.contains(expected)
    else:
        prefix = canonical_text(expected)
        matched = np.array([text.startswith(prefix) for text in values.texts], dtype=bool)
        matched &= scalar_rows
    return np.asarray(matched, dtype=bool) & ~values.missing


def _json_safe(value: Any) -> Any:
    """Convert a candidate value to plain JSON for the audit trail (missing becomes ``None``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_json_safe(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class Engine:
    """Rule-based scorecard; needs no training (:attr:`is_trained` is always true).

    Parameters
    ----------
    config
        Validated :class:`ScorecardConfig`.
    random_state
        Stored for the engine contract; nothing here is random.
    """

    kind: ClassVar[str] = "scorecard"
    Config: ClassVar[type[EngineConfig]] = ScorecardConfig

    def __init__(self, config: ScorecardConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state

    @property
    def is_trained(self) -> bool:
        """Always true: the rules are the model."""
        return True

    def fit(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> Self:
        """Nothing to learn; outcomes are still checked so bad input is never silently accepted."""
        as_outcomes(outcomes, len(interactions))
        return self

    def _evaluate(self, candidates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return matched flags ``(rules, rows)`` and raw point totals ``(rows,)``."""
        columns: dict[str, _Column] = {}
        matched = np.zeros((len(self.config.rules), len(candidates)), dtype=np.bool_)
        for position, rule in enumerate(self.config.rules):
            if rule.field not in columns:
                columns[rule.field] = _Column(column(candidates, rule.field))
            matched[position] = _matches(rule, columns[rule.field])
        points = np.array([rule.points for rule in self.config.rules], dtype=np.float64)
        raw = self.config.base_score + points @ matched.astype(np.float64)
        return matched, np.asarray(raw, dtype=np.float64).reshape(len(candidates))

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """Raw point totals to ``[0, 1]`` with the configured normalisation.

        Examples
        --------
        >>> raw = np.array([50.0, 75.0, 85.0, 90.0])
        >>> Engine(ScorecardConfig()).normalize(raw).round(4).tolist()
        [0.5, 0.8176, 0.8909, 0.9168]
        >>> Engine(ScorecardConfig(normalization="linear")).normalize(raw).tolist()
        [0.5, 0.75, 0.85, 0.9]
        """
        low, high = self.config.min_score, self.config.max_score
        span = high - low
        if self.config.normalization == "linear":
            return np.asarray(np.clip((raw - low) / span, 0.0, 1.0), dtype=np.float64)
        return sigmoid(SIGMOID_SLOPE * (raw - (low + high) / 2.0) / span)

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Normalised point totals, one per candidate."""
        return self.normalize(self._evaluate(candidates)[1])

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Every rule's evaluation per candidate, then a ``{"baseScore", "rawScore"}`` total row.

        Each rule row is ``{field, operator, expected, actual, matched, points, description}``;
        ``points`` are the rule's points, awarded when ``matched``.
        """
        matched, raw = self._evaluate(candidates)
        scores = self.normalize(raw)
        actual_columns = [column(candidates, rule.field) for rule in self.config.rules]
        explanations = []
        for row in range(len(candidates)):
            details: list[dict[str, Any]] = [
                {
                    "field": rule.field,
                    "operator": rule.operator,
                    "expected": rule.value,
                    "actual": _json_safe(actual_columns[position].iloc[row]),
                    "matched": bool(matched[position, row]),
                    "points": rule.points,
                    "description": rule.description,
                }
                for position, rule in enumerate(self.config.rules)
            ]
            details.append(
                {
                    "baseScore": self.config.base_score,
                    "rawScore": float(raw[row]),
                    "normalization": self.config.normalization,
                }
            )
            explanations.append(Explanation(self.kind, float(scores[row]), details))
        return explanations

    def state(self) -> dict[str, Any]:
        """Nothing learned: ``{}``."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Accept the empty state :meth:`state` returns.

        Raises
        ------
        ValueError
            ``state`` is not empty (it belongs to another engine).
        """
        if state:
            raise ValueError(f"a scorecard has no learned state, got keys {sorted(state)}")
        return self
