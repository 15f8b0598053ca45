"""Front-end mechanisms pinned by the stateless/errors audit (behaviour lives in case folders).

* reserved words after a dot are field names (``e.end``), and print back bracketed;
* compile and runtime errors name the line and column of the offending text, also when the
  query spans several lines (asa-language.md section 12: "Messages carry line/column");
* UNION checks point at the SELECT that breaks the rule;
* CASE takes the highest-precedence type of its branches even when a batch only meets the
  bigint branch (the row-by-row variant of the case folder caught this).
"""

from __future__ import annotations

import pytest

import asaql
from asaql.sql import ast
from asaql.sql.parser import parse, parse_expression
from asaql.sql.printer import to_sql


def _compile(query: str, rows: list[dict[str, object]] | None = None, *, strict: bool = False) -> asaql.Job:
    session = asaql.Session(asaql.Options(strict=strict))
    session.add_input("src", rows or [{"k": "a", "x": 1}])
    return session.compile(query)


@pytest.mark.parametrize(
    ("text", "parts"), [("e.end", ("e", "end")), ("e.from.in", ("e", "from", "in")), ("src.e.Select", ("src", "e", "Select"))]
)
def test_reserved_word_after_dot_is_a_field_name(text: str, parts: tuple[str, ...]) -> None:
    expr = parse_expression(text)
    assert isinstance(expr, ast.ColumnRef) and expr.parts == parts


def test_reserved_word_after_a_call_is_a_field_name() -> None:
    expr = parse_expression("GetArrayElement(a, 0).end")
    assert isinstance(expr, ast.FieldAccess) and expr.name == "end"


def test_reserved_word_member_prints_bracketed_and_round_trips() -> None:
    printed = to_sql(parse("SELECT e.end FROM src WHERE e.in IS NULL"))
    assert "e.[end]" in printed and "e.[in]" in printed
    assert to_sql(parse(printed)) == printed


def test_reserved_word_alone_is_still_rejected() -> None:
    with pytest.raises(asaql.AsaqlSyntaxError):
        parse("SELECT end FROM src")


def test_runtime_cast_error_names_line_and_column() -> None:
    query = "SELECT k,\n       CAST(code AS bigint) AS n\nFROM src"
    job = _compile(query, [{"k": "a", "code": "x1"}])
    with pytest.raises(asaql.ExecutionError) as info:
        job.run()
    assert (info.value.span.line, info.value.span.column) == (2, 8)
    assert info.value.code == "cast_failed"
    assert "2 |        CAST(code AS bigint)" in info.value.render(query)


def test_compile_error_on_later_line_names_it() -> None:
    query = "SELECT k\nFROM src\nGROUP BY k"
    with pytest.raises(asaql.BindError) as info:
        _compile(query)
    assert info.value.code == "window_required"
    assert info.value.span.line == 3


def test_union_width_points_at_the_wider_select() -> None:
    query = "SELECT k FROM src\nUNION\nSELECT k, x FROM src"
    with pytest.raises(asaql.BindError) as info:
        _compile(query)
    assert info.value.code == "union_width"
    assert (info.value.span.line, info.value.span.column) == (3, 1)


def test_union_with_two_into_is_an_error() -> None:
    with pytest.raises(asaql.BindError) as info:
        _compile("SELECT k INTO a FROM src UNION SELECT k INTO b FROM src")
    assert info.value.code == "union_into"


def test_case_float_branch_types_rows_taking_the_bigint_branch() -> None:
    job = _compile(
        "SELECT GetType(CASE WHEN x > 0 THEN 1 ELSE 0.5 END) AS t, CASE WHEN x > 0 THEN 1 ELSE 0.5 END AS v FROM src",
        [{"x": 1}],
    )
    assert job.run().rows() == [{"t": "float", "v": 1.0}]


def test_coalesce_keeps_the_type_of_the_chosen_argument() -> None:
    job = _compile("SELECT GetType(COALESCE(x, 0.5)) AS t FROM src", [{"x": 1}])
    assert job.run().rows() == [{"t": "bigint"}]


def test_table_function_outside_apply_says_apply() -> None:
    with pytest.raises(asaql.BindError) as info:
        _compile("SELECT GetRecordProperties(r) AS p FROM src")
    assert info.value.code == "table_function_misplaced"
    assert "APPLY" in info.value.message


def test_strict_mode_rejects_non_asa_type_names_and_does_not_suggest_extensions() -> None:
    with pytest.raises(asaql.BindError) as info:
        _compile("SELECT CAST(x AS int) AS y FROM src", strict=True)
    assert info.value.code == "unknown_type"
    with pytest.raises(asaql.BindError) as info:
        _compile("SELECT GETUTCDATE() AS now FROM src", strict=True)
    assert "GETUTCDATE'?" not in (info.value.help or "")
    assert "System.Timestamp()" in (info.value.help or "")


def test_lenient_mode_accepts_non_asa_type_names_with_a_warning() -> None:
    session = asaql.Session()
    session.add_input("src", [{"x": 1}])
    diagnostics = session.check("SELECT CAST(x AS int) AS y FROM src")
    assert any(d.code == "extension" and "INT" in d.message for d in diagnostics)


def test_shard_count_must_exceed_one() -> None:
    with pytest.raises(asaql.BindError) as info:
        _compile("SELECT k FROM src PARTITION BY k INTO 1")
    assert info.value.code == "bad_shard_count"


def test_select_alias_in_where_is_warned_about() -> None:
    session = asaql.Session()
    session.add_input("src", [{"x": 1}])
    warned = session.check("SELECT x * 2 AS d FROM src WHERE d > 1")
    # (the input's fields are known, so 'd' is also reported as an unknown field)
    assert "alias_in_where" in [d.code for d in warned if d.severity == "warning"]
    same_field = session.check("SELECT CAST(x AS float) AS x FROM src WHERE x > 1")
    assert not [d for d in same_field if d.code == "alias_in_where"]
