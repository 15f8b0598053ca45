"""Binding of stream-to-stream joins (bounded by DATEDIFF on the two aliases).

In ON, ``DATEDIFF(unit, a, b)`` whose arguments are the aliases themselves (not columns) reads
the event times of the two sides (asa-language.md §3). The bound may be written
``BETWEEN lo AND hi``, or with comparisons (``>= lo AND <= hi``, ``< hi``, ``> lo``, ``= n``),
with either alias first; both ends must be bounded, at most 7 days away. Equalities between a left-only and a
right-only expression become hash keys; everything else is a residual filter on the pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asaql.errors import BindError
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import ExprBinder, Scope, conjuncts
from asaql.plan.temporal_nodes import UNIT_US, TemporalJoin
from asaql.sql import ast

if TYPE_CHECKING:
    from asaql.plan.bind import ScriptContext

__all__ = ["bind_temporal_join", "check_star"]

#: ASA's limit on the DATEDIFF of a stream JOIN (join reference: "maximum DATEDIFF size is seven days")
MAX_JOIN_SPAN_US = 7 * 86_400_000_000

_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq"}


def _has_datediff(node: ast.Expr) -> bool:
    if isinstance(node, ast.FunctionCall) and node.name.lower() == "datediff":
        return True
    for child in vars(node).values():
        items = child if isinstance(child, tuple) else (child,)
        for c in items:
            if isinstance(c, ast.Node) and _has_datediff(c):  # type: ignore[arg-type]
                return True
            if isinstance(c, tuple) and any(isinstance(x, ast.Node) and _has_datediff(x) for x in c):  # type: ignore[arg-type]
                return True
    return False


def _missing_bound(clause: ast.Join, node: lp.PlanNode, why: str) -> BindError:
    right = clause.source.alias or clause.source.name
    return BindError(
        f"a JOIN between two streams must bound the time between them with DATEDIFF in ON{why}",
        span=clause.span,
        code="join_time_bound_required",
        help=f"add e.g. AND DATEDIFF(minute, {_alias(node)}, {right}) BETWEEN 0 AND 5",
    )


def bind_temporal_join(
    clause: ast.Join, node: lp.PlanNode, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> lp.PlanNode:
    reference = _reference_scan(node)
    if reference is not None:
        raise BindError(
            f"reference data '{reference.input_name}' must be the right side of a JOIN",
            span=reference.span, code="reference_on_left",
            help="read the stream in FROM and JOIN the reference data after it",
        )
    if not _has_datediff(clause.on):
        raise _missing_bound(clause, node, "")
    from asaql.plan.bind.from_ import _and_all, _key_pair, bind_source

    left_scopes = set(node.scopes())
    right = bind_source(clause.source, scope, ctx, binder)
    right_alias = scope.resolve(clause.source.alias or clause.source.name) or ""
    on = binder.bind(clause.on)
    lo: int | None = None
    hi: int | None = None
    unit: str | None = None
    left_keys: list[bx.BoundExpr] = []
    right_keys: list[bx.BoundExpr] = []
    residual: list[bx.BoundExpr] = []
    for part in conjuncts(on):
        bound = _time_bound(part, left_scopes, right_alias)
        if bound is not None:
            u, b_lo, b_hi = bound
            if unit is not None and u != unit:
                raise BindError("every DATEDIFF bound of one JOIN must use the same unit",
                                span=part.span, code="join_time_bound_units")
            unit = u
            lo = b_lo if lo is None or (b_lo is not None and b_lo > lo) else lo
            hi = b_hi if hi is None or (b_hi is not None and b_hi < hi) else hi
            continue
        pair = _key_pair(part, right_alias)
        if pair is None:
            residual.append(part)
        else:
            left_keys.append(pair[0])
            right_keys.append(pair[1])
    if unit is None:
        raise _missing_bound(clause, node, " (its arguments must be the two aliases, not columns)")
    if lo is None or hi is None:
        raise _missing_bound(clause, node, ": both a lower and an upper bound are needed")
    if lo > hi:
        raise BindError(f"the DATEDIFF bound of this JOIN is empty ({lo} > {hi})", span=clause.on.span,
                        code="join_time_bound_empty")
    reach = max(abs(lo), abs(hi))
    if reach * UNIT_US[unit] > MAX_JOIN_SPAN_US:
        raise BindError(
            f"the DATEDIFF bound of a JOIN between two streams may reach at most 7 days, "
            f"not {reach} {unit}(s)",
            span=clause.on.span, code="join_time_bound_too_large",
            help="ASA limits the DATEDIFF of a stream JOIN to seven days",
        )
    return TemporalJoin(
        left=node, right=right, kind=clause.kind, unit=unit, lo=lo, hi=hi,
        left_keys=left_keys, right_keys=right_keys, residual=_and_all(residual),
        right_alias=right_alias, span=clause.span,
    )


def _time_bound(part: bx.BoundExpr, left: set[str], right: str) -> tuple[str, int | None, int | None] | None:
    """``(unit, lo, hi)`` when ``part`` bounds DATEDIFF(unit, left alias, right alias)."""
    if not isinstance(part, bx.Op):
        return None
    if part.op == "between" and len(part.args) == 3:
        dd = _alias_datediff(part.args[0], left, right)
        lo, hi = _int(part.args[1]), _int(part.args[2])
        if dd is None or lo is None or hi is None:
            return None
        unit, sign = dd
        return (unit, lo, hi) if sign > 0 else (unit, -hi, -lo)
    if part.op not in _FLIP or len(part.args) != 2:
        return None
    op, a, b = part.op, part.args[0], part.args[1]
    dd = _alias_datediff(a, left, right)
    n = _int(b)
    if dd is None:
        dd, n, op = _alias_datediff(b, left, right), _int(a), _FLIP[op]
    if dd is None or n is None:
        return None
    unit, sign = dd
    if sign < 0:  # DATEDIFF(u, r, l) op n  <=>  DATEDIFF(u, l, r) flip(op) -n
        op, n = _FLIP[op], -n
    lo = {"gt": n + 1, "ge": n, "eq": n}.get(op)
    hi = {"lt": n - 1, "le": n, "eq": n}.get(op)
    return unit, lo, hi


def _alias_datediff(e: bx.BoundExpr, left: set[str], right: str) -> tuple[str, int] | None:
    if not (isinstance(e, bx.FuncCall) and e.fn.name.upper() == "DATEDIFF" and len(e.args) == 3):
        return None
    part, a, b = e.args
    if not (isinstance(part, bx.Lit) and _is_alias(a) and _is_alias(b)):
        return None
    from asaql.functions.datetime import DATEPARTS

    unit = DATEPARTS.get(str(part.value).lower())
    if unit is None:
        return None
    sa, sb = a.scope, b.scope  # type: ignore[union-attr]
    if sa in left and sb == right:
        return unit, 1
    if sa == right and sb in left:
        return unit, -1
    return None


def _is_alias(e: bx.BoundExpr) -> bool:
    return isinstance(e, bx.Col) and e.scope is not None and not e.path


def _int(e: bx.BoundExpr) -> int | None:
    if isinstance(e, bx.Lit) and e.kind == "integer":
        return int(e.value)
    if isinstance(e, bx.Lit) and e.kind == "float" and float(e.value).is_integer():
        return int(e.value)
    return None


def check_star(select: ast.Select, items: list[tuple[str, bx.BoundExpr]], node: lp.PlanNode) -> None:
    """``SELECT *`` is not allowed in a statement with a stream JOIN (ASA's rule)."""
    star = next((e for _, e in items if isinstance(e, bx.StarExpr) and e.scope is None and not e.path), None)
    if star is None:
        return
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, TemporalJoin):
            raise BindError(
                "SELECT * is not allowed in a query with a JOIN between two streams",
                span=star.span, code="star_with_stream_join",
                help="name the columns, or select alias.* for each side",
            )
        stack.extend(current.inputs)


def _reference_scan(node: lp.PlanNode) -> lp.Scan | None:
    """The reference input read by the FROM of ``node``, if that is what it reads."""
    while not isinstance(node, lp.Scan) and len(node.inputs) == 1:
        node = node.inputs[0]
    return node if isinstance(node, lp.Scan) and node.reference else None


def _alias(node: lp.PlanNode) -> str:
    scopes = node.scopes()
    return scopes[0] if scopes else "left"
