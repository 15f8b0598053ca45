"""Binding of one SELECT: sources, joins, applies, ML calls, WHERE, GROUP BY, projection."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from asaql.errors import BindError, Diagnostic
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.bind import analytic as analytic_
from asaql.plan.bind import from_, group, temporal
from asaql.plan.bind.expressions import ExprBinder, Scope, conjuncts
from asaql.plan.windowing import WindowAggregate
from asaql.sql import ast

if TYPE_CHECKING:
    from asaql.ml.endpoint import EndpointSpec
    from asaql.plan.bind import ScriptContext

__all__ = ["bind_select"]


class _UdfCalls:
    """Collects ``udf.name(...)`` calls met while binding; each becomes an MLScore node."""

    def __init__(self, ctx: ScriptContext) -> None:
        self.ctx = ctx
        self.pending: list[lp.MLScore] = []
        self._by_key: dict[str, lp.MLScore] = {}

    def __call__(self, node: ast.FunctionCall, binder: ExprBinder) -> bx.BoundExpr:
        spec = self.ctx.catalog.function(node.name)
        if spec is None:
            known = list(self.ctx.catalog.functions)
            from asaql.errors import did_you_mean

            raise BindError(
                f"unknown function udf.{node.name}",
                span=node.span,
                code="unknown_function",
                help=did_you_mean(node.name, known) or "declare it with --function NAME=FILE",
            )
        arg = _udf_argument(node, spec, binder)
        key = f"{node.name.lower()}({arg})"  # every argument is in it: {a: x, b: y}
        score = self._by_key.get(key)
        if score is None:
            self.ctx.ml_counter += 1
            alias = f"__udf{self.ctx.ml_counter}"
            score = lp.MLScore(
                child=lp.Scan(input_name="?", alias="?"),  # placeholder, wired by _place_udfs
                function=node.name,
                arg=arg,
                alias=alias,
                spec=spec,
                span=node.span,
            )
            self._by_key[key] = score
            self.pending.append(score)
        return bx.Col(scope=score.alias, path=(), span=node.span)

    def take(self) -> list[lp.MLScore]:
        taken, self.pending = self.pending, []
        return taken


def _udf_argument(node: ast.FunctionCall, spec: EndpointSpec, binder: ExprBinder) -> bx.BoundExpr:
    """The per-event value that ``udf.name(...)`` sends: its one argument, or, when the binding
    inputs map to several arguments (``mapTo`` 0, 1, ...), a record of them in argument order,
    each field named for the first binding input it feeds (see ``EndpointSpec.argument_names``)::

        udf.score(e.temperature, e.humidity)  ->  {temperature: e.temperature, humidity: e.humidity}

    The codec sends each binding input the field of its ``mapTo``; a Python model gets the records.
    """
    want = spec.argument_count
    if len(node.args) != want:
        raise _arity_error(node, spec, want)
    if want == 1:
        return binder.bind(node.args[0])
    fields = zip(spec.argument_names, node.args, strict=True)
    return bx.MakeRecord(fields=tuple((name, binder.bind(a)) for name, a in fields), span=node.span)


def _arity_error(node: ast.FunctionCall, spec: EndpointSpec, want: int) -> BindError:
    got = len(node.args)
    if want == 1:
        return BindError(
            f"udf.{node.name} takes exactly one argument (a record or an array), got {got}",
            span=node.span,
            code="wrong_arity",
            help=f"pass one record or array, e.g. a WITH step: udf.{node.name}(step)",
        )
    names = ", ".join(spec.argument_names)
    return BindError(
        f"udf.{node.name} takes {want} arguments (its binding inputs map to arguments "
        f"0-{want - 1}), got {got}",
        span=node.span,
        code="wrong_arity",
        help=f"call it as udf.{node.name}({names}), one argument per mapTo",
    )


def bind_select(select: ast.Select, ctx: ScriptContext) -> tuple[lp.PlanNode, list[str] | None]:
    """Bind one SELECT; returns its plan and output column names (None when ``*`` is used)."""
    scope = Scope()
    udfs = _UdfCalls(ctx)
    # analytic functions run first, over each stream input's events (placed once all is bound)
    analytic = analytic_.AnalyticCalls() if analytic_.uses_analytic(select) else None
    binder = ExprBinder(scope, ctx.diagnostics, strict=ctx.strict, udf_hook=udfs, analytic_hook=analytic)
    if select.match_recognize is not None:
        raise BindError("MATCH_RECOGNIZE is not supported yet", span=select.match_recognize.span,
                        code="not_supported")
    node = source = from_.bind_source(select.source, scope, ctx, binder)
    for clause in select.clauses:
        node = from_.bind_clause(clause, node, scope, ctx, binder)
    if select.where is not None:
        _warn_alias_in_where(select, ctx)
        predicate = binder.bind(select.where)
        node = _place_udfs(node, udfs.take())
        node = _filter_before_scoring(lp.Filter(child=node, predicate=predicate, span=select.where.span))
    node, item_binder = group.bind_group(select, node, scope, ctx, binder)
    items = [_item(item, item_binder, i) for i, item in enumerate(select.items)]
    temporal.check_star(select, items, node)
    node = _place_udfs_of(node, udfs.take())
    _set_error_modes(node, [e for _, e in items])
    names = None if any(isinstance(e, bx.StarExpr) for _, e in items) else [n for n, _ in items]
    root: lp.PlanNode = lp.Project(child=node, exprs=items, span=select.span)
    if analytic is not None:
        root = analytic.place(root, source, scope)
    return root, names


def _warn_alias_in_where(select: ast.Select, ctx: ScriptContext) -> None:
    """WHERE runs before SELECT (asa-language.md §2, §15): a SELECT alias named in WHERE is read
    as an input field, usually missing, so NULL. Not an error (events may carry such a field),
    but almost always a mistake, so say it."""
    assert select.where is not None
    # names that are input fields as well: `x AS x`, `CAST(temp AS float) AS temp`
    fields = {ref.parts[-1].lower() for item in select.items for ref in ast_column_refs(item.expr)}
    aliases = {
        item.alias.lower(): item.alias
        for item in select.items
        if item.alias is not None and item.alias.lower() not in fields
    }
    for ref in ast_column_refs(select.where):
        name = ref.parts[0].lower()
        if len(ref.parts) == 1 and name in aliases:
            ctx.diagnostics.append(Diagnostic(
                "warning", "alias_in_where",
                f"'{ref.parts[0]}' is a SELECT alias, but WHERE is evaluated before SELECT: it reads an input "
                "field of that name (NULL when the event has none)",
                ref.span,
                f"repeat the expression of '{aliases[name]}' in WHERE, or compute it in a WITH step",
            ))


def ast_column_refs(node: object) -> list[ast.ColumnRef]:
    """Every column reference in an AST expression (not inside nested queries)."""
    found: list[ast.ColumnRef] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.ColumnRef):
            found.append(current)
        elif isinstance(current, tuple | list):
            stack.extend(current)
        elif dataclasses.is_dataclass(current) and not isinstance(current, type):
            stack.extend(getattr(current, f.name) for f in dataclasses.fields(current) if f.name != "span")
    return found


def _item(item: ast.SelectItem, binder: ExprBinder, position: int) -> tuple[str, bx.BoundExpr]:
    bound = binder.bind(item.expr)
    if isinstance(bound, bx.StarExpr):
        return "*", bound
    return (item.alias or _derived_name(item.expr, position)), bound


def _derived_name(expr: ast.Expr, position: int) -> str:
    if isinstance(expr, ast.ColumnRef):
        return expr.parts[-1]
    if isinstance(expr, ast.FieldAccess):
        return expr.name
    if isinstance(expr, ast.FunctionCall) and expr.namespace is None:
        return expr.name
    return f"Column{position + 1}"


def _filter_before_scoring(node: lp.Filter) -> lp.PlanNode:
    """WHERE conditions that do not read a model's answer run before the model is called
    (ASA's advice for ML functions, made a rule for the seed JOIN form), so an event the
    query filters out is never sent to the endpoint. This is semantics, not optimization:
    the plan is the same with the optimizer off."""
    from asaql.plan.optimizer.push_filters import push_filter

    below: lp.PlanNode | None = node.child
    while below is not None and not isinstance(below, lp.MLScore):
        below = below.inputs[0] if isinstance(below, lp.Filter | lp.Apply) else None
    return push_filter(node) if below is not None else node


def _place_udfs_of(node: lp.PlanNode, scores: list[lp.MLScore]) -> lp.PlanNode:
    """Place the ML calls of the SELECT list and HAVING. In a grouped statement their
    arguments are events' values (``SUM(udf.f(e))``): the calls go below the window
    aggregate, whose rows are groups, not events."""
    agg: lp.PlanNode = node
    while isinstance(agg, lp.Filter):  # HAVING
        agg = agg.child
    if scores and isinstance(agg, WindowAggregate):
        agg.child = _place_udfs(agg.child, scores)
        return node
    return _place_udfs(node, scores)


def _place_udfs(node: lp.PlanNode, scores: list[lp.MLScore]) -> lp.PlanNode:
    for score in scores:
        score.child = node
        node = score
    return node


def _set_error_modes(root: lp.PlanNode, exprs: list[bx.BoundExpr]) -> None:
    """An ML result read inside TryEvaluate lets failed rows become NULL instead of stopping
    the job; reads outside TryEvaluate still stop it (checked per row by the evaluator)."""
    tried: set[str] = set()
    all_exprs = list(exprs) + _plan_exprs(root)
    for e in all_exprs:
        for sub in bx.walk(e):
            if isinstance(sub, bx.TryEval):
                tried.update(c.scope for c in bx.walk(sub.expr) if isinstance(c, bx.Col) and c.scope)
    node: lp.PlanNode | None = root
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, lp.MLScore) and node.alias in tried:
            node.on_error = "null"
        stack.extend(node.inputs)


def _plan_exprs(root: lp.PlanNode) -> list[bx.BoundExpr]:
    out: list[bx.BoundExpr] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, lp.Filter):
            out.append(node.predicate)
        elif isinstance(node, lp.ReferenceJoin) and node.residual is not None:
            out.append(node.residual)
        stack.extend(node.inputs)
    return out


__all__ += ["conjuncts"]
