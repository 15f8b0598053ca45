"""Parser stage: text -> AST, AST -> canonical text, and syntax errors.

What this pins:
- every stanza of tests/parse/identity.asaql and every conformance query parses, and
  parse(to_sql(parse(q))) == parse(q) (spans are excluded from AST equality);
- every stanza of tests/parse/invalid.asaql raises AsaqlSyntaxError with a known position
  and, where the stanza says `-- expect: <text>`, a message containing that text;
- the AST shape of the constructs that are easy to get wrong (precedence, BETWEEN ... AND
  inside AND, datepart arguments, OVER clauses, brackets, the seed extensions);
- random expression trees survive to_sql -> parse unchanged (hypothesis).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asaql.errors import AsaqlSyntaxError
from asaql.sql import ast
from asaql.sql.parser import parse, parse_expression
from asaql.sql.printer import to_sql

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "parse"
CONFORMANCE = REPO.parent / "shared" / "conformance" / "cases"
_EXPECT = re.compile(r"--\s*expect:\s*(.*\S)")


@dataclass(frozen=True)
class Stanza:
    line: int
    text: str
    expect: str | None


def _stanzas(path: Path) -> list[Stanza]:
    """Blocks separated by blank lines; blocks made only of comments are headers, skipped."""
    stanzas: list[Stanza] = []
    block: list[str] = []
    start = 1
    for number, line in enumerate([*path.read_text().splitlines(), ""], start=1):
        if line.strip():
            if not block:
                start = number
            block.append(line)
            continue
        if block and not all(row.lstrip().startswith("--") for row in block):
            match = _EXPECT.match(block[0])
            stanzas.append(Stanza(start, "\n".join(block), match.group(1) if match else None))
        block = []
    return stanzas


def _conformance_queries() -> list[Path]:
    return sorted(CONFORMANCE.glob("*/query.asaql")) if CONFORMANCE.is_dir() else []


def assert_round_trip(text: str) -> ast.Script:
    tree = parse(text)
    printed = to_sql(tree)
    assert parse(printed) == tree, printed
    assert to_sql(parse(printed)) == printed
    return tree


# ---------------------------------------------------------------- data-driven


@pytest.mark.parametrize(
    "stanza", _stanzas(FIXTURES / "identity.asaql"), ids=lambda s: f"identity:{s.line}"
)
def test_identity_stanza_round_trips(stanza: Stanza) -> None:
    assert_round_trip(stanza.text)


@pytest.mark.parametrize(
    "stanza", _stanzas(FIXTURES / "invalid.asaql"), ids=lambda s: f"invalid:{s.line}"
)
def test_invalid_stanza_is_rejected(stanza: Stanza) -> None:
    with pytest.raises(AsaqlSyntaxError) as caught:
        parse(stanza.text)
    assert caught.value.span.is_known
    assert caught.value.span.line >= 1 and caught.value.span.column >= 1
    if stanza.expect is not None:
        assert stanza.expect in caught.value.message


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="../shared/conformance not present")
@pytest.mark.parametrize("path", _conformance_queries(), ids=lambda p: p.parent.name)
def test_conformance_query_parses_and_round_trips(path: Path) -> None:
    assert_round_trip(path.read_text())


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="../shared/conformance not present")
def test_all_conformance_queries_are_collected() -> None:
    assert len(_conformance_queries()) >= 44


# ---------------------------------------------------------------- AST shape


def _select(text: str) -> ast.Select:
    statement = parse(text).statements[0]
    assert isinstance(statement, ast.Select)
    return statement


def col(*parts: str) -> ast.ColumnRef:
    return ast.ColumnRef(parts=parts)


def lit(value: object) -> ast.Literal:
    kinds = {int: "integer", float: "float", str: "string", type(None): "null"}
    return ast.Literal(value=value, kind=kinds[type(value)])


def test_and_binds_tighter_than_or_and_not_looser_than_comparison() -> None:
    expr = parse_expression("a = 1 OR b = 2 AND NOT c = 3")
    assert expr == ast.Binary(
        op="OR",
        left=ast.Binary(op="=", left=col("a"), right=lit(1)),
        right=ast.Binary(
            op="AND",
            left=ast.Binary(op="=", left=col("b"), right=lit(2)),
            right=ast.Unary(op="NOT", operand=ast.Binary(op="=", left=col("c"), right=lit(3))),
        ),
    )


def test_arithmetic_and_bitwise_tiers() -> None:
    expr = parse_expression("a | b & c + d * -e")
    assert expr == ast.Binary(
        op="|",
        left=col("a"),
        right=ast.Binary(
            op="&",
            left=col("b"),
            right=ast.Binary(
                op="+",
                left=col("c"),
                right=ast.Binary(op="*", left=col("d"), right=ast.Unary(op="-", operand=col("e"))),
            ),
        ),
    )


def test_between_and_inside_and() -> None:
    expr = parse_expression("x BETWEEN 1 AND 2 AND y NOT BETWEEN 3 AND 4")
    assert expr == ast.Binary(
        op="AND",
        left=ast.Between(expr=col("x"), low=lit(1), high=lit(2)),
        right=ast.Between(expr=col("y"), low=lit(3), high=lit(4), negated=True),
    )


def test_literal_kinds() -> None:
    items = _select("SELECT 7, 2.5, 1e3, 'it''s', \"dq\", NULL FROM t").items
    assert [item.expr for item in items] == [
        lit(7),
        lit(2.5),
        lit(1000.0),
        lit("it's"),
        lit("dq"),
        lit(None),
    ]


def test_datepart_arguments_are_one_part_column_refs() -> None:
    call = parse_expression("TumblingWindow(Duration(hour, 1), Offset(millisecond, -1))")
    assert call == ast.FunctionCall(
        name="TumblingWindow",
        args=(
            ast.FunctionCall(name="Duration", args=(col("hour"), lit(1))),
            ast.FunctionCall(
                name="Offset", args=(col("millisecond"), ast.Unary(op="-", operand=lit(1)))
            ),
        ),
    )


def test_over_clause_parts() -> None:
    call = parse_expression(
        "LAST(t) OVER (PARTITION BY k, j LIMIT DURATION(hour, 1) WHEN e = 'start')"
    )
    assert isinstance(call, ast.FunctionCall)
    assert call.over == ast.Over(
        partition_by=(col("k"), col("j")),
        limit_duration=("hour", 1),
        when=ast.Binary(op="=", left=col("e"), right=lit("start")),
    )
    ordered = parse_expression("PERCENTILE_CONT(0.9) OVER (ORDER BY ms DESC, n)")
    assert isinstance(ordered, ast.FunctionCall) and ordered.over is not None
    assert ordered.over.order_by == (
        ast.OrderItem(expr=col("ms"), descending=True),
        ast.OrderItem(expr=col("n")),
    )


def test_session_window_over_partition_in_group_by() -> None:
    select = _select(
        "SELECT COUNT(*) FROM t GROUP BY k, SessionWindow(second, 30, 600) OVER (PARTITION BY k)"
    )
    window = select.group_by[1]
    assert isinstance(window, ast.FunctionCall)
    assert window.over == ast.Over(partition_by=(col("k"),))


def test_special_calls() -> None:
    count = parse_expression("COUNT(*)")
    distinct = parse_expression("COUNT(DISTINCT x)")
    assert count == ast.FunctionCall(name="COUNT", star=True)
    assert distinct == ast.FunctionCall(name="COUNT", args=(col("x"),), distinct=True)
    assert parse_expression("udf.score(r)") == ast.FunctionCall(
        name="score", namespace="udf", args=(col("r"),)
    )
    bare = ast.FunctionCall(name="Timestamp", namespace="System")
    assert parse_expression("System.Timestamp") == bare
    assert parse_expression("System.Timestamp()") == bare
    assert parse_expression("System.Window().Id") == ast.FieldAccess(
        expr=ast.FunctionCall(name="Window", namespace="System"), name="Id"
    )
    assert parse_expression("LEFT(s, 2)") == ast.FunctionCall(name="LEFT", args=(col("s"), lit(2)))


def test_brackets_are_stripped_and_escaped() -> None:
    select = _select(
        "SELECT [user], a.[x y], [a]]b] AS [Double Count] FROM [in put] TIMESTAMP BY [time]"
    )
    assert [item.expr for item in select.items] == [col("user"), col("a", "x y"), col("a]b")]
    assert select.items[2].alias == "Double Count"
    assert select.source.name == "in put"
    assert "[Double Count]" in to_sql(select) and "[a]]b]" in to_sql(select)


def test_alias_spellings() -> None:
    select = _select("SELECT a b, c AS 'd', e AS \"f g\", h = i + 1, t.*, * FROM t")
    assert [item.alias for item in select.items] == ["b", "d", "f g", "h", None, None]
    assert select.items[3].expr == ast.Binary(op="+", left=col("i"), right=lit(1))
    assert select.items[4].expr == ast.Star(qualifier=("t",))


def test_source_options_in_both_orders() -> None:
    first = _select(
        "SELECT a FROM t AS x TIMESTAMP BY ts OVER k PARTITION BY PartitionId INTO 4"
    ).source
    second = _select(
        "SELECT a FROM t x PARTITION BY PartitionId INTO 4 TIMESTAMP BY ts OVER k"
    ).source
    assert first == second
    assert first.alias == "x" and first.partition_into == 4
    assert first.timestamp_by == ast.TimestampBy(expr=col("ts"), over=(col("k"),))


def test_seed_extension_join_into_schema_and_apply_after_where() -> None:
    select = _select(
        "SELECT a FROM iot JOIN aml INTO (deviceId STRING, t FLOAT) AS x ON iot.d = x.d "
        "WHERE a > 1 CROSS APPLY GetRecordProperties(aml) AS r"
    )
    join, apply = select.clauses
    assert isinstance(join, ast.Join) and join.kind == "inner"
    assert join.source.into_schema == (
        ast.ColumnDef(name="deviceId", type_name="STRING"),
        ast.ColumnDef(name="t", type_name="FLOAT"),
    )
    assert join.source.alias == "x"
    assert apply == ast.Apply(
        kind="cross",
        call=ast.FunctionCall(name="GetRecordProperties", args=(col("aml"),)),
        alias="r",
        after_where=True,
    )
    assert select.where == ast.Binary(op=">", left=col("a"), right=lit(1))


def test_joins_and_applies_before_where() -> None:
    select = _select(
        "SELECT a FROM t LEFT OUTER JOIN u ON t.k = u.k OUTER APPLY GetArrayElements(t.a) e"
    )
    join, apply = select.clauses
    assert isinstance(join, ast.Join) and join.kind == "left"
    assert isinstance(apply, ast.Apply) and apply.kind == "outer" and not apply.after_where


def test_match_recognize_pattern_is_normalized() -> None:
    select = _select(
        "SELECT * FROM t MATCH_RECOGNIZE (LIMIT DURATION(minute, 1) PARTITION BY m "
        "MEASURES Last(W.id) AS lastId AFTER MATCH SKIP TO NEXT ROW "
        "PATTERN ( S+  (W|E){2,} D ? ) DEFINE S AS S.c = 'ok', W AS W.c <> 'ok') AS p"
    )
    match = select.match_recognize
    assert match is not None
    assert match.pattern == "S+ (W | E){2,} D?"
    assert match.limit_duration == ("minute", 1)
    assert [name for name, _ in match.define] == ["S", "W"]
    assert match.alias == "p"


def test_statements_follow_each_other() -> None:
    script = parse(
        "CREATE TABLE r (a bigint); WITH s AS (SELECT a FROM r) SELECT a INTO o FROM s SELECT a FROM r"
    )
    kinds = [type(statement) for statement in script.statements]
    assert kinds == [ast.CreateTable, ast.WithBlock, ast.Select, ast.Select]
    assert parse("") == ast.Script(statements=())


def test_union_keeps_all_flags() -> None:
    statement = parse("SELECT a FROM t UNION ALL SELECT a FROM u UNION SELECT a FROM v").statements[
        0
    ]
    assert isinstance(statement, ast.Union)
    assert statement.all_ == (True, False)
    assert len(statement.queries) == 3


def test_keywords_are_case_insensitive() -> None:
    assert parse("select a from t where b between 1 and 2") == parse(
        "SELECT a FROM t WHERE b BETWEEN 1 AND 2"
    )


def test_spans_point_at_the_source_text() -> None:
    text = "SELECT a,\n       udf.f(b) AS c\nFROM t"
    select = _select(text)
    call = select.items[1].expr
    assert (call.span.line, call.span.column) == (2, 8)
    assert text[call.span.start : call.span.end] == "udf.f(b)"
    assert select.into_span is None


def test_select_item_comparison_is_not_read_as_alias() -> None:
    select = ast.Select(
        items=(ast.SelectItem(expr=ast.Binary(op="=", left=col("a"), right=lit(1))),),
        source=ast.Source(name="t"),
    )
    assert parse(to_sql(select)).statements[0] == select


def test_error_span_covers_the_offending_token() -> None:
    text = "SELECT a,\n  b c d\nFROM t"
    with pytest.raises(AsaqlSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert (error.span.line, error.span.column) == (2, 7)
    assert text[error.span.start : error.span.end] == "d"
    assert "missing ','" in error.message
    assert "^" in error.render(text)


def test_error_inside_with_step_is_still_recognized() -> None:
    with pytest.raises(AsaqlSyntaxError, match="trailing ',' before FROM"):
        parse("WITH s AS (SELECT a, FROM t) SELECT a FROM s")


def test_expression_errors() -> None:
    with pytest.raises(AsaqlSyntaxError, match="unexpected end of query, expected an expression"):
        parse_expression("a +")
    with pytest.raises(AsaqlSyntaxError, match=r"expected '\)' or ','"):
        parse_expression("f(a b)")


# ---------------------------------------------------------------- property: print -> parse

_NAME_ALPHABET = "abcxyzABCXYZ_019 ]['.-"
names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True),
    st.sampled_from(["select", "Timestamp", "Duration", "left", "Over", "[x]", "a]b", "a b"]),
    st.text(alphabet=_NAME_ALPHABET, min_size=1, max_size=6),
)
literals = st.one_of(
    st.integers(min_value=0, max_value=10**20).map(lambda v: ast.Literal(value=v, kind="integer")),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(
        lambda v: ast.Literal(value=v, kind="float")
    ),
    st.text(max_size=8).map(lambda v: ast.Literal(value=v, kind="string")),
    st.just(ast.Literal(value=None, kind="null")),
)
column_refs = (
    st.lists(names, min_size=1, max_size=3)
    .filter(lambda parts: [p.lower() for p in parts] != ["system", "timestamp"])
    .map(lambda parts: ast.ColumnRef(parts=tuple(parts)))
)
_BINARY_OPS = [
    "+",
    "-",
    "*",
    "/",
    "%",
    "=",
    "<>",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "!<",
    "!>",
    "AND",
    "OR",
    "&",
    "|",
    "^",
]
_TYPES = ["bigint", "float", "nvarchar(max)", "datetime", "record", "array", "bit", "STRING"]


def _over(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Over]:
    return st.builds(
        ast.Over,
        partition_by=st.lists(children, max_size=2).map(tuple),
        limit_duration=st.none() | st.tuples(names, st.integers(0, 10**6)),
        when=st.none() | children,
        order_by=st.lists(
            st.builds(ast.OrderItem, expr=children, descending=st.booleans()), max_size=2
        ).map(tuple),
    )


def _calls(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.FunctionCall]:
    plain = st.builds(
        ast.FunctionCall,
        name=names,
        args=st.lists(children, max_size=3).map(tuple),
        namespace=st.none() | st.sampled_from(["udf", "uda", "System"]) | names,
        over=st.none() | _over(children),
    )
    distinct = st.builds(
        ast.FunctionCall, name=names, args=st.tuples(children), distinct=st.just(True)
    )
    star = st.builds(ast.FunctionCall, name=names, star=st.just(True))
    return st.one_of(plain, distinct, star)


def _compound(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    return st.one_of(
        st.builds(ast.Unary, op=st.sampled_from(["-", "+", "~", "NOT"]), operand=children),
        st.builds(ast.Binary, op=st.sampled_from(_BINARY_OPS), left=children, right=children),
        st.builds(ast.Like, expr=children, pattern=children, negated=st.booleans()),
        st.builds(ast.Between, expr=children, low=children, high=children, negated=st.booleans()),
        st.builds(
            ast.InList,
            expr=children,
            items=st.lists(children, min_size=1, max_size=3).map(tuple),
            negated=st.booleans(),
        ),
        st.builds(ast.IsNull, expr=children, negated=st.booleans()),
        st.builds(
            ast.Case,
            operand=st.none() | children,
            whens=st.lists(st.tuples(children, children), min_size=1, max_size=2).map(tuple),
            else_=st.none() | children,
        ),
        st.builds(ast.Cast, expr=children, type_name=st.sampled_from(_TYPES), try_=st.booleans()),
        _calls(children),
        st.builds(ast.FieldAccess, expr=children, name=names),
    )


expressions: st.SearchStrategy[ast.Expr] = st.deferred(
    lambda: st.one_of(literals, column_refs, _compound(expressions))
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_random_expressions_survive_print_and_parse(expr: ast.Expr) -> None:
    printed = to_sql(expr)
    assert parse_expression(printed) == expr, printed
