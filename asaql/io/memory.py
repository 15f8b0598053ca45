"""In-memory inputs and outputs (library use, tests, the REPL).

Arrow data given by a program is brought to the engine's types, the way a Parquet input is
(:mod:`asaql.io.parquet`): integers -> int64 (uint64 beyond int64 -> float64), float16/32 and
decimals -> float64, timestamps and dates -> ``timestamp[us, UTC]`` (a timestamp without a time
zone is taken as UTC; one with another zone is converted), dictionary columns decoded, string
and binary views -> string and binary; inside records and arrays too::

    >>> import datetime as dt
    >>> t = pa.table({"s": pa.array(["a"]).dictionary_encode(),
    ...               "t": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("ns"))})
    >>> engine_batch(t.to_batches()[0]).schema
    s: string
    t: timestamp[us, tz=UTC]

Python dicts are typed with the JSON rules (int + float -> float, other mixes -> Variant,
datetimes -> datetime); numpy scalars, ``Decimal`` (-> float), ``date`` (-> midnight UTC),
``time``, ``UUID`` and enums (-> text) are taken as the JSON values they stand for.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from asaql.io.formats import match_columns, rows_to_batch
from asaql.types import DATETIME, VARIANT, is_variant, to_python, variant_array

__all__ = ["MemorySink", "MemorySource", "check_events", "concat_batches", "engine_array", "engine_batch",
           "engine_type"]


class MemorySource:
    """An input given as a ``pa.Table``, a RecordBatch, a list of RecordBatches or a list of dicts,
    or as an iterator (a generator, a queue reader, a ``pa.RecordBatchReader``) of those: a live
    input, read as the program produces it. From an iterator, each RecordBatch, Table or list of
    dicts is one batch as given (the caller chooses the latency); single dicts are grouped
    ``batch_rows`` at a time; ``None`` means "nothing new": grouped events go on at once, and an
    idle input lets time pass (with a bounded late-arrival tolerance, see EventOrderer.idle).
    Objects with the Arrow stream interface (``__arrow_c_stream__``: pandas >= 2.2 and polars
    DataFrames, DuckDB results) are read as a table.

    A value that cannot be read as events raises ``TypeError`` naming the input and the event.
    """

    def __init__(self, name: str, data: Any, *, batch_rows: int = 65536) -> None:
        check_events(name, data)
        self.name = name
        self.batch_rows = max(1, batch_rows)
        self._live: Iterator[Any] | None = None
        self._batches: list[pa.RecordBatch] = []
        if isinstance(data, pa.RecordBatchReader):
            self._live = iter(data)
        elif isinstance(data, Iterator):
            self._live = data
        elif isinstance(data, pa.Table):
            self._batches = [engine_batch(b) for b in data.to_batches()]
        elif isinstance(data, pa.RecordBatch):
            self._batches = [engine_batch(data)]
        elif isinstance(data, list | tuple) and data and isinstance(data[0], pa.RecordBatch):
            self._batches = [engine_batch(b) for b in data]
        elif isinstance(data, list | tuple):
            rows = list(data)
            self._batches = [
                self._rows(rows[s : s + self.batch_rows], s) for s in range(0, len(rows), self.batch_rows)
            ]
        else:
            self._batches = [engine_batch(b) for b in pa.table(data).to_batches()]

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        for batch in self._batches if self._live is None else self._from_live():
            if columns is not None:
                names = batch.schema.names
                keep = set(match_columns(names, columns))
                batch = batch.select([i for i, n in enumerate(names) if n in keep])
            if not batch.num_rows:
                yield batch  # an idle tick of a live input
                continue
            for start in range(0, batch.num_rows, self.batch_rows):
                yield batch.slice(start, self.batch_rows)

    def _rows(self, rows: list[dict[str, Any]], first: int) -> pa.RecordBatch:
        """A batch of dict events (``first``: the 0-based position of ``rows[0]`` in the input)."""
        try:
            return rows_to_batch(rows)
        except (TypeError, OverflowError):
            pass  # a value JSON has no spelling for (numpy scalar, Decimal, ...): the slow path
        plain = []
        for i, row in enumerate(rows):
            try:
                plain.append({_key(k): _plain(v) for k, v in row.items()})
            except TypeError as exc:
                raise TypeError(f"input '{self.name}': event {first + i + 1}: {exc}") from None
        return rows_to_batch(plain)

    def _from_live(self) -> Iterator[pa.RecordBatch]:
        assert self._live is not None
        pending: list[dict[str, Any]] = []
        seen = 0  # events read so far, for error positions
        for i, item in enumerate(self._live):
            if item is None:  # "nothing new": pass on what waits, and let time pass (idle)
                if pending:
                    yield self._rows(pending, seen - len(pending))
                    pending = []
                yield pa.RecordBatch.from_pydict({})
                continue
            if isinstance(item, dict):
                pending.append(item)
                seen += 1
                if len(pending) >= self.batch_rows:
                    yield self._rows(pending, seen - len(pending))
                    pending = []
                continue
            if pending:
                yield self._rows(pending, seen - len(pending))
                pending = []
            if isinstance(item, pa.RecordBatch):
                seen += item.num_rows
                yield engine_batch(item)
            elif isinstance(item, pa.Table):
                seen += item.num_rows
                yield from (engine_batch(b) for b in item.to_batches())
            elif isinstance(item, list | tuple) and all(isinstance(r, dict) for r in item):
                if item:
                    seen += len(item)
                    yield self._rows(list(item), seen - len(item))
            else:
                raise TypeError(f"input '{self.name}': item {i} of the iterator is a {type(item).__name__}, "
                                "not an event (dict), a list of events, a RecordBatch or a Table")
        if pending:
            yield self._rows(pending, seen - len(pending))

    def close(self) -> None:
        close = getattr(self._live, "close", None)
        if close is not None:
            close()


def check_events(name: str, data: Any) -> None:
    """Raise ``TypeError`` (naming the input and the event) for data :class:`MemorySource`
    cannot read; cheap (nothing is converted), so a program learns it when it adds the input."""
    if isinstance(data, Iterator | pa.Table | pa.RecordBatch | pa.RecordBatchReader):
        return
    if isinstance(data, list | tuple):
        if data and isinstance(data[0], pa.RecordBatch):
            for i, item in enumerate(data):
                if not isinstance(item, pa.RecordBatch):
                    raise TypeError(f"input '{name}': item {i + 1} is a {type(item).__name__}, "
                                    "in a list of RecordBatches")
            return
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise TypeError(f"input '{name}': event {i + 1} is a {type(row).__name__}, not a dict")
        return
    if hasattr(data, "__arrow_c_stream__"):
        return
    if isinstance(data, dict):
        raise TypeError(f"input '{name}': a dict is neither events nor a table: give one event as "
                        "[event], or columns as pyarrow.table(columns)")
    raise TypeError(f"input '{name}': cannot read a {type(data).__name__} as events (give a pyarrow "
                    "Table or RecordBatch, a list of dicts, an iterator of them, or a path)")


# ------------------------------------------------------------------ Arrow types -> the engine's


def engine_type(t: pa.DataType) -> pa.DataType:
    """The engine's type for an Arrow type (see the module docstring); nested types recursively."""
    if pa.types.is_dictionary(t):
        return engine_type(t.value_type)
    if is_variant(t):
        return t
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return DATETIME
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_struct(t):
        return pa.struct([t.field(i).with_type(engine_type(t.field(i).type)) for i in range(t.num_fields)])
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_list_view(t):
        return pa.list_(t.value_field.with_type(engine_type(t.value_type)))
    if pa.types.is_large_list(t) or pa.types.is_large_list_view(t):
        return pa.large_list(t.value_field.with_type(engine_type(t.value_type)))
    return t


def engine_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with every column in the engine's types (unchanged when it already is)."""
    if all(engine_type(f.type) == f.type for f in batch.schema):
        return batch
    arrays = [engine_array(col) for col in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def engine_array(arr: pa.Array) -> pa.Array:
    """``arr`` in the engine's types (nested ones too; a uint64 beyond int64 as the nearest
    float; anything Arrow cannot cast as a mixed-type column)."""
    target = engine_type(arr.type)
    if target == arr.type:
        return arr
    if pa.types.is_dictionary(arr.type):
        return engine_array(arr.dictionary_decode())
    try:  # timestamps: ns -> us truncates below a microsecond, as the JSON reader does
        return arr.cast(target, safe=not _has_timestamp(arr.type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if pa.types.is_integer(arr.type):  # a uint64 beyond int64: the nearest float
            return arr.cast(pa.float64(), safe=False)
        return variant_array(arr.to_pylist())


def _has_timestamp(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_timestamp(t.field(i).type) for i in range(t.num_fields))
    if hasattr(t, "value_type") and not pa.types.is_dictionary(t):
        return _has_timestamp(t.value_type)
    return False


# ------------------------------------------------------------------ Python values -> JSON's


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    raise TypeError(f"field names must be strings, got {key!r}")


def _plain(value: Any) -> Any:
    """The JSON-like value a Python value stands for (see the module docstring)."""
    if value is None or isinstance(value, str | bool | int | float | bytes | dt.datetime):
        return value
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, dt.time | uuid.UUID):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return _plain(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist) and type(value).__module__ == "numpy":
        return _plain(tolist())
    raise TypeError(f"cannot read a {type(value).__name__} value ({value!r:.40}) as a JSON value")


# ------------------------------------------------------------------ outputs


def concat_batches(batches: Sequence[pa.RecordBatch]) -> pa.Table:
    """One table from an output's batches. Types belong to values, so batches may disagree:
    int and float columns unify to float, a column missing from a batch is NULL there, and a
    column whose types cannot be unified becomes a Variant (JSON text per value;
    ``asaql.types.to_python`` and ``RunResult.rows()`` decode it)."""
    if not batches:
        return pa.table({})
    try:
        return pa.Table.from_batches(batches)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    tables = [pa.Table.from_batches([b]) for b in batches]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    names = list(dict.fromkeys(n for b in batches for n in b.schema.names))
    columns = {}
    for name in names:
        parts = [b.column(name) if name in b.schema.names else pa.nulls(b.num_rows) for b in batches]
        try:
            columns[name] = pa.chunked_array(pa.concat_tables(
                [pa.table({name: p}) for p in parts], promote_options="permissive").column(name).chunks)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            values = [v for p in parts for v in to_python(p)]
            columns[name] = pa.chunked_array([variant_array(values)], VARIANT)
    return pa.table(columns)


class MemorySink:
    """Collects the output batches; :meth:`table` gives them as one table."""

    def __init__(self, name: str = "output") -> None:
        self.name = name
        self.batches: list[pa.RecordBatch] = []
        self.closed = False

    def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def close(self) -> None:
        self.closed = True

    def table(self) -> pa.Table:
        return concat_batches(self.batches)

    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for b in self.batches:
            cols = {n: to_python(c) for n, c in zip(b.schema.names, b.columns, strict=True)}
            out.extend({n: v[i] for n, v in cols.items()} for i in range(b.num_rows))
        return out
