"""JSON input (JSON lines or one top-level array) and JSON lines output.

Reading JSON lines (the hot path)
---------------------------------
The file is read in chunks of ``chunk_bytes`` (8 MiB) cut after the last newline, so memory is
bounded whatever the file size. Each chunk goes to pyarrow's C++ JSON reader
(``pyarrow.json.read_json``, several threads over ``block_bytes`` blocks). No Python runs per
event unless a chunk needs the fallback:

* pyarrow infers ISO-8601-looking strings (``"2024-05-14T12:00:10Z"``, ``"2024-05-14"``) as
  timestamps; ASA keeps them as strings with their original text. When a chunk's inferred schema
  holds a timestamp (also nested), the chunk is re-read with an ``explicit_schema`` giving those
  fields as strings (``unexpected_field_behavior='infer'`` for the rest); the fixed fields are
  reused for the following chunks. Columns come back in the data's field order.
* With ``columns`` (projection pushdown) the explicit schema holds only the requested fields
  (types learned from the first chunk, matched case-insensitively) and
  ``unexpected_field_behavior='ignore'``: pyarrow skips the rest of each event. A requested field
  not seen yet is declared ``null``; when a chunk mentions its name, the chunk is re-inferred.
  Limitation: in this mode a *nested* key first appearing after the first chunk is not seen
  (pyarrow's 'ignore' applies at every level).
* A chunk pyarrow cannot read (a field whose type changes between events, malformed JSON, an
  integer beyond int64 — pyarrow would silently read it as a double) is read again in Python:
  ``json.loads`` per line, each bad line reported to ``on_error`` as
  ``DataError(code='InvalidData')`` with its 1-based line number in the file, the good events
  around it kept in file order, columns typed with :func:`~asaql.io.formats.column_from_values`
  (int + float -> float64, other mixes -> Variant).

Inside one batch int + float unify to float64. Across batches each chunk is typed on its own when
no projection is asked; with a projection a column keeps the numeric type learned first (a float
column stays float for later all-integer chunks).

A top-level array (``[ {...}, {...} ]``, first non-space byte ``[``) is parsed with ``json.loads``
as a whole and typed with the same rules.

Writing
-------
:class:`JsonLinesSink` encodes a whole batch at once with pyarrow string kernels
(:func:`~asaql.io.formats.json_text`) and writes the resulting buffer.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from asaql.errors import DataError
from asaql.io.formats import json_text, match_columns, rows_to_batch

__all__ = ["JsonLinesSink", "JsonSource", "encode_lines"]

ErrorHandler = Callable[[DataError], None]

CHUNK_BYTES = 8 << 20
BLOCK_BYTES = 1 << 20
POLL_SECONDS = 0.1
_BOM = b"\xef\xbb\xbf"
_HUGE = 9.2e18  # a double this large in a chunk may be an integer beyond int64: check in Python


class _BigInt(ValueError):
    pass


def _parse_int(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise _BigInt(text)
    return value


def _parse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_constant=_parse_constant)


def loads(text: str | bytes) -> Any:
    """``json.loads`` with ASA's limits: integers must fit a bigint, no NaN/Infinity."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _DECODER.decode(text)


# --------------------------------------------------------------------------- schema helpers


def _has_ts(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_ts(f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_ts(t.value_type)
    return False


def _no_ts(t: pa.DataType) -> pa.DataType:
    """The type with every timestamp (also nested) replaced by string."""
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_no_ts(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_no_ts(t.value_type))
    if pa.types.is_large_list(t):
        return pa.large_list(_no_ts(t.value_type))
    return t


def _has_float(t: pa.DataType) -> bool:
    if pa.types.is_floating(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_float(f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_float(t.value_type)
    return False


def _huge(arr: pa.Array) -> bool:
    t = arr.type
    if pa.types.is_floating(t):
        if arr.null_count == len(arr):
            return False
        mm = pc.min_max(arr)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        return lo is not None and (lo <= -_HUGE or hi >= _HUGE)
    if pa.types.is_struct(t):
        return any(_huge(c) for f, c in zip(t, arr.flatten(), strict=True) if _has_float(f.type))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _huge(arr.flatten())
    return False


def _has_huge_float(table: pa.Table) -> bool:
    for fld, col in zip(table.schema, table.columns, strict=True):
        if _has_float(fld.type) and any(_huge(c) for c in col.chunks):
            return True
    return False


def _reorder(table: pa.Table, order: dict[str, int]) -> pa.Table:
    names = table.schema.names
    big = len(order)
    ranked = sorted(range(len(names)), key=lambda i: (order.get(names[i], big), i))
    if ranked == list(range(len(names))):
        return table
    return table.select(ranked)


# --------------------------------------------------------------------------- chunk parsing


class _ChunkParser:
    """Turns newline-aligned chunks of JSON lines into Arrow tables; keeps what it learned."""

    def __init__(self, src: JsonSource, columns: Sequence[str] | None) -> None:
        self.src = src
        self.want = None if columns is None else {c.lower() for c in columns}
        self.started = False
        self.fixed: dict[str, pa.Field] = {}  # no projection: fields forced (timestamps -> string)
        self.known: dict[str, pa.Field] = {}  # projection: learned types of requested fields
        self.order: dict[str, int] = {}

    def _read(self, chunk: bytes, schema: pa.Schema | None, unexpected: str = "infer",
              block: int | None = None) -> pa.Table:
        ro = pj.ReadOptions(use_threads=True, block_size=block or self.src.block_bytes)
        po = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected)
        try:
            return pj.read_json(pa.BufferReader(chunk), read_options=ro, parse_options=po)
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc) and (block or self.src.block_bytes) < len(chunk):
                # an event longer than a block: read the chunk as one block
                return self._read(chunk, schema, unexpected, block=len(chunk) + 1)
            raise

    def parse(self, chunk: bytes, line0: int) -> pa.Table | pa.RecordBatch | None:
        table = None
        if self.started:
            try:
                table = self._fast(chunk)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = None
        if table is None:
            try:
                table = self._infer(chunk)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = None
        if table is None or _has_huge_float(table):
            return self._slow(chunk, line0)
        return table

    # pure inference: learn the types, fix timestamps
    def _infer(self, chunk: bytes) -> pa.Table:
        table = self._read(chunk, None)
        self.order = {n: i for i, n in enumerate(table.schema.names)}
        fixes = {f.name: f.with_type(_no_ts(f.type)) for f in table.schema if _has_ts(f.type)}
        if fixes:
            table = self._read(chunk, pa.schema(list(fixes.values())), "infer")
            table = _reorder(table, self.order)
        self.started = True
        if self.want is None:
            self.fixed = fixes
            return table
        for fld in table.schema:
            if fld.name.lower() in self.want:
                self.known[fld.name] = fld
        return self._project(table)

    def _project(self, table: pa.Table) -> pa.Table:
        keep = [i for i, f in enumerate(table.schema)
                if f.name.lower() in self.want and not pa.types.is_null(f.type)]  # type: ignore[operator]
        return table.select(keep)

    def _fast(self, chunk: bytes) -> pa.Table | None:
        if self.want is None:
            if not self.fixed:
                table = self._read(chunk, None)
                if any(_has_ts(f.type) for f in table.schema):
                    return None  # new timestamp-looking field: re-infer and fix
                self.order = {n: i for i, n in enumerate(table.schema.names)}
                return table
            table = self._read(chunk, pa.schema(list(self.fixed.values())), "infer")
            if any(_has_ts(f.type) for f in table.schema):
                return None
            return _reorder(table, self.order)
        known_lower = {n.lower() for n, f in self.known.items() if not pa.types.is_null(f.type)}
        unknown = [w for w in self.want if w not in known_lower]
        if unknown:
            lowered = chunk.lower()
            if any(b'"' + w.encode() + b'"' in lowered for w in unknown):
                return None  # a requested field shows up: learn its type
        fields = [f for f in self.known.values() if not pa.types.is_null(f.type)]
        table = self._read(chunk, pa.schema(fields), "ignore")
        return table

    # the Python fallback
    def _slow(self, chunk: bytes, line0: int) -> pa.RecordBatch | None:
        src = self.src
        rows: list[dict[str, Any]] = []
        for k, raw in enumerate(chunk.split(b"\n")):
            text = raw.strip()
            if not text:
                continue
            if text.startswith(_BOM):
                text = text[3:].strip()
            line = line0 + k
            try:
                event = loads(text)
            except _BigInt as exc:
                src.report(f"integer {exc} is out of range for bigint", line)
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                src.report(f"malformed JSON event: {exc}", line)
                continue
            if not isinstance(event, dict):
                src.report(f"an event must be a JSON object, got {type(event).__name__}", line)
                continue
            rows.append(event)
        if not rows:
            return None
        return rows_to_batch(rows, self.want)


# --------------------------------------------------------------------------- the source


class JsonSource:
    """JSON lines (or a top-level JSON array) from a file or stdin (``-``)."""

    def __init__(
        self,
        name: str,
        path: str,
        *,
        on_error: ErrorHandler,
        batch_rows: int = 65536,
        follow: bool = False,
        chunk_bytes: int = CHUNK_BYTES,
        block_bytes: int = BLOCK_BYTES,
        poll_seconds: float = POLL_SECONDS,
        stream: BinaryIO | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.on_error = on_error
        self.batch_rows = max(1, batch_rows)
        self.follow = follow
        self.chunk_bytes = max(1, chunk_bytes)
        self.block_bytes = max(64, block_bytes)
        self.poll_seconds = poll_seconds
        self._stream = stream
        self._owned: Any = None
        self._closed = threading.Event()

    # errors
    def report(self, message: str, line: int | None) -> None:
        self.on_error(DataError(message, input_name=self.name, path=self._shown_path(), line=line,
                                code="InvalidData"))

    def _shown_path(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    # io
    def _open(self) -> Any:
        if self._stream is not None:
            return self._stream
        if self.path == "-":
            return sys.stdin.buffer
        if self.follow:
            self._owned = open(self.path, "rb")  # noqa: SIM115
        else:
            from asaql.io.formats import COMPRESSED

            if self.path.lower().endswith(COMPRESSED):
                self._owned = pa.input_stream(self.path, compression="detect")
            else:
                self._owned = open(self.path, "rb")  # noqa: SIM115
        return self._owned

    def _read_some(self, f: Any) -> bytes:
        if self.follow and hasattr(f, "read1"):
            return f.read1(self.chunk_bytes)
        return f.read(self.chunk_bytes)

    def close(self) -> None:
        self._closed.set()
        if self._owned is not None:
            try:
                self._owned.close()
            except Exception:  # noqa: BLE001 - closing twice or from another thread
                pass
            self._owned = None

    def _chunks(self) -> Iterator[tuple[bytes, int]]:
        """Newline-aligned chunks with the 1-based file line number of their first line."""
        f = self._open()
        buf = b""
        line0 = 1
        first = True
        while not self._closed.is_set():
            try:
                data = self._read_some(f)
            except ValueError:  # closed under us
                return
            if not data:
                if self.follow:
                    time.sleep(self.poll_seconds)
                    continue
                break
            if first:
                while len(data) < 3 and _BOM.startswith(data):
                    more = self._read_some(f)
                    if not more:
                        break
                    data += more
                if data.startswith(_BOM):
                    data = data[3:]
                first = False
            buf = buf + data if buf else data
            cut = buf.rfind(b"\n")
            if cut < 0:
                continue
            block, buf = buf[: cut + 1], buf[cut + 1 :]
            yield block, line0
            line0 += block.count(b"\n")
        if buf.strip() and not self._closed.is_set():
            yield buf, line0

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        chunks = self._chunks()
        head = None
        for head in chunks:
            if head[0].strip():
                break
        else:
            return
        if head[0].lstrip()[:1] == b"[":
            yield from self._array_batches(head, chunks, columns)
            return
        parser = _ChunkParser(self, columns)
        for chunk, line0 in _prepend(head, chunks):
            yield from self._emit(parser.parse(chunk, line0))

    def _emit(self, data: pa.Table | pa.RecordBatch | None) -> Iterator[pa.RecordBatch]:
        if data is None or data.num_rows == 0:
            return
        if isinstance(data, pa.RecordBatch):
            for start in range(0, data.num_rows, self.batch_rows):
                yield data.slice(start, self.batch_rows)
            return
        if data.num_columns == 0:
            empty = pa.RecordBatch.from_arrays([pa.nulls(data.num_rows)], names=["_"]).select([])
            yield from self._emit(empty)
            return
        if data.column(0).num_chunks > 1:
            data = data.combine_chunks()
        for batch in data.to_batches(max_chunksize=self.batch_rows):
            if batch.num_rows:
                yield batch

    def _array_batches(self, head: tuple[bytes, int], chunks: Iterator[tuple[bytes, int]],
                       columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        data = b"".join([head[0], *(c for c, _ in chunks)])
        try:
            events = loads(data)
        except _BigInt as exc:
            self.report(f"integer {exc} is out of range for bigint", None)
            return
        except json.JSONDecodeError as exc:
            self.report(f"malformed JSON array: {exc.msg}", head[1] + exc.lineno - 1)
            return
        except (ValueError, UnicodeDecodeError) as exc:
            self.report(f"malformed JSON array: {exc}", None)
            return
        if not isinstance(events, list):
            self.report("a JSON input must hold objects, one per line, or one array of objects", 1)
            return
        rows = []
        for i, event in enumerate(events):
            if isinstance(event, dict):
                rows.append(event)
            else:
                self.on_error(DataError(
                    f"array element {i} is not a JSON object", input_name=self.name,
                    path=self._shown_path(), code="InvalidData"))
        for start in range(0, len(rows), self.batch_rows):
            yield rows_to_batch(rows[start : start + self.batch_rows], columns)


def _prepend(head: tuple[bytes, int], rest: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    yield head
    yield from rest


# --------------------------------------------------------------------------- the sink


def encode_lines(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """One JSON object per row, each ending with a newline, as a string array (column order kept,
    NULL columns written as ``null``)."""
    n = batch.num_rows
    if batch.num_columns == 0:
        return pa.array(["{}\n"] * n, pa.string())
    parts: list[Any] = []
    for i, (name, col) in enumerate(zip(batch.schema.names, batch.columns, strict=True)):
        parts.append(("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        parts.append(json_text(col))
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


def _buffer_of(lines: pa.Array) -> memoryview:
    """The bytes of a non-null string array, concatenated, without copying."""
    offsets = lines.buffers()[1]
    data = lines.buffers()[2]
    if data is None:
        return memoryview(b"")
    import numpy as np

    off = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(data)[int(off[0]) : int(off[-1])]


class JsonLinesSink:
    """Writes each row as one JSON object per line (ASA's line-separated JSON output)."""

    def __init__(self, name: str, path: str, *, stream: BinaryIO | None = None) -> None:
        self.name = name
        self.path = path
        self.rows = 0
        if stream is not None:
            self._f, self._owned = stream, False
        elif path == "-":
            self._f, self._owned = sys.stdout.buffer, False
        else:
            self._f, self._owned = open(path, "wb"), True  # noqa: SIM115

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        lines = encode_lines(batch)
        self._f.write(_buffer_of(lines))
        self.rows += batch.num_rows
        if not self._owned:
            self._f.flush()

    def close(self) -> None:
        if self._f is None:
            return
        try:
            if self._owned:
                self._f.close()
            else:
                self._f.flush()
        finally:
            self._f = None  # type: ignore[assignment]

