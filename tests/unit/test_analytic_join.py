"""Analytic functions in a statement with joins run over one input's own events, before the
JOIN: the binder puts each call right above the stream input it reads (the FROM input or the
right side of a stream JOIN) and refuses calls that read two inputs or no input."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

import asaql

JOIN = "FROM s TIMESTAMP BY t JOIN r TIMESTAMP BY t ON s.d = r.d AND DATEDIFF(second, s, r) BETWEEN 0 AND 0"


def _ts(second: int) -> str:
    return f"2024-05-14T10:00:{second:02d}Z"


def _session() -> asaql.Session:
    s = asaql.Session()
    s.add_input("s", [{"v": i, "d": i, "t": _ts(i)} for i in range(5)])
    s.add_input("r", [{"w": i, "d": i, "t": _ts(i)} for i in (0, 2, 3, 4)])
    return s


def _rows(session: asaql.Session, query: str) -> list[dict[str, Any]]:
    return sorted(session.run(query)["output"].to_pylist(), key=lambda row: str(row))


def test_unqualified_field_known_on_one_side_runs_on_that_side() -> None:
    # w is a field of r only; r's event w=30 has no partner in s but LAG still sees it
    s = asaql.Session()  # tables: the fields are known when binding
    s.add_input("s", pa.Table.from_pylist([{"v": i, "d": i, "t": _ts(i)} for i in range(5)]))
    s.add_input("r", pa.Table.from_pylist([{"w": w, "d": d, "t": _ts(sec)}
                                           for w, d, sec in ((0, 0, 0), (2, 2, 2), (30, 30, 3), (4, 4, 4))]))
    rows = _rows(s, f"SELECT s.v, LAG(w) OVER (LIMIT DURATION(minute, 1)) AS pw {JOIN}")
    assert [(row["v"], row["pw"]) for row in sorted(rows, key=lambda row: row["v"])] == [
        (0, None), (2, 0), (4, 30)]


def test_the_plan_puts_each_call_above_its_input() -> None:
    job = _session().compile(
        f"SELECT s.v, LAG(s.v) OVER (LIMIT DURATION(minute, 1)) AS a, "
        f"LAST(r.w) OVER (LIMIT DURATION(minute, 1)) AS b {JOIN}")
    lines = [line.strip() for line in job.explain().split("== Optimized plan ==")[0].splitlines()]
    join = next(i for i, line in enumerate(lines) if line.startswith("TemporalJoin"))
    assert lines[join + 1].startswith("Analytic __an1 := LAG(s.v)")
    assert lines[join + 2].startswith("Scan s")
    assert lines[join + 3].startswith("Analytic __an2 := LAST(r.w)")
    assert lines[join + 4].startswith("Scan r")


def test_analytic_runs_before_a_reference_join_that_drops_events() -> None:
    s = asaql.Session()
    s.add_input("s", [{"v": i, "d": i % 2, "t": _ts(i)} for i in range(4)])
    s.add_reference("ref", [{"d": 0, "name": "even"}])
    rows = s.run("SELECT s.v, ref.name, LAG(s.v) OVER (LIMIT DURATION(minute, 1)) AS p "
                 "FROM s TIMESTAMP BY t JOIN ref ON s.d = ref.d")["output"].to_pylist()
    assert [(row["v"], row["p"]) for row in rows] == [(0, None), (2, 1)]


@pytest.mark.parametrize(("expr", "code", "words"), [
    ("LAG(s.v) OVER (PARTITION BY r.d LIMIT DURATION(minute, 1))", "analytic_mixes_inputs", "mixes columns of s and r"),
    ("SUM(s.v + r.w) OVER (LIMIT DURATION(minute, 1))", "analytic_mixes_inputs", "mixes columns of s and r"),
    ("LAG(d) OVER (LIMIT DURATION(minute, 1))", "analytic_ambiguous_input", "qualify it"),
])
def test_calls_that_do_not_read_one_input_are_bind_errors(expr: str, code: str, words: str) -> None:
    query = f"SELECT s.v, {expr} AS x {JOIN}"
    with pytest.raises(asaql.QueryError) as info:
        _session().compile(query)
    assert info.value.code == code
    assert words in info.value.render(query)
    start = query.index(expr)
    assert info.value.span.start == start


def test_reference_data_is_not_an_analytic_input() -> None:
    s = asaql.Session()
    s.add_input("s", [{"v": 1, "d": 0, "t": _ts(0)}])
    s.add_reference("ref", [{"d": 0, "name": "even"}])
    with pytest.raises(asaql.QueryError) as info:
        s.compile("SELECT LAG(ref.name) OVER (LIMIT DURATION(minute, 1)) AS p "
                  "FROM s TIMESTAMP BY t JOIN ref ON s.d = ref.d")
    assert info.value.code == "analytic_input"
