"""Stream-to-stream JOIN bounded by ``DATEDIFF(unit, left, right) BETWEEN lo AND hi``.

Both sides are merged by event time (:func:`asaql.exec.union.merge_by_time`). Each released
run of rows is joined with the other side's state, then added to its own side's state, so
every pair is found exactly once, by whichever of its two events comes second::

    new left rows  x  right state      new right rows  x  left state

Pairs are found by hashing the ON equalities (Arrow's hash join; a Python dict when the key
types cannot be joined by Arrow), then filtered by the DATEDIFF bound (boundaries crossed, as
DATEDIFF counts them) and by the rest of ON. A matched row carries the later of the two event
times.

State is evicted by the watermark ``W``: a left row can match no future right row once
``(floor(tL/u) + hi + 1) * u - 1 <= W``; a right row no future left row once
``(floor(tR/u) - lo + 1) * u - 1 <= W``. An evicted left row that never matched is emitted by
a LEFT JOIN with NULL right columns, stamped ``tL + hi units`` (the latest time a match could
have happened). The watermark passed downstream is held back by one unit plus ``-hi`` units
so such rows never arrive behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from asaql.exec.evaluate import evaluate, evaluate_predicate
from asaql.exec.operator import TS, ExecContext, Item, Watermark
from asaql.exec.union import merge_by_time
from asaql.plan.temporal_nodes import UNIT_US, TemporalJoin
from asaql.time.watermark import dt_to_us, ts_to_us, us_to_dt
from asaql.types import DATETIME, to_python

__all__ = ["TemporalJoinOperator"]

_FIXED = {"microsecond", "millisecond", "second", "minute", "hour", "day", "dayofyear", "weekday"}


@dataclass
class _Entry:
    batch: pa.RecordBatch
    ts: np.ndarray
    keys: list[pa.Array]
    matched: np.ndarray


class TemporalJoinOperator:
    def __init__(self, node: TemporalJoin, left: Iterator[Item], right: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.left, self.right, self.ctx = node, left, right, ctx
        self.unit_us = UNIT_US[node.unit]
        self.fixed = node.unit in _FIXED
        self._left_state: list[_Entry] = []
        self._right_state: list[_Entry] = []
        self._right_type: pa.DataType | None = None

    # ------------------------------------------------------------------ driving

    def __iter__(self) -> Iterator[Item]:
        hold = self.unit_us * (1 + max(0, -self.node.hi)) if self.node.kind == "left" else 0
        for item in merge_by_time([self.left, self.right]):
            if isinstance(item, Watermark):
                yield from self._evict(POS if item.is_end else dt_to_us(item.time))
                if item.is_end:
                    yield item
                else:
                    yield Watermark(us_to_dt(dt_to_us(item.time) - hold))
                continue
            side, batch = item
            entry = self._entry(batch, self.node.left_keys if side == 0 else self.node.right_keys)
            if side == 0:
                yield from self._match_new_left(entry)
                self._left_state.append(entry)
            else:
                if self._right_type is None:
                    self._right_type = self._right_column(batch).type
                yield from self._match_new_right(entry)
                self._right_state.append(entry)

    def _entry(self, batch: pa.RecordBatch, keys: list[Any]) -> _Entry:
        ts = ts_to_us(batch.column(TS))
        arrays = [evaluate(k, batch, self.ctx) for k in keys]
        return _Entry(batch, ts, arrays, np.zeros(batch.num_rows, dtype=bool))

    def _match_new_left(self, new: _Entry) -> Iterator[pa.RecordBatch]:
        for old in self._right_state:
            out = self._join(new, old)
            if out is not None:
                yield out

    def _match_new_right(self, new: _Entry) -> Iterator[pa.RecordBatch]:
        for old in self._left_state:
            out = self._join(old, new)
            if out is not None:
                yield out

    # ------------------------------------------------------------------ one pair of batches

    def _join(self, left: _Entry, right: _Entry) -> pa.RecordBatch | None:
        li, ri = _pairs(left.keys, right.keys, left.batch.num_rows, right.batch.num_rows)
        if not len(li):
            return None
        diff = self._datediff(left.ts[li], right.ts[ri])
        ok = (diff >= self.node.lo) & (diff <= self.node.hi)
        li, ri = li[ok], ri[ok]
        if not len(li):
            return None
        out = self._combine(left.batch, li, right.batch, ri, np.maximum(left.ts[li], right.ts[ri]))
        if self.node.residual is not None:
            mask = evaluate_predicate(self.node.residual, out, self.ctx)
            keep = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
            out, li = out.filter(mask), li[keep]
        left.matched[li] = True
        return out if out.num_rows else None

    def _datediff(self, tl: np.ndarray, tr: np.ndarray) -> np.ndarray:
        if self.fixed:
            u = self.unit_us
            return np.floor_divide(tr, u) - np.floor_divide(tl, u)
        from asaql.functions.datetime import datediff_array

        a = pa.array(tl, pa.int64()).cast(DATETIME)
        b = pa.array(tr, pa.int64()).cast(DATETIME)
        return np.asarray(datediff_array(self.node.unit, a, b).to_numpy(zero_copy_only=False), dtype=np.int64)

    def _combine(self, lb: pa.RecordBatch, li: np.ndarray, rb: pa.RecordBatch | None,
                 ri: np.ndarray | None, ts: np.ndarray) -> pa.RecordBatch:
        names: list[str] = []
        arrays: list[pa.Array] = []
        lidx = pa.array(li, pa.int64())
        for name, col in zip(lb.schema.names, lb.columns, strict=True):
            if name != TS:
                names.append(name)
                arrays.append(col.take(lidx))
        if rb is not None and ri is not None:
            ridx = pa.array(ri, pa.int64())
            for name, col in zip(rb.schema.names, rb.columns, strict=True):
                if name != TS:
                    names.append(name)
                    arrays.append(col.take(ridx))
        else:
            names.append(self.node.right_alias)
            arrays.append(pa.nulls(len(li), self._right_type or pa.struct([])))
        names.append(TS)
        arrays.append(pa.array(ts, pa.int64()).cast(DATETIME))
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def _right_column(self, batch: pa.RecordBatch) -> pa.Array:
        idx = batch.schema.get_field_index(self.node.right_alias)
        return batch.column(idx if idx >= 0 else 0)

    # ------------------------------------------------------------------ eviction

    def _evict(self, wm: int) -> Iterator[pa.RecordBatch]:
        lo, hi = self.node.lo, self.node.hi
        kept: list[_Entry] = []
        for e in self._left_state:
            latest = self._latest(e.ts, hi + 1)
            gone = latest <= wm
            if gone.any() and self.node.kind == "left":
                lonely = np.nonzero(gone & ~e.matched)[0]
                if len(lonely):
                    yield self._combine(e.batch, lonely, None, None, self._stamp(e.ts[lonely]))
            _keep(kept, e, ~gone)
        self._left_state = kept
        kept = []
        for e in self._right_state:
            _keep(kept, e, self._latest(e.ts, 1 - lo) > wm)
        self._right_state = kept

    def _latest(self, ts: np.ndarray, units: int) -> np.ndarray:
        """The last microsecond of the unit ``units`` boundaries after each time."""
        if self.fixed:
            u = self.unit_us
            return (np.floor_divide(ts, u) + units) * u - 1
        return ts + units * self.unit_us

    def _stamp(self, ts: np.ndarray) -> np.ndarray:
        if self.fixed:
            return ts + self.node.hi * self.unit_us
        from asaql.functions.datetime import dateadd_array

        arr = pa.array(ts, pa.int64()).cast(DATETIME)
        n = pa.array(np.full(len(ts), self.node.hi, dtype=np.int64))
        return ts_to_us(dateadd_array(self.node.unit, n, arr))


POS = np.iinfo(np.int64).max // 4


def _keep(into: list[_Entry], e: _Entry, mask: np.ndarray) -> None:
    if mask.all():
        into.append(e)
    elif mask.any():
        rows = pa.array(mask)
        into.append(_Entry(e.batch.filter(rows), e.ts[mask], [k.filter(rows) for k in e.keys], e.matched[mask]))


def _pairs(lkeys: list[pa.Array], rkeys: list[pa.Array], nl: int, nr: int) -> tuple[np.ndarray, np.ndarray]:
    """Row index pairs whose keys are equal (NULL never equals anything)."""
    if not lkeys:
        return np.repeat(np.arange(nl), nr), np.tile(np.arange(nr), nl)
    try:
        return _arrow_pairs(lkeys, rkeys)
    except (pa.ArrowException, ValueError, TypeError):
        return _python_pairs(lkeys, rkeys)


def _arrow_pairs(lkeys: list[pa.Array], rkeys: list[pa.Array]) -> tuple[np.ndarray, np.ndarray]:
    for a, b in zip(lkeys, rkeys, strict=True):
        if a.type != b.type and not (pa.types.is_null(a.type) or pa.types.is_null(b.type)):
            raise TypeError("key types differ")
        if pa.types.is_null(a.type) or pa.types.is_null(b.type):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if pa.types.is_nested(a.type) or isinstance(a.type, pa.ExtensionType):
            raise TypeError("nested keys")
    names = [f"k{i}" for i in range(len(lkeys))]
    lt = pa.table([*lkeys, pa.array(np.arange(len(lkeys[0])))], names=[*names, "__l"])
    rt = pa.table([*rkeys, pa.array(np.arange(len(rkeys[0])))], names=[*names, "__r"])
    joined = lt.join(rt, keys=names, join_type="inner")
    li = np.asarray(joined.column("__l").to_numpy(), dtype=np.int64)
    ri = np.asarray(joined.column("__r").to_numpy(), dtype=np.int64)
    order = np.lexsort((ri, li))
    return li[order], ri[order]


def _python_pairs(lkeys: list[pa.Array], rkeys: list[pa.Array]) -> tuple[np.ndarray, np.ndarray]:
    index: dict[Any, list[int]] = {}
    rvals = list(zip(*(to_python(k) for k in rkeys), strict=True))
    for j, key in enumerate(rvals):
        if any(v is None for v in key):
            continue
        index.setdefault(_typed(key), []).append(j)
    li: list[int] = []
    ri: list[int] = []
    for i, key in enumerate(zip(*(to_python(k) for k in lkeys), strict=True)):
        if any(v is None for v in key):
            continue
        for j in index.get(_typed(key), ()):
            li.append(i)
            ri.append(j)
    return np.asarray(li, dtype=np.int64), np.asarray(ri, dtype=np.int64)


def _typed(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Keys of different ASA types never match ('1' vs 1); 1 and 1.0 do."""
    out = []
    for v in key:
        kind = "n" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__
        out.append((kind, repr(v) if isinstance(v, dict | list) else v))
    return tuple(out)

