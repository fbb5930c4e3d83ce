"""Column plan and FeaturePreparer: which columns feed a model and how raw values become inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.training.features import (
    MISSING,
    OTHER,
    ColumnPlan,
    FeaturePreparer,
    describe_plan,
    plan_column,
    plan_features,
    plan_to_dicts,
    to_booleans,
    to_numbers,
)
from tests.training.tables import telco_churn


def roles(frame: pd.DataFrame, target: str = "y") -> dict[str, str]:
    return {column.name: column.role for column in plan_features(frame, exclude=(target,))}


def test_telco_columns_get_the_roles_a_careful_analyst_would_give() -> None:
    plan = {column.name: column for column in plan_features(telco_churn(), exclude=("Churn",))}

    assert plan["customerID"].role == "dropped"
    assert "identifier" in (plan["customerID"].reason or "")
    assert plan["TotalCharges"].role == "numeric"  # numeric strings with blanks
    assert plan["MonthlyCharges"].role == "numeric"
    assert plan["Partner"].role == "boolean"
    assert plan["Contract"].role == "categorical"
    assert "Churn" not in plan


@pytest.mark.parametrize(
    ("values", "role", "reason"),
    [
        ([None] * 30, "dropped", "all values missing"),
        (["  "] * 15 + [None] * 15, "dropped", "all values missing"),
        (["same"] * 30, "dropped", "constant"),
        ([f"comment number {i % 10} in free text" for i in range(30)], "dropped", "free text"),
        ([f"ID-{i:04d}" for i in range(30)], "dropped", "identifier (a distinct value per row)"),
        (list(range(30)), "dropped", "identifier (a distinct value per row)"),
        (["2026-01-03", "2026-02-11 10:00:00", "2026-03-01"] * 10, "datetime", None),
        (["yes", "No", "YES", None] * 8, "boolean", None),
        ([" 1234.5", " ", "17", "3.25"] * 8, "numeric", None),
        (["gold", "silver", "bronze"] * 10, "categorical", None),
    ],
)
def test_plan_column(values: list[object], role: str, reason: str | None) -> None:
    plan = plan_column(pd.Series(values, name="column"))

    assert plan.role == role
    assert plan.reason == reason
    assert plan.used is (role != "dropped")


def test_unsorted_distinct_integers_are_a_feature_not_an_identifier() -> None:
    values = np.random.default_rng(0).permutation(1000)[:40]

    assert plan_column(pd.Series(values, name="income")).role == "numeric"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            ["29.85", " 1889.5 ", " ", "", None, "1,234", "n/a"],
            [29.85, 1889.5, np.nan, np.nan, np.nan, 1234.0, np.nan],
        ),
        ([1, 2, 3], [1.0, 2.0, 3.0]),
        ([True, False], [1.0, 0.0]),
    ],
)
def test_to_numbers(raw: list[object], expected: list[float]) -> None:
    result = to_numbers(pd.Series(raw))

    assert result.dtype == "float64"
    np.testing.assert_array_equal(result.to_numpy(), np.asarray(expected, dtype="float64"))


def test_to_booleans_maps_tokens_and_leaves_the_rest_missing() -> None:
    result = to_booleans(pd.Series(["Yes", " no ", "TRUE", "f", "maybe", None]))

    np.testing.assert_array_equal(result.to_numpy(), [1.0, 0.0, 1.0, 0.0, np.nan, np.nan])


def fitted_preparer(frame: pd.DataFrame, target: str = "y") -> FeaturePreparer:
    plan = plan_features(frame, exclude=(target,))
    return FeaturePreparer(plan_to_dicts(plan)).fit(frame.drop(columns=[target]))


def test_preparer_keeps_frequent_categories_and_folds_the_rest() -> None:
    frame = pd.DataFrame(
        {
            "plan": ["basic"] * 10 + ["pro"] * 8 + ["rare"] + [None],
            "amount": np.arange(20, dtype=float),
            "y": [0, 1] * 10,
        }
    )
    preparer = fitted_preparer(frame)

    assert preparer.categories_ == {"plan": ["basic", "pro"]}
    rows = pd.DataFrame({"plan": ["pro", "rare", "never seen", None, "  "], "amount": [1.0] * 5})
    prepared = preparer.transform(rows)
    assert prepared["plan"].tolist() == ["pro", OTHER, OTHER, MISSING, MISSING]
    assert preparer.numeric_columns_ == ["amount"]
    assert preparer.categorical_columns_ == ["plan"]


def test_preparer_coerces_numeric_strings_booleans_and_dates() -> None:
    frame = pd.DataFrame(
        {
            "charges": ["10.5", " ", "7", "3.25"] * 6,
            "partner": ["Yes", "No", "No", "Yes"] * 6,
            "joined": ["2024-01-31 08:00", "2025-06-15 17:30", "2023-12-01", "2024-02-29"] * 6,
            "y": ["a", "b"] * 12,
        }
    )
    preparer = fitted_preparer(frame)

    prepared = preparer.transform(frame.head(2))
    assert list(prepared.columns) == [
        "charges",
        "partner",
        "joined__year",
        "joined__month",
        "joined__day",
        "joined__dayofweek",
        "joined__hour",
    ]
    assert prepared["charges"].tolist()[0] == 10.5 and np.isnan(prepared["charges"].iloc[1])
    assert prepared["partner"].tolist() == [1.0, 0.0]
    assert prepared.iloc[0, 2:].tolist() == [2024.0, 1.0, 31.0, 2.0, 8.0]
    assert all(prepared[column].dtype == "float64" for column in prepared.columns)


def test_preparer_names_missing_input_columns() -> None:
    preparer = fitted_preparer(telco_churn(60).drop(columns=["customerID"]), target="Churn")

    with pytest.raises(KeyError) as caught:
        preparer.transform(pd.DataFrame({"tenure": [1]}))

    missing = caught.value.args[0]
    assert "Contract" in missing and "tenure" not in missing


def test_preparer_ignores_dropped_and_extra_columns() -> None:
    frame = telco_churn(60)
    preparer = fitted_preparer(frame, target="Churn")

    rows = frame.drop(columns=["customerID", "Churn"]).assign(unrelated=1)
    prepared = preparer.transform(rows)
    assert "customerID" not in prepared and "unrelated" not in prepared


def test_describe_plan_reports_used_columns_by_role_and_dropped_ones_with_reasons() -> None:
    plan = (
        ColumnPlan("a", "numeric", "numeric"),
        ColumnPlan("b", "categorical", "categorical"),
        ColumnPlan("c", "categorical", "dropped", "constant"),
    )

    assert describe_plan(plan) == {
        "used": {"numeric": ["a"], "categorical": ["b"]},
        "dropped": {"c": "constant"},
    }
