"""Filter: keep the rows where the predicate is true (NULL counts as false)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from asaql.exec.evaluate import evaluate_predicate
from asaql.exec.operator import ExecContext, Item
from asaql.plan import logical as lp

__all__ = ["FilterOperator"]


class FilterOperator:
    def __init__(self, node: lp.Filter, child: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.child, self.ctx = node, child, ctx

    def __iter__(self) -> Iterator[Item]:
        for item in self.child:
            if not isinstance(item, pa.RecordBatch):
                yield item
                continue
            mask = evaluate_predicate(self.node.predicate, item, self.ctx)
            yield item.filter(mask)  # empty batches too: readers of a shared input stay in step
