r"""Epsilon-greedy bandit with decaying exploration, one arm per offer (seed 003).

Each offer is an arm scored by its empirical success rate; an arm never pulled scores an
optimistic 1.0 so that every offer gets tried. Exploration is decided once per customer
request (the candidates sharing a ``customerId``): with probability

.. math:: \varepsilon_t = \max\left(\text{minEpsilon},
          \frac{\text{epsilon}}{1 + \text{decayRate}\cdot\text{totalPulls}}\right)

the request is explored and its candidates get uniform random scores; otherwise it is exploited
and scored deterministically, which is what makes this engine easy to debug [1]_ [2]_.

References
----------
.. [1] R. S. Sutton and A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed.,
   MIT Press, 2018, section 2.2-2.3.
.. [2] P. Auer, N. Cesa-Bianchi and P. Fischer, "Finite-time analysis of the multiarmed bandit
   problem", Machine Learning 47, 235-256, 2002 (decaying epsilon_n-greedy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from mlworker.engines._arms import ArmBandit, ArmCounts
from mlworker.engines._base import CUSTOMER_ID, OFFER_ID, EngineConfig, Explanation, id_codes

#: Score of an arm that has never been pulled.
OPTIMISTIC_SCORE = 1.0


class EpsilonGreedyConfig(EngineConfig):
    """Epsilon-greedy settings (defaults from the seed's table).

    Parameters
    ----------
    epsilon
        ``epsilon``: exploration probability before any pull.
    decay_rate
        ``decayRate``: how fast exploration decays with the total number of pulls.
    min_epsilon
        ``minEpsilon``: floor of the exploration probability.
    """

    epsilon: float = Field(default=0.1, ge=0, le=1)
    decay_rate: float = Field(default=0.01, ge=0)
    min_epsilon: float = Field(default=0.01, ge=0, le=1)


@dataclass(frozen=True, slots=True)
class _Decision:
    """Scores of one scoring call and what produced them."""

    scores: np.ndarray
    pulls: np.ndarray
    successes: np.ndarray
    explored: np.ndarray
    epsilon: float


class Engine(ArmBandit):
    """Epsilon-greedy bandit with per-request exploration.

    Parameters
    ----------
    config
        Validated :class:`EpsilonGreedyConfig`.
    random_state
        Seed of the exploration draws when :meth:`score` is called without ``rng``.

    Examples
    --------
    >>> frame = pd.DataFrame({"offerId": ["a", "a", "a", "a", "b", "b"]})
    >>> engine = Engine(EpsilonGreedyConfig(epsilon=0)).fit(frame, [1, 1, 1, 0, 0, 1])
    >>> engine.score(pd.DataFrame({"offerId": ["a", "b", "new"]})).tolist()
    [0.75, 0.5, 1.0]
    >>> round(Engine(EpsilonGreedyConfig()).fit(frame, [1, 1, 1, 0, 0, 1]).epsilon_t, 6)
    0.09434
    """

    kind: ClassVar[str] = "epsilon_greedy"
    Config: ClassVar[type[EngineConfig]] = EpsilonGreedyConfig

    def __init__(self, config: EpsilonGreedyConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state

    @property
    def epsilon_t(self) -> float:
        """The current exploration probability."""
        config = self.config
        decayed = config.epsilon / (1.0 + config.decay_rate * self.total_pulls)
        return max(config.min_epsilon, decayed)

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Success rates (1.0 for unpulled arms), or uniform draws for explored requests.

        One uniform draw per ``customerId``, in order of first appearance, decides whether that
        request is explored (all rows are one request when the column is missing; rows without
        an id form one request, drawn last); only explored requests consume further draws.
        ``rng`` defaults to a generator seeded with ``random_state``.
        """
        return self._decide(candidates, *id_codes(candidates, OFFER_ID), rng).scores

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Per candidate: its score, the arm's success rate and pulls, and whether it explored.

        ``successRate`` is ``None`` for an arm never pulled.
        """
        codes, offers = id_codes(candidates, OFFER_ID)
        decision = self._decide(candidates, codes, offers, rng)
        offer_of_row = np.asarray([*offers, None], dtype=object)[codes]
        explanations = []
        for row, offer in enumerate(offer_of_row):
            pulls = int(decision.pulls[row])
            score = float(decision.scores[row])
            detail = {
                "offerId": offer,
                "score": score,
                "successRate": float(decision.successes[row] / pulls) if pulls else None,
                "pulls": pulls,
                "explored": bool(decision.explored[row]),
                "epsilon": decision.epsilon,
            }
            explanations.append(Explanation(self.kind, score, [detail]))
        return explanations

    def _decide(
        self,
        candidates: pd.DataFrame,
        codes: np.ndarray,
        offers: list[str],
        rng: np.random.Generator | None,
    ) -> _Decision:
        generator = rng if rng is not None else np.random.default_rng(self.random_state)
        arms = getattr(self, "arms_", None) or ArmCounts()
        successes, failures = arms.lookup(codes, offers)
        pulls = successes + failures
        exploit = np.full(len(codes), OPTIMISTIC_SCORE)
        np.divide(successes, pulls, out=exploit, where=pulls > 0)
        customer_codes, customers = id_codes(candidates, CUSTOMER_ID)
        # Rows without a customer id share one extra request after the identified ones.
        requests = np.where(customer_codes >= 0, customer_codes, len(customers))
        request_count = len(customers) + int((customer_codes < 0).any())
        epsilon = self.epsilon_t
        explored = (generator.random(request_count) < epsilon)[requests]
        scores = exploit.copy()
        scores[explored] = generator.random(int(explored.sum()))
        return _Decision(scores, pulls, successes, explored, epsilon)
