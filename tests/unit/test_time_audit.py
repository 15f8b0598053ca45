"""Mechanisms behind the time-audit cases (tests/cases/time-audit): the analytic history of
substreams, mixed-type analytic results, and TIMESTAMP BY on an aliased input.

Each test pins a bug found by the audit:

* the analytic history expired by the latest row of *any* partition, so with
  ``TIMESTAMP BY ... OVER`` a key running hours behind another lost its LAG history;
* LAG/LAST/TopOne OVER crashed (``if_else`` has no kernel for Variant) when the values, or the
  value and the default, had different types;
* ``FROM input AS r TIMESTAMP BY r.ts`` read NULL times (every event dropped) because the shared
  scan reads the input under a neutral name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

import asaql
from asaql.exec.analytic import _History, pick
from asaql.types import to_python

D = "2024-05-14T"
SECOND = 1_000_000


def _rows(query: str, inputs: dict[str, list[dict[str, Any]]], output: str = "output",
          **options: Any) -> list[dict[str, Any]]:
    session = asaql.Session(asaql.Options(**options))
    for name, rows in inputs.items():
        session.add_input(name, rows)
    return session.compile(query).run().rows(output)


def _keep(history: _History, ts: list[int], pid: list[int], duration: int) -> list[int]:
    all_ts, all_pid = np.array(ts, dtype=np.int64), np.array(pid, dtype=np.int64)
    history.keep(all_ts, all_pid, np.ones(len(ts), dtype=bool), [], duration)
    return [int(t) for t in history.ts]


def test_history_of_one_timeline_expires_by_the_latest_row() -> None:
    assert _keep(_History(), [0, 100, 7200], [0, 1, 0], 60) == [7200]


def test_history_of_substreams_expires_per_partition() -> None:
    kept = _keep(_History(per_partition=True), [0, 30, 7200], [1, 1, 0], 60)
    assert kept == [0, 30, 7200]


def test_history_of_substreams_drops_rows_the_watermark_passed() -> None:
    history = _History(per_partition=True)
    history.floor = 200
    assert _keep(history, [0, 30, 7200], [1, 1, 0], 60) == [7200]


def test_pick_takes_mixed_type_values() -> None:
    from asaql.exec.evaluate import unify

    a, b = unify([pa.array([1, 2]), pa.array(["x", "y"])])
    assert to_python(pick(np.array([True, False]), a, b)) == [1, "y"]


def test_lag_keeps_the_history_of_a_substream_far_behind() -> None:
    events = [
        {"d": "fast", "n": 1, "ts": D + "10:00:00Z"},
        {"d": "slow", "n": 2, "ts": D + "08:00:00Z"},
        {"d": "fast", "n": 3, "ts": D + "10:00:30Z"},
        {"d": "slow", "n": 4, "ts": D + "08:00:20Z"},
    ]
    query = ("SELECT n, LAG(n) OVER (PARTITION BY d LIMIT DURATION(minute, 1)) AS p "
             "FROM s TIMESTAMP BY ts OVER d")
    for batch_size in (1, 65536):
        rows = _rows(query, {"s": events}, batch_size=batch_size)
        assert {r["n"]: r["p"] for r in rows} == {1: None, 2: None, 3: 1, 4: 2}


def test_lag_default_of_another_type() -> None:
    events = [{"v": 1, "ts": D + "10:00:00Z"}, {"v": 2, "ts": D + "10:00:01Z"}]
    rows = _rows("SELECT LAG(v, 1, 'none') OVER (LIMIT DURATION(minute, 1)) AS p FROM s TIMESTAMP BY ts",
                 {"s": events})
    assert [r["p"] for r in rows] == ["none", 1]


def test_timestamp_by_an_alias_qualified_field_in_two_statements() -> None:
    events = [{"id": 1, "t": D + "10:00:00Z"}, {"id": 2, "t": D + "10:00:05Z"}]
    query = """
        SELECT r.id, System.Timestamp() AS at INTO first FROM s AS r TIMESTAMP BY r.t
        SELECT r.id INTO second FROM s AS r TIMESTAMP BY r.t
    """
    assert [r["id"] for r in _rows(query, {"s": events}, "first")] == [1, 2]
    assert [r["id"] for r in _rows(query, {"s": events}, "second")] == [1, 2]
