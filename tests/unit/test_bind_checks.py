"""Compile-time checks of the binder that used to fail only at run time, or with the wrong code
(behaviour lives in tests/cases/errors-audit/ea-*; these pin the positions and messages):

* a datepart (DATEADD, DATEDIFF, DATEPART, DATENAME, ISFIRST) and a window unit must be known
  words, checked before any event is read, with a "did you mean";
* reference data takes no TIMESTAMP BY, and a reference JOIN no DATEDIFF time bound
  (asa-language.md sections 3 and 5);
* an aggregate outside SELECT and HAVING is misplaced, not "missing a window" (section 7).
"""

from __future__ import annotations

import pytest

import asaql

TS = "2024-01-01T00:00:00Z"


def _session() -> asaql.Session:
    session = asaql.Session(asaql.Options())
    session.add_input("src", [{"k": "a", "x": 1, "a": TS, "b": TS, "ts": TS}])
    session.add_input("s", [{"k": "a", "ts": TS}])
    session.add_reference("ref", [{"k": "a", "name": "A", "ts": TS}])
    return session


def _error(query: str) -> asaql.BindError:
    with pytest.raises(asaql.BindError) as info:
        _session().compile(query)
    return info.value


def _points_at(error: asaql.BindError, query: str, text: str) -> None:
    """The error's span is the last occurrence of ``text`` in ``query``."""
    start = query.rindex(text)
    assert (error.span.start, error.span.end) == (start, start + len(text)), error.render(query)


# ------------------------------------------------------------------ dateparts


@pytest.mark.parametrize("query", [
    "SELECT DATEDIFF(foo, a, b) AS v FROM src",
    "SELECT DATEADD(foo, 1, a) AS v FROM src",
    "SELECT DATEPART(foo, a) AS v FROM src",
    "SELECT DATENAME(foo, a) AS v FROM src",
    "SELECT DATEPART('foo', a) AS v FROM src",
    "SELECT k FROM src WHERE DATEPART(foo, a) = 1",
])
def test_unknown_datepart_is_a_compile_error(query: str) -> None:
    error = _error(query)
    assert error.code == "bad_datepart"
    _points_at(error, query, "'foo'" if "'foo'" in query else "foo")
    assert "dateparts are year (yy, yyyy)" in (error.help or "")


def test_misspelt_datepart_suggests_the_closest() -> None:
    query = "SELECT k,\n  DATEDIFF(minit, a, b) AS v\nFROM src"
    error = _error(query)
    assert error.code == "bad_datepart"
    assert (error.span.line, error.span.column) == (2, 12)
    assert error.help == "did you mean 'minute'?"


@pytest.mark.parametrize("word", ["MINUTE", "mi", "n", "yyyy", "dw", "mcs", "'hour'"])
def test_known_dateparts_and_abbreviations_still_compile(word: str) -> None:
    _session().compile(f"SELECT DATEPART({word}, a) AS v, DATEADD({word}, 1, a) AS w FROM src")


def test_isfirst_unit_goes_through_the_same_check() -> None:
    query = "SELECT k FROM src TIMESTAMP BY ts WHERE IsFirst(minit, 10) OVER (PARTITION BY k) = 1"
    error = _error(query)
    assert error.code == "bad_datepart"
    _points_at(error, query, "minit")


@pytest.mark.parametrize("window", ["TumblingWindow(secnd, 10)", "TumblingWindow(Duration(secnd, 10))",
                                    "HoppingWindow(secnd, 10, 5)"])
def test_unknown_window_unit_names_the_word(window: str) -> None:
    query = f"SELECT COUNT(*) AS n FROM src TIMESTAMP BY ts GROUP BY {window}"
    error = _error(query)
    assert error.code == "bad_window"
    _points_at(error, query, "secnd")
    assert error.help == "did you mean 'second'?"


# ------------------------------------------------------------------ reference data


def test_timestamp_by_on_reference_data_points_at_the_clause() -> None:
    query = "SELECT s.k FROM s TIMESTAMP BY ts JOIN ref r TIMESTAMP BY ts ON s.k = r.k"
    error = _error(query)
    assert error.code == "timestamp_by_reference"
    assert error.span.start == query.index("TIMESTAMP BY ts ON")
    assert "reference data" in str(error)


def test_timestamp_by_on_reference_data_in_from() -> None:
    query = "SELECT k FROM ref TIMESTAMP BY ts"
    assert _error(query).code == "timestamp_by_reference"


def test_reference_join_with_datediff_over_the_alias_is_rejected() -> None:
    query = "SELECT s.k FROM s TIMESTAMP BY ts JOIN ref r ON s.k = r.k AND DATEDIFF(minute, s, r) BETWEEN 0 AND 5"
    error = _error(query)
    assert error.code == "reference_join_time_bound"
    _points_at(error, query, "DATEDIFF(minute, s, r)")
    assert "no event time" in str(error)


def test_reference_join_datediff_over_fields_is_fine() -> None:
    query = ("SELECT s.k, r.name FROM s TIMESTAMP BY ts JOIN ref r "
             "ON s.k = r.k AND DATEDIFF(minute, r.ts, s.ts) BETWEEN 0 AND 5")
    rows = _session().compile(query).run()["output"].to_pylist()
    assert [(row["k"], row["name"]) for row in rows] == [("a", "A")]


# ------------------------------------------------------------------ aggregate placement


@pytest.mark.parametrize(("query", "call", "clause"), [
    ("SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY ts WHERE COUNT(*) > 1 GROUP BY k, TumblingWindow(second, 10)",
     "COUNT(*)", "WHERE"),
    ("SELECT COUNT(*) AS n FROM s TIMESTAMP BY ts WHERE COUNT(*) > 1", "COUNT(*)", "WHERE"),
    ("SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY ts GROUP BY k, SUM(x), TumblingWindow(second, 10)",
     "SUM(x)", "GROUP BY"),
    ("SELECT s.k FROM s TIMESTAMP BY ts JOIN ref r ON s.k = r.k AND MAX(r.k) = 'a'", "MAX(r.k)", "JOIN ... ON"),
    (("SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY ts WHERE k = 'a' OR AVG(x) > 1 "
      "GROUP BY k, TumblingWindow(second, 10)"), "AVG(x)", "WHERE"),
])
def test_aggregate_outside_select_and_having(query: str, call: str, clause: str) -> None:
    error = _error(query)
    assert error.code == "aggregate_not_allowed"
    assert f"not allowed in {clause}: aggregates are allowed only in SELECT and HAVING" in str(error)
    _points_at(error, query, call)


def test_aggregate_in_select_without_window_still_needs_a_window() -> None:
    assert _error("SELECT COUNT(*) AS n FROM s TIMESTAMP BY ts").code == "window_required"


def test_aggregate_in_having_is_allowed() -> None:
    query = "SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY ts GROUP BY k, TumblingWindow(second, 10) HAVING COUNT(*) > 0"
    _session().compile(query)


def test_join_of_an_undeclared_input_names_it() -> None:
    # an unknown JOIN source is reported as such, not as a stream join missing its bound
    import asaql

    session = asaql.Session()
    session.add_input("iot", [{"k": 1}])
    with pytest.raises(asaql.QueryError) as info:
        session.compile("SELECT i.k FROM iot i JOIN ref r ON i.k = r.k")
    assert info.value.code == "unknown_input" and "'ref'" in str(info.value)


def test_check_reports_the_errors_of_every_statement() -> None:
    # asaql check binds every statement: one error per broken statement, none for the
    # statements that read a broken WITH step, the good statements' warnings kept
    import asaql

    session = asaql.Session()
    session.add_input("s", [{"a": 1, "b": "2024-05-14T10:00:00Z"}])
    text = (
        "WITH broken AS (SELECT a, COUNT(*) AS n FROM s GROUP BY a)\n"
        "SELECT n INTO o1 FROM broken\n"
        "SELECT DATEDIFF(minit, b, b) AS d INTO o2 FROM s\n"
        "SELECT x * 2 AS y INTO o3 FROM s WHERE y > 1\n"
    )
    diagnostics = session.check(text)
    errors = [(d.code, d.span.line) for d in diagnostics if d.severity == "error"]
    assert errors == [("window_required", 1), ("bad_datepart", 3)]
    assert "alias_in_where" in [d.code for d in diagnostics if d.severity == "warning"]
    with pytest.raises(asaql.QueryError) as info:  # compile still stops at the first
        session.compile(text)
    assert info.value.code == "window_required"
