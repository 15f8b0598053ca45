"""Stream-to-stream JOIN: DATEDIFF bounds on the aliases, output timestamps, LEFT non-matches,
state eviction, binding errors. Pins asa-language.md §3 and traps 4 (§18)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asaql

T0 = dt.datetime(2024, 5, 14, 12, 0, tzinfo=dt.timezone.utc)


def _iso(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _run(query: str, a: list[dict[str, Any]], b: list[dict[str, Any]], batch_size: int = 65536) -> list[dict[str, Any]]:
    s = asaql.Session(asaql.Options(batch_size=batch_size))
    s.add_input("a", a)
    s.add_input("b", b)
    return s.run(query)["output"].to_pylist()


A = [{"k": "x", "n": 1, "ts": _iso(0)}, {"k": "y", "n": 2, "ts": _iso(1)}, {"k": "x", "n": 3, "ts": _iso(20)}]
B = [{"k": "x", "m": 10, "ts": _iso(5)}, {"k": "x", "m": 30, "ts": _iso(21)}, {"k": "y", "m": 20, "ts": _iso(30)}]

JOIN = ("SELECT a.n, b.m, System.Timestamp() AS t FROM a TIMESTAMP BY ts {kind} JOIN b TIMESTAMP BY ts "
        "ON a.k = b.k AND {bound}")


@pytest.mark.parametrize("batch_size", [1, 2, 65536])
def test_inner_join_stamps_the_later_time(batch_size: int) -> None:
    rows = _run(JOIN.format(kind="", bound="DATEDIFF(minute, a, b) BETWEEN 0 AND 10"), A, B, batch_size)
    got = sorted((r["n"], r["m"], r["t"]) for r in rows)
    assert got == [(1, 10, T0 + dt.timedelta(minutes=5)), (3, 30, T0 + dt.timedelta(minutes=21))]


@pytest.mark.parametrize("bound", [
    "DATEDIFF(minute, a, b) >= 0 AND DATEDIFF(minute, a, b) <= 10",
    "DATEDIFF(minute, b, a) BETWEEN -10 AND 0",
    "DATEDIFF(minute, a, b) > -1 AND DATEDIFF(minute, a, b) < 11",
    "0 <= DATEDIFF(minute, a, b) AND DATEDIFF(minute, a, b) <= 10",
])
def test_bound_spellings_agree(bound: str) -> None:
    rows = _run(JOIN.format(kind="", bound=bound), A, B)
    assert sorted((r["n"], r["m"]) for r in rows) == [(1, 10), (3, 30)]


@pytest.mark.parametrize("batch_size", [1, 65536])
def test_left_join_emits_non_matches_at_left_time_plus_upper_bound(batch_size: int) -> None:
    rows = _run(JOIN.format(kind="LEFT", bound="DATEDIFF(minute, a, b) BETWEEN 0 AND 10"), A, B, batch_size)
    got = sorted((r["n"], r["m"], r["t"]) for r in rows)
    assert got == [(1, 10, T0 + dt.timedelta(minutes=5)),
                   (2, None, T0 + dt.timedelta(minutes=11)),
                   (3, 30, T0 + dt.timedelta(minutes=21))]


def test_datediff_counts_boundaries_crossed() -> None:
    a = [{"k": 1, "ts": "2024-05-14T12:00:59Z"}]
    b = [{"k": 1, "ts": "2024-05-14T12:01:00Z"}]
    q = "SELECT a.k FROM a TIMESTAMP BY ts JOIN b TIMESTAMP BY ts ON a.k = b.k AND DATEDIFF(minute, a, b) BETWEEN 1 AND 1"
    assert len(_run(q, a, b)) == 1


def test_self_join_and_residual() -> None:
    s = asaql.Session()
    s.add_input("cars", [{"p": "A", "ts": _iso(0)}, {"p": "B", "ts": _iso(1)}, {"p": "C", "ts": _iso(9)}])
    rows = s.run("SELECT c1.p AS first, c2.p AS second FROM cars c1 TIMESTAMP BY ts "
                 "JOIN cars c2 TIMESTAMP BY ts ON DATEDIFF(minute, c1, c2) BETWEEN 1 AND 5 "
                 "AND c1.p <> c2.p")["output"].to_pylist()
    assert rows == [{"first": "A", "second": "B"}]


def test_keys_of_different_types_do_not_match() -> None:
    a = [{"k": "1", "ts": _iso(0)}]
    b = [{"k": 1, "ts": _iso(0)}]
    q = "SELECT a.k FROM a TIMESTAMP BY ts JOIN b TIMESTAMP BY ts ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 5"
    assert _run(q, a, b) == []


@pytest.mark.parametrize(("on", "code"), [
    ("a.k = b.k", "join_time_bound_required"),
    ("a.k = b.k AND DATEDIFF(minute, a.ts, b.ts) BETWEEN 0 AND 5", "join_time_bound_required"),
    ("a.k = b.k AND DATEDIFF(minute, a, b) < 5", "join_time_bound_required"),
])
def test_bound_errors(on: str, code: str) -> None:
    s = asaql.Session()
    s.add_input("a", [])
    s.add_input("b", [])
    with pytest.raises(asaql.QueryError) as info:
        s.compile(f"SELECT a.k FROM a TIMESTAMP BY ts JOIN b TIMESTAMP BY ts ON {on}")
    assert info.value.code == code
    assert info.value.span.is_known


def test_select_star_with_stream_join_is_an_error() -> None:
    s = asaql.Session()
    s.add_input("a", [])
    s.add_input("b", [])
    with pytest.raises(asaql.QueryError) as info:
        s.compile("SELECT * FROM a TIMESTAMP BY ts JOIN b TIMESTAMP BY ts "
                  "ON DATEDIFF(minute, a, b) BETWEEN 0 AND 5")
    assert info.value.code == "star_with_stream_join"


def test_state_is_evicted_once_the_bound_has_passed() -> None:
    from asaql.exec.temporal_join import TemporalJoinOperator

    n = 2000
    a = [{"k": i % 7, "ts": _iso(i)} for i in range(n)]
    b = [{"k": i % 7, "ts": _iso(i + 0.5)} for i in range(n)]
    s = asaql.Session(asaql.Options(batch_size=10))
    s.add_input("a", a)
    s.add_input("b", b)
    job = s.compile("SELECT a.k FROM a TIMESTAMP BY ts LEFT JOIN b TIMESTAMP BY ts "
                    "ON a.k = b.k AND DATEDIFF(minute, a, b) BETWEEN 0 AND 3")
    sizes: list[int] = []
    original = TemporalJoinOperator._evict

    def spy(self: TemporalJoinOperator, wm: int) -> Any:
        yield from original(self, wm)
        sizes.append(sum(e.batch.num_rows for e in self._left_state + self._right_state))

    TemporalJoinOperator._evict = spy  # type: ignore[method-assign]
    try:
        rows = job.run()["output"].to_pylist()
    finally:
        TemporalJoinOperator._evict = original  # type: ignore[method-assign]
    assert len(rows) == n  # every a row: one match (k equal only every 7 minutes) or a non-match
    assert max(sizes[:-1]) <= 40


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), max_size=12),
       b=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), max_size=12),
       lo=st.integers(-5, 5), width=st.integers(0, 6), kind=st.sampled_from(["", "LEFT"]),
       batch_size=st.sampled_from([1, 3, 65536]))
def test_matches_a_nested_loop_reference(a: list[tuple[int, int]], b: list[tuple[int, int]], lo: int,
                                         width: int, kind: str, batch_size: int) -> None:
    hi = lo + width
    ea = [{"i": i, "k": k, "ts": _iso(t)} for i, (k, t) in enumerate(sorted(a, key=lambda x: x[1]))]
    eb = [{"j": j, "k": k, "ts": _iso(t)} for j, (k, t) in enumerate(sorted(b, key=lambda x: x[1]))]
    q = (f"SELECT a.i, b.j FROM a TIMESTAMP BY ts {kind} JOIN b TIMESTAMP BY ts "
         f"ON a.k = b.k AND DATEDIFF(minute, a, b) BETWEEN {lo} AND {hi}")
    got = sorted((r["i"], r.get("j")) for r in _run(q, ea, eb, batch_size)) if ea else []
    want = []
    for x, (ka, ta) in enumerate(sorted(a, key=lambda v: v[1])):
        hits = [(x, y) for y, (kb, tb) in enumerate(sorted(b, key=lambda v: v[1])) if ka == kb and lo <= tb - ta <= hi]
        want += hits or ([(x, None)] if kind == "LEFT" else [])
    assert got == sorted(want, key=lambda p: (p[0], -1 if p[1] is None else p[1]))
