"""The SAQL abstract syntax tree: frozen dataclasses, each with the Span of its source text.

Names are kept as written (case preserved, brackets removed); the binder resolves them
case-insensitively. ``span`` is excluded from equality so that parse -> print -> parse gives
an equal tree.

Shape of a script::

    Script(statements=[CreateTable | WithBlock | SelectQuery, ...])
    SelectQuery = Select | Union(queries=[Select, ...])
    Select(items, into, source, clauses=[Join | Apply ...], where, group_by, having)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union as _U

from asaql.errors import Span

__all__ = [
    "Apply",
    "Between",
    "Binary",
    "Case",
    "Cast",
    "ColumnDef",
    "ColumnRef",
    "CreateTable",
    "Expr",
    "FieldAccess",
    "FunctionCall",
    "InList",
    "IsNull",
    "Join",
    "Like",
    "Literal",
    "MatchRecognize",
    "Node",
    "OrderItem",
    "Over",
    "Query",
    "Script",
    "Select",
    "SelectItem",
    "Source",
    "Star",
    "Statement",
    "TimestampBy",
    "Unary",
    "Union",
    "WithBlock",
    "WithStep",
]


def _span() -> Span:
    return Span.none()


@dataclass(frozen=True, kw_only=True)
class Node:
    span: Span = field(default_factory=_span, compare=False, repr=False)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, kw_only=True)
class Literal(Node):
    """A constant. ``kind`` is 'integer' (int), 'float' (float), 'string' (str) or 'null'."""

    value: object
    kind: str


@dataclass(frozen=True, kw_only=True)
class ColumnRef(Node):
    """A dotted name: ``deviceId``, ``t.deviceId``, ``a.b.[c d]`` -> parts ('a', 'b', 'c d')."""

    parts: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Star(Node):
    """``*`` or ``qualifier.*`` (an input alias or a record path)."""

    qualifier: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Unary(Node):
    """``op`` is '-', '+', '~' or 'NOT'."""

    op: str
    operand: Expr


@dataclass(frozen=True, kw_only=True)
class Binary(Node):
    """``op``: + - * / % = <> != < <= > >= !< !> AND OR & | ^ (as written; '!=' kept)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, kw_only=True)
class Like(Node):
    expr: Expr
    pattern: Expr
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class Between(Node):
    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class InList(Node):
    expr: Expr
    items: tuple[Expr, ...]
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class IsNull(Node):
    expr: Expr
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class Case(Node):
    """Simple form when ``operand`` is set (CASE x WHEN v THEN r ...), else searched form."""

    operand: Expr | None
    whens: tuple[tuple[Expr, Expr], ...]
    else_: Expr | None = None


@dataclass(frozen=True, kw_only=True)
class Cast(Node):
    """CAST / TRY_CAST. ``type_name`` as written (``nvarchar(max)``, ``STRING``...)."""

    expr: Expr
    type_name: str
    try_: bool = False


@dataclass(frozen=True, kw_only=True)
class OrderItem(Node):
    expr: Expr
    descending: bool = False


@dataclass(frozen=True, kw_only=True)
class Over(Node):
    """``OVER (PARTITION BY ... LIMIT DURATION(unit, n) WHEN cond ORDER BY ...)``.

    ``limit_duration`` is (unit, n) with the unit as written.
    """

    partition_by: tuple[Expr, ...] = ()
    limit_duration: tuple[str, int] | None = None
    when: Expr | None = None
    order_by: tuple[OrderItem, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FunctionCall(Node):
    """Any call: built-ins, aggregates, windows, ``udf.x(...)``, ``System.Timestamp()``.

    ``namespace`` is the prefix as written ('udf', 'uda', 'System') or None. Bare datepart
    words used as arguments (``DATEADD(minute, ...)``) arrive as ``ColumnRef`` of one part;
    the binder decides what they are. ``star`` marks ``COUNT(*)``; ``distinct`` marks
    ``COUNT(DISTINCT x)``.
    """

    name: str
    args: tuple[Expr, ...] = ()
    namespace: str | None = None
    distinct: bool = False
    star: bool = False
    over: Over | None = None


@dataclass(frozen=True, kw_only=True)
class FieldAccess(Node):
    """``expr.field`` where ``expr`` is not a plain name (``System.Window().Id``, ``f(x).a``)."""

    expr: Expr
    name: str


Expr = _U[
    Literal,
    ColumnRef,
    Star,
    Unary,
    Binary,
    Like,
    Between,
    InList,
    IsNull,
    Case,
    Cast,
    FunctionCall,
    FieldAccess,
]


# ---------------------------------------------------------------- clauses


@dataclass(frozen=True, kw_only=True)
class SelectItem(Node):
    """``expr [AS] alias``, ``alias = expr``, ``*``, ``t.*``. Alias as written, or None."""

    expr: Expr
    alias: str | None = None


@dataclass(frozen=True, kw_only=True)
class TimestampBy(Node):
    expr: Expr
    over: tuple[Expr, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ColumnDef(Node):
    name: str
    type_name: str


@dataclass(frozen=True, kw_only=True)
class Source(Node):
    """An input or WITH step in FROM / JOIN: ``name [AS alias] [TIMESTAMP BY ...] [PARTITION BY ...]``.

    ``into_schema`` is the asaql seed extension ``JOIN name INTO (col type, ...) AS alias``.
    """

    name: str
    alias: str | None = None
    timestamp_by: TimestampBy | None = None
    partition_by: tuple[Expr, ...] = ()
    partition_into: int | None = None
    into_schema: tuple[ColumnDef, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class Join(Node):
    """``[INNER | LEFT [OUTER]] JOIN source ON condition``. ``kind`` is 'inner' or 'left'."""

    kind: str
    source: Source
    on: Expr


@dataclass(frozen=True, kw_only=True)
class Apply(Node):
    """``CROSS | OUTER APPLY fn(args) AS alias``; ``kind`` is 'cross' or 'outer'.

    ``after_where`` records the seed clause order (APPLY written after WHERE), an extension.
    """

    kind: str
    call: FunctionCall
    alias: str
    after_where: bool = False


@dataclass(frozen=True, kw_only=True)
class MatchRecognize(Node):
    """``MATCH_RECOGNIZE (...) AS alias`` after FROM; parsed, executed in a later release."""

    limit_duration: tuple[str, int]
    partition_by: tuple[Expr, ...]
    measures: tuple[SelectItem, ...]
    pattern: str
    define: tuple[tuple[str, Expr], ...]
    alias: str


@dataclass(frozen=True, kw_only=True)
class Select(Node):
    items: tuple[SelectItem, ...]
    source: Source
    into: str | None = None
    into_span: Span | None = field(default=None, compare=False, repr=False)
    clauses: tuple[Join | Apply, ...] = ()
    match_recognize: MatchRecognize | None = None
    where: Expr | None = None
    group_by: tuple[Expr, ...] = ()
    having: Expr | None = None


@dataclass(frozen=True, kw_only=True)
class Union(Node):
    """``q1 UNION q2 UNION ...`` (ASA keeps duplicates, like UNION ALL). ``all_`` as written."""

    queries: tuple[Select, ...]
    all_: tuple[bool, ...] = ()


Query = _U[Select, Union]


@dataclass(frozen=True, kw_only=True)
class WithStep(Node):
    name: str
    query: Query


@dataclass(frozen=True, kw_only=True)
class WithBlock(Node):
    steps: tuple[WithStep, ...]


@dataclass(frozen=True, kw_only=True)
class CreateTable(Node):
    name: str
    columns: tuple[ColumnDef, ...]


Statement = _U[CreateTable, WithBlock, Select, Union]


@dataclass(frozen=True, kw_only=True)
class Script(Node):
    statements: tuple[Statement, ...]
