"""One predictor of the naive Bayes engine: how a feature column is binned, counted and grouped.

Counts are kept per *fine* bin, the bins fixed when the predictor was built: quantile intervals
of a numeric column, or the values of a categorical one. Groups of fine bins, merged where
their positive rates do not differ, are what the model scores with; they can be recomputed from
the fine counts at any time, which is what lets the engine learn incrementally without data.

Fine bin ``0`` is always the *missing* bin. Numeric bins follow in increasing order; a
categorical predictor has an *other* bin ``1`` (values beyond :data:`MAX_CATEGORY_LEVELS`, and
values never seen) and then one bin per value, in the order the values were first kept.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from mlworker.engines.bayesian._statistics import (
    independence_p_value,
    laplace_log_likelihood_ratios,
    merge_adjacent_bins,
    two_proportion_p_values,
)

MISSING_BIN = 0
OTHER_BIN = 1
#: Values of a categorical predictor kept as bins of their own; rarer ones share the other bin.
MAX_CATEGORY_LEVELS = 100

PredictorKind = Literal["numeric", "categorical"]


def is_numeric_column(series: pd.Series) -> bool:
    """Whether a column is binned as numeric: a numeric dtype, or objects that are all numbers.

    Booleans are categorical.

    Examples
    --------
    >>> is_numeric_column(pd.Series([1, None, 2.5], dtype=object))
    True
    >>> is_numeric_column(pd.Series([True, False])), is_numeric_column(pd.Series(["a", 1]))
    (False, False)
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_numeric_dtype(dtype):
        return True
    if dtype != np.dtype(object):
        return False
    present = series.dropna()
    return len(present) > 0 and all(
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        for value in present
    )


def category_key(value: Any) -> str:
    """Return the key a categorical value is counted under (JSON keys are strings).

    Integral numbers share a key whatever their type, so ``2``, ``2.0`` and ``"2"`` are one value.

    Examples
    --------
    >>> [category_key(value) for value in ("gold", 2, 2.0, 2.5, True)]
    ['gold', '2', '2', '2.5', 'True']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def numeric_edges(values: NDArray[np.float64], bin_count: int) -> NDArray[np.float64]:
    """Upper edges of ``bin_count`` quantile bins ``(e_{k-1}, e_k]`` over the observed values.

    Edges are observed finite values (inverted-CDF quantiles), deduplicated, and the maximum is
    never an edge, so every bin holds at least one training value however many ties there are.

    Examples
    --------
    >>> numeric_edges(np.arange(1.0, 11.0), 5).tolist()
    [2.0, 4.0, 6.0, 8.0]
    >>> numeric_edges(np.array([0.0, 0.0, 0.0, 1.0]), 10).tolist()
    [0.0]
    """
    values = values[np.isfinite(values)]
    if values.size == 0 or bin_count < 2:
        return np.empty(0, dtype=np.float64)
    probabilities = np.arange(1, bin_count) / bin_count
    edges = np.unique(np.quantile(values, probabilities, method="inverted_cdf"))
    return np.asarray(edges[edges < values.max()], dtype=np.float64)


def _as_numbers(series: pd.Series) -> NDArray[np.float64]:
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        series = pd.to_numeric(series.astype(object), errors="coerce")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _category_keys(values: NDArray[Any]) -> list[str]:
    return [value if type(value) is str else category_key(value) for value in values]


@dataclasses.dataclass(eq=False)
class Predictor:
    """Binning, fine-bin class counts and bin groups of one feature column.

    Parameters
    ----------
    field
        The column.
    kind
        ``"numeric"`` or ``"categorical"``.
    edges
        Upper edges of the numeric intervals (empty for a categorical predictor).
    levels
        The categorical values with a bin of their own (empty for a numeric predictor).
    counts
        Shape ``(2, n_fine)``: negatives, then positives, per fine bin.
    group_of
        The group of every fine bin, groups numbered from 0.
    auc
        Univariate AUC of the grouped predictor, ``None`` until computed or when undefined.
    """

    field: str
    kind: PredictorKind
    edges: NDArray[np.float64]
    levels: list[str]
    counts: NDArray[np.int64]
    group_of: NDArray[np.int64]
    auc: float | None = None
    _level_bins: dict[str, int] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._level_bins = {level: OTHER_BIN + 1 + i for i, level in enumerate(self.levels)}

    @classmethod
    def from_column(cls, name: str, series: pd.Series, bin_count: int) -> Predictor:
        """Build an uncounted predictor whose bins come from a training column."""
        if is_numeric_column(series):
            edges = numeric_edges(_as_numbers(series), bin_count)
            return cls.empty(name, "numeric", edges=edges)
        values = series.to_numpy(dtype=object)
        frequencies = Counter(_category_keys(values[~pd.isna(values)]))
        ranked = sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))
        levels = [key for key, _ in ranked][:MAX_CATEGORY_LEVELS]
        return cls.empty(name, "categorical", levels=levels)

    @classmethod
    def empty(
        cls,
        name: str,
        kind: PredictorKind,
        *,
        edges: NDArray[np.float64] | None = None,
        levels: list[str] | None = None,
    ) -> Predictor:
        """Build a predictor with the given bins, no counts, every fine bin its own group."""
        edge_array = np.empty(0, dtype=np.float64) if edges is None else edges
        level_list = [] if levels is None else list(levels)
        fine_bins = 2 + (edge_array.size if kind == "numeric" else len(level_list))
        return cls(
            field=name,
            kind=kind,
            edges=edge_array,
            levels=level_list,
            counts=np.zeros((2, fine_bins), dtype=np.int64),
            group_of=np.arange(fine_bins, dtype=np.int64),
        )

    def fine_bins(self, series: pd.Series | None, rows: int, *, grow: bool = False) -> NDArray[Any]:
        """Return the fine bin of every row (``series`` ``None``: the column is absent).

        A numeric predictor counts a value that is not a number as missing. A categorical one
        puts values it has no bin for into the other bin, unless ``grow`` is set: then each new
        value gets a bin of its own while fewer than :data:`MAX_CATEGORY_LEVELS` exist.
        """
        bins = np.full(rows, MISSING_BIN, dtype=np.int64)
        if series is None or rows == 0:
            return bins
        if self.kind == "numeric":
            values = _as_numbers(series)
            present = ~np.isnan(values)
            bins[present] = 1 + np.searchsorted(self.edges, values[present], side="left")
            return bins
        values = series.to_numpy(dtype=object)
        present = ~pd.isna(values)
        keys = _category_keys(values[present])
        if grow:
            self._add_levels(key for key in dict.fromkeys(keys) if key not in self._level_bins)
        lookup = self._level_bins.get
        bins[present] = np.fromiter((lookup(key, OTHER_BIN) for key in keys), np.int64, len(keys))
        return bins

    def _add_levels(self, new_levels: Any) -> None:
        for level in new_levels:
            if len(self.levels) >= MAX_CATEGORY_LEVELS:
                return
            self._level_bins[level] = OTHER_BIN + 1 + len(self.levels)
            self.levels.append(level)
            self.counts = np.concatenate([self.counts, np.zeros((2, 1), dtype=np.int64)], axis=1)
            # A new value scores on its own until the next regrouping decides where it belongs.
            self.group_of = np.append(self.group_of, self.group_of.max() + 1)

    def learn(self, bins: NDArray[np.int64], outcomes: NDArray[np.int64]) -> None:
        """Add outcomes (0/1) to the counts of the fine bins they fell into."""
        np.add.at(self.counts, (outcomes, bins), 1)

    def regroup(self, alpha: float) -> None:
        """Recompute the groups from the fine counts, as CHAID and Pega's adaptive models do.

        First, unless Pearson's test of all observed bins against the outcome
        (:func:`independence_p_value`) is significant at ``alpha``, the predictor shows no
        signal and all its bins form one group. Otherwise bins are merged by
        :func:`merge_adjacent_bins`: numeric ones with their neighbours on the number line,
        categorical values (the other bin included) after ordering them by positive rate, as
        Pega groups symbols. The missing bin then joins the group it differs least from, unless
        it differs from all of them. Bins never observed stay alone.
        """
        totals = self.counts.sum(axis=0)
        values = [fine for fine in range(MISSING_BIN + 1, totals.size) if totals[fine] > 0]
        if self.kind == "categorical":
            values.sort(key=lambda fine: (self.counts[1, fine] / totals[fine], fine))
        observed = values + ([MISSING_BIN] if totals[MISSING_BIN] > 0 else [])
        if independence_p_value(*self.counts[:, observed]) > alpha:
            groups = [observed] if observed else []
        else:
            merged = merge_adjacent_bins(
                self.counts[0, values].tolist(), self.counts[1, values].tolist(), alpha
            )
            groups = [[values[position] for position in group] for group in merged]
            if totals[MISSING_BIN] > 0:
                self._place_missing(groups, alpha)
        group_of = np.full(totals.size, -1, dtype=np.int64)
        for number, group in enumerate(groups):
            group_of[group] = number
        unobserved = np.flatnonzero(group_of < 0)
        group_of[unobserved] = len(groups) + np.arange(unobserved.size)
        self.group_of = group_of

    def _place_missing(self, groups: list[list[int]], alpha: float) -> None:
        # Missing values have no place on the number line: they float, as in CHAID.
        if groups:
            group_counts = np.asarray([self.counts[:, group].sum(axis=1) for group in groups])
            p_values = two_proportion_p_values(
                self.counts[0, MISSING_BIN],
                self.counts[1, MISSING_BIN],
                group_counts[:, 0],
                group_counts[:, 1],
            )
            closest = int(np.argmax(p_values))
            if p_values[closest] > alpha:
                groups[closest].append(MISSING_BIN)
                return
        groups.append([MISSING_BIN])

    def group_counts(self) -> NDArray[np.float64]:
        """Shape ``(2, n_groups)``: negatives and positives per group."""
        groups = int(self.group_of.max()) + 1
        return np.stack(
            [
                np.bincount(self.group_of, weights=self.counts[outcome], minlength=groups)
                for outcome in (0, 1)
            ]
        )

    def group_summaries(self, alpha: float) -> list[dict[str, Any]]:
        """Every group's label, class counts and log-likelihood ratio (Laplace ``alpha``)."""
        negatives, positives = self.group_counts()
        ratios = laplace_log_likelihood_ratios(negatives, positives, alpha)
        return [
            {
                "label": label,
                "negatives": int(negative),
                "positives": int(positive),
                "contribution": float(ratio),
            }
            for label, negative, positive, ratio in zip(
                self.group_labels(), negatives, positives, ratios, strict=True
            )
        ]

    def group_labels(self) -> list[str]:
        """Name every group: an interval, a list of values, or ``missing``."""
        labels = []
        for group in range(int(self.group_of.max()) + 1):
            members = np.flatnonzero(self.group_of == group).tolist()
            labels.append(self._label(members))
        return labels

    def _label(self, members: list[int]) -> str:
        values = [fine for fine in members if fine != MISSING_BIN]
        parts = [self._values_label(values)] if values else []
        if MISSING_BIN in members:
            parts.append("missing")
        return ", ".join(parts)

    def _values_label(self, values: list[int]) -> str:
        if self.kind == "categorical":
            names = ["<other>" if fine == OTHER_BIN else self.levels[fine - 2] for fine in values]
            return ", ".join(names)
        first, last = min(values), max(values)
        lower = "-inf" if first == 1 else f"{self.edges[first - 2]:g}"
        upper = "inf)" if last == self.edges.size + 1 else f"{self.edges[last - 1]:g}]"
        return f"({lower}, {upper}"

    def to_state(self) -> dict[str, Any]:
        """JSON-safe description of the predictor."""
        return {
            "field": self.field,
            "kind": self.kind,
            "edges": self.edges.tolist(),
            "levels": list(self.levels),
            "negatives": self.counts[0].tolist(),
            "positives": self.counts[1].tolist(),
            "groups": self.group_of.tolist(),
            "auc": self.auc,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Predictor:
        """Rebuild a predictor from :meth:`to_state`'s output.

        Raises
        ------
        ValueError
            The description is inconsistent (unknown kind, array lengths that disagree,
            negative counts).
        """
        kind = state["kind"]
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"unknown predictor kind {kind!r}")
        edges = np.asarray(state["edges"], dtype=np.float64).reshape(-1)
        levels = [str(level) for level in state["levels"]]
        counts = np.asarray([state["negatives"], state["positives"]], dtype=np.int64)
        group_of = np.asarray(state["groups"], dtype=np.int64).reshape(-1)
        fine_bins = 2 + (edges.size if kind == "numeric" else len(levels))
        if counts.shape != (2, fine_bins) or group_of.shape != (fine_bins,):
            raise ValueError(f"predictor {state['field']!r}: counts or groups do not fit its bins")
        if (counts < 0).any():
            raise ValueError(f"predictor {state['field']!r}: negative counts")
        if not np.array_equal(np.unique(group_of), np.arange(group_of.max() + 1)):
            raise ValueError(f"predictor {state['field']!r}: groups must be numbered 0..k-1")
        auc = state.get("auc")
        return cls(
            field=str(state["field"]),
            kind=kind,
            edges=edges,
            levels=levels,
            counts=counts,
            group_of=group_of,
            auc=None if auc is None else float(auc),
        )
