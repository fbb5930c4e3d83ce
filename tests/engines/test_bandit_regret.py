"""Thompson sampling against epsilon-greedy on simulated Bernoulli arms (issue 5 acceptance).

Both bandits run with the seed's default configs. Each round is one scoring request of
``CUSTOMERS_PER_REQUEST`` customers over ten arms, one clearly best; every customer is shown
its top-scored arm, the reward is drawn from that arm's true rate and fed back with
``learn_one``. Regret is the expected reward lost against always showing the best arm.

Epsilon-greedy's regret is heavy-tailed: most runs lock onto the best arm quickly, but when the
best arm fails its first pulls the decayed epsilon rarely revisits it and the run's regret grows
linearly until exploration rescues it. Thompson sampling keeps sampling uncertain arms, so its
regret grows slowly in every run. Averaging over ``SEEDS`` runs is what makes the comparison
about expected regret.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.engines import CUSTOMER_ID, OFFER_ID, IncrementalEngine, build_engine

RATES = np.array([0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.30])
OFFERS = [f"arm{arm}" for arm in range(len(RATES))]
PULLS = 4000
CUSTOMERS_PER_REQUEST = 10
SEEDS = range(48)


def _regret_curve(kind: str, seed: int) -> np.ndarray:
    """Cumulative regret after each request of one simulated run."""
    engine = build_engine(kind, random_state=seed)
    assert isinstance(engine, IncrementalEngine)
    policy_rng = np.random.default_rng(seed)
    tie_rng = np.random.default_rng(10_000 + seed)
    world_rng = np.random.default_rng(20_000 + seed)
    request = pd.DataFrame(
        {
            CUSTOMER_ID: np.repeat([f"c{i}" for i in range(CUSTOMERS_PER_REQUEST)], len(RATES)),
            OFFER_ID: OFFERS * CUSTOMERS_PER_REQUEST,
        }
    )
    losses = []
    for _ in range(PULLS // CUSTOMERS_PER_REQUEST):
        scores = engine.score(request, rng=policy_rng).reshape(CUSTOMERS_PER_REQUEST, -1)
        # Ties (epsilon-greedy's optimistic 1.0s) are broken uniformly at random.
        is_top = scores == scores.max(axis=1, keepdims=True)
        shown = np.argmax(is_top * tie_rng.random(scores.shape), axis=1)
        rewards = world_rng.random(CUSTOMERS_PER_REQUEST) < RATES[shown]
        for arm, reward in zip(shown, rewards, strict=True):
            engine.learn_one({OFFER_ID: OFFERS[arm]}, float(reward))
        losses.append(float((RATES.max() - RATES[shown]).sum()))
    return np.cumsum(losses)


@pytest.mark.slow
def test_thompson_has_lower_regret_than_epsilon_greedy() -> None:
    thompson = np.array([_regret_curve("thompson_bandit", seed) for seed in SEEDS])
    greedy = np.array([_regret_curve("epsilon_greedy", seed) for seed in SEEDS])
    uniform = PULLS * (RATES.max() - RATES.mean())

    thompson_mean, greedy_mean = thompson[:, -1].mean(), greedy[:, -1].mean()
    # Measured: about 80 against 166 (uniform play: 648).
    assert thompson_mean < 0.75 * greedy_mean
    # Both learn: far below playing uniformly at random.
    assert greedy_mean < 0.5 * uniform
    assert thompson_mean < 0.2 * uniform
    # Thompson's regret is sublinear: the second half of the run costs a fraction of the first
    # (measured: 10 against 70).
    halfway = thompson[:, thompson.shape[1] // 2 - 1]
    assert (thompson[:, -1] - halfway).mean() < 0.5 * halfway.mean()
    # Epsilon-greedy's mean is carried by runs stuck on a worse arm.
    assert (greedy[:, -1] > 3 * np.median(thompson[:, -1])).sum() >= len(SEEDS) // 10
