"""Turn the Lark parse tree of ``grammar/asaql.lark`` into :mod:`asaql.sql.ast` nodes.

One method per grammar rule (rule ``in_list`` -> method ``in_list`` -> ``ast.InList``). Each
method receives the rule's ``meta`` (positions, thanks to ``propagate_positions``) and its
children, already transformed bottom-up. Names arrive as Lark tokens (bracketed names are
unescaped by the ``QUOTED_NAME`` terminal callback) so that nodes built from a single name can
still carry its span. Helper rules that have no AST class of their own return plain tuples or
strings to the rule that uses them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from lark import Token, Transformer_NonRecursive, v_args
from lark.tree import Meta

from asaql.errors import AsaqlSyntaxError, Span
from asaql.sql import ast
from asaql.sql.printer import quote_identifier

__all__ = ["AstBuilder", "span_of"]


def span_of(node: Meta | Token) -> Span:
    """The :class:`Span` of a rule's ``meta`` or of a token (``Span.none()`` when unknown)."""
    if (isinstance(node, Meta) and node.empty) or node.line is None:
        return Span.none()
    return Span(
        node.start_pos or 0,
        node.end_pos or 0,
        node.line,
        node.column or 0,
        node.end_line or 0,
        node.end_column or 0,
    )


def _unquote(text: str, quote: str) -> str:
    """``'it''s'`` -> ``it's`` (the doubled quote escapes itself, T-SQL style)."""
    return text[1:-1].replace(quote * 2, quote)


def _alias_text(token: Token) -> str:
    """An alias written as a name, a 'string' or a "double-quoted string"."""
    if token.type == "STRING":
        return _unquote(token, "'")
    if token.type == "DQSTRING":
        return _unquote(token, '"')
    return str(token)


_LITERALS: dict[str, Callable[[Token], tuple[object, str]]] = {
    "INT": lambda tok: (int(tok), "integer"),
    "FLOAT": lambda tok: (float(tok), "float"),
    "STRING": lambda tok: (_unquote(tok, "'"), "string"),
    "DQSTRING": lambda tok: (_unquote(tok, '"'), "string"),
    "NULL": lambda tok: (None, "null"),
}

_WORD_OPERATORS = frozenset({"AND", "OR", "NOT"})


@dataclasses.dataclass(frozen=True)
class _CallArgs:
    args: tuple[ast.Expr, ...] = ()
    distinct: bool = False
    star: bool = False


@v_args(meta=True)
class AstBuilder(Transformer_NonRecursive[Token, Any]):
    """Lark transformer producing an ``ast.Script`` (or an ``ast.Expr`` for ``standalone_expr``)."""

    # ------------------------------------------------------------ terminals

    @v_args(inline=False, meta=False)
    def QUOTED_NAME(self, token: Token) -> Token:  # noqa: N802 (Lark terminal callback)
        return Token.new_borrow_pos("NAME", token[1:-1].replace("]]", "]"), token)

    # ------------------------------------------------------------ statements

    def script(self, meta: Meta, children: list[ast.Statement]) -> ast.Script:
        return ast.Script(statements=tuple(children), span=span_of(meta))

    def standalone_expr(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return children[0]

    def create_table(self, meta: Meta, children: list[Any]) -> ast.CreateTable:
        name, *columns = children
        return ast.CreateTable(name=str(name), columns=tuple(columns), span=span_of(meta))

    def column_def(self, meta: Meta, children: list[Any]) -> ast.ColumnDef:
        name, type_name = children
        return ast.ColumnDef(name=str(name), type_name=type_name, span=span_of(meta))

    def type_name(self, meta: Meta, children: list[Token | None]) -> str:
        base, argument = children
        return f"{base}({argument})" if argument is not None else str(base)

    def with_block(self, meta: Meta, children: list[ast.WithStep]) -> ast.WithBlock:
        return ast.WithBlock(steps=tuple(children), span=span_of(meta))

    def with_step(self, meta: Meta, children: list[Any]) -> ast.WithStep:
        name, query = children
        return ast.WithStep(name=str(name), query=query, span=span_of(meta))

    def union(self, meta: Meta, children: list[Any]) -> ast.Union:
        return ast.Union(
            queries=tuple(children[::2]), all_=tuple(children[1::2]), span=span_of(meta)
        )

    def union_op(self, meta: Meta, children: list[Token | None]) -> bool:
        return children[0] is not None

    # ------------------------------------------------------------ SELECT

    def select(self, meta: Meta, children: list[Any]) -> ast.Select:
        items, into, source, clauses, match, where, group_by, having = children
        condition, late_applies = where if where is not None else (None, ())
        return ast.Select(
            items=items,
            into=str(into) if into is not None else None,
            into_span=span_of(into) if into is not None else None,
            source=source,
            clauses=clauses + late_applies,
            match_recognize=match,
            where=condition,
            group_by=group_by or (),
            having=having,
            span=span_of(meta),
        )

    def select_items(
        self, meta: Meta, children: list[ast.SelectItem]
    ) -> tuple[ast.SelectItem, ...]:
        return tuple(children)

    def star_item(self, meta: Meta, children: list[ast.Star]) -> ast.SelectItem:
        return ast.SelectItem(expr=children[0], span=span_of(meta))

    def aliased_item(self, meta: Meta, children: list[Any]) -> ast.SelectItem:
        expr, alias = children
        return ast.SelectItem(expr=expr, alias=_alias_text(alias), span=span_of(meta))

    def assigned_item(self, meta: Meta, children: list[Any]) -> ast.SelectItem:
        alias, expr = children
        return ast.SelectItem(expr=expr, alias=str(alias), span=span_of(meta))

    def select_item(self, meta: Meta, children: list[ast.Expr]) -> ast.SelectItem:
        return ast.SelectItem(expr=children[0], span=span_of(meta))

    def star(self, meta: Meta, children: list[Any]) -> ast.Star:
        qualifier = next((child for child in children if isinstance(child, tuple)), ())
        return ast.Star(qualifier=tuple(str(part) for part in qualifier), span=span_of(meta))

    def alias(self, meta: Meta, children: list[Token]) -> Token:
        return children[0]

    def into(self, meta: Meta, children: list[Token]) -> Token:
        return children[0]

    def source(self, meta: Meta, children: list[Any]) -> ast.Source:
        name, alias, timestamp_by, partition = children
        return _make_source(meta, name, alias, timestamp_by, partition)

    def source_partition_first(self, meta: Meta, children: list[Any]) -> ast.Source:
        name, alias, partition, timestamp_by = children
        return _make_source(meta, name, alias, timestamp_by, partition)

    def join_source(self, meta: Meta, children: list[Any]) -> ast.Source:
        name, into_schema, alias, timestamp_by, partition = children
        source = _make_source(meta, name, alias, timestamp_by, partition)
        return dataclasses.replace(source, into_schema=into_schema)

    def into_schema(self, meta: Meta, children: list[ast.ColumnDef]) -> tuple[ast.ColumnDef, ...]:
        return tuple(children)

    def timestamp_by(self, meta: Meta, children: list[Any]) -> ast.TimestampBy:
        expr, over = children
        return ast.TimestampBy(expr=expr, over=over or (), span=span_of(meta))

    def timestamp_over(self, meta: Meta, children: list[tuple[Token, ...]]) -> tuple[ast.Expr, ...]:
        return tuple(_column_ref(path) for path in children)

    def source_partition(
        self, meta: Meta, children: list[Any]
    ) -> tuple[tuple[ast.Expr, ...], int | None]:
        keys, shards = children
        return keys, int(shards) if shards is not None else None

    def partition_by(self, meta: Meta, children: list[ast.Expr]) -> tuple[ast.Expr, ...]:
        return tuple(children)

    def clauses(
        self, meta: Meta, children: list[ast.Join | ast.Apply]
    ) -> tuple[ast.Join | ast.Apply, ...]:
        return tuple(children)

    def inner_join(self, meta: Meta, children: list[Any]) -> ast.Join:
        return ast.Join(kind="inner", source=children[-2], on=children[-1], span=span_of(meta))

    def left_join(self, meta: Meta, children: list[Any]) -> ast.Join:
        return ast.Join(kind="left", source=children[-2], on=children[-1], span=span_of(meta))

    def apply(self, meta: Meta, children: list[Any]) -> ast.Apply:
        kind, call, alias = children
        return ast.Apply(kind=kind.type.lower(), call=call, alias=str(alias), span=span_of(meta))

    def where(self, meta: Meta, children: list[Any]) -> tuple[ast.Expr, tuple[ast.Apply, ...]]:
        condition, *applies = children
        return condition, tuple(dataclasses.replace(apply, after_where=True) for apply in applies)

    def group_by(self, meta: Meta, children: list[ast.Expr]) -> tuple[ast.Expr, ...]:
        return tuple(children)

    def having(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return children[0]

    # ------------------------------------------------------------ MATCH_RECOGNIZE

    def match_recognize(self, meta: Meta, children: list[Any]) -> ast.MatchRecognize:
        limit, partition, measures, _after_match, pattern, defines, alias = children
        return ast.MatchRecognize(
            limit_duration=limit,
            partition_by=partition or (),
            measures=measures,
            pattern=pattern,
            define=defines,
            alias=str(alias),
            span=span_of(meta),
        )

    def measures(self, meta: Meta, children: list[ast.SelectItem]) -> tuple[ast.SelectItem, ...]:
        return tuple(children)

    def measure(self, meta: Meta, children: list[Any]) -> ast.SelectItem:
        expr, alias = children
        return ast.SelectItem(expr=expr, alias=str(alias), span=span_of(meta))

    def after_match(self, meta: Meta, children: list[Any]) -> None:
        return None

    def pattern(self, meta: Meta, children: list[str]) -> str:
        return " | ".join(children)

    def pattern_seq(self, meta: Meta, children: list[str]) -> str:
        return " ".join(children)

    def pattern_var(self, meta: Meta, children: list[Token | None]) -> str:
        name, quantifier = children
        return quote_identifier(str(name)) + (quantifier or "")

    def pattern_group(self, meta: Meta, children: list[Any]) -> str:
        inner, quantifier = children
        return f"({inner}){quantifier or ''}"

    def defines(
        self, meta: Meta, children: list[tuple[str, ast.Expr]]
    ) -> tuple[tuple[str, ast.Expr], ...]:
        return tuple(children)

    def define(self, meta: Meta, children: list[Any]) -> tuple[str, ast.Expr]:
        name, expr = children
        return str(name), expr

    # ------------------------------------------------------------ expressions

    def binary(self, meta: Meta, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return ast.Binary(op=_operator(op), left=left, right=right, span=span_of(meta))

    def unary(self, meta: Meta, children: list[Any]) -> ast.Unary:
        op, operand = children
        return ast.Unary(op=_operator(op), operand=operand, span=span_of(meta))

    def like(self, meta: Meta, children: list[Any]) -> ast.Like:
        expr, negated, pattern = children
        return ast.Like(expr=expr, pattern=pattern, negated=negated is not None, span=span_of(meta))

    def between(self, meta: Meta, children: list[Any]) -> ast.Between:
        expr, negated, low, _and, high = children
        return ast.Between(
            expr=expr, low=low, high=high, negated=negated is not None, span=span_of(meta)
        )

    def in_list(self, meta: Meta, children: list[Any]) -> ast.InList:
        expr, negated, *items = children
        return ast.InList(
            expr=expr, items=tuple(items), negated=negated is not None, span=span_of(meta)
        )

    def is_null(self, meta: Meta, children: list[Any]) -> ast.IsNull:
        return ast.IsNull(expr=children[0], negated=children[1] is not None, span=span_of(meta))

    def field_access(self, meta: Meta, children: list[Any]) -> ast.FieldAccess:
        expr, name = children
        return ast.FieldAccess(expr=expr, name=str(name), span=span_of(meta))

    def column_ref(self, meta: Meta, children: list[tuple[Token, ...]]) -> ast.Expr:
        return _column_ref(children[0])

    def path(self, meta: Meta, children: list[Any]) -> tuple[Token, ...]:
        if len(children) == 1:
            return (children[0],)
        prefix, name = children
        return (*prefix, name)

    def literal(self, meta: Meta, children: list[Token]) -> ast.Literal:
        token = children[0]
        value, kind = _LITERALS[token.type](token)
        return ast.Literal(value=value, kind=kind, span=span_of(token))

    def case(self, meta: Meta, children: list[Any]) -> ast.Case:
        operand, *whens, else_ = children
        return ast.Case(operand=operand, whens=tuple(whens), else_=else_, span=span_of(meta))

    def case_when(self, meta: Meta, children: list[ast.Expr]) -> tuple[ast.Expr, ast.Expr]:
        condition, result = children
        return condition, result

    def cast(self, meta: Meta, children: list[Any]) -> ast.Cast:
        keyword, expr, type_name = children
        return ast.Cast(
            expr=expr, type_name=type_name, try_=keyword.type == "TRY_CAST", span=span_of(meta)
        )

    def function_call(self, meta: Meta, children: list[Any]) -> ast.FunctionCall:
        callee, call_args, over = children
        namespace, name = _function_name(callee)
        call_args = call_args or _CallArgs()
        return ast.FunctionCall(
            name=name,
            args=call_args.args,
            namespace=namespace,
            distinct=call_args.distinct,
            star=call_args.star,
            over=over,
            span=span_of(meta),
        )

    def call_args(self, meta: Meta, children: list[Any]) -> _CallArgs:
        if isinstance(children[0], Token) and children[0].type == "STAR":
            return _CallArgs(star=True)
        modifier, *args = children
        distinct = modifier is not None and modifier.type == "DISTINCT"
        return _CallArgs(args=tuple(args), distinct=distinct)

    def over(self, meta: Meta, children: list[Any]) -> ast.Over:
        partition, order, limit, when = children
        return ast.Over(
            partition_by=partition or (),
            limit_duration=limit,
            when=when,
            order_by=order or (),
            span=span_of(meta),
        )

    def order_by(self, meta: Meta, children: list[ast.OrderItem]) -> tuple[ast.OrderItem, ...]:
        return tuple(children)

    def order_item(self, meta: Meta, children: list[Any]) -> ast.OrderItem:
        expr, direction = children
        descending = direction is not None and direction.type == "DESC"
        return ast.OrderItem(expr=expr, descending=descending, span=span_of(meta))

    def limit_duration(self, meta: Meta, children: list[Token]) -> tuple[str, int]:
        unit, size = children
        return str(unit), int(size)

    def over_when(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return children[0]


def _operator(token: Token) -> str:
    text = str(token)
    return text.upper() if text.upper() in _WORD_OPERATORS else text


def _column_ref(path: Sequence[Token]) -> ast.Expr:
    """A dotted name; ``System.Timestamp`` written without parentheses is the function."""
    span = span_of(path[0]).merge(span_of(path[-1]))
    parts = tuple(str(part) for part in path)
    if tuple(part.lower() for part in parts) == ("system", "timestamp"):
        return ast.FunctionCall(name=parts[1], namespace=parts[0], span=span)
    return ast.ColumnRef(parts=parts, span=span)


def _function_name(callee: tuple[Token, ...] | Token) -> tuple[str | None, str]:
    """Split ``udf.name`` / ``System.Timestamp`` / ``LEFT`` into (namespace, name)."""
    if isinstance(callee, Token):
        return None, str(callee)
    if len(callee) == 1:
        return None, str(callee[0])
    if len(callee) == len(("namespace", "name")):
        return str(callee[0]), str(callee[1])
    dotted = ".".join(str(part) for part in callee)
    msg = (
        f"function name '{dotted}' has more than one prefix; expected name(...) or prefix.name(...)"
    )
    raise AsaqlSyntaxError(msg, span=span_of(callee[0]).merge(span_of(callee[-1])))


def _make_source(
    meta: Meta,
    name: Token,
    alias: Token | None,
    timestamp_by: ast.TimestampBy | None,
    partition: tuple[tuple[ast.Expr, ...], int | None] | None,
) -> ast.Source:
    keys, shards = partition if partition is not None else ((), None)
    return ast.Source(
        name=str(name),
        alias=str(alias) if alias is not None else None,
        timestamp_by=timestamp_by,
        partition_by=keys,
        partition_into=shards,
        span=span_of(meta),
    )
