"""The Bayesian (naive Bayes) scoring engine."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from mlworker.engines._base import (
    EngineConfig,
    Explanation,
    as_outcomes,
    feature_columns,
    sigmoid,
)
from mlworker.engines.bayesian._config import BayesianConfig
from mlworker.engines.bayesian._frames import column_or_none, first_column, json_value
from mlworker.engines.bayesian._predictors import Predictor
from mlworker.engines.bayesian._statistics import (
    LOG_ODDS_BINS,
    binned_auc,
    laplace_log_likelihood_ratios,
    log_odds_bin_centres,
    log_odds_bins,
)

#: Weight, in observations, of the Beta prior whose mean is ``priorPositiveRate``: with the
#: default rate 0.5 it is the uniform Beta(1, 1) prior the seed speaks of.
PRIOR_STRENGTH = 2.0
#: Observations behind a bin at which it backs a score with confidence 0.5; the same count at
#: which the seed's propensity smoothing gives model and prior equal weight.
EVIDENCE_FOR_HALF_CONFIDENCE = 25.0
#: A predictor must beat a coin by more than rounding to be selected.
AUC_TOLERANCE = 1e-9
STATE_VERSION = 1


class Engine:
    """Naive Bayes propensities from binned predictors, learned in batch or per outcome.

    Every feature column is a predictor. Numeric columns are cut into ``binCount`` quantile
    bins, categorical columns into their values (at most 100, rarer ones share an *other* bin);
    missing values have a bin of their own. Bins are then grouped at significance level
    ``binMergeAlpha``, as CHAID and Pega's adaptive models do: a predictor whose bins do not
    differ at all (chi-square test of independence) becomes one group; otherwise adjacent bins
    whose positive rates do not differ are merged (categorical values after ordering them by
    rate) and the missing bin joins the group it resembles. Each predictor's univariate training
    AUC, its groups' log-likelihood ratios (smoothed positive odds) taken as scores, ranks the
    predictors; the ``maxPredictors`` best with AUC above 0.5 score and the others (a single
    group has AUC 0.5) are dropped. A predictor without signal thus survives with probability
    about ``binMergeAlpha``.

    A candidate's log-odds are the prior log-odds plus one log-likelihood ratio per selected
    predictor, for the bin group the candidate falls into::

        log-odds = log((n1 + 2p) / (n0 + 2(1 - p))) + Σ log(P(bin | 1) / P(bin | 0))
        P(bin | c) = (count_c(bin) + α) / (n_c + α · bins)

    with ``p = priorPositiveRate`` the mean of a Beta prior worth two observations, ``α =
    laplaceSmoothingAlpha`` and ``bins`` the predictor's observed groups. A bin never observed
    (an unseen category, or missing values where training had none) contributes 0. Before any
    outcome the score is exactly ``priorPositiveRate`` (0.5 by default).

    The seed's worked example (500 positive and 300 negative outcomes, ratios +0.31 for
    ``reward_tier`` and +0.18 for ``visit_frequency``) gives ``sigmoid(log(500/300) + 0.49) =
    sigmoid(1.0008) = 0.7312`` with the empirical prior (0.7310 with the Beta prior above), not
    the seed's 0.724, which would need log-odds of 0.964.

    Class counts are kept per fine (unmerged) bin, so :meth:`learn_one` and :meth:`update`
    learn without data: scores move with every outcome, a new categorical value gets a bin of
    its own, and every ``retrainEveryN`` outcomes the groups, the predictor selection and the AUC
    are recomputed from the counts (numeric edges stay; a column first seen after the bins were
    built waits for the next fit). An engine that learns before it was ever fitted buffers its
    outcomes (in its state) until ``retrainEveryN`` of them have arrived, then builds its bins
    from them.

    The reported ``auc`` is that of the model's score distribution, kept as class counts over
    log-odds bins 0.05 wide: the training rows scored by the fitted model, then every later
    outcome scored just before it was learned (Pega's "classifier"). ``useful`` says whether it
    reaches ``aucThreshold``.

    Parameters
    ----------
    config
        The engine's settings.
    random_state
        Accepted for the common engine contract; the engine is deterministic.

    References
    ----------
    .. [1] Pegasystems, "Adaptive Decision Manager: predictor binning and model performance",
       Pega Platform documentation.
    .. [2] C. D. Manning, P. Raghavan, H. Schütze, *Introduction to Information Retrieval*,
       Cambridge University Press, 2008, ch. 13.

    Examples
    --------
    >>> frame = pd.DataFrame({"tier": ["gold", "gold", "basic", "basic"]})
    >>> engine = Engine(BayesianConfig(bin_merge_alpha=1.0)).fit(frame, [1, 1, 0, 1])
    >>> engine.score(pd.DataFrame({"tier": ["gold", "basic", "new"]})).round(4).tolist()
    [0.7826, 0.5455, 0.6667]
    """

    kind: ClassVar[str] = "bayesian"
    Config: ClassVar[type[EngineConfig]] = BayesianConfig

    config: BayesianConfig
    class_counts_: NDArray[np.int64]
    predictors_: list[Predictor] | None
    selected_: list[str]
    auc_: float | None
    score_counts_: NDArray[np.int64]
    updates_since_retrain_: int
    pending_rows_: list[dict[str, Any]]

    def __init__(self, config: BayesianConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state

    # -- learned state -------------------------------------------------------------------------

    def _reset(self) -> None:
        self.class_counts_ = np.zeros(2, dtype=np.int64)
        self.predictors_ = None
        self.selected_ = []
        self.auc_ = None
        self.score_counts_ = np.zeros((2, LOG_ODDS_BINS), dtype=np.int64)
        self.updates_since_retrain_ = 0
        self.pending_rows_ = []

    def _ensure_state(self) -> None:
        if not hasattr(self, "class_counts_"):
            self._reset()

    @property
    def is_trained(self) -> bool:
        """Whether any outcome has been learned."""
        self._ensure_state()
        return bool(self.class_counts_.sum() > 0)

    @property
    def useful(self) -> bool:
        """Whether the model's AUC reaches ``aucThreshold`` (never, while it is undefined)."""
        self._ensure_state()
        return self.auc_ is not None and self.auc_ >= self.config.auc_threshold

    # -- learning ------------------------------------------------------------------------------

    def fit(self, interactions: pd.DataFrame, outcomes: Any) -> Self:
        """Build the bins, count the outcomes, group the bins and select the predictors.

        Raises
        ------
        ValueError
            No interactions, or outcomes that are not one 0/1 value per interaction.
        """
        labels = as_outcomes(outcomes, len(interactions)).astype(np.int64)
        if labels.size == 0:
            raise ValueError("no interactions to learn from")
        self._build(interactions, labels)
        return self

    def _build(self, frame: pd.DataFrame, labels: NDArray[np.int64]) -> None:
        self._reset()
        rows = len(frame)
        self.class_counts_ = np.bincount(labels, minlength=2).astype(np.int64)
        predictors = []
        for name in dict.fromkeys(feature_columns(frame)):
            column = first_column(frame, name)
            predictor = Predictor.from_column(name, column, self.config.bin_count)
            predictor.learn(predictor.fine_bins(column, rows), labels)
            predictors.append(predictor)
        self.predictors_ = predictors
        self._reselect()
        self._record_scores(self._log_odds(frame), labels)
        self._refresh_auc()

    def learn_one(self, candidate: Mapping[str, Any], outcome: float) -> None:
        """Learn one outcome (0 or 1) of one candidate (attributes and ids)."""
        self.update(pd.DataFrame([dict(candidate)]), np.asarray([outcome]))

    def update(self, interactions: pd.DataFrame, outcomes: Any) -> None:
        """Add a batch of outcomes to the counts; regroup and reselect every ``retrainEveryN``.

        Raises
        ------
        ValueError
            Outcomes that are not one 0/1 value per interaction.
        """
        labels = as_outcomes(outcomes, len(interactions)).astype(np.int64)
        self._ensure_state()
        if labels.size == 0:
            return
        self.updates_since_retrain_ += int(labels.size)
        if self.predictors_ is None:
            self._buffer(interactions, labels)
            return
        # Test-then-train: the score distribution sees each outcome before the model does.
        self._record_scores(self._log_odds(interactions), labels)
        self.class_counts_ += np.bincount(labels, minlength=2)
        rows = len(interactions)
        for predictor in self.predictors_:
            column = column_or_none(interactions, predictor.field)
            predictor.learn(predictor.fine_bins(column, rows, grow=True), labels)
        if self.updates_since_retrain_ >= self.config.retrain_every_n:
            self._reselect()
            self._refresh_auc()
            self.updates_since_retrain_ = 0

    def _buffer(self, interactions: pd.DataFrame, labels: NDArray[np.int64]) -> None:
        # Without bins there is nowhere to count features: keep the rows until there are
        # enough to place quantile edges, then build the model from them.
        self.class_counts_ += np.bincount(labels, minlength=2)
        columns = {
            name: first_column(interactions, name).tolist()
            for name in dict.fromkeys(feature_columns(interactions))
        }
        for position, label in enumerate(labels.tolist()):
            features = {name: json_value(values[position]) for name, values in columns.items()}
            self.pending_rows_.append({"features": features, "outcome": label})
        if self.updates_since_retrain_ >= self.config.retrain_every_n:
            pending = self.pending_rows_
            frame = pd.DataFrame([row["features"] for row in pending], index=range(len(pending)))
            self._build(frame, np.asarray([row["outcome"] for row in pending], dtype=np.int64))

    def _reselect(self) -> None:
        alpha = self.config.laplace_smoothing_alpha
        for predictor in self.predictors_ or []:
            predictor.regroup(self.config.bin_merge_alpha)
            negatives, positives = predictor.group_counts()
            ratios = laplace_log_likelihood_ratios(negatives, positives, alpha)
            predictor.auc = binned_auc(negatives, positives, ratios)
        informative = [
            predictor
            for predictor in self.predictors_ or []
            if predictor.auc is not None and predictor.auc > 0.5 + AUC_TOLERANCE
        ]
        informative.sort(key=lambda predictor: (-(predictor.auc or 0.0), predictor.field))
        self.selected_ = [predictor.field for predictor in informative][
            : self.config.max_predictors
        ]

    def _record_scores(self, log_odds: NDArray[np.float64], labels: NDArray[np.int64]) -> None:
        np.add.at(self.score_counts_, (labels, log_odds_bins(log_odds)), 1)

    def _refresh_auc(self) -> None:
        negatives, positives = self.score_counts_
        self.auc_ = binned_auc(negatives, positives, log_odds_bin_centres())

    # -- scoring -------------------------------------------------------------------------------

    def _prior_log_odds(self) -> float:
        negatives, positives = self.class_counts_.tolist()
        rate = self.config.prior_positive_rate
        return math.log(
            (positives + PRIOR_STRENGTH * rate) / (negatives + PRIOR_STRENGTH * (1.0 - rate))
        )

    def _evidence(
        self, frame: pd.DataFrame
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
        """Per candidate and selected predictor: log-likelihood ratio and observations behind it."""
        rows = len(frame)
        by_field = {predictor.field: predictor for predictor in self.predictors_ or []}
        fields = [name for name in self.selected_ if name in by_field]
        contributions = np.zeros((rows, len(fields)), dtype=np.float64)
        observations = np.zeros((rows, len(fields)), dtype=np.float64)
        for position, name in enumerate(fields):
            predictor = by_field[name]
            negatives, positives = predictor.group_counts()
            ratios = laplace_log_likelihood_ratios(
                negatives, positives, self.config.laplace_smoothing_alpha
            )
            groups = predictor.group_of[predictor.fine_bins(column_or_none(frame, name), rows)]
            contributions[:, position] = ratios[groups]
            observations[:, position] = (negatives + positives)[groups]
        return contributions, observations, fields

    def _log_odds(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        contributions, _, _ = self._evidence(frame)
        log_odds: NDArray[np.float64] = self._prior_log_odds() + contributions.sum(axis=1)
        return log_odds

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> NDArray[np.float64]:
        """Posterior probabilities of a positive outcome, one per candidate (``rng`` unused)."""
        self._ensure_state()
        if not self.is_trained:
            return np.full(len(candidates), self.config.prior_positive_rate, dtype=np.float64)
        scores: NDArray[np.float64] = sigmoid(self._log_odds(candidates))
        return scores

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Per-field log-likelihood ratios and a confidence for every candidate.

        ``details`` holds ``{"field", "contribution"}`` for every selected predictor, largest
        ``|contribution|`` first; the score is ``sigmoid`` of the prior log-odds plus their sum.
        ``confidence`` is the mean over selected predictors of ``n / (n + 25)``, ``n`` being the
        observations in the bin the candidate falls into; without selected predictors, the same
        of all observations (the evidence behind the prior alone); 0 before any outcome.
        """
        if not self.is_trained:
            scores = self.score(candidates)
            return [Explanation(self.kind, float(score), [], 0.0) for score in scores]
        contributions, observations, fields = self._evidence(candidates)
        scores = sigmoid(self._prior_log_odds() + contributions.sum(axis=1))  # as in score()
        if fields:
            confidences = np.mean(
                observations / (observations + EVIDENCE_FOR_HALF_CONFIDENCE), axis=1
            )
        else:
            total = float(self.class_counts_.sum())
            confidences = np.full(len(candidates), total / (total + EVIDENCE_FOR_HALF_CONFIDENCE))
        explanations = []
        for row, score in enumerate(scores.tolist()):
            details: list[dict[str, Any]] = [
                {"field": name, "contribution": float(contributions[row, position])}
                for position, name in enumerate(fields)
            ]
            details.sort(key=lambda detail: (-abs(detail["contribution"]), detail["field"]))
            explanations.append(Explanation(self.kind, score, details, float(confidences[row])))
        return explanations

    def predictor_summaries(self) -> list[dict[str, Any]]:
        """Every predictor as the seed's ``predictors`` entries: field, importance, bins, selected.

        ``importance`` is the univariate AUC; each bin group has a ``label``, its class counts
        and its ``contribution`` (log-likelihood ratio).
        """
        self._ensure_state()
        return [
            {
                "field": predictor.field,
                "importance": predictor.auc,
                "bins": predictor.group_summaries(self.config.laplace_smoothing_alpha),
                "selected": predictor.field in self.selected_,
            }
            for predictor in self.predictors_ or []
        ]

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Return the counts, bins, groups, selection and score distribution as plain JSON."""
        self._ensure_state()
        occupied = np.flatnonzero(self.score_counts_.sum(axis=0))
        return {
            "version": STATE_VERSION,
            "classCounts": self.class_counts_.tolist(),
            "predictors": None
            if self.predictors_ is None
            else [predictor.to_state() for predictor in self.predictors_],
            "selected": list(self.selected_),
            "auc": self.auc_,
            "useful": self.useful,
            "updatesSinceRetrain": self.updates_since_retrain_,
            "scoreDistribution": {
                "bins": occupied.tolist(),
                "negatives": self.score_counts_[0, occupied].tolist(),
                "positives": self.score_counts_[1, occupied].tolist(),
            },
            "pendingRows": [
                {"features": dict(row["features"]), "outcome": row["outcome"]}
                for row in self.pending_rows_
            ],
        }

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Restore :meth:`state`'s output; an empty mapping restores the untrained engine.

        Raises
        ------
        ValueError
            The state is not one this engine wrote.
        """
        self._reset()
        if not state:
            return self
        try:
            self._restore(state)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            self._reset()
            raise ValueError(f"invalid Bayesian model state: {error}") from error
        return self

    def _restore(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported version {state.get('version')!r}")
        class_counts = np.asarray(state["classCounts"], dtype=np.int64)
        if class_counts.shape != (2,) or (class_counts < 0).any():
            raise ValueError("classCounts must be two non-negative counts")
        raw_predictors = state["predictors"]
        predictors = (
            None if raw_predictors is None else [Predictor.from_state(p) for p in raw_predictors]
        )
        known = {predictor.field for predictor in predictors or []}
        selected = [str(name) for name in state["selected"]]
        if not set(selected) <= known:
            raise ValueError(f"selected predictors {sorted(set(selected) - known)} are unknown")
        distribution = state["scoreDistribution"]
        score_counts = np.zeros((2, LOG_ODDS_BINS), dtype=np.int64)
        occupied = np.asarray(distribution["bins"], dtype=np.int64)
        score_counts[0, occupied] = distribution["negatives"]
        score_counts[1, occupied] = distribution["positives"]
        pending = [
            {"features": dict(row["features"]), "outcome": int(row["outcome"])}
            for row in state["pendingRows"]
        ]
        self.class_counts_ = class_counts
        self.predictors_ = predictors
        self.selected_ = selected
        self.auc_ = None if state["auc"] is None else float(state["auc"])
        self.score_counts_ = score_counts
        self.updates_since_retrain_ = int(state["updatesSinceRetrain"])
        self.pending_rows_ = pending
