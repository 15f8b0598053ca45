"""``FROM step TIMESTAMP BY expr``: give each row of a step a new event time."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from asaql.exec.evaluate import evaluate
from asaql.exec.operator import TS, ExecContext, Item
from asaql.plan import logical as lp
from asaql.types import DATETIME

__all__ = ["retimestamp"]


def retimestamp(node: lp.Retimestamp, child: Iterator[Item], ctx: ExecContext) -> Iterator[Item]:
    from asaql.functions.conversion import cast

    for item in child:
        if not isinstance(item, pa.RecordBatch):
            yield item
            continue
        value = evaluate(node.timestamp_by, item, ctx)
        ts = value.cast(DATETIME) if pa.types.is_timestamp(value.type) else cast(value, "datetime")
        idx = item.schema.get_field_index(TS)
        yield item.set_column(idx, TS, ts)
