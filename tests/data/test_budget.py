"""The memory budget: a dataset that would not fit is refused, not loaded."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlworker.data.budget import MemoryBudget, MemoryPool, in_memory_bytes
from mlworker.data.loader import DatasetLoader
from mlworker.data.sources import (
    PathSource,
    RowsSource,
    TableDescription,
    TableQuery,
    TableSource,
)
from mlworker.data.spec import PathDataset, RowsDataset, TableDataset
from mlworker.errors import DatasetTooLarge, InvalidInput, PayloadTooLarge, ServiceUnavailable

ROWS = 20_000


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    with (data / "big.csv").open("w") as handle:
        handle.write("id,score,segment\n")
        handle.writelines(f"{i},{i * 0.5},segment-{i % 13}\n" for i in range(ROWS))
    table = pa.table(
        {
            "id": pa.array(range(ROWS), type=pa.int64()),
            "score": pa.array([i * 0.5 for i in range(ROWS)]),
            "segment": pa.array([f"segment-{i % 13}" for i in range(ROWS)]),
        }
    )
    pq.write_table(table, data / "big.parquet", use_dictionary=False)
    return data


def _loader(root: Path, budget: int) -> DatasetLoader:
    return DatasetLoader({"path": PathSource(root), "rows": RowsSource()}, memory_budget=budget)


def test_charge_raises_once_past_the_limit() -> None:
    budget = MemoryBudget(limit_bytes=100, source="t.csv")
    budget.charge(100)
    with pytest.raises(DatasetTooLarge) as caught:
        budget.charge(1)
    assert caught.value.code == "dataset_too_large"
    assert caught.value.field == "dataset"
    assert caught.value.extra["limit_bytes"] == 100
    assert "MLWORKER_DATASET_MEMORY_BUDGET" in caught.value.message


def test_in_memory_bytes_counts_the_data() -> None:
    table = pa.table({"a": pa.array(range(1000), type=pa.int64())})
    assert in_memory_bytes(table) >= 8000


@pytest.mark.parametrize("name", ["big.csv", "big.parquet"])
def test_over_budget_file_is_refused(root: Path, name: str) -> None:
    with pytest.raises(DatasetTooLarge) as caught:
        _loader(root, 50_000).load(PathDataset(path=name), tenant="t")
    assert name in caught.value.message


@pytest.mark.parametrize("name", ["big.csv", "big.parquet"])
def test_within_budget_file_loads(root: Path, name: str) -> None:
    loaded = _loader(root, 64 * 1024 * 1024).load(PathDataset(path=name), tenant="t")
    assert loaded.row_count == ROWS
    assert list(loaded.frame.columns) == ["id", "score", "segment"]


def test_column_selection_counts_only_selected_columns(root: Path) -> None:
    # All three columns exceed the budget; the id column alone fits.
    budget = 300_000
    with pytest.raises(DatasetTooLarge):
        _loader(root, budget).load(PathDataset(path="big.parquet"), tenant="t")
    loaded = _loader(root, budget).load(
        PathDataset(path="big.parquet", columns=("id",)), tenant="t"
    )
    assert loaded.row_count == ROWS


def test_parquet_is_refused_from_metadata_before_reading(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[object] = []
    original = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *args: object, **kwargs: object) -> object:
        read.append(args)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    with pytest.raises(DatasetTooLarge):
        _loader(root, 50_000).load(PathDataset(path="big.parquet"), tenant="t")
    assert read == []  # no row group was decoded
    # The spy does see reads when the file fits, so the assertion above means something.
    _loader(root, 64 * 1024 * 1024).load(PathDataset(path="big.parquet"), tenant="t")
    assert read


def test_csv_stops_reading_at_the_first_batch_past_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "large.csv"
    with path.open("w") as handle:  # about 14 MiB: several 4 MiB blocks
        handle.write("id,score,segment\n")
        handle.writelines(f"{i},{i * 0.5},segment-{i % 13}\n" for i in range(600_000))

    class CountingBudget(MemoryBudget):
        charges = 0

        def charge(self, size: int) -> None:
            CountingBudget.charges += 1
            super().charge(size)

    budget = CountingBudget(limit_bytes=1024 * 1024, source="large.csv")
    with pytest.raises(DatasetTooLarge):
        PathSource(tmp_path).read(PathDataset(path="large.csv"), tenant="t", budget=budget)
    assert CountingBudget.charges == 1  # refused at the first batch, the rest never read


def test_inline_rows_over_budget_are_refused(root: Path) -> None:
    rows = tuple({"id": i, "text": "x" * 100} for i in range(2000))
    with pytest.raises(DatasetTooLarge):
        _loader(root, 10_000).load(RowsDataset(rows=rows), tenant="t")
    loaded = _loader(root, 10 * 1024 * 1024).load(RowsDataset(rows=rows), tenant="t")
    assert loaded.row_count == 2000


class _FakeCatalog:
    """A platform catalogue streaming many batches and noting when its cursor is closed."""

    def __init__(self) -> None:
        self.closed = False
        self.batches_sent = 0

    def describe(self, table: str, schema: str | None) -> TableDescription:
        return TableDescription(columns=("id",), primary_key=("id",))

    def count(self, query: TableQuery) -> int:
        return 100_000

    def read(self, query: TableQuery, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        try:
            for start in range(0, 100_000, batch_rows):
                self.batches_sent += 1
                yield pa.record_batch({"id": pa.array(range(start, start + batch_rows))})
        finally:
            self.closed = True


def test_table_over_budget_stops_streaming_and_closes_the_cursor() -> None:
    catalog = _FakeCatalog()
    source = TableSource(catalog, row_cap=1_000_000, batch_rows=1000)
    with pytest.raises(DatasetTooLarge) as caught:
        source.read(TableDataset(table="t"), tenant="t", budget=MemoryBudget(limit_bytes=20_000))
    assert catalog.batches_sent == 3  # 8 KB each: the third passes 20 KB
    # Closed at once, even while the traceback is still held here.
    assert catalog.closed
    assert caught.value.code == "dataset_too_large"


# --- the process-wide pool (issue 10, defect 3) ------------------------------------------------


def test_pool_refuses_at_once_what_could_never_fit() -> None:
    pool = MemoryPool(1000, wait_seconds=30)
    started = time.monotonic()
    with pytest.raises(DatasetTooLarge) as caught:
        pool.reserve(600, held=500, source="big.csv", field="file")
    assert time.monotonic() - started < 5  # no wait: no release could help
    assert caught.value.field == "file"
    assert "MLWORKER_API_MEMORY_BUDGET" in caught.value.message
    assert pool.used_bytes == 0


def test_pool_answers_busy_when_others_hold_the_bytes() -> None:
    pool = MemoryPool(1000, wait_seconds=0.05)
    pool.reserve(800, held=0)
    with pytest.raises(ServiceUnavailable) as caught:
        pool.reserve(300, held=0, field="file")
    assert caught.value.status == 503 and caught.value.field == "file"
    assert pool.used_bytes == 800


def test_pool_waiter_proceeds_when_another_load_releases() -> None:
    pool = MemoryPool(1000, wait_seconds=30)
    pool.reserve(800, held=0)
    granted = threading.Event()

    def wait_for_room() -> None:
        pool.reserve(500, held=0)
        granted.set()

    waiter = threading.Thread(target=wait_for_room)
    waiter.start()
    assert not granted.wait(0.1)
    pool.release(800)
    waiter.join(timeout=10)
    assert granted.is_set() and pool.used_bytes == 500


def test_concurrent_loads_share_one_pool_and_give_it_back(root: Path) -> None:
    pool = MemoryPool(256 * 1024 * 1024, wait_seconds=0)
    loader = DatasetLoader({"path": PathSource(root)}, memory_budget=1 << 40, pool=pool)
    loaded = loader.load(PathDataset(path="big.csv"), tenant="t")
    assert loaded.row_count == ROWS and pool.used_bytes == 0
    # A pool smaller than the parse's working memory refuses the load (413), per-load limit or not.
    small = DatasetLoader({"path": PathSource(root)}, memory_budget=1 << 40, pool=MemoryPool(1))
    with pytest.raises(DatasetTooLarge):
        small.load(PathDataset(path="big.csv"), tenant="t")


def test_budget_releases_its_reservation_on_failure() -> None:
    pool = MemoryPool(10_000, wait_seconds=0)
    with pytest.raises(DatasetTooLarge), MemoryBudget(limit_bytes=5000, pool=pool) as budget:
        budget.charge(4000)
        assert pool.used_bytes >= 4000
        budget.charge(4000)  # past the per-load limit
    assert pool.used_bytes == 0


def test_compressed_path_file_stops_at_the_decompressed_cap(tmp_path: Path) -> None:
    (tmp_path / "zeros.csv.gz").write_bytes(gzip.compress(b"a\n" + b"0\n" * 2_000_000))
    loader = DatasetLoader(
        {"path": PathSource(tmp_path)}, memory_budget=1 << 40, max_decompressed_bytes=100_000
    )
    with pytest.raises(PayloadTooLarge) as caught:
        loader.load(PathDataset(path="zeros.csv.gz"), tenant="t")
    assert caught.value.extra["limit_bytes"] == 100_000


def test_duplicate_columns_refused_for_every_source(root: Path) -> None:
    (root / "dup.csv").write_text("a,b,a\n1,2,3\n")
    loader = _loader(root, 1 << 30)
    with pytest.raises(InvalidInput) as caught:
        loader.load(PathDataset(path="dup.csv"), tenant="t")
    assert caught.value.code == "invalid_input" and caught.value.extra["column"] == "a"
    with pytest.raises(InvalidInput, match="duplicate column name 'a'"):
        PathSource(root).validate(PathDataset(path="dup.csv", columns=("b",)), tenant="t")
