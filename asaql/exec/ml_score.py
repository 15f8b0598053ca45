"""MLScore: enrich every event with the answer of an ML endpoint (or a local Python model).

The scorer (:mod:`asaql.ml.scorer`) keeps up to N requests of up to B events in flight and
answers chunks in input order. This operator feeds it the argument of each batch and glues the
answers back on, holding watermarks until every earlier event is answered::

    child ──► pending deque: [batch1, wm1, batch2, batch3, wm2] ──► scorer.map(args) (in flight)
                 ▲ popped in order as answers arrive: batch1+answers, wm1, batch2+answers, ...

The answer becomes the scope column ``alias``; failures (with on_error='null', inside
TryEvaluate) leave NULL there and the message in ``__mlerr.<alias>``, which the evaluator turns
into an error when the value is read outside TryEvaluate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from asaql.exec.evaluate import evaluate, from_python
from asaql.exec.operator import ML_ERROR_PREFIX, TS, ExecContext, Item
from asaql.plan import logical as lp
from asaql.types import to_python

__all__ = ["MLScoreOperator"]


class MLScoreOperator:
    def __init__(self, node: lp.MLScore, child: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.child, self.ctx = node, child, ctx

    def __iter__(self) -> Iterator[Item]:
        from asaql.ml.scorer import Scorer

        transport = getattr(self.ctx.options, "ml_transport", None)
        on_error = "null" if self.node.on_error == "null" else "raise"
        scorer = Scorer(self.node.spec, transport=transport, on_error=on_error)
        self.ctx.metrics.endpoints[self.node.function] = scorer.metrics
        pending: deque[Item] = deque()
        try:
            for scored in scorer.map(self._arguments(pending)):
                yield from _release_watermarks(pending)
                batch = pending.popleft()
                assert isinstance(batch, pa.RecordBatch)
                yield self._attach(batch, scored.values, scored.errors)
            yield from pending
        finally:
            scorer.close()

    def _arguments(self, pending: deque[Item]) -> Iterator[list[Any]]:
        for item in self.child:
            pending.append(item)
            if isinstance(item, pa.RecordBatch):
                yield to_python(evaluate(self.node.arg, item, self.ctx))

    def _attach(self, batch: pa.RecordBatch, values: list[Any], errors: list[Any] | None) -> pa.RecordBatch:
        names = [n for n in batch.schema.names if n != TS]
        arrays = [batch.column(n) for n in names]
        names.append(self.node.alias)
        arrays.append(from_python(values) if values else pa.nulls(0))
        if errors is not None and any(e is not None for e in errors):
            names.append(ML_ERROR_PREFIX + self.node.alias)
            arrays.append(pa.array([None if e is None else str(e) for e in errors], pa.string()))
        names.append(TS)
        arrays.append(batch.column(TS))
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _release_watermarks(pending: deque[Item]) -> Iterator[Item]:
    while pending and not isinstance(pending[0], pa.RecordBatch):
        yield pending.popleft()
