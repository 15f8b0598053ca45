"""TopOne, CollectTop and Collect with OVER (... LIMIT DURATION ...) against a row-at-a-time
reference: each event's window is the qualifying events of its partition no older than the
duration (the current one included), ranked the way the window aggregates of the same names
rank (NULL lowest, ties keep time order and share a rank). Hypothesis varies the data,
ORDER BY, partitions, WHEN, durations and batch sizes."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asaql

T0 = dt.datetime(2024, 5, 14, 10, 0, tzinfo=dt.UTC)
ORDERS = {"v DESC": [("v", True)], "v": [("v", False)], "v DESC, k": [("v", True), ("k", False)]}


def _events(steps: list[int], keys: list[str], values: list[int | None]) -> list[dict[str, Any]]:
    t = T0
    out = []
    for i, (step, key, value) in enumerate(zip(steps, keys, values, strict=True)):
        t = t + dt.timedelta(seconds=step)
        out.append({"id": i, "k": key, "v": value, "ts": t.isoformat().replace("+00:00", "Z"), "t": t})
    return out


def _run(query: str, events: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    s = asaql.Session(asaql.Options(batch_size=batch_size))
    s.add_input("src", [{k: v for k, v in e.items() if k != "t"} for e in events])
    return s.run(query)["output"].to_pylist()


def _window(events: list[dict[str, Any]], i: int, duration: int, partition: bool, when: bool) -> list[dict[str, Any]]:
    cur = events[i]
    return [e for e in events[: i + 1]
            if (not partition or e["k"] == cur["k"])
            and (cur["t"] - e["t"]).total_seconds() <= duration
            and (not when or (e["v"] is not None and e["v"] > 2))]


def _compare(order: list[tuple[str, bool]], a: dict[str, Any], b: dict[str, Any]) -> int:
    for name, desc in order:
        x, y = a[name], b[name]
        c = 0 if x == y else -1 if x is None else 1 if y is None else (x > y) - (x < y)
        if c:
            return -c if desc else c
    return 0


def _reference(fn: str, n: int, order: list[tuple[str, bool]], window: list[dict[str, Any]]) -> Any:
    if fn == "collect":
        return [e["v"] for e in window if e["v"] is not None]
    ranked = sorted(window, key=functools.cmp_to_key(lambda a, b: _compare(order, a, b)))
    if fn == "topone":
        return ranked[0]["id"] if ranked else None
    return [{"rank": 1 + sum(_compare(order, x, e) < 0 for x in window), "value": e["id"]}
            for e in ranked[:n]]


events_strategy = st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.sampled_from([0, 1, 2, 5, 30]), min_size=n, max_size=n),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=n, max_size=n),
))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=events_strategy,
       fn=st.sampled_from(["topone", "collecttop", "collect"]),
       n=st.sampled_from([1, 2, 4]),
       order=st.sampled_from(sorted(ORDERS)),
       duration=st.sampled_from([1, 5, 60]),
       partition=st.booleans(),
       when=st.booleans(),
       batch_size=st.sampled_from([1, 3, 65536]))
def test_matches_row_at_a_time_reference(data: tuple[list[int], list[str], list[int | None]], fn: str,
                                         n: int, order: str, duration: int, partition: bool,
                                         when: bool, batch_size: int) -> None:
    events = _events(*data)
    over = ("PARTITION BY k " if partition else "")
    over += "" if fn == "collect" else f"ORDER BY {order} "
    over += f"LIMIT DURATION(second, {duration})" + (" WHEN v > 2" if when else "")
    call = {"topone": "TopOne(id)", "collecttop": f"CollectTop({n}, id)", "collect": "Collect(v)"}[fn]
    query = f"SELECT {call} OVER ({over}) AS r FROM src TIMESTAMP BY ts"
    got = [row["r"] for row in _run(query, events, batch_size)]
    want = [_reference(fn, n, ORDERS[order], _window(events, i, duration, partition, when))
            for i in range(len(events))]
    assert got == want, query


@pytest.mark.parametrize("batch_size", [1, 65536])
def test_topone_without_argument_is_the_whole_event(batch_size: int) -> None:
    events = _events([0, 1, 1], ["a", "a", "a"], [3, 7, 5])
    query = ("SELECT TopOne() OVER (ORDER BY v DESC LIMIT DURATION(minute, 1)) AS top, "
             "CollectTop(1) OVER (ORDER BY v LIMIT DURATION(minute, 1)) AS low, "
             "Collect() OVER (LIMIT DURATION(minute, 1)) AS every FROM src TIMESTAMP BY ts")
    rows = _run(query, events, batch_size)
    assert [r["top"]["id"] for r in rows] == [0, 1, 1]
    assert rows[2]["top"] == {"id": 1, "k": "a", "v": 7, "ts": events[1]["ts"]}
    assert [[x["value"]["v"] for x in r["low"]] for r in rows] == [[3], [3], [3]]
    assert [[e["id"] for e in r["every"]] for r in rows] == [[0], [0, 1], [0, 1, 2]]


def test_no_qualifying_event_gives_null_top_and_empty_arrays() -> None:
    events = _events([0], ["a"], [1])
    query = ("SELECT TopOne(v) OVER (ORDER BY v LIMIT DURATION(minute, 1) WHEN v > 5) AS t, "
             "CollectTop(2, v) OVER (ORDER BY v LIMIT DURATION(minute, 1) WHEN v > 5) AS ct, "
             "Collect(v) OVER (LIMIT DURATION(minute, 1) WHEN v > 5) AS c FROM src TIMESTAMP BY ts")
    assert _run(query, events, 65536) == [{"t": None, "ct": [], "c": []}]


@pytest.mark.parametrize(("call", "code"), [
    ("TopOne() OVER (LIMIT DURATION(minute, 1))", "order_by_required"),
    ("CollectTop(v) OVER (ORDER BY v LIMIT DURATION(minute, 1))", "bad_argument"),
    ("CollectTop(0) OVER (ORDER BY v LIMIT DURATION(minute, 1))", "bad_argument"),
    ("Collect(v) OVER (ORDER BY v LIMIT DURATION(minute, 1))", "not_supported"),
    ("TopOne() OVER (PARTITION BY k ORDER BY v)", "limit_duration_required"),
    ("STDEV(v) OVER (LIMIT DURATION(minute, 1))", "not_analytic"),
])
def test_bind_errors_name_the_call(call: str, code: str) -> None:
    s = asaql.Session()
    s.add_input("src", [])
    with pytest.raises(asaql.QueryError) as info:
        s.compile(f"SELECT {call} AS x FROM src")
    assert info.value.code == code
    assert info.value.span.is_known


@pytest.mark.parametrize("function", ["topone", "collecttop", "collect"])
def test_state_keeps_only_the_last_duration(function: str) -> None:
    from asaql.exec.analytic_values import ValuesState
    from asaql.exec.operator import TS, ExecContext
    from asaql.plan import expr as bx
    from asaql.plan.temporal_nodes import AnalyticCall

    v = bx.Col(scope="s", path=("v",))
    call = AnalyticCall(alias="x", function=function, value=v, duration_us=10_000_000, params=(2,),
                        order_by=() if function == "collect" else (v,), descending=(True,))
    state, ctx = ValuesState(), ExecContext()
    for start in range(0, 2000, 100):  # one event a second, 100 a batch
        values = np.arange(start, start + 100)
        ts = values * 1_000_000
        batch = pa.RecordBatch.from_arrays(
            [pa.StructArray.from_arrays([pa.array(values)], names=["v"]),
             pa.array(ts).cast(pa.timestamp("us", tz="UTC"))], names=["s", TS])
        out = state.compute(call, batch, ts, np.zeros(100, np.int64), np.ones(100, bool), ctx)
        assert len(state.history.ts) == 11 and all(len(c) == 11 for c in state.history.columns)
    last = out.to_pylist()[-1]
    assert last == {"topone": 1999, "collecttop": [{"rank": 1, "value": 1999}, {"rank": 2, "value": 1998}],
                    "collect": list(range(1989, 2000))}[function]
