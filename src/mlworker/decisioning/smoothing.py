"""Cold-start propensity smoothing: blend the model's score with the offer's prior by evidence."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: The seed's default ``propensitySmoothingWeight``: pseudo-interactions the prior is worth.
DEFAULT_SMOOTHING_WEIGHT = 25


def prior_from_priority(priority: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Return an offer's starting propensity: its priority (0–100) as a probability.

    Examples
    --------
    >>> prior_from_priority([70, 0, 100, 130]).tolist()
    [0.7, 0.0, 1.0, 1.0]
    """
    return np.clip(np.asarray(priority, dtype=np.float64) / 100.0, 0.0, 1.0)


def propensity_smoothing(
    model_score: npt.ArrayLike,
    evidence: npt.ArrayLike,
    prior: npt.ArrayLike,
    weight: float = DEFAULT_SMOOTHING_WEIGHT,
) -> npt.NDArray[np.float64]:
    """Smoothed score ``(model·evidence + prior·weight) / (evidence + weight)``.

    With no evidence the prior is served; as interactions accumulate the model's score takes
    over; ``weight`` is the evidence at which both count equally. Vectorised over candidates.

    Parameters
    ----------
    model_score
        Engine scores in ``[0, 1]``.
    evidence
        Interactions observed for each offer (``≥ 0``).
    prior
        Starting propensity of each offer (``priority / 100``).
    weight
        ``propensitySmoothingWeight`` (``> 0``).

    References
    ----------
    .. [1] KaireonAI Algorithms, "Cold Start and Propensity Smoothing" (seed 003): its table
       for priority 70 and weight 25 is reproduced below.

    Examples
    --------
    >>> evidence = [0, 10, 25, 100, 500]
    >>> propensity_smoothing([0.45] * 5, evidence, prior_from_priority(70)).round(3).tolist()
    [0.7, 0.629, 0.575, 0.5, 0.462]
    """
    if weight <= 0:
        raise ValueError("the smoothing weight must be positive")
    score = np.asarray(model_score, dtype=np.float64)
    seen = np.maximum(np.asarray(evidence, dtype=np.float64), 0.0)
    starting = np.asarray(prior, dtype=np.float64)
    smoothed: npt.NDArray[np.float64] = (score * seen + starting * weight) / (seen + weight)
    return smoothed
