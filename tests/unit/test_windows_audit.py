"""Mechanisms behind the windows-audit cases (tests/cases/windows-audit): COUNT(DISTINCT) over
whole records, constant aggregate arguments checked at compile time, System.Timestamp() as a
window of Windows() and as a key next to a window (asa-language.md §6, §7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import asaql
from asaql.functions.aggregates import AggregateOptions, lookup
from asaql.plan.windowing import WindowAggregate
from asaql.time import windows as tw


def _count_distinct(values: pa.Array) -> int:
    acc = lookup("count").make(AggregateOptions(distinct=True))  # type: ignore[union-attr]
    (prepared,) = acc.prepare([values])
    acc.absorb_rows(np.zeros(len(values), np.int64), [prepared])  # type: ignore[attr-defined]
    return int(acc.evaluate(np.array([0])).to_pylist()[0])


def test_count_distinct_compares_records_by_value() -> None:
    records = pa.array([{"a": 1, "b": "x"}, {"a": 1, "b": "x"}, {"a": 2, "b": "x"}, None])
    assert _count_distinct(records) == 2


def test_count_distinct_of_arrays_and_plain_values() -> None:
    assert _count_distinct(pa.array([[1, 2], [1, 2], [2, 1]])) == 2
    assert _count_distinct(pa.array([3, None, 3, 4])) == 2


def _session(tmp_path: Path, rows: list[dict[str, Any]], **options: Any) -> asaql.Session:
    data = tmp_path / "ev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    session = asaql.Session(asaql.Options(**options))
    session.add_input("ev", str(data))
    return session


@pytest.mark.parametrize("call", [
    "PERCENTILE_CONT(1.5) OVER (ORDER BY v)",
    "PERCENTILE_DISC(-0.1) OVER (ORDER BY v)",
    "CollectTop(0) OVER (ORDER BY v)",
])
def test_constant_aggregate_arguments_fail_at_compile_time(tmp_path: Path, call: str) -> None:
    session = _session(tmp_path, [{"v": 1, "ts": "2024-05-14T10:00:01Z"}])
    query = f"SELECT {call} AS x FROM ev TIMESTAMP BY ts GROUP BY TumblingWindow(second, 10)"
    with pytest.raises(asaql.QueryError) as info:
        session.compile(query)
    assert info.value.code == "bad_argument"
    assert info.value.span.is_known


def _window_node(plan: Any) -> WindowAggregate:
    nodes = [n for n in plan.nodes() if isinstance(n, WindowAggregate)]
    assert len(nodes) == 1
    return nodes[0]


def test_system_timestamp_is_a_window_inside_windows(tmp_path: Path) -> None:
    session = _session(tmp_path, [{"ts": "2024-05-14T10:00:01Z"}])
    job = session.compile("SELECT COUNT(*) AS n FROM ev TIMESTAMP BY ts "
                          "GROUP BY Windows(Window('t', Tumbling(second, 10)), Window('s', System.Timestamp()))")
    node = _window_node(job.logical)
    assert [(w.id, type(w.spec)) for w in node.windows] == [("t", tw.Tumbling), ("s", tw.Snapshot)]


def test_system_timestamp_key_reads_the_window_end_in_select(tmp_path: Path) -> None:
    rows = [{"ts": "2024-05-14T10:00:03Z"}, {"ts": "2024-05-14T10:00:07Z"}, {"ts": "2024-05-14T10:00:07Z"}]
    session = _session(tmp_path, rows)
    job = session.compile("SELECT COUNT(*) AS n, System.Timestamp() AS at FROM ev TIMESTAMP BY ts "
                          "GROUP BY System.Timestamp(), TumblingWindow(second, 10)")
    out = sorted((r["n"], r["at"].isoformat()) for _, b in job.stream() for r in b.to_pylist())
    assert out == [(1, "2024-05-14T10:00:10+00:00"), (2, "2024-05-14T10:00:10+00:00")]


def _rows(job: Any) -> list[tuple[Any, ...]]:
    return sorted((r.get("w"), r["n"], r["at"].isoformat()) for _, b in job.stream() for r in b.to_pylist())


@pytest.mark.parametrize("batch_size", [None, 1])
@pytest.mark.parametrize("seed", range(4))
def test_windows_union_equals_each_window_alone(tmp_path: Path, seed: int, batch_size: int | None) -> None:
    """Windows(a, b) is the union of the results of a and of b (windows reference): window
    definitions of the same kind keep separate state (session cuts, sliding buffers)."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.integers(1, 4, size=40))
    rows = [{"k": str(rng.integers(0, 2)), "ts": f"2024-05-14T10:{t // 60:02d}:{t % 60:02d}Z"} for t in times]
    windows = {"a": "SessionWindow(second, 3, 5)", "b": "SessionWindow(second, 2, 7)",
               "c": "SessionWindow(second, 4, 6) OVER (PARTITION BY k)",
               "d": "SessionWindow(second, 2, 4) OVER (PARTITION BY k)",
               "e": "SlidingWindow(second, 4)", "f": "HoppingWindow(second, 6, 4)"}
    select = "SELECT {w} AS w, COUNT(*) AS n, System.Timestamp() AS at FROM ev TIMESTAMP BY ts GROUP BY "
    options = {"batch_size": batch_size} if batch_size else {}
    alone: list[tuple[Any, ...]] = []
    for name, window in windows.items():
        alone += _rows(_session(tmp_path, rows, **options).compile(select.format(w=f"'{name}'") + window))
    both = ", ".join(f"Window('{name}', {window})" for name, window in windows.items())
    union = _rows(_session(tmp_path, rows, **options).compile(select.format(w="System.Window().Id") + f"Windows({both})"))
    assert union == sorted(alone)
