"""The dataset spec every job type shares (ARCHITECTURE.md §5).

A dataset is named in exactly one of four ways::

    {"path": "customers.parquet"}                         file under MLWORKER_DATA_ROOT
    {"table": "ds_customers", "columns": [...],
     "filters": [{"column": "age", "op": ">=", "value": 18}], "limit": 100000}
    {"rows": [{"a": 1, "b": "x"}, ...]}                   inline
    {"datasetId": "ds-0123456789ab"}                      uploaded with POST /datasets

Filters are structured (column, operator, value): there is no way to send SQL.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

FilterOp = Literal[
    "eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null", "between", "like"
]
_OPERATOR_SYNONYMS = {
    "=": "eq",
    "==": "eq",
    "!=": "ne",
    "<>": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "notIn": "not_in",
    "isNull": "is_null",
    "notNull": "not_null",
}
#: Most values one ``in``/``not_in`` filter may list (the list travels as one bound array).
MAX_FILTER_VALUES = 100_000
#: Most rows a table dataset's ``limit`` may ask for; far above any row cap a budget allows.
MAX_LIMIT = 1_000_000_000


Scalar = str | int | float | bool
Columns = tuple[Annotated[str, Field(max_length=200)], ...]


class _SpecModel(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class Filter(_SpecModel):
    """One row condition: ``column op value`` (``value`` is a list for ``in``/``between``)."""

    column: str = Field(min_length=1, max_length=200)
    op: FilterOp = "eq"
    value: Scalar | list[Scalar] | None = None

    @field_validator("op", mode="before")
    @classmethod
    def _synonyms(cls, value: object) -> object:
        return _OPERATOR_SYNONYMS.get(value, value) if isinstance(value, str) else value

    @field_validator("value")
    @classmethod
    def _bounded_and_finite(cls, value: object) -> object:
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_FILTER_VALUES:
            raise ValueError(f"at most {MAX_FILTER_VALUES} values, not {len(values)}")
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError("numbers must be finite (not NaN or Infinity)")
        return value

    @model_validator(mode="after")
    def _value_matches_operator(self) -> Filter:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"operator {self.op!r} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"operator {self.op!r} needs a non-empty list value")
        elif self.op == "between":
            if not isinstance(self.value, list) or len(self.value) != 2:
                raise ValueError("operator 'between' needs a [low, high] list value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"operator {self.op!r} needs a single value")
        if self.op == "like" and not isinstance(self.value, str):
            raise ValueError("operator 'like' needs a string pattern")
        return self


class PathDataset(_SpecModel):
    """A CSV or Parquet file under the data root."""

    path: str = Field(min_length=1, max_length=4096)
    format: Literal["csv", "tsv", "parquet"] | None = None
    columns: Columns | None = None


class TableDataset(_SpecModel):
    """A table (or view) in the platform database."""

    table: str = Field(min_length=1, max_length=200)
    schema_: str | None = Field(None, alias="schema", max_length=200)
    columns: Columns | None = None
    filters: tuple[Filter, ...] = Field((), max_length=100)
    limit: int | None = Field(None, ge=1, le=MAX_LIMIT)


class RowsDataset(_SpecModel):
    """Rows sent inline in the request."""

    rows: tuple[dict[str, Any], ...] = Field(min_length=1)
    columns: Columns | None = None


class UploadedDataset(_SpecModel):
    """A file uploaded earlier with ``POST /datasets``."""

    dataset_id: str = Field(min_length=1, max_length=40)
    columns: Columns | None = None


_SPEC_CLASSES: dict[str, type[BaseModel]] = {
    "path": PathDataset,
    "table": TableDataset,
    "rows": RowsDataset,
    "upload": UploadedDataset,
}
_KIND_OF_CLASS = {spec_class: kind for kind, spec_class in _SPEC_CLASSES.items()}


def _spec_tag(value: Any) -> str | None:
    """Name the spec class ``value`` is (or would validate as); ``None`` when ambiguous."""
    if isinstance(value, BaseModel):
        return type(value).__name__ if type(value) in _KIND_OF_CLASS else None
    if not isinstance(value, dict):
        return None
    present = [kind for kind in ("path", "table", "rows") if kind in value]
    if "datasetId" in value or "dataset_id" in value:
        present.append("upload")
    return _SPEC_CLASSES[present[0]].__name__ if len(present) == 1 else None


DatasetSpec = Annotated[
    Annotated[PathDataset, Tag("PathDataset")]
    | Annotated[TableDataset, Tag("TableDataset")]
    | Annotated[RowsDataset, Tag("RowsDataset")]
    | Annotated[UploadedDataset, Tag("UploadedDataset")],
    Discriminator(
        _spec_tag,
        custom_error_type="dataset_spec",
        custom_error_message=(
            "a dataset needs exactly one of 'path', 'table', 'rows' or 'datasetId'"
        ),
    ),
]
"""Any of the four dataset forms; validates requests and job parameters alike."""


def spec_kind(spec: BaseModel) -> str:
    """Return the source kind of a validated spec: ``path``, ``table``, ``rows`` or ``upload``."""
    kind = _KIND_OF_CLASS.get(type(spec))
    if kind is None:
        raise TypeError(f"{type(spec).__name__} is not a dataset spec")
    return kind
