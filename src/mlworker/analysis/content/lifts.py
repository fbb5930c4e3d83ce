"""Direct estimates from the data: the rate of creatives with a feature against those without.

The model says which features matter; these say by how much, with an interval a reader can
check. Rates are ratios of totals over creatives (each creative a cluster). For terms and text
attributes each creative's successes are compared with what its channel's rate predicts
(indirect standardisation), so a word that is simply more common in a strong channel does not
look like a winner; channel indicators compare raw rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlworker.analysis.statistics import lift_between, ratio_estimate

FloatArray = npt.NDArray[np.float64]
_MIN_GROUP = 2


@dataclass(frozen=True, slots=True)
class DataLift:
    """Rate with a feature over rate without it, its 95 % interval and p-value.

    ``lift``, ``low``, ``high`` and ``p_value`` are ``None`` when either group has fewer than
    two creatives or no exposure.
    """

    lift: float | None
    low: float | None
    high: float | None
    p_value: float | None
    with_count: int
    without_count: int


def presence_lift(
    present: npt.NDArray[np.bool_], successes: FloatArray, denominators: FloatArray
) -> DataLift:
    """Lift of ``Σsuccesses/Σdenominators`` among ``present`` creatives over the others.

    Parameters
    ----------
    present
        Which creatives have the feature.
    successes
        Per creative: clicks, conversions or revenue.
    denominators
        Per creative: trials, or expected successes at the channel's rate.

    References
    ----------
    .. [1] Cochran, W. G. (1977). Sampling Techniques, 3rd ed., section 6.4 (ratio estimator).

    Examples
    --------
    >>> present = np.array([True, True, True, False, False, False])
    >>> clicks = np.array([20.0, 22.0, 18.0, 10.0, 11.0, 9.0])
    >>> lift = presence_lift(present, clicks, np.full(6, 1000.0))
    >>> round(lift.lift, 2), lift.with_count, lift.without_count
    (2.0, 3, 3)
    """
    with_count = int(present.sum())
    without_count = int(present.size - with_count)
    empty = DataLift(None, None, None, None, with_count, without_count)
    if with_count < _MIN_GROUP or without_count < _MIN_GROUP:
        return empty
    if denominators[present].sum() <= 0 or denominators[~present].sum() <= 0:
        return empty
    with_feature = ratio_estimate(successes[present], denominators[present])
    without_feature = ratio_estimate(successes[~present], denominators[~present])
    lift = lift_between(with_feature, without_feature)
    if not np.isfinite(lift.lift):
        return empty
    return DataLift(
        lift=float(lift.lift),
        low=float(lift.low),
        high=float(lift.high) if np.isfinite(lift.high) else None,
        p_value=float(lift.p_value),
        with_count=with_count,
        without_count=without_count,
    )


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate); NaN stays NaN.

    References
    ----------
    .. [1] Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a
       practical and powerful approach to multiple testing. JRSS B 57(1), 289-300.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.5]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(values.shape, np.nan)
    known = np.flatnonzero(~np.isnan(values))
    if known.size == 0:
        return adjusted
    order = known[np.argsort(values[known], kind="stable")]
    ranked = values[order] * known.size / np.arange(1, known.size + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted[order] = np.minimum(ranked, 1.0)
    return adjusted
