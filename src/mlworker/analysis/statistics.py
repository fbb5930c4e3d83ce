"""Interval estimates and tests shared by the analyses (proportions and ratios).

Everything is vectorised over numpy arrays so a table of bands or channels is one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Progress = Callable[[float, str], None]
"""``progress(fraction, message)``: how an analysis reports how far it got."""

FloatArray = npt.NDArray[np.float64]


def no_progress(fraction: float, message: str = "") -> None:
    """Progress callback that ignores every report."""


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for binomial proportions.

    Parameters
    ----------
    successes, trials
        Counts (scalars or arrays of the same shape). Where ``trials`` is 0 the interval is
        ``(0, 1)``: nothing is known.
    confidence
        Two-sided coverage.

    Returns
    -------
    low, high
        Arrays of bounds.

    References
    ----------
    .. [1] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212.

    Examples
    --------
    >>> low, high = wilson_interval(8, 10)
    >>> round(float(low), 4), round(float(high), 4)
    (0.4902, 0.9433)
    """
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, x / n, 0.0)
        denominator = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
        low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return low, high


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Difference of two proportions ``p1 - p2`` with a pooled z-test and a Wald interval."""

    p1: float
    p2: float
    difference: float
    low: float
    high: float
    z: float
    p_value: float


def two_proportion_test(
    x1: float,
    n1: float,
    x2: float,
    n2: float,
    *,
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> ProportionTest:
    """Compare two proportions: pooled z statistic, p-value and unpooled Wald interval.

    Parameters
    ----------
    x1, n1, x2, n2
        Successes and trials of each group (both ``n`` must be positive).
    alternative
        ``"two-sided"``, ``"larger"`` (``p1 > p2``) or ``"smaller"``.
    confidence
        Coverage of the interval for ``p1 - p2``.

    References
    ----------
    .. [1] Agresti, A. (2013). Categorical Data Analysis, 3rd ed., section 3.1.

    Examples
    --------
    >>> test = two_proportion_test(120, 1000, 90, 1000)
    >>> round(test.z, 4), round(test.p_value, 4)
    (2.1883, 0.0287)
    """
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = float((p1 - p2) / se_pooled) if se_pooled > 0 else 0.0
    if alternative == "two-sided":
        p_value = float(2 * stats.norm.sf(abs(z)))
    elif alternative == "larger":
        p_value = float(stats.norm.sf(z))
    elif alternative == "smaller":
        p_value = float(stats.norm.cdf(z))
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    se = float(np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2))
    half = _z(confidence) * se
    return ProportionTest(
        p1=float(p1),
        p2=float(p2),
        difference=float(p1 - p2),
        low=float(p1 - p2 - half),
        high=float(p1 - p2 + half),
        z=z,
        p_value=p_value,
    )


@dataclass(frozen=True, slots=True)
class RatioEstimate:
    """A ratio of totals ``Σy / Σx`` over clusters (creatives, customers) with its interval."""

    estimate: float
    standard_error: float
    low: float
    high: float
    clusters: int


def ratio_estimate(
    numerators: npt.ArrayLike, denominators: npt.ArrayLike, confidence: float = 0.95
) -> RatioEstimate:
    """Ratio-of-totals estimate (e.g. clicks / impressions over creatives) with a robust interval.

    The variance treats each unit as a cluster, so a few huge creatives cannot make the interval
    falsely narrow: ``Var(r) = Σ(y_i − r·x_i)² / (n(n−1)·x̄²)``.

    Parameters
    ----------
    numerators, denominators
        Per-unit totals ``y_i`` and ``x_i`` (``Σx`` must be positive).
    confidence
        Two-sided coverage of the normal interval.

    References
    ----------
    .. [1] Cochran, W. G. (1977). Sampling Techniques, 3rd ed., section 6.4 (ratio estimator).

    Examples
    --------
    >>> r = ratio_estimate([10, 20, 30], [100, 100, 100])
    >>> round(r.estimate, 3), round(r.standard_error, 4)
    (0.2, 0.0577)
    """
    y = np.asarray(numerators, dtype=np.float64)
    x = np.asarray(denominators, dtype=np.float64)
    n = y.size
    total_x = float(x.sum())
    ratio = float(y.sum() / total_x) if total_x > 0 else 0.0
    if n > 1 and total_x > 0:
        mean_x = total_x / n
        residual = y - ratio * x
        se = float(np.sqrt((residual**2).sum() / (n * (n - 1)) / mean_x**2))
    else:
        se = float("inf")
    half = _z(confidence) * se
    return RatioEstimate(
        estimate=ratio,
        standard_error=se,
        low=max(0.0, ratio - half),
        high=ratio + half,
        clusters=n,
    )


@dataclass(frozen=True, slots=True)
class LiftEstimate:
    """Ratio of two ratio estimates (``with / without``), interval on the log scale."""

    lift: float
    low: float
    high: float
    p_value: float


def lift_between(
    with_feature: RatioEstimate, without_feature: RatioEstimate, confidence: float = 0.95
) -> LiftEstimate:
    """Relative effect ``a/b`` of two independent ratio estimates, by the delta method.

    ``Var(log a/b) ≈ (se_a/a)² + (se_b/b)²``; the p-value tests ``log(a/b) = 0``.

    References
    ----------
    .. [1] Casella, G. and Berger, R. L. (2002). Statistical Inference, 2nd ed., section 5.5.4
       (the delta method).

    Examples
    --------
    >>> a = RatioEstimate(0.04, 0.002, 0.036, 0.044, 500)
    >>> b = RatioEstimate(0.02, 0.001, 0.018, 0.022, 500)
    >>> lift = lift_between(a, b)
    >>> round(lift.lift, 2), round(lift.low, 3), round(lift.high, 3)
    (2.0, 1.741, 2.297)
    """
    a, b = with_feature.estimate, without_feature.estimate
    if a <= 0 or b <= 0:
        lift = a / b if b > 0 else float("nan")
        return LiftEstimate(lift=lift, low=0.0, high=float("inf"), p_value=1.0)
    se = float(np.hypot(with_feature.standard_error / a, without_feature.standard_error / b))
    log_lift = float(np.log(a / b))
    half = _z(confidence) * se
    p_value = float(2 * stats.norm.sf(abs(log_lift) / se)) if se > 0 else 0.0
    return LiftEstimate(
        lift=a / b,
        low=float(np.exp(log_lift - half)),
        high=float(np.exp(log_lift + half)),
        p_value=p_value,
    )
