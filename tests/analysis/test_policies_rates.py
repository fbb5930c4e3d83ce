from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from mlworker.analysis.policies.rates import holm_adjust, json_number, rate_rows


def test_rate_rows_match_statsmodels_wilson() -> None:
    contacts = np.array([10, 250, 4000, 7])
    responses = np.array([0, 31, 977, 7])
    rows = rate_rows(list("abcd"), contacts, responses, [0, 1, 2, 3], 0.9)
    low, high = proportion_confint(responses, contacts, alpha=0.1, method="wilson")
    np.testing.assert_allclose([r.low for r in rows], low, atol=1e-12)
    np.testing.assert_allclose([r.high for r in rows], high, atol=1e-12)
    assert [r.rate for r in rows] == pytest.approx(list(responses / contacts))
    assert rows[3].conversions == 3


def test_holm_matches_statsmodels() -> None:
    p_values = np.random.default_rng(3).uniform(0, 0.2, 17)
    expected = multipletests(p_values, method="holm")[1]
    np.testing.assert_allclose(holm_adjust(p_values), expected, atol=1e-12)
    assert holm_adjust([]).size == 0


def test_json_numbers_are_plain_and_finite() -> None:
    assert type(json_number(np.int64(3))) is float
    assert json_number(float("inf")) is None
    assert json_number(None) is None
