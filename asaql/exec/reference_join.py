"""Reference-data join: a hash join of each stream batch against a table loaded once.

The join itself runs in Arrow's hash join (``pa.Table.join``) on the key columns and a row
number; the matched row numbers then ``take`` the full rows of both sides, so the stream's order
is kept and nested or mixed-type columns never go through the join kernel.
Keys of different kinds (a string ``"1"`` against a bigint ``1``) do not match, as in ASA:
cast explicitly (CSV reference values are strings).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.exec.evaluate import evaluate, evaluate_predicate
from asaql.exec.operator import TS, ExecContext, Item, batch_items
from asaql.plan import logical as lp

__all__ = ["ReferenceJoinOperator"]

_LROW, _RROW = "__lrow", "__rrow"


class ReferenceJoinOperator:
    def __init__(self, node: lp.ReferenceJoin, left: Iterator[Item], right: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.left, self.right, self.ctx = node, left, right, ctx
        self._table: pa.RecordBatch | None = None
        self._keys: pa.Table | None = None

    def __iter__(self) -> Iterator[Item]:
        self._load()
        for item in self.left:
            if not isinstance(item, pa.RecordBatch):
                yield item
                continue
            yield self._join(item)

    def _load(self) -> None:
        batches = list(batch_items(iter(self.right)))
        alias = self.node.right.scopes()[0]
        if batches:
            table = pa.Table.from_batches(batches).combine_chunks()
            ref = pa.RecordBatch.from_arrays([table.column(alias).combine_chunks()], names=[alias])
        else:
            ref = pa.RecordBatch.from_arrays([pa.array([], pa.struct([]))], names=[alias])
        self._table = ref
        self._keys = self._key_table(self.node.right_keys, ref, _RROW)

    def _key_table(self, exprs: list, batch: pa.RecordBatch, row_name: str) -> pa.Table:
        arrays = [evaluate(e, batch, self.ctx) for e in exprs]
        names = [f"__k{i}" for i in range(len(arrays))]
        arrays.append(pa.array(np.arange(batch.num_rows, dtype=np.int64)))
        names.append(row_name)
        return pa.table(arrays, names=names)

    def _join(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        assert self._table is not None and self._keys is not None
        left_idx, right_idx = self._match(batch)
        if self.node.residual is not None:
            joined = self._assemble(batch, left_idx, right_idx)
            keep = evaluate_predicate(self.node.residual, joined, self.ctx)
            left_idx, right_idx = left_idx.filter(keep), right_idx.filter(keep)
        if self.node.kind == "left":
            left_idx, right_idx = self._add_unmatched(batch.num_rows, left_idx, right_idx)
        return self._assemble(batch, left_idx, right_idx)

    def _match(self, batch: pa.RecordBatch) -> tuple[pa.Array, pa.Array]:
        assert self._keys is not None
        if not self.node.left_keys:
            n, m = batch.num_rows, self._keys.num_rows
            return (pa.array(np.repeat(np.arange(n), m).astype(np.int64)),
                    pa.array(np.tile(np.arange(m), n).astype(np.int64)))
        left = self._key_table(self.node.left_keys, batch, _LROW)
        left, right = _align_key_types(left, self._keys, len(self.node.left_keys))
        keys = [f"__k{i}" for i in range(len(self.node.left_keys))]
        if left is None:
            return pa.array([], pa.int64()), pa.array([], pa.int64())
        pairs = left.join(right, keys=keys, join_type="inner", use_threads=False)
        order = pc.sort_indices(pairs, sort_keys=[(_LROW, "ascending"), (_RROW, "ascending")])
        pairs = pairs.take(order)
        return (pairs.column(_LROW).combine_chunks(), pairs.column(_RROW).combine_chunks())

    def _add_unmatched(self, n: int, left_idx: pa.Array, right_idx: pa.Array) -> tuple[pa.Array, pa.Array]:
        all_rows = pa.array(np.arange(n, dtype=np.int64))
        missing = all_rows.filter(pc.invert(pc.is_in(all_rows, value_set=left_idx)))
        if len(missing) == 0:
            return left_idx, right_idx
        lefts = pa.concat_arrays([left_idx, missing])
        rights = pa.concat_arrays([right_idx, pa.nulls(len(missing), pa.int64())])
        order = pc.sort_indices(lefts)
        return lefts.take(order), rights.take(order)

    def _assemble(self, batch: pa.RecordBatch, left_idx: pa.Array, right_idx: pa.Array) -> pa.RecordBatch:
        assert self._table is not None
        left = batch.take(left_idx)
        right_col = self._table.column(0).take(right_idx)
        names = [n for n in left.schema.names if n != TS] + [self._table.schema.names[0], TS]
        arrays = [left.column(n) for n in names[:-2]] + [right_col, left.column(TS)]
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _align_key_types(left: pa.Table, right: pa.Table, nkeys: int) -> tuple[pa.Table | None, pa.Table]:
    """Make the key columns of both sides joinable; keys of unrelated kinds never match."""
    for i in range(nkeys):
        name = f"__k{i}"
        lt, rt = left.schema.field(name).type, right.schema.field(name).type
        if lt == rt:
            continue
        target = _join_type(lt, rt)
        if target is None:
            return None, right
        left = left.set_column(i, name, left.column(name).cast(target))
        right = right.set_column(i, name, right.column(name).cast(target))
    return left, right


def _join_type(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    def num(t: pa.DataType) -> bool:
        return pa.types.is_integer(t) or pa.types.is_floating(t)

    def text(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if num(a) and num(b):
        return pa.float64() if pa.types.is_floating(a) or pa.types.is_floating(b) else pa.int64()
    if text(a) and text(b):
        return pa.large_string()
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        return pa.timestamp("us", tz="UTC")
    return None
