"""CSV and Parquet files: confinement to the data root, and budgeted reading with pyarrow.

Confinement happens on the *resolved* path, so ``..`` segments, absolute paths and symbolic
links that point outside ``MLWORKER_DATA_ROOT`` are all refused the same way. URLs are refused
by their form, before anything could open a connection.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlworker.data.budget import MemoryBudget
from mlworker.errors import (
    DatasetNotFound,
    InvalidInput,
    MLWorkerError,
    PathNotAllowed,
    UnknownColumn,
    UnreadableDataset,
)

FileFormat = Literal["csv", "tsv", "parquet"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
Compression = Literal["gzip", "bz2", "zstd", "lz4"]
_COMPRESSIONS: dict[str, Compression] = {
    ".gz": "gzip",
    ".bz2": "bz2",
    ".zst": "zstd",
    ".lz4": "lz4",
}
_CSV_BLOCK_BYTES = 4 * 1024 * 1024
#: Blocks of a compressed stream: each holds Python and Arrow buffers, so they stay small.
_COMPRESSED_CSV_BLOCK_BYTES = 1024 * 1024
#: What one parse holds besides its rows (blocks, decoder buffers), measured on gzip CSV with
#: bench/upload_memory.py; reserved from the process-wide pool for the whole parse.
PARSE_WORKING_BYTES = 96 * 1024 * 1024
#: Compressed bytes handed to the decompressor at a time (at most ~4 MiB of gzip output).
_COMPRESSED_READ_BYTES = 4096
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+):.*CSV conversion error to (\w+)")
_MAX_TYPE_RETRIES = 64
#: What pyarrow raises on bytes that are not the format they claim (corrupt gzip included).
_READ_ERRORS = (pa.ArrowException, OSError, UnicodeDecodeError)


def resolve_data_path(data_root: Path, raw: str, *, field: str = "dataset.path") -> Path:
    """Resolve ``raw`` to an existing file inside ``data_root``.

    Raises
    ------
    PathNotAllowed
        A URL (``http:``, ``file:``, ``s3:`` …), or a path resolving outside the root.
    DatasetNotFound
        Inside the root, but no such file.
    """
    if "\x00" in raw:
        raise PathNotAllowed("path contains a NUL byte", field=field)
    if _URL.match(raw) or raw.startswith("//") or raw.startswith("\\\\"):
        raise PathNotAllowed(
            "URLs are not accepted; give a path relative to the data root", field=field
        )
    root = data_root.expanduser().resolve()
    # The client's path is relative to the root: ``~`` means nothing special here.
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise PathNotAllowed(f"cannot resolve {raw!r}", field=field) from exc
    if not resolved.is_relative_to(root):
        raise PathNotAllowed(
            "path resolves outside the data root (MLWORKER_DATA_ROOT)", field=field
        )
    try:
        is_file = resolved.is_file()
    except OSError:
        is_file = False
    if not is_file:
        raise DatasetNotFound(f"no file {raw!r} under the data root", field=field)
    return resolved


def detect_format(name: str, declared: FileFormat | None = None, *, field: str) -> FileFormat:
    """Return the declared format, or the one the file name's suffix implies."""
    if declared is not None:
        return declared
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffixes[-1]]
    raise InvalidInput(
        f"cannot tell the format of {name!r}; use .csv, .tsv or .parquet, or set 'format'",
        field=field,
    )


def check_unique_columns(names: Sequence[str], *, field: str) -> None:
    """Refuse a header that names a column twice: no later step could tell the two apart.

    Examples
    --------
    >>> check_unique_columns(["a", "b", "a"], field="file")
    Traceback (most recent call last):
    ...
    mlworker.errors.InvalidInput: duplicate column name 'a' (columns 1 and 3); ...
    """
    seen: dict[str, int] = {}
    for position, column in enumerate(names, start=1):
        if column in seen:
            raise InvalidInput(
                f"duplicate column name {column!r} (columns {seen[column]} and {position}); "
                "every column needs a distinct name",
                field=field,
                column=column,
            )
        seen[column] = position


def _check_columns(
    available: Sequence[str], wanted: Sequence[str] | None, *, field: str
) -> list[str] | None:
    if wanted is None:
        return None
    missing = [column for column in wanted if column not in available]
    if missing:
        raise UnknownColumn(
            f"unknown column {missing[0]!r}; available: {', '.join(available)}",
            field=field,
            column=missing[0],
        )
    return list(dict.fromkeys(wanted))


def _compression(name: str) -> Compression | None:
    suffix = Path(name).suffix.lower()
    return _COMPRESSIONS.get(suffix)


def _open_stream(
    source: str | Path | IO[bytes] | io.RawIOBase,
    name: str,
    budget: MemoryBudget | None = None,
) -> Any:
    """Open ``source`` as an Arrow stream, decompressing by ``name``'s suffix under ``budget``.

    The compression comes from ``name`` alone: pyarrow would otherwise also detect it from a
    path's suffix, and a gzipped file would be decompressed twice. Every byte passes
    :class:`_Metered`, so the decompressed size, the compression ratio and the deadline are
    checked while streaming, before the parser sees more than the caps allow.
    """
    compression: Any = _compression(name)  # None means "not compressed"; the stubs omit it
    if budget is None:
        stream: Any = str(source) if isinstance(source, Path) else source
        return pa.input_stream(stream, compression=compression)
    raw: Any = open(source, "rb") if isinstance(source, str | Path) else source  # noqa: SIM115
    if compression is None:
        return pa.input_stream(_Metered(raw, budget))
    # Arrow inflates each compressed read whole: 64 KiB of a bomb is 64 MiB in one buffer.
    # Small compressed reads keep that buffer small whatever the ratio.
    counted = _Metered(raw, budget, max_read=_COMPRESSED_READ_BYTES)
    decompressed = pa.input_stream(counted, compression=compression)
    return pa.input_stream(_Metered(decompressed, budget, compressed=counted))


class _Metered(io.RawIOBase):
    """A stream that counts what passes and stops at the budget's caps and deadline.

    Without ``compressed`` it is the raw side (only the deadline applies); with it, the
    decompressed side, whose total is compared with the raw bytes ``compressed`` has counted.
    """

    def __init__(
        self,
        inner: Any,
        budget: MemoryBudget,
        *,
        compressed: _Metered | None = None,
        max_read: int | None = None,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._budget = budget
        self._compressed = compressed
        self._max_read = max_read
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._max_read is not None and len(buffer) > self._max_read:
            buffer = memoryview(buffer)[: self._max_read]
        readinto = getattr(self._inner, "readinto", None)
        if readinto is not None:
            size = int(readinto(buffer))
        else:
            data = self._inner.read(len(buffer))
            size = len(data)
            buffer[:size] = data
        self.count += size
        if self._compressed is None:
            self._budget.check_deadline()
        else:
            self._budget.count_decompressed(self.count, self._compressed.count)
        return size

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def read_column_names(path: Path, *, name: str, file_format: FileFormat, field: str) -> list[str]:
    """Return the column names of a CSV, TSV or Parquet file, reading only its header."""
    try:
        if file_format == "parquet":
            names = list(pq.read_schema(path).names)
        else:
            delimiter = "\t" if file_format == "tsv" else ","
            with _open_stream(path, name) as stream:
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(block_size=1 << 16),
                    parse_options=pacsv.ParseOptions(delimiter=delimiter),
                )
                names = list(reader.schema.names)
    except _READ_ERRORS as exc:
        raise UnreadableDataset(f"cannot read {name} as {file_format}: {exc}", field=field) from exc
    check_unique_columns(names, field=field)
    return names


def read_csv(
    source: str | Path | IO[bytes],
    *,
    name: str,
    delimiter: str = ",",
    columns: Sequence[str] | None,
    budget: MemoryBudget,
    field: str,
    reopen: Any = None,
) -> pa.Table:
    """Stream a CSV file into Arrow, charging ``budget`` batch by batch.

    Types are inferred from the first block; a column whose later values contradict that guess
    (an id that turns alphanumeric) is re-read as text rather than failing the load.

    Parameters
    ----------
    source
        Path or seekable binary file object (left open; read from its current position).
    name
        File name, for messages and compression detection.
    delimiter
        Field separator.
    columns
        Columns to read (all when ``None``).
    budget
        Memory budget charged as batches arrive.
    field
        Request field named in errors.
    reopen
        Callable returning a fresh file object for each re-read of a file object source; without
        it the source is rewound.
    """
    text_columns: dict[str, pa.DataType] = {}
    start = 0 if isinstance(source, str | Path) else source.tell()
    for attempt in range(_MAX_TYPE_RETRIES):
        budget.reserve_working_memory(PARSE_WORKING_BYTES)
        stream = _attempt_stream(
            source, name, start=start, retry=bool(attempt), reopen=reopen, budget=budget
        )
        try:
            return decoded_text(
                _read_csv_once(stream, name, delimiter, columns, budget, field, text_columns)
            )
        except _TypeConflict as conflict:
            text_columns[conflict.column] = pa.string()
            budget.reset()
        finally:
            stream.close()
    raise UnreadableDataset(f"cannot settle the column types of {name}", field=field)


def _attempt_stream(
    source: str | Path | IO[bytes],
    name: str,
    *,
    start: int,
    retry: bool,
    reopen: Any,
    budget: MemoryBudget,
) -> Any:
    """Open ``source`` for one reading attempt; the stream is closed after the attempt."""
    if isinstance(source, str | Path):
        return _open_stream(source, name, budget)
    if retry and reopen is not None:
        return _open_stream(reopen(), name, budget)
    source.seek(start)
    # The caller owns its file object: read it through a wrapper whose close leaves it open.
    return _open_stream(_Borrowed(source), name, budget)


class _Borrowed(io.RawIOBase):
    """Read-only view of a file object whose ``close`` leaves the file open."""

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self._handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _decode(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: by far the commonest other encoding of exported text is Windows-1252,
        # a superset of Latin-1's printable range; bytes it leaves undefined become U+FFFD.
        return value.decode("cp1252", errors="replace")


def decoded_text(table: pa.Table) -> pa.Table:
    r"""Turn the binary columns a CSV read yields for non-UTF-8 text into strings.

    Arrow types a CSV column as ``binary`` when its bytes are not valid UTF-8; every value is
    decoded as UTF-8 where it is valid and as Windows-1252 otherwise, so a Latin-1 export reads
    as the text it holds instead of failing later.

    Examples
    --------
    >>> table = pa.table({"title": pa.array([b"Caf\xe9", b"ok", None], pa.binary())})
    >>> decoded_text(table).column("title").to_pylist()
    ['Café', 'ok', None]
    """
    for index, column in enumerate(table.schema):
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            values = [_decode(value) for value in table.column(index).to_pylist()]
            table = table.set_column(index, column.name, pa.array(values, pa.string()))
    return table


class _TypeConflict(Exception):
    """A column's later values contradict the type inferred from the first block."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


def _conflicting_column(
    exc: pa.ArrowInvalid, names: Sequence[str], column_types: dict[str, pa.DataType]
) -> str | None:
    """Return the column a conversion error blames, if reading it as text would resolve it."""
    match = _CONVERSION_ERROR.search(str(exc))
    if match is None or match.group(2) == "string":  # text already: invalid UTF-8, say
        return None
    column = names[int(match.group(1))]
    return None if column in column_types else column


def _read_csv_once(
    stream: Any,
    name: str,
    delimiter: str,
    columns: Sequence[str] | None,
    budget: MemoryBudget,
    field: str,
    column_types: dict[str, pa.DataType],
) -> pa.Table:
    block_size = _COMPRESSED_CSV_BLOCK_BYTES if _compression(name) else _CSV_BLOCK_BYTES
    read_options = pacsv.ReadOptions(block_size=block_size, use_threads=budget.parallel)
    parse_options = pacsv.ParseOptions(delimiter=delimiter)
    convert_options = pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        names = reader.schema.names  # decoding a binary header raises UnicodeDecodeError
    except MLWorkerError:
        raise  # a cap, deadline or busy pool stopped the read: not a parse failure
    except _READ_ERRORS as exc:
        raise UnreadableDataset(f"cannot parse {name} as CSV: {exc}", field=field) from exc
    check_unique_columns(names, field=field)
    selected = _check_columns(names, columns, field=f"{field.rsplit('.', 1)[0]}.columns")
    batches: list[pa.RecordBatch] = []
    try:
        for batch in reader:
            if selected is not None:
                batch = batch.select(selected)
            budget.charge_data(batch)
            batches.append(batch)
        return _table(batches, reader.schema, selected)
    except pa.ArrowInvalid as exc:
        column = _conflicting_column(exc, names, column_types)
        if column is None:
            raise UnreadableDataset(f"cannot parse {name} as CSV: {exc}", field=field) from exc
        raise _TypeConflict(column) from exc
    except MLWorkerError:
        raise  # a cap, deadline or busy pool stopped the read: not a parse failure
    except _READ_ERRORS as exc:
        raise UnreadableDataset(f"cannot parse {name} as CSV: {exc}", field=field) from exc
    finally:
        # A refused read's traceback keeps this frame alive: it must not keep the rows too.
        batches.clear()


def _table(
    batches: list[pa.RecordBatch], schema: pa.Schema, selected: list[str] | None
) -> pa.Table:
    """Assemble batches into a table whose schema holds only the selected columns, in order."""
    if selected is not None:
        schema = pa.schema([schema.field(column) for column in selected])
    return pa.Table.from_batches(batches, schema=schema)


def read_parquet(
    source: str | Path | IO[bytes],
    *,
    name: str,
    columns: Sequence[str] | None,
    budget: MemoryBudget,
    field: str,
) -> pa.Table:
    """Read a Parquet file batch by batch, refusing it early when its metadata is too big."""
    budget.reserve_working_memory(PARSE_WORKING_BYTES)
    try:
        parquet = pq.ParquetFile(source)
    except MLWorkerError:
        raise  # a cap, deadline or busy pool stopped the read: not a parse failure
    except _READ_ERRORS as exc:
        raise UnreadableDataset(f"cannot read {name} as Parquet: {exc}", field=field) from exc
    names = parquet.schema_arrow.names
    check_unique_columns(names, field=field)
    selected = _check_columns(names, columns, field=f"{field.rsplit('.', 1)[0]}.columns")
    metadata = parquet.metadata
    wanted = set(selected or names)
    estimate = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema.split(".")[0] in wanted:
                estimate += chunk.total_uncompressed_size
    budget.check_fits(estimate)
    batches: list[pa.RecordBatch] = []
    try:
        for batch in parquet.iter_batches(batch_size=65_536, columns=selected):
            budget.charge_data(batch)
            batches.append(batch)
        return _table(batches, parquet.schema_arrow, selected)
    except MLWorkerError:
        raise  # a cap, deadline or busy pool stopped the read: not a parse failure
    except _READ_ERRORS as exc:
        raise UnreadableDataset(f"cannot read {name} as Parquet: {exc}", field=field) from exc
    finally:
        batches.clear()


def read_file(
    source: str | Path | IO[bytes],
    *,
    name: str,
    file_format: FileFormat,
    columns: Sequence[str] | None,
    budget: MemoryBudget,
    field: str,
    reopen: Any = None,
) -> pa.Table:
    """Read a CSV, TSV or Parquet source into Arrow within ``budget``."""
    if file_format == "parquet":
        return read_parquet(source, name=name, columns=columns, budget=budget, field=field)
    delimiter = "\t" if file_format == "tsv" else ","
    return read_csv(
        source,
        name=name,
        delimiter=delimiter,
        columns=columns,
        budget=budget,
        field=field,
        reopen=reopen,
    )
