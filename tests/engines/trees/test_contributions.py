"""Saabas path contributions: they add up to the margin and agree with TreeSHAP where clear."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from mlworker.engines.gradient_boosted import GradientBoostedConfig, train_booster
from mlworker.engines.trees import (
    Ensemble,
    FeatureEncoder,
    FlatEnsemble,
    contribution_details,
    export_booster,
    path_contributions,
    predict,
)
from mlworker.engines.trees.walker import naive_contributions
from tests.engines.trees.conftest import Model


def test_bias_plus_contributions_is_the_raw_margin(model: Model) -> None:
    bias, contributions = path_contributions(model.flat, model.holdout)
    margins = predict(model.flat, model.holdout, raw_margin=True)
    np.testing.assert_allclose(bias + contributions.sum(axis=1), margins, rtol=0, atol=1e-9)


def test_compiled_contributions_equal_the_reference(model: Model) -> None:
    _, contributions = path_contributions(model.flat, model.holdout[:100])
    for row, compiled in zip(model.holdout[:100], contributions, strict=True):
        bias, reference = naive_contributions(model.ensemble, row)
        assert bias == model.flat.bias()
        np.testing.assert_allclose(compiled, reference, rtol=0, atol=1e-12)


def test_planted_features_rank_and_sign_like_treeshap() -> None:
    rng = np.random.default_rng(11)
    rows = 6000
    matrix = rng.normal(size=(rows, 4))
    # Strong positive x0, weaker negative x1, x2 and x3 pure noise.
    margin = 2.0 * matrix[:, 0] - 0.8 * matrix[:, 1]
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(np.float64)
    encoder = FeatureEncoder(("strong", "weak", "noise1", "noise2"), {})
    booster = train_booster(matrix, outcomes, [], GradientBoostedConfig())
    flat = FlatEnsemble.from_ensemble(Ensemble.from_json(export_booster(booster, encoder)))

    held_out = rng.normal(size=(2000, 4))
    _, saabas = path_contributions(flat, held_out)
    shap = booster.predict(held_out, pred_contrib=True)[:, :4]

    importance = np.abs(saabas).mean(axis=0)
    shap_importance = np.abs(shap).mean(axis=0)
    assert np.argsort(-importance)[:2].tolist() == [0, 1]
    assert np.argsort(-shap_importance)[:2].tolist() == [0, 1]
    assert importance[0] > 3 * importance[2:].max()
    # The planted directions: contributions follow the feature's sign, as TreeSHAP's do.
    assert spearmanr(held_out[:, 0], saabas[:, 0]).statistic > 0.9
    assert spearmanr(held_out[:, 1], saabas[:, 1]).statistic < -0.8
    agree = np.mean(np.sign(saabas[:, 0]) == np.sign(shap[:, 0]))
    assert agree > 0.9


def test_details_are_sorted_by_magnitude_without_unused_features() -> None:
    details = contribution_details(np.array([0.2, 0.0, -0.5, 0.2, 1e-3]), list("abcde"))
    assert [detail["field"] for detail in details] == ["c", "a", "d", "e"]
    assert details[0] == {"field": "c", "contribution": -0.5}
    assert all(isinstance(detail["contribution"], float) for detail in details)
    assert contribution_details(np.zeros(3), list("abc")) == []
