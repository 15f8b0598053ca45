"""Drive the pull loop: pull every output in turn and hand its batches to its sink.

Outputs are pulled round-robin one batch at a time, so a WITH step shared by several outputs
only buffers what one reader is ahead of another. On a live input a pull may wait for events;
an idle input's scan repeats its watermark on every idle tick (every poll of a followed file
or a pipe, every ``None`` of an iterator), so a pull that waits in a window or a join returns
and the other outputs hand on what they already hold.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from asaql.exec.operator import TS, ExecContext, Item, Watermark
from asaql.exec.scan import NO_WATERMARK

__all__ = ["pull", "strip_internal"]


def strip_internal(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Drop the event-time column before a batch leaves the engine."""
    idx = batch.schema.get_field_index(TS)
    return batch.remove_column(idx) if idx >= 0 else batch


def pull(outputs: list[tuple[str, Iterator[Item]]], ctx: ExecContext) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Yield (output name, batch) as results are produced, pulling outputs in turn."""
    live = [(name, iter(it)) for name, it in outputs]
    marks: dict[int, Watermark] = {}
    while live:
        still: list[tuple[str, Iterator[Item]]] = []
        for name, it in live:
            item = next(it, None)
            if item is None:
                continue
            still.append((name, it))
            if isinstance(item, Watermark):
                if item.time > NO_WATERMARK.time:
                    marks[id(it)] = item
                if len(marks) == len(outputs):
                    ctx.metrics.watermark = min(m.time for m in marks.values())
                continue
            if isinstance(item, pa.RecordBatch) and item.num_rows:
                ctx.metrics.add(ctx.metrics.events_out, name, item.num_rows)
                yield name, item
        live = still
