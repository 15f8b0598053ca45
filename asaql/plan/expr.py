"""Bound expressions: what the binder makes of AST expressions.

Names are resolved to *scopes* (the alias of an input, a WITH step, an APPLY or an ML result)
and functions to registry entries. Types stay dynamic: Stream Analytics types belong to values,
so the evaluator dispatches on the Arrow type of each batch (see :mod:`asaql.types`).

Every node keeps the Span of the query text it came from, so a runtime failure points at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asaql.errors import Span
from asaql.functions.registry import ScalarFunction

__all__ = [
    "BoundExpr",
    "CaseExpr",
    "CastExpr",
    "Col",
    "FieldGet",
    "FuncCall",
    "Lit",
    "MakeRecord",
    "Op",
    "StarExpr",
    "SysTimestamp",
    "TryEval",
    "walk",
]


def _span() -> Span:
    return Span.none()


@dataclass(frozen=True, kw_only=True)
class BoundExpr:
    span: Span = field(default_factory=_span, compare=False, repr=False)

    def children(self) -> tuple[BoundExpr, ...]:
        return ()


@dataclass(frozen=True, kw_only=True)
class Lit(BoundExpr):
    value: Any
    kind: str  # integer | float | string | null | bit

    def __str__(self) -> str:
        if self.kind == "string":
            return "'" + str(self.value).replace("'", "''") + "'"
        return "NULL" if self.value is None else repr(self.value)


@dataclass(frozen=True, kw_only=True)
class Col(BoundExpr):
    """A field path. ``scope`` is the resolved alias, or None to search every scope in order
    (an unqualified name over inputs whose fields are only known at run time)."""

    scope: str | None
    path: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(((self.scope,) if self.scope else ()) + self.path)


@dataclass(frozen=True, kw_only=True)
class StarExpr(BoundExpr):
    """``*`` (scope None: every scope, earlier wins) or ``scope.*`` / ``scope.path.*``."""

    scope: str | None
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ".".join(((self.scope,) if self.scope else ()) + self.path + ("*",))


@dataclass(frozen=True, kw_only=True)
class FieldGet(BoundExpr):
    expr: BoundExpr
    name: str

    def children(self) -> tuple[BoundExpr, ...]:
        return (self.expr,)

    def __str__(self) -> str:
        return f"({self.expr}).{self.name}"


@dataclass(frozen=True, kw_only=True)
class Op(BoundExpr):
    """Operators: arithmetic, comparison, logic, bitwise, LIKE, IN, BETWEEN, IS NULL.

    ``op`` names: add sub mul div mod neg pos eq ne lt le gt ge and or not
    bitand bitor bitxor bitnot like notlike in notin isnull notnull between notbetween.
    """

    op: str
    args: tuple[BoundExpr, ...]

    def children(self) -> tuple[BoundExpr, ...]:
        return self.args

    def __str__(self) -> str:
        return f"{self.op}({', '.join(map(str, self.args))})"


@dataclass(frozen=True, kw_only=True)
class FuncCall(BoundExpr):
    fn: ScalarFunction
    args: tuple[BoundExpr, ...]

    def children(self) -> tuple[BoundExpr, ...]:
        return self.args

    def __str__(self) -> str:
        return f"{self.fn.name}({', '.join(map(str, self.args))})"


@dataclass(frozen=True, kw_only=True)
class CaseExpr(BoundExpr):
    whens: tuple[tuple[BoundExpr, BoundExpr], ...]
    else_: BoundExpr | None

    def children(self) -> tuple[BoundExpr, ...]:
        flat = [e for pair in self.whens for e in pair]
        return tuple(flat) + ((self.else_,) if self.else_ is not None else ())

    def __str__(self) -> str:
        parts = " ".join(f"WHEN {c} THEN {r}" for c, r in self.whens)
        tail = f" ELSE {self.else_}" if self.else_ is not None else ""
        return f"CASE {parts}{tail} END"


@dataclass(frozen=True, kw_only=True)
class CastExpr(BoundExpr):
    expr: BoundExpr
    type_name: str  # canonical ASA name
    try_: bool = False

    def children(self) -> tuple[BoundExpr, ...]:
        return (self.expr,)

    def __str__(self) -> str:
        return f"{'TRY_CAST' if self.try_ else 'CAST'}({self.expr} AS {self.type_name})"


@dataclass(frozen=True, kw_only=True)
class TryEval(BoundExpr):
    """asaql extension ``TryEvaluate(expr)``: NULL for the rows whose evaluation fails."""

    expr: BoundExpr

    def children(self) -> tuple[BoundExpr, ...]:
        return (self.expr,)

    def __str__(self) -> str:
        return f"TryEvaluate({self.expr})"


@dataclass(frozen=True, kw_only=True)
class SysTimestamp(BoundExpr):
    """``System.Timestamp()``: the event time of the row."""

    def __str__(self) -> str:
        return "System.Timestamp()"


@dataclass(frozen=True, kw_only=True)
class MakeRecord(BoundExpr):
    """A record built from named expressions (the payload of an ML call in the seed form)."""

    fields: tuple[tuple[str, BoundExpr], ...]

    def children(self) -> tuple[BoundExpr, ...]:
        return tuple(e for _, e in self.fields)

    def __str__(self) -> str:
        return "{" + ", ".join(f"{n}: {e}" for n, e in self.fields) + "}"


def walk(expr: BoundExpr):  # type: ignore[no-untyped-def]
    """Yield ``expr`` and every sub-expression, depth first."""
    yield expr
    for child in expr.children():
        yield from walk(child)
