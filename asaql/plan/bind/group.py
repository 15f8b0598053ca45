"""Binding of GROUP BY, windows, aggregates and HAVING."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asaql.errors import BindError
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import WINDOWS, ExprBinder, Scope
from asaql.sql import ast

if TYPE_CHECKING:
    from asaql.plan.bind import ScriptContext

__all__ = ["bind_group"]


def _is_window(e: ast.Expr) -> bool:
    if not isinstance(e, ast.FunctionCall):
        return False
    if (e.namespace or "").lower() == "system" and e.name.lower() == "timestamp":
        return True
    return e.namespace is None and e.name.lower() in WINDOWS


def bind_group(
    select: ast.Select, node: lp.PlanNode, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> tuple[lp.PlanNode, ExprBinder]:
    """Returns the plan after grouping and the binder for SELECT items (which may see
    aggregates). Without GROUP BY, HAVING acts as WHERE."""
    if not select.group_by:
        if select.having is not None:
            node = lp.Filter(child=node, predicate=binder.bind(select.having), span=select.having.span)
        return node, binder
    if not any(_is_window(e) for e in select.group_by):
        raise BindError(
            "GROUP BY needs a window: a window must be specified",
            span=select.group_by[0].span.merge(select.group_by[-1].span),
            code="window_required",
            help="add e.g. TumblingWindow(minute, 1) to GROUP BY, or group by System.Timestamp()",
        )
    raise BindError("windowed aggregation is not supported yet", span=select.group_by[0].span,
                    code="not_supported")
