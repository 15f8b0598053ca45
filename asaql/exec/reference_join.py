"""Reference-data join: a hash join of each stream batch against a table loaded once.

Matching produces row numbers (left row, right row) in stream order; the matched row numbers then
``take`` the full rows of both sides, so the stream's order is kept and nested or mixed-type
columns never go through the join kernel. Two ways to match:

* one equality key whose reference values are unique (the usual device table): a lookup,
  ``pc.index_in`` of the batch's keys in the reference keys (NULL never matches), no hash table
  built per batch and no sort;
* otherwise Arrow's hash join (``pa.Table.join``) on the key columns and the row numbers, sorted
  by (left row, right row).

Both give the same pairs in the same order. When every stream row matches exactly once, the
stream side is passed through without a ``take``.
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
        self._lookup: dict[pa.DataType, pa.Array | None] = {}  # left key type -> unique right keys

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
        return _key_table([evaluate(e, batch, self.ctx) for e in exprs], batch.num_rows, row_name)

    def _join(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        assert self._table is not None and self._keys is not None
        left_idx, right_idx = self._match(batch)
        if self.node.residual is not None:
            joined = self._assemble(batch, left_idx, right_idx)
            keep = evaluate_predicate(self.node.residual, joined, self.ctx)
            left_idx, right_idx = _rows(left_idx, batch.num_rows).filter(keep), right_idx.filter(keep)
        if self.node.kind == "left" and left_idx is not None:
            left_idx, right_idx = self._add_unmatched(batch.num_rows, left_idx, right_idx)
        return self._assemble(batch, left_idx, right_idx)

    def _match(self, batch: pa.RecordBatch) -> tuple[pa.Array | None, pa.Array]:
        """(left rows, right rows) of the matching pairs in stream order; left rows None when
        they are exactly the batch's rows 0..n-1."""
        assert self._keys is not None
        if not self.node.left_keys:
            n, m = batch.num_rows, self._keys.num_rows
            return (pa.array(np.repeat(np.arange(n), m).astype(np.int64)),
                    pa.array(np.tile(np.arange(m), n).astype(np.int64)))
        key_arrays = [evaluate(e, batch, self.ctx) for e in self.node.left_keys]
        if len(key_arrays) == 1:
            found = self._lookup_match(key_arrays[0])
            if found is not None:
                return found
        left = _key_table(key_arrays, batch.num_rows, _LROW)
        left, right = _align_key_types(left, self._keys, len(self.node.left_keys))
        keys = [f"__k{i}" for i in range(len(self.node.left_keys))]
        if left is None:
            return pa.array([], pa.int64()), pa.array([], pa.int64())
        pairs = left.join(right, keys=keys, join_type="inner", use_threads=False)
        order = pc.sort_indices(pairs, sort_keys=[(_LROW, "ascending"), (_RROW, "ascending")])
        pairs = pairs.take(order)
        return (pairs.column(_LROW).combine_chunks(), pairs.column(_RROW).combine_chunks())

    def _lookup_match(self, key: pa.Array) -> tuple[pa.Array | None, pa.Array] | None:
        """Single-key match by lookup; None when the reference keys are not unique (or the key
        types need the general path)."""
        if not _lookup_type(key.type):
            return None
        if key.type not in self._lookup:
            self._lookup[key.type] = self._unique_right_keys(key.type)
        right_keys = self._lookup[key.type]
        if right_keys is None:
            return None
        n = len(key)
        if pa.types.is_null(right_keys.type):
            return pa.array([], pa.int64()), pa.array([], pa.int64())
        if key.type != right_keys.type:
            key = key.cast(right_keys.type)
        positions = pc.index_in(key, value_set=right_keys, skip_nulls=True)
        if positions.null_count == 0:
            return None, positions.cast(pa.int64())
        matched = positions.is_valid()
        left_idx = pa.array(np.arange(n, dtype=np.int64)).filter(matched)
        return left_idx, positions.filter(matched).cast(pa.int64())

    def _unique_right_keys(self, left_type: pa.DataType) -> pa.Array | None:
        """The reference key column, in the type both sides are compared in, if its non-NULL
        values are unique; else None."""
        assert self._keys is not None
        right = self._keys.column("__k0").combine_chunks()
        probe = pa.table([pa.nulls(0, left_type)], names=["__k0"])
        aligned_left, aligned = _align_key_types(probe, pa.table([right], names=["__k0"]), 1)
        if aligned_left is None:
            return pa.nulls(0)  # unrelated kinds: nothing ever matches
        keys = aligned.column("__k0").combine_chunks()
        if not _lookup_type(keys.type):
            return None
        valid = keys.drop_null()
        if len(pc.unique(valid)) != len(valid):
            return None
        # NULL keys keep their row positions but never match (skip_nulls in the lookup)
        return keys

    def _add_unmatched(self, n: int, left_idx: pa.Array, right_idx: pa.Array) -> tuple[pa.Array, pa.Array]:
        all_rows = pa.array(np.arange(n, dtype=np.int64))
        missing = all_rows.filter(pc.invert(pc.is_in(all_rows, value_set=left_idx)))
        if len(missing) == 0:
            return left_idx, right_idx
        lefts = pa.concat_arrays([left_idx, missing])
        rights = pa.concat_arrays([right_idx, pa.nulls(len(missing), pa.int64())])
        order = pc.sort_indices(lefts)
        return lefts.take(order), rights.take(order)

    def _assemble(self, batch: pa.RecordBatch, left_idx: pa.Array | None, right_idx: pa.Array) -> pa.RecordBatch:
        assert self._table is not None
        left = batch if left_idx is None else batch.take(left_idx)
        right_col = self._table.column(0).take(right_idx)
        names = [n for n in left.schema.names if n != TS] + [self._table.schema.names[0], TS]
        arrays = [left.column(n) for n in names[:-2]] + [right_col, left.column(TS)]
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _key_table(arrays: list[pa.Array], n: int, row_name: str) -> pa.Table:
    names = [f"__k{i}" for i in range(len(arrays))]
    return pa.table([*arrays, pa.array(np.arange(n, dtype=np.int64))], names=[*names, row_name])


def _lookup_type(t: pa.DataType) -> bool:
    """Key types the lookup handles exactly as the hash join does (floats, with NaN and -0.0,
    and everything else go to the hash join)."""
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_timestamp(t))


def _rows(left_idx: pa.Array | None, n: int) -> pa.Array:
    return pa.array(np.arange(n, dtype=np.int64)) if left_idx is None else left_idx


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
