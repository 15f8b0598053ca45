"""Review of the stateful operators (analytic functions, windows): results must not depend on
batch boundaries, and no exception may escape as a traceback.

* SUM/AVG/MIN/MAX OVER: an integer-typed batch after a fractional one summed the kept history
  as integers (4.5 counted as 4), so batch size 1 and the default gave different sums;
* MIN/MAX/TopOne OVER with ``TIMESTAMP BY ... OVER`` substreams under one PARTITION BY (rows of
  a partition out of time order): the range search gave a start past the row itself and the
  sparse table raised IndexError.
"""

from __future__ import annotations

from typing import Any

import asaql

D = "2024-05-14T"


def _rows(query: str, events: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    session = asaql.Session(asaql.Options(batch_size=batch_size))
    session.add_input("s", events)
    return session.compile(query).run().rows("output")


def test_sum_over_mixed_int_and_float_is_batch_independent() -> None:
    events = [
        {"n": 4.5, "ts": D + "10:00:00Z"},
        {"n": 2, "ts": D + "10:00:01Z"},
        {"n": 3, "ts": D + "10:00:02Z"},
    ]
    query = ("SELECT n, SUM(n) OVER (LIMIT DURATION(minute, 1)) AS s, "
             "MAX(n) OVER (LIMIT DURATION(minute, 1)) AS m FROM s TIMESTAMP BY ts")
    for batch_size in (1, 2, 65536):
        rows = _rows(query, events, batch_size)
        assert [r["s"] for r in rows] == [4.5, 6.5, 9.5], batch_size
        assert [r["m"] for r in rows] == [4.5, 4.5, 4.5], batch_size


def test_range_aggregates_over_substreams_in_one_partition_do_not_crash() -> None:
    events = [
        {"d": "fast", "n": 1, "ts": D + "10:00:00Z"},
        {"d": "slow", "n": 2, "ts": D + "08:00:00Z"},
        {"d": "fast", "n": 3, "ts": D + "10:00:30Z"},
        {"d": "slow", "n": 4, "ts": D + "08:00:20Z"},
    ]
    query = ("SELECT n, MIN(n) OVER (LIMIT DURATION(minute, 1)) AS m, "
             "TopOne() OVER (ORDER BY n DESC LIMIT DURATION(minute, 1)) AS t "
             "FROM s TIMESTAMP BY ts OVER d")
    for batch_size in (1, 65536):
        rows = _rows(query, events, batch_size)
        assert sorted(r["n"] for r in rows) == [1, 2, 3, 4]
