"""Count-based statistics of the naive Bayes engine.

Everything here works on per-bin class counts, never on raw rows, so the engine can recompute
its bin groups, predictor AUCs and model AUC after incremental updates without keeping data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfc
from scipy.stats import chi2

#: The model's score distribution is kept as class counts over log-odds bins of this width,
#: between these bounds (scores beyond them share the end bins).
LOG_ODDS_BIN_WIDTH = 0.05
LOG_ODDS_LOWEST = -10.0
LOG_ODDS_BINS = 400


def two_proportion_p_values(
    negatives_a: ArrayLike, positives_a: ArrayLike, negatives_b: ArrayLike, positives_b: ArrayLike
) -> NDArray[np.float64]:
    """Two-sided p-values of pooled two-proportion z-tests, elementwise.

    The test is Pearson's chi-square test of the 2×2 table without continuity correction. A
    pair with an empty side, or whose pooled rate is 0 or 1, shows no evidence of a difference
    and gets ``p = 1``.

    Parameters
    ----------
    negatives_a, positives_a, negatives_b, positives_b
        Class counts of the two bins of each pair.

    Returns
    -------
    numpy.ndarray
        One p-value per pair.

    References
    ----------
    .. [1] A. Agresti, *Categorical Data Analysis*, 3rd ed., Wiley, 2013, sec. 3.2.

    Examples
    --------
    >>> two_proportion_p_values([80], [20], [60], [40]).round(5).tolist()
    [0.00203]
    >>> two_proportion_p_values([10, 0], [0, 0], [10, 5], [0, 5]).tolist()
    [1.0, 1.0]
    """
    neg_a = np.asarray(negatives_a, dtype=np.float64)
    pos_a = np.asarray(positives_a, dtype=np.float64)
    neg_b = np.asarray(negatives_b, dtype=np.float64)
    pos_b = np.asarray(positives_b, dtype=np.float64)
    size_a, size_b = neg_a + pos_a, neg_b + pos_b
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (pos_a + pos_b) / (size_a + size_b)
        variance = pooled * (1.0 - pooled) * (1.0 / size_a + 1.0 / size_b)
        z = (pos_a / size_a - pos_b / size_b) / np.sqrt(variance)
        p_values = np.asarray(erfc(np.abs(z) / np.sqrt(2.0)), dtype=np.float64)
    degenerate = (size_a == 0) | (size_b == 0) | ~(variance > 0)
    p_values[degenerate] = 1.0
    return p_values


def independence_p_value(negatives: ArrayLike, positives: ArrayLike) -> float:
    """P-value of Pearson's chi-square test that the outcome does not depend on the bin.

    Only bins with observations enter; with fewer than two of them, or one class absent, there
    is nothing to test and the p-value is 1.

    Parameters
    ----------
    negatives, positives
        Class counts per bin.

    Returns
    -------
    float
        The p-value, with ``bins - 1`` degrees of freedom.

    References
    ----------
    .. [1] A. Agresti, *Categorical Data Analysis*, 3rd ed., Wiley, 2013, sec. 3.2.

    Examples
    --------
    >>> round(independence_p_value([80, 60, 70], [20, 40, 30]), 5)
    0.00855
    """
    table = np.asarray([negatives, positives], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    class_totals = table.sum(axis=1)
    if table.shape[1] < 2 or (class_totals == 0).any():
        return 1.0
    expected = np.outer(class_totals, table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return float(chi2.sf(statistic, table.shape[1] - 1))


def merge_adjacent_bins(
    negatives: Sequence[float], positives: Sequence[float], alpha: float
) -> list[list[int]]:
    """Group a sequence of bins by merging neighbours whose positive rates do not differ.

    Repeatedly merges the adjacent pair with the least significant difference (the largest
    :func:`two_proportion_p_values`), until every adjacent pair differs at level ``alpha``; the
    procedure of Pega's adaptive models for interval predictors (and for symbolic ones once
    their values are ordered by positive rate).

    Parameters
    ----------
    negatives, positives
        Class counts of the bins, in adjacency order.
    alpha
        Significance level: a pair stays apart when its p-value is at most ``alpha``, so
        ``alpha = 1`` never merges.

    Returns
    -------
    list of list of int
        The positions of the bins in each group, groups and positions in order.

    References
    ----------
    .. [1] Pegasystems, "Binning of predictors" and "Grouping of symbolic predictors",
       *Pega Adaptive Decision Manager*, documentation of adaptive models.

    Examples
    --------
    >>> merge_adjacent_bins([50, 48, 20, 22], [50, 52, 80, 78], alpha=0.05)
    [[0, 1], [2, 3]]
    """
    groups = [[position] for position in range(len(negatives))]
    group_negatives = [float(count) for count in negatives]
    group_positives = [float(count) for count in positives]
    while len(groups) > 1:
        p_values = two_proportion_p_values(
            group_negatives[:-1], group_positives[:-1], group_negatives[1:], group_positives[1:]
        )
        weakest = int(np.argmax(p_values))
        if p_values[weakest] <= alpha:
            break
        groups[weakest] += groups.pop(weakest + 1)
        group_negatives[weakest] += group_negatives.pop(weakest + 1)
        group_positives[weakest] += group_positives.pop(weakest + 1)
    return groups


def binned_auc(negatives: ArrayLike, positives: ArrayLike, scores: ArrayLike) -> float | None:
    """Area under the ROC curve of a score that is constant within each bin.

    Equal to :func:`sklearn.metrics.roc_auc_score` on the rows the counts describe: bins with
    equal scores are pooled and their pairs count half.

    Parameters
    ----------
    negatives, positives
        Class counts per bin.
    scores
        The score every row of a bin receives.

    Returns
    -------
    float or None
        The AUC, or ``None`` when one class is absent (the AUC is undefined).

    References
    ----------
    .. [1] T. Fawcett, "An introduction to ROC analysis", *Pattern Recognition Letters* 27(8),
       2006, pp. 861–874.

    Examples
    --------
    >>> binned_auc([3, 1], [1, 3], [0.2, 0.9])
    0.75
    >>> binned_auc([3, 1], [0, 0], [0.2, 0.9]) is None
    True
    """
    negative_counts = np.asarray(negatives, dtype=np.float64)
    positive_counts = np.asarray(positives, dtype=np.float64)
    total_negatives, total_positives = negative_counts.sum(), positive_counts.sum()
    if total_negatives == 0 or total_positives == 0:
        return None
    _, tie_group = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True)
    tied_negatives = np.bincount(tie_group, weights=negative_counts)
    tied_positives = np.bincount(tie_group, weights=positive_counts)
    negatives_below = np.cumsum(tied_negatives) - tied_negatives
    concordant = tied_positives * (negatives_below + 0.5 * tied_negatives)
    return float(concordant.sum() / (total_negatives * total_positives))


def laplace_log_likelihood_ratios(
    negatives: ArrayLike, positives: ArrayLike, alpha: float
) -> NDArray[np.float64]:
    """Per-bin ``log(P(bin | 1) / P(bin | 0))`` with Laplace smoothing.

    ``P(bin | c) = (count_c(bin) + alpha) / (n_c + alpha · n_bins)``, where ``n_c`` is the class
    total and ``n_bins`` counts the bins with at least one observation. A bin never observed
    carries no evidence: its ratio is 0 and it does not enter ``n_bins``.

    Parameters
    ----------
    negatives, positives
        Class counts per bin.
    alpha
        The Laplace pseudo-count (``laplaceSmoothingAlpha``).

    Returns
    -------
    numpy.ndarray
        One log-likelihood ratio per bin.

    References
    ----------
    .. [1] C. D. Manning, P. Raghavan, H. Schütze, *Introduction to Information Retrieval*,
       Cambridge University Press, 2008, sec. 13.2 (add-one smoothing).

    Examples
    --------
    >>> laplace_log_likelihood_ratios([1, 3, 0], [3, 1, 0], alpha=1.0).round(6).tolist()
    [0.693147, -0.693147, 0.0]
    """
    negative_counts = np.asarray(negatives, dtype=np.float64)
    positive_counts = np.asarray(positives, dtype=np.float64)
    observed = (negative_counts + positive_counts) > 0
    observed_bins = int(observed.sum())
    if observed_bins == 0:
        return np.zeros(negative_counts.shape, dtype=np.float64)
    smoothing = alpha * observed_bins
    likelihood_positive = (positive_counts + alpha) / (positive_counts.sum() + smoothing)
    likelihood_negative = (negative_counts + alpha) / (negative_counts.sum() + smoothing)
    ratios = np.log(likelihood_positive) - np.log(likelihood_negative)
    return np.where(observed, ratios, 0.0)


def log_odds_bins(log_odds: ArrayLike) -> NDArray[np.int64]:
    """Return the score-distribution bin of each log-odds value.

    Examples
    --------
    >>> log_odds_bins([-50.0, 0.0, 0.049, 50.0]).tolist()
    [0, 200, 200, 399]
    """
    positions = (np.asarray(log_odds, dtype=np.float64) - LOG_ODDS_LOWEST) / LOG_ODDS_BIN_WIDTH
    return np.clip(np.floor(positions), 0, LOG_ODDS_BINS - 1).astype(np.int64)


def log_odds_bin_centres() -> NDArray[np.float64]:
    """Return the centre of every score-distribution bin (the score its rows rank by)."""
    return LOG_ODDS_LOWEST + LOG_ODDS_BIN_WIDTH * (np.arange(LOG_ODDS_BINS, dtype=np.float64) + 0.5)
