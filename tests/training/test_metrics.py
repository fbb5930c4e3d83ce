"""Metrics with the seed's keys, checked against hand-computed values; never NaN or infinite."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlworker.training.metrics import binary_curves, classification_metrics, regression_metrics

# Four rows, two classes: predictions 0, 1, 0, 1 against truth 0, 1, 1, 1.
TRUTH = np.array([0, 1, 1, 1])
PROBA = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])


def finite(values: dict[str, float]) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) for v in values.values())


def test_binary_metrics_match_hand_computed_values() -> None:
    metrics = classification_metrics(TRUTH, PROBA)

    # Class 0: precision 1/2, recall 1/1, f1 2/3. Class 1: precision 2/2, recall 2/3, f1 4/5.
    # Weighted by support (1 and 3 rows).
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["precision"] == pytest.approx((0.5 * 1 + 1.0 * 3) / 4)
    assert metrics["recall"] == pytest.approx((1.0 * 1 + (2 / 3) * 3) / 4)
    assert metrics["f1_score"] == pytest.approx(((2 / 3) * 1 + 0.8 * 3) / 4)
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert metrics["balanced_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)
    # Every positive scores above the one negative.
    assert metrics["roc_auc"] == pytest.approx(1.0)
    expected_log_loss = -np.mean(np.log([0.9, 0.8, 0.4, 0.7]))
    assert metrics["log_loss"] == pytest.approx(expected_log_loss)
    assert finite(metrics)


def test_multiclass_auc_is_the_one_vs_rest_macro_average() -> None:
    truth = np.array([0, 1, 2, 2, 1, 0])
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.1, 0.6, 0.3],
            [0.2, 0.2, 0.6],
            [0.3, 0.3, 0.4],
            [0.5, 0.4, 0.1],
            [0.4, 0.5, 0.1],
        ]
    )
    metrics = classification_metrics(truth, proba)

    aucs = []
    for k in range(3):
        positives = proba[truth == k, k]
        negatives = proba[truth != k, k]
        pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
        aucs.append(np.mean(pairs))
    assert metrics["roc_auc"] == pytest.approx(np.mean(aucs))
    assert metrics["accuracy"] == pytest.approx(4 / 6)


def test_undefined_auc_is_left_out_and_certain_mistakes_stay_finite() -> None:
    truth = np.array([1, 1, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # two certain mistakes

    metrics = classification_metrics(truth, proba)

    assert "roc_auc" not in metrics
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["log_loss"] == pytest.approx(2 * -math.log(1e-15) / 3)
    assert finite(metrics)


def test_auc_left_out_when_a_class_is_absent_from_the_test_rows() -> None:
    truth = np.array([0, 1, 1, 0])
    proba = np.full((4, 3), 1 / 3)

    assert "roc_auc" not in classification_metrics(truth, proba)


def test_regression_metrics_match_hand_computed_values() -> None:
    truth = np.array([3.0, -0.5, 2.0, 7.0])
    predicted = np.array([2.5, 0.0, 2.0, 8.0])

    metrics = regression_metrics(truth, predicted)

    mse = (0.25 + 0.25 + 0.0 + 1.0) / 4
    assert metrics["mse"] == pytest.approx(mse)
    assert metrics["rmse"] == pytest.approx(math.sqrt(mse))
    assert metrics["mae"] == pytest.approx(0.5)
    total = np.sum((truth - truth.mean()) ** 2)
    assert metrics["r2_score"] == pytest.approx(1 - 4 * mse / total)


def test_r2_left_out_for_a_single_row() -> None:
    metrics = regression_metrics(np.array([1.0]), np.array([2.0]))

    assert set(metrics) == {"mse", "rmse", "mae"}
    assert finite(metrics)


def test_binary_curves_are_thinned_finite_and_start_and_end_where_they_should() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 5000)
    scores = np.clip(truth * 0.3 + rng.random(5000) * 0.7, 0, 1)

    curves = binary_curves(truth, scores)

    roc = curves["roc_curve"]
    assert 2 <= len(roc["fpr"]) <= 200
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"])
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    for curve in ("roc_curve", "pr_curve"):
        for values in curves[curve].values():
            assert np.all(np.isfinite(values)), curve
    pr = curves["pr_curve"]
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"]) <= 200
    assert 0 < pr["average_precision"] <= 1
    calibration = curves["calibration"]
    assert len(calibration["prob_pred"]) == len(calibration["prob_true"]) <= 10
    expected_brier = np.mean((scores - truth) ** 2)
    assert calibration["brier_score"] == pytest.approx(expected_brier)


def test_binary_curves_need_both_classes() -> None:
    assert binary_curves(np.array([1, 1, 1]), np.array([0.2, 0.5, 0.9])) == {}
