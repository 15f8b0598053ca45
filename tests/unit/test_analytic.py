"""Analytic functions (LAG, LAST, ISFIRST, aggregates OVER) against a row-at-a-time reference.

The operator computes whole batches with numpy (sorting by partition, prefix sums, a sparse
table); the reference below walks the events one by one exactly as the ASA reference pages
describe. Hypothesis varies the data, partitions, WHEN, durations and batch sizes, which pins
the vectorized index arithmetic and the history kept between batches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asaql

T0 = dt.datetime(2024, 5, 14, 10, 0, tzinfo=dt.timezone.utc)


def _events(steps: list[int], keys: list[str], values: list[int | None]) -> list[dict[str, Any]]:
    t = T0
    out = []
    for step, key, value in zip(steps, keys, values, strict=True):
        t = t + dt.timedelta(seconds=step)
        out.append({"k": key, "v": value, "ts": t.isoformat().replace("+00:00", "Z"), "t": t})
    return out


def _run(query: str, events: list[dict[str, Any]], batch_size: int = 65536) -> list[dict[str, Any]]:
    s = asaql.Session(asaql.Options(batch_size=batch_size))
    s.add_input("src", [{k: v for k, v in e.items() if k != "t"} for e in events])
    return s.run(query)["output"].to_pylist()


def _qualifies(e: dict[str, Any], when: str | None) -> bool:
    return when is None or (e["v"] is not None and e["v"] > 2)


def _reference(fn: str, events: list[dict[str, Any]], duration: int, partition: bool,
               when: str | None, offset: int = 1) -> list[Any]:
    out = []
    for i, cur in enumerate(events):
        past = [e for e in events[: i + 1]
                if (not partition or e["k"] == cur["k"])
                and (cur["t"] - e["t"]).total_seconds() <= duration
                and _qualifies(e, when)]
        if fn == "lag":
            prev = [e for e in past if e is not cur]
            out.append(prev[-offset]["v"] if len(prev) >= offset else None)
        elif fn == "last":
            out.append(past[-1]["v"] if past else None)
        else:
            vals = [e["v"] for e in past if e["v"] is not None]
            if fn == "count":
                out.append(len(vals))
            elif not vals:
                out.append(None)
            elif fn == "sum":
                out.append(sum(vals))
            elif fn == "avg":
                out.append(sum(vals) / len(vals))
            elif fn == "min":
                out.append(min(vals))
            else:
                out.append(max(vals))
    return out


events_strategy = st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.sampled_from([0, 1, 2, 5, 30]), min_size=n, max_size=n),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), st.integers(-5, 9)), min_size=n, max_size=n),
))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=events_strategy,
       fn=st.sampled_from(["lag", "last", "sum", "avg", "min", "max", "count"]),
       duration=st.sampled_from([1, 5, 60]),
       partition=st.booleans(),
       when=st.sampled_from([None, "v > 2"]),
       offset=st.sampled_from([1, 2]),
       batch_size=st.sampled_from([1, 3, 65536]))
def test_matches_row_at_a_time_reference(data: tuple[list[int], list[str], list[int | None]], fn: str,
                                         duration: int, partition: bool, when: str | None,
                                         offset: int, batch_size: int) -> None:
    events = _events(*data)
    over = ("PARTITION BY k " if partition else "") + f"LIMIT DURATION(second, {duration})"
    if when:
        over += f" WHEN {when}"
    args = f"v, {offset}" if fn == "lag" else "v"
    if fn != "lag":
        offset = 1
    query = f"SELECT {fn.upper()}({args}) OVER ({over}) AS r FROM src TIMESTAMP BY ts"
    got = [row["r"] for row in _run(query, events, batch_size)]
    want = _reference(fn, events, duration, partition, when, offset)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if isinstance(w, float) and g is not None:
            assert g == pytest.approx(w)
        else:
            assert g == w, (query, got, want)


def test_lag_default_only_when_no_event_qualifies() -> None:
    events = _events([0, 1, 1], ["a", "a", "a"], [1, None, 3])
    query = "SELECT LAG(v, 1, -1) OVER (LIMIT DURATION(minute, 1)) AS p FROM src TIMESTAMP BY ts"
    assert [r["p"] for r in _run(query, events)] == [-1, 1, None]


def test_last_includes_the_current_event() -> None:
    events = _events([0, 1], ["a", "a"], [1, 2])
    query = "SELECT LAST(v) OVER (LIMIT DURATION(minute, 1)) AS p FROM src TIMESTAMP BY ts"
    assert [r["p"] for r in _run(query, events)] == [1, 2]


def test_lag_star_returns_the_previous_event() -> None:
    events = _events([0, 1], ["a", "b"], [1, 2])
    query = "SELECT LAG(*) OVER (LIMIT DURATION(minute, 1)) AS p FROM src TIMESTAMP BY ts"
    rows = _run(query, events)
    assert rows[0]["p"] is None
    assert rows[1]["p"]["k"] == "a" and rows[1]["p"]["v"] == 1


def test_isfirst_intervals_are_start_exclusive_end_inclusive() -> None:
    # 10:00:00 closes the interval (09:50, 10:00]; 10:00:01 opens (10:00, 10:10]
    events = _events([0, 1, 599, 1], ["a"] * 4, [1, 2, 3, 4])
    query = "SELECT v, ISFIRST(minute, 10) AS f FROM src TIMESTAMP BY ts"
    assert [r["f"] for r in _run(query, events)] == [1, 1, 0, 1]


@pytest.mark.parametrize("batch_size", [1, 2, 65536])
def test_isfirst_state_crosses_batches(batch_size: int) -> None:
    events = _events([1, 1, 1, 700, 1], ["a", "b", "a", "a", "b"], [1, 2, 3, 4, 5])
    query = "SELECT ISFIRST(minute, 10) OVER (PARTITION BY k) AS f FROM src TIMESTAMP BY ts"
    assert [r["f"] for r in _run(query, events, batch_size)] == [1, 1, 0, 1, 1]


def test_analytic_runs_before_where_and_group_by() -> None:
    events = _events([0, 60, 60, 60], ["A", "B", "A", "B"], [1, 2, 3, 4])
    query = ("SELECT v, LAG(k) OVER (LIMIT DURATION(minute, 10)) AS pk FROM src TIMESTAMP BY ts "
             "WHERE k = 'B'")
    assert _run(query, events) == [{"v": 2, "pk": "A"}, {"v": 4, "pk": "A"}]


@pytest.mark.parametrize("fn", ["LAG(v)", "LAST(v)", "SUM(v)", "AnomalyDetection_ChangePoint(v, 90, 10)"])
def test_limit_duration_is_required(fn: str) -> None:
    s = asaql.Session()
    s.add_input("src", [])
    with pytest.raises(asaql.QueryError) as info:
        s.compile(f"SELECT {fn} OVER (PARTITION BY k) AS x FROM src")
    assert info.value.code == "limit_duration_required"
    assert "LIMIT DURATION" in info.value.render("")


def test_state_is_bounded_by_the_duration() -> None:
    from asaql.exec.analytic import AnalyticOperator

    events = _events([1] * 3000, ["a", "b", "c"] * 1000, list(range(3000)))
    s = asaql.Session(asaql.Options(batch_size=100))
    s.add_input("src", [{k: v for k, v in e.items() if k != "t"} for e in events])
    job = s.compile("SELECT SUM(v) OVER (PARTITION BY k LIMIT DURATION(second, 10)) AS s, "
                    "LAG(v) OVER (LIMIT DURATION(second, 10)) AS p FROM src TIMESTAMP BY ts")
    seen: list[int] = []
    original = AnalyticOperator._apply

    def spy(self: AnalyticOperator, batch: Any) -> Any:
        out = original(self, batch)
        seen.append(max(len(st.history.ts) for st in self.states))
        return out

    AnalyticOperator._apply = spy  # type: ignore[method-assign]
    try:
        rows = job.run()["output"].to_pylist()
    finally:
        AnalyticOperator._apply = original  # type: ignore[method-assign]
    assert len(rows) == 3000
    assert max(seen) <= 11
