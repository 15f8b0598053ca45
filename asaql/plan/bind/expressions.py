"""Binding of expressions: names to scopes, calls to functions, types to canonical names.

Field names of stream inputs are only known at run time (JSON events differ from each other),
so an unqualified name binds to ``Col(scope=None, ...)`` and is looked up in each scope of the
row at run time; a missing field reads as NULL, as in ASA. Where the fields of a scope *are*
known (reference data, CREATE TABLE, WITH steps), unknown names get a "did you mean" warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asaql.errors import BindError, Diagnostic, Span, did_you_mean
from asaql.functions.datetime import DATEPARTS
from asaql.functions.registry import REGISTRY, ScalarFunction
from asaql.plan import expr as bx
from asaql.sql import ast
from asaql.types import normalize_type_name

__all__ = ["ExprBinder", "Scope", "conjuncts"]

_BINARY = {
    "+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod",
    "=": "eq", "<>": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge",
    "!<": "ge", "!>": "le", "AND": "and", "OR": "or", "&": "bitand", "|": "bitor", "^": "bitxor",
}  # fmt: skip
_UNARY = {"-": "neg", "+": "pos", "~": "bitnot", "NOT": "not"}

AGGREGATES = frozenset(
    """count sum avg min max stdev stdevp var varp percentile_cont percentile_disc
    topone collecttop collect""".split()
)
ANALYTIC = frozenset(
    "lag last isfirst anomalydetection_spikeanddip anomalydetection_changepoint".split()
)
# The type names of the reference (asa-language.md §9.5); other spellings are asaql extensions.
_ASA_TYPES = frozenset({"bigint", "float", "nvarchar(max)", "datetime", "bit", "record", "array"})
TABLE_FUNCTIONS = frozenset({"getarrayelements", "getrecordproperties"})
# T-SQL current-time functions: none exists in ASA (asa-language.md §0).
_NO_CURRENT_TIME = frozenset(
    "getdate getutcdate sysdatetime sysutcdatetime current_timestamp sysdatetimeoffset".split()
)


def _datepart_names() -> str:
    """``year (yy, yyyy), quarter (qq, q), ...``: the dateparts with their abbreviations."""
    names: dict[str, list[str]] = {}
    for name, canon in DATEPARTS.items():
        names.setdefault(canon, [])
        if name != canon:
            names[canon].append(name)
    return ", ".join(f"{c} ({', '.join(a)})" if a else c for c, a in names.items())


_DATEPART_NAMES = _datepart_names()
WINDOWS = frozenset(
    """tumblingwindow tumbling hoppingwindow hopping slidingwindow sliding sessionwindow
    session windows snapshotwindow""".split()
)


@dataclass
class Scope:
    """The names visible in one statement: alias -> scope column, with known fields if any."""

    aliases: dict[str, str] = field(default_factory=dict)  # lower alias -> scope column name
    fields: dict[str, list[str] | None] = field(default_factory=dict)  # scope -> known fields
    order: list[str] = field(default_factory=list)  # scope columns in resolution order

    def add(self, alias: str, column: str | None = None, fields: list[str] | None = None) -> None:
        column = column or alias
        self.aliases[alias.lower()] = column
        if column not in self.fields:
            self.order.append(column)
        self.fields[column] = fields

    def resolve(self, name: str) -> str | None:
        return self.aliases.get(name.lower())


def conjuncts(e: bx.BoundExpr) -> list[bx.BoundExpr]:
    """Split ``a AND b AND c`` into its parts."""
    if isinstance(e, bx.Op) and e.op == "and":
        return conjuncts(e.args[0]) + conjuncts(e.args[1])
    return [e]


@dataclass
class ExprBinder:
    """Turns AST expressions into bound expressions for one statement."""

    scope: Scope
    diagnostics: list[Diagnostic]
    strict: bool = False
    udf_hook: Callable[[ast.FunctionCall, ExprBinder], bx.BoundExpr] | None = None
    allow_aggregates: bool = False
    aggregate_hook: Callable[[ast.FunctionCall, ExprBinder], bx.BoundExpr] | None = None
    analytic_hook: Callable[[ast.FunctionCall, ExprBinder], bx.BoundExpr] | None = None
    in_try: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    # -------------------------------------------------------------- entry

    def bind(self, node: ast.Expr) -> bx.BoundExpr:
        method = getattr(self, "_" + type(node).__name__.lower(), None)
        if method is None:
            raise BindError(f"unsupported expression {type(node).__name__}", span=node.span)
        return method(node)  # type: ignore[no-any-return]

    def extension(self, what: str, span: Span, asa_way: str, *, severity: str = "note") -> None:
        """Record the use of an asaql extension (``check --strict`` lists them all)."""
        self.diagnostics.append(
            Diagnostic(severity, "extension", f"{what} is an asaql extension", span, asa_way)
        )

    # -------------------------------------------------------------- leaves

    def _literal(self, node: ast.Literal) -> bx.BoundExpr:
        return bx.Lit(value=node.value, kind=node.kind, span=node.span)

    def _columnref(self, node: ast.ColumnRef) -> bx.BoundExpr:
        head, rest = node.parts[0], node.parts[1:]
        scope_col = self.scope.resolve(head)
        if scope_col is not None:
            if rest:
                self._check_field(scope_col, rest[0], node.span)
            return bx.Col(scope=scope_col, path=tuple(rest), span=node.span)
        self._check_unqualified(head, node.span)
        return bx.Col(scope=None, path=tuple(node.parts), span=node.span)

    def _check_field(self, scope_col: str, name: str, span: Span) -> None:
        known = self.scope.fields.get(scope_col)
        if known is None or any(k.lower() == name.lower() for k in known):
            return
        hint = did_you_mean(name, known)
        self.diagnostics.append(
            Diagnostic("warning", "unknown_column", f"'{scope_col}' has no field '{name}'", span, hint)
        )

    def _check_unqualified(self, name: str, span: Span) -> None:
        scopes = [self.scope.fields.get(s) for s in self.scope.order]
        if not scopes or any(f is None for f in scopes):
            return
        known = [f for fields in scopes if fields for f in fields]
        if any(k.lower() == name.lower() for k in known):
            return
        hint = did_you_mean(name, known)
        self.diagnostics.append(
            Diagnostic("warning", "unknown_column", f"no input has a field '{name}'", span, hint)
        )

    def _star(self, node: ast.Star) -> bx.BoundExpr:
        if not node.qualifier:
            return bx.StarExpr(scope=None, span=node.span)
        scope_col = self.scope.resolve(node.qualifier[0])
        if scope_col is not None:
            return bx.StarExpr(scope=scope_col, path=tuple(node.qualifier[1:]), span=node.span)
        return bx.StarExpr(scope=None, path=tuple(node.qualifier), span=node.span)

    def _fieldaccess(self, node: ast.FieldAccess) -> bx.BoundExpr:
        return bx.FieldGet(expr=self.bind(node.expr), name=node.name, span=node.span)

    # -------------------------------------------------------------- operators

    def _unary(self, node: ast.Unary) -> bx.BoundExpr:
        operand = self.bind(node.operand)
        if node.op == "-" and isinstance(operand, bx.Lit) and operand.kind in ("integer", "float"):
            return bx.Lit(value=-operand.value, kind=operand.kind, span=node.span)  # type: ignore[operator]
        return bx.Op(op=_UNARY[node.op.upper()], args=(operand,), span=node.span)

    def _binary(self, node: ast.Binary) -> bx.BoundExpr:
        op = _BINARY.get(node.op.upper())
        if op is None:
            raise BindError(f"unknown operator {node.op}", span=node.span)
        return bx.Op(op=op, args=(self.bind(node.left), self.bind(node.right)), span=node.span)

    def _like(self, node: ast.Like) -> bx.BoundExpr:
        op = "notlike" if node.negated else "like"
        return bx.Op(op=op, args=(self.bind(node.expr), self.bind(node.pattern)), span=node.span)

    def _between(self, node: ast.Between) -> bx.BoundExpr:
        op = "notbetween" if node.negated else "between"
        args = (self.bind(node.expr), self.bind(node.low), self.bind(node.high))
        return bx.Op(op=op, args=args, span=node.span)

    def _inlist(self, node: ast.InList) -> bx.BoundExpr:
        op = "notin" if node.negated else "in"
        args = (self.bind(node.expr), *(self.bind(i) for i in node.items))
        return bx.Op(op=op, args=args, span=node.span)

    def _isnull(self, node: ast.IsNull) -> bx.BoundExpr:
        op = "notnull" if node.negated else "isnull"
        return bx.Op(op=op, args=(self.bind(node.expr),), span=node.span)

    def _case(self, node: ast.Case) -> bx.BoundExpr:
        whens: list[tuple[bx.BoundExpr, bx.BoundExpr]] = []
        operand = self.bind(node.operand) if node.operand is not None else None
        for cond, result in node.whens:
            bound_cond = self.bind(cond)
            if operand is not None:
                bound_cond = bx.Op(op="eq", args=(operand, bound_cond), span=cond.span)
            whens.append((bound_cond, self.bind(result)))
        else_ = self.bind(node.else_) if node.else_ is not None else None
        if any(_is_float(r) for r in [r for _, r in whens] + [else_]):
            whens = [(cond, _as_float(result)) for cond, result in whens]
            else_ = _as_float(else_) if else_ is not None else None
        return bx.CaseExpr(whens=tuple(whens), else_=else_, span=node.span)

    def _cast(self, node: ast.Cast) -> bx.BoundExpr:
        return bx.CastExpr(
            expr=self.bind(node.expr),
            type_name=self.type_name(node.type_name, node.span),
            try_=node.try_,
            span=node.span,
        )

    def type_name(self, written: str, span: Span) -> str:
        canonical = normalize_type_name(written)
        key = "".join(written.lower().split())
        if canonical is None:
            sized = key.startswith(("nvarchar(", "varchar("))
            raise BindError(
                f"unknown type '{written}'" + (": only nvarchar(max) is allowed" if sized else ""),
                span=span,
                code="unknown_type",
                help="types are bigint, float, nvarchar(max), datetime, bit, record, array",
            )
        if key not in _ASA_TYPES:
            if self.strict:
                raise BindError(f"type {written.upper()} is not an ASA type", span=span,
                                code="unknown_type", help=f"write {canonical}")
            self.extension(f"type {written.upper()}", span, f"Azure Stream Analytics writes {canonical}",
                           severity="warning")
        return canonical

    # -------------------------------------------------------------- calls

    def _functioncall(self, node: ast.FunctionCall) -> bx.BoundExpr:
        ns = (node.namespace or "").lower()
        name = node.name.lower()
        if ns == "system":
            return self._system_call(node)
        if ns in ("udf", "uda"):
            if self.udf_hook is None:
                raise BindError(f"user-defined function {node.namespace}.{node.name} is not available here",
                                span=node.span, code="unknown_function")
            return self.udf_hook(node, self)
        if ns:
            raise BindError(f"unknown function prefix '{node.namespace}'", span=node.span,
                            code="unknown_function", help="built-in functions take no prefix; user functions use udf.")
        if node.over is not None or name in ANALYTIC:
            return self._analytic(node)
        if name in AGGREGATES:
            return self._aggregate(node)
        if name in WINDOWS:
            raise BindError(f"{node.name} can only be used in GROUP BY", span=node.span, code="window_misplaced")
        special = _SPECIAL.get(name)
        if special is not None:
            return special(self, node)
        return self._scalar(node)

    def _system_call(self, node: ast.FunctionCall) -> bx.BoundExpr:
        if node.name.lower() == "timestamp":
            return bx.SysTimestamp(span=node.span)
        if node.name.lower() == "window" and "window_id" in self.extra:
            return self.extra["window_id"](node)  # type: ignore[no-any-return]
        raise BindError(f"unknown function System.{node.name}", span=node.span, code="unknown_function")

    def _aggregate(self, node: ast.FunctionCall) -> bx.BoundExpr:
        if self.aggregate_hook is None or not self.allow_aggregates:
            raise BindError(
                f"aggregate {node.name.upper()} needs a window: a window must be specified in GROUP BY",
                span=node.span,
                code="window_required",
            )
        return self.aggregate_hook(node, self)

    def _analytic(self, node: ast.FunctionCall) -> bx.BoundExpr:
        if self.analytic_hook is None:
            raise BindError(f"analytic function {node.name} is not supported yet", span=node.span,
                            code="not_supported")
        return self.analytic_hook(node, self)

    def _scalar(self, node: ast.FunctionCall) -> bx.BoundExpr:
        fn = REGISTRY.get(node.name)
        if fn is None or (fn.extension and self.strict):
            raise self._unknown_function(node)
        self._check_arity(fn, node)
        if fn.extension:
            self.extension(f"{fn.name}()", node.span, "Azure Stream Analytics has no such function")
        args = tuple(
            self._datepart(a) if i in fn.datepart_args else self.bind(a) for i, a in enumerate(node.args)
        )
        return bx.FuncCall(fn=fn, args=args, span=node.span)

    def _unknown_function(self, node: ast.FunctionCall) -> BindError:
        name = node.name.lower()
        if name in TABLE_FUNCTIONS:
            return BindError(
                f"{node.name} is a table-valued function: it can only be used with CROSS APPLY "
                "or OUTER APPLY",
                span=node.span,
                code="table_function_misplaced",
                help=f"write FROM input CROSS APPLY {node.name}(...) AS e, then select e's fields",
            )
        names = [f.name for f in REGISTRY if not (f.extension and self.strict)]
        hint = did_you_mean(node.name, names + [n.upper() for n in AGGREGATES])
        if name in _NO_CURRENT_TIME:
            hint = ("Azure Stream Analytics has no current-time function; use System.Timestamp() "
                    "or the EventProcessedUtcTime / EventEnqueuedUtcTime columns")
        return BindError(f"unknown function '{node.name}'", span=node.span, code="unknown_function",
                         help=hint)

    def _check_arity(self, fn: ScalarFunction, node: ast.FunctionCall) -> None:
        n = len(node.args)
        if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
            raise BindError(
                f"{fn.name} takes {fn.arity_text()} argument(s), got {n}",
                span=node.span,
                code="wrong_arity",
            )

    def _datepart(self, node: ast.Expr) -> bx.BoundExpr:
        """A datepart argument: a bare word (or string) that must name a datepart, checked
        here so that a misspelling fails before any event is read."""
        if isinstance(node, ast.ColumnRef) and len(node.parts) == 1:
            word = node.parts[0]
        elif isinstance(node, ast.Literal) and node.kind == "string":
            word = str(node.value)
        else:
            raise BindError("expected a datepart such as minute, hour or day", span=node.span,
                            code="bad_datepart")
        if word.strip().lower() not in DATEPARTS:
            raise BindError(
                f"'{word}' is not a datepart",
                span=node.span,
                code="bad_datepart",
                help=did_you_mean(word.strip(), DATEPARTS) or f"dateparts are {_DATEPART_NAMES}",
            )
        return bx.Lit(value=word.strip().lower(), kind="string", span=node.span)

    def _try_evaluate(self, node: ast.FunctionCall) -> bx.BoundExpr:
        if self.strict:
            raise BindError("unknown function 'TryEvaluate'", span=node.span, code="unknown_function",
                            help="TryEvaluate is an asaql extension; use TRY_CAST in ASA")
        if len(node.args) != 1:
            raise BindError("TryEvaluate takes 1 argument", span=node.span, code="wrong_arity")
        self.extension("TryEvaluate()", node.span, "in ASA use TRY_CAST or guard with CASE")
        outer, self.in_try = self.in_try, True
        try:
            inner = self.bind(node.args[0])
        finally:
            self.in_try = outer
        return bx.TryEval(expr=inner, span=node.span)

    def _coalesce(self, node: ast.FunctionCall) -> bx.BoundExpr:
        if not node.args:
            raise BindError("COALESCE needs at least one argument", span=node.span, code="wrong_arity")
        args = [self.bind(a) for a in node.args]
        whens = tuple((bx.Op(op="notnull", args=(a,), span=a.span), a) for a in args[:-1])
        return bx.CaseExpr(whens=whens, else_=args[-1], span=node.span)

    def _nullif(self, node: ast.FunctionCall) -> bx.BoundExpr:
        if len(node.args) != 2:
            raise BindError("NULLIF takes 2 arguments", span=node.span, code="wrong_arity")
        a, b = (self.bind(x) for x in node.args)
        null = bx.Lit(value=None, kind="null", span=node.span)
        return bx.CaseExpr(whens=((bx.Op(op="eq", args=(a, b)), null),), else_=a, span=node.span)


def _is_float(e: bx.BoundExpr | None) -> bool:
    return (isinstance(e, bx.Lit) and e.kind == "float") or (
        isinstance(e, bx.CastExpr) and e.type_name == "float"
    )


def _as_float(e: bx.BoundExpr) -> bx.BoundExpr:
    """The result type of CASE is the highest-precedence type of its branches (asa-language.md
    §2): next to a float branch, a bigint literal branch yields a float for every row."""
    if isinstance(e, bx.Lit) and e.kind == "integer":
        return bx.Lit(value=float(e.value), kind="float", span=e.span)  # type: ignore[arg-type]
    return e


_SPECIAL: dict[str, Callable[[ExprBinder, ast.FunctionCall], bx.BoundExpr]] = {
    "tryevaluate": ExprBinder._try_evaluate,
    "coalesce": ExprBinder._coalesce,
    "nullif": ExprBinder._nullif,
}
