"""The dataset spec: one of four forms, structured filters, nothing else accepted."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from mlworker.data.spec import (
    MAX_FILTER_VALUES,
    MAX_LIMIT,
    DatasetSpec,
    Filter,
    PathDataset,
    RowsDataset,
    TableDataset,
    UploadedDataset,
    spec_kind,
)

SPEC: TypeAdapter[Any] = TypeAdapter(DatasetSpec)


def _errors(value: object) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        SPEC.validate_python(value)
    return caught.value.errors()


@pytest.mark.parametrize(
    ("value", "model", "kind"),
    [
        ({"path": "a.csv"}, PathDataset, "path"),
        ({"path": "a.tsv", "format": "tsv", "columns": ["x"]}, PathDataset, "path"),
        ({"table": "ds_customers"}, TableDataset, "table"),
        ({"rows": [{"a": 1}]}, RowsDataset, "rows"),
        ({"datasetId": "ds-0123456789ab"}, UploadedDataset, "upload"),
        ({"dataset_id": "ds-0123456789ab"}, UploadedDataset, "upload"),
    ],
)
def test_each_form_is_recognised(value: dict[str, Any], model: type, kind: str) -> None:
    spec = SPEC.validate_python(value)
    assert type(spec) is model
    assert spec_kind(spec) == kind


def test_both_spellings_of_dataset_id() -> None:
    camel = SPEC.validate_python({"datasetId": "ds-0123456789ab"})
    snake = SPEC.validate_python({"dataset_id": "ds-0123456789ab"})
    assert camel == snake
    assert camel.dataset_id == "ds-0123456789ab"
    assert camel.model_dump(by_alias=True)["datasetId"] == "ds-0123456789ab"


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"path": "a.csv", "table": "t"},
        {"path": "a.csv", "rows": [{"a": 1}]},
        {"table": "t", "datasetId": "ds-1"},
        {"columns": ["a"]},
        "a.csv",
        None,
        ["a.csv"],
    ],
)
def test_exactly_one_form_is_required(value: object) -> None:
    errors = _errors(value)
    assert errors[0]["type"] == "dataset_spec"
    assert "exactly one of" in errors[0]["msg"]


@pytest.mark.parametrize(
    "value",
    [
        {"path": "a.csv", "bogus": 1},
        {"table": "t", "sql": "select 1"},
        {"table": "t", "where": "1=1"},
        {"rows": [{"a": 1}], "extra": True},
        {"datasetId": "ds-1", "path": "a.csv"},
        {"table": "t", "filters": [{"column": "a", "op": "eq", "value": 1, "raw": "x"}]},
    ],
)
def test_extra_keys_are_rejected(value: dict[str, Any]) -> None:
    errors = _errors(value)
    assert errors[0]["type"] in {"extra_forbidden", "dataset_spec"}


def test_extra_key_error_names_the_key() -> None:
    errors = _errors({"path": "a.csv", "bogus": 1})
    assert errors[0]["type"] == "extra_forbidden"
    assert errors[0]["loc"][-1] == "bogus"


@pytest.mark.parametrize(
    ("op", "canonical"),
    [
        ("=", "eq"),
        ("==", "eq"),
        ("!=", "ne"),
        ("<>", "ne"),
        ("<", "lt"),
        ("<=", "le"),
        (">", "gt"),
        (">=", "ge"),
        ("ge", "ge"),
    ],
)
def test_operator_synonyms(op: str, canonical: str) -> None:
    assert Filter.model_validate({"column": "age", "op": op, "value": 18}).op == canonical


def test_list_and_null_operator_synonyms() -> None:
    assert Filter.model_validate({"column": "a", "op": "notIn", "value": [1]}).op == "not_in"
    assert Filter.model_validate({"column": "a", "op": "isNull"}).op == "is_null"
    assert Filter.model_validate({"column": "a", "op": "notNull"}).op == "not_null"
    assert Filter.model_validate({"column": "a", "value": "x"}).op == "eq"  # the default


@pytest.mark.parametrize(
    "condition",
    [
        {"column": "a", "op": "eq"},  # no value
        {"column": "a", "op": ">=", "value": [1, 2]},  # a list for a single value
        {"column": "a", "op": "in", "value": 1},  # a scalar for a list
        {"column": "a", "op": "in", "value": []},  # an empty list
        {"column": "a", "op": "not_in", "value": "x"},
        {"column": "a", "op": "between", "value": [1]},
        {"column": "a", "op": "between", "value": [1, 2, 3]},
        {"column": "a", "op": "between", "value": 1},
        {"column": "a", "op": "is_null", "value": 1},
        {"column": "a", "op": "not_null", "value": "x"},
        {"column": "a", "op": "like", "value": 3},
        {"column": "a", "op": "drop table", "value": 1},
        {"column": "a", "op": "eq", "value": {"nested": 1}},
        {"column": "", "op": "eq", "value": 1},
    ],
)
def test_value_operator_mismatch_is_rejected(condition: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Filter.model_validate(condition)
    errors = _errors({"table": "t", "filters": [condition]})
    assert "filters" in errors[0]["loc"]


def test_valid_filters() -> None:
    spec = SPEC.validate_python(
        {
            "table": "ds_customers",
            "schema": "platform",
            "columns": ["id", "age"],
            "filters": [
                {"column": "age", "op": ">=", "value": 18},
                {"column": "plan", "op": "in", "value": ["gold", "silver"]},
                {"column": "age", "op": "between", "value": [18, 65]},
                {"column": "email", "op": "not_null"},
                {"column": "name", "op": "like", "value": "A%"},
                {"column": "active", "value": True},
            ],
            "limit": 100,
        }
    )
    assert isinstance(spec, TableDataset)
    assert spec.schema_ == "platform"
    assert [f.op for f in spec.filters] == ["ge", "in", "between", "not_null", "like", "eq"]
    assert spec.filters[5].value is True  # a boolean stays a boolean, not 1
    assert spec.model_dump(by_alias=True)["schema"] == "platform"


@pytest.mark.parametrize(
    "value",
    [
        {"table": "t", "limit": 0},
        {"table": ""},
        {"path": ""},
        {"rows": []},
        {"rows": "not rows"},
        {"datasetId": ""},
    ],
)
def test_field_constraints(value: dict[str, Any]) -> None:
    _errors(value)


def test_specs_are_frozen() -> None:
    spec = SPEC.validate_python({"path": "a.csv"})
    with pytest.raises(ValidationError):
        spec.path = "b.csv"


def test_dump_and_validate_round_trip() -> None:
    # Job parameters are stored as JSON and validated again by the worker.
    original = SPEC.validate_python(
        {"table": "t", "filters": [{"column": "a", "op": "between", "value": [1, 2]}], "limit": 5}
    )
    assert SPEC.validate_python(original.model_dump(mode="json", by_alias=True)) == original
    upload = SPEC.validate_python({"datasetId": "ds-1", "columns": ["a"]})
    assert SPEC.validate_python(upload.model_dump(mode="json", by_alias=True)) == upload


# --- bounds (issue 10: values that used to fail inside the database) ------------------------------


@pytest.mark.parametrize("limit", [10**20, 1e20, MAX_LIMIT + 1])
def test_limit_is_bounded(limit: float) -> None:
    errors = _errors({"table": "t", "limit": limit})
    assert errors[0]["loc"][-1] == "limit"


def test_the_largest_limit_is_accepted() -> None:
    assert SPEC.validate_python({"table": "t", "limit": MAX_LIMIT}).limit == MAX_LIMIT


def test_filter_value_count_is_bounded_and_names_the_value() -> None:
    values = list(range(MAX_FILTER_VALUES + 1))
    errors = _errors({"table": "t", "filters": [{"column": "a", "op": "in", "value": values}]})
    assert [error["loc"][-3:] for error in errors] == [("filters", 0, "value")]
    many = SPEC.validate_python(
        {"table": "t", "filters": [{"column": "a", "op": "in", "value": values[:-1]}]}
    )
    assert len(many.filters[0].value) == MAX_FILTER_VALUES


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("op", ["eq", "in"])
def test_filter_numbers_are_finite(number: float, op: str) -> None:
    value: object = [1.0, number] if op == "in" else number
    errors = _errors({"table": "t", "filters": [{"column": "a", "op": op, "value": value}]})
    assert [error["loc"][-3:] for error in errors] == [("filters", 0, "value")]
