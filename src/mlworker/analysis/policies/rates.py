"""Response-rate rows with Wilson intervals, Holm's adjustment and JSON-safe numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlworker.analysis.statistics import wilson_interval

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def json_number(value: float | int | np.floating[Any] | np.integer[Any] | None) -> float | None:
    """Convert to a plain float for JSON: NaN and infinities become ``None``.

    Examples
    --------
    >>> json_number(np.float32(0.5)), json_number(float("nan"))
    (0.5, None)
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Rate:
    """Responses among contacts of one group (a band, a day, a channel) with a Wilson interval."""

    label: str
    contacts: int
    responses: int
    conversions: int
    rate: float | None
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form."""
        return {
            "label": self.label,
            "contacts": self.contacts,
            "responses": self.responses,
            "conversions": self.conversions,
            "rate": json_number(self.rate),
            "low": json_number(self.low),
            "high": json_number(self.high),
        }


def rate_rows(
    labels: list[str],
    contacts: npt.ArrayLike,
    responses: npt.ArrayLike,
    conversions: npt.ArrayLike,
    confidence: float,
) -> list[Rate]:
    """One :class:`Rate` per label from count arrays (a group without contacts has no rate).

    Examples
    --------
    >>> rows = rate_rows(["a", "b"], [10, 0], [8, 0], [1, 0], 0.95)
    >>> rows[0].rate, round(rows[0].low, 4), rows[1].rate
    (0.8, 0.4902, None)
    """
    trials = np.asarray(contacts, dtype=np.int64)
    successes = np.asarray(responses, dtype=np.int64)
    converted = np.asarray(conversions, dtype=np.int64)
    low, high = wilson_interval(successes, trials, confidence)
    return [
        Rate(
            label=label,
            contacts=int(trials[i]),
            responses=int(successes[i]),
            conversions=int(converted[i]),
            rate=float(successes[i] / trials[i]) if trials[i] > 0 else None,
            low=float(low[i]),
            high=float(high[i]),
        )
        for i, label in enumerate(labels)
    ]


def holm_adjust(p_values: npt.ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values (family-wise error control, any dependence).

    Parameters
    ----------
    p_values
        Raw p-values of the family.

    Returns
    -------
    Adjusted p-values in the input order: reject where the adjusted value is below ``alpha``.

    References
    ----------
    .. [1] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics 6(2), 65-70.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    raw = np.asarray(p_values, dtype=np.float64)
    count = raw.size
    if count == 0:
        return raw.copy()
    order = np.argsort(raw, kind="stable")
    stepped = np.maximum.accumulate(raw[order] * (count - np.arange(count)))
    adjusted = np.empty(count, dtype=np.float64)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
