"""WITH steps: computed once, read by any number of later statements.

``SharedStep`` pulls the step's operator tree once and hands each reader its own queue of the
batches it has not read yet (like ``itertools.tee``); the runtime pulls outputs in turn, so the
queues stay short. ``StepRead`` re-scopes a step's flat columns under the reader's alias.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import pyarrow as pa

from asaql.exec.operator import TS, Item
from asaql.exec.scan import to_struct

__all__ = ["SharedStep", "step_read"]


class SharedStep:
    def __init__(self, source: Iterator[Item]) -> None:
        self._source = iter(source)
        self._queues: list[deque[Item]] = []
        self._done = False

    def reader(self) -> Iterator[Item]:
        queue: deque[Item] = deque()
        self._queues.append(queue)
        return self._read(queue)

    def _read(self, queue: deque[Item]) -> Iterator[Item]:
        while True:
            if queue:
                yield queue.popleft()
                continue
            if self._done:
                return
            try:
                item = next(self._source)
            except StopIteration:
                self._done = True
                return
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
