"""Logical plan nodes.

A statement becomes a tree of nodes whose rows are *scoped*: every input, WITH step, APPLY or
ML result contributes one record-valued scope named by its alias, and every row carries its
event time. ``Project`` turns the scopes into the flat columns of a step or an output.

Example (``explain``)::

    Output output_stream
      Project deviceId, score := aml_result.prediction
        MLScore aml_result := aml_enrichment({deviceId: iot.deviceId}) batch=1000
          Filter (iot.temperature > 30)
            Scan iot_data AS iot [deviceId, temperature]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from asaql.errors import Span
from asaql.plan.expr import BoundExpr

__all__ = [
    "Apply",
    "Filter",
    "LogicalPlan",
    "MLScore",
    "Output",
    "Plan",
    "PlanNode",
    "Project",
    "ReferenceJoin",
    "Retimestamp",
    "Scan",
    "StepRef",
    "Union",
    "walk",
]


def _span() -> Span:
    return Span.none()


@dataclass(kw_only=True)
class PlanNode:
    span: Span = field(default_factory=_span, compare=False, repr=False)

    @property
    def inputs(self) -> list[PlanNode]:
        return []

    def describe(self) -> str:
        return type(self).__name__

    def replace_inputs(self, new: list[PlanNode]) -> None:
        if new:
            raise NotImplementedError(type(self).__name__)

    def scopes(self) -> list[str]:
        """Aliases of the record scopes in this node's rows, in resolution order."""
        out: list[str] = []
        for child in self.inputs:
            out.extend(child.scopes())
        return out


@dataclass(kw_only=True)
class Scan(PlanNode):
    """Read a stream or reference input. ``columns`` (set by the optimizer) are the top-level
    fields the query uses; None reads everything."""

    input_name: str
    alias: str
    timestamp_by: BoundExpr | None = None
    timestamp_over: tuple[BoundExpr, ...] = ()
    reference: bool = False
    columns: list[str] | None = None
    schema: tuple[tuple[str, str], ...] | None = None  # CREATE TABLE (name, asa type)
    #: False (set by the optimizer) when nothing in the job observes event time: no TIMESTAMP
    #: BY, window, temporal join, analytic function, UNION or System.Timestamp(). The scan then
    #: need not read the arrival time (EventEnqueuedUtcTime) to stamp events.
    observes_time: bool = True

    def describe(self) -> str:
        kind = "ReferenceScan" if self.reference else "Scan"
        cols = "" if self.columns is None else f" [{', '.join(self.columns)}]"
        ts = f" TIMESTAMP BY {self.timestamp_by}" if self.timestamp_by is not None else ""
        return f"{kind} {self.input_name} AS {self.alias}{cols}{ts}"

    def scopes(self) -> list[str]:
        return [self.alias]


@dataclass(kw_only=True)
class StepRef(PlanNode):
    """Read the rows of a WITH step (computed once however many readers it has)."""

    step: str
    alias: str
    columns: list[str] | None = None

    def describe(self) -> str:
        return f"StepRef {self.step} AS {self.alias}"

    def scopes(self) -> list[str]:
        return [self.alias]


@dataclass(kw_only=True)
class _Unary(PlanNode):
    child: PlanNode

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.child]

    def replace_inputs(self, new: list[PlanNode]) -> None:
        (self.child,) = new


@dataclass(kw_only=True)
class Retimestamp(_Unary):
    """``FROM step TIMESTAMP BY expr``: give a step's rows a new event time."""

    timestamp_by: BoundExpr

    def describe(self) -> str:
        return f"Retimestamp BY {self.timestamp_by}"


@dataclass(kw_only=True)
class Filter(_Unary):
    predicate: BoundExpr

    def describe(self) -> str:
        return f"Filter {self.predicate}"


@dataclass(kw_only=True)
class Project(_Unary):
    """Compute the output columns. ``exprs`` holds (name, expr); a StarExpr expands at run time."""

    exprs: list[tuple[str, BoundExpr]]

    def describe(self) -> str:
        return "Project " + ", ".join(
            str(e) if n == "*" else f"{n} := {e}" for n, e in self.exprs
        )

    def scopes(self) -> list[str]:
        return []


@dataclass(kw_only=True)
class ReferenceJoin(PlanNode):
    """Hash join of a stream with reference data: equality keys plus a residual predicate."""

    left: PlanNode
    right: PlanNode
    kind: str  # inner | left
    left_keys: list[BoundExpr]
    right_keys: list[BoundExpr]
    residual: BoundExpr | None = None

    @property
    def inputs(self) -> list[PlanNode]:
        return [self.left, self.right]

    def replace_inputs(self, new: list[PlanNode]) -> None:
        self.left, self.right = new

    def describe(self) -> str:
        keys = ", ".join(f"{a} = {b}" for a, b in zip(self.left_keys, self.right_keys, strict=True))
        res = f" residual {self.residual}" if self.residual is not None else ""
        return f"ReferenceJoin {self.kind} on {keys or 'TRUE'}{res}"


@dataclass(kw_only=True)
class Apply(_Unary):
    """CROSS/OUTER APPLY of a table function (GetArrayElements, GetRecordProperties)."""

    kind: str  # cross | outer
    function: str
    arg: BoundExpr
    alias: str

    def describe(self) -> str:
        return f"{self.kind.capitalize()}Apply {self.alias} := {self.function}({self.arg})"

    def scopes(self) -> list[str]:
        return self.child.scopes() + [self.alias]


@dataclass(kw_only=True)
class MLScore(_Unary):
    """Call an ML endpoint per event (batched, in parallel, in order); the result becomes the
    scope ``alias``. Both ``udf.name(arg)`` and the seed ``JOIN ... INTO`` form bind here.

    ``on_error``: 'stop' (the job fails) or 'null' (inside TryEvaluate: failed rows get NULL).
    ``dead_letter``: the name of an extra output that receives every event whose scoring
    failed, with the error; failed rows then get NULL and the job goes on (taken from the
    endpoint's ``dead_letter`` option unless given).
    """

    function: str
    arg: BoundExpr
    alias: str
    spec: Any = None  # asaql.ml.endpoint.EndpointSpec (kept opaque here)
    on_error: str = "stop"
    dead_letter: str | None = None

    def __post_init__(self) -> None:
        if self.dead_letter is None:
            self.dead_letter = getattr(self.spec, "dead_letter", None)

    def describe(self) -> str:
        batch = getattr(self.spec, "batch_size", "?")
        inflight = getattr(self.spec, "max_in_flight", "?")
        dead = f" dead_letter={self.dead_letter}" if self.dead_letter else ""
        return (
            f"MLScore {self.alias} := {self.function}({self.arg}) "
            f"batch={batch} in_flight={inflight} on_error={self.on_error}{dead}"
        )

    def scopes(self) -> list[str]:
        return self.child.scopes() + [self.alias]


@dataclass(kw_only=True)
class Union(PlanNode):
    children: list[PlanNode]

    @property
    def inputs(self) -> list[PlanNode]:
        return self.children

    def replace_inputs(self, new: list[PlanNode]) -> None:
        self.children = list(new)

    def scopes(self) -> list[str]:
        return []


@dataclass(kw_only=True)
class Output(_Unary):
    name: str

    def describe(self) -> str:
        return f"Output {self.name}"


@dataclass
class LogicalPlan:
    """A whole script: WITH steps (name -> plan) and outputs, in script order."""

    steps: dict[str, PlanNode] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)

    def explain(self) -> str:
        lines: list[str] = []
        for name, node in self.steps.items():
            lines.append(f"Step {name}")
            lines.extend(_render(node, 1))
        for out in self.outputs:
            lines.extend(_render(out, 0))
        return "\n".join(lines)

    def nodes(self) -> Iterator[PlanNode]:
        for root in [*self.steps.values(), *self.outputs]:
            yield from walk(root)

    def dead_letters(self) -> list[str]:
        """Names of the dead-letter outputs of the plan's ML calls, in plan order."""
        names = (n.dead_letter for n in self.nodes() if isinstance(n, MLScore) and n.dead_letter)
        return list(dict.fromkeys(names))


def walk(node: PlanNode) -> Iterator[PlanNode]:
    """``node`` and every node under it (a step read through a StepRef is not entered)."""
    yield node
    for child in node.inputs:
        yield from walk(child)


def _render(node: PlanNode, depth: int) -> list[str]:
    out = ["  " * depth + node.describe()]
    for child in node.inputs:
        out.extend(_render(child, depth + 1))
    return out


Plan = LogicalPlan
