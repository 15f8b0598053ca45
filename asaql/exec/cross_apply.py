"""CROSS / OUTER APPLY of GetArrayElements and GetRecordProperties.

The table function returns (parent row index, struct of the produced rows); the parent rows
are repeated with ``take``. OUTER APPLY keeps parents that produced nothing, with NULL fields.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.exec.evaluate import evaluate
from asaql.exec.operator import TS, ExecContext, Item
from asaql.plan import logical as lp

__all__ = ["ApplyOperator"]


def _table_function(name: str):  # type: ignore[no-untyped-def]
    from asaql.functions import array

    return {
        "GetArrayElements": array.get_array_elements,
        "GetRecordProperties": array.get_record_properties,
    }[name]


class ApplyOperator:
    def __init__(self, node: lp.Apply, child: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.child, self.ctx = node, child, ctx
        self.fn = _table_function(node.function)

    def __iter__(self) -> Iterator[Item]:
        for item in self.child:
            if not isinstance(item, pa.RecordBatch):
                yield item
                continue
            yield self._apply(item)

    def _apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arg = evaluate(self.node.arg, batch, self.ctx)
        parents, produced = self.fn(arg)
        parents = parents.cast(pa.int64())
        if self.node.kind == "outer":
            parents, produced = _keep_empty_parents(batch.num_rows, parents, produced)
        base = batch.take(parents)
        names = [n for n in base.schema.names if n != TS] + [self.node.alias, TS]
        arrays = [base.column(n) for n in names[:-2]] + [produced, base.column(TS)]
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _keep_empty_parents(n: int, parents: pa.Array, produced: pa.Array) -> tuple[pa.Array, pa.Array]:
    rows = pa.array(np.arange(n, dtype=np.int64))
    missing = rows.filter(pc.invert(pc.is_in(rows, value_set=parents)))
    if len(missing) == 0:
        return parents, produced
    all_parents = pa.concat_arrays([parents, missing])
    nulls = pa.nulls(len(missing), produced.type)
    all_produced = pa.concat_arrays([produced, nulls])
    order = pc.sort_indices(all_parents)
    return all_parents.take(order), all_produced.take(order)
