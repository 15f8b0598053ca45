"""Logical plan -> tree of pull-based operators.

Builders are registered per plan node type (``@builds(lp.Filter)``), so a new operator adds
one function here, not a branch in a chain. WITH steps are built once and shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from asaql.errors import InternalError
from asaql.exec.cross_apply import ApplyOperator
from asaql.exec.filter import FilterOperator
from asaql.exec.ml_score import DeadLetterChannel, MLScoreOperator, with_dead_letters
from asaql.exec.operator import ExecContext, Item
from asaql.exec.project import ProjectOperator
from asaql.exec.reference_join import ReferenceJoinOperator
from asaql.exec.scan import ScanOperator, SourceFactory
from asaql.exec.step import SharedStep, step_read
from asaql.exec.union import UnionOperator
from asaql.plan import logical as lp
from asaql.plan.temporal_nodes import Analytic, TemporalJoin

__all__ = ["BUILDERS", "Builder", "build", "builds", "describe_physical"]

BuildFn = Callable[[lp.PlanNode, "Builder"], Iterator[Item]]
BUILDERS: dict[type, BuildFn] = {}
PHYSICAL_NAMES: dict[type, str] = {}


def builds(node_type: type, physical_name: str | None = None) -> Callable[[BuildFn], BuildFn]:
    def wrap(fn: BuildFn) -> BuildFn:
        BUILDERS[node_type] = fn
        PHYSICAL_NAMES[node_type] = physical_name or node_type.__name__ + "Exec"
        return fn

    return wrap


@dataclass
class Builder:
    plan: lp.LogicalPlan
    ctx: ExecContext
    open_input: SourceFactory
    shared: dict[str, SharedStep] = field(default_factory=dict)
    scans: dict[tuple[str, ...], SharedStep] = field(default_factory=dict)
    scan_columns: dict[tuple[str, ...], list[str] | None] = field(default_factory=dict)
    dead_letters: dict[str, DeadLetterChannel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """An input read by several statements is read once: scans with the same input and
        event-time settings share one reader, which parses the union of their columns."""
        for node in self.plan.nodes():
            if isinstance(node, lp.Scan):
                key = _scan_key(node)
                if key in self.scan_columns and (self.scan_columns[key] is None or node.columns is None):
                    self.scan_columns[key] = None
                elif key in self.scan_columns:
                    merged = self.scan_columns[key] or []
                    seen = {c.lower() for c in merged}
                    self.scan_columns[key] = merged + [c for c in node.columns or [] if c.lower() not in seen]
                else:
                    self.scan_columns[key] = None if node.columns is None else list(node.columns)

    def scan(self, node: lp.Scan) -> Iterator[Item]:
        key = _scan_key(node)
        if key not in self.scans:
            import copy

            shared_node = copy.copy(node)
            shared_node.columns = self.scan_columns.get(key, node.columns)
            shared_node.alias = "__scan"
            self.scans[key] = SharedStep(iter(ScanOperator(shared_node, self.ctx, self.open_input)))
        return _realias(self.scans[key].reader(), node.alias)

    def build(self, node: lp.PlanNode) -> Iterator[Item]:
        fn = BUILDERS.get(type(node))
        if fn is None:
            raise InternalError(f"no operator for plan node {type(node).__name__}")
        return fn(node, self)

    def dead_letter(self, name: str | None) -> DeadLetterChannel | None:
        """The channel of a dead-letter output (one per name, shared by its ML calls)."""
        if name is None:
            return None
        return self.dead_letters.setdefault(name, DeadLetterChannel(name))

    def step(self, name: str) -> SharedStep:
        if name not in self.shared:
            self.shared[name] = SharedStep(self.build(self.plan.steps[name]))
        return self.shared[name]


def build(plan: lp.LogicalPlan, ctx: ExecContext, open_input: SourceFactory) -> list[tuple[str, Iterator[Item]]]:
    """One operator tree per output, in script order, then the dead-letter outputs."""
    builder = Builder(plan, ctx, open_input)
    outputs = [(out.name, builder.build(out.child)) for out in plan.outputs]
    return with_dead_letters(outputs, builder.dead_letters)


def describe_physical(plan: lp.LogicalPlan) -> str:
    """The operator tree, one line per operator (``asaql explain``)."""
    lines: list[str] = []

    def render(node: lp.PlanNode, depth: int) -> None:
        name = PHYSICAL_NAMES.get(type(node), type(node).__name__)
        detail = node.describe().split(" ", 1)
        lines.append("  " * depth + name + (" " + detail[1] if len(detail) > 1 else ""))
        for child in node.inputs:
            render(child, depth + 1)

    for step_name, node in plan.steps.items():
        lines.append(f"SharedStep {step_name} (computed once)")
        render(node, 1)
    for out in plan.outputs:
        lines.append(f"SinkWriter {out.name}")
        render(out.child, 1)
    for name in plan.dead_letters():
        lines.append(f"SinkWriter {name} (dead letters of ML calls)")
    return "\n".join(lines)


def _scan_key(node: lp.Scan) -> tuple[str, ...]:
    return (node.input_name.lower(), str(node.timestamp_by), *map(str, node.timestamp_over),
            str(node.schema), str(node.reference))


def _realias(items: Iterator[Item], alias: str) -> Iterator[Item]:
    import pyarrow as pa

    for item in items:
        if isinstance(item, pa.RecordBatch):
            names = list(item.schema.names)
            names[0] = alias
            item = pa.RecordBatch.from_arrays(item.columns, names=names)
        yield item


@builds(lp.Scan, "ScanExec")
def _scan(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.Scan)
    return b.scan(node)


@builds(lp.StepRef, "StepReadExec")
def _step_ref(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.StepRef)
    return step_read(b.step(node.step).reader(), node.alias)


@builds(lp.Filter, "FilterExec")
def _filter(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.Filter)
    return iter(FilterOperator(node, b.build(node.child), b.ctx))


@builds(lp.Project, "ProjectExec")
def _project(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.Project)
    return iter(ProjectOperator(node, b.build(node.child), b.ctx))


@builds(lp.ReferenceJoin, "HashJoinExec")
def _reference_join(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.ReferenceJoin)
    return iter(ReferenceJoinOperator(node, b.build(node.left), b.build(node.right), b.ctx))


@builds(lp.Apply, "ApplyExec")
def _apply(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.Apply)
    return iter(ApplyOperator(node, b.build(node.child), b.ctx))


@builds(lp.MLScore, "MLScoreExec")
def _ml(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.MLScore)
    return iter(MLScoreOperator(node, b.build(node.child), b.ctx, b.dead_letter(node.dead_letter)))


@builds(lp.Union, "UnionExec")
def _union(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.Union)
    first = node.children[0] if node.children else None
    names = None
    if isinstance(first, lp.Project) and not any(n == "*" for n, _ in first.exprs):
        names = [n for n, _ in first.exprs]
    return iter(UnionOperator([b.build(c) for c in node.children], b.ctx, names))


@builds(lp.Retimestamp, "RetimestampExec")
def _retimestamp(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, lp.Retimestamp)
    from asaql.exec.retimestamp import retimestamp

    return retimestamp(node, b.build(node.child), b.ctx)


from asaql.exec import window_aggregate as _window_aggregate  # noqa: E402,F401 - registers its builder


@builds(TemporalJoin, "TemporalJoinExec")
def _temporal_join(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, TemporalJoin)
    from asaql.exec.temporal_join import TemporalJoinOperator

    return iter(TemporalJoinOperator(node, b.build(node.left), b.build(node.right), b.ctx))


@builds(Analytic, "AnalyticExec")
def _analytic(node: lp.PlanNode, b: Builder) -> Iterator[Item]:
    assert isinstance(node, Analytic)
    from asaql.exec.analytic import AnalyticOperator

    return iter(AnalyticOperator(node, b.build(node.child), b.ctx))
