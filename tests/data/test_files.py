"""Confinement of dataset paths to the data root, and reading CSV, TSV and Parquet files."""

from __future__ import annotations

import gzip
import io
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlworker.data.budget import MemoryBudget
from mlworker.data.files import read_column_names, read_file
from mlworker.data.paths import resolve_data_path
from mlworker.data.sources import PathSource
from mlworker.data.spec import PathDataset
from mlworker.errors import DatasetNotFound, PathNotAllowed, UnknownColumn, UnreadableDataset

FIELD = "dataset.path"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.csv").write_text("id,plan\n1,gold\n2,silver\n")
    (data / "nested").mkdir()
    (data / "nested" / "events.csv").write_text("id\n1\n")
    return data


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "secret.csv"
    target.write_text("password\nhunter2\n")
    return target


def _budget(limit: int = 1 << 30) -> MemoryBudget:
    return MemoryBudget(limit_bytes=limit, source="test")


def _read(path: Path, file_format: str = "csv", columns: list[str] | None = None) -> pa.Table:
    return read_file(
        path,
        name=path.name,
        file_format=file_format,  # type: ignore[arg-type]
        columns=columns,
        budget=_budget(),
        field=FIELD,
    )


# --- confinement -------------------------------------------------------------------------------


def test_relative_path_inside_root_resolves(root: Path) -> None:
    assert resolve_data_path(root, "customers.csv") == (root / "customers.csv").resolve()
    assert resolve_data_path(root, "nested/events.csv") == (root / "nested/events.csv").resolve()
    # ".." that stays inside the root is fine.
    assert resolve_data_path(root, "nested/../customers.csv") == (root / "customers.csv").resolve()


def test_absolute_path_inside_root_is_accepted(root: Path) -> None:
    absolute = str((root / "customers.csv").resolve())
    assert resolve_data_path(root, absolute) == Path(absolute)


@pytest.mark.parametrize("raw", ["../outside/secret.csv", "nested/../../outside/secret.csv"])
def test_dot_dot_traversal_is_refused(root: Path, secret: Path, raw: str) -> None:
    with pytest.raises(PathNotAllowed) as caught:
        resolve_data_path(root, raw)
    assert caught.value.field == FIELD
    assert caught.value.code == "path_not_allowed"


@pytest.mark.parametrize("raw", ["/etc/passwd", "SECRET"])
def test_absolute_path_outside_root_is_refused(root: Path, secret: Path, raw: str) -> None:
    raw = str(secret) if raw == "SECRET" else raw
    with pytest.raises(PathNotAllowed):
        resolve_data_path(root, raw)


def test_tilde_is_not_the_home_directory(root: Path) -> None:
    # "~" in a client's path is an ordinary character under the root, never $HOME.
    (root / "~").mkdir()
    (root / "~" / "x.csv").write_text("a\n1\n")
    assert resolve_data_path(root, "~/x.csv") == (root / "~" / "x.csv").resolve()


def test_symlink_pointing_outside_is_refused(root: Path, secret: Path) -> None:
    (root / "innocent.csv").symlink_to(secret)
    (root / "linkdir").symlink_to(secret.parent, target_is_directory=True)
    for raw in ("innocent.csv", "linkdir/secret.csv"):
        with pytest.raises(PathNotAllowed):
            resolve_data_path(root, raw)


def test_symlink_inside_root_is_followed(root: Path) -> None:
    (root / "latest.csv").symlink_to(root / "customers.csv")
    assert resolve_data_path(root, "latest.csv") == (root / "customers.csv").resolve()


def test_symlink_loop_is_refused_not_crashing(root: Path) -> None:
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    with pytest.raises(PathNotAllowed):
        resolve_data_path(root, "loop_a")


def test_name_too_long_is_not_found_not_crashing(root: Path) -> None:
    with pytest.raises(DatasetNotFound):
        resolve_data_path(root, "a" * 300 + ".csv")


def test_nul_byte_is_refused(root: Path) -> None:
    with pytest.raises(PathNotAllowed):
        resolve_data_path(root, "customers.csv\x00.txt")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and block) every attempt to open a network connection."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.mark.parametrize(
    "raw",
    [
        "http://x/a.csv",
        "https://example.com/a.csv",
        "file:///etc/passwd",
        "s3://b/k.csv",
        "gs://bucket/k.parquet",
        "//host/share/a.csv",
        "\\\\host\\share\\a.csv",
        "HTTP://X/A.CSV",
    ],
)
def test_urls_are_refused_without_connecting(
    root: Path, no_network: list[object], raw: str
) -> None:
    with pytest.raises(PathNotAllowed) as caught:
        resolve_data_path(root, raw)
    assert caught.value.field == FIELD
    assert no_network == []


def test_the_no_network_guard_itself_works(no_network: list[object]) -> None:
    # Proof that the guard above would notice a connection.
    with pytest.raises(AssertionError):
        socket.create_connection(("127.0.0.1", 9))
    assert len(no_network) == 1


def test_url_through_path_source_validation(root: Path, no_network: list[object]) -> None:
    source = PathSource(root)
    with pytest.raises(PathNotAllowed):
        source.validate(PathDataset(path="http://x/a.csv"), tenant="t")
    assert no_network == []


def test_missing_file_is_not_found(root: Path) -> None:
    with pytest.raises(DatasetNotFound) as caught:
        resolve_data_path(root, "nope.csv")
    assert caught.value.field == FIELD
    assert caught.value.code == "dataset_not_found"
    with pytest.raises(DatasetNotFound):
        resolve_data_path(root, "nested")  # a directory is not a file


# --- reading -------------------------------------------------------------------------------------


def test_read_plain_csv(root: Path) -> None:
    table = _read(root / "customers.csv")
    assert table.column_names == ["id", "plan"]
    assert table.column("id").to_pylist() == [1, 2]
    assert table.column("plan").to_pylist() == ["gold", "silver"]


def test_read_gzip_csv_from_path_and_file_object(tmp_path: Path) -> None:
    content = b"id,score\n" + b"".join(f"{i},{i / 2}\n".encode() for i in range(1000))
    path = tmp_path / "scores.csv.gz"
    path.write_bytes(gzip.compress(content))
    table = _read(path)
    assert table.num_rows == 1000
    assert table.column("score").to_pylist()[:3] == [0.0, 0.5, 1.0]
    handle = io.BytesIO(path.read_bytes())
    from_handle = read_file(
        handle, name=path.name, file_format="csv", columns=None, budget=_budget(), field=FIELD
    )
    assert from_handle.equals(table)
    assert not handle.closed  # the caller's file object is left open


def test_read_tsv(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\thello, world\n2\tx\n")
    table = _read(path, "tsv")
    assert table.column_names == ["a", "b"]
    assert table.column("b").to_pylist() == ["hello, world", "x"]


def test_text_that_is_not_utf8_reads_as_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,title\n1,Café crème\n2,plain\n3,€5 off\n".encode("cp1252"))
    table = _read(path)
    assert table.schema.field("title").type == pa.string()
    assert table.column("title").to_pylist() == ["Café crème", "plain", "€5 off"]


def test_read_parquet(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    source = pa.table({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, 1.5, 2.5]})
    pq.write_table(source, path)
    assert _read(path, "parquet").equals(source)
    assert _read(path, "parquet", columns=["c", "a"]).column_names == ["c", "a"]


def test_column_selection_csv(root: Path) -> None:
    table = _read(root / "customers.csv", columns=["plan"])
    assert table.column_names == ["plan"]
    assert table.num_rows == 2


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_unknown_column_is_named(tmp_path: Path, file_format: str) -> None:
    path = tmp_path / f"f.{file_format}"
    if file_format == "csv":
        path.write_text("id,plan\n1,gold\n")
    else:
        pq.write_table(pa.table({"id": [1], "plan": ["gold"]}), path)
    with pytest.raises(UnknownColumn) as caught:
        _read(path, file_format, columns=["id", "tier"])
    assert "tier" in caught.value.message
    assert caught.value.extra["column"] == "tier"
    assert caught.value.field == "dataset.columns"


def test_column_type_changing_after_first_block_reads_as_text(tmp_path: Path) -> None:
    # 600k numeric ids (> 4 MiB, the first block pyarrow infers types from), then "X123".
    path = tmp_path / "ids.csv"
    rows = 600_000
    with path.open("w") as handle:
        handle.write("id,value\n")
        handle.writelines(f"{i},{i % 7}\n" for i in range(rows))
        handle.write("X123,1\n")
    assert path.stat().st_size > 4 * 1024 * 1024
    table = _read(path)
    assert table.num_rows == rows + 1
    assert table.schema.field("id").type == pa.string()
    assert table.schema.field("value").type == pa.int64()  # untouched columns keep their type
    assert table.column("id")[0].as_py() == "0"
    assert table.column("id")[rows].as_py() == "X123"
    only_id = _read(path, columns=["id"])
    assert only_id.column_names == ["id"] and only_id.num_rows == rows + 1


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.csv", bytes(range(256)) * 64),
        ("binary-header.csv", b"\xff\xfe\x00\x80" * 100 + b"\n" + b"\xc3\x28abc" * 10),
        ("garbage.csv.gz", b"this is not gzip at all" * 50),
        ("truncated.csv.gz", gzip.compress(b"a,b\n" + b"1,2\n" * 50_000)[:200]),
        ("garbage.parquet", b"PAR1" + bytes(range(256)) * 8),
        ("empty.csv", b""),
    ],
)
def test_garbage_is_unreadable(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    file_format = "parquet" if name.endswith(".parquet") else "csv"
    with pytest.raises(UnreadableDataset) as caught:
        _read(path, file_format)
    assert caught.value.code == "unreadable_dataset"
    assert caught.value.field == FIELD
    with pytest.raises(UnreadableDataset):
        read_file(
            io.BytesIO(content),
            name=name,
            file_format=file_format,  # type: ignore[arg-type]
            columns=None,
            budget=_budget(),
            field=FIELD,
        )


def test_read_column_names_reads_headers(tmp_path: Path) -> None:
    csv = tmp_path / "a.csv.gz"
    csv.write_bytes(gzip.compress(b"x,y\n1,2\n"))
    assert read_column_names(csv, name=csv.name, file_format="csv", field=FIELD) == ["x", "y"]
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.table({"p": [1]}), parquet)
    assert read_column_names(parquet, name=parquet.name, file_format="parquet", field=FIELD) == [
        "p"
    ]
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"nope")
    with pytest.raises(UnreadableDataset):
        read_column_names(garbage, name=garbage.name, file_format="parquet", field=FIELD)


def test_path_source_validates_columns_from_header_only(root: Path) -> None:
    source = PathSource(root)
    source.validate(PathDataset(path="customers.csv", columns=("plan",)), tenant="t")
    with pytest.raises(UnknownColumn) as caught:
        source.validate(PathDataset(path="customers.csv", columns=("tier",)), tenant="t")
    assert caught.value.field == "dataset.columns"
    (root / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(UnreadableDataset):
        source.validate(PathDataset(path="broken.parquet", columns=("a",)), tenant="t")


def test_path_source_reads_and_describes(root: Path) -> None:
    data = PathSource(root).read(PathDataset(path="customers.csv"), tenant="t", budget=_budget())
    assert data.table.num_rows == 2
    assert data.description["kind"] == "path"
    assert data.description["path"] == "customers.csv"
    assert data.description["format"] == "csv"
