"""The evaluation report of a trained model on its held-out rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlworker.training.algorithms import Task
from mlworker.training.importance import feature_importance
from mlworker.training.metrics import binary_curves, classification_metrics, regression_metrics
from mlworker.training.model import TrainedModel


def score(model: TrainedModel, frame: pd.DataFrame, truth: np.ndarray) -> dict[str, float]:
    """Metrics of ``model`` on raw rows ``frame`` against encoded ``truth``."""
    predicted, proba = model.predict_codes(frame)
    if model.task is Task.REGRESSION:
        return regression_metrics(truth, predicted)
    assert proba is not None
    return classification_metrics(truth, proba)


def primary_score(model: TrainedModel, prepared: pd.DataFrame, truth: np.ndarray) -> float:
    """One number from prepared rows, higher is better: accuracy (classification) or R²."""
    # Plain numpy: this runs once per column and repeat in permutation importance.
    predicted, _ = model.predict_prepared(prepared)
    if model.task is Task.REGRESSION:
        residual = float(np.sum((truth - predicted) ** 2))
        total = float(np.sum((truth - truth.mean()) ** 2))
        return 1.0 - residual / total if total > 0 else -residual
    return float(np.mean(predicted == truth))


def evaluate(
    model: TrainedModel, holdout: pd.DataFrame, *, random_state: int = 0
) -> dict[str, Any]:
    """Metrics, confusion matrix, report, importances and curves on the held-out rows."""
    truth = model.target.encode(holdout[model.target.name])
    features = holdout.drop(columns=[model.target.name])
    predicted, proba = model.predict_codes(features)
    importance, method = feature_importance(
        model, features, truth, primary_score, random_state=random_state
    )
    report: dict[str, Any] = {
        "n_test": len(holdout),
        "feature_importance": importance,
        "importance_method": method,
    }
    if model.task is Task.REGRESSION:
        report["metrics"] = regression_metrics(truth, predicted)
        residuals = truth - predicted
        report["residuals"] = {
            "mean": float(np.mean(residuals)),
            "std": float(np.std(residuals)),
            "quantiles": {
                str(q): float(np.quantile(residuals, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)
            },
        }
        return report
    assert proba is not None and model.target.classes is not None
    labels = list(range(len(model.target.classes)))
    names = [str(label) for label in model.target.classes]
    report["metrics"] = classification_metrics(truth, proba)
    report["labels"] = list(model.target.classes)
    report["confusion_matrix"] = skm.confusion_matrix(truth, predicted, labels=labels).tolist()
    report["classification_report"] = skm.classification_report(
        truth, predicted, labels=labels, target_names=names, zero_division=0
    )
    report["classification_report_dict"] = skm.classification_report(
        truth, predicted, labels=labels, target_names=names, zero_division=0, output_dict=True
    )
    if proba.shape[1] == 2:
        report.update(binary_curves(truth, proba[:, 1]))
    return report
