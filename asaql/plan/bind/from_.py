"""Binding of FROM, JOIN and APPLY: inputs and steps become scans, joins and applies.

Three JOIN shapes exist:

* reference data on the right: a hash join on the ON equalities (``ReferenceJoin``);
* an ML endpoint on the right, the seed form ``JOIN ml INTO (col type, ...) AS x ON ...`` (an
  asaql extension): the ON equalities say which event field feeds which payload field; it binds
  to ``MLScore``, the same node as ASA's ``udf.name(record)``;
* another stream or step: a temporal join bounded by DATEDIFF (see :mod:`.temporal`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asaql.errors import BindError
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import ExprBinder, Scope, conjuncts
from asaql.sql import ast

if TYPE_CHECKING:
    from asaql.plan.bind import ScriptContext

__all__ = ["bind_clause", "bind_source"]

_TABLE_FUNCTIONS = {
    "getarrayelements": ("GetArrayElements", ["ArrayIndex", "ArrayValue"]),
    "getrecordproperties": ("GetRecordProperties", ["PropertyName", "PropertyValue"]),
}
_PAYLOAD = "__payload"


def bind_source(
    source: ast.Source, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> lp.PlanNode:
    """FROM (or the right side of a JOIN): a WITH step or an input."""
    _check_shards(source)
    alias = source.alias or source.name
    step = ctx.step(source.name)
    if step is not None:
        scope.add(alias, fields=step[1])
        node: lp.PlanNode = lp.StepRef(step=step[0], alias=alias, span=source.span)
        if source.timestamp_by is not None:
            ts = binder.bind(source.timestamp_by.expr)
            node = lp.Retimestamp(child=node, timestamp_by=ts, span=source.timestamp_by.span)
        return node
    info = ctx.catalog.input(source.name)
    if info is None:
        raise ctx.unknown_source(source.name, source.span)
    if info.kind == "ml":
        raise BindError(
            f"'{source.name}' is an ML endpoint; it can only be joined to a stream",
            span=source.span, code="ml_input_misplaced",
        )
    if info.kind == "reference" and source.timestamp_by is not None:
        raise BindError(
            f"'{source.name}' is reference data: it has no event time, so it takes no TIMESTAMP BY",
            span=source.timestamp_by.span, code="timestamp_by_reference",
            help=f"remove TIMESTAMP BY after {source.alias or source.name}; a reference JOIN matches on "
                 "keys only",
        )
    schema = ctx.schemas.get(source.name.lower())
    fields = [c for c, _ in schema] if schema else info.fields
    scope.add(alias, fields=fields)
    ts = binder.bind(source.timestamp_by.expr) if source.timestamp_by is not None else None
    if ts is not None and any(isinstance(sub, bx.SysTimestamp) for sub in bx.walk(ts)):
        raise BindError("TIMESTAMP BY cannot use System.Timestamp(): it defines the event time",
                        span=source.timestamp_by.span, code="timestamp_by_system_timestamp",
                        help="use a field of the event, e.g. TIMESTAMP BY eventTime")
    over = tuple(binder.bind(e) for e in source.timestamp_by.over) if source.timestamp_by else ()
    return lp.Scan(
        input_name=info.name,
        alias=alias,
        timestamp_by=ts,
        timestamp_over=over,
        reference=info.kind == "reference",
        schema=schema,
        span=source.span,
    )


def _check_shards(source: ast.Source) -> None:
    """``PARTITION BY k INTO n`` hints n shards; ASA requires n > 1 (asa-language.md §2, §13)."""
    if source.partition_into is not None and source.partition_into <= 1:
        raise BindError(
            f"PARTITION BY ... INTO {source.partition_into}: the shard count must be greater than 1",
            span=source.span, code="bad_shard_count",
        )


def bind_clause(
    clause: ast.Join | ast.Apply, node: lp.PlanNode, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> lp.PlanNode:
    if isinstance(clause, ast.Apply):
        return _apply(clause, node, scope, binder)
    step = ctx.step(clause.source.name)
    right = ctx.catalog.input(clause.source.name) if step is None else None
    if step is None and right is None and not ctx.catalog.open:  # before any check of the ON
        raise ctx.unknown_source(clause.source.name, clause.source.span)
    if clause.source.into_schema is not None or (right is not None and right.kind == "ml"):
        return _ml_join(clause, node, scope, ctx, binder)
    if right is not None and right.kind == "reference":
        return _reference_join(clause, node, scope, ctx, binder)
    from asaql.plan.bind import temporal

    return temporal.bind_temporal_join(clause, node, scope, ctx, binder)


def _apply(clause: ast.Apply, node: lp.PlanNode, scope: Scope, binder: ExprBinder) -> lp.PlanNode:
    name = clause.call.name.lower()
    if clause.after_where:
        binder.extension("APPLY written after WHERE", clause.span,
                         "Azure Stream Analytics expects APPLY right after FROM/JOIN, before WHERE",
                         severity="warning")
    if name not in _TABLE_FUNCTIONS or clause.call.namespace:
        raise BindError(
            f"'{clause.call.name}' cannot be used with APPLY",
            span=clause.call.span, code="not_a_table_function",
            help="APPLY takes GetArrayElements(array) or GetRecordProperties(record)",
        )
    if len(clause.call.args) != 1:
        raise BindError(f"{clause.call.name} takes 1 argument", span=clause.call.span, code="wrong_arity")
    arg = binder.bind(clause.call.args[0])
    if name == "getrecordproperties" and _is_ml_scope(arg, node):
        # Seed form: GetRecordProperties(<ml input>) AS r names the model's response record.
        binder.extension("GetRecordProperties(<ML input>) naming the response record", clause.span,
                         "in ASA read the fields of udf.name(...)'s result: result.field")
        scope.add(clause.alias, column=arg.scope)  # type: ignore[union-attr]
        return node
    canonical, fields = _TABLE_FUNCTIONS[name]
    scope.add(clause.alias, fields=fields)
    return lp.Apply(child=node, kind=clause.kind, function=canonical, arg=arg, alias=clause.alias,
                    span=clause.span)


def _is_ml_scope(arg: bx.BoundExpr, node: lp.PlanNode) -> bool:
    if not isinstance(arg, bx.Col) or arg.path or arg.scope is None:
        return False
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, lp.MLScore) and current.alias == arg.scope:
            return True
        stack.extend(current.inputs)
    return False


def _reference_join(
    clause: ast.Join, node: lp.PlanNode, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> lp.PlanNode:
    right = bind_source(clause.source, scope, ctx, binder)
    right_scope = scope.resolve(clause.source.alias or clause.source.name)
    on = binder.bind(clause.on)
    _check_no_time_bound(on, right_scope, clause)
    left_keys: list[bx.BoundExpr] = []
    right_keys: list[bx.BoundExpr] = []
    residual: list[bx.BoundExpr] = []
    for part in conjuncts(on):
        pair = _key_pair(part, right_scope)
        if pair is None:
            residual.append(part)
        else:
            left_keys.append(pair[0])
            right_keys.append(pair[1])
    return lp.ReferenceJoin(
        left=node, right=right, kind=clause.kind, left_keys=left_keys, right_keys=right_keys,
        residual=_and_all(residual), span=clause.span,
    )


def _check_no_time_bound(on: bx.BoundExpr, right: str | None, clause: ast.Join) -> None:
    """A DATEDIFF over the reference alias itself (the time bound of a stream JOIN) would read
    the reference row's event time, which reference data does not have: ASA's reference JOIN
    takes no time bound (asa-language.md §3)."""
    for sub in bx.walk(on):
        if not (isinstance(sub, bx.FuncCall) and sub.fn.name.upper() == "DATEDIFF"):
            continue
        if any(isinstance(a, bx.Col) and a.scope == right and not a.path for a in sub.args[1:]):
            alias = clause.source.alias or clause.source.name
            raise BindError(
                f"'{alias}' is reference data: a JOIN with reference data takes no DATEDIFF time "
                "bound, since reference data has no event time",
                span=sub.span, code="reference_join_time_bound",
                help="remove the DATEDIFF condition; a reference JOIN matches every event on its keys",
            )


def _key_pair(part: bx.BoundExpr, right: str | None) -> tuple[bx.BoundExpr, bx.BoundExpr] | None:
    if not (isinstance(part, bx.Op) and part.op == "eq"):
        return None
    a, b = part.args
    sa, sb = _sides(a, right), _sides(b, right)
    if sa == "left" and sb == "right":
        return a, b
    if sa == "right" and sb == "left":
        return b, a
    return None


def _sides(e: bx.BoundExpr, right: str | None) -> str:
    scopes = {c.scope for c in bx.walk(e) if isinstance(c, bx.Col)}
    if any(isinstance(c, bx.SysTimestamp) for c in bx.walk(e)):
        scopes.add("__ts")
    if not scopes:
        return "const"
    if scopes == {right}:
        return "right"
    return "left" if right not in scopes else "mixed"


def _and_all(parts: list[bx.BoundExpr]) -> bx.BoundExpr | None:
    out: bx.BoundExpr | None = None
    for p in parts:
        out = p if out is None else bx.Op(op="and", args=(out, p), span=out.span.merge(p.span))
    return out


def _ml_join(
    clause: ast.Join, node: lp.PlanNode, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> lp.PlanNode:
    """The seed form: ``JOIN ml INTO (col type, ...) AS x ON stream.a = x.a AND ...``."""
    source = clause.source
    info = ctx.catalog.input(source.name)
    if info is None:
        raise ctx.unknown_source(source.name, source.span)
    if info.kind != "ml" and not ctx.catalog.open:
        raise BindError(
            f"JOIN {source.name} INTO (...) needs '{source.name}' to be an ML endpoint input",
            span=source.span, code="not_an_ml_input",
            help="declare it with --ml NAME=endpoint.json (or [inputs.NAME] kind = \"ml\" in a job file)",
        )
    binder.extension("JOIN <ML input> INTO (schema)", clause.span,
                     "in ASA declare an Azure ML function and call udf.name(record) in SELECT")
    schema = source.into_schema or ()
    typed = {c.name.lower(): (c.name, binder.type_name(c.type_name, c.span)) for c in schema}
    payload_alias = source.alias or source.name
    scope.add(payload_alias, column=_PAYLOAD)
    try:
        on = binder.bind(clause.on)
    finally:
        scope.aliases.pop(payload_alias.lower(), None)
        scope.order.remove(_PAYLOAD)
        scope.fields.pop(_PAYLOAD, None)
    fed: dict[str, bx.BoundExpr] = {}
    residual: list[bx.BoundExpr] = []
    for part in conjuncts(on):
        fed_pair = _payload_pair(part)
        if fed_pair is None:
            residual.append(part)
        else:
            fed[fed_pair[0].lower()] = fed_pair[1]
    fields: list[tuple[str, bx.BoundExpr]] = []
    names = [c.name for c in schema] or [k for k in fed]
    for name in names:
        value = fed.get(name.lower(), bx.Col(scope=None, path=(name,), span=clause.span))
        type_name = typed.get(name.lower(), (name, None))[1]
        if type_name is not None:
            value = bx.CastExpr(expr=value, type_name=type_name, try_=False, span=value.span)
        fields.append((typed.get(name.lower(), (name, None))[0], value))
    scope.add(source.name)
    out: lp.PlanNode = lp.MLScore(
        child=node, function=source.name, arg=bx.MakeRecord(fields=tuple(fields), span=clause.span),
        alias=source.name, spec=info.spec, span=clause.span,
    )
    leftover = _and_all(residual)
    if leftover is not None:
        out = lp.Filter(child=out, predicate=leftover, span=clause.on.span)
    return out


def _payload_pair(part: bx.BoundExpr) -> tuple[str, bx.BoundExpr] | None:
    if not (isinstance(part, bx.Op) and part.op == "eq"):
        return None
    a, b = part.args
    for mine, other in ((a, b), (b, a)):
        if isinstance(mine, bx.Col) and mine.scope == _PAYLOAD and len(mine.path) == 1:
            if not any(isinstance(c, bx.Col) and c.scope == _PAYLOAD for c in bx.walk(other)):
                return mine.path[0], other
    return None
