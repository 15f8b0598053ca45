"""Analytic aggregates that need the values themselves: ``TopOne``, ``CollectTop(n)`` and
``Collect`` with ``OVER ([PARTITION BY ...] [ORDER BY ...] LIMIT DURATION(...) [WHEN ...])``.

The window is the one SUM/COUNT OVER use (:mod:`asaql.exec.analytic`): the qualifying events
of the row's partition no older than the duration, the current one included. The results are
those of the window aggregates of the same names (:mod:`asaql.functions.aggregates`): TopOne
is the top row's value (the whole event without an argument), CollectTop an array of
``{rank, value}`` (equal ORDER BY values share a rank, NULL sorts lowest), Collect an array of
the non-NULL values in time order. With no qualifying event TopOne is NULL and the arrays empty.

Per batch, over the kept history plus the batch (both in time order):

* the rows are ranked once by ORDER BY with the window aggregates' own sort (stable, so equal
  keys keep time order: the earliest event wins a tie), giving each row a unique rank;
* TopOne is the minimum rank over each row's range (the sparse table of MIN OVER);
* CollectTop keeps the ``n`` smallest ranks per power-of-two block (a sparse table of sorted
  rank lists) and merges the two blocks that cover each range;
* Collect gathers the range directly: with the non-qualifying rows left out every range is
  contiguous, so the output is index arithmetic on prefix counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.exec.analytic import (
    _History,
    _range_extreme,
    _range_starts,
    _sorted_by_partition,
    _value,
)
from asaql.exec.evaluate import evaluate
from asaql.exec.operator import ExecContext
from asaql.functions.aggregates import GID, Top, ValuesAccumulator
from asaql.plan.temporal_nodes import AnalyticCall

__all__ = ["ValuesState"]

_NONE = np.iinfo(np.int64).max  # "no row": the fill of empty ranges


class ValuesState:
    """State of one TopOne / CollectTop / Collect OVER call."""

    def __init__(self) -> None:
        self.history = _History()

    def compute(self, call: AnalyticCall, batch: pa.RecordBatch, ts: np.ndarray, pid: np.ndarray,
                when: np.ndarray, ctx: ExecContext) -> pa.Array:
        columns = [_value(call, batch, ctx)] + [_array(evaluate(e, batch, ctx)) for e in call.order_by]
        all_ts, all_pid, all_q, all_cols, m = self.history.combined(ts, pid, when, columns)
        order, starts = _sorted_by_partition(all_pid)
        lo = _range_starts(all_ts[order], all_pid[order], starts, call.duration_us or 0)
        cur = np.nonzero(order >= m)[0]  # sorted positions of the batch's rows
        rows = order[cur] - m
        values = all_cols[0]
        if call.function == "collect":
            result = _collect(values, all_q[order] & _valid(values)[order], order, lo, cur, rows)
        else:
            rank, perm, tie = _ranks(all_cols[1:], call.descending)
            x, q = rank[order], all_q[order]
            if call.function == "topone":
                best = np.full(len(ts), _NONE, dtype=np.int64)
                best[rows] = _range_extreme(x, q, lo, "min")[cur]
                found = best != _NONE
                rows_of = pa.array(perm[np.where(found, best, 0)], pa.int64(), mask=~found)
                result = values.take(rows_of)  # NULL where nothing qualifies
            else:
                n = int(call.params[0])  # type: ignore[call-overload]
                top = np.empty((len(ts), n), dtype=np.int64)
                top[rows] = _range_smallest(x, q, lo, cur, n)
                result = _collect_top(values, top, perm, tie)
        self.history.keep(all_ts, all_pid, all_q, all_cols, call.duration_us or 0)
        return result


def _array(values: Any) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _valid(values: pa.Array) -> np.ndarray:
    return np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)


def _ranks(orders: list[pa.Array], descending: tuple[bool, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rank of each row, row of each rank, first rank sharing each rank's ORDER BY values),
    ordered as the CollectTop/TopOne window aggregates order their rows."""
    n = len(orders[0])
    names = [f"v{i + 1}" for i in range(len(orders))]
    orders = [o.cast(pa.int64()) if pa.types.is_null(o.type) else o for o in orders]  # all NULL
    table = pa.table([pa.array(np.zeros(n, dtype=np.int64)), *orders, pa.array(np.arange(n))],
                     names=[GID, *names, "__row"])
    ordered = ValuesAccumulator._sorted(table, names, descending)
    perm = np.asarray(ordered.column("__row").to_numpy(), dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    return rank, perm, Top._ranks(ordered, names)


def _range_smallest(x: np.ndarray, valid: np.ndarray, lo: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest valid values of ``x[lo[i]..i]`` for each ``i`` in ``idx``, ascending,
    padded with ``_NONE`` (the values of ``x`` are distinct)."""
    if not len(idx):
        return np.empty((0, k), dtype=np.int64)
    levels = [np.full((len(x), k), _NONE, dtype=np.int64)]
    levels[0][:, 0] = np.where(valid, x, _NONE)
    longest = int((idx - lo[idx] + 1).max())
    width = 1
    while 2 * width <= longest:
        prev = levels[-1]  # row j: the block [j, j + width)
        merged = np.sort(np.concatenate([prev[:-width], prev[width:]], axis=1), axis=1)
        levels.append(merged[:, :k])
        width *= 2
    start = lo[idx]
    level = np.floor(np.log2(idx - start + 1)).astype(np.int64)
    out = np.empty((len(idx), k), dtype=np.int64)
    for lv in np.unique(level):
        sel = level == lv
        table = levels[lv]
        both = np.concatenate([table[start[sel]], table[idx[sel] - (1 << int(lv)) + 1]], axis=1)
        both.sort(axis=1)
        dup = np.zeros(both.shape, dtype=bool)  # the two blocks overlap: drop repeats
        dup[:, 1:] = (both[:, 1:] == both[:, :-1]) & (both[:, 1:] != _NONE)
        both[dup] = _NONE
        both.sort(axis=1)
        out[sel] = both[:, :k]
    return out


def _collect_top(values: pa.Array, top: np.ndarray, perm: np.ndarray, tie: np.ndarray) -> pa.Array:
    """``[{rank, value}]`` per row from its smallest ranks (``_NONE``: no row)."""
    present = top != _NONE
    group = np.where(present, tie[np.where(present, top, 0)], -1)
    k = top.shape[1]
    change = np.ones(top.shape, dtype=bool)
    change[:, 1:] = group[:, 1:] != group[:, :-1]
    first = np.maximum.accumulate(np.where(change, np.arange(k), 0), axis=1)
    flat = top[present]  # row by row, best first
    taken = values.take(pa.array(perm[flat], pa.int64())) if len(flat) else values.slice(0, 0)
    items = pa.StructArray.from_arrays([pa.array(first[present] + 1, pa.int64()), taken],
                                       names=["rank", "value"])
    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), items)


def _collect(values: pa.Array, kept: np.ndarray, order: np.ndarray, lo: np.ndarray, cur: np.ndarray,
             rows: np.ndarray) -> pa.Array:
    """The kept values of each range, in time order (``kept``: per sorted row)."""
    count = np.concatenate([[0], np.cumsum(kept)])
    positions = np.nonzero(kept)[0]
    first = np.empty(len(rows), dtype=np.int64)
    length = np.empty(len(rows), dtype=np.int64)
    first[rows] = count[lo[cur]]
    length[rows] = count[cur + 1] - count[lo[cur]]
    offsets = np.concatenate([[0], np.cumsum(length)])
    flat = np.arange(offsets[-1]) - np.repeat(offsets[:-1] - first, length)
    taken = values.take(pa.array(order[positions[flat]], pa.int64()))
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), taken)
