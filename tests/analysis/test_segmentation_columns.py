from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.analysis.segmentation.columns import (
    CategoricalColumn,
    ExcludedColumn,
    NumericColumn,
    classify_column,
    humanize,
    select_columns,
)
from mlworker.errors import NoUsableColumns, UnknownColumn

ROWS = 400
rng = np.random.default_rng(0)


def _classify(name: str, values: object) -> NumericColumn | CategoricalColumn | ExcludedColumn:
    return classify_column(name, pd.Series(values), random_state=0)


def _reason(name: str, values: object) -> str:
    outcome = _classify(name, values)
    assert isinstance(outcome, ExcludedColumn), outcome
    return outcome.reason


def test_numbers_numeric_strings_and_booleans_are_numeric() -> None:
    numbers = _classify("income", rng.normal(50_000, 9_000, ROWS))
    strings = _classify("spend", [f"{v:.2f}" for v in rng.uniform(0, 100, ROWS)] + [" "])
    flags = _classify("active", rng.random(ROWS) < 0.3)
    yes_no = _classify("churned", pd.Series(["Yes", "No", None] * 50, dtype="category"))
    assert isinstance(numbers, NumericColumn)
    assert isinstance(strings, NumericColumn)
    assert np.isnan(strings.values[-1]) and strings.values[:-1].min() >= 0
    assert isinstance(flags, NumericColumn) and set(np.unique(flags.values)) == {0.0, 1.0}
    assert isinstance(yes_no, NumericColumn)
    assert yes_no.values[:3].tolist()[:2] == [1.0, 0.0] and np.isnan(yes_no.values[2])


@pytest.mark.parametrize("dtype", [object, "string", "category"])
def test_strings_of_any_dtype_are_categorical(dtype: object) -> None:
    values = pd.Series(rng.choice(["Gold", "Silver", "Bronze", None, ""], ROWS), dtype=dtype)
    outcome = _classify("tier", values)
    assert isinstance(outcome, CategoricalColumn)
    used = {outcome.levels[code] for code in outcome.codes if code >= 0}
    assert used == {"Gold", "Silver", "Bronze"}  # blanks count as missing
    assert (outcome.codes == -1).sum() == values.isna().sum() + (values == "").sum()


def test_exclusion_reasons() -> None:
    assert _reason("customer_id", np.arange(ROWS)) == "identifier-like name"
    assert _reason("orderUuid", [f"u{i}" for i in range(ROWS)]) == "identifier-like name"
    assert _reason("row", np.arange(ROWS) * 3 + 7).startswith("identifier-like")
    assert _reason("code", [f"C{i:05d}" for i in range(ROWS)]).startswith("identifier-like")
    assert _reason("country", ["NL"] * ROWS) == "constant"
    assert _reason("score", [3.5] * ROWS) == "constant"
    assert _reason("referrer", [None] * ROWS) == "all missing"
    assert _reason("empty", np.full(ROWS, np.nan)) == "all missing"
    assert _reason("signup", pd.date_range("2024-01-01", periods=ROWS, tz="UTC")) == "datetime"
    iso = pd.date_range("2024-01-01", periods=ROWS).strftime("%Y-%m-%d")
    assert _reason("signup_day", list(iso)) == "datetime"
    review = [f"the delivery was late again order {i} and support was slow" for i in range(ROWS)]
    assert _reason("review", review) == "free text"


def test_integer_measurements_are_not_identifiers() -> None:
    incomes = rng.permutation(np.arange(20_000, 20_000 + 97 * ROWS, 97))
    assert isinstance(_classify("income", incomes), NumericColumn)


def test_select_columns_reports_exclusions_and_keeps_order() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(ROWS),
            "income": rng.normal(size=ROWS),
            "tier": rng.choice(["a", "b"], ROWS),
            "country": "NL",
            "age": rng.normal(size=ROWS),
        }
    )
    selection = select_columns(frame, None, "customer_id", random_state=0)
    assert [c.name for c in selection.numeric] == ["income", "age"]
    assert [c.name for c in selection.categorical] == ["tier"]
    assert [(e.column, e.reason.split(":")[0]) for e in selection.excluded] == [
        ("customer_id", "idColumn"),
        ("country", "constant"),
    ]
    only = select_columns(frame, ["age", "customer_id"], "customer_id", random_state=0)
    assert [c.name for c in only.numeric] == ["age"]
    assert only.excluded[0].column == "customer_id"


def test_unknown_field_and_id_column() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    with pytest.raises(UnknownColumn) as unknown_field:
        select_columns(frame, ["a", "nope"], None, random_state=0)
    assert unknown_field.value.field == "config.fields.1"
    assert unknown_field.value.extra["column"] == "nope"
    with pytest.raises(UnknownColumn) as unknown_id:
        select_columns(frame, None, "missing_id", random_state=0)
    assert unknown_id.value.field == "config.idColumn"


def test_nothing_usable() -> None:
    frame = pd.DataFrame({"id": np.arange(50), "country": "NL", "empty": np.nan})
    with pytest.raises(NoUsableColumns, match="country: constant") as error:
        select_columns(frame, None, None, random_state=0)
    assert error.value.field == "config.fields"


def test_humanize() -> None:
    assert humanize("purchase_frequency") == "purchase frequency"
    assert humanize("avgBasketSize") == "avg basket size"
    assert humanize("customerLTV") == "customer LTV"
