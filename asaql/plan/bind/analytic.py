"""Binding of analytic functions: LAG, LAST, ISFIRST, aggregates OVER, anomaly detectors.

ASA evaluates analytic functions first, over the input of the statement, before APPLY,
JOIN, WHERE and GROUP BY (asa-language.md §8, §15; conformance case 28). Every analytic call
met anywhere in the statement is collected (the call site reads its result column); once the
statement is bound, each call goes into an :class:`~asaql.plan.temporal_nodes.Analytic` node
right above the stream input it reads: the FROM source, or the right side of a stream JOIN.
A call that reads columns of two inputs is an error (``analytic_mixes_inputs``), and so is one
that reads reference data or a value computed after the inputs (``analytic_input``).

``LIMIT DURATION`` is mandatory for LAG, LAST, aggregates OVER and the anomaly detectors
(error ``limit_duration_required``); ISFIRST takes its interval as arguments instead.
"""

from __future__ import annotations

from asaql.errors import BindError, Span
from asaql.plan import expr as bx
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import AGGREGATES, ANALYTIC, ExprBinder, Scope
from asaql.plan.temporal_nodes import UNIT_US, Analytic, AnalyticCall, TemporalJoin
from asaql.sql import ast

__all__ = ["AnalyticCalls", "uses_analytic"]

_OVER_AGGREGATES = {"sum", "avg", "min", "max", "count"}
_VALUE_AGGREGATES = {"topone", "collecttop", "collect"}
_ORDERED_AGGREGATES = {"topone", "collecttop", "percentile_cont", "percentile_disc"}
_ANOMALY = {
    "anomalydetection_spikeanddip": ("spikeanddip", 4),
    "anomalydetection_changepoint": ("changepoint", 3),
}
_MODES = ("spikes", "dips", "spikesanddips")


def _window_form(node: ast.FunctionCall) -> bool:
    """``TopOne() OVER (ORDER BY ...)`` with nothing else in OVER: the window aggregate."""
    over = node.over
    return (over is not None and node.name.lower() in _ORDERED_AGGREGATES and not over.partition_by
            and over.limit_duration is None and over.when is None)


def _is_analytic(node: ast.FunctionCall) -> bool:
    if node.namespace or _window_form(node):
        return False
    return node.over is not None or node.name.lower() in ANALYTIC


def uses_analytic(select: ast.Select) -> bool:
    """Whether any expression of the statement calls an analytic function."""
    roots: list[object] = [i.expr for i in select.items]
    roots += [select.where, select.having, *select.group_by]
    roots += [c.on for c in select.clauses if isinstance(c, ast.Join)]
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionCall) and _is_analytic(node):
            return True
        for value in vars(node).values():
            items = value if isinstance(value, tuple) else (value,)
            for v in items:
                if isinstance(v, ast.Node):
                    stack.append(v)
                elif isinstance(v, tuple):
                    stack.extend(x for x in v if isinstance(x, ast.Node))
    return False


class AnalyticCalls:
    """The ``analytic_hook`` of a statement's binder: collects the calls met anywhere in the
    statement; :meth:`place` then puts them on the stream inputs they read."""

    def __init__(self) -> None:
        self.calls: list[AnalyticCall] = []
        self._by_key: dict[str, AnalyticCall] = {}
        self._spans: dict[str, Span] = {}
        self._depth = 0

    def place(self, root: lp.PlanNode, source: lp.PlanNode, scope: Scope) -> lp.PlanNode:
        """Insert one ``Analytic`` node right above each stream input that calls read: the FROM
        source and the right side of every stream JOIN, so that the calls see that input's
        events before any JOIN, APPLY, WHERE or GROUP BY. Returns the (possibly new) root."""
        sides = [source] + _stream_join_sides(root)
        by_side: dict[int, list[AnalyticCall]] = {}
        for call in self.calls:
            side = _side_of(call, sides, scope, self._spans[call.alias])
            by_side.setdefault(side, []).append(call)
        replaced = {
            id(sides[i]): Analytic(child=sides[i], calls=calls, span=sides[i].span)
            for i, calls in by_side.items()
        }
        if id(root) in replaced:
            return replaced[id(root)]
        stack = [root]
        while stack:
            node = stack.pop()
            inputs = node.inputs
            if any(id(c) in replaced for c in inputs):
                node.replace_inputs([replaced.get(id(c), c) for c in inputs])
            stack.extend(c for c in inputs if id(c) not in replaced)
        return root

    def __call__(self, node: ast.FunctionCall, binder: ExprBinder) -> bx.BoundExpr:
        name = node.name.lower()
        if _window_form(node):
            return binder._aggregate(node)
        if self._depth:
            raise BindError(f"analytic function {node.name} cannot be nested in another one",
                            span=node.span, code="nested_analytic")
        self._depth += 1
        try:
            call = self._bind(node, name, binder)
        finally:
            self._depth -= 1
        key = call.text
        found = self._by_key.get(key)
        if found is None:
            call.alias = f"__an{len(self.calls) + 1}"
            self.calls.append(call)
            self._spans[call.alias] = node.span
            self._by_key[key] = found = call
        return bx.Col(scope=found.alias, path=(), span=node.span)

    # ------------------------------------------------------------------ per function

    def _bind(self, node: ast.FunctionCall, name: str, binder: ExprBinder) -> AnalyticCall:
        over = node.over or ast.Over(span=node.span)
        partition = tuple(binder.bind(e) for e in over.partition_by)
        when = binder.bind(over.when) if over.when is not None else None
        text = _text(node)
        if name == "isfirst":
            if over.limit_duration is not None:
                raise BindError("ISFIRST takes no LIMIT DURATION: its interval is its argument",
                                span=node.span, code="isfirst_limit_duration",
                                help="write ISFIRST(minute, 10) OVER ([PARTITION BY ...] [WHEN ...])")
            return self._isfirst(node, partition, when, binder, text)
        duration = _duration(node, over)
        if name in ("lag", "last"):
            return self._lag(node, name, partition, when, duration, binder, text)
        if name in _ANOMALY:
            return self._anomaly(node, name, partition, when, duration, binder, text)
        if name in _OVER_AGGREGATES:
            if node.distinct:
                raise BindError(f"{node.name}(DISTINCT ...) OVER is not supported", span=node.span,
                                code="not_supported")
            if node.star:
                value = None
            else:
                _arity(node, 1, 1)
                value = binder.bind(node.args[0])
                if isinstance(value, bx.StarExpr):
                    value = None
            if value is None and name != "count":
                raise BindError(f"{node.name}(*) is not valid", span=node.span, code="wrong_arity")
            return AnalyticCall(alias="", function=name, value=value, partition_by=partition,
                                duration_us=duration, when=when, text=text)
        if name in _VALUE_AGGREGATES:
            return self._values(node, name, partition, when, duration, binder, text)
        if name in AGGREGATES:
            raise BindError(
                f"{node.name.upper()} cannot be used with OVER (... LIMIT DURATION ...)",
                span=node.span, code="not_analytic",
                help="the aggregates with an analytic form are SUM, AVG, MIN, MAX, COUNT, TopOne, "
                     "CollectTop and Collect")
        raise BindError(f"'{node.name}' is not an analytic function; OVER is not allowed here",
                        span=node.span, code="not_analytic")

    def _lag(self, node: ast.FunctionCall, name: str, partition: tuple[bx.BoundExpr, ...],
             when: bx.BoundExpr | None, duration: int, binder: ExprBinder, text: str) -> AnalyticCall:
        if node.star:  # LAG(*): the whole previous event
            value: bx.BoundExpr = bx.StarExpr(scope=None, span=node.span)
            node = ast.FunctionCall(name=node.name, args=(ast.Star(span=node.span), *node.args),
                                    over=node.over, span=node.span)
        _arity(node, 1, 3 if name == "lag" else 2)
        value = binder.bind(node.args[0])
        offset = 0
        default: bx.BoundExpr | None = None
        if name == "lag":
            offset = 1
            if len(node.args) >= 2:
                offset = _const_int(node.args[1], "the LAG offset")
                if offset < 1:
                    raise BindError("the LAG offset must be 1 or more", span=node.args[1].span,
                                    code="bad_argument")
            if len(node.args) == 3:
                default = binder.bind(node.args[2])
        elif len(node.args) == 2:
            default = binder.bind(node.args[1])
        return AnalyticCall(alias="", function=name, value=value, partition_by=partition,
                            duration_us=duration, when=when, offset=offset, default=default, text=text)

    def _values(self, node: ast.FunctionCall, name: str, partition: tuple[bx.BoundExpr, ...],
                when: bx.BoundExpr | None, duration: int, binder: ExprBinder, text: str) -> AnalyticCall:
        """TopOne([expr]), CollectTop(n [, expr]) (both with ORDER BY) and Collect([expr]); no
        argument means the whole event, as for the window aggregates of the same names."""
        if node.star or node.distinct:
            raise BindError(f"{node.name}({'DISTINCT ' if node.distinct else ''}*) is not valid",
                            span=node.span, code="wrong_arity")
        args = list(node.args)
        params: tuple[object, ...] = ()
        if name == "collecttop":
            _arity(node, 1, 2)
            n = _const_int(args[0], "the CollectTop count")
            if n < 1:
                raise BindError("the CollectTop count must be 1 or more", span=args[0].span,
                                code="bad_argument")
            params, args = (n,), args[1:]
        elif len(args) > 1:
            _arity(node, 0, 1)
        value = binder.bind(args[0]) if args else bx.StarExpr(scope=None, span=node.span)
        order = node.over.order_by if node.over is not None else ()
        if name != "collect" and not order:
            raise BindError(f"{node.name} needs ORDER BY in its OVER clause", span=node.span,
                            code="order_by_required",
                            help=f"e.g. {node.name}(...) OVER (ORDER BY value DESC LIMIT DURATION(minute, 5))")
        if name == "collect" and order:
            raise BindError("Collect takes no ORDER BY", span=order[0].span, code="not_supported")
        return AnalyticCall(alias="", function=name, value=value, partition_by=partition,
                            duration_us=duration, when=when, params=params, text=text,
                            order_by=tuple(binder.bind(o.expr) for o in order),
                            descending=tuple(o.descending for o in order))

    def _isfirst(self, node: ast.FunctionCall, partition: tuple[bx.BoundExpr, ...],
                 when: bx.BoundExpr | None, binder: ExprBinder, text: str) -> AnalyticCall:
        _arity(node, 2, 2)
        unit = binder._datepart(node.args[0])
        size = _const_int(node.args[1], "the ISFIRST interval")
        us = _unit_us(str(unit.value), node.args[0].span)
        if size <= 0:
            raise BindError("the ISFIRST interval must be positive", span=node.args[1].span,
                            code="bad_argument")
        return AnalyticCall(alias="", function="isfirst", value=None, partition_by=partition,
                            when=when, interval_us=us * size, text=text)

    def _anomaly(self, node: ast.FunctionCall, name: str, partition: tuple[bx.BoundExpr, ...],
                 when: bx.BoundExpr | None, duration: int, binder: ExprBinder, text: str) -> AnalyticCall:
        function, nargs = _ANOMALY[name]
        _arity(node, nargs, nargs)
        if node.over is not None and node.over.order_by:
            raise BindError(f"{node.name} takes no ORDER BY in OVER (only PARTITION BY, "
                            "LIMIT DURATION and WHEN)", span=node.over.order_by[0].span,
                            code="not_supported")
        value = binder.bind(node.args[0])
        if isinstance(value, bx.StarExpr):
            raise BindError(f"{node.name} needs a number, not *", span=node.args[0].span, code="bad_argument")
        confidence = _const_number(node.args[1], "the confidence")
        if not 1 <= confidence <= 100:
            raise BindError(f"the confidence must be between 1 and 100, got {confidence:g}",
                            span=node.args[1].span,
                            code="bad_argument")
        history = _const_int(node.args[2], "the history size")
        if history < 2:
            raise BindError(f"the history size must be at least 2, got {history}",
                            span=node.args[2].span,
                            code="bad_argument")
        params: tuple[object, ...] = (confidence, history)
        if function == "spikeanddip":
            mode = node.args[3]
            if not (isinstance(mode, ast.Literal) and str(mode.value).lower() in _MODES):
                raise BindError("the mode must be 'spikes', 'dips' or 'spikesanddips'", span=mode.span,
                                code="bad_argument")
            params += (str(mode.value).lower(),)
        return AnalyticCall(alias="", function=function, value=value, partition_by=partition,
                            duration_us=duration, when=when, params=params, text=text)


def _stream_join_sides(root: lp.PlanNode) -> list[lp.PlanNode]:
    """The right inputs of the statement's stream joins, in the order they were written."""
    found: list[lp.PlanNode] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, TemporalJoin):
            found.append(node.right)
        stack.extend(node.inputs)
    return found[::-1]


def _side_of(call: AnalyticCall, sides: list[lp.PlanNode], scope: Scope, span: Span) -> int:
    """Which stream input a call reads (index into ``sides``). Qualified columns name their
    input; an unqualified name belongs to the one input whose known fields have it, or else to
    the input the call's other columns name. A call that reads no column of any input
    (``COUNT(*)``, ``ISFIRST``, ``LAG(*)``) runs over the FROM input."""
    owner = {s: i for i, side in enumerate(sides) for s in side.scopes()}
    named: set[int] = set()
    loose: list[str] = []
    for e in call.expressions():
        for sub in bx.walk(e):
            name = sub.scope if isinstance(sub, bx.Col | bx.StarExpr) else None
            if name is not None and name not in owner:
                what = "a computed value" if name.startswith("__") else f"'{name}'"
                raise BindError(
                    f"{call.text} reads {what}, which is not a stream input: analytic functions "
                    "run over an input's events, before JOIN, APPLY and function calls",
                    span=span, code="analytic_input",
                    help="compute the value in a WITH step and use the analytic function on that step")
            if name is not None:
                named.add(owner[name])
            elif isinstance(sub, bx.Col) and sub.path:
                loose.append(sub.path[0])
    unknown = []
    for field_name in loose:
        having = [i for i, side in enumerate(sides)
                  if any(_has_field(scope, s, field_name) for s in side.scopes())]
        if len(having) == 1:
            named.add(having[0])
        else:
            unknown.append(field_name)
    if len(named) > 1:
        names = " and ".join(sides[i].scopes()[0] for i in sorted(named))
        raise BindError(
            f"{call.text} mixes columns of {names}: an analytic function runs over the events of "
            "one input, before the JOIN",
            span=span, code="analytic_mixes_inputs",
            help="use one analytic function per input and combine their results in SELECT")
    if unknown and not named and len(sides) > 1:
        raise BindError(
            f"'{unknown[0]}' in {call.text} does not say which input it is from: with a stream "
            "JOIN, an analytic function runs over one input's events, before the JOIN",
            span=span, code="analytic_ambiguous_input",
            help=f"qualify it, e.g. {sides[0].scopes()[0]}.{unknown[0]}")
    return named.pop() if named else 0


def _has_field(scope: Scope, column: str, name: str) -> bool:
    fields = scope.fields.get(column)
    return fields is not None and name.lower() in (f.lower() for f in fields)


def _duration(node: ast.FunctionCall, over: ast.Over) -> int:
    if over.limit_duration is None:
        raise BindError(
            f"{node.name.upper()} needs LIMIT DURATION in its OVER clause, e.g. "
            f"OVER (LIMIT DURATION(minute, 5))",
            span=node.span, code="limit_duration_required",
            help="add OVER ([PARTITION BY key] LIMIT DURATION(unit, n))",
        )
    unit, n = over.limit_duration
    us = _unit_us(unit, over.span)
    if n <= 0:
        raise BindError("LIMIT DURATION must be positive", span=over.span, code="bad_argument")
    return us * int(n)


def _unit_us(unit: str, span: object) -> int:
    from asaql.functions.datetime import DATEPARTS

    canon = DATEPARTS.get(unit.strip().lower())
    if canon not in ("day", "hour", "minute", "second", "millisecond", "microsecond"):
        raise BindError(f"'{unit}' is not a time unit here (day, hour, minute, second, millisecond, "
                        "microsecond)", span=span, code="bad_unit")  # type: ignore[arg-type]
    return UNIT_US[canon]


def _arity(node: ast.FunctionCall, lo: int, hi: int) -> None:
    n = len(node.args)
    if not lo <= n <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise BindError(f"{node.name.upper()} takes {want} argument(s), got {n}", span=node.span,
                        code="wrong_arity")


def _const_number(e: ast.Expr, what: str) -> float:
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Literal):
        return -_const_number(e.operand, what)
    if isinstance(e, ast.Literal) and e.kind in ("integer", "float"):
        return float(e.value)  # type: ignore[arg-type]
    raise BindError(f"{what} must be a constant number", span=e.span, code="bad_argument")


def _const_int(e: ast.Expr, what: str) -> int:
    value = _const_number(e, what)
    if not float(value).is_integer():
        raise BindError(f"{what} must be a whole number", span=e.span, code="bad_argument")
    return int(value)


def _text(node: ast.FunctionCall) -> str:
    try:
        from asaql.sql.printer import to_sql

        return to_sql(node)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - only a label
        return repr(node)
