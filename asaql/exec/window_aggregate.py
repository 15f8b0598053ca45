"""WindowAggregate: grouped aggregation over event-time windows, emitted as the watermark
passes each window's end (everything at ``Watermark.END``).

State, per window of ``GROUP BY k, <window>``::

    batch --assign--> (row, window end) --group_by(window, end, keys)--> local groups
                                                                          | dict lookup
    groups: (window, end, start, keys) -> gid      <----------------------+ (per group,
    accumulators[j]: partial states by gid (COUNT, SUM, ...)                  not per event)
                     or kept values by gid (percentiles, Collect, TopOne)
    watermark W: gids with end <= W -> evaluate -> one output row each -> state freed

Tumbling, hopping and snapshot windows are assigned as batches arrive (vectorized, see
:mod:`asaql.time.windows`). Sliding and session windows depend on neighbouring events, so
their rows are buffered (key, time and the aggregate inputs only) until the watermark makes a
window final, then assigned and fed to the same grouping. Sessions are split per partition
key in one Python loop over that key's event times (:func:`asaql.time.windows.assign_sessions`).

Output rows: ``__k0..`` (keys), ``__a0..`` (aggregates), ``__win`` ({Id}), ``__ts`` (the window
end), in order of window end, then first appearance of the group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.exec.evaluate import evaluate
from asaql.exec.operator import TS, ExecContext, Item, Watermark
from asaql.exec.physical import Builder, builds
from asaql.functions.aggregates import Accumulator, PartialAccumulator, concat_tables
from asaql.plan.windowing import WINDOW_COLUMN, WindowAggregate, WindowDef, agg_column, key_column
from asaql.time import windows as tw
from asaql.types import DATETIME, is_variant

__all__ = ["WindowAggregateOperator"]

_END_US = np.iinfo(np.int64).max
_GROUP_COLS = ["__w", "__end", "__start"]


def _wm_us(wm: Watermark) -> int:
    if wm.is_end:
        return int(_END_US)
    return int(pa.scalar(wm.time, DATETIME).cast(pa.int64()).as_py())


def _hashable(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, default=str)
    return v


def _groupable(arr: pa.Array) -> pa.Array:
    """Arrow can only hash plain values: records, arrays and mixed (Variant) keys are grouped
    by their JSON text."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if is_variant(arr.type):
        return arr.storage
    if pa.types.is_struct(arr.type) or pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str)
                         for v in arr.to_pylist()], pa.string())
    return arr


class WindowAggregateOperator:
    def __init__(self, node: WindowAggregate, child: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.child, self.ctx = node, child, ctx
        self.accs: list[Accumulator] = [a.function.make(a.options) for a in node.aggregates]
        self.partial = [isinstance(a, PartialAccumulator) for a in self.accs]
        self.has_values = not all(self.partial)
        self.gids: dict[tuple[Any, ...], int] = {}
        self.gid_info: dict[int, tuple[tuple[Any, ...], int]] = {}  # gid -> (key tuple, end)
        self.by_end: dict[int, list[int]] = {}  # window end -> gids (a flush visits ends, not groups)
        self.key_tables: list[pa.Table] = []
        self.next_gid = 0
        self.watermark = np.iinfo(np.int64).min
        self.buffers: dict[int, list[pa.Table]] = {i: [] for i, w in enumerate(node.windows)
                                                   if isinstance(w.spec, tw.Session | tw.Sliding)}
        # (window index, partition key) -> (cut, last event) of a session cut by max duration:
        # each window definition of Windows(...) has its own sessions
        self.session_carry: dict[tuple[int, Any], tuple[int, int]] = {}
        self.session_serial = 0
        # Partial-only aggregates keep their state as one Arrow table of partial rows, one row
        # per open (window, end, start, keys) group, merged with each batch's partials by a
        # group_by over both: no per-group Python bookkeeping. Value-keeping aggregates
        # (percentiles, Collect, ...) use gids (above) instead.
        self.table_state = not self.has_values
        self.state: pa.Table | None = None
        self.group_cols = _GROUP_COLS + [key_column(i) for i in range(len(node.keys))]
        # what a group_by needs to group on: a window id only when there are several windows
        # (one call of _group is always one window), a start only for session windows (the
        # session serial; 0 otherwise); the constant columns are added to the result after
        self.sessions = any(isinstance(w.spec, tw.Session) for w in node.windows)
        self.batch_by = ["__end"] + (["__start"] if self.sessions else []) + self.group_cols[3:]
        self.fold_by = (["__w"] if len(node.windows) > 1 else []) + self.batch_by
        self.state_cols: list[list[str]] = []
        self.merge_aggs: list[tuple[str, str, Any]] = []
        for j, acc in enumerate(self.accs):
            cols = []
            if isinstance(acc, PartialAccumulator):
                for u, (fn, opts) in enumerate(acc.merges):
                    cols.append(f"p{j}_{u}")
                    self.merge_aggs.append((f"p{j}_{u}", fn, opts))
            self.state_cols.append(cols)

    def __iter__(self) -> Iterator[Item]:
        for item in self.child:
            if isinstance(item, pa.RecordBatch):
                if item.num_rows:
                    self._consume(item)
                continue
            out = self._flush(_wm_us(item))
            if out is not None:
                yield out
            yield item

    # -------------------------------------------------------------- input

    def _consume(self, batch: pa.RecordBatch) -> None:
        ts = batch.column(TS).cast(pa.int64()).to_numpy()
        keys = [_groupable(evaluate(k, batch, self.ctx)) for k in self.node.keys]
        inputs = [self._prepare(j, batch) for j in range(len(self.accs))]
        for w, window in enumerate(self.node.windows):
            if w in self.buffers:
                self._buffer(w, window, batch, ts, keys, inputs)
                continue
            spec = window.spec
            if self.table_state and isinstance(spec, tw.Hopping) and self._panes(w, spec, ts, keys, inputs):
                continue
            rows, ends = spec.assign(ts)  # type: ignore[union-attr]
            late = ends <= self.watermark
            if late.any():
                self.ctx.metrics.add(self.ctx.metrics.dropped, "late_for_window", int(late.sum()))
                rows, ends = rows[~late], ends[~late]
            self._group(w, rows, ends, np.zeros(len(rows), np.int64), keys, inputs, len(ts))

    def _prepare(self, j: int, batch: pa.RecordBatch) -> list[pa.Array]:
        call = self.node.aggregates[j]
        values = [evaluate(e, batch, self.ctx) for e in (*call.args, *call.order_by)]
        if call.options.star:
            values = []
        return self.accs[j].prepare(values)

    def _group(self, w: int, rows: np.ndarray, ends: np.ndarray, starts: np.ndarray,
               keys: list[pa.Array], inputs: list[list[pa.Array]], source_len: int) -> None:
        """Fold (row, window) memberships into the per-group state."""
        n = len(rows)
        if n == 0:
            return
        identity = n == source_len and np.array_equal(rows, np.arange(n))
        take = None if identity else pa.array(rows, pa.int64())

        def pick(a: pa.Array) -> pa.Array:
            return a if take is None else a.take(take)

        cols: dict[str, pa.Array] = {"__end": pa.array(ends, pa.int64())}
        if self.sessions:
            cols["__start"] = pa.array(starts, pa.int64())
        for i, k in enumerate(keys):
            cols[key_column(i)] = pick(k)
        aggs: list[tuple[Any, str, Any]] = []
        names: list[list[str]] = []
        for j, acc in enumerate(self.accs):
            if not self.partial[j]:
                names.append([])
                continue
            assert isinstance(acc, PartialAccumulator)
            out_names = []
            for u, (idx, fn, opts) in enumerate(acc.updates):
                col = f"p{j}_{u}"
                cols[col] = pick(inputs[j][idx]) if idx is not None else pa.nulls(n, pa.int8())
                aggs.append((col, fn, opts))
                out_names.append(f"{col}_{fn}")
            names.append(out_names)
        if self.has_values:
            cols["__row"] = pa.array(np.arange(n, dtype=np.int64))
            aggs.append(("__row", "list", None))
        table = pa.table(cols)
        result = self._constants(table.group_by(self.batch_by, use_threads=False).aggregate(aggs), w)
        if self.table_state:
            self._fold(self._as_state(result, names))
            return
        gids = self._gids(result, self.group_cols)
        for j, acc in enumerate(self.accs):
            if self.partial[j]:
                acc.absorb(gids, [result.column(c).combine_chunks() for c in names[j]])  # type: ignore[attr-defined]
        if self.has_values:
            lists = result.column("__row_list").combine_chunks()
            row_gid = np.empty(n, np.int64)
            row_gid[pc.list_flatten(lists).to_numpy()] = gids[pc.list_parent_indices(lists).to_numpy()]
            for j, acc in enumerate(self.accs):
                if not self.partial[j]:
                    acc.absorb_rows(row_gid, [pick(a) for a in inputs[j]])  # type: ignore[attr-defined]

    def _panes(self, w: int, spec: tw.Hopping, ts: np.ndarray, keys: list[pa.Array],
               inputs: list[list[pa.Array]]) -> bool:
        """Hopping windows by panes: aggregate each event once into its pane (a tumbling window
        of gcd(size, hop), aligned like the windows), then give each pane's partial row to the
        size/hop windows that contain the pane, merged into the state. A window's ends lie on
        the pane grid, so a pane (P - p, P] lies wholly inside exactly the windows ending in
        [P, P + size), the windows of its events. False (nothing done) when some membership is
        late: the per-event path drops and counts those."""
        first = -((-(ts - spec.offset)) // spec.hop) * spec.hop + spec.offset
        if len(ts) == 0 or int(first.min()) <= self.watermark:
            return False
        pane = math.gcd(spec.size, spec.hop)
        pane_ends = tw.Tumbling(pane, spec.offset).ends(ts)
        n = len(ts)
        cols: dict[str, pa.Array] = {"__end": pa.array(pane_ends, pa.int64())}
        if self.sessions:
            cols["__start"] = pa.array(np.zeros(n, np.int64))
        for i, k in enumerate(keys):
            cols[key_column(i)] = k
        aggs, names = self._update_aggs(cols, inputs, n, None)
        result = pa.table(cols).group_by(self.batch_by, use_threads=False).aggregate(aggs)
        partials = self._as_state(self._constants(result, w), names)
        rows, ends = spec.assign(partials.column("__end").to_numpy())
        partials = partials.take(pa.array(rows, pa.int64())).set_column(
            1, "__end", pa.array(ends, pa.int64()))
        self._fold(partials, unique=False)
        return True

    def _update_aggs(self, cols: dict[str, pa.Array], inputs: list[list[pa.Array]], n: int,
                     take: pa.Array | None) -> tuple[list[tuple[Any, str, Any]], list[list[str]]]:
        aggs: list[tuple[Any, str, Any]] = []
        names: list[list[str]] = []
        for j, acc in enumerate(self.accs):
            assert isinstance(acc, PartialAccumulator)
            out_names = []
            for u, (idx, fn, opts) in enumerate(acc.updates):
                col = f"p{j}_{u}"
                if idx is None:
                    cols[col] = pa.nulls(n, pa.int8())
                else:
                    cols[col] = inputs[j][idx] if take is None else inputs[j][idx].take(take)
                aggs.append((col, fn, opts))
                out_names.append(f"{col}_{fn}")
            names.append(out_names)
        return aggs, names

    def _as_state(self, result: pa.Table, names: list[list[str]]) -> pa.Table:
        """A group_by result as state rows: group columns, then partials ``p{j}_{u}``."""
        columns = [result.column(c) for c in self.group_cols]
        out_names = list(self.group_cols)
        for j, cols in enumerate(names):
            for u, c in enumerate(cols):
                columns.append(result.column(c))
                out_names.append(f"p{j}_{u}")
        return pa.table(columns, names=out_names)

    def _constants(self, result: pa.Table, w: int) -> pa.Table:
        """A group_by result with the group columns it was not grouped on: ``__w`` (the
        window ``w``; only absent when that is the only window) and ``__start`` (0)."""
        n = result.num_rows
        if "__w" not in result.column_names:
            result = result.append_column("__w", pa.array(np.full(n, w, np.int32)))
        if "__start" not in result.column_names:
            result = result.append_column("__start", pa.array(np.zeros(n, np.int64)))
        return result

    def _fold(self, partials: pa.Table, unique: bool = True) -> None:
        """Merge partial rows into the state (one row per open group); ``unique``: the
        partial rows are one per group already."""
        if partials.num_rows == 0:
            return
        if unique and (self.state is None or self.state.num_rows == 0):
            self.state = partials
            return
        both = partials if self.state is None else concat_tables([self.state, partials])
        merged = self._constants(both.group_by(self.fold_by, use_threads=False).aggregate(self.merge_aggs), 0)
        self.state = self._as_state(merged, [[f"{c}_{fn}" for c, fn, _ in self.merge_aggs
                                              if c.startswith(f"p{j}_")] for j in range(len(self.accs))])

    def _gids(self, result: pa.Table, group_cols: list[str]) -> np.ndarray:
        """Global group id per row of a per-batch group_by result; new groups are registered
        (one dict lookup per group, not per event)."""
        columns = [result.column(c).to_pylist() for c in group_cols]
        gids = np.empty(result.num_rows, np.int64)
        fresh: list[int] = []
        for i, hkey in enumerate(zip(*columns, strict=True)):  # keys are plain (_groupable)
            gid = self.gids.get(hkey)
            if gid is None:
                gid = self.next_gid
                self.next_gid += 1
                self.gids[hkey] = gid
                self.gid_info[gid] = (hkey, int(hkey[1]))
                self.by_end.setdefault(int(hkey[1]), []).append(gid)
                fresh.append(i)
            gids[i] = gid
        if fresh:
            idx = pa.array(fresh, pa.int64())
            keys = {c: result.column(c).take(idx) for c in group_cols[3:]}
            keys["__gid"] = pa.array(gids[fresh], pa.int64())
            keys["__w"] = result.column("__w").take(idx)
            self.key_tables.append(pa.table(keys))
        return gids

    # -------------------------------------------------------------- buffered windows

    def _buffer(self, w: int, window: WindowDef, batch: pa.RecordBatch, ts: np.ndarray,
                keys: list[pa.Array], inputs: list[list[pa.Array]]) -> None:
        cols: dict[str, pa.Array] = {"__ts": pa.array(ts, pa.int64())}
        for i, k in enumerate(keys):
            cols[key_column(i)] = k
        for i, e in enumerate(window.partition):
            cols[f"__p{i}"] = _groupable(evaluate(e, batch, self.ctx))
        for j, values in enumerate(inputs):
            for i, v in enumerate(values):
                cols[f"a{j}_{i}"] = v
        table = pa.table(cols)
        late = pc.less_equal(table.column("__ts"), self.watermark)
        if pc.any(late).as_py():
            self.ctx.metrics.add(self.ctx.metrics.dropped, "late_for_window", pc.sum(late).as_py())
            table = table.filter(pc.invert(late))
        self.buffers[w].append(table)

    def _release(self, w: int, window: WindowDef, wm: int) -> None:
        """Assign the buffered rows whose windows are final at ``wm``; keep the rest."""
        if not self.buffers[w]:
            return
        table = concat_tables(self.buffers[w]).combine_chunks()
        if isinstance(window.spec, tw.Session):
            rows, ends, starts, keep = self._sessions(w, window.spec, table, wm)
        else:
            rows, ends, starts, keep = self._sliding(window.spec, table, wm)  # type: ignore[arg-type]
        self.buffers[w] = [table.filter(pa.array(keep))] if keep.any() else []
        if len(rows) == 0:
            return
        nkeys = len(self.node.keys)
        keys = [table.column(key_column(i)).combine_chunks() for i in range(nkeys)]
        inputs = [[table.column(f"a{j}_{i}").combine_chunks() for i in range(self._width(table, j))]
                  for j in range(len(self.accs))]
        self._group(w, rows, ends, starts, keys, inputs, table.num_rows)

    @staticmethod
    def _width(table: pa.Table, j: int) -> int:
        prefix = f"a{j}_"
        return sum(1 for c in table.column_names if c.startswith(prefix))

    def _sessions(self, w: int, spec: tw.Session, table: pa.Table, wm: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = table.num_rows
        ts = table.column("__ts").to_numpy()
        pcols = [c for c in table.column_names if c.startswith("__p")]
        pid, pkeys = _dense_ids(table, pcols)
        order = np.lexsort((np.arange(n), ts, pid))
        rows_out: list[np.ndarray] = []
        ends_out: list[int] = []
        starts_out: list[int] = []
        counts: list[int] = []
        keep = np.ones(n, dtype=bool)
        bounds = np.flatnonzero(np.diff(pid[order])) + 1
        for part in np.split(order, bounds):
            key = (w, pkeys[int(pid[part[0]])])
            times = ts[part].tolist()
            carry = self.session_carry.get(key)
            for first, stop, start, end in tw.assign_sessions(spec, times, carry):
                if end > wm:
                    break
                members = part[first:stop]
                keep[members] = False
                rows_out.append(members)
                self.session_serial += 1
                ends_out.append(end)
                starts_out.append(self.session_serial)
                counts.append(len(members))
                cut_at_max = end < times[stop - 1] + spec.timeout
                if cut_at_max:
                    self.session_carry[key] = (end, times[stop - 1])
                else:
                    self.session_carry.pop(key, None)
        if not rows_out:
            empty = np.array([], np.int64)
            return empty, empty, empty, keep
        reps = np.array(counts)
        return (np.concatenate(rows_out), np.repeat(np.array(ends_out, np.int64), reps),
                np.repeat(np.array(starts_out, np.int64), reps), keep)

    def _sliding(self, spec: tw.Sliding, table: pa.Table, wm: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ts = table.column("__ts").to_numpy()
        kcols = [key_column(i) for i in range(len(self.node.keys))]
        kid, _ = _dense_ids(table, kcols)
        pkid, points = tw.sliding_points(kid, ts, spec.size)
        due = (points > self.watermark) & (points <= wm)
        pkid, points = pkid[due], points[due]
        keep = ts + spec.size > wm
        if len(points) == 0:
            empty = np.array([], np.int64)
            return empty, empty, empty, keep
        # rank-encode times so that (key, time) packs into one sortable int64
        universe = np.unique(np.concatenate([points, ts, ts + spec.size]))
        span = len(universe) + 1
        code_points = pkid * span + np.searchsorted(universe, points)
        lo = np.searchsorted(code_points, kid * span + np.searchsorted(universe, ts), "left")
        hi = np.searchsorted(code_points, kid * span + np.searchsorted(universe, ts + spec.size), "left")
        counts = hi - lo
        rows = np.repeat(np.arange(len(ts), dtype=np.int64), counts)
        offsets = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        point_idx = np.arange(len(rows), dtype=np.int64) + offsets
        return rows, points[point_idx], np.zeros(len(rows), np.int64), keep

    # -------------------------------------------------------------- output

    def _flush(self, wm: int) -> pa.RecordBatch | None:
        for w, window in enumerate(self.node.windows):
            if w in self.buffers:
                self._release(w, window, wm)
        self.watermark = max(self.watermark, wm)
        if self.table_state:
            return self._flush_state(wm)
        due = sorted(end for end in self.by_end if end <= wm)
        if not due:
            return None
        closed = [(end, gid) for end in due for gid in self.by_end.pop(end)]
        gids = np.array([g for _, g in closed], np.int64)
        ends = np.array([e for e, _ in closed], np.int64)
        for gid in gids.tolist():
            hkey, _ = self.gid_info.pop(gid)
            del self.gids[hkey]
        keys, window_idx = self._take_keys(gids)
        return self._output(ends, window_idx, keys, [acc.evaluate(gids) for acc in self.accs])

    def _flush_state(self, wm: int) -> pa.RecordBatch | None:
        state = self.state
        if state is None or state.num_rows == 0:
            return None
        end_col = state.column("__end")
        if pc.min(end_col).as_py() > wm:
            return None
        due = pc.less_equal(end_col, wm)
        closed = state.filter(due).combine_chunks()
        rest = state.filter(pc.invert(due))
        self.state = rest if rest.num_rows else None
        ends = closed.column("__end").to_numpy()
        window_idx = closed.column("__w").to_numpy()
        keys = [closed.column(key_column(i)).combine_chunks() for i in range(len(self.node.keys))]
        values = []
        for j, acc in enumerate(self.accs):
            assert isinstance(acc, PartialAccumulator)
            values.append(acc.finish([closed.column(c).combine_chunks() for c in self.state_cols[j]]))
        return self._output(ends, window_idx, keys, values)

    def _output(self, ends: np.ndarray, window_idx: np.ndarray, keys: list[pa.Array],
                values: list[pa.Array]) -> pa.RecordBatch:
        """Closed groups as an output batch: keys, aggregates, window id, window end."""
        names = [key_column(i) for i in range(len(keys))] + [agg_column(j) for j in range(len(values))]
        arrays: list[pa.Array] = list(keys) + list(values)
        ids = [w.id for w in self.node.windows]
        if len(ids) == 1:
            id_values = pa.repeat(pa.scalar(ids[0], pa.string()), len(ends))
        else:
            id_values = pa.array([ids[i] for i in window_idx.tolist()], pa.string())
        names += [WINDOW_COLUMN, TS]
        arrays += [pa.StructArray.from_arrays([id_values], names=["Id"]),
                   pa.array(ends, pa.int64()).cast(DATETIME)]
        out = pa.RecordBatch.from_arrays(arrays, names=names)
        return out.take(_output_order(ends, window_idx, keys))

    def _take_keys(self, gids: np.ndarray) -> tuple[list[pa.Array], np.ndarray]:
        table = concat_tables(self.key_tables).combine_chunks()
        mask = pc.is_in(table.column("__gid"), pa.array(gids, pa.int64()))
        closed, rest = table.filter(mask), table.filter(pc.invert(mask))
        self.key_tables = [rest] if rest.num_rows else []
        present = closed.column("__gid").to_numpy()
        order = np.argsort(present)
        pos = pa.array(order[np.searchsorted(present, gids, sorter=order)], pa.int64())
        keys = [closed.column(key_column(i)).combine_chunks().take(pos) for i in range(len(self.node.keys))]
        return keys, closed.column("__w").combine_chunks().take(pos).to_numpy()


def _output_order(ends: np.ndarray, window_idx: np.ndarray, keys: list[pa.Array]) -> pa.Array:
    """Rows by window end, then window, then key values: deterministic however the input
    was split into batches (rows sharing a timestamp have no order in ASA)."""
    cols = {"e": pa.array(ends), "w": pa.array(window_idx)}
    sort_keys = [("e", "ascending"), ("w", "ascending")]
    for i, k in enumerate(keys):
        if pa.types.is_null(k.type) or not (pa.types.is_primitive(k.type) or pa.types.is_string(k.type)
                                            or pa.types.is_large_string(k.type)):
            continue
        cols[f"k{i}"] = k
        sort_keys.append((f"k{i}", "ascending"))
    return pc.sort_indices(pa.table(cols), sort_keys=sort_keys)


def _dense_ids(table: pa.Table, columns: list[str]) -> tuple[np.ndarray, list[Any]]:
    """A dense integer id per row for the distinct values of ``columns`` (0 for all rows when
    there are none), and the hashable key of each id."""
    n = table.num_rows
    if not columns:
        return np.zeros(n, np.int64), [()]
    sub = table.select(columns).append_column("__row", pa.array(np.arange(n, dtype=np.int64)))
    groups = sub.group_by(columns, use_threads=False).aggregate([("__row", "list")])
    lists = groups.column("__row_list").combine_chunks()
    ids = np.empty(n, np.int64)
    ids[pc.list_flatten(lists).to_numpy()] = pc.list_parent_indices(lists).to_numpy()
    values = [groups.column(c).to_pylist() for c in columns]
    keys = [tuple(_hashable(v) for v in key) for key in zip(*values, strict=True)]
    return ids, keys


@builds(WindowAggregate, "WindowAggregateExec")
def _build(node: Any, b: Builder) -> Iterator[Item]:
    assert isinstance(node, WindowAggregate)
    return iter(WindowAggregateOperator(node, b.build(node.child), b.ctx))
