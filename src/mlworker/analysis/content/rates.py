"""Rates per creative, empirical-Bayes shrinkage toward the channel, peers and trend.

A creative's rate is ``successes / trials``: CTR is clicks per impression, CVR conversions per
click, RPI revenue per impression. Small creatives have noisy rates, so each is shrunk toward
its channel's pooled rate, ``(y + k·m) / (n + k)``, where the prior strength ``k`` (in trials) is
estimated per channel by the method of moments: the spread of rates beyond what sampling noise
explains says how much creatives really differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlworker.analysis.statistics import ratio_estimate

FloatArray = npt.NDArray[np.float64]
PriorSource = Literal["channel", "pooled", "fallback"]

#: successes and trials of each target rate.
RATE_PARTS: dict[str, tuple[str, str]] = {
    "ctr": ("clicks", "impressions"),
    "cvr": ("conversions", "clicks"),
    "rpi": ("revenue", "impressions"),
}
_MIN_CREATIVES = 3
_MAX_BASELINE_CHANNELS = 100


def _moments(
    successes: FloatArray, trials: FloatArray
) -> tuple[int, float, float, float, float, float]:
    """``N``, pooled rate, ``Σn − Σn²/Σn``, ``S1 = Σn(r − r̂)²``, ``Σ1/n``, ``S0 = Σ(r − r̄)²``."""
    used = trials > 0
    y, n = successes[used], trials[used]
    count = int(used.sum())
    if count == 0:
        return 0, float("nan"), 0.0, 0.0, 0.0, 0.0
    total = float(n.sum())
    pooled = float(y.sum() / total)
    rates = y / n
    spread = total - float((n**2).sum()) / total
    weighted = float((n * (rates - pooled) ** 2).sum())
    inverse = float((1 / n).sum())
    plain = float(((rates - rates.mean()) ** 2).sum())
    return count, pooled, spread, weighted, inverse, plain


def beta_binomial_prior_strength(successes: npt.ArrayLike, trials: npt.ArrayLike) -> float:
    """Prior strength ``α + β`` of a beta-binomial model, by Kleinman's method of moments.

    With intra-class correlation ``ρ = 1 / (α + β + 1)`` the exposure-weighted sum of squares
    ``S = Σ n_i (p_i − p̂)²`` has expectation
    ``p(1 − p)[(N − 1) + ρ(Σn − Σn²/Σn − (N − 1))]``; solving for ``ρ`` gives ``α + β = 1/ρ − 1``.

    Parameters
    ----------
    successes, trials
        Per-unit counts (units with no trials are ignored).

    Returns
    -------
    float
        The estimate, ``inf`` when the rates vary no more than binomial noise explains, ``nan``
        when it cannot be estimated (fewer than 3 units, a pooled rate of 0 or 1).

    References
    ----------
    .. [1] Kleinman, J. C. (1973). Proportions with extraneous variance: single and independent
       samples. JASA 68(341), 46-54.

    Examples
    --------
    >>> round(beta_binomial_prior_strength([5, 30, 12, 50], [100, 200, 150, 300]), 2)
    50.47
    """
    y = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    count, pooled, spread, weighted, _, _ = _moments(y, n)
    if count < _MIN_CREATIVES or not 0 < pooled < 1 or spread - (count - 1) <= 0:
        return float("nan")
    rho = (weighted / (pooled * (1 - pooled)) - (count - 1)) / (spread - (count - 1))
    if rho <= 0:
        return float("inf")
    return float(1 / min(rho, 1.0) - 1)


def _solve_random_effects(
    count: float, spread: float, weighted: float, inverse_sum: float, plain: float, groups: float
) -> float:
    # Over G groups: E[ΣS0] = (N − G)τ² + Σ(1 − 1/N_g)Σ(1/n)·σ², E[ΣS1] = Σspread·τ² + (N − G)σ².
    matrix = np.array([[count - groups, inverse_sum], [spread, count - groups]])
    if abs(np.linalg.det(matrix)) < 1e-12 * max(1.0, abs(matrix).max() ** 2):
        return float("nan")
    between, within = np.linalg.solve(matrix, np.array([plain, weighted]))
    if within <= 0:
        return float("nan")
    if between <= 0:
        return float("inf")
    return float(within / between)


def random_effects_prior_strength(totals: npt.ArrayLike, exposures: npt.ArrayLike) -> float:
    """Prior strength ``σ²/τ²`` (in exposures) of a rate whose noise variance is unknown.

    Model: ``r_i = μ_i + e_i`` with ``Var(μ_i) = τ²`` between units and ``Var(e_i) = σ²/n_i``.
    Two moment equations, unweighted ``S0 = Σ(r_i − r̄)²`` with expectation
    ``(N − 1)τ² + (1 − 1/N)Σ(1/n_i)σ²`` and exposure-weighted ``S1 = Σn_i(r_i − r̂)²`` with
    expectation ``(Σn − Σn²/Σn)τ² + (N − 1)σ²``, are solved for ``τ²`` and ``σ²``. Used for revenue
    per impression, where the per-impression variance is not binomial.

    Returns
    -------
    float
        ``σ²/τ²``; ``inf`` when no between-unit variance shows, ``nan`` when the equations do not
        identify it (fewer than 3 units, or all exposures equal).

    References
    ----------
    .. [1] DerSimonian, R. and Laird, N. (1986). Meta-analysis in clinical trials. Controlled
       Clinical Trials 7(3), 177-188 (moment estimator of the between-unit variance).
    .. [2] Kleinman, J. C. (1973). Proportions with extraneous variance: single and independent
       samples. JASA 68(341), 46-54.

    Examples
    --------
    >>> k = random_effects_prior_strength([2.0, 30.0, 9.0, 80.0, 1.0], [50, 400, 200, 900, 40])
    >>> round(k, 1)
    55.7
    """
    y = np.asarray(totals, dtype=np.float64)
    n = np.asarray(exposures, dtype=np.float64)
    count, _, spread, weighted, inverse, plain = _moments(y, n)
    if count < _MIN_CREATIVES:
        return float("nan")
    return _solve_random_effects(count, spread, weighted, (1 - 1 / count) * inverse, plain, 1)


@dataclass(frozen=True)
class Shrinkage:
    """Shrunk rates and what they were shrunk toward.

    Attributes
    ----------
    shrunk
        ``(y + k·m) / (n + k)`` per unit.
    group_mean
        The pooled rate ``m`` of each unit's group.
    strengths
        Per group: prior strength ``k`` and where it came from (``channel``: its own moments;
        ``pooled``: moments pooled over groups; ``fallback``: the median exposure).
    """

    shrunk: FloatArray
    group_mean: FloatArray
    strengths: dict[str, tuple[float, PriorSource]]


def _pooled_strength(
    successes: FloatArray, trials: FloatArray, groups: npt.NDArray[np.intp], binomial: bool
) -> float:
    """One prior strength from the within-group moments of every group together."""
    numerator = denominator = 0.0
    sums = np.zeros(5)
    group_count = 0
    for code in np.unique(groups):
        member = groups == code
        count, pooled, spread, weighted, inverse, plain = _moments(
            successes[member], trials[member]
        )
        if count < 2:
            continue
        if binomial:
            if not 0 < pooled < 1:
                continue
            numerator += weighted / (pooled * (1 - pooled)) - (count - 1)
            denominator += spread - (count - 1)
        else:
            sums += (count, spread, weighted, (1 - 1 / count) * inverse, plain)
            group_count += 1
    if binomial:
        if denominator <= 0:
            return float("nan")
        rho = numerator / denominator
        return float("inf") if rho <= 0 else float(1 / min(rho, 1.0) - 1)
    if group_count == 0 or sums[0] - group_count < 2:
        return float("nan")
    units, spread_sum, weighted_sum, inverse_sum, plain_sum = (float(value) for value in sums)
    return _solve_random_effects(
        units, spread_sum, weighted_sum, inverse_sum, plain_sum, group_count
    )


def shrink_rates(
    successes: FloatArray, trials: FloatArray, groups: pd.Series, *, binomial: bool
) -> Shrinkage:
    """Shrink each unit's rate toward its group's pooled rate by its exposure.

    A group's own moment estimate is used when it exists and is finite; otherwise the estimate
    pooled over groups; otherwise (no extra variation anywhere, or too few units) the median
    exposure, which halves the weight of a median-sized unit's own data.
    """
    codes, names = pd.factorize(groups, sort=True)
    positive = trials > 0
    total_trials = float(trials.sum())
    overall = float(successes.sum() / total_trials) if total_trials > 0 else 0.0
    exposure = trials[positive]
    fallback = float(np.median(exposure)) if exposure.size else 1.0
    pooled = _pooled_strength(successes, trials, codes, binomial)
    estimate = beta_binomial_prior_strength if binomial else random_effects_prior_strength
    means = np.empty(len(names))
    strengths: dict[str, tuple[float, PriorSource]] = {}
    strength_of = np.empty(len(names))
    for code, name in enumerate(names):
        member = codes == code
        group_trials = float(trials[member].sum())
        means[code] = float(successes[member].sum() / group_trials) if group_trials > 0 else overall
        own = estimate(successes[member], trials[member])
        source: PriorSource
        if np.isfinite(own):
            strength, source = own, "channel"
        elif np.isfinite(pooled):
            strength, source = pooled, "pooled"
        else:
            strength, source = fallback, "fallback"
        strengths[str(name)] = (strength, source)
        strength_of[code] = strength
    mean_of = means[codes]
    prior = strength_of[codes]
    with np.errstate(divide="ignore", invalid="ignore"):
        shrunk = (successes + prior * mean_of) / (trials + prior)
    shrunk = np.where(trials + prior > 0, shrunk, mean_of)
    return Shrinkage(shrunk=shrunk, group_mean=mean_of, strengths=strengths)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> FloatArray:
    top = numerator.to_numpy(dtype=np.float64)
    bottom = denominator.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / bottom, np.nan)


def creative_rates(
    table: pd.DataFrame,
    early: pd.DataFrame | None,
    late: pd.DataFrame | None,
    target: str,
) -> tuple[pd.DataFrame, Shrinkage]:
    """Add ``ctr``, ``cvr``, ``rpi``, ``shrunkRate``, ``channelRate``, ``vsPeers``, ``trend``.

    ``vsPeers`` is the shrunk target rate over its channel's pooled rate; ``trend`` the relative
    change of the target rate from the early to the late half of the creative's days (null with
    fewer than two days, or no early successes to compare with).
    """
    rates = table.copy()
    for name, (top, bottom) in RATE_PARTS.items():
        rates[name] = _ratio(rates[top], rates[bottom])
    top, bottom = RATE_PARTS[target]
    shrinkage = shrink_rates(
        rates[top].to_numpy(dtype=np.float64),
        rates[bottom].to_numpy(dtype=np.float64),
        rates["channel"],
        binomial=target != "rpi",
    )
    rates["shrunkRate"] = shrinkage.shrunk
    rates["channelRate"] = shrinkage.group_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        rates["vsPeers"] = np.where(
            shrinkage.group_mean > 0, shrinkage.shrunk / shrinkage.group_mean, np.nan
        )
    if early is not None and late is not None:
        before = _ratio(early[top], early[bottom])
        after = _ratio(late[top], late[bottom])
        with np.errstate(divide="ignore", invalid="ignore"):
            rates["trend"] = np.where(before > 0, after / before - 1, np.nan)
    else:
        rates["trend"] = np.nan
    return rates, shrinkage


def _interval(numerator: pd.Series, denominator: pd.Series) -> dict[str, float] | None:
    top = numerator.to_numpy(dtype=np.float64)
    bottom = denominator.to_numpy(dtype=np.float64)
    if np.isnan(top).all() or bottom.sum() <= 0:
        return None
    estimate = ratio_estimate(np.nan_to_num(top), bottom)
    return {"rate": estimate.estimate, "low": estimate.low, "high": estimate.high}


def _summary(rows: pd.DataFrame) -> dict[str, Any]:
    summary: dict[str, Any] = {"creatives": len(rows)}
    for name in ("impressions", "clicks", "conversions", "revenue"):
        values = rows[name]
        summary[name] = None if values.isna().all() else float(values.sum())
    for name, (top, bottom) in RATE_PARTS.items():
        summary[name] = _interval(rows[top], rows[bottom])
    return summary


def baseline(rates: pd.DataFrame, shrinkage: Shrinkage) -> dict[str, Any]:
    """Overall and per-channel totals and rates, each with a creative-clustered 95 % interval.

    Intervals come from :func:`~mlworker.analysis.statistics.ratio_estimate`, which treats each
    creative as a cluster, so one huge creative cannot make an interval falsely narrow.
    """
    channels = []
    by_exposure = rates.groupby("channel", sort=True)["impressions"].sum()
    order = by_exposure.sort_values(ascending=False, kind="stable").index
    for channel in order[:_MAX_BASELINE_CHANNELS]:
        rows = rates[rates["channel"] == channel]
        strength, source = shrinkage.strengths[str(channel)]
        channels.append(
            {
                "channel": str(channel),
                **_summary(rows),
                "priorStrength": strength,
                "priorSource": source,
            }
        )
    return {
        "overall": _summary(rates),
        "channels": channels,
        "channelsTruncated": len(order) > _MAX_BASELINE_CHANNELS,
    }
