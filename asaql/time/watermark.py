"""Event ordering: late-arrival and out-of-order policies, re-sorting, and the watermark.

Settings are named as in ASA's ``JobConfig.json`` (asa-language.md §5)::

    EventsOutOfOrderMaxDelayInSeconds   out-of-order tolerance (default 0)
    EventsOutOfOrderPolicy              Adjust (default) | Drop  -- one action for both checks
    EventsLateArrivalMaxDelayInSeconds  late-arrival tolerance (-1 or absent: unbounded)

For every event, in arrival order (asa-language.md §15):

1. late arrival: ``arrival - event time > late`` -> the time becomes ``arrival - late`` (Adjust)
   or the event is dropped;
2. out of order: the watermark of its timeline (``TIMESTAMP BY ... OVER`` key, else the whole
   input) is ``max event time seen - tolerance``; an older event is moved up to the watermark
   (Adjust) or dropped;
3. events inside the tolerance wait in a buffer and leave it sorted by time (ties in arrival
   order) once the watermark reaches them.

Adjusting changes only the event time (``__ts``), never a payload field.

A picture, tolerance 5 s, arrival order left to right::

    event time   10:00:10   09:55:20          10:00:30   10:00:27
    max seen     10:00:10   10:00:10          10:00:30   10:00:30
    watermark    10:00:05   10:00:05          10:00:25   10:00:25
    result       kept       -> 10:00:05       kept       kept (re-sorted before 10:00:30)

The watermark handed to the operators downstream is a promise: no later event has a time at
or before it. Without ``OVER`` keys it is ``max seen - tolerance - 1 us`` (an adjusted event may
still land exactly on ``max seen - tolerance``). With ``OVER`` keys a key not seen yet may start
anywhere, so the promise also needs a bounded late-arrival tolerance: ``min(max arrival - late,
min over keys of key watermark) - 1 us``; with unbounded late arrival only the end of the input
closes time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from asaql.errors import ConfigError

__all__ = [
    "EPOCH",
    "EventOrderer",
    "OrderingPolicy",
    "Released",
    "dt_to_us",
    "take_runs",
    "ts_to_us",
    "us_to_dt",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NEG_INF = np.iinfo(np.int64).min // 4
POS_INF = np.iinfo(np.int64).max // 4
_US = 1_000_000


def us_to_dt(us: int) -> dt.datetime:
    """Microseconds since the epoch -> aware UTC datetime (clamped to datetime's range)."""
    if us >= dt_to_us(dt.datetime.max.replace(tzinfo=dt.UTC)):
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    if us <= dt_to_us(dt.datetime.min.replace(tzinfo=dt.UTC)):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return EPOCH + dt.timedelta(microseconds=int(us))


def dt_to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def ts_to_us(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A timestamp array (no nulls) as int64 microseconds."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_timestamp(arr.type) and arr.type.unit != "us":
        arr = arr.cast(pa.timestamp("us", tz=arr.type.tz))
    return np.asarray(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


@dataclass(frozen=True)
class OrderingPolicy:
    """Configuration only (the state lives in :class:`EventOrderer`)."""

    out_of_order_us: int = 0
    drop: bool = False
    late_us: int | None = None  # None: unbounded

    @classmethod
    def from_job_config(cls, cfg: Mapping[str, Any] | None) -> OrderingPolicy:
        cfg = {str(k).lower(): v for k, v in (cfg or {}).items()}
        ooo = _seconds(cfg.get("eventsoutofordermaxdelayinseconds"), "EventsOutOfOrderMaxDelayInSeconds")
        late = _seconds(cfg.get("eventslatearrivalmaxdelayinseconds"), "EventsLateArrivalMaxDelayInSeconds")
        policy = str(cfg.get("eventsoutoforderpolicy") or "Adjust").strip().lower()
        if policy not in ("adjust", "drop"):
            raise ConfigError(f"EventsOutOfOrderPolicy must be Adjust or Drop, not {policy!r}")
        if ooo is None or ooo < 0:
            ooo = 0
        return cls(
            out_of_order_us=int(ooo * _US),
            drop=policy == "drop",
            late_us=None if late is None or late < 0 else int(late * _US),
        )


def _seconds(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None


@dataclass
class Released:
    """What one push gave back: batches sorted by time, the watermark (us) if it moved, and
    how many events were adjusted and dropped."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    watermark: int | None = None
    adjusted: int = 0
    dropped: int = 0


@dataclass
class _Pending:
    batch: pa.RecordBatch
    ts: np.ndarray
    keys: np.ndarray


class EventOrderer:
    """The per-input state of the policies: max time seen per key, the re-sort buffer.

    ``push(batch, ts, arrival, keys)`` takes one batch in arrival order with its event times
    (int64 us), arrival times (or None) and timeline key ids (or None); the returned batches
    carry the adjusted times in ``ts_column``.
    """

    def __init__(self, policy: OrderingPolicy, *, keyed: bool = False, ts_column: str = "__ts") -> None:
        self.policy = policy
        self.keyed = keyed
        self.ts_column = ts_column
        self._max = np.full(1, NEG_INF, dtype=np.int64)  # per key id
        self._pending: list[_Pending] = []
        self._max_arrival = NEG_INF
        self._emitted = NEG_INF
        self._last = NEG_INF  # the last arrival: idle() counts from it (see there)

    # ------------------------------------------------------------------ push

    def push(self, batch: pa.RecordBatch, ts: np.ndarray, arrival: np.ndarray | None = None,
             keys: np.ndarray | None = None) -> Released:
        out = Released()
        n = len(ts)
        if n == 0:
            return out
        ts = np.array(ts, dtype=np.int64, copy=True)
        self._last = max(self._last, int(ts.max()) if arrival is None else int(np.max(arrival)))
        keys = np.zeros(n, dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
        keep = np.ones(n, dtype=bool)
        adjusted = np.zeros(n, dtype=bool)
        pol = self.policy
        if arrival is not None:
            arrival = np.asarray(arrival, dtype=np.int64)
            self._max_arrival = max(self._max_arrival, int(arrival.max()))
            if pol.late_us is not None:
                late = (arrival - ts) > pol.late_us
                if late.any():
                    if pol.drop:
                        keep &= ~late
                    else:
                        ts[late] = arrival[late] - pol.late_us
                        adjusted |= late
        self._grow(int(keys.max()) + 1)
        self._out_of_order(ts, keys, keep, adjusted)
        out.dropped = int(n - keep.sum())
        out.adjusted = int((adjusted & keep).sum())
        if not keep.all():
            mask = pa.array(keep)
            batch, ts, keys = batch.filter(mask), ts[keep], keys[keep]
        if len(ts):
            batch = _with_ts(batch, ts, self.ts_column)
            self._pending.append(_Pending(batch, ts, keys))
        return self._advance(out)

    def idle(self, elapsed_us: int) -> Released:
        """No event for ``elapsed_us`` of wall-clock time on a live input. ASA then moves the
        watermark with the estimated arrival time: ``last arrival + elapsed - late tolerance``
        (the last arrival is the largest arrival time pushed; an event without one, e.g. read
        from a file, counts its event time as its arrival). An early event (time after its
        arrival, up to 5 minutes) does not move the estimate. ``elapsed_us`` comes from the
        run's clock (``ExecContext.clock``, injectable in tests). Only with a bounded
        late-arrival tolerance: unbounded, time moves with events alone. Events that arrive
        later with older times meet the out-of-order policy at the new watermark."""
        out = Released()
        late = self.policy.late_us
        seen = self._max > NEG_INF
        if late is None or self._last <= NEG_INF or elapsed_us <= 0:
            return out
        idle_wm = self._last + elapsed_us - late
        tol = self.policy.out_of_order_us
        self._max = np.where(seen, np.maximum(self._max, idle_wm + tol), self._max)
        self._max_arrival = max(self._max_arrival, idle_wm + late)
        return self._advance(out)

    def _advance(self, out: Released) -> Released:
        """Release what the key watermarks have passed; a new global watermark, if it moved."""
        out.batches = self._release(self._key_watermarks())
        wm = self._global_watermark()
        if wm is not None and wm > self._emitted:
            self._emitted = wm
            out.watermark = wm
        return out

    def flush(self) -> list[pa.RecordBatch]:
        """End of input: everything left, in time order."""
        return self._release(np.full(len(self._max), POS_INF, dtype=np.int64))

    # ------------------------------------------------------------------ internals

    def _grow(self, size: int) -> None:
        if size > len(self._max):
            extra = np.full(size - len(self._max), NEG_INF, dtype=np.int64)
            self._max = np.concatenate([self._max, extra])

    def _out_of_order(self, ts: np.ndarray, keys: np.ndarray, keep: np.ndarray, adjusted: np.ndarray) -> None:
        tol = self.policy.out_of_order_us
        if not self.keyed and keep.all():
            self._out_of_order_all(ts, keep, adjusted)
            return
        groups = [np.nonzero(keep)[0]] if not self.keyed else [
            np.nonzero(keep & (keys == k))[0] for k in np.unique(keys[keep])]
        for sel in groups:
            if not len(sel):
                continue
            key = int(keys[sel[0]])
            t = ts[sel]
            prev = self._max[key]
            # max seen strictly before each event (adjusted or dropped events never raise it)
            before = np.maximum.accumulate(np.concatenate([[prev], t]))[:-1]
            wm = before - tol
            late = (t < wm) & (before > NEG_INF)
            if late.any():
                if self.policy.drop:
                    keep[sel[late]] = False
                else:
                    ts[sel[late]] = wm[late]
                    adjusted[sel[late]] = True
            self._max[key] = max(prev, int(t.max()))

    def _out_of_order_all(self, ts: np.ndarray, keep: np.ndarray, adjusted: np.ndarray) -> None:
        """:meth:`_out_of_order` for one timeline with every event kept (the common case):
        the same rule on whole arrays, without index arrays."""
        prev = int(self._max[0])
        top = np.maximum.accumulate(ts)
        before = np.empty_like(ts)  # max seen strictly before each event
        before[0] = prev
        np.maximum(top[:-1], prev, out=before[1:])
        wm = before - self.policy.out_of_order_us
        late = ts < wm
        if prev <= NEG_INF:
            late[0] = False
        if late.any():
            if self.policy.drop:
                keep[late] = False
            else:
                ts[late] = wm[late]
                adjusted[late] = True
        self._max[0] = max(prev, int(top[-1]))

    def _key_watermarks(self) -> np.ndarray:
        seen = self._max > NEG_INF
        return np.where(seen, self._max - self.policy.out_of_order_us, NEG_INF)

    def _global_watermark(self) -> int | None:
        """The promise handed downstream (us), or None when nothing can be promised yet."""
        key_wm = self._key_watermarks()
        if not self.keyed:
            return int(key_wm[0]) - 1 if key_wm[0] > NEG_INF else None
        if self.policy.late_us is None or self._max_arrival <= NEG_INF:
            return None
        seen = key_wm[self._max > NEG_INF]
        bound = self._max_arrival - self.policy.late_us
        if len(seen):
            bound = min(bound, int(seen.min()))
        return bound - 1

    def _release(self, key_wm: np.ndarray) -> list[pa.RecordBatch]:
        if not self._pending:
            return []
        if len(self._pending) == 1 and self.policy.out_of_order_us == 0 and not self.keyed:
            # fast path: with no tolerance every event is at or below the watermark, in order
            p = self._pending[0]
            if bool((p.ts <= key_wm[0]).all()) and bool((np.diff(p.ts) >= 0).all()):
                self._pending = []
                return [p.batch]
        ts_parts: list[np.ndarray] = []
        pid_parts: list[np.ndarray] = []
        row_parts: list[np.ndarray] = []
        still: list[_Pending] = []
        for i, p in enumerate(self._pending):
            ready = p.ts <= key_wm[p.keys]
            if ready.any():
                rows = np.nonzero(ready)[0]
                ts_parts.append(p.ts[rows])
                pid_parts.append(np.full(len(rows), i, dtype=np.int64))
                row_parts.append(rows)
            if not ready.all():
                rest = ~ready
                still.append(_Pending(p.batch.filter(pa.array(rest)), p.ts[rest], p.keys[rest]))
        batches = [p.batch for p in self._pending]
        self._pending = still
        if not ts_parts:
            return []
        ts_all = np.concatenate(ts_parts)
        order = np.argsort(ts_all, kind="stable")
        return take_runs(batches, np.concatenate(pid_parts)[order], np.concatenate(row_parts)[order])


def take_runs(batches: list[pa.RecordBatch], which: np.ndarray, rows: np.ndarray) -> list[pa.RecordBatch]:
    """Rows ``(which[i], rows[i])`` in this order, as few batches as possible (one per run of
    rows from the same source batch, so types never need unifying)."""
    if not len(which):
        return []
    cuts = np.nonzero(np.diff(which))[0] + 1
    out: list[pa.RecordBatch] = []
    for start, stop in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(which)]]), strict=True):
        b = batches[int(which[start])]
        idx = rows[start:stop]
        if len(idx) == b.num_rows and bool((np.diff(idx) == 1).all()) and idx[0] == 0:
            out.append(b)
        else:
            out.append(b.take(pa.array(idx)))
    return out


def _with_ts(batch: pa.RecordBatch, ts: np.ndarray, name: str) -> pa.RecordBatch:
    idx = batch.schema.get_field_index(name)
    col = batch.column(idx)
    arr = pa.array(ts, pa.int64()).cast(col.type) if len(ts) else col
    return batch.set_column(idx, name, arr)
