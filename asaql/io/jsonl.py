"""JSON input: JSON lines or one top-level array (output: :mod:`asaql.io.jsonl_sink`).

Reading JSON lines (the hot path)
---------------------------------
The file is read in chunks of ``chunk_bytes`` (8 MiB; the first one 1 MiB, since it is parsed
alone to learn the schema) cut after the last newline, so memory is bounded whatever the file
size; a chunk becomes one batch of ~50k events, so per-batch costs downstream stay small. A
regular file (read once, not followed) is memory-mapped chunk by chunk: each chunk is a view of
its own read-only mapping, unmapped once parsed, so no bytes are copied out of the page cache and
no large buffer is allocated per chunk (a file truncated while it is read is not supported). Other
inputs are read: a chunk is a view of the bytes as read (no copy), and from a pipe or a
compressed file the partial line after the cut is carried over.
Each chunk goes to pyarrow's C++ JSON reader
(``pyarrow.json.read_json``) as ONE block, and up to ``workers`` chunks are parsed at once on a
small thread pool (pyarrow releases the GIL); results and data errors come out in file order
(a worker counts its chunk's newlines and gives its errors' lines within the chunk; the reading
thread adds the file line).
One block per call is deliberate: pyarrow 26 can crash the process (SIGSEGV) when two blocks of
one call infer conflicting list/record types, while inside one block it raises a clean error.
No Python runs per event unless a chunk needs the fallback:

* pyarrow infers ISO-8601-looking strings (``"2024-05-14T12:00:10Z"``, ``"2024-05-14"``) as
  timestamps; ASA keeps them as strings with their original text. When a chunk's inferred schema
  holds a timestamp (also nested), the chunk is re-read with an ``explicit_schema`` giving those
  fields as strings (``unexpected_field_behavior='infer'`` for the rest); the fixed fields are
  reused for the following chunks. Columns come back in the data's field order.
* With ``columns`` (projection pushdown) the explicit schema holds only the requested fields
  (types learned from the first chunk, matched case-insensitively) and
  ``unexpected_field_behavior='ignore'``: pyarrow skips the rest of each event. A requested field
  not seen yet is declared ``null``; when a chunk mentions its name, the chunk is re-inferred.
  While every field seen so far is a requested one (nothing to skip), the known fields are read
  with ``'infer'`` instead and any other field in the result means re-inferring the chunk, which
  saves searching each chunk for the requested names not seen yet (e.g. EventEnqueuedUtcTime).
  pyarrow's 'ignore' applies at every level, so it would also drop a record's keys first seen
  in a later chunk: when a requested field is a record (or an array of records) every field is
  parsed and the requested ones selected. Limitation: while reading with ``'ignore'``, a second
  spelling (other letter case) of a requested field whose first spelling is known is not seen.
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

Writing JSON lines is :mod:`asaql.io.jsonl_sink`.
"""

from __future__ import annotations

import json
import mmap
import os
import select
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from asaql.errors import DataError
from asaql.io.formats import rows_to_batch

__all__ = ["IDLE", "JsonSource"]

#: yielded by a followed input that has no new data: no events, only "time has passed"
IDLE = pa.RecordBatch.from_pydict({})

ErrorHandler = Callable[[DataError], None]

CHUNK_BYTES = 8 << 20
FIRST_CHUNK_BYTES = 1 << 20
WORKERS = min(4, os.cpu_count() or 1)
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
    """A float no JSON text of an ASA value means (beyond int64, as pyarrow reads a too-large
    integer; +-Infinity) or a NaN literal: the chunk goes to the strict reader, which reports it."""
    t = arr.type
    if pa.types.is_floating(t):
        if arr.null_count == len(arr):
            return False
        mm = pc.min_max(arr)  # skips NaN: looked for apart
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is not None and (lo <= -_HUGE or hi >= _HUGE):
            return True
        return bool(pc.any(pc.is_nan(arr)).as_py())  # a NaN literal: not JSON, reported
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


def _has_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_struct(t.value_type)
    return False


def _has_list(t: pa.DataType) -> bool:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_list(f.type) for f in t)
    return False


def _has_null_list(t: pa.DataType) -> bool:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.types.is_null(t.value_type) or _has_null_list(t.value_type)
    if pa.types.is_struct(t):
        return any(_has_null_list(f.type) for f in t)
    return False


def _fix_null_lists(arr: pa.Array) -> pa.Array:
    """Rebuild ``list<null>`` arrays: pyarrow 26's JSON reader gives them a values child shorter
    than the offsets say (``[null, null]``), an invalid array that crashes later kernels."""
    t = arr.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        cls = pa.LargeListArray if pa.types.is_large_list(t) else pa.ListArray
        offsets = arr.offsets
        if pa.types.is_null(t.value_type):
            values = pa.nulls(offsets[-1].as_py() if len(offsets) else 0)
        else:
            values = _fix_null_lists(arr.values)
        return cls.from_arrays(offsets, values, mask=arr.is_null() if arr.null_count else None)
    if pa.types.is_struct(t):
        children = [_fix_null_lists(arr.field(i)) if _has_null_list(f.type) else arr.field(i)
                    for i, f in enumerate(t)]
        return pa.StructArray.from_arrays(children, fields=list(t),
                                          mask=arr.is_null() if arr.null_count else None)
    return arr


def _repair(table: pa.Table) -> pa.Table:
    for i, fld in enumerate(table.schema):
        if _has_null_list(fld.type):
            fixed = pa.chunked_array([_fix_null_lists(c) for c in table.column(i).chunks], fld.type)
            table = table.set_column(i, fld, fixed)
    return table


def _valid(table: pa.Table) -> pa.Table:
    """The table with its ``list<null>`` columns rebuilt, checked (raises ArrowInvalid)."""
    if any(_has_null_list(f.type) for f in table.schema):
        table = _repair(table)
    table.validate()
    return table


def _reorder(table: pa.Table, order: dict[str, int]) -> pa.Table:
    names = table.schema.names
    big = len(order)
    ranked = sorted(range(len(names)), key=lambda i: (order.get(names[i], big), i))
    if ranked == list(range(len(names))):
        return table
    return table.select(ranked)


# --------------------------------------------------------------------------- chunk parsing


#: a newline-aligned piece of the input: bytes, or a view of the buffer it was read into
Chunk = bytes | memoryview
#: what parsing a chunk gives: the data, (message, 0-based line in the chunk) per bad event,
#: and the chunk's newline count
Parsed = tuple[pa.Table | pa.RecordBatch | None, list[tuple[str, int]], int]


def _count_lines(block: Chunk) -> int:
    """Newlines in ``block`` (numpy: ~5x faster than ``bytes.count`` on megabytes)."""
    import numpy as np

    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))


def _is_utf8(block: Chunk) -> bool:
    """Whether ``block`` is valid UTF-8 (all-ASCII, the common case, is told by one numpy
    pass; anything else is decoded)."""
    import codecs

    import numpy as np

    raw = np.frombuffer(block, dtype=np.uint8)
    if not len(raw) or int(raw.max()) < 0x80:
        return True
    try:
        codecs.utf_8_decode(block, "strict", True)
    except UnicodeDecodeError:
        return False
    return True


def _lead(chunk: Chunk) -> bytes:
    """The chunk's first non-whitespace byte (empty when it is all whitespace)."""
    view = memoryview(chunk)
    for start in range(0, len(view), 1 << 16):
        piece = bytes(view[start : start + (1 << 16)]).lstrip()
        if piece:
            return piece[:1]
    return b""


def _mentions(chunk: Chunk, names: Sequence[str]) -> bool:
    """Whether ``"name"`` occurs in the chunk, ASCII letter case ignored (as ``chunk.lower()``
    would find it; RE2 may also fold other Latin-1 letters, which only means a re-read). Runs
    in C++ without the GIL instead of lowering a copy of the chunk."""
    offsets = pa.array([0, len(chunk)], pa.int32()).buffers()[1]
    data = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(chunk)])
    for name in names:
        if pc.any(pc.match_substring(data, f'"{name}"', ignore_case=True)).as_py():
            return True
    return False



class _ChunkParser:
    """Turns newline-aligned chunks of JSON lines into Arrow tables; keeps what it learned."""

    def __init__(self, src: JsonSource, columns: Sequence[str] | None) -> None:
        self.src = src
        self.want = None if columns is None else {c.lower() for c in columns}
        self.started = False
        self.fixed: dict[str, pa.Field] = {}  # no projection: fields forced (timestamps -> string)
        self.known: dict[str, pa.Field] = {}  # projection: learned types of requested fields
        self.order: dict[str, int] = {}
        self.seen: frozenset[str] = frozenset()  # projection: every field name seen (lower case)

    def _read(self, chunk: Chunk, schema: pa.Schema | None, unexpected: str = "infer") -> pa.Table:
        # the whole chunk as one block (see the module docstring: cross-block inference can crash)
        ro = pj.ReadOptions(use_threads=False, block_size=len(chunk) + 1)
        po = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected)
        return pj.read_json(pa.BufferReader(chunk), read_options=ro, parse_options=po)

    def parse(self, chunk: Chunk) -> Parsed:
        """Parse one chunk (may run on a worker thread). Data errors are returned with their
        0-based line in the chunk (the file line is known only in order, on the reading
        thread), with the chunk's newline count."""
        nlines = _count_lines(chunk)
        if not _is_utf8(chunk):  # Arrow's reader does not check: the strict reader reports it
            data, problems = self._slow(chunk)
            return data, problems, nlines
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
        if table is not None and any(_has_list(f.type) for f in table.schema):
            table = self._check_lists(chunk, table)
        if table is None or _has_huge_float(table):
            data, problems = self._slow(chunk)
            return data, problems, nlines
        return table, [], nlines

    def _check_lists(self, chunk: Chunk, table: pa.Table) -> pa.Table | None:
        """pyarrow 26's JSON inference drops the leading nulls of an array (``[null, 1]``) and
        builds an invalid column; reading again with the schema as explicit types is correct."""
        try:
            return _valid(table)
        except pa.ArrowInvalid:
            pass
        try:
            again = self._read(chunk, table.schema, "infer" if self.want is None else "ignore")
            if self.want is None:
                again = _reorder(again, {n: i for i, n in enumerate(table.schema.names)})
            return _valid(again)
        except pa.ArrowInvalid:
            return None

    # pure inference: learn the types, fix timestamps
    def _infer(self, chunk: Chunk) -> pa.Table:
        table = self._read(chunk, None)
        self.order = {n: i for i, n in enumerate(table.schema.names)}
        fixes = {f.name: f.with_type(_no_ts(f.type)) for f in table.schema if _has_ts(f.type)}
        if fixes:
            table = self._read(chunk, pa.schema(list(fixes.values())), "infer")
            table = _reorder(table, self.order)
        self.started = True
        self.fixed = fixes
        if self.want is None:
            return table
        known = dict(self.known)  # replaced, never mutated: other threads may be reading it
        for fld in table.schema:
            if fld.name.lower() in self.want:
                known[fld.name] = fld
        self.known = known
        self._saw(table.schema)
        return self._project(table)

    def _saw(self, schema: pa.Schema) -> None:
        self.seen = self.seen | {n.lower() for n in schema.names}

    def _project(self, table: pa.Table) -> pa.Table:
        keep = [i for i, f in enumerate(table.schema)
                if f.name.lower() in self.want and not pa.types.is_null(f.type)]  # type: ignore[operator]
        return table.select(keep)

    def _fast(self, chunk: Chunk) -> pa.Table | None:
        if self.want is None:
            return self._fast_all(chunk)
        known = self.known
        if any(_has_struct(f.type) for f in known.values()):
            # a requested record: 'ignore' would also drop its keys first seen from now on, so
            # parse every field and select (correct, slower)
            table = self._fast_all(chunk)
            if table is None:
                return None
            learned = dict(known)
            for fld in table.schema:
                if fld.name.lower() in self.want:  # type: ignore[operator]
                    learned[fld.name] = fld
            self.known = learned
            self._saw(table.schema)
            return self._project(table)
        fields = [f for f in known.values() if not pa.types.is_null(f.type)]
        if self.seen <= self.want:  # type: ignore[operator]
            return self._complete(chunk, fields)
        known_lower = {f.name.lower() for f in fields}
        unknown = [w for w in self.want if w not in known_lower]  # type: ignore[union-attr]
        if unknown and _mentions(chunk, unknown):
            return None  # a requested field shows up: learn its type
        return self._read(chunk, pa.schema(fields), "ignore")

    def _complete(self, chunk: Chunk, fields: list[pa.Field]) -> pa.Table | None:
        """Every field seen so far is requested: nothing to skip, so read the known fields
        with their types and let pyarrow report any other field (``'infer'``) instead of
        searching the chunk for the requested names not seen yet. A field beyond the known
        ones, unless a requested one that is null throughout, means re-inferring the chunk."""
        table = self._read(chunk, pa.schema(fields), "infer")
        if table.num_columns > len(fields):
            names = {f.name for f in fields}
            for fld in table.schema:
                if fld.name in names:
                    continue
                if not (pa.types.is_null(fld.type) and fld.name.lower() in self.want):  # type: ignore[operator]
                    return None
        return self._project(table)

    def _fast_all(self, chunk: Chunk) -> pa.Table | None:
        """Every field; the known timestamp-looking fields given as strings."""
        if not self.fixed:
            table = self._read(chunk, None)
            if any(_has_ts(f.type) for f in table.schema):
                return None  # new timestamp-looking field: re-infer and fix
            self.order = {n: i for i, n in enumerate(table.schema.names)}
            return table
        fixed, order = self.fixed, self.order
        table = self._read(chunk, pa.schema(list(fixed.values())), "infer")
        if any(_has_ts(f.type) for f in table.schema):
            return None
        return _reorder(table, order)

    # the Python fallback
    def _slow(self, chunk: Chunk) -> tuple[pa.RecordBatch | None, list[tuple[str, int]]]:
        errors: list[tuple[str, int]] = []
        rows: list[dict[str, Any]] = []
        lines: list[int] = []  # 0-based line in the chunk of each good event
        for k, raw in enumerate(bytes(chunk).split(b"\n")):
            text = raw.strip()
            if not text:
                continue
            if text.startswith(_BOM):
                text = text[3:].strip()
            try:
                event = loads(text)
            except _BigInt as exc:
                errors.append((f"integer {exc} is out of range for bigint", k))
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                errors.append((f"malformed JSON event: {exc}", k))
                continue
            if not isinstance(event, dict):
                errors.append((f"an event must be a JSON object, got {type(event).__name__}", k))
                continue
            rows.append(event)
            lines.append(k)
        if not rows:
            return None, errors
        batch = rows_to_batch(rows, self.want)
        return batch.replace_schema_metadata({_CHUNK_LINES_KEY: ",".join(map(str, lines)).encode()}), errors


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
        workers: int = WORKERS,
        poll_seconds: float = POLL_SECONDS,
        stream: BinaryIO | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.on_error = on_error
        self.batch_rows = max(1, batch_rows)
        self.follow = follow
        self.chunk_bytes = max(1, chunk_bytes)
        self.workers = max(1, workers)
        self.poll_seconds = poll_seconds
        self._stream = stream
        self._owned: Any = None
        self._closed = threading.Event()

    # errors
    def error(self, message: str, line: int | None) -> DataError:
        return DataError(message, input_name=self.name, path=self._shown_path(), line=line,
                         code="InvalidData")

    def report(self, message: str, line: int | None) -> None:
        self.on_error(self.error(message, line))

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

    def _read_some(self, f: Any, first: bool = False) -> bytes | None:
        """Up to a chunk of bytes; b"" at the end of the input; None when a live pipe (stdin)
        has had nothing new for ``poll_seconds``."""
        size = min(self.chunk_bytes, FIRST_CHUNK_BYTES) if first else self.chunk_bytes
        fd = _pipe_fd(f) if self.path == "-" else None
        if fd is not None:
            return self._read_pipe(f, fd, size)
        if self.follow and hasattr(f, "read1"):
            return f.read1(size)
        return f.read(size)

    def _read_pipe(self, f: Any, fd: int, size: int) -> bytes | None:
        """A live pipe: what has arrived, up to ``size`` (a producer writing fast fills whole
        chunks; one writing slowly has its events passed on at once instead of waiting for a
        full chunk)."""
        data = bytearray()
        while len(data) < size:
            ready, _, _ = select.select([fd], [], [], 0 if data else self.poll_seconds)
            if not ready:
                return bytes(data) if data else None
            piece = f.read1(size - len(data))
            if not piece:
                break
            data += piece
        return bytes(data)

    def close(self) -> None:
        self._closed.set()
        if self._owned is not None:
            try:
                self._owned.close()
            except Exception:  # noqa: BLE001, S110 - closing twice or from another thread
                pass
            self._owned = None

    def _chunks(self) -> Iterator[Chunk]:
        """Newline-aligned chunks, in file order. A chunk is a view of what was read, up to
        its last newline; the partial line after it is read again with the next chunk when
        the input can seek back (a regular file), else carried over (copied)."""
        if self._mappable():
            try:
                yield from self._mapped_chunks()
                return
            except _Unmappable:  # e.g. a file system without mmap: read it instead
                pass
        f = self._open()
        seekable = not self.follow and _seekable(f)
        rest = b""
        first = True
        while not self._closed.is_set():
            want = min(self.chunk_bytes, FIRST_CHUNK_BYTES) if first else self.chunk_bytes
            try:
                data = self._read_some(f, first)
                if first and (self.follow or self.path == "-"):  # a BOM may arrive in pieces
                    while data and len(data) < 3 and _BOM.startswith(data):
                        more = self._read_some(f)
                        if not more:
                            break
                        data += more
            except ValueError:  # closed under us
                return
            if data is None:  # a live pipe with nothing new
                yield memoryview(b"")
                continue
            if not data:
                if self.follow:
                    time.sleep(self.poll_seconds)
                    yield memoryview(b"")  # idle: lets the scan advance time (see batches)
                    continue
                break
            buf = rest + data if rest else data
            start = 3 if first and buf[:3] == _BOM else 0
            first = False
            cut = buf.rfind(b"\n", start)
            if cut < 0:
                rest = buf[start:]
                continue
            tail = len(buf) - cut - 1
            if tail and seekable and len(data) >= want and tail <= len(data):
                f.seek(-tail, os.SEEK_CUR)  # not at the end: read the partial line again
                rest = b""
            else:
                rest = buf[cut + 1 :]
            yield memoryview(buf)[start : cut + 1]
        if rest.strip() and not self._closed.is_set():
            yield rest

    def _mappable(self) -> bool:
        """A regular, uncompressed file read once (not followed): read by memory mapping."""
        if self._stream is not None or self.follow or self.path == "-":
            return False
        from asaql.io.formats import COMPRESSED

        if self.path.lower().endswith(COMPRESSED):
            return False
        try:
            return stat.S_ISREG(os.stat(self.path).st_mode)
        except OSError:
            return False

    def _mapped_chunks(self) -> Iterator[Chunk]:
        """:meth:`_chunks` for a regular file: each chunk is a view of its own read-only
        mapping of the file, unmapped when the last view of it is dropped (after its parse).
        No copy from the page cache, no large buffer allocated (and page-faulted) per chunk,
        and memory stays bounded by the chunks in flight."""
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            grain = mmap.ALLOCATIONGRANULARITY
            pos = 0
            first = True
            while pos < size and not self._closed.is_set():
                # the first chunk holds a whole BOM (else it is not seen) whatever chunk_bytes
                want = max(min(self.chunk_bytes, FIRST_CHUNK_BYTES), len(_BOM)) if first else self.chunk_bytes
                base = pos - pos % grain
                length = min(size, pos + want) - base
                try:
                    view = _mapped(f, base, length)
                except (OSError, ValueError) as exc:
                    if pos:
                        raise
                    raise _Unmappable from exc
                start = pos - base
                if first and view[start : start + 3] == _BOM:
                    start += 3
                first = False
                cut = length - 1 if base + length == size else _rfind_newline(view, start)
                while cut < 0:  # a line longer than the chunk: map more of the file
                    length = min(size - base, 2 * length)
                    view = _mapped(f, base, length)
                    cut = length - 1 if base + length == size else _rfind_newline(view, start)
                yield view[start : cut + 1]
                pos = base + cut + 1

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        chunks = self._chunks()
        line0 = 1
        for head in chunks:
            if _lead(head):
                break
            line0 += _count_lines(head)
        else:
            return
        if _lead(head) == b"[":
            yield from self._array_batches(head, line0, chunks, columns)
            return
        parser = _ChunkParser(self, columns)
        chunks = _prepend(head, chunks)
        if self.workers == 1 or self.follow:
            for chunk in chunks:
                if not len(chunk):
                    yield IDLE  # the file has not grown since the last poll
                    continue
                line0 = yield from self._deliver(parser.parse(chunk), line0)
            return
        # the first chunk alone (it teaches the parser the schema), then a bounded pipeline
        line0 = yield from self._deliver(parser.parse(next(chunks)), line0)
        pending: deque[Future[Parsed]] = deque()
        with ThreadPoolExecutor(self.workers, thread_name_prefix=f"asaql-json-{self.name}") as pool:
            try:
                for chunk in chunks:
                    if not len(chunk):  # a live pipe is idle: pass on what is parsed, then tick
                        while pending:
                            line0 = yield from self._deliver(pending.popleft().result(), line0)
                        yield IDLE
                        continue
                    pending.append(pool.submit(parser.parse, chunk))
                    if len(pending) > self.workers:
                        line0 = yield from self._deliver(pending.popleft().result(), line0)
                while pending:
                    line0 = yield from self._deliver(pending.popleft().result(), line0)
            finally:
                for fut in pending:
                    fut.cancel()

    def _deliver(self, parsed: Parsed, line0: int) -> Generator[pa.RecordBatch, None, int]:
        """Report a parsed chunk's errors with their file lines, yield its batches; the file
        line of the next chunk."""
        data, problems, nlines = parsed
        for message, k in problems:
            self.report(message, line0 + k)
        # one event per line, none skipped: the file line of every event is known (data errors
        # found later, by CREATE TABLE or TIMESTAMP BY, can name it)
        path = self._shown_path()
        meta = data.schema.metadata if data is not None else None
        if meta and _CHUNK_LINES_KEY in meta:  # the slow path: the line of every good event
            lines = [line0 + int(k) for k in meta[_CHUNK_LINES_KEY].split(b",")]
            for batch, offset in self._emit(data):
                rows = ",".join(map(str, lines[offset : offset + batch.num_rows]))
                yield batch.replace_schema_metadata({PATH_KEY: path.encode(), LINES_KEY: rows.encode()})
            return line0 + nlines
        dense = not problems and data is not None and data.num_rows == nlines
        for batch, offset in self._emit(data):
            yield _located(batch, path, line0 + offset) if dense else batch
        return line0 + nlines

    def _emit(self, data: pa.Table | pa.RecordBatch | None) -> Iterator[tuple[pa.RecordBatch, int]]:
        """Batches of at most ``batch_rows`` rows, each with the position of its first row."""
        if data is None or data.num_rows == 0:
            return
        if isinstance(data, pa.RecordBatch):
            for start in range(0, data.num_rows, self.batch_rows):
                yield data.slice(start, self.batch_rows), start
            return
        if data.num_columns == 0:
            empty = pa.RecordBatch.from_arrays([pa.nulls(data.num_rows)], names=["_"]).select([])
            yield from self._emit(empty)
            return
        if data.column(0).num_chunks > 1:
            data = data.combine_chunks()
        start = 0
        for batch in data.to_batches(max_chunksize=self.batch_rows):
            if batch.num_rows:
                yield batch, start
            start += batch.num_rows

    def _array_batches(self, head: Chunk, line0: int, chunks: Iterator[Chunk],
                       columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        data = b"".join([head, *chunks])
        try:
            events = loads(data)
        except _BigInt as exc:
            self.report(f"integer {exc} is out of range for bigint", None)
            return
        except json.JSONDecodeError as exc:
            self.report(f"malformed JSON array: {exc.msg}", line0 + exc.lineno - 1)
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


#: schema metadata of a batch whose rows are consecutive lines of a file: the file as shown in
#: messages, and the line of the first row
PATH_KEY = b"asaql.path"
LINE_KEY = b"asaql.line"
#: ... or, when lines were skipped, the line of every row ("12,13,15")
LINES_KEY = b"asaql.lines"
_CHUNK_LINES_KEY = b"asaql.chunk_lines"  # the slow parser's 0-based lines within its chunk


def _located(batch: pa.RecordBatch, path: str, line: int) -> pa.RecordBatch:
    return batch.replace_schema_metadata({PATH_KEY: path.encode(), LINE_KEY: str(line).encode()})


def _pipe_fd(f: Any) -> int | None:
    """The descriptor of a pipe or terminal that ``select`` can wait on (POSIX), else None
    (a regular file, a replaced ``sys.stdin`` without a descriptor, Windows)."""
    if os.name != "posix" or not hasattr(f, "read1"):
        return None
    try:
        fd = f.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    import stat

    return fd if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode) else None


def _seekable(f: Any) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class _Unmappable(Exception):
    """The file cannot be memory-mapped (raised before any chunk was handed out)."""


def _mapped(f: BinaryIO, offset: int, length: int) -> memoryview:
    """``length`` bytes of the file from ``offset`` (a multiple of the allocation granularity),
    as a view of a read-only mapping (unmapped when the last view is dropped)."""
    return memoryview(mmap.mmap(f.fileno(), length, offset=offset, access=mmap.ACCESS_READ))


def _rfind_newline(view: memoryview, start: int) -> int:
    """The position of the last newline in ``view`` at or after ``start``, else -1 (searched
    from the end in growing pieces: lines are short, the chunk is not)."""
    end = len(view)
    step = 1 << 16
    while end > start:
        lo = max(start, end - step)
        k = bytes(view[lo:end]).rfind(b"\n")
        if k >= 0:
            return lo + k
        end, step = lo, step * 4
    return -1


def _prepend(head: Chunk, rest: Iterator[Chunk]) -> Iterator[Chunk]:
    yield head
    yield from rest
