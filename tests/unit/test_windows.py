"""Windows: the assigners' boundaries, and the window operator against two independent checks.

* Assigners: (start, end] membership, offsets (negative too), hop not dividing the size,
  sessions cut at multiples of the maximum duration, sliding enter/exit points.
* Splitting the input into batches at random points, and sending watermarks at random valid
  points (so windows close and state is freed mid-stream), never changes any output.
* A windowed aggregate equals a DuckDB GROUP BY computed here from the same random data with
  epoch arithmetic (an oracle that shares no code with asaql).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asaql
from asaql.errors import QueryError
from asaql.exec import physical
from asaql.exec.operator import TS, ExecContext, Item, Watermark
from asaql.exec.runtime import pull
from asaql.plan import logical as lp
from asaql.plan.windowing import WindowAggregate
from asaql.time import windows as tw
from asaql.types import DATETIME

S = 1_000_000  # one second in microseconds
T0 = int(dt.datetime(2024, 5, 14, 10, 0, tzinfo=dt.timezone.utc).timestamp()) * S


# ------------------------------------------------------------------ assigners


def test_tumbling_event_on_boundary_belongs_to_window_ending_there() -> None:
    spec = tw.Tumbling(10 * S)
    ends = spec.ends(np.array([T0, T0 + 1, T0 + 10 * S]))
    assert ends.tolist() == [T0, T0 + 10 * S, T0 + 10 * S]


@pytest.mark.parametrize(("offset", "t", "end"), [(-1000, 0, 59_999_000), (-1000, -1000, -1000),
                                                  (2 * S, 2 * S, 2 * S), (2 * S, 3 * S, 62 * S)])
def test_tumbling_offsets_shift_the_alignment(offset: int, t: int, end: int) -> None:
    assert tw.Tumbling(60 * S, offset).ends(np.array([T0 + t]))[0] == T0 + end


def test_hopping_with_hop_not_dividing_size() -> None:
    rows, ends = tw.Hopping(10 * S, 4 * S).assign(np.array([T0 + 1, T0 + 4 * S]))
    # T0 is a multiple of 4 s: ends every 4 s, each window (end-10s, end]
    assert [(int(r), int((e - T0) // S)) for r, e in zip(rows, ends, strict=True)] == [
        (0, 4), (0, 8), (1, 4), (1, 8), (1, 12)]


def test_hop_equal_to_size_is_tumbling() -> None:
    assert tw.hopping(5 * S, 5 * S, 1) == tw.Tumbling(5 * S, 1)


def test_session_is_cut_at_multiples_of_max_duration_and_continues() -> None:
    spec = tw.Session(timeout=2 * 60 * S, max_duration=5 * 60 * S)
    base = T0 - (T0 % (5 * 60 * S))
    times = [base + (90 + 60 * i) * S for i in range(12)]  # 10:01:30 .. 10:12:30
    sessions = tw.assign_sessions(spec, times)
    assert [(a, b) for a, b, _, _ in sessions] == [(0, 9), (9, 12)]
    assert sessions[0][3] == base + 600 * S  # cut at 10:10
    assert sessions[1][2] == base + 600 * S  # the next one opens at the cut
    assert sessions[1][3] == times[-1] + 120 * S  # and times out


def test_session_gap_equal_to_timeout_extends_the_session() -> None:
    assert tw.assign_sessions(tw.Session(10, 1000), [0, 10, 21]) == [(0, 2, 0, 20), (2, 3, 21, 31)]


def test_sliding_points_are_entries_and_exits_per_key() -> None:
    keys, points = tw.sliding_points(np.array([0, 1, 0]), np.array([2, 3, 5]), 10)
    assert list(zip(keys.tolist(), points.tolist(), strict=True)) == [
        (0, 2), (0, 5), (0, 12), (0, 15), (1, 3), (1, 13)]


# ------------------------------------------------------------------ binder errors


@pytest.mark.parametrize(("query", "code"), [
    ("SELECT COUNT(*) FROM s GROUP BY k", "window_required"),
    ("SELECT COUNT(*) FROM s GROUP BY TumblingWindow(second, 1), HoppingWindow(second, 2, 1)", "multiple_windows"),
    ("SELECT k FROM s GROUP BY TumblingWindow(second, 1)", "not_grouped"),
    ("SELECT COUNT(*) FROM s GROUP BY TumblingWindow(second, 0)", "bad_window"),
    ("SELECT COUNT(*) FROM s GROUP BY TumblingWindow(day, 8)", "bad_window"),
    ("SELECT COUNT(*) FROM s GROUP BY Windows(Window('a', TumblingWindow(second, 1)), TumblingWindow(second, 2))", "bad_window"),
    ("SELECT COUNT(*) FROM s GROUP BY Windows(Window('a', TumblingWindow(second, 1)), Window('A', TumblingWindow(second, 2)))", "bad_window"),
    ("SELECT PERCENTILE_CONT(0.5) FROM s GROUP BY TumblingWindow(second, 1)", "order_by_required"),
    ("SELECT SUM(DISTINCT x) FROM s GROUP BY TumblingWindow(second, 1)", "not_supported"),
])
def test_grouping_errors_name_a_position(query: str, code: str) -> None:
    session = asaql.Session()
    session.add_input("s", [])
    with pytest.raises(QueryError) as info:
        session.compile(query)
    assert info.value.code == code
    assert info.value.span.is_known


# ------------------------------------------------------------------ split / watermark invariance


@dataclass(kw_only=True)
class Feed(lp.PlanNode):
    """Test-only plan node: replays prepared items (batches and watermarks)."""

    alias: str
    items: list[Item]

    def scopes(self) -> list[str]:
        return [self.alias]


@physical.builds(Feed, "FeedExec")
def _feed(node: lp.PlanNode, b: physical.Builder) -> Iterator[Item]:
    assert isinstance(node, Feed)
    return iter(node.items)


def _batch(rows: list[dict[str, Any]], alias: str) -> pa.RecordBatch:
    table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "t"} for r in rows],
                                 schema=pa.schema([("k", pa.string()), ("v", pa.int64())]))
    struct = pa.StructArray.from_arrays([table.column("k").combine_chunks(), table.column("v").combine_chunks()],
                                        names=["k", "v"])
    ts = pa.array([r["t"] for r in rows], pa.int64()).cast(DATETIME)
    return pa.RecordBatch.from_arrays([struct, ts], names=[alias, TS])


def _run_feed(query: str, items: list[Item]) -> list[dict[str, Any]]:
    session = asaql.Session()
    session.add_input("s", [])
    job = session.compile(query)
    plan = job.plan
    for node in plan.nodes():
        if isinstance(node, WindowAggregate):
            node.child = Feed(alias="s", items=items)
    ctx = ExecContext()
    out: list[dict[str, Any]] = []
    for _, batch in pull(physical.build(plan, ctx, lambda name, cols: iter(())), ctx):
        out.extend(batch.to_pylist())
    return out


def _items(rows: list[dict[str, Any]], cuts: list[int], marks: list[bool]) -> list[Item]:
    """Batches split at ``cuts``; after a batch, a watermark just below the next event time."""
    items: list[Item] = []
    bounds = sorted({c for c in cuts if 0 < c < len(rows)}) + [len(rows)]
    start = 0
    for i, stop in enumerate(bounds):
        items.append(_batch(rows[start:stop], "s"))
        if stop < len(rows) and marks[i % len(marks)]:
            nxt = rows[stop]["t"] - 1
            items.append(Watermark(dt.datetime.fromtimestamp(nxt / S, dt.timezone.utc)))
        start = stop
    items.append(Watermark.END)
    return items


QUERIES = [
    "SELECT k, COUNT(*) AS n, SUM(v) AS s, AVG(v) AS a, MIN(v) AS lo, MAX(v) AS hi, STDEV(v) AS sd, "
    "System.Timestamp() AS e FROM s GROUP BY k, TumblingWindow(second, 10, -1)",
    "SELECT k, COUNT(v) AS n, Collect(v) AS c, System.Timestamp() AS e FROM s GROUP BY k, HoppingWindow(second, 10, 4)",
    "SELECT k, COUNT(*) AS n, PERCENTILE_DISC(0.5) OVER (ORDER BY v) AS p, System.Timestamp() AS e "
    "FROM s GROUP BY k, SlidingWindow(second, 7)",
    "SELECT k, COUNT(*) AS n, MAX(v) AS hi, System.Timestamp() AS e FROM s "
    "GROUP BY k, SessionWindow(second, 5, 20) OVER (PARTITION BY k)",
    "SELECT COUNT(*) AS n, COUNT(DISTINCT k) AS d, System.Timestamp() AS e FROM s GROUP BY SessionWindow(second, 3, 10)",
    "SELECT k, SUM(v) AS s, System.Timestamp() AS e FROM s GROUP BY k, System.Timestamp() HAVING COUNT(*) > 1",
    "SELECT System.Window().Id AS w, COUNT(*) AS n, TopOne() OVER (ORDER BY v DESC) AS top, System.Timestamp() AS e "
    "FROM s GROUP BY Windows(Window('a', TumblingWindow(second, 5)), Window('b', SlidingWindow(second, 6)))",
]

events = st.lists(
    st.fixed_dictionaries({
        "k": st.sampled_from(["a", "b", "c"]),
        "v": st.one_of(st.none(), st.integers(-50, 50)),
        "t": st.integers(0, 60).map(lambda s: T0 + s * S),
    }),
    min_size=1, max_size=40,
).map(lambda rows: sorted(rows, key=lambda r: r["t"]))


def _approx(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (round(v, 9) if isinstance(v, float) and not math.isnan(v) else v) for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=events, cuts=st.lists(st.integers(0, 40), max_size=8), marks=st.lists(st.booleans(), min_size=1, max_size=4))
def test_batch_splits_and_watermarks_do_not_change_results(query: str, rows: list[dict[str, Any]],
                                                            cuts: list[int], marks: list[bool]) -> None:
    whole = _run_feed(query, [_batch(rows, "s"), Watermark.END])
    split = _run_feed(query, _items(rows, cuts, marks))
    assert _approx(split) == _approx(whole)


# ------------------------------------------------------------------ DuckDB oracle


def _events_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({
        "k": [r["k"] for r in rows],
        "v": pa.array([r["v"] for r in rows], pa.int64()),
        "ts": [dt.datetime.fromtimestamp(r["t"] / S, dt.timezone.utc).isoformat() for r in rows],
        "us": [r["t"] for r in rows],
    })


def _asaql(query: str, table: pa.Table) -> list[tuple[Any, ...]]:
    session = asaql.Session()
    session.add_input("s", table)
    out = session.run(query).outputs["output"].to_pylist()
    return sorted((tuple(_norm(v) for v in r.values()) for r in out), key=repr)


def _norm(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return int(v.timestamp() * S)
    if isinstance(v, float):
        return round(v, 6)
    return v


def _duck(sql: str, table: pa.Table) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    con.register("s", table)
    rows = con.execute(sql).fetchall()
    return sorted((tuple(_norm(float(v) if v is not None and not isinstance(v, int | str) else v) for v in r)
                   for r in rows), key=repr)


@settings(max_examples=25, deadline=None)
@given(rows=events, size=st.sampled_from([3, 5, 10, 60]), hop=st.sampled_from([1, 2, 3, 4]))
def test_tumbling_and_hopping_equal_a_duckdb_group_by(rows: list[dict[str, Any]], size: int, hop: int) -> None:
    table = _events_table(rows)
    got = _asaql(
        f"SELECT k, COUNT(*) AS n, COUNT(v) AS nv, SUM(v) AS s, AVG(v) AS a, MIN(v) AS lo, MAX(v) AS hi, "
        f"System.Timestamp() AS e "
        f"FROM s TIMESTAMP BY ts GROUP BY k, TumblingWindow(second, {size})", table)
    width = size * S
    want = _duck(
        f"SELECT k, count(*), count(v), sum(v), avg(v), min(v), max(v), "
        f"CASE WHEN us % {width} = 0 THEN us ELSE (us // {width} + 1) * {width} END AS e "
        f"FROM s GROUP BY k, e", table)
    assert got == want
    hop = min(hop, size)
    got = _asaql(
        f"SELECT k, COUNT(*) AS n, SUM(v) AS s, System.Timestamp() AS e "
        f"FROM s TIMESTAMP BY ts GROUP BY k, HoppingWindow(second, {size}, {hop})", table)
    step = hop * S
    want = _duck(
        f"WITH x AS (SELECT k, v, unnest(range("
        f"CASE WHEN us % {step} = 0 THEN us ELSE (us // {step} + 1) * {step} END, us + {width}, {step})) AS e FROM s) "
        f"SELECT k, count(*), sum(v), e FROM x GROUP BY k, e", table)
    assert got == want


# ------------------------------------------------------------------ docs


def test_every_example_of_the_windows_page_is_a_tested_case_folder() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "time-and-windows.md").read_text()
    examples = [b.strip() for b in re.findall(r"```saql\n(.*?)```", page, re.S)]
    queries = {p.read_text().strip() for p in (root / "tests" / "cases" / "windows").glob("*/query.asaql")}
    assert examples
    missing = [e for e in examples if e not in queries]
    assert not missing, missing
