"""Column kinds, the dataset fingerprint and the loaded dataset's summary."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from mlworker.data.loader import DatasetLoader
from mlworker.data.profile import fingerprint, infer_kind, profile_columns
from mlworker.data.sources import PathSource, RowsSource
from mlworker.data.spec import PathDataset, RowsDataset
from mlworker.data.values import ColumnKind, ColumnProfile

NUMERIC = ColumnKind.NUMERIC
CATEGORICAL = ColumnKind.CATEGORICAL
TEXT = ColumnKind.TEXT
DATETIME = ColumnKind.DATETIME
BOOLEAN = ColumnKind.BOOLEAN


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1, 2, 3], NUMERIC),
        ([1.5, None, 2.25], NUMERIC),
        # Telco "TotalCharges": numbers as text, with a few single-space blanks.
        (["29.85", "1889.5", " ", "108.15", "1840.75", " "], NUMERIC),
        (["1", "0", "1", None], NUMERIC),
        (["Yes", "No", "No", "yes", None], BOOLEAN),
        (["true", "false", "TRUE"], BOOLEAN),
        ([True, False, True], BOOLEAN),
        (["2024-01-03", "2024-02-11 10:00:00", "2024-03-01T08:30:00"], DATETIME),
        # Offsets that differ between rows (DST) must not break the parse.
        (["2024-01-01T10:00:00Z", "2024-07-01T11:00:00+02:00", "2024-03-01"], DATETIME),
        (["03/01/2026", "04/01/2026"], DATETIME),
        (["Gold", "Silver", "Bronze", "Gold"], CATEGORICAL),
        (["1.2.3", "1.2.4", "2.0.1"], CATEGORICAL),  # versions, not dates
        (["A", "B", "F", "C"], CATEGORICAL),
        (
            [
                "the delivery arrived two days late and the box was damaged",
                "great product, would buy again from this shop",
                "customer service never answered my three emails",
            ],
            TEXT,
        ),
        ([None, None], CATEGORICAL),
        (["", "  "], CATEGORICAL),
    ],
)
def test_infer_kind(values: list[object], kind: ColumnKind) -> None:
    assert infer_kind(pd.Series(values)) is kind


def test_infer_kind_on_typed_columns() -> None:
    assert infer_kind(pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True))) is DATETIME
    assert infer_kind(pd.Series([True, None], dtype=object)) is BOOLEAN
    assert infer_kind(pd.Series([date(2024, 1, 1), None], dtype=object)) is DATETIME


def test_infer_kind_is_deterministic_on_large_samples() -> None:
    # More values than the sample size: the sample is seeded, so the answer never flips.
    values = pd.Series([f"{i}.5" for i in range(9000)] + ["n/a"] * 300)
    assert {infer_kind(values) for _ in range(3)} == {NUMERIC}


def test_profile_columns_counts() -> None:
    frame = pd.DataFrame({"a": [1, 2, None, 2], "b": ["x", None, None, "y"]})
    profiles = profile_columns(frame)
    assert [p.name for p in profiles] == ["a", "b"]
    assert profiles[0] == ColumnProfile("a", NUMERIC, "float64", missing=1, distinct=2)
    assert profiles[1].missing == 2 and profiles[1].distinct == 2
    assert ColumnProfile.from_dict(profiles[1].to_dict()) == profiles[1]


SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.string())])


def test_fingerprint_is_stable() -> None:
    first = fingerprint({"kind": "path", "path": "x.csv"}, SCHEMA, 10)
    assert first == fingerprint({"path": "x.csv", "kind": "path"}, SCHEMA, 10)  # key order
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize(
    ("description", "schema", "rows"),
    [
        ({"kind": "path", "path": "y.csv"}, SCHEMA, 10),  # source
        ({"kind": "path", "path": "x.csv"}, pa.schema([("a", pa.int64())]), 10),  # columns
        (
            {"kind": "path", "path": "x.csv"},
            pa.schema([("a", pa.float64()), ("b", pa.string())]),
            10,
        ),
        ({"kind": "path", "path": "x.csv"}, SCHEMA, 11),  # row count
    ],
)
def test_fingerprint_changes_with_source_schema_and_rows(
    description: dict[str, str], schema: pa.Schema, rows: int
) -> None:
    assert fingerprint(description, schema, rows) != fingerprint(
        {"kind": "path", "path": "x.csv"}, SCHEMA, 10
    )


def test_loaded_fingerprint_stable_across_loads_and_sensitive_to_content(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b\n1,x\n2,y\n")
    loader = DatasetLoader({"path": PathSource(tmp_path)}, memory_budget=1 << 26)
    first = loader.load(PathDataset(path="d.csv"), tenant="t")
    again = DatasetLoader({"path": PathSource(tmp_path)}, memory_budget=1 << 26).load(
        PathDataset(path="d.csv"), tenant="t"
    )
    assert first.fingerprint == again.fingerprint
    (tmp_path / "d.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
    assert loader.load(PathDataset(path="d.csv"), tenant="t").fingerprint != first.fingerprint


def test_rows_fingerprint_follows_the_rows() -> None:
    loader = DatasetLoader({"rows": RowsSource()}, memory_budget=1 << 20)
    one = loader.load(RowsDataset(rows=({"a": 1}, {"a": 2})), tenant="t")
    same = loader.load(RowsDataset(rows=({"a": 1}, {"a": 2})), tenant="t")
    other = loader.load(RowsDataset(rows=({"a": 1}, {"a": 3})), tenant="t")
    assert one.fingerprint == same.fingerprint != other.fingerprint


def test_summary_shape(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "id,plan,churned,signup,charges\n"
        "1,gold,Yes,2024-01-01,29.85\n"
        "2,silver,No,2024-02-01, \n"
        "3,gold,No,2024-03-01,108.15\n"
    )
    progress: list[tuple[float, str]] = []
    loaded = DatasetLoader({"path": PathSource(tmp_path)}, memory_budget=1 << 26).load(
        PathDataset(path="c.csv"), tenant="t", progress=lambda f, m: progress.append((f, m))
    )
    summary = loaded.summary()
    assert set(summary) == {"rowCount", "columns", "fingerprint", "source"}
    assert summary["rowCount"] == 3
    assert summary["fingerprint"] == loaded.fingerprint
    assert summary["source"]["kind"] == "path" and summary["source"]["path"] == "c.csv"
    columns = {column["name"]: column for column in summary["columns"]}
    assert list(columns) == ["id", "plan", "churned", "signup", "charges"]
    assert set(columns["id"]) == {"name", "kind", "dtype", "missing", "distinct"}
    assert {name: column["kind"] for name, column in columns.items()} == {
        "id": "numeric",
        "plan": "categorical",
        "churned": "boolean",
        "signup": "datetime",
        "charges": "numeric",
    }
    assert columns["plan"]["distinct"] == 2
    assert loaded.kinds()["churned"] is BOOLEAN
    json.dumps(summary)  # plain JSON
    assert progress and progress[0][0] == 0.0


def test_typed_arrow_columns_profile_by_type() -> None:
    table = pa.table(
        {
            "flag": pa.array([True, None, False]),
            "at": pa.array([datetime(2024, 1, 1, tzinfo=UTC), None, None]),
            "day": pa.array([date(2024, 1, 1), None, None]),
            "n": pa.array([1, None, 3]),
        }
    )
    kinds = {p.name: p.kind for p in profile_columns(table.to_pandas())}
    assert kinds == {"flag": BOOLEAN, "at": DATETIME, "day": DATETIME, "n": NUMERIC}
