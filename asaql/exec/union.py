"""UNION: the rows of every branch (duplicates kept, like UNION ALL); column names from the
first branch, matched by position.

Branches are merged by event time, not concatenated: :func:`merge_by_time` pulls from the
branch whose watermark is furthest behind, holds rows until every branch's watermark has
passed them, then hands them on in time order followed by the merged watermark (the minimum
of the branches'). The stream-to-stream join uses the same merge for its two sides. A branch
that repeats its watermark (an idle live input) makes the merge repeat its own, so a reader
waiting on it gets control back (see :data:`asaql.exec.scan.NO_WATERMARK`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from asaql.exec.operator import TS, ExecContext, Item, Watermark
from asaql.exec.scan import NO_WATERMARK
from asaql.time.watermark import NEG_INF, POS_INF, dt_to_us, take_runs, ts_to_us, us_to_dt

__all__ = ["UnionOperator", "merge_by_time"]


@dataclass
class _Lane:
    items: Iterator[Item]
    queue: list[tuple[pa.RecordBatch, np.ndarray]] = field(default_factory=list)
    watermark: int = NEG_INF
    done: bool = False


def merge_by_time(children: list[Iterator[Item]]) -> Iterator[tuple[int, pa.RecordBatch] | Watermark]:
    """Yield ``(branch index, batch)`` in event-time order (ties: branch order, then arrival),
    each release followed by the merged watermark; ``Watermark.END`` last."""
    lanes = [_Lane(iter(c)) for c in children]
    emitted = NEG_INF
    last = NO_WATERMARK  # the merged watermark last handed on
    while True:
        live = [lane for lane in lanes if not lane.done]
        if not live:
            break
        lane = min(live, key=lambda ln: ln.watermark)
        item = next(lane.items, None)
        if item is None:
            lane.done, lane.watermark = True, POS_INF
        elif isinstance(item, Watermark):
            time = POS_INF if item.is_end else dt_to_us(item.time)
            if time <= lane.watermark:  # an idle live input: nothing moved, hand control back
                yield last
                continue
            lane.watermark, lane.done = time, item.is_end
        else:
            if item.num_rows:
                lane.queue.append((item, ts_to_us(item.column(TS))))
            continue
        merged = min(ln.watermark for ln in lanes)
        if merged <= emitted:
            continue
        yield from _release(lanes, merged)
        emitted = merged
        if merged < POS_INF:
            last = Watermark(us_to_dt(merged))
            yield last
    yield Watermark.END


def _release(lanes: list[_Lane], upto: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    batches: list[pa.RecordBatch] = []
    owner: list[int] = []
    ts_parts, which_parts, row_parts = [], [], []
    for li, lane in enumerate(lanes):
        keep: list[tuple[pa.RecordBatch, np.ndarray]] = []
        for batch, ts in lane.queue:
            ready = ts <= upto
            if ready.any():
                rows = np.nonzero(ready)[0]
                ts_parts.append(ts[rows])
                which_parts.append(np.full(len(rows), len(batches), dtype=np.int64))
                row_parts.append(rows)
                batches.append(batch)
                owner.append(li)
            if not ready.all():
                rest = ~ready
                keep.append((batch.filter(pa.array(rest)), ts[rest]))
        lane.queue = keep
    if not batches:
        return
    order = np.argsort(np.concatenate(ts_parts), kind="stable")
    which = np.concatenate(which_parts)[order]
    rows = np.concatenate(row_parts)[order]
    # runs of one source batch keep their types; the owner of a run is its batch's lane
    cuts = np.concatenate([[0], np.nonzero(np.diff(which))[0] + 1])
    for start, out in zip(cuts, take_runs(batches, which, rows), strict=True):
        yield owner[int(which[start])], out


class UnionOperator:
    def __init__(self, children: list[Iterator[Item]], ctx: ExecContext,
                 names: list[str] | None = None) -> None:
        """``names``: the first branch's column names when the plan knows them."""
        self.children, self.ctx = children, ctx
        self._names: list[str] | None = names

    def __iter__(self) -> Iterator[Item]:
        for item in merge_by_time(self.children):
            if isinstance(item, Watermark):
                yield item
            else:
                yield self._rename(item[1])

    def _rename(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        names = [n for n in batch.schema.names if n != TS]
        if self._names is None:
            self._names = names
        if names == self._names or len(names) != len(self._names):
            return batch
        arrays = [batch.column(n) for n in names] + [batch.column(TS)]
        return pa.RecordBatch.from_arrays(arrays, names=self._names + [TS])
