"""Plan nodes of windowed aggregation: ``GROUP BY key, <window>`` with its aggregates.

``WindowAggregate`` turns the scoped rows of a statement into one row per (window, key) group
whose window has closed. Its rows are flat internal columns, read by HAVING and SELECT::

    | __k0 .. __kN (group keys) | __a0 .. __aM (aggregate results) | __win {Id} | __ts = window end |

Example (``explain``)::

    Project store := __k0, n := __a0, windowEnd := System.Timestamp()
      Filter ge(__a0, 2)
        WindowAggregate TumblingWindow(60000000us) keys [store] aggs [__a0 := COUNT(*)]
          Scan orders AS orders TIMESTAMP BY ts
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asaql.functions.aggregates import AggregateFunction, AggregateOptions
from asaql.plan.expr import BoundExpr
from asaql.plan.logical import PlanNode
from asaql.time.windows import WindowSpec

__all__ = ["AggregateCall", "WindowAggregate", "WindowDef", "agg_column", "key_column"]

WINDOW_COLUMN = "__win"


def key_column(index: int) -> str:
    return f"__k{index}"


def agg_column(index: int) -> str:
    return f"__a{index}"


@dataclass(frozen=True)
class AggregateCall:
    """One aggregate of the statement: function, value arguments, ORDER BY expressions."""

    function: AggregateFunction
    args: tuple[BoundExpr, ...]
    order_by: tuple[BoundExpr, ...] = ()
    options: AggregateOptions = field(default_factory=AggregateOptions)

    def __str__(self) -> str:
        inner = ", ".join([*(repr(p) for p in self.options.params), *map(str, self.args)])
        if self.options.star:
            inner = "*"
        if self.options.distinct:
            inner = "DISTINCT " + inner
        over = ""
        if self.order_by:
            parts = [f"{e}{' DESC' if d else ''}" for e, d in
                     zip(self.order_by, self.options.descending, strict=True)]
            over = f" OVER (ORDER BY {', '.join(parts)})"
        return f"{self.function.name}({inner}){over}"


@dataclass(frozen=True)
class WindowDef:
    """One window of the GROUP BY (several with ``Windows(...)``): spec, optional id and, for
    a session window, its ``OVER (PARTITION BY ...)`` keys."""

    spec: WindowSpec
    id: str | None = None
    partition: tuple[BoundExpr, ...] = ()
    text: str = ""

    def __str__(self) -> str:
        label = self.text or repr(self.spec)
        return f"{self.id}: {label}" if self.id else label


@dataclass(kw_only=True)
class WindowAggregate(PlanNode):
    child: PlanNode
    windows: list[WindowDef]
    keys: list[BoundExpr]
    aggregates: list[AggregateCall] = field(default_factory=list)
    key_names: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.child]

    def replace_inputs(self, new: list[PlanNode]) -> None:
        (self.child,) = new

    def scopes(self) -> list[str]:
        return []

    def expressions(self) -> list[BoundExpr]:
        """Every expression read from the input rows (for column pruning)."""
        out: list[BoundExpr] = list(self.keys)
        for call in self.aggregates:
            out.extend(call.args)
            out.extend(call.order_by)
        for window in self.windows:
            out.extend(window.partition)
        return out

    def describe(self) -> str:
        windows = ", ".join(map(str, self.windows))
        keys = ", ".join(map(str, self.keys))
        aggs = ", ".join(f"{agg_column(i)} := {a}" for i, a in enumerate(self.aggregates))
        return f"WindowAggregate {windows} keys [{keys}] aggs [{aggs}]"
