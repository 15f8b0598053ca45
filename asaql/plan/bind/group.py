"""Binding of GROUP BY, windows, aggregates and HAVING.

``GROUP BY k1, k2, <window>`` becomes a :class:`~asaql.plan.windowing.WindowAggregate`; HAVING a
``Filter`` over its rows. SELECT items and HAVING are bound by a :class:`GroupedBinder`: an
aggregate call becomes a read of its result column (``__aN``), an expression equal to a GROUP BY
key a read of the key column (``__kN``), and any other column reference is an error::

    SELECT store, COUNT(*) AS n ... GROUP BY store, TumblingWindow(minute, 1) HAVING COUNT(*) > 1

    Project store := __k0, n := __a0
      Filter gt(__a0, 1)
        WindowAggregate TumblingWindow(minute, 1) keys [store] aggs [__a0 := COUNT(*)]

Window rules (asa-language.md §6): exactly one window; ``System.Timestamp()`` alone is the
snapshot window, and next to another window it is a key (events are grouped by their time, but
``System.Timestamp()`` in SELECT/HAVING is the result's time, the window end); ``Windows(...)``
unions several windows (``System.Timestamp()`` may be one of them), with ids all given or none,
unique (case-insensitively).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from asaql.errors import BindError, Span, did_you_mean
from asaql.functions.aggregates import AggregateOptions, lookup
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import AGGREGATES, WINDOWS, ExprBinder, Scope
from asaql.plan.windowing import (
    WINDOW_COLUMN,
    AggregateCall,
    WindowAggregate,
    WindowDef,
    agg_column,
    key_column,
)
from asaql.sql import ast
from asaql.time import windows as tw

if TYPE_CHECKING:
    from asaql.plan.bind import ScriptContext

__all__ = ["GroupedBinder", "bind_group", "check_aggregate_placement", "parse_window"]


def _is_system_timestamp(e: ast.Expr) -> bool:
    return (isinstance(e, ast.FunctionCall) and (e.namespace or "").lower() == "system"
            and e.name.lower() == "timestamp")


def _is_window(e: ast.Expr) -> bool:
    return isinstance(e, ast.FunctionCall) and e.namespace is None and e.name.lower() in WINDOWS


def bind_group(
    select: ast.Select, node: lp.PlanNode, scope: Scope, ctx: ScriptContext, binder: ExprBinder
) -> tuple[lp.PlanNode, ExprBinder]:
    """Returns the plan after grouping and the binder for SELECT items (which may see
    aggregates). Without GROUP BY, HAVING acts as WHERE."""
    if not select.group_by:
        if select.having is not None:
            node = lp.Filter(child=node, predicate=binder.bind(select.having), span=select.having.span)
        return node, binder
    group_span = select.group_by[0].span.merge(select.group_by[-1].span)
    windows = [e for e in select.group_by if _is_window(e)]
    if len(windows) > 1:
        raise BindError(
            "GROUP BY may name only one window",
            span=windows[1].span,
            code="multiple_windows",
            help="use Windows(Window('a', ...), Window('b', ...)) to compute several windows at once",
        )
    key_asts = [e for e in select.group_by if not _is_window(e)]
    if windows:
        defs = parse_window(windows[0], binder)  # type: ignore[arg-type]
    elif any(_is_system_timestamp(e) for e in key_asts):
        defs = [WindowDef(spec=tw.Snapshot(), text="System.Timestamp()")]
        key_asts = [e for e in key_asts if not _is_system_timestamp(e)]
    else:
        raise BindError(
            "GROUP BY needs a window: a window must be specified",
            span=group_span,
            code="window_required",
            help="add e.g. TumblingWindow(minute, 1) to GROUP BY, or group by System.Timestamp()",
        )
    keys = [binder.bind(e) for e in key_asts]
    agg_node = WindowAggregate(child=node, windows=defs, keys=keys,
                               key_names=[str(k) for k in keys], span=group_span)
    grouped = GroupedBinder.over(binder, agg_node)
    result: lp.PlanNode = agg_node
    if select.having is not None:
        try:
            predicate = grouped.bind(select.having)
        except BindError as exc:
            raise _alias_in_having(exc, select) from None
        result = lp.Filter(child=result, predicate=predicate, span=select.having.span)
    return result, grouped


def check_aggregate_placement(select: ast.Select) -> None:
    """Aggregates are allowed only in SELECT and HAVING (asa-language.md §7). Checked over
    the whole statement before it is bound, so an aggregate in WHERE is reported as misplaced
    rather than as missing a window (adding a window would not make it legal)."""
    places: list[tuple[str, ast.Node, str]] = []
    for source in [select.source] + [c.source for c in select.clauses if isinstance(c, ast.Join)]:
        if source.timestamp_by is not None:
            places.append(("TIMESTAMP BY", source.timestamp_by,
                           "TIMESTAMP BY takes the time of each event, e.g. TIMESTAMP BY eventTime"))
    for clause in select.clauses:
        if isinstance(clause, ast.Join):
            places.append(("JOIN ... ON", clause.on,
                           "aggregate in a WITH step (with a window) and JOIN that step"))
    if select.where is not None:
        places.append(("WHERE", select.where,
                       "filter on an aggregate with HAVING, e.g. HAVING COUNT(*) > 1"))
    for key in select.group_by:
        places.append(("GROUP BY", key, "group by columns and compute the aggregate in SELECT"))
    for clause_name, node, help_ in places:
        calls = [n for n in _ast_nodes(node)
                 if isinstance(n, ast.FunctionCall) and _is_aggregate_call(n)]
        if calls:
            call = min(calls, key=lambda c: c.span.start)
            raise BindError(
                f"aggregate {call.name.upper()} is not allowed in {clause_name}: aggregates are allowed "
                "only in SELECT and HAVING",
                span=call.span, code="aggregate_not_allowed", help=help_,
            )


def _is_aggregate_call(node: ast.FunctionCall) -> bool:
    """A call that is an aggregate of its window: a built-in aggregate without OVER, or with
    the ``OVER (ORDER BY ...)`` of TopOne/CollectTop/percentiles, or a ``uda.`` call. The
    analytic form (``OVER (PARTITION BY ... LIMIT DURATION ...)``) is not."""
    ns = (node.namespace or "").lower()
    if ns == "uda":
        return True
    if ns or node.name.lower() not in AGGREGATES:
        return False
    over = node.over
    if over is None:
        return True
    return not (over.partition_by or over.limit_duration is not None or over.when is not None)


def _alias_in_having(exc: BindError, select: ast.Select) -> BindError:
    """A HAVING name that is a SELECT alias: ASA does not allow it; say so and show the way."""
    if exc.code != "not_grouped" or select.having is None:
        return exc
    aliases = {item.alias.lower(): item.alias for item in select.items
               if isinstance(item, ast.SelectItem) and item.alias}
    for node in _ast_nodes(select.having):
        if isinstance(node, ast.ColumnRef) and node.span == exc.span and len(node.parts) == 1 \
                and node.parts[0].lower() in aliases:
            alias = aliases[node.parts[0].lower()]
            return BindError(
                f"'{alias}' is a SELECT alias; HAVING cannot use aliases",
                span=exc.span, code="alias_in_having",
                help=f"repeat the expression instead of '{alias}', e.g. HAVING COUNT(*) >= 2",
            )
    return exc


def _ast_nodes(node: object) -> list[object]:
    """Every AST node under ``node`` (dataclass fields, tuples and lists followed)."""
    import dataclasses

    out, stack = [], [node]
    while stack:
        current = stack.pop()
        if isinstance(current, list | tuple):
            stack.extend(current)
        elif dataclasses.is_dataclass(current):
            out.append(current)
            stack.extend(getattr(current, f.name) for f in dataclasses.fields(current))
    return out


# ------------------------------------------------------------------ window arguments


def _int_literal(e: ast.Expr) -> int | None:
    if isinstance(e, ast.Literal) and e.kind == "integer":
        return int(e.value)  # type: ignore[arg-type]
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Literal) and e.operand.kind == "integer":
        return -int(e.operand.value)  # type: ignore[arg-type]
    return None


def _unit(e: ast.Expr) -> int | None:
    if isinstance(e, ast.ColumnRef) and len(e.parts) == 1:
        return tw.unit_us(e.parts[0])
    if isinstance(e, ast.Literal) and e.kind == "string":
        return tw.unit_us(str(e.value))
    return None


def _unknown_unit(e: ast.Expr) -> BindError:
    word = e.parts[0] if isinstance(e, ast.ColumnRef) else str(getattr(e, "value", ""))
    return BindError(
        f"'{word}' is not a time unit of a window",
        span=e.span,
        code="bad_window",
        help=did_you_mean(word, tw.UNIT_US)
        or "use day, hour, minute, second, millisecond or microsecond (or dd, hh, mi, ss, ms, mcs)",
    )


def _is_word(e: ast.Expr) -> bool:
    return (isinstance(e, ast.ColumnRef) and len(e.parts) == 1) or (
        isinstance(e, ast.Literal) and e.kind == "string")


def _durations(call: ast.FunctionCall) -> list[tuple[str | None, int, Span]]:
    """The durations of a window call, in microseconds, with the wrapper name of each
    (``Duration``, ``Hop``, ``Offset``, ``Timeout``, ``MaxDuration``) or None for the
    ``(unit, n, m...)`` form."""
    args = list(call.args)
    if args and _is_word(args[0]) and _unit(args[0]) is None:
        raise _unknown_unit(args[0])
    if args and _unit(args[0]) is not None:
        unit = _unit(args[0])
        assert unit is not None
        out: list[tuple[str | None, int, Span]] = []
        for a in args[1:]:
            n = _int_literal(a)
            if n is None:
                raise BindError("window sizes must be integer constants", span=a.span, code="bad_window")
            out.append((None, n * unit, a.span))
        return out
    out = []
    for a in args:
        if not (isinstance(a, ast.FunctionCall) and len(a.args) == 2 and a.namespace is None):
            raise BindError(
                f"{call.name} expects a time unit and sizes, e.g. {call.name}(minute, 5)",
                span=a.span, code="bad_window")
        unit, n = _unit(a.args[0]), _int_literal(a.args[1])
        if unit is None and _is_word(a.args[0]):
            raise _unknown_unit(a.args[0])
        if unit is None:
            raise BindError("unknown time unit; use day, hour, minute, second, millisecond or microsecond",
                            span=a.args[0].span, code="bad_window")
        if n is None:
            raise BindError("window sizes must be integer constants", span=a.args[1].span, code="bad_window")
        out.append((a.name.lower(), n * unit, a.span))
    return out


def _positive(value: int, what: str, span: Span) -> int:
    if value <= 0:
        raise BindError(f"the {what} must be positive, got {value}us", span=span, code="bad_window")
    if value > tw.MAX_WINDOW_US:
        raise BindError(f"the {what} ({value // 1_000_000}s) is longer than the 7-day maximum",
                        span=span, code="bad_window")
    return value


def parse_window(call: ast.FunctionCall, binder: ExprBinder) -> list[WindowDef]:
    """The window definitions of one GROUP BY window expression."""
    name = call.name.lower()
    if name == "windows":
        return _windows(call, binder)
    if name == "snapshotwindow":
        return [WindowDef(spec=tw.Snapshot(), text="SnapshotWindow()")]
    parts = _durations(call)
    sizes = [d for _, d, _ in parts]
    spans = [s for _, _, s in parts]
    text = _window_text(call)
    if call.over is not None and not name.startswith("session"):
        raise BindError(f"{call.name} takes no OVER clause", span=call.over.span, code="bad_window")

    def need(lo: int, hi: int, usage: str) -> None:
        if not lo <= len(sizes) <= hi:
            raise BindError(f"{call.name} takes {usage}", span=call.span, code="bad_window")

    if name.startswith("tumbling"):
        need(1, 2, "a unit, a size and an optional offset")
        size = _positive(sizes[0], "window size", spans[0])
        offset = sizes[1] if len(sizes) > 1 else 0
        return [WindowDef(spec=tw.Tumbling(size, offset), text=text)]
    if name.startswith("hopping"):
        need(2, 3, "a unit, a size, a hop and an optional offset")
        size = _positive(sizes[0], "window size", spans[0])
        hop = _positive(sizes[1], "hop size", spans[1])
        if hop > size:
            raise BindError(f"the hop ({hop}us) must not be longer than the window ({size}us)",
                            span=spans[1], code="bad_window")
        offset = sizes[2] if len(sizes) > 2 else 0
        return [WindowDef(spec=tw.hopping(size, hop, offset), text=text)]
    if name.startswith("sliding"):
        need(1, 1, "a unit and a size")
        return [WindowDef(spec=tw.Sliding(_positive(sizes[0], "window size", spans[0])), text=text)]
    need(2, 2, "a unit, a timeout and a maximum duration")
    timeout = _positive(sizes[0], "session timeout", spans[0])
    max_duration = _positive(sizes[1], "maximum duration", spans[1])
    if timeout > max_duration:
        raise BindError(f"the session timeout ({timeout}us) must not exceed the maximum duration "
                        f"({max_duration}us)", span=call.span, code="bad_window")
    partition: tuple[bx.BoundExpr, ...] = ()
    if call.over is not None:
        partition = tuple(binder.bind(e) for e in call.over.partition_by)
    spec = tw.Session(timeout, max_duration, partitioned=bool(partition))
    return [WindowDef(spec=spec, partition=partition, text=text)]


def _windows(call: ast.FunctionCall, binder: ExprBinder) -> list[WindowDef]:
    defs: list[WindowDef] = []
    ids: list[str | None] = []
    for arg in call.args:
        if isinstance(arg, ast.FunctionCall) and arg.namespace is None and arg.name.lower() == "window":
            if len(arg.args) != 2 or not (isinstance(arg.args[0], ast.Literal) and arg.args[0].kind == "string"):
                raise BindError("Window takes an id string and a window, e.g. Window('short', TumblingWindow(second, 10))",
                                span=arg.span, code="bad_window")
            window_id, inner = str(arg.args[0].value), arg.args[1]
        else:
            window_id, inner = None, arg
        if _is_system_timestamp(inner):  # a snapshot window may be one of them (snapshot reference)
            defs.append(WindowDef(spec=tw.Snapshot(), id=window_id, text="System.Timestamp()"))
            ids.append(window_id)
            continue
        if not _is_window(inner) or inner.name.lower() == "windows":  # type: ignore[union-attr]
            raise BindError("Windows() takes window definitions (Windows cannot be nested)",
                            span=inner.span, code="bad_window")
        for d in parse_window(inner, binder):  # type: ignore[arg-type]
            defs.append(replace(d, id=window_id))
            ids.append(window_id)
    if not defs:
        raise BindError("Windows() needs at least one window", span=call.span, code="bad_window")
    if any(i is None for i in ids) and any(i is not None for i in ids):
        raise BindError("give every window of Windows() an id, or none", span=call.span, code="bad_window")
    named = [i.lower() for i in ids if i is not None]
    if len(set(named)) != len(named):
        raise BindError("window ids must be unique", span=call.span, code="bad_window")
    return defs


def _window_text(call: ast.FunctionCall) -> str:
    from asaql.sql.printer import to_sql

    try:
        return to_sql(call)
    except Exception:  # noqa: BLE001 - the text is only for EXPLAIN
        return call.name


# ------------------------------------------------------------------ SELECT / HAVING binder


class GroupedBinder(ExprBinder):
    """Binds SELECT items and HAVING over the rows of a WindowAggregate."""

    node: WindowAggregate
    input_binder: ExprBinder
    _depth: int = 0

    @classmethod
    def over(cls, binder: ExprBinder, node: WindowAggregate) -> GroupedBinder:
        grouped = cls(
            scope=binder.scope,
            diagnostics=binder.diagnostics,
            strict=binder.strict,
            udf_hook=None,
            allow_aggregates=True,
            extra=dict(binder.extra),
        )
        grouped.node = node
        grouped.input_binder = binder
        # System.Timestamp() as a key next to a window groups by event time, but read in SELECT
        # or HAVING it is the time of the result, the window end (§5 timestamp propagation)
        grouped._keys = {_canon(k): i for i, k in enumerate(node.keys) if not isinstance(k, bx.SysTimestamp)}
        grouped._calls: dict[str, int] = {}
        grouped.aggregate_hook = _aggregate_hook
        grouped.analytic_hook = _analytic_hook(binder)
        grouped.udf_hook = _uda_hook(binder)
        grouped.extra["window_id"] = lambda call: bx.Col(scope=WINDOW_COLUMN, path=(), span=call.span)
        return grouped

    def bind(self, node: ast.Expr) -> bx.BoundExpr:
        self._depth += 1
        try:
            bound = super().bind(node)
        finally:
            self._depth -= 1
        if self._depth:
            return bound
        return self._grouped(bound)

    def add_aggregate(self, call: AggregateCall, span: Span) -> bx.BoundExpr:
        key = str(call)
        index = self._calls.get(key)
        if index is None:
            index = len(self.node.aggregates)
            self.node.aggregates.append(call)
            self._calls[key] = index
        return bx.Col(scope=agg_column(index), path=(), span=span)

    def _grouped(self, e: bx.BoundExpr) -> bx.BoundExpr:
        """Replace GROUP BY key expressions by key columns; reject other input columns."""
        index = self._keys.get(_canon(e))
        if index is not None:
            return bx.Col(scope=key_column(index), path=(), span=e.span)
        if isinstance(e, bx.Col) and not (e.scope or "").startswith("__"):
            raise BindError(
                f"'{e}' must appear in GROUP BY or inside an aggregate",
                span=e.span,
                code="not_grouped",
                help=f"add {e} to GROUP BY, or aggregate it, e.g. MAX({e})",
            )
        if isinstance(e, bx.StarExpr):
            raise BindError("SELECT * cannot be used with GROUP BY", span=e.span, code="not_grouped")
        return _map_children(e, self._grouped)


def _aggregate_hook(node: ast.FunctionCall, binder: ExprBinder) -> bx.BoundExpr:
    assert isinstance(binder, GroupedBinder)
    fn = lookup(node.name)
    if fn is None:  # pragma: no cover - AGGREGATES and the table agree
        raise BindError(f"unknown aggregate {node.name}", span=node.span, code="unknown_function")
    return binder.add_aggregate(_aggregate_call(node, fn, binder), node.span)


def _analytic_hook(outer: ExprBinder) -> Any:
    """Aggregates written with ``OVER (ORDER BY ...)`` (percentiles, TopOne, CollectTop) are
    window aggregates here; other OVER uses are analytic functions (bound elsewhere)."""

    def hook(node: ast.FunctionCall, binder: ExprBinder) -> bx.BoundExpr:
        over = node.over
        simple = over is not None and not over.partition_by and over.limit_duration is None and over.when is None
        if node.namespace is None and node.name.lower() in AGGREGATES and simple:
            return _aggregate_hook(node, binder)
        if outer.analytic_hook is None:
            raise BindError(f"analytic function {node.name} is not supported yet", span=node.span,
                            code="not_supported")
        return outer.analytic_hook(node, outer)

    return hook


def _uda_hook(outer: ExprBinder) -> Any:
    def hook(node: ast.FunctionCall, binder: ExprBinder) -> bx.BoundExpr:
        fn = lookup(node.name, user=True) if (node.namespace or "").lower() in ("uda", "udf") else None
        if fn is not None:
            assert isinstance(binder, GroupedBinder)
            return binder.add_aggregate(_aggregate_call(node, fn, binder), node.span)
        if outer.udf_hook is None:
            raise BindError(f"unknown function {node.namespace}.{node.name}", span=node.span,
                            code="unknown_function")
        return outer.udf_hook(node, outer)

    return hook


def _aggregate_call(node: ast.FunctionCall, fn: Any, binder: GroupedBinder) -> AggregateCall:
    inner = binder.input_binder
    args = list(node.args)
    params: list[Any] = []
    for _ in range(fn.params):
        if not args or not isinstance(args[0], ast.Literal | ast.Unary):
            raise BindError(f"{fn.name} needs a constant first argument", span=node.span, code="wrong_arity")
        params.append(_constant(args.pop(0)))
    _check_params(fn.name, params, node.span)
    star = node.star
    if fn.star and len(args) == 1 and isinstance(args[0], ast.ColumnRef) and len(args[0].parts) == 1 \
            and inner.scope.resolve(args[0].parts[0]) is not None and not node.distinct:
        star, args = True, []  # COUNT(input) counts events, like COUNT(*)
    if star and not fn.star:
        raise BindError(f"{fn.name}(*) is not allowed", span=node.span, code="wrong_arity")
    if node.distinct and fn.name.upper() != "COUNT":
        raise BindError(f"DISTINCT is only supported in COUNT, not {fn.name}", span=node.span, code="not_supported")
    if not star and not fn.min_args <= len(args) <= fn.max_args:
        want = fn.min_args if fn.min_args == fn.max_args else f"{fn.min_args} to {fn.max_args}"
        raise BindError(f"{fn.name} takes {want} argument(s), got {len(args)}", span=node.span, code="wrong_arity")
    if star and fn.star and node.star and node.distinct:
        raise BindError("COUNT(DISTINCT *) is not allowed", span=node.span, code="wrong_arity")
    bound = [inner.bind(a) for a in args]
    if not bound and fn.record_default:
        order = inner.scope.order
        if not order:
            raise BindError(f"{fn.name}() needs an input", span=node.span, code="wrong_arity")
        bound = [bx.Col(scope=order[0], path=(), span=node.span)]
    over = node.over
    order_items = over.order_by if over is not None else ()
    if fn.order_by == "required" and not order_items:
        raise BindError(f"{fn.name} needs OVER (ORDER BY ...)", span=node.span, code="order_by_required",
                        help=f"e.g. {fn.name}(...) OVER (ORDER BY value DESC)")
    if order_items and fn.order_by == "none":
        raise BindError(f"{fn.name} takes no OVER (ORDER BY ...) here", span=node.span, code="not_supported")
    if fn.name.upper().startswith("PERCENTILE") and len(order_items) != 1:
        raise BindError(f"{fn.name} orders by exactly one expression", span=node.span, code="wrong_arity")
    options = AggregateOptions(
        distinct=node.distinct, star=star, params=tuple(params),
        descending=tuple(o.descending for o in order_items))
    return AggregateCall(function=fn, args=tuple(bound),
                         order_by=tuple(inner.bind(o.expr) for o in order_items), options=options)


def _check_params(name: str, params: list[Any], span: Span) -> None:
    """Constant arguments are checked before any event is read: a percentile fraction lies in
    [0, 1] (§7), a CollectTop count is a positive integer literal."""
    if not params:
        return
    p = params[0]
    upper = name.upper()
    if upper.startswith("PERCENTILE") and (isinstance(p, bool) or not isinstance(p, int | float)
                                           or not 0 <= p <= 1):
        raise BindError(f"{name} needs a number between 0 and 1, got {p!r}", span=span, code="bad_argument")
    if upper == "COLLECTTOP" and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
        raise BindError(f"CollectTop needs a positive integer count of events, got {p!r}", span=span,
                        code="bad_argument")


def _constant(e: ast.Expr) -> Any:
    if isinstance(e, ast.Literal):
        return e.value
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Literal):
        return -e.operand.value  # type: ignore[operator]
    raise BindError("expected a constant", span=e.span, code="wrong_arity")


# ------------------------------------------------------------------ expression helpers


def _canon(e: bx.BoundExpr) -> str:
    """A text that is equal for expressions that are the same GROUP BY key, however the
    column was qualified or capitalised (``o.Store`` and ``store`` in a one-input query)."""

    def strip(x: bx.BoundExpr) -> bx.BoundExpr:
        if isinstance(x, bx.Col):
            return bx.Col(scope=None, path=tuple(p.lower() for p in x.path))
        return _map_children(x, strip)

    return f"{type(e).__name__}:{strip(e)}"


def _map_children(e: bx.BoundExpr, fn: Any) -> bx.BoundExpr:
    if isinstance(e, bx.FieldGet | bx.CastExpr | bx.TryEval):
        return replace(e, expr=fn(e.expr))
    if isinstance(e, bx.Op | bx.FuncCall):
        return replace(e, args=tuple(fn(a) for a in e.args))
    if isinstance(e, bx.CaseExpr):
        whens = tuple((fn(c), fn(r)) for c, r in e.whens)
        return replace(e, whens=whens, else_=fn(e.else_) if e.else_ is not None else None)
    if isinstance(e, bx.MakeRecord):
        return replace(e, fields=tuple((n, fn(x)) for n, x in e.fields))
    children = e.children()
    if children:
        # an expression kind this module does not know (added later): rebuild generically
        for name in ("expr", "args"):
            if hasattr(e, name):
                value = getattr(e, name)
                return replace(e, **{name: tuple(fn(a) for a in value) if isinstance(value, tuple) else fn(value)})
    return e
