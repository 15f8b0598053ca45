"""The public API: `asaql.__all__` is sorted and complete, and the library runs queries."""

from __future__ import annotations

import pyarrow as pa

import asaql


def test_all_is_sorted_and_exported() -> None:
    assert asaql.__all__ == sorted(asaql.__all__)
    for name in asaql.__all__:
        assert hasattr(asaql, name), name


def test_compile_once_run_on_tables() -> None:
    table = pa.table({"deviceId": ["a", "b"], "t": [30.5, 10.0]})
    session = asaql.Session()
    session.add_input("iot", table)
    job = session.compile("SELECT deviceId, t * 2 AS t2 INTO hot FROM iot WHERE t > 20")
    assert job.output_names == ["hot"]
    first = job.run()["hot"].to_pylist()
    second = job.run()["hot"].to_pylist()
    assert first == second == [{"deviceId": "a", "t2": 61.0}]


def test_stream_yields_batches_per_output() -> None:
    session = asaql.Session(batch_size=1)
    session.add_input("iot", [{"k": i} for i in range(5)])
    job = session.compile("SELECT k INTO a FROM iot WHERE k % 2 = 0 SELECT k INTO b FROM iot WHERE k % 2 = 1")
    seen = {"a": [], "b": []}
    for name, batch in job.stream():
        seen[name].extend(batch.column("k").to_pylist())
    assert seen == {"a": [0, 2, 4], "b": [1, 3]}


def test_query_error_has_position() -> None:
    try:
        asaql.compile("SELECT a FROM src WHERE", inputs={"src": [{"a": 1}]})
    except asaql.AsaqlSyntaxError as exc:
        assert exc.span.line == 1
        assert "expected" in exc.message
    else:
        raise AssertionError("no error")
