"""Project: turn scoped rows into the named columns of a step or an output.

``*`` expands to the fields of every input scope (an earlier column wins over a later one of
the same name, compared case-insensitively); ``alias.*`` and ``record.*`` to one record's fields.
The event time ``__ts`` is carried along.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from asaql.exec.evaluate import evaluate, struct_field
from asaql.exec.operator import ML_ERROR_PREFIX, TS, ExecContext, Item
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.types import is_variant, to_python

__all__ = ["ProjectOperator", "project_batch"]


class ProjectOperator:
    def __init__(self, node: lp.Project, child: Iterator[Item], ctx: ExecContext) -> None:
        self.node, self.child, self.ctx = node, child, ctx

    def __iter__(self) -> Iterator[Item]:
        for item in self.child:
            if isinstance(item, pa.RecordBatch):
                yield project_batch(self.node.exprs, item, self.ctx)
            else:
                yield item


def project_batch(exprs: list[tuple[str, bx.BoundExpr]], batch: pa.RecordBatch, ctx: ExecContext) -> pa.RecordBatch:
    names: list[str] = []
    arrays: list[pa.Array] = []
    seen: set[str] = set()

    def add(name: str, array: pa.Array) -> None:
        if name.lower() in seen:
            return
        seen.add(name.lower())
        names.append(name)
        arrays.append(array)

    for name, expr in exprs:
        if isinstance(expr, bx.StarExpr):
            for fname, farr in _expand(expr, batch):
                add(fname, farr)
        else:
            add(name, evaluate(expr, batch, ctx))
    ts_idx = batch.schema.get_field_index(TS)
    if ts_idx >= 0:
        names.append(TS)
        arrays.append(batch.column(ts_idx))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _expand(star: bx.StarExpr, batch: pa.RecordBatch) -> list[tuple[str, pa.Array]]:
    if star.scope is None and not star.path:
        cols = [
            batch.column(i)
            for i, f in enumerate(batch.schema)
            if f.name != TS and not f.name.startswith("__")
        ]
    else:
        cols = [evaluate(bx.Col(scope=star.scope, path=star.path), batch)]
    out: list[tuple[str, pa.Array]] = []
    for col in cols:
        if pa.types.is_struct(col.type):
            for i in range(col.type.num_fields):
                out.append((col.type.field(i).name, struct_field(col, col.type.field(i).name, len(col))))
        elif is_variant(col.type):
            out.extend(_expand_mixed(col))
    return out


def _expand_mixed(col: pa.Array) -> list[tuple[str, pa.Array]]:
    """``r.*`` of a column whose values are records of varying shapes (or not records at
    all, in some rows): one column per field name, in first-seen order; NULL where a row's
    value lacks the field or is not a record. Per value in Python: only mixed data gets here."""
    from asaql.io.formats import column_from_values

    values = to_python(col)
    names: dict[str, None] = {}
    for value in values:
        if isinstance(value, dict):
            names.update(dict.fromkeys(value))
    return [
        (name, column_from_values([v.get(name) if isinstance(v, dict) else None for v in values]))
        for name in names
    ]


__all__ += ["ML_ERROR_PREFIX"]
