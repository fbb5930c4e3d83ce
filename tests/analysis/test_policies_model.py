from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.metrics import roc_auc_score

from mlworker.analysis.policies.model import Factor, ResponseModel, fit_response_model


def _data(rows: int = 4000, seed: int = 0) -> tuple[list[Factor], np.ndarray]:
    rng = np.random.default_rng(seed)
    band = rng.integers(0, 4, rows)
    channel = rng.choice(3, rows, p=[0.5, 0.3, 0.2])
    day = rng.integers(0, 7, rows)
    logit = -2.0 - 0.4 * band + np.array([0.0, 0.5, -0.3])[channel] + 0.05 * day
    responded = rng.random(rows) < 1 / (1 + np.exp(-logit))
    factors = [
        Factor("frequencyBand", band, ("1", "2-3", "4-5", "6+"), reference="first"),
        Factor("channel", channel, ("email", "sms", "push")),
        Factor("dayOfWeek", day, tuple("MTWTFSS"[i] + str(i) for i in range(7))),
    ]
    return factors, responded


def _row_design(factors: list[Factor], model: ResponseModel, rows: np.ndarray) -> np.ndarray:
    columns = []
    for coefficient in model.coefficients:
        if coefficient.term == "intercept":
            columns.append(np.ones(rows.sum()))
            continue
        name, label = coefficient.term[:-1].split("[", 1)
        factor = next(f for f in factors if f.name == name)
        columns.append((factor.codes[rows] == factor.labels.index(label)).astype(float))
    return np.column_stack(columns)


def test_grouped_fit_equals_the_row_level_logit() -> None:
    factors, responded = _data()
    model = fit_response_model(factors, responded, 0.95)
    largest_day = factors[2].labels[np.bincount(factors[2].codes).argmax()]
    assert model.references == {
        "frequencyBand": "1",
        "channel": "email",
        "dayOfWeek": largest_day,
    }
    assert model.n == responded.size and model.patterns <= 4 * 3 * 7
    every = np.ones(responded.size, dtype=bool)
    design = _row_design(factors, model, every)
    logit = sm.Logit(responded.astype(float), design).fit(disp=0, tol=1e-12, maxiter=100)
    np.testing.assert_allclose([c.coefficient for c in model.coefficients], logit.params, atol=1e-6)
    np.testing.assert_allclose([c.standard_error for c in model.coefficients], logit.bse, rtol=1e-6)
    np.testing.assert_allclose([c.p_value for c in model.coefficients], logit.pvalues, atol=1e-6)
    bounds = np.exp(logit.conf_int(alpha=0.05))
    np.testing.assert_allclose([c.low for c in model.coefficients], bounds[:, 0], rtol=1e-6)
    assert model.auc == pytest.approx(roc_auc_score(responded, logit.predict(design)), abs=1e-9)
    band_2_3 = next(c for c in model.coefficients if c.term == "frequencyBand[2-3]")
    assert band_2_3.odds_ratio == pytest.approx(np.exp(band_2_3.coefficient))
    assert band_2_3.odds_ratio < 1 and band_2_3.high < 1


def test_a_level_without_responses_is_left_out_and_reported() -> None:
    factors, responded = _data(seed=1)
    responded = responded & (factors[1].codes != 2)  # "push" never responds: separated
    model = fit_response_model(factors, responded, 0.95)
    assert not any("push" in c.term for c in model.coefficients)
    assert any("'push' left out (no responses)" in note for note in model.notes)
    rows = factors[1].codes != 2
    logit = sm.Logit(responded[rows].astype(float), _row_design(factors, model, rows)).fit(
        disp=0, tol=1e-12
    )
    np.testing.assert_allclose([c.coefficient for c in model.coefficients], logit.params, atol=1e-6)
    assert model.n == rows.sum()


def test_a_factor_duplicating_another_is_dropped_not_fatal() -> None:
    factors, responded = _data(seed=2)
    copy = Factor("device", factors[1].codes.copy(), ("d0", "d1", "d2"))
    model = fit_response_model([*factors, copy], responded, 0.95)
    assert not any(c.term.startswith("device") for c in model.coefficients)
    assert any("singular design" in note for note in model.notes)
    alone = fit_response_model(factors, responded, 0.95)
    np.testing.assert_allclose(
        [c.coefficient for c in model.coefficients],
        [c.coefficient for c in alone.coefficients],
        atol=1e-8,
    )


def test_no_responses_at_all_gives_an_empty_model() -> None:
    factors, responded = _data(rows=500, seed=3)
    model = fit_response_model(factors, np.zeros_like(responded), 0.95)
    assert model.coefficients == () and model.auc is None and model.notes
