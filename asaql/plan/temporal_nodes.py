"""Plan nodes of event-time operators: the stream-to-stream join and analytic functions.

``TemporalJoin`` joins two streams whose event times are at most a bounded distance apart::

    DATEDIFF(unit, left, right) BETWEEN lo AND hi      (left/right: the aliases)

``Analytic`` computes LAG / LAST / ISFIRST / aggregates OVER / anomaly detectors for every row
of the statement's input, before WHERE, JOIN and GROUP BY see it; each call's result becomes a
column (scope) named by its alias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asaql.functions.datetime import FIXED_PART_US
from asaql.plan import expr as bx
from asaql.plan.logical import PlanNode

__all__ = ["UNIT_US", "Analytic", "AnalyticCall", "TemporalJoin"]

#: The longest span of one datepart unit in microseconds (for state eviction; the exact bound
#: test uses DATEDIFF itself).
UNIT_US: dict[str, int] = {
    **FIXED_PART_US,
    "month": 31 * 86_400_000_000,
    "quarter": 92 * 86_400_000_000,
    "year": 366 * 86_400_000_000,
}


@dataclass(kw_only=True)
class TemporalJoin(PlanNode):
    """``left [LEFT] JOIN right ON keys AND DATEDIFF(unit, l, r) BETWEEN lo AND hi AND residual``.

    ``left_time_scope``/``right_time_scope`` are the aliases named in DATEDIFF (the rows' event
    times are used). Matched rows carry the later of the two times; an unmatched left row
    (LEFT JOIN) carries ``left time + hi units`` and leaves once that bound has passed.
    """

    left: PlanNode
    right: PlanNode
    kind: str  # inner | left
    unit: str  # canonical datepart
    lo: int
    hi: int
    left_keys: list[bx.BoundExpr] = field(default_factory=list)
    right_keys: list[bx.BoundExpr] = field(default_factory=list)
    residual: bx.BoundExpr | None = None
    right_alias: str = ""

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.left, self.right]

    def replace_inputs(self, new: list[PlanNode]) -> None:
        self.left, self.right = new

    def expressions(self) -> list[bx.BoundExpr]:
        return [*self.left_keys, *self.right_keys] + ([self.residual] if self.residual is not None else [])

    def describe(self) -> str:
        keys = ", ".join(f"{a} = {b}" for a, b in zip(self.left_keys, self.right_keys, strict=True))
        res = f" residual {self.residual}" if self.residual is not None else ""
        return (f"TemporalJoin {self.kind} DATEDIFF({self.unit}) BETWEEN {self.lo} AND {self.hi}"
                f" on {keys or 'TRUE'}{res}")


@dataclass(kw_only=True)
class AnalyticCall:
    """One analytic call. ``function``: lag | last | isfirst | sum | avg | min | max | count |
    topone | collecttop | collect | spikeanddip | changepoint. ``order_by``/``descending``:
    the ``OVER (ORDER BY ...)`` of TopOne and CollectTop."""

    alias: str
    function: str
    value: bx.BoundExpr | None  # None: COUNT(*) / ISFIRST; StarExpr for LAG(*)
    partition_by: tuple[bx.BoundExpr, ...] = ()
    duration_us: int | None = None
    when: bx.BoundExpr | None = None
    offset: int = 1
    default: bx.BoundExpr | None = None
    interval_us: int = 0  # ISFIRST
    params: tuple[object, ...] = ()  # anomaly detectors: confidence, history, mode; CollectTop: n
    order_by: tuple[bx.BoundExpr, ...] = ()
    descending: tuple[bool, ...] = ()
    text: str = ""

    def expressions(self) -> list[bx.BoundExpr]:
        out = [e for e in (self.value, self.when, self.default) if e is not None]
        return out + list(self.partition_by) + list(self.order_by)


@dataclass(kw_only=True)
class Analytic(PlanNode):
    child: PlanNode
    calls: list[AnalyticCall] = field(default_factory=list)

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.child]

    def replace_inputs(self, new: list[PlanNode]) -> None:
        (self.child,) = new

    def scopes(self) -> list[str]:
        return self.child.scopes() + [c.alias for c in self.calls]

    def expressions(self) -> list[bx.BoundExpr]:
        return [e for c in self.calls for e in c.expressions()]

    def describe(self) -> str:
        return "Analytic " + ", ".join(f"{c.alias} := {c.text}" for c in self.calls)
