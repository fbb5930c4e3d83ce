"""Configuration of the Bayesian engine: the seed's table plus two documented additions."""

from __future__ import annotations

from pydantic import Field

from mlworker.engines._base import EngineConfig


class BayesianConfig(EngineConfig):
    """Settings of the naive Bayes engine (seed 003, "Bayesian (Naive Bayes)").

    The first five fields, their camelCase names and defaults are the seed's table. Two are
    additions, each named where the seed names the behaviour:

    * ``retrainEveryN`` (100) is the seed's ``RETRAIN_EVERY_N``: after that many incremental
      outcomes the bins are regrouped and the predictors reselected from the stored counts.
    * ``binMergeAlpha`` (0.05) is the significance level of the test that keeps two adjacent bins
      apart; bins whose positive rates do not differ at this level are merged. ``1`` disables
      merging.

    Parameters
    ----------
    laplace_smoothing_alpha
        ``laplaceSmoothingAlpha``: pseudo-count added to every bin of every predictor.
    auc_threshold
        ``aucThreshold``: the model is reported ``useful`` when its AUC reaches this value.
    max_predictors
        ``maxPredictors``: at most this many predictors, the best by univariate AUC, score.
    bin_count
        ``binCount``: quantile bins per numeric predictor before merging.
    prior_positive_rate
        ``priorPositiveRate``: the untrained score, and the mean of the Beta prior on the
        positive rate.
    retrain_every_n
        ``retrainEveryN``: incremental outcomes between two regroupings and reselections.
    bin_merge_alpha
        ``binMergeAlpha``: significance level below which adjacent bins stay apart.

    Examples
    --------
    >>> BayesianConfig.model_validate({"binCount": 5}).model_dump(by_alias=True)["binCount"]
    5
    """

    laplace_smoothing_alpha: float = Field(default=1.0, gt=0)
    auc_threshold: float = Field(default=0.5, ge=0, le=1)
    max_predictors: int = Field(default=20, ge=1, le=1000)
    bin_count: int = Field(default=10, ge=1, le=1000)
    prior_positive_rate: float = Field(default=0.5, gt=0, lt=1)
    retrain_every_n: int = Field(default=100, ge=1)
    bin_merge_alpha: float = Field(default=0.05, gt=0, le=1)
