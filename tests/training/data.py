"""Generated tables for the tuning tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification


def churn(rows: int = 400, random_state: int = 0) -> pd.DataFrame:
    """A churn-like table: an id, categoricals, numbers with blank strings, a Yes/No target."""
    rng = np.random.default_rng(random_state)
    tenure = rng.integers(0, 72, rows)
    monthly = rng.uniform(20, 120, rows).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["DSL", "Fiber optic", "No"], rows)
    score = (
        -0.05 * tenure
        + 0.02 * monthly
        + np.where(contract == "Month-to-month", 1.2, -0.8)
        + np.where(internet == "Fiber optic", 0.5, 0.0)
        + rng.normal(0, 0.8, rows)
    )
    total = (tenure * monthly).round(2).astype(str)
    total[rng.random(rows) < 0.03] = " "  # the blank strings real exports carry
    return pd.DataFrame(
        {
            "customerID": [f"{i:04d}-{rng.integers(1000, 9999)}" for i in range(rows)],
            "gender": rng.choice(["Female", "Male"], rows),
            "tenure": tenure,
            "Contract": contract,
            "InternetService": internet,
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "Churn": np.where(score > np.median(score) + 0.3, "Yes", "No"),
        }
    )


def classification(rows: int, features: int = 8, random_state: int = 0) -> pd.DataFrame:
    """A numeric binary table with target column ``y``."""
    X, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=min(features, 5),
        random_state=random_state,
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(features)])
    frame["y"] = y
    return frame
