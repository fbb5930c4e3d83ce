"""Metrics with the seed clients' keys, and the curves an evaluation report draws.

Classification: ``accuracy``, weighted ``precision``/``recall``/``f1_score`` (the seed's keys),
``f1_macro``, ``balanced_accuracy``, ``roc_auc`` (binary, or one-vs-rest macro average) and
``log_loss``. Regression: ``mse``, ``rmse``, ``mae``, ``r2_score``. A metric that is undefined
for the data (ROC AUC with one class present) is omitted rather than reported as NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

_CURVE_POINTS = 200


def classification_metrics(codes: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Score class probabilities ``proba`` (n × k) against true class codes.

    Examples
    --------
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> m = classification_metrics(np.array([0, 1, 1, 1]), proba)
    >>> m["accuracy"], m["roc_auc"]
    (0.75, 1.0)
    """
    predicted = proba.argmax(axis=1)
    labels = np.arange(proba.shape[1])
    result = {
        "accuracy": skm.accuracy_score(codes, predicted),
        "precision": skm.precision_score(
            codes, predicted, labels=labels, average="weighted", zero_division=0
        ),
        "recall": skm.recall_score(
            codes, predicted, labels=labels, average="weighted", zero_division=0
        ),
        "f1_score": skm.f1_score(
            codes, predicted, labels=labels, average="weighted", zero_division=0
        ),
        "f1_macro": skm.f1_score(codes, predicted, labels=labels, average="macro", zero_division=0),
        "balanced_accuracy": skm.balanced_accuracy_score(codes, predicted),
        "log_loss": skm.log_loss(codes, np.clip(proba, 1e-15, 1.0), labels=labels),
    }
    present = np.unique(codes)
    if len(present) >= 2:
        if proba.shape[1] == 2:
            result["roc_auc"] = skm.roc_auc_score(codes, proba[:, 1])
        elif len(present) == proba.shape[1]:
            result["roc_auc"] = skm.roc_auc_score(
                codes, proba, multi_class="ovr", average="macro", labels=labels
            )
    return {name: float(value) for name, value in result.items() if math.isfinite(float(value))}


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Score predictions against the truth.

    Examples
    --------
    >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))["mae"]
    0.3333333333333333
    """
    mse = skm.mean_squared_error(truth, predicted)
    result = {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": skm.mean_absolute_error(truth, predicted),
        "r2_score": skm.r2_score(truth, predicted) if len(truth) >= 2 else math.nan,
    }
    return {name: float(value) for name, value in result.items() if math.isfinite(float(value))}


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    """Keep at most ``_CURVE_POINTS`` evenly spaced points (always the first and last)."""
    size = len(arrays[0])
    if size > _CURVE_POINTS:
        index = np.unique(np.linspace(0, size - 1, _CURVE_POINTS).round().astype(int))
        arrays = tuple(array[index] for array in arrays)
    return [[float(v) if math.isfinite(float(v)) else 1.0 for v in array] for array in arrays]


def binary_curves(codes: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    """ROC and precision-recall curves and a reliability diagram for a binary classifier."""
    if len(np.unique(codes)) < 2:
        return {}
    fpr, tpr, roc_thresholds = skm.roc_curve(codes, positive)
    precision, recall, pr_thresholds = skm.precision_recall_curve(codes, positive)
    roc = _thin(fpr, tpr, roc_thresholds)
    pr = _thin(precision[:-1], recall[:-1], pr_thresholds)
    prob_true, prob_pred = calibration_curve(codes, positive, n_bins=10, strategy="quantile")
    return {
        "roc_curve": {"fpr": roc[0], "tpr": roc[1], "thresholds": roc[2]},
        "pr_curve": {
            "precision": pr[0],
            "recall": pr[1],
            "thresholds": pr[2],
            "average_precision": float(skm.average_precision_score(codes, positive)),
        },
        "calibration": {
            "prob_pred": [float(v) for v in prob_pred],
            "prob_true": [float(v) for v in prob_true],
            "brier_score": float(skm.brier_score_loss(codes, positive)),
        },
    }
