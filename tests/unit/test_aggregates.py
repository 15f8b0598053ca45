"""Aggregate accumulators: results, NULL rules and types (asa-language.md §7, §14), state merged
across batches and freed when evaluated, and user-defined aggregates through a query."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import asaql
from asaql.functions.aggregates import AggregateOptions, PartialAccumulator, aggregate, lookup


def _run(name: str, batches: list[list[Any]], **options: Any) -> list[Any]:
    """Feed each batch as group 0 (and the same values as group 1), then evaluate both."""
    acc = lookup(name).make(AggregateOptions(**options))  # type: ignore[union-attr]
    for values in batches:
        arrays = acc.prepare([pa.array(values)] if not options.get("star") else [])
        gids = np.array([0] * len(values) + [1] * len(values))
        doubled = [pa.concat_arrays([a, a]) for a in arrays]
        if isinstance(acc, PartialAccumulator):
            table = pa.table({"g": gids, **{f"c{i}": a for i, a in enumerate(doubled)},
                              "n": pa.nulls(len(gids), pa.int8())})
            aggs = [(f"c{idx}" if idx is not None else "n", fn, opts) for idx, fn, opts in acc.updates]
            res = table.group_by("g", use_threads=False).aggregate(aggs)
            cols = [res.column(f"{c}_{fn}").combine_chunks() for c, fn, _ in aggs]
            acc.absorb(res.column("g").to_numpy(), cols)
        else:
            acc.absorb_rows(gids, doubled)
    out = acc.evaluate(np.array([1, 0])).to_pylist()
    assert out[0] == out[1] or out[0] != out[0]
    again = acc.evaluate(np.array([0])) if isinstance(acc, PartialAccumulator) else None
    assert again is None or len(again) == 0  # state was freed
    return out[:1]


def test_sum_of_only_nulls_is_null_and_count_is_bigint() -> None:
    assert _run("sum", [[None, None]]) == [None]
    assert _run("sum", [[1, None], [2]]) == [3]
    assert _run("count", [[None, None], [1]]) == [1]
    assert _run("count", [[None, None], [1]], star=True) == [3]


def test_avg_is_float_and_skips_nulls() -> None:
    assert _run("avg", [[1, 2], [None, 4]]) == [pytest.approx(7 / 3)]
    assert _run("avg", [[None]]) == [None]


def test_min_max_of_datetimes_and_strings() -> None:
    t = [dt.datetime(2024, 5, 14, h, tzinfo=dt.timezone.utc) for h in (3, 1, 2)]
    assert _run("min", [t[:2], t[2:]]) == [t[1]]
    assert _run("max", [["b", None], ["c", "a"]]) == ["c"]


def test_variance_family_is_exact_far_from_zero() -> None:
    values = [1e9 + x for x in (4.0, 7.0, 13.0, 16.0)]
    assert _run("var", [values[:1], values[1:]]) == [pytest.approx(statistics.variance(values))]
    assert _run("varp", [values]) == [pytest.approx(statistics.pvariance(values))]
    assert _run("stdev", [values]) == [pytest.approx(statistics.stdev(values))]
    assert _run("stdevp", [values]) == [pytest.approx(statistics.pstdev(values))]
    assert _run("stdev", [[5.0]]) == [None]  # one value: no sample deviation


def test_percentiles_follow_the_reference_example() -> None:
    data = [[0.78, 0.89], [0.93, 0.98, 0.99]]
    assert _run("percentile_cont", data, params=(0.95,)) == [pytest.approx(0.988)]
    assert _run("percentile_disc", data, params=(0.95,)) == [0.99]
    assert _run("percentile_cont", data, params=(0.95,), descending=(True,)) == [pytest.approx(0.802)]


def test_count_distinct_ignores_null() -> None:
    assert _run("count", [["a", None, "b"], ["a"]], distinct=True) == [2]


def test_collect_keeps_duplicates_and_skips_null() -> None:
    assert sorted(_run("collect", [["x", None], ["x", "y"]])[0]) == ["x", "x", "y"]


def _query(text: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    session = asaql.Session()
    session.add_input("s", rows)
    return session.run(text).outputs["output"].to_pylist()


ROWS = [
    {"k": "a", "v": 5, "t": 1, "ts": "2024-05-14T10:00:01Z"},
    {"k": "a", "v": 9, "t": 2, "ts": "2024-05-14T10:00:02Z"},
    {"k": "a", "v": 9, "t": 3, "ts": "2024-05-14T10:00:03Z"},
    {"k": "a", "v": None, "t": 4, "ts": "2024-05-14T10:00:04Z"},
]


def test_topone_and_collecttop_rank_ties_together_and_null_lowest() -> None:
    out = _query(
        "SELECT TopOne() OVER (ORDER BY v DESC, t ASC) AS top, "
        "CollectTop(3) OVER (ORDER BY v DESC) AS best, TopOne() OVER (ORDER BY v) AS low "
        "FROM s TIMESTAMP BY ts GROUP BY TumblingWindow(minute, 1)", ROWS)
    assert out[0]["top"]["t"] == 2
    assert [(r["rank"], r["value"]["v"]) for r in out[0]["best"]] == [(1, 9), (1, 9), (3, 5)]
    assert out[0]["low"]["v"] is None


def test_python_user_defined_aggregate() -> None:
    @aggregate("spread_test")
    def spread(values: list[Any]) -> Any:
        return max(values) - min(values) if values else None

    out = _query("SELECT k, uda.spread_test(v) AS s FROM s TIMESTAMP BY ts GROUP BY k, TumblingWindow(minute, 1)", ROWS)
    assert out == [{"k": "a", "s": 4}]
