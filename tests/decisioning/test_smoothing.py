"""Propensity smoothing against the seed's worked table."""

from __future__ import annotations

import numpy as np
import pytest

from mlworker.decisioning import prior_from_priority, propensity_smoothing

# Seed 003, "Cold Start and Propensity Smoothing": priority 70, weight 25, model score 0.45.
SEED_TABLE = [(0, 0.700), (10, 0.629), (25, 0.575), (100, 0.500), (500, 0.462)]


@pytest.mark.parametrize(("interactions", "expected"), SEED_TABLE)
def test_the_seed_table(interactions: int, expected: float) -> None:
    smoothed = propensity_smoothing(0.45, interactions, prior_from_priority(70), weight=25)
    assert float(smoothed) == pytest.approx(expected, abs=5e-4)


def test_equal_evidence_and_weight_is_the_midpoint_and_it_is_vectorised() -> None:
    scores = np.array([0.1, 0.9, 0.3])
    smoothed = propensity_smoothing(scores, [40, 40, 0], [0.5, 0.5, 0.8], weight=40)
    assert smoothed.tolist() == pytest.approx([0.3, 0.7, 0.8])


def test_more_weight_means_a_slower_move_to_the_model() -> None:
    fast = propensity_smoothing(0.2, 50, 0.7, weight=5)
    slow = propensity_smoothing(0.2, 50, 0.7, weight=100)
    assert abs(fast - 0.2) < abs(slow - 0.2)


def test_bad_weight_and_negative_evidence() -> None:
    with pytest.raises(ValueError, match="positive"):
        propensity_smoothing(0.5, 10, 0.5, weight=0)
    assert float(propensity_smoothing(0.2, -5, 0.6)) == pytest.approx(0.6)
    assert prior_from_priority([-10, 250]).tolist() == [0.0, 1.0]
