"""Plan rewrites. ``RULES`` run in order; each is one module with one function.

Every rule must leave results unchanged: the test suite runs every case with the optimizer on
and off and compares.
"""

from __future__ import annotations

from collections.abc import Callable

from asaql.plan import logical as lp
from asaql.plan.optimizer.prune_columns import prune_columns
from asaql.plan.optimizer.push_filters import push_filters

__all__ = ["RULES", "optimize"]

Rule = Callable[[lp.LogicalPlan], lp.LogicalPlan]
RULES: list[Rule] = [push_filters, prune_columns]


def optimize(plan: lp.LogicalPlan, *, enabled: bool = True) -> lp.LogicalPlan:
    if not enabled:
        return plan
    for rule in RULES:
        plan = rule(plan)
    return plan
