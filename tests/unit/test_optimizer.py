"""The optimizer's projection pushdown: which fields each scan reads, and whether the job
observes event time (if not, the scans need not read arrival times)."""

from __future__ import annotations

import pytest

import asaql
from asaql.plan import logical as lp


def _scans(text: str) -> list[lp.Scan]:
    session = asaql.Session()
    session.add_input("iot", [{"deviceId": "a", "temperature": 1.0, "ts": "2024-01-01T00:00:00Z"}])
    session.add_input("other", [{"deviceId": "a", "ts": "2024-01-01T00:00:00Z"}])
    session.add_reference("devices", [{"deviceId": "a", "room": "lab"}])
    plan = session.compile(text).plan
    out, stack = [], [*plan.steps.values(), *plan.outputs]
    while stack:
        node = stack.pop()
        if isinstance(node, lp.Scan):
            out.append(node)
        stack.extend(node.inputs)
    return out


def test_scan_reads_only_the_used_fields() -> None:
    (scan,) = _scans("SELECT deviceId FROM iot WHERE temperature > 0")
    assert sorted(scan.columns or []) == ["deviceId", "temperature"]


@pytest.mark.parametrize("text", [
    "SELECT deviceId FROM iot WHERE temperature > 0",
    "SELECT i.deviceId, d.room FROM iot i JOIN devices d ON i.deviceId = d.deviceId",
    "WITH s AS (SELECT deviceId FROM iot) SELECT deviceId INTO a FROM s SELECT deviceId INTO b FROM s",
])
def test_stateless_jobs_do_not_observe_time(text: str) -> None:
    assert all(not s.observes_time for s in _scans(text))


@pytest.mark.parametrize("text", [
    "SELECT deviceId, System.Timestamp() AS t FROM iot",
    "SELECT deviceId FROM iot TIMESTAMP BY ts",
    "SELECT COUNT(*) AS n FROM iot GROUP BY TumblingWindow(second, 10)",
    "SELECT deviceId, LAG(deviceId) OVER (LIMIT DURATION(second, 10)) AS prev FROM iot",
    "SELECT deviceId FROM iot UNION SELECT deviceId FROM other",
    # the step alone is stateless, but a later statement windows its rows
    ("WITH s AS (SELECT deviceId FROM iot) SELECT deviceId INTO a FROM s "
     "SELECT COUNT(*) AS n INTO b FROM s GROUP BY TumblingWindow(second, 10)"),
])
def test_time_observing_jobs_keep_arrival_times(text: str) -> None:
    assert all(s.observes_time for s in _scans(text))


def test_stateless_job_still_types_event_enqueued_time_when_selected() -> None:
    rows = asaql.run("SELECT EventEnqueuedUtcTime AS e FROM iot",
                     inputs={"iot": [{"EventEnqueuedUtcTime": "2024-01-01T00:00:01Z"}]}).rows()
    assert rows[0]["e"].isoformat() == "2024-01-01T00:00:01+00:00"


def test_a_re_sorting_policy_still_reads_arrival_times() -> None:
    """Without TIMESTAMP BY events are stamped with their arrival time; an out-of-order
    tolerance re-sorts them by it, so even a stateless job needs it then."""
    events = [{"k": 1, "EventEnqueuedUtcTime": "2024-01-01T00:00:05Z"},
              {"k": 2, "EventEnqueuedUtcTime": "2024-01-01T00:00:03Z"}]
    session = asaql.Session(asaql.Options(job_config={"EventsOutOfOrderMaxDelayInSeconds": 10}))
    session.add_input("iot", events)
    assert [r["k"] for r in session.compile("SELECT k FROM iot").run().rows()] == [2, 1]
