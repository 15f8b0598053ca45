"""Analytic functions over the statement's input: LAG, LAST, ISFIRST, aggregates OVER and the
anomaly detectors. Each call adds one column (named by its alias) to every row.

Rows are processed in event-time order (ties in arrival order). Per call the state is bounded
by LIMIT DURATION: the qualifying events (WHEN) of the last ``duration`` before the latest row,
or, with ``TIMESTAMP BY ... OVER`` substreams (each key its own clock), before the latest row of
their partition and the watermark (ISFIRST keeps one interval per partition; the detectors
``historySize`` values per partition). A batch is computed at once with numpy: the kept history and the batch are
stably sorted by partition (time order survives inside a partition), then

* LAG/LAST: the k-th previous qualifying row is found by ordinal arithmetic on the running
  count of qualifying rows, then checked against the duration;
* SUM/COUNT/AVG OVER: differences of prefix sums between the first row inside the duration
  (a ``searchsorted`` on partition*M + time) and the current row;
* MIN/MAX OVER: a sparse table (range minimum query) over the same ranges;
* ISFIRST: the first qualifying row of each (partition, interval), intervals ``(k*n, (k+1)*n]``;
* TopOne / CollectTop / Collect OVER: the same ranges as SUM OVER, see
  :mod:`asaql.exec.analytic_values`.

The anomaly detectors are sequential models; their per-event loop is :func:`_anomaly`.

Boundaries (asa-language.md §17 q6 leaves them open): an event exactly ``duration`` older than
the current one is still inside LIMIT DURATION; an event exactly on an ISFIRST boundary belongs
to the interval that ends there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.exec.evaluate import evaluate, evaluate_predicate, unify
from asaql.exec.operator import TS, ExecContext, Item
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.temporal_nodes import Analytic, AnalyticCall
from asaql.time.watermark import dt_to_us, ts_to_us
from asaql.types import to_python

__all__ = ["AnalyticOperator"]

ANOMALY_TYPE = pa.struct([("IsAnomaly", pa.int64()), ("Score", pa.float64())])


class AnalyticOperator:
    def __init__(self, node: Analytic, child: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.child, self.ctx = node, child, ctx
        self.states = [_state_for(c) for c in node.calls]
        if not _one_timeline(node):
            for state in self.states:
                history = getattr(state, "history", None)
                if history is not None:
                    history.per_partition = True
        self._pids: list[dict[Any, int]] = [{} for _ in node.calls]

    def __iter__(self) -> Iterator[Item]:
        for item in self.child:
            if isinstance(item, pa.RecordBatch):
                if item.num_rows:
                    yield self._apply(item)
            else:
                if not item.is_end:
                    floor = dt_to_us(item.time)
                    for state in self.states:
                        history = getattr(state, "history", None)
                        if history is not None:
                            history.floor = max(history.floor, floor)
                yield item

    def _apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ts = ts_to_us(batch.column(TS))
        if len(ts) > 1 and not bool((np.diff(ts) >= 0).all()):
            order = np.argsort(ts, kind="stable")
            batch, ts = batch.take(pa.array(order)), ts[order]
        for i, (call, state) in enumerate(zip(self.node.calls, self.states, strict=True)):
            pid = self._partition_ids(call, batch, self._pids[i])
            when = _mask(call.when, batch, self.ctx)
            column = state.compute(call, batch, ts, pid, when, self.ctx)
            batch = batch.append_column(call.alias, column)
        return batch

    def _partition_ids(self, call: AnalyticCall, batch: pa.RecordBatch, table: dict[Any, int]) -> np.ndarray:
        n = batch.num_rows
        if not call.partition_by:
            return np.zeros(n, dtype=np.int64)
        arrays = [evaluate(e, batch, self.ctx) for e in call.partition_by]
        if len(arrays) == 1 and not pa.types.is_nested(arrays[0].type) \
                and not isinstance(arrays[0].type, pa.ExtensionType):
            enc = pc.dictionary_encode(arrays[0]).combine_chunks() if isinstance(arrays[0], pa.ChunkedArray) \
                else pc.dictionary_encode(arrays[0])
            ids = np.array([table.setdefault(_key((v,)), len(table)) for v in enc.dictionary.to_pylist()]
                           + [table.setdefault(_key((None,)), len(table))], dtype=np.int64)
            idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
            return ids[np.asarray(idx, dtype=np.int64)]
        cols = [to_python(a) for a in arrays]
        return np.array([table.setdefault(_key(k), len(table)) for k in zip(*cols, strict=True)],
                        dtype=np.int64)


def _one_timeline(node: Analytic) -> bool:
    """Whether the rows reach the operator in one global time order: the stream inputs under
    it have no ``TIMESTAMP BY ... OVER`` keys (ASA: all inputs or none have them). Unknown when
    the rows come from a WITH step (its inputs are not in this subtree): answered no, the safe
    side."""
    scans = [n for n in lp.walk(node.child) if isinstance(n, lp.Scan) and not n.reference]
    return bool(scans) and not any(s.timestamp_over for s in scans)


def _key(values: tuple[Any, ...]) -> Any:
    out = []
    for v in values:
        kind = "n" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__
        out.append((kind, repr(v) if isinstance(v, dict | list) else v))
    return tuple(out)


def _mask(when: bx.BoundExpr | None, batch: pa.RecordBatch, ctx: ExecContext) -> np.ndarray:
    if when is None:
        return np.ones(batch.num_rows, dtype=bool)
    arr = evaluate_predicate(when, batch, ctx)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _value(call: AnalyticCall, batch: pa.RecordBatch, ctx: ExecContext) -> pa.Array:
    if isinstance(call.value, bx.StarExpr) and call.value.scope is None and not call.value.path:
        # LAG(*): the whole previous event as a record (the first scope of the row)
        names = [n for n in batch.schema.names if n != TS and not n.startswith("__")]
        return batch.column(names[0]) if names else pa.nulls(batch.num_rows)
    assert call.value is not None
    arr = evaluate(call.value, batch, ctx)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _concat(a: pa.Array | None, b: pa.Array) -> pa.Array:
    if a is None or len(a) == 0:
        return b
    if a.type == b.type:
        return pa.concat_arrays([a, b])
    return pa.concat_arrays(unify([a, b]))


def _sorted_by_partition(pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable order by partition, and the start position of each row's partition run."""
    order = np.argsort(pid, kind="stable")
    p = pid[order]
    new = np.ones(len(p), dtype=bool)
    new[1:] = p[1:] != p[:-1]
    starts = np.maximum.accumulate(np.where(new, np.arange(len(p)), 0))
    return order, starts


# ---------------------------------------------------------------------- history state


class _History:
    """Qualifying events of the last LIMIT DURATION: times, partitions and per-row columns."""

    def __init__(self, *, per_partition: bool = False) -> None:
        self.per_partition = per_partition
        self.ts = np.empty(0, dtype=np.int64)
        self.pid = np.empty(0, dtype=np.int64)
        self.columns: list[pa.Array] = []
        self.floor = np.iinfo(np.int64).min // 4  # the latest watermark (us)

    def combined(self, ts: np.ndarray, pid: np.ndarray, when: np.ndarray, columns: list[pa.Array]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[pa.Array], int]:
        m = len(self.ts)
        all_ts = np.concatenate([self.ts, ts])
        all_pid = np.concatenate([self.pid, pid])
        all_q = np.concatenate([np.ones(m, dtype=bool), when])
        old = self.columns or [None] * len(columns)
        all_cols = [_concat(a, b) for a, b in zip(old, columns, strict=True)]
        return all_ts, all_pid, all_q, all_cols, m

    def keep(self, all_ts: np.ndarray, all_pid: np.ndarray, all_q: np.ndarray, all_cols: list[pa.Array],
             duration: int) -> np.ndarray:
        """Keep the qualifying rows no older than ``duration`` before the latest row; returns
        the mask.

        With one timeline the latest row of all is the bound. With ``TIMESTAMP BY ... OVER``
        substreams (``per_partition``) one key may run hours behind another, so the bound is the
        latest row of the row's own partition, and the watermark (no later row is at or before
        it) bounds the rows of partitions that went quiet."""
        if not len(all_ts):
            keep = all_q.copy()
        elif not self.per_partition:
            keep = all_q & (all_ts >= int(all_ts.max()) - duration)
        else:
            uniq, inv = np.unique(all_pid, return_inverse=True)
            top = np.full(len(uniq), np.iinfo(np.int64).min, dtype=np.int64)
            np.maximum.at(top, inv, all_ts)
            keep = all_q & (all_ts >= top[inv] - duration) & (all_ts > self.floor - duration)
        self.ts, self.pid = all_ts[keep], all_pid[keep]
        mask = pa.array(keep)
        self.columns = [c.filter(mask) for c in all_cols]
        return keep


class _LagState:
    """LAG (offset k >= 1: k-th previous qualifying event) and LAST (the latest qualifying
    event, the current one included)."""

    def __init__(self) -> None:
        self.history = _History()

    def compute(self, call: AnalyticCall, batch: pa.RecordBatch, ts: np.ndarray, pid: np.ndarray,
                when: np.ndarray, ctx: ExecContext) -> pa.Array:
        values = _value(call, batch, ctx)
        all_ts, all_pid, all_q, all_cols, m = self.history.combined(ts, pid, when, [values])
        all_v = all_cols[0]
        order, starts = _sorted_by_partition(all_pid)
        q = all_q[order].astype(np.int64)
        before = np.cumsum(q) - q  # qualifying rows strictly before, in sorted order
        first = before[starts]  # ordinal of the partition's first qualifying row
        if call.function == "lag":
            target = before - call.offset
        else:
            target = before + q - 1
        valid = target >= first
        qpos = np.nonzero(q)[0]
        j = np.full(len(q), -1, dtype=np.int64)
        j[valid] = qpos[target[valid]]
        s_ts = all_ts[order]
        found = valid.copy()
        found[valid] = (s_ts[valid] - s_ts[j[valid]]) <= call.duration_us  # type: ignore[operator]
        # back to the batch's row order
        cur = order >= m
        rows = order[cur] - m
        hit = np.zeros(len(ts), dtype=bool)
        src = np.zeros(len(ts), dtype=np.int64)
        hit[rows] = found[cur]
        src[rows] = np.where(found[cur], order[np.maximum(j[cur], 0)], 0)
        taken = all_v.take(pa.array(src, pa.int64(), mask=~hit))  # NULL where nothing qualifies
        result = _with_default(taken, hit, call, batch, ctx)
        self.history.keep(all_ts, all_pid, all_q, all_cols, call.duration_us or 0)
        return result


def _with_default(taken: pa.Array, hit: np.ndarray, call: AnalyticCall, batch: pa.RecordBatch,
                  ctx: ExecContext) -> pa.Array:
    """``taken`` (NULL where no event qualified), with the call's default in those rows."""
    if call.default is None:
        return taken
    default = evaluate(call.default, batch, ctx)
    if hit.all():
        return taken
    if not hit.any():
        return default
    a, b = (taken, default) if taken.type == default.type else unify([taken, default])
    return pick(hit, a, b)


def pick(mask: np.ndarray, a: pa.Array, b: pa.Array) -> pa.Array:
    """``a[i]`` where ``mask[i]`` else ``b[i]``, for arrays of one type, extension types
    (mixed-type values) included, which ``pc.if_else`` has no kernel for."""
    if not isinstance(a.type, pa.ExtensionType):
        return pc.if_else(pa.array(mask), a, b)
    both = pa.concat_arrays([a, b])
    index = np.where(mask, np.arange(len(mask)), np.arange(len(mask)) + len(a))
    return both.take(pa.array(index, pa.int64()))


class _AggState:
    """SUM / COUNT / AVG / MIN / MAX over the qualifying events of the last LIMIT DURATION of
    the partition, the current one included."""

    def __init__(self) -> None:
        self.history = _History()
        self.values = np.empty(0, dtype=np.float64)  # NaN: a NULL value

    def compute(self, call: AnalyticCall, batch: pa.RecordBatch, ts: np.ndarray, pid: np.ndarray,
                when: np.ndarray, ctx: ExecContext) -> pa.Array:
        fn = call.function
        if call.value is None:
            values = pa.repeat(pa.scalar(1, pa.int64()), len(ts))
        else:
            values = _value(call, batch, ctx)
        kind, num, valid = _numeric(values, fn)
        numf = num.astype(np.float64)
        numf[~valid] = np.nan
        all_ts, all_pid, all_q, _, m = self.history.combined(ts, pid, when, [])
        all_x = np.concatenate([self.values, numf])
        if kind == "int" and _fractional(self.values):
            # an integer batch after fractions (per-batch typing of mixed input): summing the
            # kept history as integers would truncate it, whatever the batch boundaries
            kind = "float"
        order, starts = _sorted_by_partition(all_pid)
        lo = _range_starts(all_ts[order], all_pid[order], starts, call.duration_us or 0)
        x = all_x[order]
        v = all_q[order] & ~np.isnan(x)
        cnt = np.concatenate([[0], np.cumsum(v.astype(np.int64))])
        n_in = cnt[1:] - cnt[lo]
        if fn in ("sum", "avg"):
            xs = np.where(v, x, 0).astype(np.int64 if kind == "int" else np.float64)
            sums = np.concatenate([np.zeros(1, xs.dtype), np.cumsum(xs)])
            total = sums[1:] - sums[lo]
            out = total if fn == "sum" else total / np.maximum(n_in, 1)
        elif fn == "count":
            out = n_in
        else:
            out = _range_extreme(np.where(v, x, 0.0), v, lo, fn)
        cur = order >= m
        rows = order[cur] - m
        res = np.empty(len(ts), dtype=out.dtype)
        res[rows] = out[cur]
        empty = np.zeros(len(ts), dtype=bool)
        if fn != "count":
            empty[rows] = n_in[cur] == 0
        keep = self.history.keep(all_ts, all_pid, all_q, [], call.duration_us or 0)
        self.values = all_x[keep]
        return _to_arrow(res, empty, fn, kind, values.type)


def _fractional(x: np.ndarray) -> bool:
    """Whether any kept value (NaN: NULL) is not a whole number."""
    finite = x[~np.isnan(x)]
    return bool(len(finite)) and not bool((finite == np.floor(finite)).all())


def _numeric(values: pa.Array, fn: str) -> tuple[str, np.ndarray, np.ndarray]:
    """('int'|'float'|'datetime', numbers, valid) for an aggregate's input."""
    valid = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
    t = values.type
    if fn == "count":
        return "int", np.ones(len(values), dtype=np.int64), valid
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "int", np.asarray(values.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), np.int64), valid
    if pa.types.is_floating(t):
        return "float", np.asarray(values.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False), np.float64), valid
    if pa.types.is_timestamp(t) and fn in ("min", "max"):
        return "datetime", np.asarray(values.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), np.int64), valid
    nums = []
    for v in to_python(values):
        try:
            nums.append(float(v) if v is not None and not isinstance(v, str | bool) else np.nan)
        except (TypeError, ValueError):
            nums.append(np.nan)
    arr = np.asarray(nums, dtype=np.float64)
    return "float", np.nan_to_num(arr), valid & ~np.isnan(arr)


def _range_starts(s_ts: np.ndarray, s_pid: np.ndarray, starts: np.ndarray, duration: int) -> np.ndarray:
    """For each sorted row, the first row of its partition whose time is within ``duration``."""
    if not len(s_ts):
        return np.empty(0, dtype=np.int64)
    t0 = int(s_ts.min())
    rel = s_ts - t0
    span = int(rel.max()) + duration + 2
    if int(s_pid.max()) * span < 2**62:
        key = s_pid * span + rel
        q = s_pid * span + np.maximum(rel - duration, 0)
        lo = np.maximum(np.searchsorted(key, q, side="left"), starts)
    else:
        lo = np.empty(len(s_ts), dtype=np.int64)
        for start in np.unique(starts):
            stop = int(np.searchsorted(starts, start, side="right"))
            seg = s_ts[start:stop]
            lo[start:stop] = start + np.searchsorted(seg, seg - duration, side="left")
    # a partition out of time order (substreams of TIMESTAMP BY ... OVER under one PARTITION
    # BY) makes the search meaningless but must not give ranges past their own row
    return np.minimum(lo, np.arange(len(s_ts)))


def _range_extreme(x: np.ndarray, valid: np.ndarray, lo: np.ndarray, fn: str) -> np.ndarray:
    """min/max of ``x[lo[i]..i]`` over valid rows (sparse table, O(n log n))."""
    n = len(x)
    if not n:
        return x
    fill = np.iinfo(np.int64).max if x.dtype.kind == "i" else np.inf
    if fn == "max":
        fill = np.iinfo(np.int64).min if x.dtype.kind == "i" else -np.inf
    op = np.minimum if fn == "min" else np.maximum
    levels = [np.where(valid, x, fill)]
    k = 1
    while 2 * k <= n:
        prev = levels[-1]
        levels.append(op(prev[:-k], prev[k:]))
        k *= 2
    idx = np.arange(n)
    length = idx - lo + 1
    lvl = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    out = np.empty(n, dtype=x.dtype)
    for level in np.unique(lvl):
        sel = lvl == level
        table = levels[level]
        a = table[lo[sel]]
        b = table[idx[sel] - (1 << int(level)) + 1]
        out[sel] = op(a, b)
    return out


def _to_arrow(res: np.ndarray, empty: np.ndarray, fn: str, kind: str, value_type: pa.DataType) -> pa.Array:
    mask = empty if empty.any() else None
    if mask is not None:
        res = np.where(empty, 0, res)
    if fn == "count":
        return pa.array(res.astype(np.int64), pa.int64())
    if fn == "avg":
        return pa.array(res.astype(np.float64), pa.float64(), mask=mask)
    if kind == "int":
        return pa.array(res.astype(np.int64), pa.int64(), mask=mask)
    if kind == "datetime":
        return pa.array(res.astype(np.int64), pa.int64(), mask=mask).cast(value_type)
    return pa.array(res.astype(np.float64), pa.float64(), mask=mask)


class _IsFirstState:
    """ISFIRST: 1 for the first qualifying event of each partition in each interval."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}

    def compute(self, call: AnalyticCall, batch: pa.RecordBatch, ts: np.ndarray, pid: np.ndarray,
                when: np.ndarray, ctx: ExecContext) -> pa.Array:
        size = call.interval_us
        interval = -np.floor_divide(-ts, size)  # (k*n, (k+1)*n] -> k+1
        out = np.zeros(len(ts), dtype=np.int64)
        rows = np.nonzero(when)[0]
        if len(rows):
            order = rows[np.argsort(pid[rows], kind="stable")]
            p, iv = pid[order], interval[order]
            new = np.ones(len(order), dtype=bool)
            new[1:] = (p[1:] != p[:-1]) | (iv[1:] != iv[:-1])
            head = np.ones(len(order), dtype=bool)
            head[1:] = p[1:] != p[:-1]
            for pos in np.nonzero(head)[0]:
                if self.last.get(int(p[pos])) == int(iv[pos]):
                    new[pos] = False
            out[order[new]] = 1
            tail = np.ones(len(order), dtype=bool)
            tail[:-1] = p[:-1] != p[1:]
            for pos in np.nonzero(tail)[0]:
                self.last[int(p[pos])] = int(iv[pos])
        return pa.array(out, pa.int64())


class _AnomalyState:
    """One detector per partition, fed the qualifying events in time order."""

    def __init__(self) -> None:
        self.models: dict[int, Any] = {}

    def compute(self, call: AnalyticCall, batch: pa.RecordBatch, ts: np.ndarray, pid: np.ndarray,
                when: np.ndarray, ctx: ExecContext) -> pa.Array:
        values = _value(call, batch, ctx)
        _kind, num, valid = _numeric(values, "sum")
        return _anomaly(self.models, call, ts, pid, when & valid, num.astype(np.float64))


def _anomaly(models: dict[int, Any], call: AnalyticCall, ts: np.ndarray, pid: np.ndarray,
             use: np.ndarray, x: np.ndarray) -> pa.Array:
    """The per-event loop of the detectors (each event is scored against its partition's
    history before joining it)."""
    from asaql.functions.anomaly import ChangePointDetector, SpikeAndDipDetector

    n = len(ts)
    flags = np.zeros(n, dtype=np.int64)
    scores = np.zeros(n, dtype=np.float64)
    duration = call.duration_us or 0
    for i in np.nonzero(use)[0]:
        key = int(pid[i])
        model = models.get(key)
        if model is None:
            confidence, history = call.params[0], call.params[1]
            if call.function == "spikeanddip":
                model = SpikeAndDipDetector(float(confidence), int(history), str(call.params[2]))  # type: ignore[arg-type]
            else:
                model = ChangePointDetector(float(confidence), int(history))  # type: ignore[arg-type]
            models[key] = model
        model.expire(int(ts[i]) - duration)
        flags[i], scores[i] = model.update(float(x[i]), int(ts[i]))
    mask = pa.array(~use)
    return pa.StructArray.from_arrays(
        [pa.array(flags, pa.int64()), pa.array(scores, pa.float64())],
        fields=list(ANOMALY_TYPE), mask=mask)


def _state_for(call: AnalyticCall) -> Any:
    if call.function in ("lag", "last"):
        return _LagState()
    if call.function == "isfirst":
        return _IsFirstState()
    if call.function in ("spikeanddip", "changepoint"):
        return _AnomalyState()
    if call.function in ("topone", "collecttop", "collect"):
        from asaql.exec.analytic_values import ValuesState

        return ValuesState()
    return _AggState()
