"""Tables for the training-core and model API tests: bundled datasets and a Telco-style churn."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris


def telco_churn(rows: int = 400, random_state: int = 0) -> pd.DataFrame:
    """A Telco-style churn table with a planted signal.

    ``customerID`` is a distinct string per row; ``TotalCharges`` holds numbers as strings, blank
    (``" "``) for new customers; ``Partner`` and the target ``Churn`` are ``Yes``/``No``. Churn is
    driven by the contract type, tenure and fibre internet, with seeded noise, so a model that
    learns anything beats the majority-class rate clearly.
    """
    rng = np.random.default_rng(random_state)
    tenure = rng.integers(0, 72, rows)
    monthly = rng.uniform(18.0, 120.0, rows).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.5, 0.3, 0.2])
    internet = rng.choice(["DSL", "Fiber optic", "No"], rows)
    total = (tenure * monthly).round(2).astype(str).astype(object)
    total[tenure == 0] = " "
    logit = (
        0.4
        + 2.5 * (contract == "Month-to-month")
        - 0.06 * tenure
        + 1.0 * (internet == "Fiber optic")
        + rng.normal(0.0, 0.5, rows)
    )
    return pd.DataFrame(
        {
            "customerID": [f"{rng.integers(1000, 9999)}-{index:05d}" for index in range(rows)],
            "gender": rng.choice(["Male", "Female"], rows),
            "SeniorCitizen": rng.integers(0, 2, rows),
            "Partner": rng.choice(["Yes", "No"], rows),
            "tenure": tenure,
            "InternetService": internet,
            "Contract": contract,
            "PaymentMethod": rng.choice(
                ["Electronic check", "Mailed check", "Bank transfer", "Credit card"], rows
            ),
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "Churn": np.where(logit > 0, "Yes", "No"),
        }
    )


@cache
def _bundled(name: str) -> pd.DataFrame:
    loader = {"breast_cancer": load_breast_cancer, "iris": load_iris, "diabetes": load_diabetes}
    frame: pd.DataFrame = loader[name](as_frame=True).frame
    return frame


def bundled(name: str) -> pd.DataFrame:
    """A copy of one of scikit-learn's bundled datasets, target column ``target``."""
    return _bundled(name).copy()


def quick_params(algorithm: object) -> dict[str, int]:
    """Few trees or boosting rounds, so every algorithm trains in well under a second."""
    from mlworker.training.algorithms import Algorithm

    assert isinstance(algorithm, Algorithm)
    if algorithm.name.startswith("HistGradientBoosting"):
        return {"max_iter": 60}
    if algorithm.name.startswith("XGB"):
        return {"n_estimators": 30, "max_depth": 3}  # depth 6 overfits diabetes' 350 rows
    if "n_estimators" in algorithm.estimator_class()().get_params():
        return {"n_estimators": 30}
    return {}
