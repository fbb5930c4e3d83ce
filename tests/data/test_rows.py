"""Inline rows (``{"rows": [...]}``): values that cannot be stored are refused, naming the cell."""

from __future__ import annotations

from typing import Any

import pytest

from mlworker.data.budget import MemoryBudget
from mlworker.data.sources import RowsSource
from mlworker.data.spec import RowsDataset
from mlworker.errors import InvalidInput


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"name": "caf\ud800"}, "dataset.rows.1.name"),
        ({"name": "\udfff"}, "dataset.rows.1.name"),
        ({"score": float("inf")}, "dataset.rows.1.score"),
        ({"score": float("nan")}, "dataset.rows.1.score"),
        ({"nested": {"a": 1}}, "dataset.rows.1.nested"),
    ],
)
def test_invalid_cells_are_refused_naming_the_cell(row: dict[str, Any], field: str) -> None:
    spec = RowsDataset(rows=({"name": "ok", "score": 1.0}, row))
    with pytest.raises(InvalidInput) as caught:
        RowsSource().validate(spec, tenant="t")
    assert caught.value.field == field
    with pytest.raises(InvalidInput):  # a job reading the rows refuses them the same way
        RowsSource().read(spec, tenant="t", budget=MemoryBudget(1 << 20, source="rows"))


def test_a_surrogate_in_a_column_name_is_refused() -> None:
    spec = RowsDataset(rows=({"bad\ud800": 1},))
    with pytest.raises(InvalidInput) as caught:
        RowsSource().validate(spec, tenant="t")
    assert caught.value.field is not None and caught.value.field.startswith("dataset.rows.0.")
    assert "surrogate" in str(caught.value)


def test_valid_text_is_kept() -> None:
    spec = RowsDataset(rows=({"name": "😀 café", "score": 1.5}, {"name": None, "score": None}))
    data = RowsSource().read(spec, tenant="t", budget=MemoryBudget(1 << 20, source="rows"))
    assert data.table.column("name").to_pylist() == ["😀 café", None]
