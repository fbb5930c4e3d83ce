"""CSV and Parquet files: formats, unique columns, and budgeted reading with pyarrow.

Where a path may point is :mod:`mlworker.data.paths`' concern; the byte streams (decompression
metered against the budget) are :mod:`mlworker.data.streams`'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlworker.data.budget import MemoryBudget
from mlworker.data.streams import COMPRESSIONS, Borrowed, compression_of, open_stream
from mlworker.errors import (
    InvalidInput,
    MLWorkerError,
    UnknownColumn,
    UnreadableDataset,
)

FileFormat = Literal["csv", "tsv", "parquet"]

_SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_CSV_BLOCK_BYTES = 4 * 1024 * 1024
#: Blocks of a compressed stream: each holds Python and Arrow buffers, so they stay small.
_COMPRESSED_CSV_BLOCK_BYTES = 1024 * 1024
#: What one parse holds besides its rows (blocks, decoder buffers), measured on gzip CSV with
#: bench/upload_memory.py; reserved from the process-wide pool for the whole parse.
PARSE_WORKING_BYTES = 96 * 1024 * 1024
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+):.*CSV conversion error to (\w+)")
_MAX_TYPE_RETRIES = 64
#: What pyarrow raises on bytes that are not the format they claim (corrupt gzip included).
_READ_ERRORS = (pa.ArrowException, OSError, UnicodeDecodeError)


def detect_format(name: str, declared: FileFormat | None = None, *, field: str) -> FileFormat:
    """Return the declared format, or the one the file name's suffix implies."""
    if declared is not None:
        return declared
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
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


def read_column_names(path: Path, *, name: str, file_format: FileFormat, field: str) -> list[str]:
    """Return the column names of a CSV, TSV or Parquet file, reading only its header."""
    try:
        if file_format == "parquet":
            names = list(pq.read_schema(path).names)
        else:
            delimiter = "\t" if file_format == "tsv" else ","
            with open_stream(path, name) as stream:
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
        return open_stream(source, name, budget)
    if retry and reopen is not None:
        return open_stream(reopen(), name, budget)
    source.seek(start)
    # The caller owns its file object: read it through a wrapper whose close leaves it open.
    return open_stream(Borrowed(source), name, budget)


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
    block_size = _COMPRESSED_CSV_BLOCK_BYTES if compression_of(name) else _CSV_BLOCK_BYTES
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
