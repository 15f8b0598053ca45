"""Binding of stream-to-stream joins (bounded by DATEDIFF on the two aliases)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asaql.errors import BindError
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import ExprBinder, Scope
from asaql.sql import ast

if TYPE_CHECKING:
    from asaql.plan.bind import ScriptContext

__all__ = ["bind_temporal_join"]


def _has_datediff(node: ast.Expr) -> bool:
    if isinstance(node, ast.FunctionCall) and node.name.lower() == "datediff":
        return True
    children = [v for v in vars(node).values()]
    for child in children:
        if isinstance(child, tuple):
            for c in child:
                if isinstance(c, ast.Node) and _has_datediff(c):  # type: ignore[arg-type]
                    return True
                if isinstance(c, tuple) and any(isinstance(x, ast.Node) and _has_datediff(x) for x in c):  # type: ignore[arg-type]
                    return True
        elif isinstance(child, ast.Node) and _has_datediff(child):  # type: ignore[arg-type]
            return True
    return False


def bind_temporal_join(
    clause: ast.Join, node: lp.PlanNode, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> lp.PlanNode:
    if not _has_datediff(clause.on):
        raise BindError(
            "a JOIN between two streams must bound the time between them with DATEDIFF in ON",
            span=clause.span,
            code="join_time_bound_required",
            help=f"add e.g. AND DATEDIFF(minute, {_alias(node)}, {clause.source.alias or clause.source.name}) BETWEEN 0 AND 5",
        )
    raise BindError("stream-to-stream JOIN is not supported yet", span=clause.span, code="not_supported")


def _alias(node: lp.PlanNode) -> str:
    scopes = node.scopes()
    return scopes[0] if scopes else "left"
