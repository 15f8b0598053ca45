"""UNION: the rows of every branch (duplicates kept, like UNION ALL); column names from the
first branch, matched by position."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from asaql.exec.operator import TS, ExecContext, Item, Watermark

__all__ = ["UnionOperator"]


class UnionOperator:
    def __init__(self, children: list[Iterator[Item]], ctx: ExecContext) -> None:
        self.children, self.ctx = children, ctx
        self._names: list[str] | None = None

    def __iter__(self) -> Iterator[Item]:
        for child in self.children:
            for item in child:
                if isinstance(item, Watermark):
                    continue
                yield self._rename(item)
        yield Watermark.END

    def _rename(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        names = [n for n in batch.schema.names if n != TS]
        if self._names is None:
            self._names = names
        if names == self._names or len(names) != len(self._names):
            return batch
        arrays = [batch.column(n) for n in names] + [batch.column(TS)]
        return pa.RecordBatch.from_arrays(arrays, names=self._names + [TS])
