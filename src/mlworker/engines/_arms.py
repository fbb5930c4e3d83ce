"""Successes and failures per offer: the memory of the Bernoulli bandits.

Shared by :mod:`mlworker.engines.thompson_bandit` and :mod:`mlworker.engines.epsilon_greedy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from mlworker.engines._base import OFFER_ID, as_outcomes, id_codes


class ArmCounts:
    """Successes and failures per offer: all a Bernoulli bandit needs to remember.

    Both bandit engines keep one (``arms_``); it grows an arm the first time an offer is seen.

    Examples
    --------
    >>> arms = ArmCounts()
    >>> arms.add(pd.DataFrame({"offerId": ["a", "b", "a"]}), [1, 0, 0])
    >>> arms.add_one({"offerId": "c"}, 1)
    >>> arms.offer_ids, arms.total
    (['a', 'b', 'c'], 4)
    >>> arms.to_state()["a"]
    {'successes': 1, 'failures': 1}
    """

    def __init__(self) -> None:
        self.offer_ids: list[str] = []
        self.successes = np.zeros(0, dtype=np.int64)
        self.failures = np.zeros(0, dtype=np.int64)
        self._position: dict[str, int] = {}

    @property
    def total(self) -> int:
        """Outcomes observed over all arms."""
        return int(self.successes.sum() + self.failures.sum())

    def add(self, interactions: pd.DataFrame, outcomes: Any) -> None:
        """Count a batch of outcomes, vectorised.

        Raises
        ------
        ValueError
            Outcomes are not 0/1 or do not match the rows, or a row has no ``offerId``.
        """
        values = as_outcomes(outcomes, len(interactions))
        codes, offers = id_codes(interactions, OFFER_ID)
        missing = int((codes < 0).sum())
        if missing:
            raise ValueError(f"{missing} interaction rows have no {OFFER_ID}")
        positions = self._positions_adding(offers)
        successes = np.bincount(codes, weights=values, minlength=len(offers)).astype(np.int64)
        pulls = np.bincount(codes, minlength=len(offers))
        self.successes[positions] += successes
        self.failures[positions] += pulls - successes

    def add_one(self, candidate: Mapping[str, Any], outcome: Any) -> None:
        """Count one outcome of ``candidate[offerId]``.

        Raises
        ------
        ValueError
            The candidate has no ``offerId`` or the outcome is not 0/1.
        """
        offer = candidate.get(OFFER_ID)
        if offer is None or (pd.api.types.is_scalar(offer) and bool(pd.isna(offer))):
            raise ValueError(f"the candidate has no {OFFER_ID}")
        # A scalar check: this runs once per outcome, and np.isin would dominate its cost.
        if outcome not in (0, 1):
            raise ValueError(f"outcomes must be 0 or 1, got {outcome!r}")
        (position,) = self._positions_adding([str(offer)])
        if outcome == 1:
            self.successes[position] += 1
        else:
            self.failures[position] += 1

    def lookup(self, codes: np.ndarray, offers: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Successes and failures per row of :func:`id_codes` output (zero for unknown offers)."""
        if not self.offer_ids:
            return np.zeros(len(codes), dtype=np.int64), np.zeros(len(codes), dtype=np.int64)
        # Code -1 (missing offer) picks the appended -1: no arm.
        arm_of_offer = [self._position.get(offer, -1) for offer in offers]
        positions = np.asarray([*arm_of_offer, -1], dtype=np.intp)[codes]
        known = positions >= 0
        safe = np.where(known, positions, 0)
        return np.where(known, self.successes[safe], 0), np.where(known, self.failures[safe], 0)

    def _positions_adding(self, offers: list[str]) -> np.ndarray:
        """Arm positions of distinct ``offers``, appending fresh arms for new ones."""
        known = len(self.offer_ids)
        for offer in offers:
            if offer not in self._position:
                self._position[offer] = len(self.offer_ids)
                self.offer_ids.append(offer)
        if len(self.offer_ids) > known:
            padding = np.zeros(len(self.offer_ids) - known, dtype=np.int64)
            self.successes = np.concatenate([self.successes, padding])
            self.failures = np.concatenate([self.failures, padding])
        return np.asarray([self._position[offer] for offer in offers], dtype=np.intp)

    def to_state(self) -> dict[str, dict[str, int]]:
        """``{offerId: {"successes": int, "failures": int}}``."""
        return {
            offer: {"successes": int(successes), "failures": int(failures)}
            for offer, successes, failures in zip(
                self.offer_ids, self.successes, self.failures, strict=True
            )
        }

    @classmethod
    def from_state(cls, arms: Any, *, kind: str) -> ArmCounts:
        """Rebuild from :meth:`to_state` output; ``kind`` names the engine in errors.

        Raises
        ------
        ValueError
            ``arms`` is not a mapping or a count is not a non-negative integer.
        """
        if not isinstance(arms, Mapping):
            raise ValueError(f"{kind} state needs an 'arms' mapping")
        counts = cls()
        positions = counts._positions_adding([str(offer) for offer in arms])
        for position, (offer, entry) in zip(positions, arms.items(), strict=True):
            for name, target in (("successes", counts.successes), ("failures", counts.failures)):
                value = entry.get(name) if isinstance(entry, Mapping) else None
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(
                        f"{kind} state: arms.{offer}.{name} must be a non-negative integer, "
                        f"got {value!r}"
                    )
                target[position] = value
        return counts


class ArmBandit:
    """What both Bernoulli bandits share: their arms, how outcomes reach them, their state.

    Subclasses set ``kind`` and decide how arms become scores.
    """

    kind: ClassVar[str]
    arms_: ArmCounts

    @property
    def total_pulls(self) -> int:
        """Outcomes observed over all arms."""
        return self.arms_.total if hasattr(self, "arms_") else 0

    @property
    def is_trained(self) -> bool:
        """Whether any outcome has been observed."""
        return self.total_pulls > 0

    def fit(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> Self:
        """Forget every arm, then count the outcomes of ``interactions`` per offer.

        Raises
        ------
        ValueError
            Outcomes are not 0/1 or do not match the rows, or a row has no ``offerId``.
        """
        arms = ArmCounts()
        arms.add(interactions, outcomes)
        self.arms_ = arms
        return self

    def update(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> None:
        """Add a batch of outcomes to their offers' arms (unknown offers get a fresh arm).

        Raises
        ------
        ValueError
            As :meth:`fit`; nothing is counted then.
        """
        if not hasattr(self, "arms_"):
            self.arms_ = ArmCounts()
        self.arms_.add(interactions, outcomes)

    def learn_one(self, candidate: Mapping[str, Any], outcome: float) -> None:
        """Add one outcome to the arm of ``candidate[offerId]``.

        Raises
        ------
        ValueError
            The candidate has no ``offerId`` or the outcome is not 0/1.
        """
        if not hasattr(self, "arms_"):
            self.arms_ = ArmCounts()
        self.arms_.add_one(candidate, outcome)

    def state(self) -> dict[str, Any]:
        """Return ``{"arms": {offerId: {"successes": int, "failures": int}}}``."""
        arms = getattr(self, "arms_", None) or ArmCounts()
        return {"arms": arms.to_state()}

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Restore the arms written by :meth:`state`.

        Raises
        ------
        ValueError
            The state has no ``arms`` mapping or a count is not a non-negative integer.
        """
        self.arms_ = ArmCounts.from_state(state.get("arms"), kind=self.kind)
        return self
