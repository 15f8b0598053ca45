"""Filter pushdown: move WHERE conjuncts below ML scoring, APPLY and reference joins when they
only read the rows below, so fewer events are scored, expanded or joined.

Unqualified names resolve to the input scopes first (left to right), so a conjunct over them
moves below an APPLY only when the APPLY's own fields do not share the name.
"""

from __future__ import annotations

from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import conjuncts

__all__ = ["push_filter", "push_filters"]


def push_filters(plan: lp.LogicalPlan) -> lp.LogicalPlan:
    for name, node in list(plan.steps.items()):
        plan.steps[name] = _rewrite(node)
    for out in plan.outputs:
        out.child = _rewrite(out.child)
    return plan


def _rewrite(node: lp.PlanNode) -> lp.PlanNode:
    node.replace_inputs([_rewrite(c) for c in node.inputs])
    if not isinstance(node, lp.Filter):
        return node
    return push_filter(node)


def push_filter(node: lp.Filter) -> lp.PlanNode:
    """Move the conjuncts of ``node`` as far down as they can go; returns the new subtree."""
    child = node.child
    below = _below(child)
    if below is None:
        return node
    target, blocked = below
    allowed = set(target.scopes())
    movable, kept = [], []
    for part in conjuncts(node.predicate):
        (movable if _only_reads(part, allowed, blocked) else kept).append(part)
    if not movable:
        return node
    pushed = lp.Filter(child=target, predicate=_and(movable), span=node.span)
    child.replace_inputs([push_filter(pushed)] + child.inputs[1:])
    if not kept:
        return child
    return lp.Filter(child=child, predicate=_and(kept), span=node.span)


def _below(child: lp.PlanNode) -> tuple[lp.PlanNode, set[str]] | None:
    """The node a filter can move onto, and the unqualified names that must not move."""
    if isinstance(child, lp.MLScore):
        return child.child, set()
    if isinstance(child, lp.Apply):
        names = {"arrayindex", "arrayvalue", "propertyname", "propertyvalue"}
        return child.child, names
    if isinstance(child, lp.ReferenceJoin):
        return child.left, {"*"}
    return None


def _only_reads(e: bx.BoundExpr, scopes: set[str], blocked: set[str]) -> bool:
    for sub in bx.walk(e):
        if isinstance(sub, bx.TryEval | bx.StarExpr):
            return False
        if isinstance(sub, bx.Col):
            if sub.scope is None:
                if "*" in blocked or (sub.path and sub.path[0].lower() in blocked):
                    return False
            elif sub.scope not in scopes:
                return False
    return True


def _and(parts: list[bx.BoundExpr]) -> bx.BoundExpr:
    out = parts[0]
    for p in parts[1:]:
        out = bx.Op(op="and", args=(out, p), span=out.span.merge(p.span))
    return out
