"""Print any AST node back as canonical SAQL text.

The output is what the parser accepts and means the same tree: ``parse(to_sql(parse(q)))``
equals ``parse(q)`` (spans aside). Canonical form: keywords upper case, one clause per line,
``AS`` before every alias, single-quoted strings, identifiers bracketed only when they must be
(keywords, spaces, special characters), parentheses only where precedence needs them.

>>> from asaql.sql.parser import parse_expression
>>> to_sql(parse_expression("(a+b)*c or not [order] = 'it''s'"))
"(a + b) * c OR NOT [order] = 'it''s'"
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from lark.lexer import PatternStr

from asaql.errors import InternalError
from asaql.sql import ast
from asaql.sql.grammar import lark_parser

__all__ = ["quote_identifier", "to_sql"]

# A select item written `name = ...` is the T-SQL alias form; a comparison that prints that way
# must be parenthesized to stay a comparison.
_LOOKS_ASSIGNED = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|\[(?:[^\]]|\]\])*\])\s*=")
_INDENT = "    "
_LINE_WIDTH = 100

# Binding strength, loosest first; mirrors the precedence tiers of grammar/asaql.lark.
_OR, _AND, _NOT, _PREDICATE, _BIT_OR, _BIT_AND, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 11)
_BINARY_LEVEL = {
    "OR": _OR,
    "AND": _AND,
    "|": _BIT_OR,
    "^": _BIT_OR,
    "&": _BIT_AND,
    "+": _SUM,
    "-": _SUM,
    "*": _PRODUCT,
    "/": _PRODUCT,
    "%": _PRODUCT,
}


@functools.cache
def _name_pattern() -> re.Pattern[str]:
    """The grammar's NAME terminal: what may be written bare (reserved words excluded)."""
    return re.compile(lark_parser().get_terminal("NAME").pattern.to_regexp())


@functools.cache
def _keywords() -> frozenset[str]:
    """Every keyword of the grammar (upper case), read from its case-insensitive terminals."""
    return frozenset(
        terminal.pattern.value.upper()
        for terminal in lark_parser().terminals
        if isinstance(terminal.pattern, PatternStr) and terminal.pattern.value.isidentifier()
    )


def quote_identifier(name: str) -> str:
    """``deviceId`` stays bare; ``[user]``, ``[value x]``, ``[a]]b]`` are bracketed.

    >>> quote_identifier("count"), quote_identifier("Double Count"), quote_identifier("a]b")
    ('count', '[Double Count]', '[a]]b]')
    """
    if _name_pattern().fullmatch(name) and name.upper() not in _keywords():
        return name
    return _bracket(name)


def _function_name(name: str) -> str:
    """Function names need brackets only for reserved words: ``Duration(...)`` stays bare."""
    return name if _name_pattern().fullmatch(name) else _bracket(name)


def _bracket(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _commas(parts: Iterable[str]) -> str:
    return ", ".join(parts)


def _indent(text: str) -> str:
    return "\n".join(_INDENT + line if line else line for line in text.split("\n"))


# ---------------------------------------------------------------- expressions


def _level(expr: ast.Expr) -> int:
    if isinstance(expr, ast.Binary):
        return _BINARY_LEVEL.get(expr.op.upper(), _PREDICATE)
    if isinstance(expr, ast.Unary):
        return _NOT if expr.op.upper() == "NOT" else _UNARY
    if isinstance(expr, ast.Like | ast.Between | ast.InList | ast.IsNull):
        return _PREDICATE
    return _ATOM


def _operand(expr: ast.Expr, min_level: int) -> str:
    text = to_sql(expr)
    return f"({text})" if _level(expr) < min_level else text


def _literal(node: ast.Literal) -> str:
    if node.kind == "null":
        return "NULL"
    if node.kind == "string":
        return _string(str(node.value))
    return repr(node.value)


def _column_ref(node: ast.ColumnRef) -> str:
    return ".".join(quote_identifier(part) for part in node.parts)


def _star(node: ast.Star) -> str:
    return "".join(quote_identifier(part) + "." for part in node.qualifier) + "*"


def _unary(node: ast.Unary) -> str:
    if node.op.upper() == "NOT":
        return "NOT " + _operand(node.operand, _NOT)
    return node.op + _operand(node.operand, _ATOM)


def _binary(node: ast.Binary) -> str:
    level = _level(node)
    left_min, right_min = (_BIT_OR, _BIT_OR) if level == _PREDICATE else (level, level + 1)
    return f"{_operand(node.left, left_min)} {node.op} {_operand(node.right, right_min)}"


def _not(negated: bool) -> str:
    return "NOT " if negated else ""


def _like(node: ast.Like) -> str:
    left, pattern = _operand(node.expr, _BIT_OR), _operand(node.pattern, _BIT_OR)
    return f"{left} {_not(node.negated)}LIKE {pattern}"


def _between(node: ast.Between) -> str:
    expr, low, high = (_operand(e, _BIT_OR) for e in (node.expr, node.low, node.high))
    return f"{expr} {_not(node.negated)}BETWEEN {low} AND {high}"


def _in_list(node: ast.InList) -> str:
    items = _commas(to_sql(item) for item in node.items)
    return f"{_operand(node.expr, _BIT_OR)} {_not(node.negated)}IN ({items})"


def _is_null(node: ast.IsNull) -> str:
    return f"{_operand(node.expr, _BIT_OR)} IS {_not(node.negated)}NULL"


def _case(node: ast.Case) -> str:
    parts = ["CASE"]
    if node.operand is not None:
        parts.append(to_sql(node.operand))
    parts.extend(f"WHEN {to_sql(cond)} THEN {to_sql(result)}" for cond, result in node.whens)
    if node.else_ is not None:
        parts.append(f"ELSE {to_sql(node.else_)}")
    parts.append("END")
    return " ".join(parts)


def _cast(node: ast.Cast) -> str:
    keyword = "TRY_CAST" if node.try_ else "CAST"
    return f"{keyword}({to_sql(node.expr)} AS {node.type_name})"


def _function_call(node: ast.FunctionCall) -> str:
    name = _function_name(node.name)
    if node.namespace is not None:
        name = f"{quote_identifier(node.namespace)}.{name}"
    if node.star:
        args = "*"
    else:
        args = ("DISTINCT " if node.distinct else "") + _commas(to_sql(a) for a in node.args)
    over = f" {_over(node.over)}" if node.over is not None else ""
    return f"{name}({args}){over}"


def _field_access(node: ast.FieldAccess) -> str:
    base = to_sql(node.expr)
    if not isinstance(node.expr, ast.FunctionCall | ast.FieldAccess):
        base = f"({base})"
    return f"{base}.{quote_identifier(node.name)}"


def _over(node: ast.Over) -> str:
    parts = []
    if node.partition_by:
        parts.append("PARTITION BY " + _commas(to_sql(key) for key in node.partition_by))
    if node.order_by:
        parts.append("ORDER BY " + _commas(_order_item(item) for item in node.order_by))
    if node.limit_duration is not None:
        parts.append(_limit_duration(node.limit_duration))
    if node.when is not None:
        parts.append("WHEN " + to_sql(node.when))
    return f"OVER ({' '.join(parts)})"


def _order_item(node: ast.OrderItem) -> str:
    return to_sql(node.expr) + (" DESC" if node.descending else "")


def _limit_duration(limit: tuple[str, int]) -> str:
    unit, size = limit
    return f"LIMIT DURATION({quote_identifier(unit)}, {size})"


# ---------------------------------------------------------------- clauses and statements


def _select_item(node: ast.SelectItem) -> str:
    text = to_sql(node.expr)
    if _LOOKS_ASSIGNED.match(text):
        text = f"({text})"
    return text if node.alias is None else f"{text} AS {quote_identifier(node.alias)}"


def _timestamp_by(node: ast.TimestampBy) -> str:
    text = "TIMESTAMP BY " + to_sql(node.expr)
    if node.over:
        text += " OVER " + _commas(to_sql(key) for key in node.over)
    return text


def _column_defs(columns: Iterable[ast.ColumnDef]) -> str:
    return _commas(_column_def(column) for column in columns)


def _column_def(node: ast.ColumnDef) -> str:
    return f"{quote_identifier(node.name)} {node.type_name}"


def _source(node: ast.Source) -> str:
    parts = [quote_identifier(node.name)]
    if node.into_schema is not None:
        parts.append(f"INTO ({_column_defs(node.into_schema)})")
    if node.alias is not None:
        parts.append("AS " + quote_identifier(node.alias))
    if node.timestamp_by is not None:
        parts.append(_timestamp_by(node.timestamp_by))
    if node.partition_by:
        parts.append("PARTITION BY " + _commas(to_sql(key) for key in node.partition_by))
        if node.partition_into is not None:
            parts.append(f"INTO {node.partition_into}")
    return " ".join(parts)


def _join(node: ast.Join) -> str:
    keyword = "LEFT JOIN" if node.kind == "left" else "JOIN"
    return f"{keyword} {_source(node.source)} ON {to_sql(node.on)}"


def _apply(node: ast.Apply) -> str:
    keyword = "OUTER APPLY" if node.kind == "outer" else "CROSS APPLY"
    return f"{keyword} {to_sql(node.call)} AS {quote_identifier(node.alias)}"


def _match_recognize(node: ast.MatchRecognize) -> str:
    lines = [_limit_duration(node.limit_duration)]
    if node.partition_by:
        lines.append("PARTITION BY " + _commas(to_sql(key) for key in node.partition_by))
    lines.append("MEASURES " + _commas(_select_item(item) for item in node.measures))
    lines.append("AFTER MATCH SKIP TO NEXT ROW")
    lines.append(f"PATTERN ({node.pattern})")
    defines = (f"{quote_identifier(name)} AS {to_sql(cond)}" for name, cond in node.define)
    lines.append("DEFINE " + _commas(defines))
    body = _indent("\n".join(lines))
    return f"MATCH_RECOGNIZE (\n{body}\n) AS {quote_identifier(node.alias)}"


def _select(node: ast.Select) -> str:
    late = node.where is not None
    items = [_select_item(item) for item in node.items]
    one_line = "SELECT " + _commas(items)
    lines = [one_line if len(one_line) <= _LINE_WIDTH else "SELECT\n" + _indent(",\n".join(items))]
    if node.into is not None:
        lines.append("INTO " + quote_identifier(node.into))
    lines.append("FROM " + _source(node.source))
    lines.extend(to_sql(c) for c in node.clauses if not (late and _is_late_apply(c)))
    if node.match_recognize is not None:
        lines.append(_match_recognize(node.match_recognize))
    if node.where is not None:
        lines.append("WHERE " + to_sql(node.where))
        lines.extend(to_sql(c) for c in node.clauses if _is_late_apply(c))
    if node.group_by:
        lines.append("GROUP BY " + _commas(to_sql(key) for key in node.group_by))
    if node.having is not None:
        lines.append("HAVING " + to_sql(node.having))
    return "\n".join(lines)


def _is_late_apply(clause: ast.Join | ast.Apply) -> bool:
    return isinstance(clause, ast.Apply) and clause.after_where


def _union(node: ast.Union) -> str:
    text = to_sql(node.queries[0])
    for query, all_ in zip(node.queries[1:], node.all_, strict=True):
        text += ("\nUNION ALL\n" if all_ else "\nUNION\n") + to_sql(query)
    return text


def _with_step(node: ast.WithStep) -> str:
    return f"{quote_identifier(node.name)} AS (\n{_indent(to_sql(node.query))}\n)"


def _with_block(node: ast.WithBlock) -> str:
    return "WITH " + ", ".join(_with_step(step) for step in node.steps)


def _create_table(node: ast.CreateTable) -> str:
    columns = ",\n".join(_INDENT + _column_def(column) for column in node.columns)
    return f"CREATE TABLE {quote_identifier(node.name)} (\n{columns}\n)"


def _script(node: ast.Script) -> str:
    """Statements one after another; a blank line between them, none after a WITH block."""
    parts: list[str] = []
    for previous, statement in zip((None, *node.statements), node.statements, strict=False):
        if previous is not None:
            parts.append("\n" if isinstance(previous, ast.WithBlock) else "\n\n")
        parts.append(to_sql(statement))
    return "".join(parts)


_PRINTERS: dict[type, Callable[[Any], str]] = {
    ast.Literal: _literal,
    ast.ColumnRef: _column_ref,
    ast.Star: _star,
    ast.Unary: _unary,
    ast.Binary: _binary,
    ast.Like: _like,
    ast.Between: _between,
    ast.InList: _in_list,
    ast.IsNull: _is_null,
    ast.Case: _case,
    ast.Cast: _cast,
    ast.FunctionCall: _function_call,
    ast.FieldAccess: _field_access,
    ast.Over: _over,
    ast.OrderItem: _order_item,
    ast.SelectItem: _select_item,
    ast.TimestampBy: _timestamp_by,
    ast.ColumnDef: _column_def,
    ast.Source: _source,
    ast.Join: _join,
    ast.Apply: _apply,
    ast.MatchRecognize: _match_recognize,
    ast.Select: _select,
    ast.Union: _union,
    ast.WithStep: _with_step,
    ast.WithBlock: _with_block,
    ast.CreateTable: _create_table,
    ast.Script: _script,
}


def to_sql(node: ast.Node) -> str:
    """Canonical SAQL text for a script, a statement, a clause or an expression.

    Args:
        node: any node of :mod:`asaql.sql.ast`.

    Returns:
        Text that parses back to an equal node.

    >>> from asaql.sql.parser import parse
    >>> print(to_sql(parse("select count(*) n from t timestamp by ts group by k, tumbling(mi, 1)")))
    SELECT count(*) AS n
    FROM t TIMESTAMP BY ts
    GROUP BY k, tumbling(mi, 1)
    """
    printer = _PRINTERS.get(type(node))
    if printer is None:
        msg = f"to_sql: no printer for {type(node).__name__}"
        raise InternalError(msg)
    return printer(node)
