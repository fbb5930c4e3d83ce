"""The contract every propensity scoring engine obeys (seed 003, "Scoring Engines").

An engine turns customer-offer *candidates* into propensities in ``[0, 1]``. Candidates and
training interactions have the same shape: a :class:`pandas.DataFrame` with one row per
customer-offer pair whose columns are the customer's attributes merged with the offer's, plus
the reserved columns :data:`CUSTOMER_ID` and :data:`OFFER_ID`. Training adds a 0/1 outcome per
row, passed separately.

The life of an engine, scikit-learn style: the constructor only stores the validated config and
the seed; :meth:`ScoringEngine.fit` learns from interactions; :meth:`ScoringEngine.score` scores
many candidates at once; :meth:`ScoringEngine.explain` says why; :meth:`ScoringEngine.state`
returns the learned parameters as plain JSON (the seed's ``modelState``) and
:meth:`ScoringEngine.load_state` restores them, so nothing is ever pickled. Engines the seed
lets learn from single outcomes also implement :class:`IncrementalEngine`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

#: Reserved candidate columns: who is scored, and for which offer.
CUSTOMER_ID = "customerId"
OFFER_ID = "offerId"
RESERVED_COLUMNS = (CUSTOMER_ID, OFFER_ID)
#: Longest string any engine config holds unless its field says less: configs are stored with
#: every model version and read on every score, so none may grow without bound.
MAX_CONFIG_TEXT = 4096


class EngineConfig(BaseModel):
    """Base of every engine's configuration: frozen, camelCase, unknown fields refused.

    Field names and defaults follow the seed's tables exactly; the API validates a model's
    ``config`` against its engine's subclass, so a wrong field is a 422 naming it. Every string
    is at most :data:`MAX_CONFIG_TEXT` characters unless its field sets a tighter limit, and
    every list field declares its own ``max_length``; no number is infinite or NaN (Python's
    JSON reader accepts ``Infinity`` and ``NaN``, and no engine can use them).
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        str_max_length=MAX_CONFIG_TEXT,
        allow_inf_nan=False,
    )


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one candidate got its score (the seed's ``modelExplanation``).

    Parameters
    ----------
    engine
        The engine's ``kind``.
    score
        The score explained.
    details
        Engine-specific entries, shaped as the seed's "Explanation Details by Engine" table:
        per-rule evaluations for a scorecard, ``{"field", "contribution"}`` for the Bayesian,
        linear and tree engines, per-offer draws for bandits, empty where the seed says "not
        available".
    confidence
        ``0..1`` for engines that report one (Bayesian), else ``None``.
    """

    engine: str
    score: float
    details: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the camelCase JSON body."""
        body: dict[str, Any] = {"engine": self.engine, "score": self.score, "details": self.details}
        if self.confidence is not None:
            body["confidence"] = self.confidence
        return body


@runtime_checkable
class ScoringEngine(Protocol):
    """One propensity scoring engine.

    Implementations take ``(config, *, random_state=0)`` in their constructor and store nothing
    else there. ``kind`` is the seed's ``modelType`` and ``Config`` the engine's
    :class:`EngineConfig` subclass.
    """

    kind: ClassVar[str]
    Config: ClassVar[type[EngineConfig]]

    @property
    def is_trained(self) -> bool:
        """Whether the engine has learned anything (an untrained engine still scores)."""
        ...

    def fit(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> Self:
        """Learn from scratch from interaction rows and their 0/1 outcomes; return ``self``."""
        ...

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Propensities in ``[0, 1]``, shape ``(len(candidates),)``, float64.

        ``rng`` drives stochastic engines (bandit draws, exploration); the same ``rng`` seed
        gives the same scores. Deterministic engines ignore it.
        """
        ...

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """One :class:`Explanation` per candidate, scores equal to :meth:`score`'s."""
        ...

    def state(self) -> dict[str, Any]:
        """Return the learned parameters as JSON-safe values (str, int, float, list, dict, …)."""
        ...

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Restore parameters produced by :meth:`state`; return ``self``."""
        ...


@runtime_checkable
class IncrementalEngine(ScoringEngine, Protocol):
    """An engine that updates from outcomes without a full retrain."""

    def learn_one(self, candidate: Mapping[str, Any], outcome: float) -> None:
        """Update from one candidate (a merged attribute mapping incl. ids) and its outcome."""
        ...

    def update(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> None:
        """Update from a batch of outcomes, keeping what was learned before."""
        ...


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Return the candidate columns that are features: all but the reserved ids.

    Examples
    --------
    >>> feature_columns(pd.DataFrame({"offerId": ["a"], "age": [30], "customerId": ["c"]}))
    ['age']
    """
    return [str(column) for column in frame.columns if column not in RESERVED_COLUMNS]


def candidate_frame(
    customer_attributes: Mapping[str, Any],
    offers: Sequence[Mapping[str, Any]],
    *,
    customer_id: str | None = None,
) -> pd.DataFrame:
    """Candidates for one customer: the customer's attributes merged into each offer's.

    An offer attribute with the same name as a customer attribute wins for that offer's row.

    Parameters
    ----------
    customer_attributes
        Attributes of the customer being scored.
    offers
        ``{"id": ..., "attributes": {...}}`` per offer.
    customer_id
        Stored in :data:`CUSTOMER_ID` (engines keyed by customer need it).

    Examples
    --------
    >>> offers = [{"id": "o1", "attributes": {"pct": 50}}, {"id": "o2", "attributes": {}}]
    >>> frame = candidate_frame({"tier": "gold"}, offers, customer_id="c")
    >>> frame.to_dict("records")[1]
    {'tier': 'gold', 'pct': nan, 'customerId': 'c', 'offerId': 'o2'}
    """
    rows = [
        {
            **customer_attributes,
            **(offer.get("attributes") or {}),
            CUSTOMER_ID: customer_id,
            OFFER_ID: str(offer["id"]),
        }
        for offer in offers
    ]
    return pd.DataFrame.from_records(rows)


def as_outcomes(outcomes: Any, length: int) -> np.ndarray:
    """Outcomes as a float64 vector of 0/1 of the given length.

    Raises
    ------
    ValueError
        The length differs or a value is not 0 or 1.

    Examples
    --------
    >>> as_outcomes([1, 0, True], 3)
    array([1., 0., 1.])
    """
    values = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    if values.shape[0] != length:
        raise ValueError(f"{values.shape[0]} outcomes for {length} interactions")
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 or 1")
    return values


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function.

    Examples
    --------
    >>> sigmoid(np.array([0.0, 800.0, -800.0])).tolist()
    [0.5, 1.0, 0.0]
    """
    margin = np.asarray(margin, dtype=np.float64)
    out = np.empty_like(margin)
    positive = margin >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-margin[positive]))
    exp = np.exp(margin[~positive])
    out[~positive] = exp / (1.0 + exp)
    return out


def id_codes(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str]]:
    """Factorise an id column: a code per row and the distinct ids as ``str``.

    Codes index the ids; ``-1`` marks a missing id (or every row when the column is absent).
    Unhashable values (lists, dicts) raise :class:`ValueError`.
    Ids that differ only in type (``7`` and ``"7"``) are one id. Every engine keyed by ids (both
    bandits, neural CF) goes through here, so they all agree on what an id is.

    Examples
    --------
    >>> codes, ids = id_codes(pd.DataFrame({"offerId": ["a", None, 7, "7", "a"]}), "offerId")
    >>> codes.tolist(), ids
    ([0, -1, 1, 1, 0], ['a', '7'])
    >>> id_codes(pd.DataFrame({"age": [30]}), "offerId")[0].tolist()
    [-1]
    """
    if column not in frame.columns:
        return np.full(len(frame), -1, dtype=np.intp), []
    # Factorising first keeps the per-value Python work to the distinct ids.
    try:
        codes, uniques = pd.factorize(frame[column].to_numpy(dtype=object))
    except TypeError as error:
        raise ValueError(f"{column} values must be plain ids (str or int): {error}") from error
    ids = [str(value) for value in uniques]
    if len(set(ids)) < len(ids):
        merged, distinct = pd.factorize(np.asarray(ids, dtype=object))
        codes = np.where(codes >= 0, merged[codes], -1)
        ids = [str(value) for value in distinct]
    return codes.astype(np.intp), ids
