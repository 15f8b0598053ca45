"""Script-wide rules of ``TIMESTAMP BY ... OVER`` (substreams; asa-language.md §5):

* OVER is used on every stream input of the job or on none;
* the OVER keys appear in every GROUP BY over such an input, and as equalities in every
  stream JOIN between such inputs (each substream has its own timeline, so only rows of the
  same key may meet).

Checked on the bound plan; each error points at the clause that breaks the rule.
"""

from __future__ import annotations

from asaql.errors import BindError
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.temporal_nodes import TemporalJoin
from asaql.plan.windowing import WindowAggregate

__all__ = ["check_substreams"]


def check_substreams(plan: lp.LogicalPlan) -> None:
    scans = [s for s in plan.nodes() if isinstance(s, lp.Scan) and not s.reference]
    keyed = [s for s in scans if s.timestamp_over]
    if not keyed:
        return
    for scan in scans:
        if not scan.timestamp_over:
            raise BindError(
                f"input '{scan.input_name}' has no TIMESTAMP BY ... OVER, but "
                f"'{keyed[0].input_name}' has: OVER must be used on all inputs or none",
                span=scan.span, code="timestamp_over_all_inputs",
            )
    for node in plan.nodes():
        if isinstance(node, WindowAggregate):
            _check_group_by(node)
        elif isinstance(node, TemporalJoin):
            _check_join(node)


def _below(root: lp.PlanNode, kind: type) -> list:
    return [node for node in lp.walk(root) if isinstance(node, kind)]


def _name(e: bx.BoundExpr) -> str:
    """A key expression by its field path, whatever alias qualifies it."""
    return ".".join(e.path).lower() if isinstance(e, bx.Col) and e.path else str(e).lower()


def _names(exprs: list[bx.BoundExpr] | tuple[bx.BoundExpr, ...]) -> set[str]:
    return {_name(e) for e in exprs}


def _check_group_by(node: WindowAggregate) -> None:
    keys = _names(node.keys)
    for scan in _below(node.child, lp.Scan):
        missing = _names(scan.timestamp_over) - keys
        if scan.timestamp_over and missing:
            raise BindError(
                f"GROUP BY must include the TIMESTAMP BY ... OVER key(s) of '{scan.input_name}': "
                + ", ".join(sorted(missing)),
                span=node.span, code="timestamp_over_group_by",
            )


def _check_join(node: TemporalJoin) -> None:
    pairs = {(_name(a), _name(b)) for a, b in zip(node.left_keys, node.right_keys, strict=True)}
    for side in (node.left, node.right):
        for scan in _below(side, lp.Scan):
            for key in _names(scan.timestamp_over):
                if not any(key in pair for pair in pairs):
                    raise BindError(
                        f"the stream JOIN must equate the TIMESTAMP BY ... OVER key '{key}' of "
                        f"'{scan.input_name}' (ON ... AND a.{key} = b.{key})",
                        span=node.span, code="timestamp_over_join",
                    )

