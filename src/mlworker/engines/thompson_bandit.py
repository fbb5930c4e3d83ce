"""Thompson sampling over Beta-Bernoulli arms, one arm per offer (seed 003, "Thompson Bandit").

Each offer is an arm whose success probability has the conjugate posterior
``Beta(priorAlpha + successes, priorBeta + failures)``. Scoring draws one sample per candidate
from its arm's posterior, so offers that are probably better win more often while uncertain
offers still get shown [1]_ [2]_. Customer attributes are not used: the bandit learns which
offer works, not for whom.

*Exploration before* ``minSamples``: an arm with fewer than ``minSamples`` observations draws
from the prior ``Beta(priorAlpha, priorBeta)`` alone, ignoring its few outcomes. One early
failure therefore cannot bury a new offer before it has been shown enough; once the arm reaches
``minSamples`` observations it samples from its full posterior, which already counts every
outcome seen while it was exploring.

References
----------
.. [1] W. R. Thompson, "On the likelihood that one unknown probability exceeds another in view
   of the evidence of two samples", Biometrika 25(3/4), 285-294, 1933.
.. [2] O. Chapelle and L. Li, "An empirical evaluation of Thompson sampling", NeurIPS 2011.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from mlworker.engines._arms import ArmBandit, ArmCounts
from mlworker.engines._base import OFFER_ID, EngineConfig, Explanation, id_codes

#: Posterior interval reported by :meth:`Engine.explain` (equal-tailed).
INTERVAL_MASS = 0.95


class ThompsonBanditConfig(EngineConfig):
    """Thompson bandit settings (defaults from the seed's table).

    Parameters
    ----------
    prior_alpha
        ``priorAlpha``: the Beta prior's alpha for every arm (pseudo-successes).
    prior_beta
        ``priorBeta``: the Beta prior's beta for every arm (pseudo-failures).
    min_samples
        ``minSamples``: observations an arm needs before it samples from its posterior rather
        than from the prior.
    """

    prior_alpha: float = Field(default=1, gt=0)
    prior_beta: float = Field(default=1, gt=0)
    min_samples: int = Field(default=10, ge=0)


class Engine(ArmBandit):
    """Thompson sampling bandit with a Beta posterior per offer.

    Parameters
    ----------
    config
        Validated :class:`ThompsonBanditConfig`.
    random_state
        Seed of the draws when :meth:`score` is called without ``rng``.

    Examples
    --------
    >>> frame = pd.DataFrame({"offerId": ["a"] * 12 + ["b"] * 12})
    >>> engine = Engine(ThompsonBanditConfig()).fit(frame, [1] * 11 + [0] + [0] * 12)
    >>> draws = engine.score(pd.DataFrame({"offerId": ["a", "b"]}), rng=np.random.default_rng(0))
    >>> bool(draws[0] > draws[1])
    True
    >>> detail = engine.explain(pd.DataFrame({"offerId": ["a"]}))[0].details[0]
    >>> round(detail["posteriorMean"], 4), detail["successes"], detail["exploring"]
    (0.8571, 11, False)
    """

    kind: ClassVar[str] = "thompson_bandit"
    Config: ClassVar[type[EngineConfig]] = ThompsonBanditConfig

    def __init__(self, config: ThompsonBanditConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """One posterior draw per candidate, from its offer's arm.

        Candidates without a known offer draw from the prior. ``rng`` defaults to a generator
        seeded with ``random_state``, so the same seed gives the same draws.
        """
        return self._draw(*id_codes(candidates, OFFER_ID), rng)[0]

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Per candidate: the draw and the arm's posterior mean, 95 % interval and counts.

        ``posteriorMean`` and ``interval`` describe the full posterior
        ``Beta(priorAlpha + successes, priorBeta + failures)``; where ``exploring`` is true the
        draw came from the prior instead (see the module docstring).
        """
        from scipy.stats import beta as beta_distribution  # scipy.stats is slow to import

        codes, offers = id_codes(candidates, OFFER_ID)
        samples, successes, failures, exploring = self._draw(codes, offers, rng)
        alpha = self.config.prior_alpha + successes
        beta = self.config.prior_beta + failures
        tail = (1.0 - INTERVAL_MASS) / 2.0
        lower = beta_distribution.ppf(tail, alpha, beta)
        upper = beta_distribution.ppf(1.0 - tail, alpha, beta)
        mean = alpha / (alpha + beta)
        offer_of_row = np.asarray([*offers, None], dtype=object)[codes]
        explanations = []
        for row, offer in enumerate(offer_of_row):
            detail = {
                "offerId": offer,
                "sample": float(samples[row]),
                "posteriorMean": float(mean[row]),
                "interval": [float(lower[row]), float(upper[row])],
                "successes": int(successes[row]),
                "failures": int(failures[row]),
                "exploring": bool(exploring[row]),
            }
            explanations.append(Explanation(self.kind, float(samples[row]), [detail]))
        return explanations

    def _draw(
        self, codes: np.ndarray, offers: list[str], rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw per candidate; also return its successes, failures and exploration flag."""
        generator = rng if rng is not None else np.random.default_rng(self.random_state)
        arms = getattr(self, "arms_", None) or ArmCounts()
        successes, failures = arms.lookup(codes, offers)
        exploring = successes + failures < self.config.min_samples
        alpha = self.config.prior_alpha + np.where(exploring, 0, successes)
        beta = self.config.prior_beta + np.where(exploring, 0, failures)
        samples = generator.beta(alpha, beta) if len(alpha) else np.zeros(0)
        return np.asarray(samples, dtype=np.float64), successes, failures, exploring
