"""Maturity ramp: how much exposure a new offer's model gets while its evidence accumulates."""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt

from mlworker.analysis.statistics import wilson_interval
from mlworker.decisioning.assignment import fnv1a_32

#: Exposure of an offer with no evidence: the seed's 2 % floor.
MIN_EXPOSURE = 0.02
#: The seed's default ``modelMaturityThreshold``.
DEFAULT_MATURITY_THRESHOLD = 100


def exposure_probability(
    interactions: npt.ArrayLike, threshold: float = DEFAULT_MATURITY_THRESHOLD
) -> npt.NDArray[np.float64]:
    """Linear ramp ``max(0.02, min(1, interactions / threshold))``.

    References
    ----------
    .. [1] KaireonAI Algorithms, "Model Maturity Ramp" (seed 003).

    Examples
    --------
    >>> exposure_probability([0, 10, 50, 100, 400]).tolist()
    [0.02, 0.1, 0.5, 1.0, 1.0]
    """
    if threshold <= 0:
        raise ValueError("the maturity threshold must be positive")
    seen = np.asarray(interactions, dtype=np.float64)
    return np.clip(seen / threshold, MIN_EXPOSURE, 1.0)


def wilson_exposure_probability(
    successes: npt.ArrayLike,
    interactions: npt.ArrayLike,
    target_width: float = 0.1,
    confidence: float = 0.95,
) -> npt.NDArray[np.float64]:
    """Ramp on certainty instead of counts: full exposure once the rate is known well enough.

    Exposure grows linearly as the Wilson interval of the offer's response rate narrows from
    its width with no data (1) to ``target_width``: ``(1 − width) / (1 − target_width)``, floored
    at 2 %. A rare-response offer needs more interactions than a common one to be trusted,
    which a plain count threshold cannot express.

    References
    ----------
    .. [1] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212.

    Examples
    --------
    >>> wilson_exposure_probability([0, 5, 50], [0, 20, 400]).round(3).tolist()
    [0.02, 0.715, 1.0]
    """
    if not 0 < target_width < 1:
        raise ValueError("target_width must lie in (0, 1)")
    low, high = wilson_interval(successes, interactions, confidence)
    width = high - low
    return np.clip((1.0 - width) / (1.0 - target_width), MIN_EXPOSURE, 1.0)


def is_exposed(customer_id: str, offer_id: str, day: date, probability: float) -> bool:
    """Whether this customer sees the offer's model today, stably within the day.

    The draw is ``FNV-1a(customerId:offerId:YYYY-MM-DD) / 2³²``: the same customer, offer and
    date always give the same answer, and about ``probability`` of customers are exposed.

    Examples
    --------
    >>> is_exposed("c1", "offer-9", date(2026, 11, 22), 1.0)
    True
    >>> is_exposed("c1", "offer-9", date(2026, 11, 22), 0.0)
    False
    """
    draw = fnv1a_32(f"{customer_id}:{offer_id}:{day.isoformat()}") / 2**32
    return draw < probability
