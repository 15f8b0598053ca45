"""Projection pushdown: tell each Scan which top-level fields the statement reads, so the JSON
reader parses only those (parsing dominates the cost of stateless queries); and whether the
job observes event time at all (if not, no scan reads arrival times to stamp events)."""

from __future__ import annotations

from asaql.plan import expr as bx
from asaql.plan import logical as lp

__all__ = ["prune_columns"]

_ALL = None


#: nodes through which event time does not show: their rows are the same whatever the times
_TIMELESS = (lp.Scan, lp.StepRef, lp.Filter, lp.Project, lp.ReferenceJoin, lp.Apply, lp.MLScore, lp.Output)


def prune_columns(plan: lp.LogicalPlan) -> lp.LogicalPlan:
    for root in [*plan.steps.values(), *plan.outputs]:
        _prune_tree(root)
    if not any(_observes_time(node) for node in plan.nodes()):
        for node in plan.nodes():
            if isinstance(node, lp.Scan):
                node.observes_time = False
    return plan


def _observes_time(node: lp.PlanNode) -> bool:
    """Whether ``node`` depends on event time (asked of every node of the job: a step's times
    show in every statement that reads it)."""
    if not isinstance(node, _TIMELESS):
        return True
    if isinstance(node, lp.Scan) and node.timestamp_by is not None:
        return True
    return any(isinstance(sub, bx.SysTimestamp) for e in _node_exprs(node) for sub in bx.walk(e))


def _prune_tree(root: lp.PlanNode) -> None:
    scans: list[lp.Scan] = []
    exprs: list[bx.BoundExpr] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, lp.Scan):
            scans.append(node)
        exprs.extend(_node_exprs(node))
        stack.extend(node.inputs)
    for scan in scans:
        scan.columns = _needed(scan, exprs)


def _node_exprs(node: lp.PlanNode) -> list[bx.BoundExpr]:
    if isinstance(node, lp.Project):
        return [e for _, e in node.exprs]
    if isinstance(node, lp.Filter):
        return [node.predicate]
    if isinstance(node, lp.ReferenceJoin):
        return [*node.left_keys, *node.right_keys] + ([node.residual] if node.residual else [])
    if isinstance(node, lp.Apply | lp.MLScore):
        return [node.arg]
    if isinstance(node, lp.Retimestamp):
        return [node.timestamp_by]
    if isinstance(node, lp.Scan):
        return ([node.timestamp_by] if node.timestamp_by is not None else []) + list(node.timestamp_over)
    extra = getattr(node, "expressions", None)
    return list(extra()) if callable(extra) else []


def _needed(scan: lp.Scan, exprs: list[bx.BoundExpr]) -> list[str] | None:
    names: dict[str, str] = {}
    for e in exprs:
        for sub in bx.walk(e):
            if isinstance(sub, bx.StarExpr) and sub.scope in (None, scan.alias):
                return _ALL
            if isinstance(sub, bx.Col):
                if sub.scope == scan.alias and not sub.path:
                    return _ALL
                if sub.scope in (None, scan.alias) and sub.path:
                    names.setdefault(sub.path[0].lower(), sub.path[0])
    if scan.schema:
        for col, _ in scan.schema:
            names.setdefault(col.lower(), col)
    # a statement that reads no field still needs the events (to count them, to stamp them)
    return list(names.values()) or _ALL
