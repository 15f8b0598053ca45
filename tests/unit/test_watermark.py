"""Event ordering policies and watermarks (asaql.time.watermark, the Scan, UNION's merge).

Pins: late arrival is checked first and adjusts to ``arrival - late``; out-of-order adjusts up
to ``max seen - tolerance`` or drops; events inside the tolerance are re-sorted; only
System.Timestamp() changes; ``OVER`` keys have their own timelines; watermarks are promises
(no later event at or before them); shuffling events within the tolerance changes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asaql
from asaql.errors import ConfigError
from asaql.exec.operator import Watermark
from asaql.time.watermark import EventOrderer, OrderingPolicy, dt_to_us, us_to_dt

T0 = dt.datetime(2024, 5, 14, 10, 0, tzinfo=dt.timezone.utc)
S = 1_000_000


def _iso(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _batch(ts: list[int]) -> pa.RecordBatch:
    return pa.record_batch({"i": pa.array(range(len(ts))), "__ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC"))})


def _times(batches: list[pa.RecordBatch]) -> list[int]:
    return [v for b in batches for v in b.column("__ts").cast(pa.int64()).to_pylist()]


def test_policy_from_job_config() -> None:
    p = OrderingPolicy.from_job_config({"EventsOutOfOrderMaxDelayInSeconds": 5, "EventsOutOfOrderPolicy": "Drop",
                                        "EventsLateArrivalMaxDelayInSeconds": -1})
    assert p == OrderingPolicy(out_of_order_us=5 * S, drop=True, late_us=None)
    assert OrderingPolicy.from_job_config({}) == OrderingPolicy()
    assert OrderingPolicy.from_job_config({"EventsLateArrivalMaxDelayInSeconds": 3}).late_us == 3 * S
    with pytest.raises(ConfigError):
        OrderingPolicy.from_job_config({"EventsOutOfOrderPolicy": "Keep"})


def test_out_of_order_adjusts_up_to_the_watermark() -> None:
    o = EventOrderer(OrderingPolicy(out_of_order_us=5 * S))
    r = o.push(_batch([10 * S, 2 * S, 30 * S, 28 * S]), np.array([10 * S, 2 * S, 30 * S, 28 * S]))
    assert r.adjusted == 1 and r.dropped == 0
    # 2 s -> 10 - 5 = 5 s; 28 s is inside the tolerance and waits
    assert _times(r.batches) == [5 * S, 10 * S]
    assert r.watermark == 25 * S - 1
    assert _times(o.flush()) == [28 * S, 30 * S]


def test_out_of_order_drop() -> None:
    o = EventOrderer(OrderingPolicy(out_of_order_us=5 * S, drop=True))
    r = o.push(_batch([10 * S, 2 * S, 6 * S]), np.array([10 * S, 2 * S, 6 * S]))
    assert r.dropped == 1
    assert _times(r.batches + o.flush()) == [6 * S, 10 * S]


def test_late_arrival_is_checked_first() -> None:
    o = EventOrderer(OrderingPolicy(late_us=60 * S))
    ts = np.array([0, 100 * S])
    arrival = np.array([300 * S, 100 * S])
    r = o.push(_batch(list(ts)), ts, arrival)
    # first event: 300 s late -> 300 - 60 = 240 s; then the second is out of order (240 > 100)
    assert r.adjusted == 2
    assert _times(r.batches) == [240 * S, 240 * S]


def test_late_arrival_drop() -> None:
    o = EventOrderer(OrderingPolicy(late_us=60 * S, drop=True))
    r = o.push(_batch([0, 100 * S]), np.array([0, 100 * S]), np.array([300 * S, 100 * S]))
    assert r.dropped == 1 and _times(r.batches) == [100 * S]


def test_keys_have_their_own_timelines() -> None:
    o = EventOrderer(OrderingPolicy(), keyed=True)
    ts = np.array([100 * S, 10 * S, 101 * S, 11 * S, 5 * S])
    keys = np.array([0, 1, 0, 1, 1])
    r = o.push(_batch(list(ts)), ts, None, keys)
    assert r.adjusted == 1  # only key 1's 5 s (behind its own 11 s)
    assert sorted(_times(r.batches + o.flush())) == sorted([100 * S, 10 * S, 101 * S, 11 * S, 11 * S])
    assert r.watermark is None  # unbounded late arrival: a new key could start anywhere


def test_watermark_round_trip() -> None:
    t = T0 + dt.timedelta(microseconds=7)
    assert us_to_dt(dt_to_us(t)) == t


# ---------------------------------------------------------------------- through the engine


def _session(config: dict[str, Any], rows: list[dict[str, Any]], batch_size: int = 65536) -> asaql.Session:
    s = asaql.Session(asaql.Options(job_config=config, batch_size=batch_size))
    s.add_input("src", rows)
    return s


def test_adjust_changes_only_system_timestamp_and_is_counted() -> None:
    rows = [{"id": 1, "ts": _iso(10), "EventEnqueuedUtcTime": _iso(10)},
            {"id": 2, "ts": _iso(-300), "EventEnqueuedUtcTime": _iso(20)}]
    res = _session({"EventsOutOfOrderMaxDelayInSeconds": 5}, rows).run(
        "SELECT id, ts, System.Timestamp() AS t FROM src TIMESTAMP BY ts")
    out = {r["id"]: r for r in res["output"].to_pylist()}
    assert out[2]["ts"] == _iso(-300)
    assert out[2]["t"] == T0 + dt.timedelta(seconds=5)
    assert res.metrics.adjusted == {"src": 1}


def test_scan_emits_watermarks_as_time_moves() -> None:
    rows = [{"ts": _iso(i)} for i in range(5)]
    job = _session({}, rows, batch_size=1).compile("SELECT ts FROM src TIMESTAMP BY ts")
    from asaql.exec import physical

    ctx = job.context()
    ((_, items),) = physical.build(job.plan, ctx, job.session.open_input(ctx))
    marks = [i.time for i in items if isinstance(i, Watermark)]
    assert len(marks) == 6 and marks[-1] == Watermark.END.time
    assert marks[:5] == sorted(marks[:5])


def test_union_merges_branches_by_time() -> None:
    s = asaql.Session(asaql.Options(batch_size=1))
    s.add_input("a", [{"n": "a1", "ts": _iso(1)}, {"n": "a3", "ts": _iso(3)}])
    s.add_input("b", [{"n": "b2", "ts": _iso(2)}, {"n": "b4", "ts": _iso(4)}])
    out = s.run("SELECT n FROM a TIMESTAMP BY ts UNION SELECT n FROM b TIMESTAMP BY ts")
    assert [r["n"] for r in out["output"].to_pylist()] == ["a1", "b2", "a3", "b4"]


QUERIES = [
    "SELECT id, System.Timestamp() AS t FROM src TIMESTAMP BY ts",
    "SELECT id, LAG(id) OVER (LIMIT DURATION(minute, 5)) AS prev FROM src TIMESTAMP BY ts",
    "SELECT COUNT(*) AS n, SUM(v) AS s, System.Timestamp() AS t FROM src TIMESTAMP BY ts "
    "GROUP BY TumblingWindow(second, 10)",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 30), tolerance=st.sampled_from([1, 5, 20]), seed=st.integers(0, 10_000),
       policy=st.sampled_from(["Adjust", "Drop"]), batch_size=st.sampled_from([1, 4, 65536]),
       query=st.sampled_from(QUERIES))
def test_shuffling_within_the_tolerance_changes_nothing(n: int, tolerance: int, seed: int, policy: str,
                                                        batch_size: int, query: str) -> None:
    rnd = random.Random(seed)
    times = sorted(rnd.sample(range(0, 200), n))  # distinct seconds
    events = [{"id": i, "v": rnd.randint(0, 9), "ts": _iso(t)} for i, t in enumerate(times)]
    # arrival order: sort by time + jitter in [0, tolerance]: every event arrives at most
    # `tolerance` behind the latest one seen before it
    shuffled = [e for _, e in sorted(((t + rnd.uniform(0, tolerance), e) for t, e in zip(times, events, strict=True)),
                                     key=lambda pair: pair[0])]
    config = {"EventsOutOfOrderMaxDelayInSeconds": tolerance, "EventsOutOfOrderPolicy": policy}
    ordered = _session(config, events, batch_size).run(query)["output"].to_pylist()
    result = _session(config, shuffled, batch_size).run(query)
    assert result["output"].to_pylist() == ordered
    assert not result.metrics.adjusted and not result.metrics.dropped


def test_idle_moves_the_watermark_with_a_bounded_late_tolerance() -> None:
    o = EventOrderer(OrderingPolicy(out_of_order_us=5 * S, late_us=2 * S))
    r = o.push(_batch([10 * S, 12 * S]), np.array([10 * S, 12 * S]))
    assert r.watermark == 7 * S - 1 and _times(r.batches) == []  # both wait inside the tolerance
    # 1 s of silence: estimated arrival 13 s, minus 2 s of late tolerance: 11 s
    r = o.idle(1 * S)
    assert r.watermark == 11 * S - 1 and _times(r.batches) == [10 * S]
    r = o.idle(4 * S)  # 12 + 4 - 2 = 14 s: 12 s leaves the re-sort buffer
    assert r.watermark == 14 * S - 1 and _times(r.batches) == [12 * S]
    assert o.idle(3 * S).watermark is None  # time never goes back
    # a later event older than the idle watermark meets the out-of-order policy there
    r = o.push(_batch([13 * S]), np.array([13 * S]))
    assert r.adjusted == 1


def test_idle_without_a_late_tolerance_does_nothing() -> None:
    o = EventOrderer(OrderingPolicy(out_of_order_us=5 * S))
    o.push(_batch([10 * S]), np.array([10 * S]))
    r = o.idle(3600 * S)
    assert r.watermark is None and r.batches == []
    assert EventOrderer(OrderingPolicy(late_us=S)).idle(10 * S).watermark is None  # nothing seen yet
