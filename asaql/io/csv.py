"""CSV input and output.

Input: a header row, then one event per row. ASA's CSV has no types, so **every value is a
string** (``nvarchar(max)``); queries convert with CAST / TRY_CAST or CREATE TABLE. An empty field
is the empty string ``''``, never NULL (there is no NULL in CSV; ``IS NULL`` is true only for a
column the file does not have). A duplicate header name makes the file unreadable:
``DataError(code='InvalidHeader')`` goes to ``on_error`` and, when the handler returns, the input
yields no events. A row with the wrong number of fields is a ``DataError(code='InvalidData')``
with its line number, and is skipped; so is a row holding a value that is not UTF-8 text
(named by its position among the rows, ``event N``, and its field). Blank lines before the
header are skipped. The delimiter is sniffed from the header among ``, ; TAB |``
(ASA lets an input choose one of them). Values may be quoted and hold newlines.

Output: the header comes from the first batch (later batches are aligned to it: missing columns
written empty, new columns dropped). Values as ASA writes CSV: records ``Record``, arrays
``Array``, datetimes ``2024-05-14T12:00:10.0000000Z``, bit ``true``/``false``, floats like JSON
(``7.0``), NULL as an empty field.
"""

from __future__ import annotations

import csv as _pycsv
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from asaql.errors import DataError
from asaql.io.formats import (
    COMPRESSED,
    ByteSink,
    _float_text,
    format_datetimes,
    match_columns,
    string_bytes,
)
from asaql.types import is_variant

__all__ = ["CsvSink", "CsvSource", "csv_text"]

ErrorHandler = Callable[[DataError], None]
_BOM = b"\xef\xbb\xbf"
_DELIMITERS = (",", ";", "\t", "|")


def _sniff_delimiter(header: str) -> str:
    counts = {d: 0 for d in _DELIMITERS}
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvSource:
    def __init__(self, name: str, path: str, *, on_error: ErrorHandler, batch_rows: int = 65536,
                 block_bytes: int = 8 << 20, stream: BinaryIO | None = None) -> None:
        self.name = name
        self.path = path
        self.on_error = on_error
        self.batch_rows = max(1, batch_rows)
        self.block_bytes = block_bytes
        self._stream = stream
        self._owned: Any = None
        self._dropped = 0  # rows of the last batch dropped as not UTF-8

    def _shown_path(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    def _open(self) -> Any:
        if self._stream is not None:
            return self._stream
        if self.path == "-":
            return sys.stdin.buffer
        if self.path.lower().endswith(COMPRESSED):
            self._owned = pa.input_stream(self.path, compression="detect")
        else:
            self._owned = open(self.path, "rb")  # noqa: SIM115
        return self._owned

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def _error(self, message: str, code: str, line: int | None = None) -> None:
        self.on_error(DataError(message, input_name=self.name, path=self._shown_path(), line=line,
                                code=code))

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        f = self._open()
        first, header_line = self._header(f)
        try:
            text = first.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            self._error(f"the CSV header is not UTF-8 text (byte 0x{first[exc.start]:02x})",
                        "InvalidHeader", header_line)
            return
        if not text.strip():
            return
        delimiter = _sniff_delimiter(text)
        names = next(_pycsv.reader([text], delimiter=delimiter))
        seen: dict[str, int] = {}
        for n in names:
            seen[n] = seen.get(n, 0) + 1
        dupes = [n for n, c in seen.items() if c > 1]
        if dupes:
            self._error(f"duplicate column name(s) in the CSV header: {', '.join(map(repr, dupes))}",
                        "InvalidHeader", 1)
            return
        wanted = match_columns(names, columns)
        pending: list[BaseException] = []

        def invalid_row(row: Any) -> str:
            line = None if row.number is None else row.number + header_line
            try:
                self._error(f"CSV row has {row.actual_columns} fields, the header has "
                            f"{row.expected_columns}", "InvalidData", line)
            except BaseException as exc:  # noqa: BLE001 - re-raised after pyarrow returns
                pending.append(exc)
                return "error"
            return "skip"

        reader = pcsv.open_csv(
            f,
            read_options=pcsv.ReadOptions(column_names=names, block_size=self.block_bytes,
                                          use_threads=False),  # row numbers known
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=invalid_row),
            convert_options=pcsv.ConvertOptions(
                # bytes first: a value that is not UTF-8 is then one bad event, not a bad file
                column_types={n: pa.binary() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                include_columns=wanted or names[:1],
            ),
        )
        seen = 0  # rows read so far: a row that is not UTF-8 is named by its position
        try:
            for batch in reader:
                batch = self._to_text(batch, seen)
                seen += batch.num_rows + self._dropped
                if not wanted:
                    batch = batch.select([])
                for start in range(0, batch.num_rows, self.batch_rows):
                    yield batch.slice(start, self.batch_rows)
        except pa.ArrowInvalid as exc:
            if pending:
                raise pending[0] from None
            self._error(f"unreadable CSV: {exc}", "InvalidData")
        if pending:
            raise pending[0]

    def _header(self, f: Any) -> tuple[bytes, int]:
        """The header row (BOM removed) and its line number: blank lines before it are skipped."""
        line = 0
        while True:
            first = f.readline() if hasattr(f, "readline") else b""
            line += 1
            if line == 1 and first.startswith(_BOM):
                first = first[3:]
            if not first or first.strip():
                return first, line

    def _to_text(self, batch: pa.RecordBatch, seen: int) -> pa.RecordBatch:
        """The batch's byte columns as strings. A row holding a value that is not UTF-8 is
        reported (its position among the file's rows, and the field) and dropped."""
        self._dropped = 0
        try:
            return pa.RecordBatch.from_arrays([c.cast(pa.string()) for c in batch.columns],
                                              names=batch.schema.names)
        except pa.ArrowInvalid:
            pass
        bad: set[int] = set()
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            for row, value in enumerate(col.to_pylist()):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    if row not in bad:
                        bad.add(row)
                        self.on_error(DataError("CSV value is not UTF-8 text", input_name=self.name,
                                                path=self._shown_path(), event=seen + row + 1,
                                                field_name=name, code="InvalidData"))
        keep = pa.array([row not in bad for row in range(batch.num_rows)])
        self._dropped = len(bad)
        kept = batch.filter(keep)
        return pa.RecordBatch.from_arrays([c.cast(pa.string()) for c in kept.columns],
                                          names=kept.schema.names)


def _variant_csv(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "Record"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, float):
        return json.dumps(value) if value == value and abs(value) != float("inf") else None
    return str(value)


def csv_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as CSV text (NULL stays NULL, written as an empty field)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if is_variant(t):
        from asaql.types import variant_values

        return pa.array([_variant_csv(v) for v in variant_values(arr)], pa.string())
    if pa.types.is_string(t):
        return arr
    if pa.types.is_large_string(t):
        return arr.cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_integer(t):
        return arr.cast(pa.string())
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _float_text(arr)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return format_datetimes(arr)
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return pc.if_else(arr.is_valid(), "Record", pa.scalar(None, pa.string()))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pc.if_else(arr.is_valid(), "Array", pa.scalar(None, pa.string()))
    return pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())


def _csv_field(text: pa.Array) -> pa.Array:
    """CSV fields: quoted (quotes doubled) only where needed; NULL -> empty."""
    needs = pc.match_substring_regex(text, r'[",\r\n]')
    if pc.any(needs).as_py():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(needs, quoted, text)
    return pc.fill_null(text, "") if text.null_count else text


def encode_rows(batch: pa.RecordBatch, names: Sequence[str]) -> pa.Array:
    """One CSV line per row (with its newline), columns in ``names`` order."""
    index = {n: i for i, n in enumerate(batch.schema.names)}
    n = batch.num_rows
    cols = [_csv_field(csv_text(batch.column(index[c]))) if c in index else pa.array([""] * n, pa.string())
            for c in names]
    if not cols:
        return pa.array(["\n"] * n, pa.string())
    return pc.binary_join_element_wise(pc.binary_join_element_wise(*cols, ","), "\n", "")


class CsvSink(ByteSink):
    def __init__(self, name: str, path: str, *, stream: BinaryIO | None = None) -> None:
        super().__init__(name, path, stream=stream)
        self._names: list[str] | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self._names is None:
            self._names = list(batch.schema.names)
            head = io.StringIO()
            _pycsv.writer(head, lineterminator="\n").writerow(self._names)
            self._f.write(head.getvalue().encode("utf-8"))
        if batch.num_rows:
            self._f.write(string_bytes(encode_rows(batch, self._names)))
        if not self._owned:
            self._f.flush()
