"""WITH steps: computed once, read by any number of later statements.

``SharedStep`` pulls the step's operator tree once and hands each reader its own queue of the
batches it has not read yet (like ``itertools.tee``); the runtime pulls outputs in turn, so the
queues stay short (on a live input, with the help of the idle ticks' repeated watermarks: see
``SharedStep._read``). ``StepRead`` re-scopes a step's flat columns under the reader's alias.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import pyarrow as pa

from asaql.exec.operator import TS, Item, Watermark
from asaql.exec.scan import to_struct

__all__ = ["SharedStep", "step_read"]


class SharedStep:
    def __init__(self, source: Iterator[Item]) -> None:
        self._source = iter(source)
        self._queues: list[deque[Item]] = []
        self._done = False
        self._mark: Watermark | None = None  # the last watermark the source gave
        self._live = False  # the source has repeated a watermark: an idle live input

    def reader(self) -> Iterator[Item]:
        queue: deque[Item] = deque()
        self._queues.append(queue)
        return self._read(queue)

    def _read(self, queue: deque[Item]) -> Iterator[Item]:
        # A reader that is ahead would block on a live source while the others still hold
        # items they have not handed on (the runtime gives each output one item per turn, and
        # a window takes a batch and its watermark in one turn). So on a live source it hands
        # back its last watermark instead, as long as the others' queues keep shrinking (they
        # are being read; if not, their reader is waiting on this one: read the source).
        last: Watermark | None = None
        behind = 0  # the others' queued items when this reader last stepped aside
        while True:
            if queue:
                item = queue.popleft()
                if isinstance(item, Watermark):
                    if item.is_end:  # nothing follows the end; never hand it on twice
                        yield item
                        return
                    last = item
                yield item
                continue
            if self._done:
                return
            others = sum(len(q) for q in self._queues)
            if self._live and last is not None and others and (not behind or others < behind):
                behind = others
                yield last
                continue
            behind = 0
            try:
                item = next(self._source)
            except StopIteration:
                self._done = True
                return
            if isinstance(item, Watermark):
                repeat = self._mark is not None and item.time <= self._mark.time
                self._live = self._live or repeat
                self._mark = item
                if repeat:  # an idle tick: only a reader with nothing queued needs it
                    for q in self._queues:  # (bounds the queue of a reader that is not read
                        if not q or not isinstance(q[-1], Watermark):  # while the source idles)
                            q.append(item)
                    continue
            for q in self._queues:
                q.append(item)


def step_read(items: Iterator[Item], alias: str) -> Iterator[Item]:
    for item in items:
        if not isinstance(item, pa.RecordBatch):
            yield item
            continue
        names = [n for n in item.schema.names if n != TS]
        flat = pa.RecordBatch.from_arrays([item.column(n) for n in names], names=names)
        yield pa.RecordBatch.from_arrays([to_struct(flat), item.column(TS)], names=[alias, TS])
