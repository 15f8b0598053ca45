"""Scan: read an input, type it, stamp every event with its event time.

Per batch: CREATE TABLE typing (rows that do not convert are data errors, dropped),
EventEnqueuedUtcTime typed as datetime when the data carries it (EventProcessedUtcTime and
PartitionId are virtual: the evaluator answers them by name, so ``SELECT *`` stays the payload), TIMESTAMP BY (rows whose time cannot be read are data errors, dropped), then
the row becomes one record column named by the alias plus ``__ts``. Then the event ordering
policies of the job configuration (late arrival, out of order, re-sorting within the tolerance;
:mod:`asaql.time.watermark`) and a watermark after every batch, so a live input produces
results as time moves on, not only at its end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import DataError, ExecutionError
from asaql.exec.evaluate import evaluate
from asaql.exec.operator import TS, ExecContext, Item, Watermark
from asaql.plan import logical as lp
from asaql.time.watermark import OrderingPolicy, dt_to_us, ts_to_us, us_to_dt
from asaql.types import DATETIME, to_python

__all__ = ["NO_WATERMARK", "ScanOperator", "declared_column", "to_struct"]

ENQUEUED = "EventEnqueuedUtcTime"
EARLY_ARRIVAL_US = 5 * 60 * 1_000_000  # ASA's fixed early-arrival window: 5 minutes
PROCESSED = "EventProcessedUtcTime"
PARTITION = "PartitionId"

#: What a live input yields on an idle tick (a followed file or a pipe with nothing new, a
#: library iterator's ``None``) when its watermark has not moved: the last watermark again,
#: or this one before any (it promises nothing). The runtime pulls one output at a time; an
#: operator waiting on an idle input would otherwise keep control, and the rows that other
#: outputs (or other readers of a shared input) already hold would wait for the next event.
NO_WATERMARK = Watermark(dt.datetime.min.replace(tzinfo=dt.UTC))

#: name -> function(columns) -> batches; given by the session
SourceFactory = Callable[[str, list[str] | None], Iterator[pa.RecordBatch]]


def _hashable(value: object) -> object:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def _scopes_named(node: lp.Scan) -> tuple[str, ...]:
    """The aliases that the TIMESTAMP BY and OVER expressions of ``node`` qualify fields with."""
    from asaql.plan import expr as bx

    exprs = [e for e in (node.timestamp_by, *node.timestamp_over) if e is not None]
    found = {sub.scope for e in exprs for sub in bx.walk(e) if isinstance(sub, bx.Col) and sub.scope}
    return tuple(sorted(found))


def to_struct(batch: pa.RecordBatch) -> pa.Array:
    """The whole row as one record column."""
    if batch.num_columns == 0:
        return pa.array([{}] * batch.num_rows, pa.struct([]))
    return pa.StructArray.from_arrays(batch.columns, names=batch.schema.names)


def _rebuilt(raw: pa.RecordBatch, arrays: list[pa.Array], names: list[str]) -> pa.RecordBatch:
    """``raw`` with its columns replaced, keeping its row count even with no columns (events
    that hold none of the fields the query reads are still events)."""
    if not arrays:
        return raw
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _place_of(raw: pa.RecordBatch) -> tuple[str, np.ndarray] | None:
    """(file, line of each row) when the reader says where the batch's events are."""
    from asaql.io.jsonl import LINE_KEY, LINES_KEY, PATH_KEY

    meta = raw.schema.metadata
    if not meta or PATH_KEY not in meta:
        return None
    if LINE_KEY in meta:
        first = int(meta[LINE_KEY])
        return meta[PATH_KEY].decode(), np.arange(first, first + raw.num_rows)
    if LINES_KEY in meta:
        lines = np.array([int(k) for k in meta[LINES_KEY].split(b",")], dtype=np.int64)
        if len(lines) == raw.num_rows:
            return meta[PATH_KEY].decode(), lines
    return None


_NUMERIC_TARGETS = ("bigint", "float", "bit")


def _text_input(raw: pa.RecordBatch) -> bool:
    """Whether the batch comes from a format without types (CSV: every value is text). A
    JSON reader's batch names its file (schema metadata); a CSV reader's does not."""
    from asaql.io.jsonl import PATH_KEY

    meta = raw.schema.metadata or {}
    if PATH_KEY in meta and not meta[PATH_KEY].decode().lower().split(".gz")[0].endswith(".csv"):
        return False
    return all(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)
               for t in raw.schema.types)


def declared_column(arr: pa.Array, type_name: str, *, text_input: bool) -> pa.Array:
    """A column read as its CREATE TABLE type; NULL where a non-NULL value deviates from it.

    CREATE TABLE declares what to expect, it does not convert between a format's own types
    (R:create-table-stream-analytics.md); only conversions without precision loss are
    implicit (R:data-types-azure-stream-analytics.md). So: bigint -> float is read, a float
    with a fraction is not a bigint, a JSON string is not a number or a bit (CSV text is,
    when it parses: CSV has no other type), ISO-8601 text is a datetime in every format.

    >>> declared_column(pa.array([3, None]), "float", text_input=False).to_pylist()
    [3.0, None]
    >>> declared_column(pa.array([2.0, 5.5]), "bigint", text_input=False).to_pylist()
    [2, None]
    >>> declared_column(pa.array(["7"]), "bigint", text_input=False).to_pylist()
    [None]
    >>> declared_column(pa.array(["7"]), "bigint", text_input=True).to_pylist()
    [7]
    """
    from asaql.functions.conversion import cast
    from asaql.types import is_variant, normalize_type_name, variant_array

    target = normalize_type_name(type_name) or type_name
    t = arr.type
    if is_variant(t):
        values = [_deviation_free(v, target, text_input) for v in to_python(arr)]
        return cast(variant_array(values), target, try_=True)
    if target in _NUMERIC_TARGETS and not text_input and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return pa.nulls(len(arr), cast(arr.slice(0, 0), target, try_=True).type)
    converted = cast(arr, target, try_=True)
    if target == "bigint" and pa.types.is_floating(t):
        lossy = pc.not_equal(converted.cast(pa.float64()), arr.cast(pa.float64())).fill_null(False)
        converted = pc.if_else(lossy, pa.scalar(None, converted.type), converted)
    return converted


def _deviation_free(value: Any, target: str, text_input: bool) -> Any:
    """One value of a mixed-type column, or None when it deviates from ``target``."""
    if isinstance(value, str) and target in _NUMERIC_TARGETS and not text_input:
        return None
    if isinstance(value, float) and target == "bigint" and not value.is_integer():
        return None
    return value


class ScanOperator:
    def __init__(self, node: lp.Scan, ctx: ExecContext, open_input: SourceFactory) -> None:
        self.node = node
        self.ctx = ctx
        self.open_input = open_input
        self._key_ids: dict[object, int] = {}
        self._seen = 0  # events read so far: data errors name the event's position in the input
        self._place: tuple[str, np.ndarray] | None = None  # file and lines of the batch in hand
        self._start_column: pa.Array | None = None
        self._scopes = _scopes_named(node)

    def __iter__(self) -> Iterator[Item]:
        if self.node.reference:
            yield from self._plain()
            return
        from asaql.time.watermark import EventOrderer

        policy = self._policy()
        if self._timeless(policy):
            yield from self._unordered()
            return
        orderer = EventOrderer(policy, keyed=bool(self.node.timestamp_over))
        metrics, name = self.ctx.metrics, self.node.input_name
        last_event = self._wall_us()
        mark = NO_WATERMARK  # the last watermark handed on; an idle tick repeats it
        for raw in self.open_input(name, self._columns()):
            if not raw.num_rows:  # a live input with nothing new: time may still move
                released = orderer.idle(self._wall_us() - last_event)
                yield from released.batches
                if released.watermark is not None:
                    mark = Watermark(us_to_dt(released.watermark))
                yield mark  # moved or not: the runtime gets control back (see NO_WATERMARK)
                continue
            last_event = self._wall_us()
            metrics.add(metrics.events_in, name, raw.num_rows)
            batch, arrival = self._prepare_with_arrival(raw)
            if arrival is not None:
                batch, arrival = self._drop_early(batch, arrival)
            if not batch.num_rows:
                continue
            released = orderer.push(batch, ts_to_us(batch.column(TS)), arrival, self._keys(batch))
            if released.dropped:
                metrics.add(metrics.dropped, name, released.dropped)
            if released.adjusted:
                metrics.add(metrics.adjusted, name, released.adjusted)
            yield from released.batches
            if released.watermark is not None:
                mark = Watermark(us_to_dt(released.watermark))
                yield mark
        yield from orderer.flush()
        yield Watermark.END

    def _timeless(self, policy: OrderingPolicy) -> bool:
        """A job that never observes event time, under a policy that neither re-sorts nor
        drops: the ordering policy cannot change what comes out, so it is not run."""
        return not self.node.observes_time and policy.out_of_order_us == 0 and not policy.drop

    def _unordered(self) -> Iterator[Item]:
        """The stream of a timeless job: every event stamped with the run's start time (the
        watermark the ordering policy would give: the start time, once), in input order."""
        metrics, name = self.ctx.metrics, self.node.input_name
        promised = False
        for raw in self.open_input(name, self._columns()):
            if not raw.num_rows:  # a live input with nothing new: hand control back
                yield Watermark(us_to_dt(dt_to_us(self.ctx.start_time) - 1)) if promised else NO_WATERMARK
                continue
            metrics.add(metrics.events_in, name, raw.num_rows)
            batch = self._prepare(raw)
            if batch.num_rows:
                yield batch
                if not promised:
                    promised = True
                    yield Watermark(us_to_dt(dt_to_us(self.ctx.start_time) - 1))
        yield Watermark.END

    def _plain(self) -> Iterator[Item]:
        """Reference data: typed and stamped, no ordering policies."""
        for raw in self.open_input(self.node.input_name, self._columns()):
            self.ctx.metrics.add(self.ctx.metrics.events_in, self.node.input_name, raw.num_rows)
            batch = self._prepare(raw)
            if batch.num_rows:
                yield batch
        yield Watermark.END

    def _prepare_with_arrival(self, raw: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray | None]:
        """The stamped batch and, for application time (TIMESTAMP BY), the arrival times."""
        batch = self._prepare(raw)
        if self.node.timestamp_by is None or not batch.num_rows:
            return batch, None
        row = batch.column(0)
        if not pa.types.is_struct(row.type) or row.type.get_field_index(ENQUEUED) < 0:
            return batch, None
        enq = pc.struct_field(row, ENQUEUED)
        if not pa.types.is_timestamp(enq.type):
            return batch, None
        enq = pc.coalesce(enq.cast(DATETIME), batch.column(TS))
        return batch, ts_to_us(enq)

    def _wall_us(self) -> int:
        return dt_to_us(self.ctx.clock())

    def _drop_early(self, batch: pa.RecordBatch, arrival: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray]:
        """ASA's early-arrival window: an event whose time is more than 5 minutes after its
        arrival time (EventEnqueuedUtcTime) is dropped and reported (EarlyInputEvent)."""
        early = ts_to_us(batch.column(TS)) > arrival + EARLY_ARRIVAL_US
        n = int(early.sum())
        if not n:
            return batch, arrival
        name = self.node.input_name
        self.ctx.metrics.add(self.ctx.metrics.dropped, name, n)
        self.ctx.report(f"warning: input '{name}': dropped {n} event(s) whose time is more than 5 minutes "
                        "after their arrival time (EarlyInputEvent)")
        return batch.filter(pa.array(~early)), arrival[~early]

    def _keys(self, batch: pa.RecordBatch) -> np.ndarray | None:
        """``TIMESTAMP BY ... OVER k``: a stable id per distinct key tuple."""
        if not self.node.timestamp_over:
            return None
        scoped = self._scoped(batch)
        values = [evaluate(e, scoped, self.ctx).to_pylist() for e in self.node.timestamp_over]
        ids = np.empty(batch.num_rows, dtype=np.int64)
        table = self._key_ids
        for i, key in enumerate(zip(*values, strict=True)):
            ids[i] = table.setdefault(_hashable(key), len(table))
        return ids

    def _scoped(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with its event column also under each alias that TIMESTAMP BY / OVER name
        (``FROM readings AS r TIMESTAMP BY r.ts``): a scan shared by several statements is
        read under a neutral name, but its expressions keep the alias they were bound with."""
        for scope in self._scopes:
            if batch.schema.get_field_index(scope) < 0:
                batch = batch.append_column(scope, batch.column(0))
        return batch

    def _columns(self) -> list[str] | None:
        cols = self.node.columns
        if cols is None:
            return None
        if ENQUEUED.lower() in {c.lower() for c in cols} or not self._needs_arrival():
            return list(cols)
        return [*cols, ENQUEUED]

    def _needs_arrival(self) -> bool:
        """The arrival time stamps events (no TIMESTAMP BY) and drives the ordering policies;
        a job that observes no event time, under a policy that does not re-sort, needs none."""
        if self.node.observes_time or self.node.reference:
            return True
        return self._policy().out_of_order_us > 0

    def _policy(self) -> OrderingPolicy:
        return OrderingPolicy.from_job_config(getattr(self.ctx.options, "job_config", None))

    def _prepare(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        first = self._seen + 1
        self._seen += raw.num_rows
        self._place = _place_of(raw)
        # where each event is: its file line when the reader knows it, else its 1-based position
        events = self._place[1] if self._place is not None else np.arange(first, first + raw.num_rows)
        raw, events = self._apply_schema(raw, events)
        raw = self._system_columns(raw)
        row = pa.RecordBatch.from_arrays([to_struct(raw)], names=[self.node.alias])
        ts = self._timestamps(row, raw)
        batch = pa.RecordBatch.from_arrays([row.column(0), ts], names=[self.node.alias, TS])
        if ts.null_count:
            batch, events = self._drop_bad_timestamps(batch, ts, events)
        if self.node.timestamp_over and batch.num_rows:
            batch = self._drop_null_keys(batch, events)
        return batch

    def _where(self, position: Any) -> dict[str, Any]:
        """Where a bad event is: its file and line when the reader knows them, else its
        position among the input's events."""
        if self._place is not None:
            return {"path": self._place[0], "line": int(position)}
        return {"event": int(position)}

    def _drop_null_keys(self, batch: pa.RecordBatch, events: np.ndarray) -> pa.RecordBatch:
        bad = pa.array([False] * batch.num_rows)
        scoped = self._scoped(batch)
        for e in self.node.timestamp_over:
            bad = pc.or_(bad, pc.is_null(evaluate(e, scoped, self.ctx)))
        if not pc.any(bad).as_py():
            return batch
        for i in pc.indices_nonzero(bad).to_pylist():
            self.ctx.data_error(DataError(
                "TIMESTAMP BY ... OVER key is NULL (InvalidInputTimeStampKey)",
                input_name=self.node.input_name, **self._where(events[i]), code="InvalidInputTimeStampKey"))
        return batch.filter(pc.invert(bad))

    def _apply_schema(self, raw: pa.RecordBatch, events: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray]:
        """CREATE TABLE: read each declared column as its type (:func:`declared_column`); a row
        that does not convert is dropped, reported once (for its first field that does not
        convert)."""
        if not self.node.schema or raw.num_rows == 0:
            return raw, events
        keep = pa.array([True] * raw.num_rows)
        arrays = list(raw.columns)
        raw_arrays = list(raw.columns)  # the values as read, for the error messages
        names = raw.schema.names
        lowered = {n.lower(): i for i, n in enumerate(names)}
        text = _text_input(raw)
        first_failure: dict[int, tuple[str, str, int]] = {}  # row -> (column, type, array index)
        for col_name, type_name in self.node.schema:
            idx = lowered.get(col_name.lower())
            if idx is None:
                continue
            converted = declared_column(arrays[idx], type_name, text_input=text)
            failed = pc.and_(pc.is_valid(arrays[idx]), pc.is_null(converted))
            for row in pc.indices_nonzero(pc.and_(failed, keep)).to_pylist():
                first_failure[row] = (col_name, type_name, idx)
            keep = pc.and_(keep, pc.invert(failed))
            arrays[idx] = converted
        for row in sorted(first_failure):  # in input order: the stop policy stops at the first
            col_name, type_name, idx = first_failure[row]
            value = to_python(raw_arrays[idx].slice(row, 1))[0]
            self.ctx.data_error(DataError(
                f"value {value!r} cannot be converted to {type_name} (TypeConversionError)",
                input_name=self.node.input_name, **self._where(events[row]), field_name=col_name,
                code="TypeConversionError"))
        out = _rebuilt(raw, arrays, names)
        if pc.all(keep).as_py():
            return out, events
        return out.filter(keep), events[np.asarray(keep)]

    def _system_columns(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        """Type EventEnqueuedUtcTime (the arrival time) as a datetime when the data has it."""
        names = raw.schema.names
        arrays = list(raw.columns)
        lowered = {n.lower(): i for i, n in enumerate(names)}
        if ENQUEUED.lower() in lowered:
            from asaql.functions.conversion import cast

            idx = lowered[ENQUEUED.lower()]
            if not pa.types.is_timestamp(arrays[idx].type):
                arrays[idx] = cast(arrays[idx], "datetime", try_=True)
        return _rebuilt(raw, arrays, names)

    def _timestamps(self, row: pa.RecordBatch, raw: pa.RecordBatch) -> pa.Array:
        """Event time: TIMESTAMP BY, else arrival time (EventEnqueuedUtcTime), else the time the
        run started (as ASA local runs do)."""
        from asaql.functions.conversion import cast

        n = raw.num_rows
        if self.node.timestamp_by is not None:
            value = evaluate(self.node.timestamp_by, self._scoped(row), self.ctx)
            if pa.types.is_timestamp(value.type):
                return value.cast(DATETIME)
            try:
                return cast(value, "datetime", try_=True)
            except ExecutionError:
                return pa.nulls(n, DATETIME)
        idx = raw.schema.get_field_index(ENQUEUED)
        if idx >= 0:
            enq = raw.column(idx)
            if pa.types.is_timestamp(enq.type):
                fallback = pa.scalar(self.ctx.start_time, DATETIME)
                return pc.fill_null(enq.cast(DATETIME), fallback)
        return self._start_times(n)

    def _start_times(self, n: int) -> pa.Array:
        """``n`` copies of the run's start time: slices of one array, made again only when a
        longer one is needed."""
        if self._start_column is None or len(self._start_column) < n:
            self._start_column = pa.repeat(pa.scalar(self.ctx.start_time, DATETIME), max(n, 1 << 16))
        return self._start_column.slice(0, n)

    def _drop_bad_timestamps(self, batch: pa.RecordBatch, ts: pa.Array,
                             events: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray]:
        bad = pc.is_null(ts)
        rows = pc.indices_nonzero(bad)
        values = evaluate(self.node.timestamp_by, batch.take(rows), self.ctx).to_pylist()
        for i, value in zip(rows.to_pylist(), values, strict=True):
            self.ctx.data_error(DataError(
                f"TIMESTAMP BY {self.node.timestamp_by} is {value!r}, not a valid datetime (InvalidInputTimeStamp)",
                input_name=self.node.input_name, **self._where(events[i]), code="InvalidInputTimeStamp"))
        return batch.filter(pc.invert(bad)), events[~np.asarray(bad)]
