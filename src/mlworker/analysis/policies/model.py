"""Logistic regression of response on frequency band, channel, day, daypart and recency.

Every covariate is categorical, so the row-level design has at most a few thousand distinct
rows (covariate patterns). The model is fitted on those patterns — successes out of trials,
a binomial GLM — which has the same likelihood up to a constant as the Bernoulli model on the
rows, hence the same estimates, standard errors and p-values, at a cost independent of the
number of contacts. The AUC is computed from the patterns too: each pattern is one prediction
shared by its responders (weight = successes) and non-responders (weight = failures), which
is exactly the row-level AUC with its ties.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from mlworker.analysis.policies.rates import BoolArray, FloatArray, IntArray, json_number

# Levels with fewer contacts than this are left out of the model (their estimate is noise).
MIN_LEVEL_CONTACTS = 20
# Above this many possible patterns, np.unique replaces a dense bincount.
_DENSE_PATTERN_LIMIT = 4_000_000
# Relative size of a QR diagonal below which a design column depends on the earlier ones.
_RANK_TOLERANCE = 1e-9
# |coefficient| beyond this on the logit scale points at (quasi-)separation.
_SEPARATION_COEFFICIENT = 10.0


@dataclass(frozen=True, slots=True)
class Factor:
    """A categorical covariate: a code per row into ``labels``.

    ``reference`` picks the baseline level: the first or last level present, or the one with
    the most contacts (the most precise baseline).
    """

    name: str
    codes: IntArray
    labels: tuple[str, ...]
    reference: Literal["first", "last", "largest"] = "largest"


@dataclass(frozen=True, slots=True)
class Coefficient:
    """One model term; ``low`` and ``high`` bound the odds ratio."""

    term: str
    coefficient: float
    standard_error: float
    odds_ratio: float
    low: float
    high: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form."""
        return {
            "term": self.term,
            "coefficient": json_number(self.coefficient),
            "standardError": json_number(self.standard_error),
            "oddsRatio": json_number(self.odds_ratio),
            "low": json_number(self.low),
            "high": json_number(self.high),
            "pValue": json_number(self.p_value),
        }


@dataclass(frozen=True, slots=True)
class ResponseModel:
    """The fitted model (``coefficients`` empty when it could not be fitted; see ``notes``)."""

    coefficients: tuple[Coefficient, ...]
    auc: float | None
    n: int
    patterns: int
    references: dict[str, str]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Camel-case JSON form."""
        return {
            "coefficients": [coefficient.to_dict() for coefficient in self.coefficients],
            "auc": json_number(self.auc),
            "n": self.n,
            "patterns": self.patterns,
            "references": dict(self.references),
        }


@dataclass(frozen=True, slots=True)
class Patterns:
    """Distinct covariate combinations: the level of each factor, successes and trials."""

    levels: IntArray  # (patterns, factors)
    successes: FloatArray
    trials: FloatArray


def covariate_patterns(factors: Sequence[Factor], responded: BoolArray) -> Patterns:
    """Group rows by their combination of factor levels: successes and trials per pattern.

    Examples
    --------
    >>> day = Factor("day", np.array([0, 0, 1, 1, 1]), ("mon", "tue"))
    >>> patterns = covariate_patterns([day], np.array([True, False, True, True, False]))
    >>> patterns.levels[:, 0].tolist(), patterns.successes.tolist(), patterns.trials.tolist()
    ([0, 1], [1.0, 2.0], [2.0, 3.0])
    """
    sizes = [len(factor.labels) for factor in factors]
    multipliers = np.cumprod([1, *sizes[:-1]]).astype(np.int64)
    combined = np.zeros(responded.size, dtype=np.int64)
    for factor, multiplier in zip(factors, multipliers, strict=True):
        combined += factor.codes.astype(np.int64) * multiplier
    total = int(np.prod(sizes))
    weights = responded.astype(np.float64)
    if total <= _DENSE_PATTERN_LIMIT:
        trials = np.bincount(combined, minlength=total).astype(np.float64)
        successes = np.bincount(combined, weights=weights, minlength=total).astype(np.float64)
        present = np.flatnonzero(trials > 0)
        keys, trials, successes = present, trials[present], successes[present]
    else:
        keys, inverse = np.unique(combined, return_inverse=True)
        trials = np.bincount(inverse).astype(np.float64)
        successes = np.bincount(inverse, weights=weights).astype(np.float64)
    levels = np.column_stack(
        [(keys // multiplier) % size for multiplier, size in zip(multipliers, sizes, strict=True)]
    ).astype(np.int64)
    return Patterns(levels=levels, successes=successes, trials=trials)


def _drop_degenerate_levels(
    factors: Sequence[Factor], patterns: Patterns, notes: list[str]
) -> BoolArray:
    """Patterns to keep once levels that are tiny or all-or-nothing are left out.

    A level whose contacts all responded (or none did) has an infinite MLE: it is separated
    from the rest. Leaving it out keeps the other estimates finite; repeated because dropping
    rows can leave another level degenerate.
    """
    keep = np.ones(patterns.trials.size, dtype=bool)
    changed = True
    while changed:
        changed = False
        for k, factor in enumerate(factors):
            codes = patterns.levels[:, k]
            size = len(factor.labels)
            trials = np.bincount(codes[keep], weights=patterns.trials[keep], minlength=size)
            successes = np.bincount(codes[keep], weights=patterns.successes[keep], minlength=size)
            tiny = (trials > 0) & (trials < MIN_LEVEL_CONTACTS)
            separated = (trials > 0) & ((successes == 0) | (successes == trials))
            for level in np.flatnonzero(tiny | separated):
                why = (
                    f"only {int(trials[level])} contacts"
                    if tiny[level]
                    else ("no responses" if successes[level] == 0 else "every contact responded")
                )
                notes.append(
                    f"model: {factor.name} level {factor.labels[level]!r} left out ({why})"
                )
                keep &= codes != level
                changed = True
    return keep


def _design(
    factors: Sequence[Factor], patterns: Patterns, notes: list[str]
) -> tuple[FloatArray, list[str], dict[str, str]]:
    """One-hot design over the patterns: intercept, then non-reference levels of each factor."""
    columns = [np.ones(patterns.trials.size)]
    names = ["intercept"]
    references: dict[str, str] = {}
    for k, factor in enumerate(factors):
        codes = patterns.levels[:, k]
        trials = np.bincount(codes, weights=patterns.trials, minlength=len(factor.labels))
        present = np.flatnonzero(trials > 0)
        if present.size < 2:
            if len(factor.labels) > 1:
                notes.append(f"model: {factor.name} has one level in the data; left out")
            continue
        reference = {
            "first": int(present[0]),
            "last": int(present[-1]),
            "largest": int(np.argmax(trials)),
        }[factor.reference]
        references[factor.name] = factor.labels[reference]
        for level in present:
            if level != reference:
                columns.append((codes == level).astype(np.float64))
                names.append(f"{factor.name}[{factor.labels[level]}]")
    return np.column_stack(columns), names, references


def _independent_columns(design: FloatArray, names: list[str], notes: list[str]) -> list[int]:
    """Columns kept in order, each only if it is not a combination of the ones before it.

    Without pivoting, ``|R[j, j]|`` of a QR decomposition is the part of column ``j`` outside
    the span of the earlier columns, so a (near) zero marks a dependent column. Earlier
    columns win: the frequency bands, listed first, are never dropped for a later factor.
    """
    columns = design.shape[1]
    diagonal = np.zeros(columns)
    upper = np.asarray(np.linalg.qr(design, mode="r"), dtype=np.float64)
    size = min(upper.shape)
    diagonal[:size] = np.abs(np.diag(upper))[:size]
    scale = np.linalg.norm(design, axis=0)
    kept = [j for j in range(columns) if diagonal[j] > _RANK_TOLERANCE * max(scale[j], 1.0)]
    dropped = [names[j] for j in range(columns) if j not in kept]
    if dropped:
        notes.append(
            "model: terms determined by earlier ones left out (singular design): "
            + ", ".join(dropped)
        )
    return kept


def grouped_auc(predicted: FloatArray, successes: FloatArray, trials: FloatArray) -> float | None:
    """Row-level ROC AUC from per-pattern predictions and counts.

    Examples
    --------
    >>> grouped_auc(np.array([0.2, 0.8]), np.array([1.0, 3.0]), np.array([4.0, 4.0]))
    0.75
    """
    failures = trials - successes
    if successes.sum() == 0 or failures.sum() == 0:
        return None
    labels = np.r_[np.ones(predicted.size), np.zeros(predicted.size)]
    scores = np.r_[predicted, predicted]
    weights = np.r_[successes, failures]
    used = weights > 0
    return float(roc_auc_score(labels[used], scores[used], sample_weight=weights[used]))


def fit_response_model(
    factors: Sequence[Factor], responded: BoolArray, confidence: float
) -> ResponseModel:
    """Fit ``logit P(response) = intercept + Σ factor effects`` on the covariate patterns.

    Parameters
    ----------
    factors
        Categorical covariates, one code per row.
    responded
        Outcome of each row.
    confidence
        Coverage of the odds-ratio intervals.

    Returns
    -------
    The coefficients (intercept first), odds ratios with Wald intervals, p-values, the AUC,
    the rows and patterns used. Degenerate levels and confounded terms are left out and
    explained in ``notes``; a fit that fails yields no coefficients and a note.

    References
    ----------
    .. [1] McCullagh, P. and Nelder, J. A. (1989). Generalized Linear Models, 2nd ed.,
       chapter 4 (binomial data; grouped and ungrouped likelihoods).
    .. [2] Hosmer, D. W., Lemeshow, S. and Sturdivant, R. X. (2013). Applied Logistic
       Regression, 3rd ed., sections 3.3 (design variables) and 5.2.4 (area under the ROC
       curve).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> codes = rng.integers(0, 2, 2000)
    >>> responded = rng.random(2000) < np.where(codes == 1, 0.3, 0.1)
    >>> model = fit_response_model([Factor("arm", codes, ("a", "b"), "first")], responded, 0.95)
    >>> [c.term for c in model.coefficients], model.patterns
    (['intercept', 'arm[b]'], 2)
    >>> 2.5 < model.coefficients[1].odds_ratio < 5.0
    True
    """
    # The pattern design is small (thousands of rows, tens of columns): BLAS threads only add
    # synchronisation, and on a busy machine they make each IRLS step ~20x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(factors, responded, confidence)


def _fit(factors: Sequence[Factor], responded: BoolArray, confidence: float) -> ResponseModel:
    notes: list[str] = []
    patterns = covariate_patterns(factors, responded)
    keep = _drop_degenerate_levels(factors, patterns, notes)
    patterns = Patterns(patterns.levels[keep], patterns.successes[keep], patterns.trials[keep])
    n = int(patterns.trials.sum())
    if n == 0:
        notes.append("model: no rows left to fit")
        return ResponseModel((), None, 0, 0, {}, tuple(notes))
    design, names, references = _design(factors, patterns, notes)
    kept = _independent_columns(design, names, notes)
    design, names = design[:, kept], [names[i] for i in kept]
    endog = np.column_stack([patterns.successes, patterns.trials - patterns.successes])
    # Imported here: statsmodels costs every job process ~0.4 s at start-up otherwise.
    import statsmodels.api as sm

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitted = sm.GLM(endog, design, family=sm.families.Binomial()).fit()
        except (np.linalg.LinAlgError, ValueError) as error:
            notes.append(f"model: the fit failed ({error}); no coefficients reported")
            return ResponseModel((), None, n, int(patterns.trials.size), references, tuple(notes))
    for warning in caught:
        notes.append(f"model: {str(warning.message).splitlines()[0]}")
    params = np.asarray(fitted.params, dtype=np.float64)
    errors = np.asarray(fitted.bse, dtype=np.float64)
    p_values = np.asarray(fitted.pvalues, dtype=np.float64)
    bounds = np.asarray(fitted.conf_int(alpha=1.0 - confidence), dtype=np.float64)
    if np.any(np.abs(params[1:]) > _SEPARATION_COEFFICIENT):
        notes.append("model: very large coefficients suggest (quasi-)separation; read with care")
    coefficients = tuple(
        Coefficient(
            term=name,
            coefficient=float(params[i]),
            standard_error=float(errors[i]),
            odds_ratio=float(np.exp(params[i])),
            low=float(np.exp(bounds[i, 0])),
            high=float(np.exp(bounds[i, 1])),
            p_value=float(p_values[i]),
        )
        for i, name in enumerate(names)
    )
    predicted = np.asarray(fitted.predict(design), dtype=np.float64)
    auc = grouped_auc(predicted, patterns.successes, patterns.trials)
    return ResponseModel(coefficients, auc, n, int(patterns.trials.size), references, tuple(notes))
